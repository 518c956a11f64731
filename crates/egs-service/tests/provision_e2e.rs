//! `egs-service run --root <sandbox>` end to end: seed media built with genisoimage,
//! mkfs.vfat and mtools; accounts made by the real shadow-utils in the sandbox; then the
//! sandbox is inspected. Reruns, new instances, reboots, failures and `--state-dir` too.
//!
//! Linux only: shadow-utils, genisoimage, mkfs.vfat and netplan are the peers.

#![cfg(unix)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use assert_cmd::Command;
use serde_json::Value;

mod common;

const PASSWORD: &str = "correct-horse-battery-staple";

struct Sandbox {
    _dir: tempfile::TempDir,
    work: PathBuf,
    root: PathBuf,
}

fn sandbox() -> Sandbox {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().to_path_buf();
    let root = work.join("root");
    common::sandbox_root(&root);
    Sandbox {
        _dir: dir,
        work,
        root,
    }
}

impl Sandbox {
    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn seed_iso(&self, name: &str, label: &str, files: &[(&str, &str)]) -> PathBuf {
        let src = self.work.join(format!("{name}-src"));
        for (path, content) in files {
            std::fs::create_dir_all(src.join(path).parent().unwrap()).unwrap();
            std::fs::write(src.join(path), content).unwrap();
        }
        let out = self.work.join(format!("{name}.iso"));
        let status = Process::new("genisoimage")
            .args(["-quiet", "-joliet", "-rock", "-volid", label, "-output"])
            .arg(&out)
            .arg(&src)
            .status()
            .unwrap();
        assert!(status.success());
        out
    }

    fn run(&self, args: &[&str]) -> (i32, String) {
        common::code_and_output(
            Process::new(common::binary("egs-service"))
                .arg("run")
                .arg("--root")
                .arg(&self.root)
                .args(args),
        )
    }

    /// One boot's `run` of `user_data` as instance `instance_id`.
    fn boot(&self, user_data: &str, instance_id: &str, boot_id: &str) -> (i32, String) {
        self.run(&[
            "--user-data",
            user_data,
            "--instance-id",
            instance_id,
            "--boot-id",
            boot_id,
        ])
    }

    fn status(&self, extra: &[&str]) -> Value {
        let out = Command::cargo_bin("egs-service")
            .unwrap()
            .args(["status", "--json", "--root"])
            .arg(&self.root)
            .args(extra)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn module_results(status: &Value) -> Vec<(String, String)> {
    status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_string(),
                m["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn result_of(status: &Value, module: &str) -> String {
    module_results(status)
        .into_iter()
        .find(|(n, _)| n == module)
        .map(|(_, r)| r)
        .unwrap_or_default()
}

fn user_data(extra: &str) -> String {
    format!(
        r#"#cloud-config
users:
  - default
  - name: alice
    gecos: Alice A
    groups: [adm, docker]
    sudo: ALL=(ALL) NOPASSWD:ALL
    plain_text_passwd: {PASSWORD}
    lock_passwd: false
    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@x]
ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDefault default@x]
write_files:
  - path: /etc/egs/app.conf
    content: hello
    permissions: '0640'
    owner: alice:adm
    defer: true
  - path: /usr/local/bin/suid-tool
    encoding: b64
    content: IyEvYmluL3NoCg==
    permissions: '4755'
runcmd:
  - echo "ran for $INSTANCE_ID" >> "$EGS_ROOT/var/tmp/runcmd-out"
manage_etc_hosts: true
{extra}"#
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nocloud_iso_provisions_the_sandbox_once_per_instance() {
    let s = sandbox();
    let iso = s.seed_iso(
        "seed",
        "cidata",
        &[
            (
                "meta-data",
                "instance-id: iid-one\nlocal-hostname: e2e-host\n",
            ),
            ("user-data", &user_data("")),
        ],
    );
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    let status = s.status(&[]);
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(status["instance_id"], "iid-one");

    // Accounts, made by shadow-utils.
    let passwd = s.read("etc/passwd");
    assert!(
        passwd.contains("debian:x:1000:") && passwd.contains(":/home/debian:/bin/bash"),
        "{passwd}"
    );
    assert!(
        passwd.contains("alice:x:1001:") && passwd.contains(":Alice A:/home/alice:/bin/bash"),
        "{passwd}"
    );
    let shadow = s.read("etc/shadow");
    let alice_hash = shadow
        .lines()
        .find(|l| l.starts_with("alice:"))
        .unwrap()
        .split(':')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(alice_hash.starts_with("$6$"), "{alice_hash}");
    let verify = Process::new("python3")
        .args([
            "-W",
            "ignore",
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])",
            PASSWORD,
            &alice_hash,
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&verify.stdout).trim(), "True");
    assert!(
        shadow
            .lines()
            .find(|l| l.starts_with("debian:"))
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .starts_with('!'),
        "default user locked"
    );
    let group = s.read("etc/group");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("adm:") && l.contains("alice") && l.contains("debian")),
        "{group}"
    );
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("docker:") && l.ends_with("alice")),
        "{group}"
    );
    assert!(s
        .read("etc/sudoers.d/90-cloud-init-users")
        .contains("alice ALL=(ALL) NOPASSWD:ALL"));

    // Keys with their modes and owners.
    let keys = s.root.join("home/alice/.ssh/authorized_keys");
    let meta = std::fs::metadata(&keys).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.uid()), (0o600, 1001));
    assert_eq!(
        std::fs::metadata(s.root.join("home/alice/.ssh"))
            .unwrap()
            .mode()
            & 0o777,
        0o700
    );
    assert!(s
        .read("home/debian/.ssh/authorized_keys")
        .contains("AAAAIDefault"));
    assert!(s
        .read("root/.ssh/authorized_keys")
        .contains("Please login as the user \\\"debian\\\""));

    // Files: deferred owner, setuid kept after chown.
    let conf = std::fs::metadata(s.root.join("etc/egs/app.conf")).unwrap();
    assert_eq!(
        (conf.mode() & 0o7777, conf.uid(), conf.gid()),
        (0o640, 1001, 4)
    );
    assert_eq!(
        std::fs::metadata(s.root.join("usr/local/bin/suid-tool"))
            .unwrap()
            .mode()
            & 0o7777,
        0o4755
    );
    assert_eq!(s.read("usr/local/bin/suid-tool"), "#!/bin/sh\n");

    // Identity, scripts, logs, semaphores.
    assert_eq!(s.read("etc/hostname"), "e2e-host\n");
    assert!(s.read("etc/hosts").contains("127.0.1.1 e2e-host"));
    assert_eq!(s.read("var/tmp/runcmd-out"), "ran for iid-one\n");
    let script_log = s
        .root
        .join("var/log/eryph/guest-services/scripts/scripts_user-runcmd.log");
    assert_eq!(
        std::fs::metadata(&script_log).unwrap().mode() & 0o777,
        0o600
    );
    assert!(s
        .root
        .join("var/lib/eryph/provisioning/instances/iid-one/sem/config_users_groups")
        .exists());
    assert!(s.root.join("etc/ssh/ssh_host_ed25519_key").exists());

    // Secrets never reach logs, state or output (only the 0600 copy of user-data itself).
    let mut files = Vec::new();
    walk(&s.root.join("var/log"), &mut files);
    walk(&s.root.join("var/lib/eryph"), &mut files);
    for f in files {
        let text = std::fs::read(&f).unwrap();
        if String::from_utf8_lossy(&text).contains(PASSWORD) {
            assert!(
                f.ends_with("user-data.txt"),
                "{} holds the password",
                f.display()
            );
            assert_eq!(std::fs::metadata(&f).unwrap().mode() & 0o777, 0o600);
        }
    }
    assert!(!output.contains(PASSWORD));

    // Again: per-instance modules do not run twice.
    let (code, _) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0);
    let status = s.status(&[]);
    assert_eq!(result_of(&status, "users_groups"), "skipped");
    assert_eq!(result_of(&status, "scripts_user"), "skipped");
    assert_eq!(
        result_of(&status, "set_hostname"),
        "done",
        "always-modules run every time"
    );
    assert_eq!(s.read("var/tmp/runcmd-out"), "ran for iid-one\n");

    // A new instance id runs per-instance modules again; existing users are kept.
    let iso2 = s.seed_iso(
        "seed2",
        "CIDATA",
        &[
            ("meta-data", "instance-id: iid-two\n"),
            ("user-data", &user_data("")),
        ],
    );
    let (code, output) = s.run(&["--devices", iso2.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        s.read("var/tmp/runcmd-out"),
        "ran for iid-one\nran for iid-two\n"
    );
    assert_eq!(
        s.read("etc/passwd")
            .lines()
            .filter(|l| l.starts_with("alice:"))
            .count(),
        1
    );
}

#[test]
fn failures_are_isolated_and_retried_only_on_request() {
    let s = sandbox();
    let ud = "#cloud-config\nwrite_files:\n  - path: /etc/x\n    owner: nobody-here\n    content: x\nruncmd:\n  - touch \"$EGS_ROOT/var/tmp/ran\"\n";
    let (code, output) = s.run(&[
        "--user-data",
        &write(&s, "ud", ud),
        "--instance-id",
        "iid-f",
    ]);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("write_files: unknown user 'nobody-here'"),
        "{output}"
    );
    assert!(
        s.root.join("var/tmp/ran").exists(),
        "other modules still ran"
    );
    let status = s.status(&[]);
    assert_eq!(
        (
            status["status"].as_str(),
            result_of(&status, "write_files").as_str()
        ),
        (Some("error"), "failed")
    );
    let (code, output) = s.run(&[
        "--user-data",
        &write(&s, "ud", ud),
        "--instance-id",
        "iid-f",
    ]);
    assert_eq!(code, 1, "the failure stands until retried: {output}");
    assert!(
        output.contains("write_files: failed earlier for this instance"),
        "{output}"
    );
    assert_eq!(
        result_of(&s.status(&[]), "write_files"),
        "skipped",
        "a failed module is not retried by default"
    );
    let (code, _) = s.run(&[
        "--user-data",
        &write(&s, "ud", ud),
        "--instance-id",
        "iid-f",
        "--retry-failed",
    ]);
    assert_eq!(code, 1);
    assert_eq!(result_of(&s.status(&[]), "write_files"), "failed");
}

fn write(s: &Sandbox, name: &str, content: &str) -> String {
    let path = s.work.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn scripts_reboot_and_continue_with_a_cap() {
    let s = sandbox();
    let script = "#!/bin/sh\nc=\"$EGS_ROOT/var/tmp/count\"\nn=$(cat \"$c\" 2>/dev/null || echo 0)\necho $((n+1)) > \"$c\"\n[ \"$n\" -eq 0 ] && exit 1003\nexit 0\n";
    let ud = format!("Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\nContent-Type: text/x-shellscript; name=\"again.sh\"\n\n{script}\n--B\nContent-Type: text/x-shellscript; name=\"once.sh\"\n\n#!/bin/sh\necho x >> \"$EGS_ROOT/var/tmp/once\"\nexit 1001\n--B--\n");
    let path = write(&s, "ud", &ud);
    let mut boots = 0;
    let mut run = |s: &Sandbox| {
        boots += 1;
        s.boot(&path, "iid-r", &format!("boot-{boots}"))
    };
    let (code, output) = run(&s);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("reboot requested"));
    assert_eq!(s.status(&[])["status"], "reboot-pending");
    assert!(std::fs::read_to_string(
        s.root
            .join("var/lib/eryph/provisioning/sandbox-actions.log")
    )
    .unwrap()
    .contains("power reboot +0"));
    run(&s); // again.sh runs again and succeeds; once.sh runs and asks for a reboot (1001)
    let (code, _) = run(&s); // after that reboot once.sh is not run again
    assert_eq!(code, 0);
    assert_eq!(s.status(&[])["status"], "done");
    assert_eq!(
        std::fs::read_to_string(s.root.join("var/tmp/count"))
            .unwrap()
            .trim(),
        "2"
    );
    assert_eq!(
        std::fs::read_to_string(s.root.join("var/tmp/once")).unwrap(),
        "x\n"
    );

    // A script that always asks again is stopped after its cap (10 reboots, the 11th
    // request fails the module).
    let s = sandbox();
    let path = write(&s, "ud", "#!/bin/sh\nexit 1003\n");
    let mut last = String::new();
    for boot in 0..12 {
        (_, last) = s.boot(&path, "iid-cap", &format!("b{boot}"));
    }
    let status = s.status(&[]);
    assert_eq!(status["status"], "error", "{last}");
    assert!(
        status["errors"]
            .to_string()
            .contains("exceeded the per-script reboot limit (11/10)"),
        "{status}"
    );

    // A script may raise its own limit with `##egs.reboot_limit=<n>` on standard output
    // (never lower it), and sees its count and limit in EGS_REBOOT_COUNT/EGS_REBOOT_LIMIT.
    let s = sandbox();
    let path = write(
        &s,
        "ud",
        "#!/bin/sh\necho \"$EGS_REBOOT_COUNT/$EGS_REBOOT_LIMIT\" >> \"$EGS_ROOT/var/tmp/seen\"\n\
         if [ \"$EGS_REBOOT_COUNT\" = 0 ]; then echo '##egs.reboot_limit=5'; \
         else echo ' ##egs.reboot_limit = 12'; fi\nexit 1003\n",
    );
    for boot in 0..15 {
        s.boot(&path, "iid-raised", &format!("b{boot}"));
    }
    let log = std::fs::read_to_string(s.root.join("var/log/eryph/guest-services/provisioning.log"))
        .unwrap();
    assert!(
        log.contains("asked for a reboot limit of 5, below its limit of 10")
            && log.contains("raised its reboot limit from 10 to 12"),
        "{log}"
    );
    let seen = std::fs::read_to_string(s.root.join("var/tmp/seen")).unwrap();
    let seen: Vec<&str> = seen.lines().collect();
    assert_eq!(seen.len(), 13, "{seen:?}");
    assert_eq!(seen[..3], ["0/10", "1/10", "2/12"]);
    assert_eq!(seen[12], "12/12");
    let status = s.status(&[]);
    assert_eq!(status["status"], "error");
    assert!(
        status["errors"]
            .to_string()
            .contains("exceeded the per-script reboot limit (13/12)"),
        "{status}"
    );
}

#[test]
fn state_dir_moves_all_state_and_vfat_seeds_work() {
    let s = sandbox();
    let img = s.work.join("seed.img");
    let run = |cmd: &mut Process| assert!(cmd.stdout(Stdio::null()).status().unwrap().success());
    run(Process::new("mkfs.vfat")
        .args(["-C", "-n", "CIDATA"])
        .arg(&img)
        .arg("1024"));
    std::fs::write(s.work.join("meta-data"), "instance-id: iid-vfat\n").unwrap();
    std::fs::write(
        s.work.join("user-data"),
        "#cloud-config\nruncmd:\n  - echo vfat > \"$EGS_ROOT/var/tmp/vfat\"\n",
    )
    .unwrap();
    for f in ["meta-data", "user-data"] {
        run(Process::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(s.work.join(f))
            .arg(format!("::{f}")));
    }
    let state = s.work.join("elsewhere");
    let (code, output) = s.run(&[
        "--devices",
        img.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(s.read("var/tmp/vfat"), "vfat\n");
    assert!(
        state.join("state.json").exists()
            && state.join("instances/iid-vfat/sem/config_runcmd").exists()
    );
    assert!(
        !s.root.join("var/lib/eryph").exists(),
        "no state below the root when --state-dir is given"
    );
    assert_eq!(
        s.status(&["--state-dir", state.to_str().unwrap()])["status"],
        "done"
    );
    assert_eq!(s.status(&[])["status"], "not started");
}

#[test]
fn configdrive_and_azure_media() {
    let s = sandbox();
    let cd = s.seed_iso(
        "cd",
        "config-2",
        &[
            ("openstack/latest/meta_data.json", r#"{"uuid": "cd-0001", "hostname": "cd-host", "public_keys": {"k": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICd cd@x"}}"#),
            ("openstack/latest/user_data", "#cloud-config\nruncmd:\n  - echo cd > \"$EGS_ROOT/var/tmp/cd\"\n"),
        ],
    );
    let (code, output) = s.run(&["--devices", cd.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(s.read("etc/hostname"), "cd-host\n");
    assert!(s
        .read("home/debian/.ssh/authorized_keys")
        .contains("AAAAICd"));
    assert_eq!(s.read("var/tmp/cd"), "cd\n");

    let s = sandbox();
    let xml = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../egs-datasource/tests/ovf-env.xml"
    ))
    .unwrap();
    let az = s.seed_iso("az", "rd_rdfe_stable", &[("ovf-env.xml", &xml)]);
    std::fs::create_dir_all(s.root.join("sys/class/dmi/id")).unwrap();
    std::fs::write(
        s.root.join("sys/class/dmi/id/product_uuid"),
        "5B2E7C0A-1D3F-4E5A-8B6C-7D8E9F0A1B2C\n",
    )
    .unwrap();
    let (code, output) = s.run(&["--devices", az.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(
        s.read("etc/passwd").contains("azureuser:x:"),
        "the ovf-env user is the default user"
    );
    assert!(s
        .read("home/azureuser/.ssh/authorized_keys")
        .contains("AAAAkey azure"));
    assert_eq!(
        s.read("etc/hostname"),
        "from-custom-data\n",
        "CustomData is the user-data"
    );
    let shadow = s.read("etc/shadow");
    assert!(
        shadow.lines().any(|l| l.starts_with("azureuser:$6$")),
        "password set, not locked"
    );
    assert!(!output.contains("s3cret!"));
}

#[test]
fn dry_run_changes_nothing_then_reset_and_collect_logs() {
    let s = sandbox();
    let ud = write(
        &s,
        "ud",
        "#cloud-config\nhostname: planned\nruncmd:\n  - touch \"$EGS_ROOT/var/tmp/ran\"\n",
    );
    let before: Vec<PathBuf> = {
        let mut v = Vec::new();
        walk(&s.root, &mut v);
        v
    };
    let (code, plan) = s.run(&["--user-data", &ud, "--instance-id", "iid-d", "--dry-run"]);
    assert_eq!(code, 0, "{plan}");
    assert!(
        plan.contains("instance: iid-d (new)")
            && plan.contains("users_groups")
            && plan.contains("PerInstance   run"),
        "{plan}"
    );
    let mut after = Vec::new();
    walk(&s.root, &mut after);
    assert_eq!(before, after, "a dry run writes nothing");

    assert_eq!(s.run(&["--user-data", &ud, "--instance-id", "iid-d"]).0, 0);
    let (_, plan) = s.run(&["--user-data", &ud, "--instance-id", "iid-d", "--dry-run"]);
    assert!(plan.contains("skip (already done)"), "{plan}");

    let zip = s.work.join("logs.zip");
    let out = Command::cargo_bin("egs-service")
        .unwrap()
        .args(["collect-logs", "--root"])
        .arg(&s.root)
        .arg(&zip)
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = Process::new("python3")
        .args([
            "-c",
            "import zipfile,sys; print(sorted(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(&zip)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("state.json")
            && listing.contains("logs/provisioning.log")
            && !listing.contains("user-data"),
        "{listing}"
    );

    let out = Command::cargo_bin("egs-service")
        .unwrap()
        .args(["reset", "--root"])
        .arg(&s.root)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Removed 3 item(s)."),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(s.status(&[])["status"], "not started");
    std::fs::remove_file(s.root.join("var/tmp/ran")).unwrap();
    assert_eq!(s.run(&["--user-data", &ud, "--instance-id", "iid-d"]).0, 0);
    assert!(
        s.root.join("var/tmp/ran").exists(),
        "after reset per-instance modules run again"
    );
}

/// Bridge mode with Debian's real cloud-init (`.ci/run` installs it): linked into the
/// sandbox it is "installed"; EGS then mirrors instead of provisioning, until cloud-init
/// is disabled.
#[test]
fn bridge_mode_defers_to_an_enabled_cloud_init() {
    let s = sandbox();
    std::fs::create_dir_all(s.root.join("usr/bin")).unwrap();
    // The machine's cloud-init, "installed" in the sandbox (a link to /usr/bin/cloud-init
    // would resolve inside the sandbox root, to itself).
    let wrapper = s.root.join("usr/bin/cloud-init");
    std::fs::write(&wrapper, "#!/bin/sh\nexec /usr/bin/cloud-init \"$@\"\n").unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let iso = s.seed_iso(
        "seed",
        "cidata",
        &[
            ("meta-data", "instance-id: iid-b\n"),
            (
                "user-data",
                "#cloud-config\nruncmd:\n  - touch \"$EGS_ROOT/var/tmp/ran\"\n",
            ),
        ],
    );
    let kvp = s.work.join("kvp");
    std::fs::create_dir_all(&kvp).unwrap();
    std::fs::write(kvp.join(".kvp_pool_1"), b"").unwrap();
    let out = Command::cargo_bin("egs-service")
        .unwrap()
        .arg("--kvp-dir")
        .arg(&kvp)
        .args(["run", "--root"])
        .arg(&s.root)
        .args(["--devices", iso.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("bridge mode"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!s.root.join("var/tmp/ran").exists(), "nothing provisioned");
    // `status` shows cloud-init's progress (this machine's cloud-init has not run: running).
    let status = s.status(&[]);
    assert_eq!(
        (status["datasource"].as_str(), status["status"].as_str()),
        (Some("cloud-init (bridge mode)"), Some("running")),
        "{status}"
    );
    std::fs::create_dir_all(s.root.join("etc/cloud")).unwrap();
    std::fs::write(s.root.join("etc/cloud/cloud-init.disabled"), "").unwrap();
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(
        s.root.join("var/tmp/ran").exists(),
        "with cloud-init disabled EGS provisions"
    );
}

/// The agent's KVP reporting read back with `egs-service kvp`: start/finish events for every
/// stage and module, earlier boots' events swept, the state key at `completed`; the 26.x
/// key style carries the SMBIOS VM id and durations.
#[test]
fn kvp_events_and_state_for_every_stage_and_module() {
    for six in [false, true] {
        let s = sandbox();
        let kvp = s.work.join("kvp");
        std::fs::create_dir_all(&kvp).unwrap();
        std::fs::write(kvp.join(".kvp_pool_1"), b"").unwrap();
        let egs = |args: &[&str]| {
            Command::cargo_bin("egs-service")
                .unwrap()
                .arg("--kvp-dir")
                .arg(&kvp)
                .args(args)
                .output()
                .unwrap()
        };
        assert!(egs(&[
            "kvp",
            "set",
            "CLOUD_INIT|1000|start|init-local|0d200cb2-57d6-4858-889a-8c2682ffcbbe",
            "{\"name\":\"old\",\"type\":\"start\",\"ts\":\"x\",\"msg\":\"\"}"
        ])
        .status
        .success());
        std::fs::create_dir_all(s.root.join("sys/class/dmi/id")).unwrap();
        std::fs::write(
            s.root.join("sys/class/dmi/id/product_uuid"),
            "5B2E7C0A-1D3F-4E5A-8B6C-7D8E9F0A1B2C\n",
        )
        .unwrap();
        let ud = write(
            &s,
            "ud",
            "#cloud-config\nwrite_files:\n  - path: /etc/x\n    owner: ghost\n",
        );
        let mut args = vec![
            "run",
            "--root",
            s.root.to_str().unwrap(),
            "--user-data",
            &ud,
            "--instance-id",
            "iid-k",
        ];
        if six {
            args.extend(["--kvp-key-style", "six-field"]);
        }
        assert_eq!(
            egs(&args).status.code(),
            Some(1),
            "write_files fails on purpose"
        );
        let events: Value =
            serde_json::from_slice(&egs(&["kvp", "events", "--json"]).stdout).unwrap();
        let events = events.as_array().unwrap();
        assert!(
            events.iter().all(|e| e["name"] != "old"),
            "earlier boots' events are swept"
        );
        let names: Vec<String> = events
            .iter()
            .map(|e| {
                format!(
                    "{} {}",
                    e["type"].as_str().unwrap(),
                    e["name"].as_str().unwrap()
                )
            })
            .collect();
        for stage in ["init-network", "modules-config", "modules-final"] {
            assert!(
                names.contains(&format!("start {stage}"))
                    && names.contains(&format!("finish {stage}")),
                "{names:?}"
            );
        }
        assert!(names.contains(&"start init-network/config-users_groups".to_string()));
        let failed = events
            .iter()
            .find(|e| e["name"] == "init-network/config-write_files" && e["type"] == "finish")
            .unwrap();
        assert_eq!(failed["result"], "FAIL");
        assert!(failed["message"]
            .as_str()
            .unwrap()
            .contains("unknown user 'ghost'"));
        if six {
            let raw = String::from_utf8(egs(&["kvp", "list"]).stdout).unwrap();
            assert!(
                raw.contains("|5b2e7c0a-1d3f-4e5a-8b6c-7d8e9f0a1b2c|"),
                "six-field keys carry the VM id"
            );
            assert!(failed["duration"].as_f64().is_some(), "{failed}");
        } else {
            assert!(failed["duration"].is_null());
        }
        let state =
            String::from_utf8(egs(&["kvp", "get", "eryph.provisioning.state"]).stdout).unwrap();
        assert_eq!(state.trim(), "failed");
    }
}

/// A sandbox that is a whole system (here: a static busybox as /bin/sh) runs user scripts
/// inside it via chroot, so they change the sandbox and never the host.
#[test]
fn scripts_run_inside_a_whole_system_root() {
    let s = sandbox();
    std::fs::create_dir_all(s.root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", s.root.join("bin/busybox"))
        .expect("busybox-static (.ci/run installs it)");
    std::os::unix::fs::symlink("busybox", s.root.join("bin/sh")).unwrap();
    let marker = format!("egs-inside-{}", std::process::id());
    let ud = write(
        &s,
        "ud",
        &format!(
            "#cloud-config\nruncmd:\n  - echo \"$EGS_ROOT $INSTANCE_ID\" > /var/tmp/{marker}\n"
        ),
    );
    let (code, output) = s.run(&["--user-data", &ud, "--instance-id", "iid-chroot"]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(s.read(&format!("var/tmp/{marker}")), "/ iid-chroot\n");
    assert!(
        !Path::new(&format!("/var/tmp/{marker}")).exists(),
        "nothing on the host"
    );
}

/// growpart and resizefs find the disk and partition under / through the root's mountinfo
/// and /sys/dev/block (here the sandbox's own, as a VM with /dev/vda1 would have them) and,
/// in a sandbox, record the commands instead of running them.
#[test]
fn growpart_and_resizefs_resolve_the_root_device() {
    let s = sandbox();
    std::fs::create_dir_all(s.root.join("proc/self")).unwrap();
    std::fs::write(s.root.join("proc/self/mountinfo"), "22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n30 22 0:5 / /dev rw - devtmpfs udev rw\n").unwrap();
    let part = s.root.join("sys/devices/pci0000:00/virtio2/block/vda/vda1");
    std::fs::create_dir_all(&part).unwrap();
    std::fs::write(part.join("partition"), "1\n").unwrap();
    std::fs::create_dir_all(s.root.join("sys/dev/block")).unwrap();
    // Relative, as sysfs's own links are (a sandbox resolves links inside its root).
    std::os::unix::fs::symlink(
        "../../devices/pci0000:00/virtio2/block/vda/vda1",
        s.root.join("sys/dev/block/253:1"),
    )
    .unwrap();
    let ud = write(
        &s,
        "ud",
        "#cloud-config\ngrowpart:\n  mode: auto\n  devices: ['/', /dev/nvme0n1p3]\n",
    );
    let (code, output) = s.run(&["--user-data", &ud, "--instance-id", "iid-g"]);
    assert_eq!(code, 0, "{output}");
    let actions = std::fs::read_to_string(
        s.root
            .join("var/lib/eryph/provisioning/sandbox-actions.log"),
    )
    .unwrap();
    assert!(actions.contains("disk growpart /dev/vda 1\n"), "{actions}");
    assert!(
        actions.contains("disk growpart /dev/nvme0n1 3\n"),
        "{actions}"
    );
    assert!(actions.contains("disk resize2fs /dev/vda1\n"), "{actions}");
    std::fs::write(s.root.join("etc/growroot-disabled"), "").unwrap();
    std::fs::remove_file(
        s.root
            .join("var/lib/eryph/provisioning/sandbox-actions.log"),
    )
    .unwrap();
    s.run(&["--user-data", &ud, "--instance-id", "iid-g"]);
    let actions = std::fs::read_to_string(
        s.root
            .join("var/lib/eryph/provisioning/sandbox-actions.log"),
    )
    .unwrap_or_default();
    assert!(
        !actions.contains("growpart"),
        "growroot-disabled stops growpart: {actions}"
    );
}

/// egs-provisioning.json names the devices to probe, the datasources and their order, and
/// the default user's name; a malformed file is reported and the defaults used.
#[test]
fn settings_file_devices_datasource_list_and_default_user() {
    let s = sandbox();
    let nocloud = s.seed_iso(
        "nc",
        "cidata",
        &[
            ("meta-data", "instance-id: iid-nc\n"),
            ("user-data", "#cloud-config\nusers: [default]\n"),
        ],
    );
    let cd = s.seed_iso(
        "cd",
        "config-2",
        &[
            ("openstack/latest/meta_data.json", r#"{"uuid": "iid-cd"}"#),
            (
                "openstack/latest/user_data",
                "#cloud-config\nusers: [default]\n",
            ),
        ],
    );
    let settings = s
        .root
        .join("etc/opt/eryph/guest-services/egs-provisioning.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        &settings,
        format!("// devices and order come from here\n{{\"dataSources\": {{\"devices\": [\"{}\", \"{}\"], \"dataSourceList\": [\"ConfigDrive\", \"NoCloud\"]}}, \"defaultUser\": {{\"name\": \"admin\"}}}}\n", nocloud.display(), cd.display()),
    )
    .unwrap();
    let (code, output) = s.run(&[]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        s.status(&[])["instance_id"],
        "iid-cd",
        "ConfigDrive first, as listed"
    );
    assert!(
        s.read("etc/passwd").contains("admin:x:"),
        "the default user is named by the settings"
    );
    std::fs::write(&settings, "{ not json").unwrap();
    let (code, _) = s.run(&["--devices", nocloud.to_str().unwrap()]);
    assert_eq!(code, 0, "defaults are used");
    let status = s.status(&[]);
    assert_eq!(status["extended_status"], "degraded done");
    assert!(
        status["errors"]
            .to_string()
            .contains("egs-provisioning.json"),
        "a malformed settings file is reported"
    );
    let out = Command::cargo_bin("egs-service")
        .unwrap()
        .args(["status", "--root"])
        .arg(&s.root)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "recoverable errors: exit 2, as cloud-init status"
    );
}

/// The remaining modules end to end: chpasswd (hash and clear text, expiry), ssh_pwauth,
/// timezone, a boothook with INSTANCE_ID, power_state (recorded in a sandbox), and --stage.
#[test]
fn passwords_timezone_boothook_power_state_and_single_stages() {
    let s = sandbox();
    let ud = "Content-Type: multipart/mixed; boundary=B\nMIME-Version: 1.0\n\n--B\nContent-Type: text/cloud-config\n\n#cloud-config\nusers: [default, {name: dave}]\nchpasswd:\n  expire: true\n  users:\n    - {name: dave, password: 'plain-secret-1', type: text}\n    - {name: debian, password: '$6$rounds=5000$abcdefghijklmnop$Ld7fG7s0c3GhK6ZxA8QfQ2yN0d9hBv3JmPqRk4zXw1tYuV6sE2aW5cD8fH0jL3nM9pO1qR4sT7uV0wX3yZ6bC.'}\nssh_pwauth: true\ntimezone: Europe/Vienna\npower_state:\n  mode: poweroff\n  delay: '+2'\n--B\nContent-Type: text/cloud-boothook\n\n#cloud-boothook\n#!/bin/sh\necho \"hook $INSTANCE_ID\" >> \"$EGS_ROOT/var/tmp/boothook\"\n--B--\n";
    let ud = write(&s, "ud", ud);
    let (code, output) = s.run(&[
        "--user-data",
        &ud,
        "--instance-id",
        "iid-m",
        "--stage",
        "local",
    ]);
    assert_eq!(code, 0, "{output}");
    assert!(
        !s.root.join("var/tmp/boothook").exists(),
        "--stage local runs only the local stage"
    );
    let after_local = s.status(&[]);
    assert_eq!(
        after_local["stages_done"],
        serde_json::json!(["init-local"])
    );
    assert_eq!(
        after_local["status"], "running",
        "running until the last stage has run, as cloud-init"
    );
    for stage in ["network", "config", "final"] {
        let (code, output) = s.run(&[
            "--user-data",
            &ud,
            "--instance-id",
            "iid-m",
            "--stage",
            stage,
        ]);
        assert_eq!(code, 0, "{stage}: {output}");
    }
    // The stages ran in four invocations; the state keeps every stage's record and every
    // module's, with its start and duration.
    let status = s.status(&[]);
    assert_eq!(status["status"], "done", "{status}");
    let stages: Vec<&str> = status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages,
        [
            "init-local",
            "init-network",
            "modules-config",
            "modules-final"
        ]
    );
    let module = |name: &str| {
        status["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {status}"))
            .clone()
    };
    for (name, stage) in [
        ("apply_network_config", "init-local"),
        ("users_groups", "init-network"),
        ("runcmd", "modules-config"),
        ("scripts_user", "modules-final"),
    ] {
        let m = module(name);
        assert_eq!(m["stage"], stage);
        let stage_record =
            &status["stages"].as_array().unwrap()[stages.iter().position(|s| *s == stage).unwrap()];
        let (started, duration) = (
            m["started"].as_f64().unwrap(),
            m["duration"].as_f64().unwrap(),
        );
        let (stage_start, stage_duration) = (
            stage_record["started"].as_f64().unwrap(),
            stage_record["duration"].as_f64().unwrap(),
        );
        assert!(
            started >= stage_start && started + duration <= stage_start + stage_duration + 1e-3,
            "{name} lies within {stage}: {m} {stage_record}"
        );
    }
    let long = Command::cargo_bin("egs-service")
        .unwrap()
        .args(["status", "--long", "--root"])
        .arg(&s.root)
        .output()
        .unwrap();
    let long = String::from_utf8_lossy(&long.stdout);
    assert!(
        long.lines()
            .any(|l| l.starts_with("modules-config  @") && l.contains(" +"))
            && long.lines().any(|l| l.trim_start().starts_with("runcmd")
                && l.contains("done")
                && l.contains(" +")),
        "{long}"
    );
    let shadow = s.read("etc/shadow");
    let field = |user: &str, n: usize| {
        shadow
            .lines()
            .find(|l| l.starts_with(&format!("{user}:")))
            .unwrap()
            .split(':')
            .nth(n)
            .unwrap()
            .to_string()
    };
    assert!(field("dave", 1).starts_with("$6$") && !output.contains("plain-secret-1"));
    assert_eq!(field("debian", 1), "$6$rounds=5000$abcdefghijklmnop$Ld7fG7s0c3GhK6ZxA8QfQ2yN0d9hBv3JmPqRk4zXw1tYuV6sE2aW5cD8fH0jL3nM9pO1qR4sT7uV0wX3yZ6bC.");
    assert_eq!(
        (field("dave", 2), field("debian", 2)),
        ("0".to_string(), "0".to_string()),
        "expire: true makes the password change on next login"
    );
    assert_eq!(
        s.read("etc/ssh/sshd_config.d/50-cloud-init.conf"),
        "PasswordAuthentication yes\n"
    );
    assert_eq!(s.read("etc/timezone"), "Europe/Vienna\n");
    assert_eq!(
        std::fs::read_link(s.root.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/Europe/Vienna")
    );
    assert_eq!(s.read("var/tmp/boothook"), "hook iid-m\n");
    let actions = std::fs::read_to_string(
        s.root
            .join("var/lib/eryph/provisioning/sandbox-actions.log"),
    )
    .unwrap();
    assert!(actions.contains("power poweroff +2"), "{actions}");
    assert_eq!(
        s.status(&[])["stages_done"],
        serde_json::json!([
            "init-local",
            "init-network",
            "modules-config",
            "modules-final"
        ])
    );
}

impl Sandbox {
    /// A network interface in the sandbox's `/sys/class/net` (a physical one has `device`).
    fn nic(&self, name: &str, mac: &str) {
        let dir = self.root.join("sys/class/net").join(name);
        std::fs::create_dir_all(dir.join("device")).unwrap();
        std::fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
        std::fs::write(dir.join("carrier"), "1\n").unwrap();
    }

    /// Makes the sandbox look like it has this network stack installed.
    fn install(&self, files: &[&str]) {
        for file in files {
            let path = self.root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
    }

    fn mode(&self, path: &str) -> u32 {
        std::fs::metadata(self.root.join(path)).unwrap().mode() & 0o7777
    }
}

fn module_message(status: &Value, module: &str) -> String {
    status["modules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == module)
        .and_then(|m| m["message"].as_str())
        .unwrap_or_default()
        .to_string()
}

const NETWORK_CONFIG_V2: &str = "network:
  version: 2
  ethernets:
    lan:
      match: {macaddress: '52:54:00:AA:00:01'}
      set-name: lan0
      addresses: [192.0.2.10/24, '2001:db8::10/64']
      routes: [{to: default, via: 192.0.2.1}]
      nameservers: {addresses: [192.0.2.53], search: [example.test]}
";

#[test]
fn network_config_is_rendered_before_networking_once_per_instance_and_bad_input_loses_nothing() {
    let s = sandbox();
    s.nic("ens3", "52:54:00:aa:00:01");
    s.install(&["usr/sbin/netplan"]);
    let seed = |name: &str, iid: &str, network_config: &str| {
        s.seed_iso(
            name,
            "cidata",
            &[
                ("meta-data", &format!("instance-id: {iid}\n")),
                (
                    "user-data",
                    &format!("#cloud-config\nhostname: {iid}-host\n"),
                ),
                ("network-config", network_config),
            ],
        )
    };
    let iso = seed("one", "iid-one", NETWORK_CONFIG_V2);
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap(), "--stage", "local"]);
    assert_eq!(code, 0, "{output}");
    let status = s.status(&[]);
    assert_eq!(
        result_of(&status, "apply_network_config"),
        "done",
        "{status}"
    );
    assert_eq!(
        result_of(&status, "set_hostname"),
        "",
        "the local stage ran alone"
    );
    let netplan = s.read("etc/netplan/50-cloud-init.yaml");
    // The document is netplan's own format: passed through under `network:`.
    let expected = Process::new(common::binary("egs-service"))
        .args(["net-convert", "-k", "yaml", "-O", "netplan", "-p"])
        .arg(s.work.join("one-src/network-config"))
        .arg("-d")
        .arg(s.work.join("expected"))
        .status()
        .unwrap();
    assert!(expected.success());
    assert_eq!(
        netplan,
        std::fs::read_to_string(s.work.join("expected/etc/netplan/50-cloud-init.yaml")).unwrap()
    );
    assert!(
        netplan.contains("set-name: lan0") && netplan.contains("to: default"),
        "{netplan}"
    );
    assert_eq!(
        s.mode("etc/netplan/50-cloud-init.yaml"),
        0o600,
        "netplan file is root's only"
    );
    let actions = s.read("var/lib/eryph/provisioning/sandbox-actions.log");
    assert!(
        actions.contains("netplan generate\n"),
        "netplan generate follows (recorded in a sandbox): {actions}"
    );

    // The rest of the stages; the network module is per instance and does not run again.
    std::fs::write(
        s.root.join("etc/netplan/50-cloud-init.yaml"),
        "edited by hand\n",
    )
    .unwrap();
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(s.read("etc/netplan/50-cloud-init.yaml"), "edited by hand\n");
    assert_eq!(s.read("etc/hostname"), "iid-one-host\n");

    // A new instance with a wrong address: the module fails naming the key, the file of
    // the last good configuration stays, and every other module still runs.
    std::fs::write(s.root.join("etc/netplan/50-cloud-init.yaml"), &netplan).unwrap();
    let bad = NETWORK_CONFIG_V2.replace("192.0.2.10/24", "192.0.2.300/24");
    let iso = seed("two", "iid-two", &bad);
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_ne!(code, 0, "{output}");
    let status = s.status(&[]);
    assert_eq!(
        result_of(&status, "apply_network_config"),
        "failed",
        "{status}"
    );
    let message = module_message(&status, "apply_network_config");
    assert!(
        message.contains("NoCloud network-config: ethernets.lan.addresses[0]: '192.0.2.300/24' is not a valid IP network"),
        "{message}"
    );
    assert_eq!(s.read("etc/netplan/50-cloud-init.yaml"), netplan);
    assert_eq!(s.read("etc/hostname"), "iid-two-host\n");
    assert_eq!(result_of(&status, "set_hostname"), "done", "{status}");

    // As the boot units run it: the local stage alone, then the rest. The local stage's
    // failure still makes the status `error` once the last stage has run.
    let iso = seed("three", "iid-three", &bad);
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap(), "--stage", "local"]);
    assert_ne!(code, 0, "{output}");
    let (code, output) = s.run(&[
        "--devices",
        iso.to_str().unwrap(),
        "--stage",
        "network,config,final",
    ]);
    assert_eq!(code, 0, "its own stages went well: {output}");
    let status = s.status(&[]);
    assert_eq!(status["status"], "error", "{status}");
    assert_eq!(
        result_of(&status, "apply_network_config"),
        "failed",
        "{status}"
    );
    assert!(
        status["errors"].as_array().unwrap().iter().any(|e| e
            .as_str()
            .unwrap()
            .starts_with("apply_network_config: NoCloud network-config")),
        "{status}"
    );
}

#[test]
fn configdrive_network_data_for_networkd_and_the_dhcp_fallback_for_ifupdown() {
    // ConfigDrive's network_data.json, links named through the system's MACs, on a
    // system with systemd-networkd.
    let s = sandbox();
    s.nic("ens3", "fa:16:3e:00:00:01");
    s.nic("ens4", "fa:16:3e:00:00:02");
    s.install(&["lib/systemd/systemd-networkd"]);
    let network_data = r#"{
      "links": [
        {"id": "tap-a", "type": "ovs", "ethernet_mac_address": "FA:16:3E:00:00:01", "mtu": 1450},
        {"id": "tap-b", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:02"},
        {"id": "vlan-7", "type": "vlan", "vlan_link": "tap-b", "vlan_id": 7, "vlan_mac_address": "fa:16:3e:00:00:02"}
      ],
      "networks": [
        {"id": "n1", "link": "tap-a", "type": "ipv4", "ip_address": "198.51.100.5", "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "198.51.100.1"}]},
        {"id": "n2", "link": "vlan-7", "type": "ipv4_dhcp"}
      ],
      "services": [{"type": "dns", "address": "198.51.100.53"}]
    }"#;
    let cd = s.seed_iso(
        "cd",
        "config-2",
        &[
            ("openstack/latest/meta_data.json", r#"{"uuid": "cd-net"}"#),
            ("openstack/latest/network_data.json", network_data),
        ],
    );
    let (code, output) = s.run(&["--devices", cd.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    let dir = "etc/systemd/network";
    let ens3 = s.read(&format!("{dir}/10-cloud-init-ens3.network"));
    // Matched by the permanent MAC alone, so it applies before and after a rename.
    assert!(!ens3.contains("Name="), "{ens3}");
    for line in [
        "PermanentMACAddress=fa:16:3e:00:00:01",
        "MTUBytes=1450",
        "Address=198.51.100.5/24",
        "Destination=0.0.0.0/0",
        "Gateway=198.51.100.1",
        "DNS=198.51.100.53",
    ] {
        assert!(ens3.lines().any(|l| l == line), "{line} missing:\n{ens3}");
    }
    let vlan = s.read(&format!("{dir}/10-cloud-init-ens4.7.network"));
    assert!(vlan.contains("DHCP=ipv4"), "{vlan}");
    assert!(s
        .read(&format!("{dir}/10-cloud-init-ens4.7.netdev"))
        .contains("Kind=vlan\n"));
    assert_eq!(
        s.read(&format!("{dir}/10-cloud-init-ens4.network.d/50-egs.conf")),
        "[Network]\nVLAN=ens4.7\n"
    );
    assert_eq!(s.mode(&format!("{dir}/10-cloud-init-ens3.network")), 0o644);

    // No network-config at all, on a system with ifupdown: DHCP on the first interface.
    let s = sandbox();
    s.nic("eth1", "52:54:00:00:00:02");
    s.nic("eth0", "52:54:00:00:00:01");
    s.install(&["sbin/ifup", "etc/network/interfaces"]);
    let iso = s.seed_iso(
        "seed",
        "cidata",
        &[("meta-data", "instance-id: iid-fallback\n")],
    );
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    let eni = s.read("etc/network/interfaces.d/50-cloud-init");
    assert!(eni.contains("\nauto eth0\niface eth0 inet dhcp\n"), "{eni}");
    assert!(!eni.contains("eth1"), "{eni}");
    assert_eq!(
        s.read("etc/udev/rules.d/70-persistent-net.rules"),
        "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"?*\", ATTR{address}==\"52:54:00:00:00:01\", NAME=\"eth0\"\n"
    );

    // The file header's promise: a cloud.cfg.d file with `network: {config: disabled}`.
    let s = sandbox();
    s.nic("eth0", "52:54:00:00:00:01");
    s.install(&["usr/sbin/netplan"]);
    std::fs::create_dir_all(s.root.join("etc/cloud/cloud.cfg.d")).unwrap();
    std::fs::write(
        s.root
            .join("etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"),
        "network: {config: disabled}\n",
    )
    .unwrap();
    let iso = s.seed_iso(
        "seed",
        "cidata",
        &[
            ("meta-data", "instance-id: iid-off\n"),
            ("network-config", NETWORK_CONFIG_V2),
        ],
    );
    let (code, output) = s.run(&["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{output}");
    assert!(!s.root.join("etc/netplan").exists());
    assert_eq!(result_of(&s.status(&[]), "apply_network_config"), "done");
}

/// `status --wait` waits while provisioning has not started (as `cloud-init status --wait`)
/// and returns the result once the run is over; `--timeout` gives up with exit 3.
#[test]
fn status_wait_waits_for_a_run_that_has_not_started() {
    let s = sandbox();
    let timed_out = Process::new(common::binary("egs-service"))
        .args([
            "status",
            "--wait",
            "--timeout",
            "0.5",
            "--format",
            "json",
            "--root",
        ])
        .arg(&s.root)
        .output()
        .unwrap();
    assert_eq!(timed_out.status.code(), Some(3));
    assert_eq!(
        serde_json::from_slice::<Value>(&timed_out.stdout).unwrap()["status"],
        "not started"
    );
    let waiter = Process::new(common::binary("egs-service"))
        .args(["status", "--wait", "--format", "json", "--root"])
        .arg(&s.root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ud = write(&s, "ud", "#cloud-config\nhostname: waited-for\n");
    let (code, output) = s.run(&["--user-data", &ud, "--instance-id", "iid-w"]);
    assert_eq!(code, 0, "{output}");
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (status["status"].as_str(), status["instance_id"].as_str()),
        (Some("done"), Some("iid-w")),
        "{status}"
    );
}

/// A cloud-config part that is not YAML: the run goes on (cloud-init skips the part) and
/// the status names the part and the position, once, as `validate` does.
#[test]
fn broken_cloud_config_is_named_by_part_and_position() {
    let s = sandbox();
    let ud = write(&s, "ud", "#cloud-config\nusers: [\n  - name: x\n");
    let (code, output) = s.run(&["--user-data", &ud, "--instance-id", "iid-y"]);
    assert_eq!(code, 0, "{output}");
    let status = s.status(&[]);
    assert_eq!(status["extended_status"], "degraded done", "{status}");
    assert_eq!(
        status["errors"][0].as_str().unwrap(),
        "user-data part 1 (part-001), line 3, column 3: invalid YAML: \"-\" is only valid inside a block; part ignored"
    );
}

/// The boot units run `run --if-enabled`: with `ProvisioningEnabled=0` in
/// `service-control.conf` nothing is provisioned and no state is written; without the flag
/// an operator's own `run` still provisions.
#[test]
fn if_enabled_honours_provisioning_enabled() {
    let s = sandbox();
    let conf = s.root.join("etc/opt/eryph/guest-services");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("service-control.conf"), "ProvisioningEnabled=0\n").unwrap();
    let ud = write(&s, "ud", "#cloud-config\nhostname: gated\n");
    let (code, output) = s.run(&["--user-data", &ud, "--if-enabled"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("provisioning is disabled"), "{output}");
    assert_eq!(s.status(&[])["status"], "not started");
    let (code, output) = s.run(&["--user-data", &ud]);
    assert_eq!(code, 0, "{output}");
    assert_eq!(s.read("etc/hostname"), "gated\n");
}

/// Issue 16: symbolic links in a sandbox image are followed inside the root. With
/// `etc/link -> <outside dir>` (absolute, as images hold `/var/run -> /run`), write_files,
/// the authorized_keys of a user whose home is a link, and the network files all land below
/// the root; the directory outside stays empty.
#[test]
fn links_in_the_root_never_lead_writes_outside_it() {
    let s = sandbox();
    let outside = s.work.join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, s.root.join("etc/link")).unwrap();
    std::fs::create_dir_all(s.root.join("home")).unwrap();
    std::os::unix::fs::symlink(&outside, s.root.join("home/linky")).unwrap();
    std::os::unix::fs::symlink("../../../../../../../..", s.root.join("etc/up")).unwrap();
    let ud = write(
        &s,
        "links.yaml",
        "#cloud-config\nwrite_files:\n  - path: /etc/link/f\n    content: inside\n  - path: /etc/up/etc/g\n    content: also inside\nusers:\n  - name: linky\n    homedir: /home/linky\n    no_create_home: true\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKlinky linky@x]\n",
    );
    let (code, out) = s.run(&["--user-data", &ud]);
    assert_eq!(code, 0, "{out}");
    let mut leaked = Vec::new();
    walk(&outside, &mut leaked);
    assert!(leaked.is_empty(), "written outside the root: {leaked:?}");
    let inside = s.root.join(outside.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(inside.join("f")).unwrap(), "inside");
    assert_eq!(s.read("etc/g"), "also inside");
    assert!(std::fs::read_to_string(inside.join(".ssh/authorized_keys"))
        .unwrap()
        .contains("linky@x"));
}
