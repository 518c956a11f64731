//! `users_groups` (network stage, per instance) and `set_passwords` (config stage, per
//! instance) with cloud-init's semantics, through the [`System`]'s account operations
//! (shadow-utils on Linux, as cloud-init uses them): groups first, then users (`default` resolved to the distribution's user), missing
//! supplementary groups created, passwords set from hashes (clear text is hashed here, so
//! no secret reaches argv), passwords locked unless `lock_passwd: false`, sudo rules in
//! `/etc/sudoers.d/90-cloud-init-users` checked with `visudo` when present, and each
//! user's `ssh_authorized_keys` installed.

use egs_cloudconfig::schema::{normalize_users, PasswordKind, Sudo, User};

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::command::Command;
use crate::state::Frequency;
use crate::system::{System, SystemError};

/// `users_groups`.
pub const USERS_GROUPS: Module = Module {
    name: "users_groups",
    stage: Stage::Network,
    frequency: Frequency::PerInstance,
    run: users_groups,
};

/// `set_passwords`.
pub const SET_PASSWORDS: Module = Module {
    name: "set_passwords",
    stage: Stage::Config,
    frequency: Frequency::PerInstance,
    run: set_passwords,
};

const SUDOERS: &str = "/etc/sudoers.d/90-cloud-init-users";

/// The users cloud-config asks for, with `default` resolved.
pub fn resolved_users(ctx: &Context) -> Vec<User> {
    let mut default_user = ctx.default_user.clone();
    if let Some(old) = &ctx.config.user {
        default_user.name = old.name.clone();
    }
    normalize_users(ctx.config.users.as_deref(), &default_user)
}

fn ensure_group(system: &dyn System, name: &str, log: &mut Vec<String>) -> Result<(), SystemError> {
    if system.group_id(name)?.is_none() {
        system.create_group(name)?;
        log.push(format!("created group {name}"));
    }
    Ok(())
}

fn users_groups(ctx: &mut Context) -> ModuleResult {
    let system = ctx.system;
    for group in &ctx.config.groups {
        ensure_group(system, &group.name, &mut ctx.log)?;
        for member in &group.members {
            if system.account(member)?.is_some() {
                system.add_to_group(member, &group.name)?;
            } else {
                ctx.log.push(format!(
                    "group {}: member {member} does not exist (yet); not added",
                    group.name
                ));
            }
        }
    }
    let users = resolved_users(ctx);
    if users.is_empty() && ctx.config.groups.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    if system.is_windows() {
        // The default user (§4.11): the first user with `sudo`, else the built-in one.
        let default = users
            .iter()
            .find(|u| crate::system::has_sudo(u))
            .map(|u| u.name.clone())
            .unwrap_or_else(|| ctx.default_user.name.clone());
        for user in &users {
            create_or_update_windows(ctx, user, user.name.eq_ignore_ascii_case(&default))?;
        }
        if !users.iter().any(|u| u.name.eq_ignore_ascii_case(&default)) {
            let builtin = ctx.default_user.clone();
            install_keys_windows(ctx, &builtin, &builtin.groups, true)?;
        }
        return Ok(Outcome::Done);
    }
    let mut sudoers = String::new();
    for user in &users {
        create_or_update(ctx, user)?;
        if let Sudo::Rules(rules) = &user.sudo {
            sudoers.push_str(&format!("\n# User rules for {}\n", user.name));
            for rule in rules {
                sudoers.push_str(&format!("{} {}\n", user.name, rule));
            }
        }
        let is_default = user.name == ctx.default_user.name
            || ctx
                .config
                .user
                .as_ref()
                .is_some_and(|u| u.name == user.name);
        let keys = user_keys(ctx, user, is_default);
        if !keys.is_empty() {
            install_keys(system, &user.name, &keys)?;
        }
    }
    if !sudoers.is_empty() {
        let text = format!("# Created by EGS (cloud-init compatible users_groups)\n{sudoers}");
        let path = system.write_file(SUDOERS, text.as_bytes(), 0o440, None)?;
        if system.has_program("visudo") {
            system.run(&Command::new([
                "visudo",
                "-c",
                "-q",
                "-f",
                &path.display().to_string(),
            ]))?;
        }
    }
    Ok(Outcome::Done)
}

/// Keys for a user: its own, plus for the default user the top-level
/// `ssh_authorized_keys` and the datasource's public keys (cloud-init's cc_ssh does that).
fn user_keys(ctx: &Context, user: &User, is_default: bool) -> Vec<String> {
    let mut keys = user.ssh_authorized_keys.clone();
    if is_default && ctx.config.allow_public_ssh_keys != Some(false) {
        keys.extend(ctx.config.ssh_authorized_keys.iter().cloned());
        keys.extend(ctx.datasource.public_keys.iter().cloned());
    }
    let mut unique = Vec::new();
    for k in keys {
        if !unique.contains(&k) {
            unique.push(k);
        }
    }
    unique
}

fn create_or_update(ctx: &mut Context, user: &User) -> Result<(), SystemError> {
    let system = ctx.system;
    if system.account(&user.name)?.is_none() {
        if user.create_groups != Some(false) {
            for g in &user.groups {
                ensure_group(system, g, &mut ctx.log)?;
            }
        }
        system.create_user(user)?;
        ctx.log.push(format!("created user {}", user.name));
    } else {
        ctx.log
            .push(format!("user {} already exists; not re-created", user.name));
    }
    // Passwords: plain_text_passwd, then hashed_passwd, then passwd, as cloud-init orders them.
    if let Some(plain) = &user.plain_text_passwd {
        set_password(system, &user.name, plain, false)?;
    }
    if let Some(hash) = user.hashed_passwd.as_ref().or(user.passwd.as_ref()) {
        set_password(system, &user.name, hash, true)?;
    }
    if user.password_locked() {
        system.lock_password(&user.name)?;
    }
    Ok(())
}

/// A user on a Windows guest (`original-provisioning.md` §3.5): created or updated, its
/// groups (created when missing) and `Administrators` for `sudo`; `passwd` is clear text
/// there (`plain_text_passwd` wins), `hashed_passwd` is ignored, `lock_passwd` disables the
/// account only when set (cloud-init's default of true would lock every account out); keys
/// of administrators go to Win32-OpenSSH's `administrators_authorized_keys`, others'
/// to their profile.
fn create_or_update_windows(
    ctx: &mut Context,
    user: &User,
    is_default: bool,
) -> Result<(), SystemError> {
    let system = ctx.system;
    let groups = crate::system::windows_groups(user);
    for g in &groups {
        ensure_group(system, g, &mut ctx.log)?;
    }
    if system.account(&user.name)?.is_none() {
        system.create_user(user)?;
        ctx.log.push(format!("created user {}", user.name));
    } else {
        for g in &groups {
            system.add_to_group(&user.name, g)?;
        }
        ctx.log
            .push(format!("user {} already exists; groups updated", user.name));
    }
    if let Some(plain) = user.plain_text_passwd.as_ref().or(user.passwd.as_ref()) {
        system.set_password_plain(&user.name, plain)?;
    }
    if user.hashed_passwd.is_some() {
        ctx.log.push(format!(
            "user {}: hashed_passwd is ignored on Windows (it takes clear text passwords)",
            user.name
        ));
    }
    if user.lock_passwd == Some(true) {
        system.lock_password(&user.name)?;
    }
    install_keys_windows(ctx, user, &groups, is_default)
}

/// A Windows user's keys where Win32-OpenSSH reads them: administrators' in
/// `\ProgramData\ssh\administrators_authorized_keys` (the only file sshd reads for them),
/// others' in their profile's `.ssh\authorized_keys`.
fn install_keys_windows(
    ctx: &mut Context,
    user: &User,
    groups: &[String],
    is_default: bool,
) -> Result<(), SystemError> {
    let keys = user_keys(ctx, user, is_default);
    if keys.is_empty() {
        return Ok(());
    }
    let admin = user.name.eq_ignore_ascii_case("Administrator")
        || groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(crate::system::ADMINISTRATORS));
    let file = if admin {
        "/ProgramData/ssh/administrators_authorized_keys".to_string()
    } else {
        format!("/Users/{}/.ssh/authorized_keys", user.name)
    };
    merge_keys(ctx.system, &file, &keys, None)?;
    if admin {
        // Win32-OpenSSH reads this file only when SYSTEM and Administrators alone may
        // write it: give it exactly that, inheriting nothing (as the original does).
        let path = ctx.system.layout().host(&file)?;
        egs_sys::fs::make_private(&path).map_err(crate::system::io(&path))?;
    }
    ctx.log.push(format!("keys of {} in {file}", user.name));
    Ok(())
}

/// Sets a password; clear text is hashed here first (SHA-512 crypt), so no PAM is needed
/// and only the hash travels (on standard input).
fn set_password(
    system: &dyn System,
    user: &str,
    secret: &str,
    hashed: bool,
) -> Result<(), SystemError> {
    if hashed {
        system.set_password_hash(user, secret)
    } else {
        system.set_password_plain(user, secret)
    }
}

/// A `$6$` (SHA-512 crypt) hash with a 16-character random salt, as glibc's `crypt` reads it.
pub fn hash_password(plain: &str) -> Result<String, SystemError> {
    use sha_crypt::{PasswordHasher, ShaCrypt};
    let mut salt = [0u8; 12];
    getrandom::fill(&mut salt)
        .map_err(|e| SystemError::Lookup(format!("no random bytes for a password salt: {e}")))?;
    ShaCrypt::SHA512
        .hash_password_with_salt(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| SystemError::Lookup(format!("password hashing failed: {e}")))
}

fn install_keys(system: &dyn System, name: &str, keys: &[String]) -> Result<(), SystemError> {
    let account = system
        .account(name)?
        .ok_or_else(|| SystemError::Lookup(format!("unknown user '{name}'")))?;
    let owner = Some((account.uid, account.gid));
    let ssh_dir = format!("{}/.ssh", account.home.trim_end_matches('/'));
    system.make_dir(&account.home, 0o755, None).ok();
    system.make_dir(&ssh_dir, 0o700, owner)?;
    merge_keys(system, &format!("{ssh_dir}/authorized_keys"), keys, owner)
}

/// Adds `keys` to an authorized_keys file, keeping what is there.
fn merge_keys(
    system: &dyn System,
    file: &str,
    keys: &[String],
    owner: Option<(u32, u32)>,
) -> Result<(), SystemError> {
    let mut text =
        String::from_utf8_lossy(&system.read_file(file)?.unwrap_or_default()).into_owned();
    for key in keys {
        if !text.lines().any(|l| l.trim() == key.trim()) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(key.trim());
            text.push('\n');
        }
    }
    system.write_file(file, text.as_bytes(), 0o600, owner)?;
    Ok(())
}

/// Installs keys for root-like callers (the ssh module's `disable_root`).
pub(crate) fn authorized_keys(
    system: &dyn System,
    name: &str,
    keys: &[String],
) -> Result<(), SystemError> {
    install_keys(system, name, keys)
}

fn set_passwords(ctx: &mut Context) -> ModuleResult {
    let system = ctx.system;
    let mut did = false;
    if let Some(password) = &ctx.config.password {
        let name = resolved_users(ctx)
            .first()
            .map(|u| u.name.clone())
            .unwrap_or_else(|| ctx.default_user.name.clone());
        set_password(
            system,
            &name,
            password,
            egs_cloudconfig::schema::looks_hashed(password),
        )?;
        did = true;
    }
    let expire = ctx
        .config
        .chpasswd
        .as_ref()
        .and_then(|c| c.expire)
        .unwrap_or(true);
    if let Some(chpasswd) = &ctx.config.chpasswd {
        for change in &chpasswd.changes {
            match change.kind {
                PasswordKind::Random => {
                    ctx.log.push(format!(
                        "chpasswd: random password for {} is not supported; skipped",
                        change.name
                    ));
                    continue;
                }
                kind => set_password(
                    system,
                    &change.name,
                    &change.password,
                    kind == PasswordKind::Hash,
                )?,
            }
            if expire {
                system.expire_password(&change.name)?;
            }
            did = true;
        }
    }
    if let Some(pwauth) = ctx.config.ssh_pwauth.filter(|_| !system.is_windows()) {
        use egs_cloudconfig::schema::SshPwauth;
        let value = match pwauth {
            SshPwauth::Enabled => Some("yes"),
            SshPwauth::Disabled => Some("no"),
            SshPwauth::Unchanged => None,
        };
        if let Some(v) = value {
            system.write_file(
                "/etc/ssh/sshd_config.d/50-cloud-init.conf",
                format!("PasswordAuthentication {v}\n").as_bytes(),
                0o600,
                None,
            )?;
            did = true;
        }
    }
    Ok(if did {
        Outcome::Done
    } else {
        Outcome::NothingToDo
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(not(unix), ignore = "glibc's crypt (through python3) is the oracle")]
    fn password_hashes_verify_with_glibc_crypt() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$6$"), "{hash}");
        let script =
            "import crypt,sys; print(crypt.crypt(sys.argv[1], sys.argv[2]) == sys.argv[2])";
        let out = std::process::Command::new("python3")
            .args(["-W", "ignore", "-c", script, "correct horse", &hash])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "True",
            "{hash}"
        );
        assert_ne!(
            hash_password("correct horse").unwrap(),
            hash,
            "salts differ"
        );
    }
}
