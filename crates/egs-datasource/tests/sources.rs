//! Datasources on real media: ISO images made by genisoimage and xorriso, FAT images made by
//! mkfs.vfat and mtools, seed directories, the kernel command line and SMBIOS serial of a
//! sandbox root, and `seedfrom` over HTTP on 127.0.0.1.
//!
//! Linux only: seed media are made by genisoimage, xorriso, mkfs.vfat and mtools.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use egs_datasource::azure::Azure;
use egs_datasource::configdrive::ConfigDrive;
use egs_datasource::env::SystemEnvironment;
use egs_datasource::locator::{locate, Budget, RealClock};
use egs_datasource::nocloud::NoCloud;
use egs_datasource::{DataSource, DataSourceResult, Probe};
use egs_userdata::fetch::UrlFetcher;

fn run(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?}");
}

fn tree(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

fn iso(work: &Path, name: &str, label: &str, files: &[(&str, &str)], xorriso: bool) -> PathBuf {
    let src = work.join(format!("{name}-src"));
    tree(&src, files);
    let out = work.join(format!("{name}.iso"));
    if xorriso {
        run(Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-V", label, "-o"])
            .arg(&out)
            .arg(&src));
    } else {
        run(Command::new("genisoimage")
            .args(["-quiet", "-joliet", "-rock", "-volid", label, "-output"])
            .arg(&out)
            .arg(&src));
    }
    out
}

fn vfat(work: &Path, label: &str, files: &[(&str, &str)]) -> PathBuf {
    let img = work.join("seed.img");
    run(Command::new("mkfs.vfat")
        .args(["-C", "-n", label])
        .arg(&img)
        .arg("2048"));
    for (name, content) in files {
        let src = work.join(format!("vfat-{name}"));
        std::fs::write(&src, content).unwrap();
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg(format!("::{name}")));
    }
    img
}

fn env(root: &Path, devices: Vec<PathBuf>) -> SystemEnvironment {
    SystemEnvironment {
        root: root.to_path_buf(),
        devices: Some(devices),
    }
}

fn ready(probe: Probe) -> DataSourceResult {
    match probe {
        Probe::Ready(r) => *r,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn nocloud() -> NoCloud {
    NoCloud::new(Box::new(UrlFetcher::default()))
}

const META: &str = "instance-id: iid-media\nlocal-hostname: from-meta\npublic-keys:\n  - ssh-ed25519 AAAAmeta one\n";

#[test]
fn nocloud_iso_and_vfat_media() {
    let work = tempfile::tempdir().unwrap();
    let files = [
        ("meta-data", META),
        ("user-data", "#cloud-config\nhostname: ud\n"),
        ("vendor-data", "#cloud-config\ntimezone: UTC\n"),
        ("network-config", "version: 2\n"),
    ];
    for xorriso in [false, true] {
        let image = iso(
            work.path(),
            &format!("nc{xorriso}"),
            "cidata",
            &files,
            xorriso,
        );
        let r = ready(nocloud().probe(&env(work.path(), vec![image.clone()])));
        assert_eq!(
            (
                r.source.as_str(),
                r.instance_id.as_str(),
                r.hostname.as_deref()
            ),
            ("NoCloud", "iid-media", Some("from-meta"))
        );
        assert_eq!(
            r.user_data.as_deref(),
            Some(&b"#cloud-config\nhostname: ud\n"[..])
        );
        assert_eq!(
            r.vendor_data.as_deref(),
            Some(&b"#cloud-config\ntimezone: UTC\n"[..])
        );
        assert_eq!(r.network_config.as_deref(), Some(&b"version: 2\n"[..]));
        assert_eq!(r.public_keys, ["ssh-ed25519 AAAAmeta one"]);
        assert_eq!(r.location, image.display().to_string());
    }
    let image = vfat(
        work.path(),
        "CIDATA",
        &[("meta-data", META), ("user-data", "#cloud-config\n")],
    );
    let r = ready(nocloud().probe(&env(work.path(), vec![image])));
    assert_eq!(r.instance_id, "iid-media");
    assert!(r.vendor_data.is_none());
}

#[test]
fn other_labels_missing_instance_id_and_no_media() {
    let work = tempfile::tempdir().unwrap();
    let other = iso(work.path(), "other", "DATA", &[("meta-data", META)], false);
    assert!(matches!(
        nocloud().probe(&env(work.path(), vec![other.clone()])),
        Probe::NotApplicable
    ));
    let no_id = iso(
        work.path(),
        "noid",
        "cidata",
        &[("meta-data", "local-hostname: x\n")],
        false,
    );
    match nocloud().probe(&env(work.path(), vec![other, no_id])) {
        Probe::Failed(m) => assert!(m.contains("no 'instance-id'"), "{m}"),
        p => panic!("{p:?}"),
    }
    let bad_yaml = iso(
        work.path(),
        "bad",
        "cidata",
        &[("meta-data", "instance-id: [\n")],
        false,
    );
    match nocloud().probe(&env(work.path(), vec![bad_yaml])) {
        Probe::Failed(m) => assert!(
            m.contains("meta-data is not valid YAML") && m.contains("bad.iso"),
            "{m}"
        ),
        p => panic!("{p:?}"),
    }
    assert!(matches!(
        nocloud().probe(&env(work.path(), vec![])),
        Probe::NotApplicable
    ));
}

#[test]
fn seed_dir_cmdline_and_smbios_layers() {
    let root = tempfile::tempdir().unwrap();
    tree(
        root.path(),
        &[
            (
                "var/lib/cloud/seed/nocloud/meta-data",
                "instance-id: iid-seed\nlocal-hostname: seed-host\n",
            ),
            ("var/lib/cloud/seed/nocloud/user-data", "#cloud-config\n"),
            ("proc/cmdline", "console=ttyS0 ds=nocloud;h=cmdline-host"),
        ],
    );
    let r = ready(nocloud().probe(&env(root.path(), vec![])));
    assert_eq!(
        (r.instance_id.as_str(), r.hostname.as_deref()),
        ("iid-seed", Some("cmdline-host")),
        "the command line wins"
    );
    assert!(r.location.starts_with("kernel command line, "));

    // seedfrom a directory given in the SMBIOS serial; the seed fills what is missing.
    let root = tempfile::tempdir().unwrap();
    tree(
        root.path(),
        &[
            (
                "srv/seed/meta-data",
                "instance-id: iid-from-seed\nlocal-hostname: seed\n",
            ),
            ("srv/seed/user-data", "#cloud-config\nruncmd: [x]\n"),
            (
                "sys/class/dmi/id/product_serial",
                "ds=nocloud;s=file:///srv/seed/;i=iid-smbios",
            ),
        ],
    );
    let r = ready(nocloud().probe(&env(root.path(), vec![])));
    assert_eq!(
        (r.instance_id.as_str(), r.hostname.as_deref()),
        ("iid-smbios", Some("seed"))
    );
    assert_eq!(
        r.user_data.as_deref(),
        Some(&b"#cloud-config\nruncmd: [x]\n"[..])
    );
}

#[test]
fn seedfrom_http() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/seed", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let mut stream = stream.unwrap();
            let mut line = String::new();
            BufReader::new(stream.try_clone().unwrap())
                .read_line(&mut line)
                .unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let body = match path.as_str() {
                "/seed/meta-data" => Some("instance-id: iid-http\n"),
                "/seed/user-data" => Some("#cloud-config\nhostname: via-http\n"),
                _ => None,
            };
            let response = match body {
                Some(b) => format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
                    b.len()
                ),
                None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string(),
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    let root = tempfile::tempdir().unwrap();
    tree(
        root.path(),
        &[("proc/cmdline", &format!("ds=nocloud-net;s={base}"))],
    );
    let r = ready(nocloud().probe(&env(root.path(), vec![])));
    assert_eq!(r.instance_id, "iid-http");
    assert_eq!(
        r.user_data.as_deref(),
        Some(&b"#cloud-config\nhostname: via-http\n"[..])
    );
    assert!(
        r.vendor_data.is_none() && r.network_config.is_none(),
        "404 means absent"
    );
}

#[test]
fn configdrive_versions_and_vendor_data() {
    let work = tempfile::tempdir().unwrap();
    let image = iso(
        work.path(),
        "cd",
        "config-2",
        &[
            (
                "openstack/latest/meta_data.json",
                r#"{"uuid": "latest-uuid"}"#,
            ),
            (
                "openstack/2018-08-27/meta_data.json",
                r#"{"uuid": "f0e1d2c3-0000-4000-8000-000000000001", "name": "cd-vm", "public_keys": {"k1": "ssh-rsa AAAAcd one"}, "meta": {"role": "web"}}"#,
            ),
            ("openstack/2018-08-27/user_data", "#!/bin/sh\necho hi\n"),
            (
                "openstack/2018-08-27/vendor_data.json",
                r##"{"cloud-init": "#cloud-config\ntimezone: UTC\n"}"##,
            ),
            (
                "openstack/2018-08-27/network_data.json",
                r#"{"links": [], "networks": [], "services": []}"#,
            ),
            (
                "openstack/2020-10-14/meta_data.json",
                r#"{"uuid": "too-new"}"#,
            ),
        ],
        false,
    );
    let r = ready(ConfigDrive.probe(&env(work.path(), vec![image])));
    assert_eq!(
        (r.instance_id.as_str(), r.hostname.as_deref()),
        ("f0e1d2c3-0000-4000-8000-000000000001", Some("cd-vm"))
    );
    assert!(r.location.ends_with("(openstack/2018-08-27)"));
    assert_eq!(r.public_keys, ["ssh-rsa AAAAcd one"]);
    assert_eq!(
        r.vendor_data.as_deref(),
        Some(&b"#cloud-config\ntimezone: UTC\n"[..])
    );
    assert!(r.network_config.is_some());
    assert_eq!(
        r.meta_data
            .get("meta")
            .unwrap()
            .as_map()
            .unwrap()
            .get("role")
            .unwrap()
            .as_str(),
        Some("web")
    );
    let bad = iso(
        work.path(),
        "cdbad",
        "CONFIG-2",
        &[("openstack/latest/meta_data.json", "{not json")],
        true,
    );
    assert!(
        matches!(ConfigDrive.probe(&env(work.path(), vec![bad])), Probe::Failed(m) if m.contains("not valid JSON"))
    );
}

#[test]
fn azure_ovf_env_media() {
    let work = tempfile::tempdir().unwrap();
    let xml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ovf-env.xml")).unwrap();
    let image = iso(
        work.path(),
        "az",
        "rd_rdfe_stable",
        &[("ovf-env.xml", &xml)],
        false,
    );
    tree(
        work.path(),
        &[(
            "sys/class/dmi/id/product_uuid",
            "5B2E7C0A-1D3F-4E5A-8B6C-7D8E9F0A1B2C\n",
        )],
    );
    let r = ready(Azure.probe(&env(work.path(), vec![image.clone()])));
    assert_eq!(
        (r.instance_id.as_str(), r.hostname.as_deref()),
        ("5b2e7c0a-1d3f-4e5a-8b6c-7d8e9f0a1b2c", Some("azvm1"))
    );
    assert_eq!(r.default_user.as_ref().unwrap().name, "azureuser");
    assert_eq!(
        r.user_data.as_deref(),
        Some(&b"#cloud-config\nhostname: from-custom-data\n"[..])
    );
    assert_eq!(r.public_keys, ["ssh-ed25519 AAAAkey azure"]);
    std::fs::remove_file(work.path().join("sys/class/dmi/id/product_uuid")).unwrap();
    assert!(
        matches!(Azure.probe(&env(work.path(), vec![image])), Probe::Failed(m) if m.contains("SMBIOS system UUID"))
    );
}

#[test]
fn locator_picks_by_priority_not_device_order() {
    let work = tempfile::tempdir().unwrap();
    let cd = iso(
        work.path(),
        "cd",
        "config-2",
        &[("openstack/latest/meta_data.json", r#"{"uuid": "cd-id"}"#)],
        false,
    );
    let nc = iso(
        work.path(),
        "nc",
        "cidata",
        &[("meta-data", "instance-id: nc-id\n")],
        false,
    );
    let environment = env(work.path(), vec![cd, nc]);
    let (mut azure, mut nocloud, mut configdrive) = (Azure, nocloud(), ConfigDrive);
    let mut sources: [&mut dyn DataSource; 3] = [&mut azure, &mut nocloud, &mut configdrive];
    let located = locate(
        &mut sources,
        &environment,
        &Budget::default(),
        &mut RealClock,
    );
    assert_eq!(located.result.unwrap().instance_id, "nc-id");
    assert!(located.failures.is_empty());
}
