//! The `egs-service` daemon with the real OpenSSH tools, over a Unix socket (ProxyCommand
//! with socat) and loopback TCP: exec (stdout, stderr, exit status, stdin to EOF, large
//! output), PTY shells driven by a terminal (tmux), `env`, shell selection, SFTP, scp,
//! rsync, port forwarding when enabled, keys from `id_egs.pub` and the KVP key slots,
//! status keys in the KVP Guest pool and systemd readiness.
//!
//! Linux only: the OpenSSH client, rsync and tmux are the peers.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub address: String,
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

/// Starts the daemon on `listen` (`SOCK` stands for a socket in the test's directory) with
/// provisioning off and `control` added to service-control.conf.
fn start(listen: &str, control: &str) -> Server {
    start_with(listen, control, &[], &[])
}

fn start_with(listen: &str, control: &str, args: &[&str], env: &[(&str, &Path)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("service-control.conf"),
        format!("ProvisioningEnabled=0\n{control}\n"),
    )
    .unwrap();
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
    std::fs::write(kvp.join(".kvp_pool_1"), b"").unwrap();
    let mut command = Command::new(common::binary("egs-service"));
    command
        .arg("--kvp-dir")
        .arg(&kvp)
        .args(["--listen", &listen, "--config-dir"])
        .arg(&conf)
        .args(args)
        .env("HOME", dir.path())
        .env("SHELL", "/bin/bash")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("daemon.log")).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
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
        self.run("ssh", key, args, input)
    }

    /// Runs an OpenSSH tool (`ssh`, `sftp`, `scp`) with this server's config; a hang ends
    /// after two minutes with status 124.
    fn run(&self, tool: &str, key: &str, args: &[&str], input: &[u8]) -> (i32, Vec<u8>, String) {
        let mut child = Command::new("timeout")
            .args(["120", tool])
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

    fn kvp(&self, args: &[&str]) -> String {
        let out = Command::new(common::binary("egs-service"))
            .arg("--kvp-dir")
            .arg(self.dir.path().join("kvp"))
            .arg("kvp")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        // SIGTERM, as systemd stops it.
        let pid = self.child.id() as i32;
        assert!(Command::new("kill")
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
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
    // More than the channel window and the pipes hold: the command's input and output
    // must flow at the same time (this hung when input waited on output).
    let data: Vec<u8> = (0..24_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let (code, out, _) = server.ssh("client", &["vm", "cat"], &data);
    assert_eq!(code, 0);
    assert!(
        out == data,
        "24 MB through stdin and stdout arrive unchanged"
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
fn exec_over_a_unix_socket_with_status_keys_and_readiness() {
    // systemd's notify socket, played by the test.
    let notify_dir = tempfile::tempdir().unwrap();
    let notify_path = notify_dir.path().join("notify");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut server = start_with("unix:SOCK", "", &[], &[("NOTIFY_SOCKET", &notify_path)]);
    let mut buf = [0u8; 64];
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"READY=1");
    // Only the daemon talks to systemd: its sessions (and provisioning commands) do not
    // inherit the socket.
    let (code, out, _) = server.ssh(
        "client",
        &["vm", "echo \"notify=${NOTIFY_SOCKET-unset}\""],
        b"",
    );
    assert_eq!(
        (code, String::from_utf8_lossy(&out).trim()),
        (0, "notify=unset")
    );
    let status = server.kvp(&["list", "--pool", "1"]);
    assert!(
        status.contains("eryph:guest-services:status=available"),
        "{status}"
    );
    assert!(
        status.contains("eryph:guest-services:features=shell-override\n"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "eryph:guest-services:version={}",
            env!("CARGO_PKG_VERSION")
        )),
        "{status}"
    );
    assert!(
        status.contains("eryph:guest-services:operating-system=Linux")
            || status.contains("eryph:guest-services:operating-system="),
        "{status}"
    );

    exercise(&server);
    // Keys are read on every attempt: an expired entry no longer lets the client in.
    let public = std::fs::read_to_string(server.dir.path().join("client.pub")).unwrap();
    let login_with = |authorized: String| {
        std::fs::write(server.dir.path().join("conf/id_egs.pub"), authorized).unwrap();
        server.ssh("client", &["vm", "true"], b"").0
    };
    assert_eq!(
        login_with(format!("expiry-time=\"20200101\" {public}")),
        255,
        "expired"
    );
    assert_eq!(
        login_with(format!("expiry-time=\"2099-12-31T00:00:00Z\" {public}")),
        0,
        "not yet expired"
    );
    assert_eq!(
        login_with(format!("expiry-time=\"whenever\" {public}")),
        255,
        "malformed expiry: refused"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.dir.path().join("conf/private/egs_host_key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    // Clients that cannot use Ed25519 get the ECDSA host key.
    std::fs::write(server.dir.path().join("conf/id_egs.pub"), &public).unwrap();
    let (code, _, err) = server.ssh(
        "client",
        &["-o", "HostKeyAlgorithms=ecdsa-sha2-nistp256", "vm", "true"],
        b"",
    );
    assert_eq!(code, 0, "ECDSA host key: {err}");
    let (code, _, _) = server.ssh(
        "client",
        &["-o", "HostKeyAlgorithms=ssh-rsa", "vm", "true"],
        b"",
    );
    assert_eq!(code, 255, "no SHA-1 RSA host key");

    let kvp = server.dir.path().join("kvp");
    let sock = server.dir.path().join("sock");
    assert!(server.stop().success(), "SIGTERM is a clean stop");
    let n = notify.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STOPPING=1");
    let out = Command::new(common::binary("egs-service"))
        .arg("--kvp-dir")
        .arg(&kvp)
        .args(["kvp", "list", "--pool", "1"])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        !status.contains("guest-services:status"),
        "status withdrawn: {status}"
    );
    assert!(
        !status.contains("guest-services:features"),
        "features withdrawn: {status}"
    );
    assert!(
        status.contains("guest-services:version="),
        "version stays: {status}"
    );
    assert!(!sock.exists(), "the socket file goes with the daemon");
}

#[test]
fn exec_over_loopback_tcp_and_non_loopback_is_refused() {
    let server = start("tcp:127.0.0.1:0", "");
    exercise(&server);
    // Each AEAD cipher an OpenSSH client may insist on (the generated configs list
    // aes128-gcm first) is served.
    for cipher in [
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
    ] {
        let (code, out, err) = server.ssh(
            "client",
            &["-o", &format!("Ciphers={cipher}"), "-v", "vm", "echo ok"],
            b"",
        );
        assert_eq!((code, out.as_slice()), (0, &b"ok\n"[..]), "{cipher}: {err}");
        assert!(
            err.contains(&format!("cipher: {cipher}")),
            "{cipher}: {err}"
        );
    }
    let out = Command::new(common::binary("egs-service"))
        .args([
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

#[test]
fn remote_access_disabled_serves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("service-control.conf"),
        "ProvisioningEnabled=0\nRemoteAccessEnabled=0\n",
    )
    .unwrap();
    let sock = dir.path().join("sock");
    let mut child = Command::new(common::binary("egs-service"))
        .arg("--kvp-dir")
        .arg(dir.path())
        .arg("--listen")
        .arg(format!("unix:{}", sock.display()))
        .arg("--config-dir")
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("remote access is disabled"), "{line}");
    assert!(!sock.exists());
    assert!(!dir.path().join("private").exists(), "no host key either");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Client keys delivered through the KVP key slots (External pool) are honoured, read on
/// every attempt, with expiry-time; removing the slot removes access; `KvpAuthEnabled=0`
/// ignores them.
#[test]
fn keys_from_the_kvp_key_slots() {
    let server = start("unix:SOCK", "");
    let stranger = std::fs::read_to_string(server.dir.path().join("stranger.pub")).unwrap();
    let slot = "eryph:guest-services:client-public-key:operator";
    assert_eq!(server.ssh("stranger", &["vm", "true"], b"").0, 255);
    server.kvp(&["set", "--pool", "0", slot, stranger.trim()]);
    assert_eq!(
        server.ssh("stranger", &["vm", "echo via-kvp"], b"").1,
        b"via-kvp\n"
    );
    let expired = format!("expiry-time=\"20200101\" {}", stranger.trim());
    server.kvp(&["set", "--pool", "0", slot, &expired]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "expired"
    );
    server.kvp(&["set", "--pool", "0", slot, "ssh-ed25519 AAAAnot-base64"]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "malformed"
    );
    let legacy = "eryph:guest-services:client-public-key";
    server.kvp(&["set", "--pool", "0", legacy, stranger.trim()]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        0,
        "the legacy slot"
    );
    server.kvp(&["delete", "--pool", "0", legacy]);
    assert_eq!(
        server.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "removed"
    );

    let off = start("unix:SOCK", "KvpAuthEnabled=0");
    off.kvp(&["set", "--pool", "0", slot, stranger.trim()]);
    let stranger_key = server.dir.path().join("stranger");
    std::fs::copy(&stranger_key, off.dir.path().join("stranger")).unwrap();
    assert_eq!(
        off.ssh("stranger", &["vm", "true"], b"").0,
        255,
        "KvpAuthEnabled=0"
    );
    assert_eq!(
        off.ssh("client", &["vm", "true"], b"").0,
        0,
        "id_egs.pub still counts"
    );
}

/// `env` (LANG/LC_* exported, others refused), the shell of exec (the KVP override, else
/// the default), and the shell of interactive sessions (KVP > client's SHELL > default).
#[test]
fn environment_and_shell_selection() {
    let server = start("unix:SOCK", "");
    let (code, out, _) = server.ssh(
        "client",
        &[
            "-o",
            "SetEnv=LANG=C.UTF-8 LC_TIME=C FOO=bar",
            "vm",
            "echo \"$LANG|$LC_TIME|$FOO|$0\"",
        ],
        b"",
    );
    assert_eq!(
        (code, String::from_utf8_lossy(&out).trim()),
        (0, "C.UTF-8|C||/bin/bash")
    );
    // An interactive shell without a PTY reads its commands from stdin.
    let shell_of = |options: &[&str]| {
        let mut args = vec!["-T"];
        args.extend_from_slice(options);
        args.push("vm");
        let (_, out, _) = server.ssh("client", &args, b"echo \"shell=$0\"\n");
        String::from_utf8_lossy(&out).trim().to_string()
    };
    assert_eq!(shell_of(&[]), "shell=/bin/bash");
    assert_eq!(
        shell_of(&["-o", "SetEnv=SHELL=/bin/sh SHELL_ARGS=-s"]),
        "shell=/bin/sh",
        "the client's SHELL"
    );
    server.kvp(&[
        "set",
        "--pool",
        "0",
        "eryph:guest-services:shell",
        "/bin/sh",
    ]);
    assert_eq!(
        shell_of(&["-o", "SetEnv=SHELL=/bin/bash"]),
        "shell=/bin/sh",
        "KVP beats the client"
    );
    let (_, out, _) = server.ssh("client", &["vm", "echo $0"], b"");
    assert_eq!(
        String::from_utf8_lossy(&out).trim(),
        "/bin/sh",
        "exec uses the KVP shell"
    );
}

fn tmux(socket: &Path, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .arg("-S")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the tmux pane shows `text`.
fn wait_for_pane(socket: &Path, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pane = tmux(socket, &["capture-pane", "-p", "-S", "-200", "-t", "t"]);
        if pane.contains(text) {
            return pane;
        }
        assert!(
            Instant::now() < deadline,
            "pane never showed {text:?}:\n{pane}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PTY shell in a real terminal (tmux): TERM and size arrive, window changes reach the
/// shell, Ctrl-C interrupts the foreground command, and the shell's exit status is ssh's.
#[test]
fn pty_shell_in_a_terminal() {
    let server = start("unix:SOCK", "");
    let config = server.ssh_config("client", "");
    let socket = server.dir.path().join("tmux");
    let result = server.dir.path().join("exit");
    let command = format!(
        "ssh -F {} -tt vm; echo $? > {}",
        config.display(),
        result.display()
    );
    tmux(
        &socket,
        &[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            &command,
        ],
    );
    let send = |keys: &str| {
        tmux(&socket, &["send-keys", "-t", "t", "-l", keys]);
        tmux(&socket, &["send-keys", "-t", "t", "Enter"]);
    };
    send("echo \"T=$TERM C=$(tput cols) R=$(tput lines) $(tty)\"");
    let pane = wait_for_pane(&socket, "/dev/pts/");
    assert!(pane.contains("C=100 R=30 /dev/pts/"), "{pane}");
    assert!(
        pane.contains("T=screen") || pane.contains("T=tmux"),
        "{pane}"
    );
    tmux(
        &socket,
        &["resize-window", "-t", "t", "-x", "120", "-y", "40"],
    );
    std::thread::sleep(Duration::from_millis(300));
    send("echo \"resized=$(tput cols)x$(tput lines)\"");
    wait_for_pane(&socket, "resized=120x40");
    send("sleep 100");
    std::thread::sleep(Duration::from_millis(500));
    tmux(&socket, &["send-keys", "-t", "t", "C-c"]);
    send("echo \"after=$? in $(pwd)\"");
    let pane = wait_for_pane(&socket, "after=130");
    assert!(
        pane.contains(&format!("after=130 in {}", server.dir.path().display())),
        "sessions start at home: {pane}"
    );
    send("exit 5");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !result.exists() || std::fs::read_to_string(&result).unwrap().is_empty() {
        assert!(Instant::now() < deadline, "ssh did not end");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        std::fs::read_to_string(&result).unwrap().trim(),
        "5",
        "the real exit status"
    );
    tmux(&socket, &["kill-server"]);
}

/// SFTP with the real `sftp`, `scp` (SFTP and legacy mode) and `rsync -e ssh`.
#[test]
fn sftp_scp_and_rsync() {
    let server = start("unix:SOCK", "");
    let d = server.dir.path();
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(d.join("local.bin"), &data).unwrap();
    let remote = d.join("remote");
    std::fs::create_dir(&remote).unwrap();
    let batch = format!(
        "mkdir {r}/dir\nput {l}/local.bin {r}/dir/up.bin\nrename {r}/dir/up.bin {r}/dir/renamed.bin\nln -s {r}/dir/renamed.bin {r}/link\nls -l {r}/dir\nget {r}/dir/renamed.bin {l}/back.bin\nchmod 600 {r}/dir/renamed.bin\nmkdir {r}/gone\nrmdir {r}/gone\n",
        r = remote.display(),
        l = d.display()
    );
    std::fs::write(d.join("batch"), batch).unwrap();
    let (code, out, err) = server.run(
        "sftp",
        "client",
        &["-b", &d.join("batch").display().to_string(), "vm"],
        b"",
    );
    assert_eq!(code, 0, "{err}\n{}", String::from_utf8_lossy(&out));
    let listing = String::from_utf8_lossy(&out);
    assert!(
        listing.contains("renamed.bin") && listing.contains("5000000"),
        "{listing}"
    );
    assert_eq!(
        sha256(&std::fs::read(d.join("back.bin")).unwrap()),
        sha256(&data)
    );
    assert_eq!(
        std::fs::read_link(remote.join("link")).unwrap(),
        remote.join("dir/renamed.bin")
    );
    let mode = std::fs::metadata(remote.join("dir/renamed.bin")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    assert!(!remote.join("gone").exists());

    // A missing remote file is an error, not an empty file.
    std::fs::write(
        d.join("batch2"),
        format!("get {}/missing {}/x\n", remote.display(), d.display()),
    )
    .unwrap();
    let (code, _, err) = server.run(
        "sftp",
        "client",
        &["-b", &d.join("batch2").display().to_string(), "vm"],
        b"",
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("not found") || err.contains("No such file"),
        "{err}"
    );

    for mode in [&[][..], &["-O"][..]] {
        let target = format!("vm:{}/scp.bin", remote.display());
        let mut args: Vec<&str> = mode.to_vec();
        let local = d.join("local.bin").display().to_string();
        args.extend([local.as_str(), target.as_str()]);
        let (code, _, err) = server.run("scp", "client", &args, b"");
        assert_eq!(code, 0, "scp {mode:?} up: {err}");
        assert_eq!(
            sha256(&std::fs::read(remote.join("scp.bin")).unwrap()),
            sha256(&data)
        );
        let down = d.join("scp-back.bin").display().to_string();
        let mut args: Vec<&str> = mode.to_vec();
        args.extend([target.as_str(), down.as_str()]);
        let (code, _, err) = server.run("scp", "client", &args, b"");
        assert_eq!(code, 0, "scp {mode:?} down: {err}");
        assert_eq!(
            sha256(&std::fs::read(d.join("scp-back.bin")).unwrap()),
            sha256(&data)
        );
        std::fs::remove_file(remote.join("scp.bin")).unwrap();
    }

    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("a/empty")).unwrap();
    std::fs::write(tree.join("a/ünïcödé.txt"), "text").unwrap();
    std::fs::write(tree.join("big.bin"), &data).unwrap();
    let out = Command::new("rsync")
        .arg("-a")
        .arg("-e")
        .arg(format!(
            "ssh -F {}",
            server.ssh_config("client", "").display()
        ))
        .arg(format!("{}/", tree.display()))
        .arg(format!("vm:{}/tree", remote.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(remote.join("tree/a/ünïcödé.txt")).unwrap(),
        "text"
    );
    assert!(remote.join("tree/a/empty").is_dir());
    assert_eq!(
        sha256(&std::fs::read(remote.join("tree/big.bin")).unwrap()),
        sha256(&data)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port that answers its first connection with `greeting`.
fn greeter(greeting: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let _ = s.write_all(greeting);
        }
    });
    port
}

/// `ssh -L` through the guest: what a connection to the forwarded port reads.
fn through_local_forward(server: &Server) -> Vec<u8> {
    let target_port = greeter(b"hello-forward");
    let local_port = free_port();
    let mut ssh = Command::new("ssh")
        .arg("-F")
        .arg(server.ssh_config("client", ""))
        .args([
            "-N",
            "-L",
            &format!("{local_port}:127.0.0.1:{target_port}"),
            "vm",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut conn = loop {
        if let Ok(c) = std::net::TcpStream::connect(("127.0.0.1", local_port)) {
            break c;
        }
        assert!(Instant::now() < deadline, "ssh -L never listened");
        std::thread::sleep(Duration::from_millis(50));
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let _ = conn.read_to_end(&mut got);
    let _ = ssh.kill();
    let _ = ssh.wait();
    got
}

#[test]
fn port_forwarding_only_when_enabled() {
    let off = start("unix:SOCK", "");
    assert_eq!(through_local_forward(&off), b"", "refused by default");
    let (code, _, err) = off.ssh(
        "client",
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            "0:127.0.0.1:9",
            "vm",
            "true",
        ],
        b"",
    );
    assert_eq!(code, 255, "-R refused by default: {err}");

    let on = start("unix:SOCK", "PortForwardingEnabled=1");
    assert_eq!(through_local_forward(&on), b"hello-forward");
    // -R: the guest listens on loopback and connections come back to the client's side.
    let target_port = greeter(b"hello-remote");
    let guest_port = free_port();
    let (code, out, err) = on.ssh(
        "client",
        &[
            "-o",
            "ExitOnForwardFailure=yes",
            "-R",
            &format!("{guest_port}:127.0.0.1:{target_port}"),
            "vm",
            &format!("exec 3<>/dev/tcp/127.0.0.1/{guest_port}; cat <&3"),
        ],
        b"",
    );
    assert_eq!((code, out.as_slice()), (0, &b"hello-remote"[..]), "{err}");
}

/// Reads from `conn` until the server closes it (or `limit` passes); what it sent.
fn until_closed(conn: &mut std::net::TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    conn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, got),
        }
    }
    (false, got)
}

fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Hostile clients over TCP: garbage and over-long banners, an absurd packet length, a
/// client stalling mid-kex and 200 connections that never authenticate. Each is closed
/// (the stallers when the login grace time runs out), the server keeps answering, memory
/// stays bounded, and a real client gets in afterwards.
#[test]
fn hostile_clients() {
    let server = start_with("tcp:127.0.0.1:0", "", &["--login-grace", "3"], &[]);
    let addr = server.address.trim_start_matches("tcp:").to_string();
    let connect = || std::net::TcpStream::connect(&addr).unwrap();
    let pid = server.child.id();
    let rss_before = memory_kib(pid, "VmRSS:");

    // Garbage instead of an SSH identification.
    let mut c = connect();
    for _ in 0..100 {
        let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n");
    }
    assert!(
        until_closed(&mut c, Duration::from_secs(10)).0,
        "garbage banner: closed"
    );
    // An identification line that never ends.
    let mut c = connect();
    let _ = c.write_all(&vec![b'S'; 1 << 20]);
    assert!(
        until_closed(&mut c, Duration::from_secs(10)).0,
        "endless banner: closed"
    );
    // A valid identification, then a 4 GiB packet length.
    let mut c = connect();
    c.write_all(b"SSH-2.0-hostile\r\n\xff\xff\xff\xf0\x00\x00\x00\x00")
        .unwrap();
    let (closed, got) = until_closed(&mut c, Duration::from_secs(10));
    assert!(closed, "oversized packet: closed");
    assert!(
        got.starts_with(b"SSH-2.0-"),
        "the server identified itself first"
    );
    // A client that stops in the middle of key exchange: a KEXINIT's first bytes only.
    let mut stalled = connect();
    stalled
        .write_all(b"SSH-2.0-stall\r\n\x00\x00\x01\x00\x0a\x14abc")
        .unwrap();

    // 200 connections that never authenticate.
    let mut flood: Vec<std::net::TcpStream> = (0..200).map(|_| connect()).collect();
    std::thread::sleep(Duration::from_millis(500));
    // The server still answers at once: a banner, or a close when the slots are full.
    let started = Instant::now();
    let mut probe = connect();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = [0u8; 8];
    let answered = probe.read(&mut buf);
    assert!(
        answered.is_ok() || started.elapsed() < Duration::from_secs(5),
        "responsive: {answered:?}"
    );
    let rss_flood = memory_kib(pid, "VmRSS:");
    assert!(
        rss_flood < rss_before + 64 * 1024,
        "memory bounded under the flood: {rss_before} KiB -> {rss_flood} KiB"
    );
    // The login grace time ends every staller.
    let (closed, _) = until_closed(&mut stalled, Duration::from_secs(15));
    assert!(
        closed,
        "a client stalled mid-kex is dropped (evicted by the flood, or at its deadline)"
    );
    // The flood itself made room by evicting its oldest members (the staller among them);
    // the newest 32 end with the grace time, which has not necessarily passed yet.
    let mut open = 0;
    for c in &mut flood {
        if !until_closed(c, Duration::from_secs(10)).0 {
            open += 1;
        }
    }
    assert_eq!(
        open, 0,
        "every unauthenticated connection is gone after the grace time"
    );
    drop(flood);
    let (code, out, err) = server.ssh("client", &["vm", "echo still-serving"], b"");
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"still-serving\n"[..]),
        "{err}"
    );
    let peak = memory_kib(pid, "VmHWM:");
    eprintln!("daemon memory: {rss_before} KiB idle, {rss_flood} KiB under 200 connections, peak {peak} KiB");
}

/// Input a process leaves unread is bounded per channel and per connection: 20 sessions
/// multiplexed over one OpenSSH connection each send 16 MiB to a command that reads
/// nothing for 3 s. The daemon holds a few MiB, not the 320 MiB sent, and every byte
/// arrives once the commands read. Holding input back never stalls a command that writes
/// before it reads.
#[test]
fn unread_input_is_bounded_and_nothing_is_lost() {
    let server = start("tcp:127.0.0.1:0", "");
    let pid = server.child.id();
    let input = vec![b'i'; 10 * 1024 * 1024];
    let (code, out, err) = server.ssh(
        "client",
        &["vm", "head -c 20000000 /dev/zero; wc -c"],
        &input,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.len(), 20_000_000 + "10485760\n".len());
    assert!(
        out.ends_with(b"\x0010485760\n"),
        "the command read all its input"
    );
    let control = server.dir.path().join("mux");
    let config = server.ssh_config("client", &format!("  ControlPath {}\n", control.display()));
    let master = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-o", "ControlMaster=yes", "-N", "-f", "vm"])
        .status()
        .unwrap();
    assert!(master.success());
    let rss_before = memory_kib(pid, "VmRSS:");
    const SENT: usize = 16 * 1024 * 1024;
    let sessions: Vec<_> = (0..20)
        .map(|_| {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut child = Command::new("timeout")
                    .args(["120", "ssh", "-F"])
                    .arg(&config)
                    .args(["vm", "sleep 3; wc -c"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                let writer = std::thread::spawn(move || {
                    let _ = stdin.write_all(&vec![b'z'; SENT]);
                });
                let out = child.wait_with_output().unwrap();
                writer.join().unwrap();
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
        })
        .collect();
    for session in sessions {
        assert_eq!(
            session.join().unwrap(),
            SENT.to_string(),
            "every byte arrives"
        );
    }
    let peak = memory_kib(pid, "VmHWM:");
    let _ = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["-O", "exit", "vm"])
        .output();
    eprintln!(
        "daemon memory: {rss_before} KiB before, peak {peak} KiB with 320 MiB of unread input sent"
    );
    assert!(
        peak < rss_before + 48 * 1024,
        "unread input held in memory: {rss_before} KiB -> peak {peak} KiB"
    );
}

/// paramiko asks for the `ssh-userauth` service again before each attempt, which russh
/// does not answer: after a refused key the daemon ends the connection at once, with the
/// reason in the log, instead of leaving paramiko waiting for the login grace time (30 s).
/// Given only the egs key, paramiko logs in and runs a command.
#[test]
fn paramiko_logs_in_and_fails_fast_after_a_refused_key() {
    let server = start("tcp:127.0.0.1:0", "");
    let port = server.address.rsplit(':').next().unwrap();
    let script = r#"
import sys, time, paramiko
port, keys = int(sys.argv[1]), sys.argv[2:]
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
started = time.monotonic()
try:
    client.connect("127.0.0.1", port=port, username="egs", key_filename=keys,
                   look_for_keys=False, allow_agent=False, timeout=10, auth_timeout=60)
    _, out, _ = client.exec_command("echo hello from egs")
    print("ok", out.read().decode().strip())
except paramiko.AuthenticationException as e:
    print("refused after %.1f s: %s" % (time.monotonic() - started, e))
"#;
    let paramiko = |keys: &[&str]| {
        let mut command = Command::new("python3");
        command.args(["-c", script, port]);
        for key in keys {
            command.arg(server.dir.path().join(key));
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(paramiko(&["client"]), "ok hello from egs");
    let refused = paramiko(&["stranger", "client"]);
    let seconds: f64 = refused
        .strip_prefix("refused after ")
        .and_then(|r| r.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{refused}"));
    assert!(
        seconds < 10.0,
        "failed fast, not at the grace time: {refused}"
    );
    let log = std::fs::read_to_string(server.dir.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("the client (paramiko) asked for the ssh-userauth service again"),
        "{log}"
    );
}

/// RSA client keys work with the real OpenSSH client, which signs with SHA-2 because our
/// `server-sig-algs` leaves out `ssh-rsa` (it will not even offer SHA-1 to us, so the
/// refusal of `ssh-rsa` signatures is tested in-process in `egs_ssh::server`).
#[test]
fn rsa_client_keys_work_with_openssh() {
    let server = start("tcp:127.0.0.1:0", "");
    let rsa = server.dir.path().join("rsa");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", ""])
        .arg("-f")
        .arg(&rsa)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    std::fs::write(
        server.dir.path().join("conf/id_egs.pub"),
        std::fs::read_to_string(rsa.with_extension("pub")).unwrap(),
    )
    .unwrap();
    let (code, out, err) = server.ssh("rsa", &["vm", "echo in"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"in\n"[..]), "rsa-sha2: {err}");
}

/// Issue 16: the audit trail names the peer, the key (by fingerprint) and where it was
/// authorized, refusals with their reason, and sessions by kind — never a command's text
/// or key material.
#[test]
fn connections_logins_refusals_and_sessions_are_audited() {
    let mut server = start("tcp:127.0.0.1:0", "");
    let (code, _, err) = server.ssh("client", &["vm", "echo secret-token-123 >/dev/null"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(server.ssh("stranger", &["vm", "true"], b"").0, 255);
    let (code, _, _) = server.run("sftp", "client", &["-b", "-", "vm"], b"ls\n");
    assert_eq!(code, 0);
    assert!(server.stop().success());
    let log = std::fs::read_to_string(server.dir.path().join("daemon.log")).unwrap();
    let fingerprint = |key: &str| {
        let out = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(server.dir.path().join(format!("{key}.pub")))
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let conf = server.dir.path().join("conf/id_egs.pub");
    for needle in [
        "connection accepted".to_string(),
        "peer=tcp:127.0.0.1:".to_string(),
        format!("fingerprint={}", fingerprint("client")),
        format!("source={}", conf.display()),
        "authenticated as egs".to_string(),
        format!("fingerprint={}", fingerprint("stranger")),
        "key refused: key not authorized (not in id_egs.pub or a KVP key slot)".to_string(),
        "kind=\"exec\"".to_string(),
        "kind=\"sftp\"".to_string(),
        "session started".to_string(),
        "session closed".to_string(),
        "connection closed after login".to_string(),
    ] {
        assert!(log.contains(&needle), "{needle} not in the log:\n{log}");
    }
    assert!(
        !log.contains("secret-token-123"),
        "a command's text was logged:\n{log}"
    );
    let private = std::fs::read_to_string(server.dir.path().join("client")).unwrap();
    let body: String = private.lines().nth(1).unwrap().chars().take(40).collect();
    assert!(!log.contains(&body), "key material was logged");
    let public = std::fs::read_to_string(server.dir.path().join("client.pub")).unwrap();
    let blob = public.split_whitespace().nth(1).unwrap();
    assert!(
        !log.contains(blob),
        "the public key blob was logged instead of its fingerprint"
    );
}

/// Issue 16: opening a FIFO over SFTP used to block the daemon (a blocking open on an
/// async worker). Now non-regular files are refused at once, the SFTP session runs on a
/// thread of its own, and other clients are served meanwhile.
#[test]
fn a_fifo_over_sftp_is_refused_and_stops_nobody() {
    let server = start("tcp:127.0.0.1:0", "");
    let fifo = server.dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    let (code, _, err) = server.run(
        "sftp",
        "client",
        &["-b", "-", "vm"],
        format!(
            "get {} {}\n",
            fifo.display(),
            server.dir.path().join("copy").display()
        )
        .as_bytes(),
    );
    assert_ne!(code, 0, "the FIFO was served");
    assert_ne!(code, 124, "sftp hung on the FIFO");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let (code, out, err) = server.ssh("client", &["vm", "echo served"], b"");
    assert_eq!((code, out.as_slice()), (0, &b"served\n"[..]), "{err}");
}

/// Issue 16: 32 idle pre-auth connections used to lock every client out for the login grace
/// time. Now, with 300 idle connections and 32 that stall in the middle of key exchange
/// held open (all from the same peer, as every host connection is), a real login still
/// succeeds at once: newcomers take the places of the oldest connections still in key
/// exchange, and the operator's client is past key exchange before the flood can evict it.
#[test]
fn a_real_login_succeeds_during_a_connection_flood() {
    let server = start("tcp:127.0.0.1:0", "");
    let addr = server.address.trim_start_matches("tcp:").to_string();
    let connect = || std::net::TcpStream::connect(&addr).unwrap();
    let mut held: Vec<std::net::TcpStream> = (0..300).map(|_| connect()).collect();
    for _ in 0..32 {
        let mut slow = connect();
        slow.write_all(b"SSH-2.0-slowloris\r\n\x00\x00\x01\x00\x0a\x14abc")
            .unwrap();
        held.push(slow);
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (code, out, err) = server.ssh("client", &["vm", "echo through"], b"");
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"through\n"[..]),
        "login during the flood: {err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the login waited {:?}",
        started.elapsed()
    );
    drop(held);
}

/// Issue 16: SFTP names that are not UTF-8 were decoded lossily, so removing `victim\xff`
/// removed `victim\u{FFFD}`. Such names are now refused and both files stay.
#[test]
fn non_utf8_sftp_names_never_stand_for_another_file() {
    use std::os::unix::ffi::OsStrExt;
    let server = start("tcp:127.0.0.1:0", "");
    let dir = server.dir.path().join("names");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join(std::ffi::OsStr::from_bytes(b"victim\xff"));
    let lookalike = dir.join("victim\u{FFFD}");
    std::fs::write(&raw, "raw").unwrap();
    std::fs::write(&lookalike, "lookalike").unwrap();
    let mut batch = b"rm ".to_vec();
    batch.extend_from_slice(raw.as_os_str().as_bytes());
    batch.push(b'\n');
    let (code, _, err) = server.run("sftp", "client", &["-b", "-", "vm"], &batch);
    // OpenSSH's sftp shows only the status ("Failure"), not the server's message.
    assert_ne!(code, 0, "the rm was not refused: {err}");
    assert!(raw.exists() && lookalike.exists(), "a file was removed");
}
