//! What the end-to-end tests share: a sandbox root that shadow-utils can work on, the
//! workspace's binaries, and running one of them for its exit code and output.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Makes `root` a minimal Debian-like root: passwd/group/shadow/gshadow with root and the
/// administrative groups, os-release, and the directories provisioning writes to.
pub fn sandbox_root(root: &Path) {
    for d in ["etc/ssh", "home", "var/tmp"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    for (path, content) in [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"),
        (
            "etc/group",
            "root:x:0:\nadm:x:4:\nsudo:x:27:\nusers:x:100:\n",
        ),
        ("etc/shadow", "root:*:19000:0:99999:7:::\n"),
        ("etc/gshadow", "root:*::\nadm:*::\nsudo:*::\nusers:*::\n"),
        ("etc/os-release", "ID=debian\n"),
    ] {
        std::fs::write(root.join(path), content).unwrap();
    }
    for secret in ["etc/shadow", "etc/gshadow"] {
        std::fs::set_permissions(root.join(secret), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
}

/// A workspace binary. This package's own binary comes from Cargo; another package's
/// binary (egs-tool) is not built by `cargo test` unless that package has integration
/// tests, so it is built here once per test process, which also keeps it from being stale.
pub fn binary(name: &str) -> PathBuf {
    if name == "egs-service" {
        return PathBuf::from(env!("CARGO_BIN_EXE_egs-service"));
    }
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        // The profile of this test executable (a benchmark runs as a release test).
        let release = (!cfg!(debug_assertions)).then_some("--release");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", name, "--bin", name])
            .args(release)
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p {name} failed");
        built.push(name.to_string());
    }
    // Test executables live in target/<profile>/deps, binaries in target/<profile>.
    let profile_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Starts an `egs-service` daemon on `listen` with its configuration in `<dir>/conf`
/// (provisioning off) and empty KVP pool files in `<dir>/kvp`, `HOME` = `dir`; waits until
/// it listens and returns it with the target it printed.
pub fn start_daemon(dir: &Path, listen: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let (conf, kvp) = (dir.join("conf"), dir.join("kvp"));
    for d in [&conf, &kvp] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(kvp.join(".kvp_pool_0"), b"").unwrap();
    std::fs::write(kvp.join(".kvp_pool_1"), b"").unwrap();
    std::fs::write(conf.join("service-control.conf"), "ProvisioningEnabled=0\n").unwrap();
    let mut daemon = std::process::Command::new(binary("egs-service"))
        .arg("--kvp-dir")
        .arg(&kvp)
        .args(["--listen", listen, "--config-dir"])
        .arg(&conf)
        .env("HOME", dir)
        .env("SHELL", "/bin/bash")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(daemon.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let target = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the daemon said {line:?}"))
        .to_string();
    (daemon, target)
}

/// Runs `command` to completion: its exit code, and its stdout followed by its stderr.
pub fn code_and_output(command: &mut std::process::Command) -> (i32, String) {
    let out = command.output().unwrap();
    (
        out.status.code().unwrap(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
