//! `egs-service serve` with the real OpenSSH client, over a Unix socket (ProxyCommand with
//! socat) and loopback TCP: exec with stdout, stderr, exit status, stdin to EOF and large
//! output; only user `egs` with an authorized, unexpired key gets in.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
}

fn start(listen: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    keygen(&dir.path().join("client"));
    keygen(&dir.path().join("stranger"));
    let public = std::fs::read_to_string(dir.path().join("client.pub")).unwrap();
    std::fs::write(
        conf.join("id_egs.pub"),
        format!("# the host's key\n{public}"),
    )
    .unwrap();
    let listen = listen.replace("SOCK", &dir.path().join("sock").display().to_string());
    let kvp = dir.path().join("kvp");
    std::fs::create_dir_all(&kvp).unwrap();
    std::fs::write(kvp.join(".kvp_pool_0"), b"").unwrap();
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("egs-service"))
        .arg("--kvp-dir")
        .arg(&kvp)
        .args(["serve", "--listen", &listen, "--config-dir"])
        .arg(&conf)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    Server {
        child,
        dir,
        address,
    }
}

impl Server {
    fn ssh_config(&self, key: &str, extra: &str) -> PathBuf {
        let proxy = match self.address.strip_prefix("unix:") {
            Some(path) => format!("ProxyCommand socat - UNIX-CONNECT:{path}"),
            None => {
                let (host, port) = self
                    .address
                    .trim_start_matches("tcp:")
                    .rsplit_once(':')
                    .unwrap();
                format!("HostName {host}\n  Port {port}")
            }
        };
        let config = self.dir.path().join(format!("ssh_config-{key}"));
        std::fs::write(
            &config,
            format!("Host vm\n  User egs\n  IdentityFile {}\n  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n  {proxy}\n{extra}", self.dir.path().join(key).display()),
        )
        .unwrap();
        config
    }

    fn ssh(&self, key: &str, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
        let mut child = Command::new("ssh")
            .arg("-F")
            .arg(self.ssh_config(key, ""))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // From a thread: writing everything before reading would deadlock on full pipes.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        (
            out.status.code().unwrap_or(-1),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn exercise(server: &Server) {
    let (code, out, err) = server.ssh("client", &["vm", "echo out; echo err >&2; exit 3"], b"");
    assert_eq!(
        (code, out.as_slice(), err.trim()),
        (3, &b"out\n"[..], "err")
    );
    let (code, out, _) = server.ssh("client", &["vm", "cat; echo end"], b"from stdin\n");
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"from stdin\nend\n"[..]),
        "stdin reaches the command and EOF ends it"
    );
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (code, out, _) = server.ssh("client", &["vm", "cat"], &data);
    assert_eq!(code, 0);
    assert!(
        out == data,
        "3 MB through stdin and stdout arrive unchanged"
    );
    let (code, out, _) = server.ssh("client", &["vm", "head -c 8000000 /dev/zero"], b"");
    assert_eq!(
        (code, out.len()),
        (0, 8_000_000),
        "large output arrives whole"
    );
    let (code, _, err) = server.ssh("client", &["root@vm", "true"], b"");
    assert_eq!(code, 255, "only user egs");
    assert!(err.contains("Permission denied"), "{err}");
    let (code, _, _) = server.ssh("stranger", &["vm", "true"], b"");
    assert_eq!(code, 255, "unknown keys are refused");
    let password = server.ssh_config(
        "client",
        "  PreferredAuthentications password,keyboard-interactive\n",
    );
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&password)
        .args(["vm", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(255),
        "no password or keyboard-interactive"
    );
}

#[test]
fn exec_over_a_unix_socket() {
    let server = start("unix:SOCK");
    exercise(&server);
    // Keys are read on every attempt: an expired entry no longer lets the client in.
    let public = std::fs::read_to_string(server.dir.path().join("client.pub")).unwrap();
    std::fs::write(
        server.dir.path().join("conf/id_egs.pub"),
        format!("expiry-time=\"20200101\" {public}"),
    )
    .unwrap();
    assert_eq!(server.ssh("client", &["vm", "true"], b"").0, 255, "expired");
    std::fs::write(
        server.dir.path().join("conf/id_egs.pub"),
        format!("expiry-time=\"20991231\" {public}"),
    )
    .unwrap();
    assert_eq!(
        server.ssh("client", &["vm", "true"], b"").0,
        0,
        "not yet expired"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.dir.path().join("conf/private/egs_host_key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn exec_over_loopback_tcp_and_non_loopback_is_refused() {
    let server = start("tcp:127.0.0.1:0");
    exercise(&server);
    let out = Command::new(assert_cmd::cargo::cargo_bin("egs-service"))
        .args([
            "serve",
            "--listen",
            "tcp:0.0.0.0:2222",
            "--config-dir",
            "/nonexistent",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

/// Client keys delivered through the KVP key slots (External pool) are honoured, read on
/// every attempt, with expiry-time; removing the slot removes access.
#[test]
fn keys_from_the_kvp_key_slots() {
    let server = start("unix:SOCK");
    let stranger = std::fs::read_to_string(server.dir.path().join("stranger.pub")).unwrap();
    assert_eq!(server.ssh("stranger", &["vm", "true"], b"").0, 255);
    let egs = |args: &[&str]| {
        let out = Command::new(assert_cmd::cargo::cargo_bin("egs-service"))
            .arg("--kvp-dir")
            .arg(server.dir.path().join("kvp"))
            .arg("kvp")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    egs(&[
        "set",
        "--pool",
        "0",
        "eryph:guest-services:client-public-key:operator",
        stranger.trim(),
    ]);
    assert_eq!(
        server.ssh("stranger", &["vm", "echo via-kvp"], b"").1,
        b"via-kvp\n"
    );
    egs(&[
        "set",
        "--pool",
        "0",
        "eryph:guest-services:client-public-key:operator",
        &format!("expiry-time=\"20200101\" {}", stranger.trim()),
    ]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "expired"
    );
    egs(&[
        "set",
        "--pool",
        "0",
        "eryph:guest-services:client-public-key",
        stranger.trim(),
    ]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        0,
        "the legacy slot"
    );
    egs(&[
        "delete",
        "--pool",
        "0",
        "eryph:guest-services:client-public-key",
    ]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "removed"
    );
}
