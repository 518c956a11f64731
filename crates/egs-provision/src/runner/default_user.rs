//! The distribution's default user (`default` in `users`).

use egs_cloudconfig::schema::{Sudo, User};

use crate::system::System;

/// The distribution's default user, named after `/etc/os-release`'s `ID` as cloud-init's
/// distro configs name it, in the administrative groups that exist on the system; on
/// Windows the built-in `Administrator`.
pub fn distro_default_user(system: &dyn System) -> User {
    if system.is_windows() {
        // The original's last resort (§4.11): the built-in administrator.
        return User {
            name: "Administrator".into(),
            groups: vec![crate::system::ADMINISTRATORS.into()],
            ..User::default()
        };
    }
    let release = String::from_utf8_lossy(
        &system
            .read_file("/etc/os-release")
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
    .into_owned();
    let id = release
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let name = match id.as_str() {
        "ubuntu" => "ubuntu",
        "fedora" => "fedora",
        "rhel" | "centos" | "rocky" | "almalinux" | "ol" => "cloud-user",
        "alpine" => "alpine",
        "arch" => "arch",
        _ => "debian",
    };
    let groups = ["adm", "sudo", "wheel", "systemd-journal"]
        .iter()
        .filter(|g| system.group_id(g).ok().flatten().is_some())
        .map(|g| g.to_string())
        .collect();
    User {
        name: name.into(),
        gecos: Some(format!("{}{}", &name[..1].to_uppercase(), &name[1..])),
        shell: Some("/bin/bash".into()),
        groups,
        sudo: Sudo::Rules(vec!["ALL=(ALL) NOPASSWD:ALL".into()]),
        lock_passwd: Some(true),
        ..User::default()
    }
}
