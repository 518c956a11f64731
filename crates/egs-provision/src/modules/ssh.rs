//! `ssh` (network stage, per instance): host keys — deleted and regenerated for a new
//! instance (`ssh_deletekeys`, `ssh_genkeytypes`) or installed from `ssh_keys` — and
//! `disable_root`, which gives root the default user's keys behind a command that tells
//! people to log in as that user. Host keys are handled only where `/etc/ssh` exists.

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Command;
use crate::state::Frequency;
use crate::system::which;

/// `ssh`.
pub const SSH: Module = Module {
    name: "ssh",
    stage: Stage::Network,
    frequency: Frequency::PerInstance,
    run: ssh,
};

const DEFAULT_TYPES: &[&str] = &["rsa", "ecdsa", "ed25519"];

/// Generates a host key under a name of its own and renames both halves into place, so a
/// key file is only ever complete, and an `ssh-keygen` left running by an interrupted run
/// cannot collide with this one.
fn generate_host_key(
    ctx: &Context,
    ssh_dir: &std::path::Path,
    kind: &str,
) -> Result<(), crate::system::SystemError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| crate::system::SystemError::Io { path, source }
    };
    let temp = ssh_dir.join(format!(".egs-keygen-{}-{kind}", std::process::id()));
    let _ = std::fs::remove_file(&temp);
    let _ = std::fs::remove_file(temp.with_extension("pub"));
    let path = temp.display().to_string();
    ctx.system.run(&Command::new([
        "ssh-keygen",
        "-q",
        "-t",
        kind,
        "-N",
        "",
        "-C",
        "",
        "-f",
        &path,
    ]))?;
    let key = ssh_dir.join(format!("ssh_host_{kind}_key"));
    std::fs::rename(temp.with_extension("pub"), key.with_extension("pub")).map_err(io(&key))?;
    std::fs::rename(&temp, &key).map_err(io(&key))
}

fn ssh(ctx: &mut Context) -> ModuleResult {
    let system = ctx.system;
    let ssh_dir = system.layout.host("/etc/ssh")?;
    if ssh_dir.is_dir() {
        if ctx.config.ssh_deletekeys != Some(false) {
            for entry in std::fs::read_dir(&ssh_dir).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with("ssh_host_") && name.contains("key") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        if !ctx.config.ssh_keys.is_empty() {
            for (name, key) in &ctx.config.ssh_keys {
                let (kind, part) = name.rsplit_once('_').unwrap_or((name, ""));
                let (file, mode) = match part {
                    "private" => (format!("/etc/ssh/ssh_host_{kind}_key"), 0o600),
                    "public" => (format!("/etc/ssh/ssh_host_{kind}_key.pub"), 0o644),
                    _ => (format!("/etc/ssh/ssh_host_{kind}_key-cert.pub"), 0o644),
                };
                system.write_file(&file, key.as_bytes(), mode, None)?;
            }
        } else if which("ssh-keygen") {
            // Leftovers of an interrupted run (see generate_host_key).
            for entry in std::fs::read_dir(&ssh_dir).into_iter().flatten().flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".egs-keygen-")
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let types: Vec<String> = ctx
                .config
                .ssh_genkeytypes
                .clone()
                .unwrap_or_else(|| DEFAULT_TYPES.iter().map(|s| s.to_string()).collect());
            for kind in types.iter().filter(|t| *t != "dsa") {
                let key = ssh_dir.join(format!("ssh_host_{kind}_key"));
                if !(key.exists() && key.with_extension("pub").exists()) {
                    generate_host_key(ctx, &ssh_dir, kind)?;
                    ctx.log.push(format!("generated {kind} host key"));
                }
            }
        }
    }
    if ctx.config.disable_root != Some(false) {
        let users = super::users_groups::resolved_users(ctx);
        let Some(default) = users
            .iter()
            .find(|u| u.name == ctx.default_user.name)
            .or(users.first())
        else {
            return Ok(Outcome::Done);
        };
        let mut keys = default.ssh_authorized_keys.clone();
        keys.extend(ctx.config.ssh_authorized_keys.iter().cloned());
        keys.extend(ctx.datasource.public_keys.iter().cloned());
        if !keys.is_empty() && system.account("root")?.is_some() {
            let opts = ctx.config.disable_root_opts.clone().unwrap_or_else(|| {
                "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command=\"echo 'Please login as the user \\\"$USER\\\" rather than the user \\\"$DISABLE_USER\\\".';echo;sleep 10;exit 142\"".into()
            });
            let opts = opts
                .replace("$USER", &default.name)
                .replace("$DISABLE_USER", "root");
            let prefixed: Vec<String> = keys.iter().map(|k| format!("{opts} {k}")).collect();
            super::users_groups::authorized_keys(system, "root", &prefixed)?;
        }
    }
    Ok(Outcome::Done)
}
