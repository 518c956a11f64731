//! `egs-tool` against a running `egs-service` daemon on a Unix socket and loopback TCP:
//! the machine key, the generated ssh config used by the real `ssh`, the proxy, transfers
//! of files and trees (temp name then rename, --overwrite), status, the shell override,
//! errors a person can act on, and the Firecracker hybrid-vsock handshake through a relay.
//!
//! Linux only: the OpenSSH client and a Unix-socket daemon are the peers.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

/// `egs-tool ARGS` for a host user whose home is `home` (its files under `home` alone).
fn tool_as(home: &Path, args: &[&str]) -> (i32, String) {
    common::code_and_output(
        Command::new(common::binary("egs-tool"))
            .env("HOME", home)
            .env_remove("EGS_TOOL_HOME")
            .env_remove("XDG_DATA_HOME")
            .args(args),
    )
}

/// A daemon and a host user (own HOME) with an initialized egs-tool.
struct Setup {
    daemon: Child,
    dir: tempfile::TempDir,
    target: String,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Setup {
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn tool(&self, args: &[&str]) -> (i32, String) {
        tool_as(&self.home(), args)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out) = self.tool(args);
        assert_eq!(code, 0, "egs-tool {args:?}: {out}");
        out
    }

    /// The real ssh with only the generated configuration.
    fn ssh(&self, host: &str, command: &str) -> (i32, String) {
        common::code_and_output(
            Command::new("timeout")
                .args(["60", "ssh", "-F"])
                .arg(self.home().join(".ssh/config"))
                .args(["-o", "BatchMode=yes", host, command]),
        )
    }
}

/// Starts the daemon on `listen` (`SOCK`: a socket in the test directory), creates the
/// machine key and authorizes it in the guest.
fn setup(listen: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("home")).unwrap();
    let conf = dir.path().join("conf");
    let listen = listen.replace("SOCK", &dir.path().join("sock").display().to_string());
    let (daemon, target) = common::start_daemon(dir.path(), &listen);
    let setup = Setup {
        daemon,
        dir,
        target,
    };
    let out = setup.ok(&["initialize"]);
    assert!(out.contains("Created the SSH key"), "{out}");
    assert!(setup.ok(&["initialize"]).contains("already exists"));
    let key = setup
        .home()
        .join(".local/share/eryph/guest-services/private/id_egs");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(key.parent().unwrap()), 0o700);
    let public = setup.ok(&["get-ssh-key"]);
    assert!(
        public.starts_with("ssh-ed25519 ") && !public.ends_with('\n'),
        "{public:?}"
    );
    std::fs::write(conf.join("id_egs.pub"), format!("{public}\n")).unwrap();
    setup
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)[..64].to_string()
}

#[test]
fn ssh_config_and_proxy_over_unix_and_tcp() {
    for listen in ["unix:SOCK", "tcp:127.0.0.1:0"] {
        let s = setup(listen);
        // A config the user already has stays, below the managed block.
        std::fs::create_dir_all(s.home().join(".ssh")).unwrap();
        std::fs::write(s.home().join(".ssh/config"), "Host mine\n    User me\n").unwrap();
        let out = s.ok(&["add-ssh-config", &s.target, "web"]);
        assert!(out.contains("ssh web"), "{out}");
        let (code, out) = s.ssh("web", "echo via-proxy; exit 4");
        assert_eq!((code, out.trim()), (4, "via-proxy"), "{listen}");
        let canonical = out_line(&s.ok(&["add-ssh-config", &s.target, "web"]), ".alt");
        let (code, out) = s.ssh(&canonical, "true");
        assert_eq!(code, 0, "{canonical}: {out}");
        let config = std::fs::read_to_string(s.home().join(".ssh/config")).unwrap();
        assert_eq!(
            config.matches(egs_marker()).count(),
            2,
            "one block, updated in place:\n{config}"
        );
        assert!(config.ends_with("Host mine\n    User me\n"), "{config}");
        // A second guest takes the alias over.
        let other = s.dir.path().join("other.sock");
        s.ok(&[
            "add-ssh-config",
            &format!("unix:{}", other.display()),
            "web",
        ]);
        let vm_d = s.home().join(".local/share/eryph/guest-services/ssh/vm.d");
        let mine = std::fs::read_to_string(vm_d.join(format!("{canonical}.config"))).unwrap();
        assert!(
            mine.contains(&format!("Host {canonical}\n")),
            "alias swept:\n{mine}"
        );
        // A broken block is reported and left alone.
        let broken = format!("{}\nInclude x\nHost mine\n", egs_marker());
        std::fs::write(s.home().join(".ssh/config"), &broken).unwrap();
        let (code, out) = s.tool(&["add-ssh-config", &s.target]);
        assert_ne!(code, 0);
        assert!(out.contains("broken eryph guest services block"), "{out}");
        assert_eq!(
            std::fs::read_to_string(s.home().join(".ssh/config")).unwrap(),
            broken
        );
        let (code, out) = s.tool(&["add-ssh-config", &s.target, "bad alias!"]);
        assert_eq!(code, 2);
        assert!(
            out.contains("only contain") && !out.contains("bad alias!"),
            "{out}"
        );
    }
}

fn egs_marker() -> &'static str {
    "# ------ eryph guest services ------"
}

fn out_line(out: &str, containing: &str) -> String {
    out.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("ssh ")
                .filter(|h| h.contains(containing))
        })
        .unwrap()
        .to_string()
}

/// Files and trees both ways with identical content, empty directories, symlinks and
/// unicode names; --overwrite; status.
#[test]
fn transfers_and_status() {
    let s = setup("unix:SOCK");
    let d = s.dir.path();
    let guest = d.join("guest");
    std::fs::create_dir_all(&guest).unwrap();
    // 1 GiB, as users move disk images and archives.
    let big = d.join("big.bin");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 1073741824 /dev/urandom > '{}'",
            big.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let remote = guest.join("big.bin").display().to_string();
    s.ok(&[
        "upload-file",
        &s.target,
        &big.display().to_string(),
        &remote,
    ]);
    assert_eq!(sha256(&guest.join("big.bin")), sha256(&big));
    let big_back = d.join("big-back.bin");
    s.ok(&[
        "download-file",
        &s.target,
        &remote,
        &big_back.display().to_string(),
    ]);
    assert_eq!(sha256(&big_back), sha256(&big));
    std::fs::remove_file(&big_back).unwrap();
    let medium = d.join("medium.bin");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 5000000 '{}' > '{}'",
            big.display(),
            medium.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // Exists: refused (exit 3) and unchanged; --overwrite replaces.
    std::fs::write(d.join("small"), "small").unwrap();
    let (code, out) = s.tool(&[
        "upload-file",
        &s.target,
        &d.join("small").display().to_string(),
        &remote,
    ]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("--overwrite"), "{out}");
    assert_eq!(sha256(&guest.join("big.bin")), sha256(&big));
    s.ok(&[
        "upload-file",
        &s.target,
        &d.join("small").display().to_string(),
        &remote,
        "--overwrite",
    ]);
    assert_eq!(
        std::fs::read_to_string(guest.join("big.bin")).unwrap(),
        "small"
    );
    let back = d.join("back/small");
    s.ok(&[
        "download-file",
        &s.target,
        &remote,
        &back.display().to_string(),
    ]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "small");
    let (code, _) = s.tool(&[
        "download-file",
        &s.target,
        &remote,
        &back.display().to_string(),
    ]);
    assert_eq!(code, 3, "local file exists");
    let (code, out) = s.tool(&[
        "download-file",
        &s.target,
        &guest.join("nope").display().to_string(),
        &d.join("nope").display().to_string(),
    ]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("does not exist in the guest"), "{out}");
    assert!(!d.join("nope").exists());
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("egs-download"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A tree with an empty directory, a symlink and unicode names.
    let tree = d.join("tree");
    std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
    std::fs::write(tree.join("sub/ünïcödé ✓.txt"), "unicode").unwrap();
    std::fs::copy(&medium, tree.join("big.bin")).unwrap();
    std::os::unix::fs::symlink("sub/ünïcödé ✓.txt", tree.join("link")).unwrap();
    let up = guest.join("tree").display().to_string();
    s.ok(&[
        "upload-directory",
        &s.target,
        &tree.display().to_string(),
        &up,
        "--recursive",
    ]);
    let down = d.join("tree-back");
    s.ok(&[
        "download-directory",
        &s.target,
        &up,
        &down.display().to_string(),
        "--recursive",
    ]);
    for root in [guest.join("tree"), down.clone()] {
        assert_eq!(
            std::fs::read_to_string(root.join("sub/ünïcödé ✓.txt")).unwrap(),
            "unicode"
        );
        assert!(root.join("sub/empty").is_dir(), "{}", root.display());
        assert_eq!(
            std::fs::read_link(root.join("link")).unwrap(),
            Path::new("sub/ünïcödé ✓.txt")
        );
        assert_eq!(sha256(&root.join("big.bin")), sha256(&medium));
    }
    // Every downloaded file took its name: no temporary name is left in the tree.
    let mut dirs = vec![down.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!name.contains("egs-download"), "{}", entry.path().display());
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    // Without --recursive only the top level comes.
    let flat = d.join("flat");
    s.ok(&[
        "download-directory",
        &s.target,
        &up,
        &flat.display().to_string(),
    ]);
    assert!(flat.join("big.bin").exists() && !flat.join("sub").exists());

    let status = s.ok(&["get-status", &s.target]);
    assert!(status.contains("Guest services: available"), "{status}");
    assert!(
        status.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["get-status", &s.target, "--json"])).unwrap();
    assert_eq!(json["status"], "available");
}

/// An upload killed half-way leaves nothing under the target name.
#[test]
fn interrupted_upload_leaves_no_target() {
    let s = setup("unix:SOCK");
    let d = s.dir.path();
    let big = d.join("big.bin");
    std::fs::write(&big, vec![7u8; 256 * 1024 * 1024]).unwrap();
    let target = d.join("guest-big.bin");
    let mut upload = Command::new(common::binary("egs-tool"))
        .env("HOME", s.home())
        .args(["upload-file", &s.target])
        .arg(&big)
        .arg(&target)
        .spawn()
        .unwrap();
    // Kill it once the temporary file has started to grow.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let temp = std::fs::read_dir(d).unwrap().flatten().find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".guest-big.bin.egs-upload-")
        });
        if temp.is_some_and(|t| t.metadata().unwrap().len() > 1024 * 1024) {
            break;
        }
        assert!(Instant::now() < deadline, "the upload never started");
        assert!(
            upload.try_wait().unwrap().is_none(),
            "the upload finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    upload.kill().unwrap();
    upload.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!target.exists(), "no file under the target name");
}

/// Errors a person can act on, each with its own exit code.
#[test]
fn errors_say_what_to_do() {
    let s = setup("unix:SOCK");
    let d = s.dir.path();
    let (code, out) = s.tool(&[
        "get-status",
        &format!("unix:{}", d.join("absent.sock").display()),
    ]);
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("cannot reach") && out.contains("is the VM running"),
        "{out}"
    );
    // Something listens, but it is not the guest service.
    let impostor = std::os::unix::net::UnixListener::bind(d.join("impostor.sock")).unwrap();
    std::thread::spawn(move || {
        for mut c in impostor.incoming().flatten() {
            let _ = c.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        }
    });
    let (code, out) = s.tool(&[
        "get-status",
        &format!("unix:{}", d.join("impostor.sock").display()),
    ]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("not as the EGS guest service"), "{out}");
    // The guest no longer trusts this machine's key.
    std::fs::write(d.join("conf/id_egs.pub"), "").unwrap();
    let (code, out) = s.tool(&["get-status", &s.target]);
    assert_eq!(code, 6, "{out}");
    assert!(out.contains("get-ssh-key"), "{out}");
    let (code, out) = s.tool(&["get-status", "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"]);
    assert_eq!(code, 2);
    assert!(out.contains("Windows host"), "{out}");
    let home = tempfile::tempdir().unwrap();
    let (code, out) = common::code_and_output(
        Command::new(common::binary("egs-tool"))
            .env("HOME", home.path())
            .args(["get-ssh-key"]),
    );
    assert_eq!(code, 1);
    assert!(
        out.contains("Have you run the initialize command?"),
        "{out}"
    );
}

/// The shell override through KVP (pool files here) reaches the next session; get-data.
#[test]
fn shell_override_and_kvp_data() {
    let s = setup("unix:SOCK");
    let kvp = s.dir.path().join("kvp").display().to_string();
    s.ok(&[
        "--kvp-dir",
        &kvp,
        "set-shell",
        &s.target,
        "--command",
        "/bin/sh",
    ]);
    s.ok(&["add-ssh-config", &s.target, "vm"]);
    assert_eq!(s.ssh("vm", "echo $0").1.trim(), "/bin/sh");
    s.ok(&["--kvp-dir", &kvp, "set-shell", &s.target, "--reset"]);
    assert_eq!(s.ssh("vm", "echo $0").1.trim(), "/bin/bash");
    let data: serde_json::Value =
        serde_json::from_str(&s.ok(&["--kvp-dir", &kvp, "get-data", &s.target, "--json"])).unwrap();
    assert_eq!(data["guest"]["eryph:guest-services:status"], "available");
    assert!(data["external"].as_object().unwrap().is_empty());
    let members: Vec<&String> = data.as_object().unwrap().keys().collect();
    assert_eq!(
        members,
        ["external", "guest", "guest_intrinsic", "host_only"]
    );
    let text = s.ok(&["--kvp-dir", &kvp, "get-data", &s.target]);
    let features = text.lines().nth(1).unwrap();
    assert!(
        text.starts_with("Guest data\n  eryph:guest-services:features ")
            && features.ends_with("  shell-override"),
        "sorted by key, aligned: {text}"
    );
    assert!(
        text.contains("\n\nExternal data\n  no data\n\nHost-only data\n  no data"),
        "{text}"
    );
    // get-status from KVP, as on a Hyper-V host (§3.9).
    let status = s.ok(&["--kvp-dir", &kvp, "get-status", &s.target]);
    assert!(
        status.starts_with("Guest services: available\nVersion: "),
        "{status}"
    );
    let empty = s.dir.path().join("no-kvp");
    let status = s.ok(&[
        "--kvp-dir",
        empty.to_str().unwrap(),
        "get-status",
        &s.target,
        "--json",
    ]);
    assert_eq!(
        status.trim_end(),
        r#"{"provisioning":null,"status":"unknown","version":null}"#
    );
    // add-ssh-config pushes the machine key into the VM's KVP slots (§4.2): the guest
    // authorizes it from there when its own file no longer lists it.
    let out = s.ok(&["--kvp-dir", &kvp, "add-ssh-config", &s.target, "vm"]);
    assert!(
        out.contains(
            "eryph:guest-services:client-public-key, eryph:guest-services:client-public-key:"
        ),
        "{out}"
    );
    std::fs::write(s.dir.path().join("conf/id_egs.pub"), "").unwrap();
    assert_eq!(s.ssh("vm", "echo through-kvp").1.trim(), "through-kvp");
    let data: serde_json::Value =
        serde_json::from_str(&s.ok(&["--kvp-dir", &kvp, "get-data", &s.target, "--json"])).unwrap();
    let key = s.ok(&["get-ssh-key"]);
    assert_eq!(
        data["external"]["eryph:guest-services:client-public-key"],
        key.as_str()
    );
    assert_eq!(data["external"].as_object().unwrap().len(), 2, "{data}");
    let (code, out) = s.tool(&[
        "--kvp-dir",
        &kvp,
        "set-shell",
        &s.target,
        "--reset",
        "--command",
        "/bin/sh",
    ]);
    assert_eq!(code, 2, "{out}");
}

/// Firecracker / cloud-hypervisor: egs-tool speaks `CONNECT 5002` to the VMM's socket; a
/// relay stands in for the VMM and forwards to the daemon's socket.
#[test]
fn firecracker_hybrid_vsock() {
    let s = setup("unix:SOCK");
    let guest_socket = PathBuf::from(s.target.strip_prefix("unix:").unwrap());
    let vmm = s.dir.path().join("fc.vsock");
    let listener = std::os::unix::net::UnixListener::bind(&vmm).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let guest_socket = guest_socket.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut client = client;
                if line != "CONNECT 5002\n" {
                    let _ = client.write_all(b"FAILURE\n");
                    return;
                }
                let guest = std::os::unix::net::UnixStream::connect(&guest_socket).unwrap();
                client.write_all(b"OK 1073741824\n").unwrap();
                let (mut to_guest, mut from_guest) = (guest.try_clone().unwrap(), guest);
                let mut to_client = client.try_clone().unwrap();
                let up = std::thread::spawn(move || {
                    // Streaming, and with whatever the reader already buffered.
                    let _ = std::io::copy(&mut reader, &mut to_guest);
                    let _ = to_guest.shutdown(std::net::Shutdown::Write);
                });
                let _ = std::io::copy(&mut from_guest, &mut to_client);
                let _ = up.join();
            });
        }
    });
    let target = format!("fc:{}", vmm.display());
    let status = s.ok(&["get-status", &target]);
    assert!(status.contains("Guest services: available"), "{status}");
    s.ok(&["add-ssh-config", &target, "fcvm"]);
    let (code, out) = s.ssh("fcvm", "echo through-the-vmm");
    assert_eq!((code, out.trim()), (0, "through-the-vmm"));
    let (code, out) = s.tool(&["get-status", &format!("fc:{}:6000", vmm.display())]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("CONNECT 6000"), "{out}");
}

/// Issue 16: a target with a newline would have written `Match exec …` into the ssh config
/// (run by every later `ssh`); it is refused and nothing is written. A `%` in a target is
/// escaped so the real `ssh` reads it back as written.
#[test]
fn ssh_config_refuses_injection_and_escapes_percent() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let tool = |args: &[&str]| tool_as(&home, args);
    assert_eq!(tool(&["initialize"]).0, 0);
    let (code, out) = tool(&[
        "add-ssh-config",
        "unix:/tmp/y\nMatch exec \"touch /tmp/egs-injected\"\n#",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("the target contains a control character"),
        "{out}"
    );
    assert!(!home.join(".ssh/config").exists(), "nothing written");

    let (code, out) = tool(&["add-ssh-config", "unix:/tmp/egs%h/s.sock", "pct"]);
    assert_eq!(code, 0, "{out}");
    // The real ssh runs the ProxyCommand: egs-tool names the socket path it was given.
    let (code, tried) = common::code_and_output(
        Command::new("timeout")
            .args(["30", "ssh", "-F"])
            .arg(home.join(".ssh/config"))
            .args(["-o", "BatchMode=yes", "pct", "true"]),
    );
    assert_ne!(code, 0);
    assert!(
        tried.contains("/tmp/egs%h/s.sock") && !tried.contains("%%"),
        "ssh passes the target on as written: {tried}"
    );
}
