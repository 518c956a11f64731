//! The systemd units in `packaging/` pass `systemd-analyze verify` with the real binary.
//!
//! Linux only: systemd-analyze, dpkg-deb, xorriso and install.sh (sh) are the peers.

#![cfg(unix)]

use std::path::Path;

#[test]
fn systemd_units_verify() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("opt/eryph/guest-services/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(
        assert_cmd::cargo::cargo_bin("egs-service"),
        bin.join("egs-service"),
    )
    .unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "/opt/eryph",
            &dir.path().join("opt/eryph").display().to_string(),
        );
        let name = path.file_name().unwrap().to_owned();
        std::fs::write(dir.path().join(&name), text).unwrap();
        names.push(name);
    }
    assert!(names.len() >= 2);
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(names.iter().map(|n| dir.path().join(n)))
        .output()
        .expect("systemd-analyze (package systemd) verifies the units");
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && messages.trim().is_empty(),
        "{messages}"
    );
}

/// The values of `key=` in a unit's text, split at spaces.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging/systemd")
        .join(unit);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

/// SSH over the VM socket is the way in when the network or provisioning fails, so the
/// daemon waits for neither (no default dependencies, nothing network- or provisioning-
/// related before it), while the stages that need the network wait for network-online.
/// (The VM lab shows the same on a real boot: `vm-lab/scenarios`.)
#[test]
fn ssh_never_waits_for_the_network_or_provisioning() {
    let daemon = "eryph-guest-services.service";
    assert_eq!(unit_values(daemon, "DefaultDependencies"), ["no"]);
    let after = unit_values(daemon, "After");
    for unit in after
        .iter()
        .chain(&unit_values(daemon, "Requires"))
        .chain(&unit_values(daemon, "Wants"))
    {
        assert!(
            !unit.starts_with("network")
                && !unit.starts_with("egs-provision")
                && unit != "sysinit.target"
                && unit != "basic.target",
            "{daemon} waits for {unit}"
        );
    }
    assert_eq!(
        unit_values(daemon, "ExecStart").last().map(String::as_str),
        Some("--no-provisioning")
    );
    let later = "egs-provision.service";
    for needed in ["network-online.target", "egs-provision-local.service"] {
        assert!(
            unit_values(later, "After").iter().any(|u| u == needed),
            "{later} after {needed}"
        );
    }
    assert!(unit_values(later, "Wants")
        .iter()
        .any(|u| u == "network-online.target"));
}

mod common;

fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the ISO and the .deb with the test build of egs-service.
fn package(out: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let bin_dir = common::binary("egs-service")
        .parent()
        .unwrap()
        .to_path_buf();
    let (code, output) = common::code_and_output(
        std::process::Command::new(repo().join("scripts/package"))
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--out")
            .arg(out),
    );
    assert_eq!(code, 0, "{output}");
    let version = env!("CARGO_PKG_VERSION");
    (
        out.join(format!("egs-{version}-amd64.iso")),
        out.join(format!("eryph-guest-services_{version}_amd64.deb")),
    )
}

/// Every path below `root` with its type, mode and content hash: what "the same tree" means.
fn snapshot(root: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".into()
            } else {
                let data = std::fs::read(&path).unwrap();
                format!(
                    "{} bytes, fnv {:x}",
                    data.len(),
                    data.iter()
                        .fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64)
                            .wrapping_mul(0x100000001b3))
                )
            };
            entries.push(format!(
                "{rel} {:o} {what}",
                meta.permissions().mode() & 0o7777
            ));
        }
    }
    entries.sort();
    entries
}

fn install_sh(dir: &Path, args: &[&str]) -> String {
    let (code, output) = common::code_and_output(
        std::process::Command::new("sh")
            .arg(dir.join("install.sh"))
            .args(args),
    );
    assert_eq!(code, 0, "install.sh {args:?}: {output}");
    output
}

/// The ISO holds what users run; install.sh from it installs into a system image, a second
/// run changes nothing, uninstall leaves only the configuration, and --purge leaves nothing.
#[test]
fn installer_iso_and_install_script() {
    let work = tempfile::tempdir().unwrap();
    let (iso, _) = package(&work.path().join("dist"));
    let out = std::process::Command::new("xorriso")
        .args(["-indev"])
        .arg(&iso)
        .args(["-find", "/", "-type", "f"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut files: Vec<&str> = listing.lines().collect();
    files.sort();
    assert_eq!(
        files,
        [
            "'/README.md'",
            "'/bin/egs-service'",
            "'/install.sh'",
            "'/systemd/egs-provision-local.service'",
            "'/systemd/egs-provision.service'",
            "'/systemd/eryph-guest-services.service'"
        ]
    );
    // What a user gets after mounting the ISO.
    let media = work.path().join("media");
    let (code, output) = common::code_and_output(
        std::process::Command::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(&iso)
            .arg("-extract")
            .arg("/")
            .arg(&media),
    );
    assert_eq!(code, 0, "{output}");
    let image = work.path().join("image");
    std::fs::create_dir_all(image.join("etc")).unwrap();
    let key =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ host";
    let root = image.display().to_string();
    let said = install_sh(&media, &["--root", &root, "--ssh-public-key", key]);
    assert!(
        said.contains("installed in /opt/eryph/guest-services"),
        "{said}"
    );
    let first = snapshot(&image);
    install_sh(&media, &["--root", &root, "--ssh-public-key", key]);
    assert_eq!(snapshot(&image), first, "a second install changes nothing");
    let has = |rel: &str| first.iter().any(|e| e.starts_with(&format!("{rel} ")));
    for path in [
        "opt/eryph/guest-services/bin/egs-service",
        "etc/systemd/system/eryph-guest-services.service",
        "etc/systemd/system/egs-provision-local.service",
        "etc/systemd/system/egs-provision.service",
        "etc/opt/eryph/guest-services/id_egs.pub",
        "etc/systemd/system/multi-user.target.wants/eryph-guest-services.service",
        "etc/systemd/system/multi-user.target.wants/egs-provision.service",
        "etc/systemd/system/sysinit.target.wants/egs-provision-local.service",
    ] {
        assert!(has(path), "{path} missing: {first:#?}");
    }
    assert_eq!(
        std::fs::read_to_string(image.join("etc/opt/eryph/guest-services/id_egs.pub")).unwrap(),
        format!("{key}\n")
    );
    // A bad key is refused without touching the installed one.
    let (code, output) = common::code_and_output(
        std::process::Command::new("sh")
            .arg(media.join("install.sh"))
            .args(["--root", &root, "--ssh-public-key", "not a key"]),
    );
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("neither a public key"), "{output}");

    // State and logs as the service would leave them.
    std::fs::create_dir_all(image.join("var/lib/eryph/provisioning")).unwrap();
    std::fs::create_dir_all(image.join("var/log/eryph/guest-services")).unwrap();
    install_sh(&media, &["uninstall", "--root", &root]);
    let left: Vec<String> = snapshot(&image)
        .into_iter()
        .filter(|e| !e.contains(" dir"))
        .collect();
    assert_eq!(left.len(), 1, "only the configuration stays: {left:#?}");
    assert!(left[0].starts_with("etc/opt/eryph/guest-services/id_egs.pub "));
    assert!(image.join("var/lib/eryph/provisioning").exists());
    install_sh(&media, &["uninstall", "--purge", "--root", &root]);
    let left = snapshot(&image);
    assert!(
        left.iter()
            .all(|e| !e.contains("eryph") && !e.contains("egs")),
        "purge leaves nothing of EGS: {left:#?}"
    );
}

/// The .deb carries the same files in the installed layout and says what it is.
#[test]
fn debian_package() {
    let work = tempfile::tempdir().unwrap();
    let (_, deb) = package(&work.path().join("dist"));
    let field = |name: &str| {
        let out = std::process::Command::new("dpkg-deb")
            .arg("-f")
            .arg(&deb)
            .arg(name)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "eryph-guest-services");
    assert_eq!(field("Version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(field("Architecture"), "amd64");
    let sandbox = work.path().join("sandbox");
    let (code, output) = common::code_and_output(
        std::process::Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&sandbox),
    );
    assert_eq!(code, 0, "{output}");
    let tree = snapshot(&sandbox);
    for path in [
        "opt/eryph/guest-services/bin/egs-service 755",
        "lib/systemd/system/eryph-guest-services.service 644",
        "lib/systemd/system/egs-provision-local.service 644",
        "lib/systemd/system/egs-provision.service 644",
    ] {
        assert!(
            tree.iter().any(|e| e.starts_with(path)),
            "{path}: {tree:#?}"
        );
    }
    let (code, output) = common::code_and_output(
        std::process::Command::new(sandbox.join("opt/eryph/guest-services/bin/egs-service"))
            .arg("version"),
    );
    assert_eq!(
        (code, output.trim()),
        (
            0,
            format!("egs-service {}", env!("CARGO_PKG_VERSION")).as_str()
        )
    );
}
