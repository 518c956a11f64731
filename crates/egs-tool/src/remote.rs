//! The commands that reach a guest's SSH channel: the machine key, the ssh config, the
//! proxy, transfers, status and the shell override.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use egs_ssh::client::{ClientError, Guest};
use egs_ssh::ssh_config;
use egs_transport::Endpoint;

/// A failure with the exit code the tool returns.
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What to tell the user.
    pub message: String,
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure { code: 1, message }
    }
}

impl From<egs_ssh::host_key::KeyFileError> for Failure {
    fn from(e: egs_ssh::host_key::KeyFileError) -> Self {
        e.to_string().into()
    }
}

impl From<ssh_config::ConfigError> for Failure {
    fn from(e: ssh_config::ConfigError) -> Self {
        e.to_string().into()
    }
}

/// Where the host tool keeps its files: `$EGS_TOOL_HOME`, else on Windows the machine-wide
/// `%ProgramData%\eryph\guest-services` (as the original), elsewhere
/// `$XDG_DATA_HOME/eryph/guest-services`, else `~/.local/share/eryph/guest-services`.
pub fn base_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("EGS_TOOL_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if egs_sys::WINDOWS {
        return egs_ssh::control::default_config_dir();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".local/share"));
    data.join("eryph/guest-services")
}

/// The user's home, where `.ssh/config` is: `%USERPROFILE%` on Windows (where
/// Win32-OpenSSH looks, whatever `HOME` says), `$HOME` elsewhere.
fn home() -> PathBuf {
    let variable = if egs_sys::WINDOWS {
        "USERPROFILE"
    } else {
        "HOME"
    };
    std::env::var_os(variable)
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(if egs_sys::WINDOWS { r"C:\" } else { "/root" }))
}

/// The per-user directory on Windows without `$EGS_TOOL_HOME`:
/// `%LOCALAPPDATA%\.eryph\guest-services` (the original's; the machine key stays
/// machine-wide). Elsewhere the tool's files are the user's own already.
fn per_user_dir() -> Option<PathBuf> {
    let local = std::env::var_os("LOCALAPPDATA").filter(|d| !d.is_empty())?;
    (egs_sys::WINDOWS && std::env::var_os("EGS_TOOL_HOME").is_none())
        .then(|| PathBuf::from(local).join(r".eryph\guest-services"))
}

/// Where the per-guest ssh configs and known-hosts files go: `<per-user dir or base>/ssh`.
fn ssh_dir() -> PathBuf {
    per_user_dir().unwrap_or_else(base_dir).join("ssh")
}

fn key_path() -> PathBuf {
    base_dir().join("private/id_egs")
}

/// The per-user managed key of the `catlet` commands (`original-remote-access.md` §4.4):
/// `<per-user dir>/private/id_egs` on Windows; elsewhere the machine key, which is the
/// user's own there.
pub fn user_key_path() -> PathBuf {
    per_user_dir()
        .map(|dir| dir.join(r"private\id_egs"))
        .unwrap_or_else(key_path)
}

/// The per-user managed key, created (Ed25519) when there is none.
pub fn user_key() -> Result<egs_ssh::client::PrivateKey, Failure> {
    Ok(egs_ssh::host_key::load_or_create_client(
        &user_key_path(),
        "egs-tool user key",
    )?)
}

/// The public half of the key at `path` (`<path>.pub`), without a trailing newline.
pub fn public_half(path: &Path) -> Result<String, Failure> {
    let mut path = path.as_os_str().to_owned();
    path.push(".pub");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("{}: {e}", Path::new(&path).display()))?;
    Ok(text.trim_end().to_string())
}

/// Parses a target, refusing (as a bad argument) one this OS cannot reach, such as a
/// Hyper-V VM id off Windows.
pub fn target(spec: &str) -> Result<Endpoint, Failure> {
    egs_transport::parse_target(spec)
        .and_then(|endpoint| egs_transport::check_reachable(&endpoint).map(|()| endpoint))
        .map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })
}

/// `initialize`: on a Windows Hyper-V host registers the service with Hyper-V (elevated);
/// everywhere creates the machine key pair (Ed25519) if there is none.
pub fn initialize() -> Result<String, Failure> {
    let registered = crate::registration::register()?;
    let path = key_path();
    let existed = path.exists();
    egs_ssh::host_key::load_or_create_client(&path, "egs-tool machine key")?;
    let key = if existed {
        format!("The SSH key already exists: {}", path.display())
    } else {
        format!("Created the SSH key {}", path.display())
    };
    Ok(match registered {
        Some(registered) => format!("{registered}\n{key}"),
        None => key,
    })
}

fn machine_key() -> Result<egs_ssh::client::PrivateKey, Failure> {
    let path = key_path();
    if !path.exists() {
        return Err(Failure {
            code: 1,
            message: "No SSH key found. Have you run the initialize command?".into(),
        });
    }
    Ok(egs_ssh::host_key::load_or_create_client(
        &path,
        "egs-tool machine key",
    )?)
}

/// `get-ssh-key`: the machine's public key, without a trailing newline.
pub fn get_ssh_key() -> Result<String, Failure> {
    machine_key()?;
    public_half(&key_path())
}

/// `add-ssh-config <target> [alias]`: the guest's stanza, the include block in
/// `~/.ssh/config`, and for a VM with KVP the machine key pushed into its slots.
pub fn add_ssh_config(
    spec: &str,
    alias: Option<&str>,
    kvp_dir: Option<&Path>,
) -> Result<String, Failure> {
    let endpoint = target(spec)?;
    if let Some(alias) = alias {
        ssh_config::check_alias(alias).map_err(|e| Failure {
            code: 2,
            message: e.to_string(),
        })?;
    }
    machine_key()?;
    let pushed = if crate::kvp::uses_kvp(kvp_dir, spec) {
        crate::kvp::push_client_key(kvp_dir, spec, &get_ssh_key()?).map_err(Failure::from)?
    } else {
        Vec::new()
    };
    let canonical = ssh_config::canonical_name(&endpoint);
    let hosts: Vec<&str> = alias.into_iter().chain([canonical.as_str()]).collect();
    let file = write_stanza("vm.d", &canonical, &hosts, &key_path(), &["proxy", spec])?;
    let vm_dir = ssh_dir().join("vm.d");
    // The alias now belongs to this guest alone.
    if let Some(alias) = alias {
        for entry in std::fs::read_dir(&vm_dir)
            .map_err(|e| format!("{}: {e}", vm_dir.display()))?
            .flatten()
        {
            let path = entry.path();
            if path == file || path.extension().is_none_or(|e| e != "config") {
                continue;
            }
            if let Some(swept) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| ssh_config::without_alias(&t, alias))
            {
                write(&path, &swept, 0o644)?;
            }
        }
    }
    ensure_include_block()?;
    let mut lines = vec![format!("Wrote {}", file.display())];
    if !pushed.is_empty() {
        lines.push(format!(
            "Put this machine's key into the VM's KVP ({})",
            pushed.join(", ")
        ));
    }
    if let Some(alias) = alias {
        lines.push(format!("  ssh {alias}"));
    }
    lines.push(format!("  ssh {canonical}"));
    Ok(lines.join("\n"))
}

/// Writes the stanza of the guest whose unique name is `canonical` (its `HostName`, the
/// file's name and its known-hosts file) and whose `Host` line lists `hosts` into
/// `<ssh dir>/<subdir>/<canonical>.config`; returns the file.
pub fn write_stanza(
    subdir: &str,
    canonical: &str,
    hosts: &[&str],
    identity: &Path,
    proxy_args: &[&str],
) -> Result<PathBuf, Failure> {
    let ssh = ssh_dir();
    let dir = ssh.join(subdir);
    let known_dir = ssh.join("known_hosts.d");
    for d in [&dir, &known_dir] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let flavor = ssh_config::Flavor::native(&home());
    let tool = std::env::current_exe().map_err(|e| format!("egs-tool's own path: {e}"))?;
    let text = ssh_config::Stanza {
        hosts,
        host_name: canonical,
        identity,
        known_hosts: &known_dir.join(canonical),
        tool: &tool,
        proxy_args,
        flavor: &flavor,
    }
    .render()
    .map_err(|e| Failure {
        code: 2,
        message: e.to_string(),
    })?;
    let file = dir.join(format!("{canonical}.config"));
    write(&file, &text, 0o644)?;
    Ok(file)
}

/// Puts the managed include block (`catlet.d`, then `vm.d`) into `~/.ssh/config`.
pub fn ensure_include_block() -> Result<(), Failure> {
    let flavor = ssh_config::Flavor::native(&home());
    let ssh = ssh_dir();
    let ssh_dir = home().join(".ssh");
    let config = ssh_dir.join("config");
    let existing = match std::fs::read_to_string(&config) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("{}: {e}", config.display()).into()),
    };
    let updated = ssh_config::with_include_block(
        &existing,
        &ssh_config::include_block(&[&ssh.join("catlet.d"), &ssh.join("vm.d")], &flavor)?,
        &config.display().to_string(),
        &flavor,
    )?;
    if updated != existing {
        std::fs::create_dir_all(&ssh_dir).map_err(|e| format!("{}: {e}", ssh_dir.display()))?;
        write(&config, &updated, 0o600)?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<(), Failure> {
    egs_sys::fs::write_atomic(path, text.as_bytes(), mode).map_err(|e| Failure {
        code: 1,
        message: format!("{}: {e}", path.display()),
    })
}

/// The tokio runtime of the commands that speak SSH.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::from(e.to_string()))
}

/// `proxy <target>`: stdin/stdout ↔ the guest's socket, until either side closes. Clears
/// the target's known-hosts file first: EGS does not pin host keys (the trust anchors are
/// the VM socket and the client key), so a recreated VM never trips a stale entry.
pub fn proxy(spec: &str) -> Result<(), Failure> {
    let endpoint = target(spec)?;
    forget_host_key(&ssh_config::canonical_name(&endpoint));
    runtime()?.block_on(async {
        let stream = egs_transport::connect(&endpoint)
            .await
            .map_err(|e| ClientError::Unreachable(format!("cannot reach {endpoint}: {e}")))?;
        relay_stdio(stream).await;
        Ok::<(), Failure>(())
    })?;
    // stdin may still be blocked in a reader thread: leave without waiting for it.
    std::process::exit(0)
}

/// Removes the known-hosts file of the guest called `canonical` (see [`proxy`]).
pub fn forget_host_key(canonical: &str) {
    let _ = std::fs::remove_file(ssh_dir().join("known_hosts.d").join(canonical));
}

/// stdin → `stream` and `stream` → stdout until the guest's side ends (after stdin's end
/// the guest's answer still flows until it closes).
pub async fn relay_stdio(stream: egs_transport::BoxStream) {
    let (mut from_guest, mut to_guest) = tokio::io::split(stream);
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let upstream = async {
        let _ = tokio::io::copy(&mut stdin, &mut to_guest).await;
        let _ = tokio::io::AsyncWriteExt::shutdown(&mut to_guest).await;
        std::future::pending::<()>().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut from_guest, &mut stdout).await;
        let _ = tokio::io::AsyncWriteExt::flush(&mut stdout).await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// A guest reached by a target (`vsock:`, `fc:`, `unix:`, `tcp:`, a VM id) with the
/// machine key.
pub async fn vm_guest(spec: &str) -> Result<Guest, Failure> {
    let endpoint = target(spec)?;
    guest(&endpoint).await
}

async fn guest(endpoint: &Endpoint) -> Result<Guest, Failure> {
    let key = machine_key()?;
    Ok(egs_ssh::client::connect(endpoint, &key).await?)
}

/// A progress line on a terminal, nothing otherwise.
fn progress(label: String) -> impl FnMut(u64, u64) {
    let tty = std::io::stderr().is_terminal();
    let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
    move |done, total| {
        if !tty || (last.elapsed().as_millis() < 100 && done < total) {
            return;
        }
        last = std::time::Instant::now();
        let mib = |b: u64| b as f64 / 1_048_576.0;
        let percent = (done * 100).checked_div(total).unwrap_or(100);
        eprint!(
            "\r{label}: {percent:3}% {:.1}/{:.1} MiB\x1b[K",
            mib(done),
            mib(total)
        );
        if done >= total {
            eprintln!();
        }
    }
}

/// Which transfer.
pub enum Transfer {
    /// Local file → guest.
    UploadFile,
    /// Local tree → guest.
    UploadDirectory,
    /// Guest file → local.
    DownloadFile,
    /// Guest tree → local.
    DownloadDirectory,
}

/// The transfer commands, over the guest that `connect` reaches (a VM socket or eryph's
/// channel: the same SFTP code either way).
pub fn transfer(
    kind: Transfer,
    connect: impl std::future::Future<Output = Result<Guest, Failure>>,
    source: &str,
    target_path: &str,
    overwrite: bool,
    recursive: bool,
) -> Result<String, Failure> {
    runtime()?.block_on(async {
        let guest = connect.await?;
        let sftp = guest.sftp().await?;
        let mut bar = progress(source.to_string());
        let bytes = match kind {
            Transfer::UploadFile => {
                sftp.upload_file(Path::new(source), target_path, overwrite, &mut bar)
                    .await?
            }
            Transfer::UploadDirectory => {
                sftp.upload_tree(
                    Path::new(source),
                    target_path,
                    overwrite,
                    recursive,
                    &mut bar,
                )
                .await?
            }
            Transfer::DownloadFile => {
                sftp.download_file(source, Path::new(target_path), overwrite, &mut bar)
                    .await?
            }
            Transfer::DownloadDirectory => {
                sftp.download_tree(
                    source,
                    Path::new(target_path),
                    overwrite,
                    recursive,
                    &mut bar,
                )
                .await?
            }
        };
        Ok(format!("{source} -> {target_path}: {bytes} bytes"))
    })
}

/// The guest command that reports the service and provisioning (run by the daemon's own
/// binary: the exec shell's parent).
const STATUS_COMMAND: &str =
    r#"egs="$(readlink /proc/$PPID/exe)"; "$egs" version; "$egs" status --json"#;

/// `get-status <target>`: over the SSH channel (KVP on Hyper-V hosts needs the Windows
/// build).
pub fn get_status(spec: &str, json: bool) -> Result<String, Failure> {
    let endpoint = target(spec)?;
    runtime()?.block_on(async {
        let guest = match guest(&endpoint).await {
            Ok(g) => g,
            Err(f) if json => {
                return Ok(serde_json::json!({"status": "unknown", "error": f.message}).to_string())
            }
            Err(f) => return Err(f),
        };
        let out = guest.exec(STATUS_COMMAND).await?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let version = lines.next().and_then(|l| l.strip_prefix("egs-service ")).unwrap_or("-").to_string();
        let rest: String = lines.collect::<Vec<_>>().join("\n");
        let provisioning: serde_json::Value = serde_json::from_str(&rest).unwrap_or(serde_json::Value::Null);
        let state = provisioning.get("status").and_then(|s| s.as_str()).unwrap_or("-").to_string();
        if json {
            return Ok(serde_json::json!({"status": "available", "version": version, "provisioning": provisioning}).to_string());
        }
        Ok(format!("Guest services: available\nVersion: {version}\nProvisioning: {state}"))
    })
}
