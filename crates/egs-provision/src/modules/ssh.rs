//! `ssh` (network stage, per instance): host keys — deleted and regenerated for a new
//! instance (`ssh_deletekeys`, `ssh_genkeytypes`) or installed from `ssh_keys` — and
//! `disable_root`, which gives root the default user's keys behind a command that tells
//! people to log in as that user. Host keys are handled only where `/etc/ssh` exists.

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Command;
use crate::state::Frequency;
use crate::system::SystemError;

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
fn generate_host_key(ctx: &Context, kind: &str) -> Result<(), SystemError> {
    let system = ctx.system;
    let temp = format!("/etc/ssh/.egs-keygen-{}-{kind}", std::process::id());
    system.remove_file(&temp)?;
    system.remove_file(&format!("{temp}.pub"))?;
    let path = system.layout().host(&temp)?.display().to_string();
    system.run(&Command::new([
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
    let key = format!("/etc/ssh/ssh_host_{kind}_key");
    system.rename(&format!("{temp}.pub"), &format!("{key}.pub"))?;
    system.rename(&temp, &key)
}

/// Removes the files in `/etc/ssh` whose names `matches`.
fn remove_in_etc_ssh(ctx: &Context, matches: impl Fn(&str) -> bool) -> Result<(), SystemError> {
    for name in ctx.system.list_dir("/etc/ssh")? {
        if matches(&name) {
            ctx.system.remove_file(&format!("/etc/ssh/{name}"))?;
        }
    }
    Ok(())
}

fn ssh(ctx: &mut Context) -> ModuleResult {
    let system = ctx.system;
    if system.is_dir("/etc/ssh")? {
        if ctx.config.ssh_deletekeys != Some(false) {
            remove_in_etc_ssh(ctx, |name| {
                name.starts_with("ssh_host_") && name.contains("key")
            })?;
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
        } else if system.has_program("ssh-keygen") {
            // Leftovers of an interrupted run (see generate_host_key).
            remove_in_etc_ssh(ctx, |name| name.starts_with(".egs-keygen-"))?;
            let types: Vec<String> = ctx
                .config
                .ssh_genkeytypes
                .clone()
                .unwrap_or_else(|| DEFAULT_TYPES.iter().map(|s| s.to_string()).collect());
            for kind in types.iter().filter(|t| *t != "dsa") {
                let key = format!("/etc/ssh/ssh_host_{kind}_key");
                if !(system.exists(&key)? && system.exists(&format!("{key}.pub"))?) {
                    generate_host_key(ctx, kind)?;
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
