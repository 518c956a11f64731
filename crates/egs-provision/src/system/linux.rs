//! The Linux system and the sandbox root. Both keep accounts with shadow-utils, as
//! cloud-init does (the sandbox with `--prefix <root>`, or `--root <root>` for the programs
//! that only know that), and look accounts up in the root's `/etc/passwd` and `/etc/group`.
//! The sandbox records what would change the machine itself (host name, interface names,
//! disks, power) in `<state>/sandbox-actions.log`; user scripts run for real either way,
//! with `EGS_ROOT` telling them the root.

use std::path::{Path, PathBuf};

use egs_cloudconfig::schema::User;
use egs_netconfig::apply::{apply, ApplyError, Outcome as NetOutcome};
use egs_netconfig::system::{self as net_system, SystemInterface};
use egs_netconfig::NetworkConfig;

use super::{Account, DiskChange, PowerAction, System, SystemError};
use crate::command::Command;
use crate::state::Layout;

/// The running Linux system (root `/`).
#[derive(Debug, Clone)]
pub struct Linux {
    layout: Layout,
    /// Where shadow-utils act (`None`: the running system).
    shadow_root: Option<PathBuf>,
}

impl Linux {
    /// The system with these paths.
    pub fn new(layout: Layout) -> Linux {
        Linux {
            layout,
            shadow_root: None,
        }
    }

    fn shadow(&self, program: &str, args: &[&str]) -> Command {
        shadow(self.shadow_root.as_deref(), program, args)
    }
}

/// A directory standing in for a Linux system's root: files and accounts as on [`Linux`]
/// (below the root), machine effects recorded.
#[derive(Debug, Clone)]
pub struct Sandbox {
    linux: Linux,
}

impl Sandbox {
    /// The sandbox at `layout.root`.
    pub fn new(layout: Layout) -> Sandbox {
        let root = layout.root.clone();
        Sandbox {
            linux: Linux {
                layout,
                shadow_root: Some(root),
            },
        }
    }

    /// Appends an action not performed to `<state>/sandbox-actions.log`.
    fn record(&self, what: &str, value: &str) -> Result<(), SystemError> {
        super::record_action(&self.linux.layout, &format!("{what} {value}"))
    }
}

/// A shadow-utils command (`useradd`, `usermod`, `groupadd`, `chpasswd`, `chage`) acting
/// on `root` (`None`: the running system).
pub(crate) fn shadow(root: Option<&Path>, program: &str, args: &[&str]) -> Command {
    let mut argv = vec![program.to_string()];
    if let Some(root) = root {
        let flag = if matches!(program, "chpasswd" | "chage") {
            "--root"
        } else {
            "--prefix"
        };
        argv.push(flag.into());
        argv.push(root.display().to_string());
    }
    argv.extend(args.iter().map(|a| a.to_string()));
    Command::new(argv)
}

/// A user or group name that is safe to hand to shadow-utils (the same rule the
/// cloud-config reader applies; checked again here because names also come from settings,
/// datasources and callers).
fn account_name(name: &str) -> Result<&str, SystemError> {
    egs_cloudconfig::schema::check_account_name(name)
        .map(|()| name)
        .map_err(SystemError::Input)
}

/// `useradd`'s arguments for `user`, as cloud-init's `add_user` builds them.
fn useradd_args(user: &User) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    let mut opt = |flag: &str, value: &Option<String>| {
        if let Some(v) = value {
            args.push(flag.to_string());
            args.push(v.clone());
        }
    };
    opt("--comment", &user.gecos);
    opt("--home-dir", &user.homedir);
    opt("--gid", &user.primary_group);
    opt("--shell", &user.shell);
    opt("--expiredate", &user.expiredate);
    opt("--inactive", &user.inactive);
    opt("--selinux-user", &user.selinux_user);
    if let Some(uid) = user.uid {
        args.extend(["--uid".to_string(), uid.to_string()]);
    }
    if !user.groups.is_empty() {
        args.extend(["--groups".to_string(), user.groups.join(",")]);
    }
    if user.system {
        args.push("--system".into());
    }
    if user.no_user_group {
        args.push("--no-user-group".into());
    }
    if user.no_log_init {
        args.push("--no-log-init".into());
    }
    args.push(
        if user.no_create_home || user.system {
            "--no-create-home"
        } else {
            "--create-home"
        }
        .into(),
    );
    args.push(user.name.clone());
    args
}

fn script_command(script: &Path, shebang: bool) -> Command {
    let mut argv = Vec::new();
    if !shebang {
        argv.push("/bin/sh".to_string());
    }
    argv.push(script.display().to_string());
    Command::new(argv)
}

impl System for Linux {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn account(&self, name: &str) -> Result<Option<Account>, SystemError> {
        let passwd = self.read_file("/etc/passwd")?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&passwd).lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 7 && f[0] == name).then(|| Account {
                name: name.to_string(),
                uid: f[2].parse().unwrap_or(0),
                gid: f[3].parse().unwrap_or(0),
                home: f[5].to_string(),
            })
        }))
    }

    fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError> {
        let group = self.read_file("/etc/group")?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&group).lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse().unwrap_or(0))
        }))
    }

    fn create_group(&self, name: &str) -> Result<(), SystemError> {
        let name = account_name(name)?;
        self.run(&self.shadow("groupadd", &[name])).map(drop)
    }

    fn add_to_group(&self, user: &str, group: &str) -> Result<(), SystemError> {
        let (user, group) = (account_name(user)?, account_name(group)?);
        self.run(&self.shadow("usermod", &["-a", "-G", group, user]))
            .map(drop)
    }

    fn create_user(&self, user: &User) -> Result<(), SystemError> {
        account_name(&user.name)?;
        for group in user.groups.iter().chain(&user.primary_group) {
            account_name(group)?;
        }
        let args = useradd_args(user);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&self.shadow("useradd", &refs)).map(drop)
    }

    /// Through `chpasswd --encrypted` on standard input.
    fn set_password_hash(&self, user: &str, hash: &str) -> Result<(), SystemError> {
        let user = account_name(user)?;
        if hash.chars().any(|c| c == ':' || c.is_control()) {
            // The message never shows the hash.
            return Err(SystemError::Input(format!(
                "the password hash for '{user}' contains ':' or a control character"
            )));
        }
        let command = self
            .shadow("chpasswd", &["--encrypted"])
            .stdin(format!("{user}:{hash}\n"));
        self.run(&command).map(drop)
    }

    fn lock_password(&self, user: &str) -> Result<(), SystemError> {
        let user = account_name(user)?;
        self.run(&self.shadow("usermod", &["--lock", user]))
            .map(drop)
    }

    fn expire_password(&self, user: &str) -> Result<(), SystemError> {
        let user = account_name(user)?;
        self.run(&self.shadow("chage", &["--lastday", "0", user]))
            .map(drop)
    }

    /// `/etc/timezone` and the `/etc/localtime` link, as cloud-init's Debian distro does.
    fn set_timezone(&self, zone: &str) -> Result<(), SystemError> {
        let zoneinfo = format!("/usr/share/zoneinfo/{zone}");
        if zone.contains("..") || !Path::new(&zoneinfo).is_file() {
            return Err(SystemError::Lookup(format!(
                "unknown time zone '{zone}' (no {zoneinfo})"
            )));
        }
        self.write_file("/etc/timezone", format!("{zone}\n").as_bytes(), 0o644, None)?;
        self.replace_symlink(&zoneinfo, "/etc/localtime")
    }

    fn network_interfaces(&self) -> Vec<SystemInterface> {
        net_system::interfaces(&self.layout.root)
    }

    fn network_disabled_by(&self) -> Option<PathBuf> {
        net_system::disabled_by(&self.layout.root)
    }

    fn apply_network(
        &self,
        config: Option<NetworkConfig>,
        interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError> {
        apply(&self.layout.root, config, None, interfaces).map_err(|e| match e {
            ApplyError::Io(path, source) => SystemError::Io { path, source },
            e => SystemError::Input(e.to_string()),
        })
    }

    /// With `sethostname(2)`, as cloud-init's Debian distro does (no D-Bus or
    /// systemd-hostnamed needed).
    fn set_hostname(&self, name: &str) -> Result<bool, SystemError> {
        egs_sys::host::set_hostname(name).map_err(|e| SystemError::Command {
            command: format!("sethostname {name}"),
            message: e.to_string(),
        })?;
        Ok(false)
    }

    /// Taken down first, as the kernel requires (cloud-init does this in its local stage).
    fn rename_interface(&self, current: &str, wanted: &str) -> Result<(), SystemError> {
        self.run(&Command::new(["ip", "link", "set", "dev", current, "down"]))?;
        self.run(&Command::new([
            "ip", "link", "set", "dev", current, "name", wanted,
        ]))
        .map(drop)
    }

    /// netplan's systemd generator ran at boot, before the local stage wrote the YAML.
    fn netplan_generate(&self) -> Result<(), SystemError> {
        self.run(&Command::new(["netplan", "generate"])).map(drop)
    }

    fn change_disk(&self, argv: &[String]) -> Result<DiskChange, SystemError> {
        if !argv.first().is_some_and(|p| self.has_program(p)) {
            return Ok(DiskChange::NotInstalled);
        }
        self.execute(&Command::new(argv.to_vec()))
            .map(DiskChange::Ran)
    }

    fn has_program(&self, name: &str) -> bool {
        super::which(name)
    }

    fn script_command(&self, script: &Path, shebang: bool) -> Command {
        script_command(script, shebang).env("EGS_ROOT", "/")
    }

    /// Through the init system (`shutdown`).
    fn power(
        &self,
        action: PowerAction,
        delay_minutes: u32,
        message: Option<&str>,
    ) -> Result<(), SystemError> {
        let flag = match action {
            PowerAction::Poweroff => "-P",
            PowerAction::Halt => "-H",
            PowerAction::Reboot => "-r",
        };
        let mut argv = vec![
            "shutdown".to_string(),
            flag.to_string(),
            format!("+{delay_minutes}"),
        ];
        argv.extend(message.map(str::to_string));
        self.run(&Command::new(argv)).map(drop)
    }
}

impl System for Sandbox {
    fn layout(&self) -> &Layout {
        &self.linux.layout
    }

    fn account(&self, name: &str) -> Result<Option<Account>, SystemError> {
        self.linux.account(name)
    }

    fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError> {
        self.linux.group_id(name)
    }

    fn create_group(&self, name: &str) -> Result<(), SystemError> {
        self.linux.create_group(name)
    }

    fn add_to_group(&self, user: &str, group: &str) -> Result<(), SystemError> {
        self.linux.add_to_group(user, group)
    }

    fn create_user(&self, user: &User) -> Result<(), SystemError> {
        self.linux.create_user(user)
    }

    fn set_password_hash(&self, user: &str, hash: &str) -> Result<(), SystemError> {
        self.linux.set_password_hash(user, hash)
    }

    fn lock_password(&self, user: &str) -> Result<(), SystemError> {
        self.linux.lock_password(user)
    }

    fn expire_password(&self, user: &str) -> Result<(), SystemError> {
        self.linux.expire_password(user)
    }

    fn set_timezone(&self, zone: &str) -> Result<(), SystemError> {
        self.linux.set_timezone(zone)
    }

    fn network_interfaces(&self) -> Vec<SystemInterface> {
        self.linux.network_interfaces()
    }

    fn network_disabled_by(&self) -> Option<PathBuf> {
        self.linux.network_disabled_by()
    }

    fn apply_network(
        &self,
        config: Option<NetworkConfig>,
        interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError> {
        self.linux.apply_network(config, interfaces)
    }

    fn set_hostname(&self, name: &str) -> Result<bool, SystemError> {
        self.record("hostname", name).map(|()| false)
    }

    fn rename_interface(&self, current: &str, wanted: &str) -> Result<(), SystemError> {
        self.record("rename-interface", &format!("{current} {wanted}"))
    }

    fn netplan_generate(&self) -> Result<(), SystemError> {
        self.record("netplan", "generate")
    }

    fn change_disk(&self, argv: &[String]) -> Result<DiskChange, SystemError> {
        self.record("disk", &argv.join(" "))
            .map(|()| DiskChange::Recorded)
    }

    fn has_program(&self, name: &str) -> bool {
        super::which(name)
    }

    /// A sandbox that is a whole system (it has a shell) runs scripts inside it, through
    /// `chroot`; otherwise they run on the machine, with `EGS_ROOT` naming the root.
    fn script_command(&self, script: &Path, shebang: bool) -> Command {
        let root = &self.linux.layout.root;
        match script.strip_prefix(root) {
            Ok(inside) if root.join("bin/sh").exists() => {
                let inner = script_command(&Path::new("/").join(inside), shebang);
                let mut argv = vec!["chroot".to_string(), root.display().to_string()];
                argv.extend(inner.argv);
                Command::new(argv).env("EGS_ROOT", "/")
            }
            _ => script_command(script, shebang).env("EGS_ROOT", &root.display().to_string()),
        }
    }

    fn power(
        &self,
        action: PowerAction,
        delay_minutes: u32,
        _message: Option<&str>,
    ) -> Result<(), SystemError> {
        self.record("power", &format!("{} +{delay_minutes}", action.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_commands_use_the_sandbox_prefix_and_never_carry_secrets() {
        let root = Path::new("/sandbox");
        let cmd = shadow(Some(root), "chpasswd", &["--encrypted"]).stdin("bob:$6$x$y\n");
        assert_eq!(cmd.argv, ["chpasswd", "--root", "/sandbox", "--encrypted"]);
        assert!(!cmd.describe().contains("$6$"));
        assert_eq!(
            shadow(Some(root), "useradd", &["x"]).argv,
            ["useradd", "--prefix", "/sandbox", "x"]
        );
        assert_eq!(shadow(None, "useradd", &["x"]).argv, ["useradd", "x"]);
    }

    /// Names and hashes that would be options, a second `chpasswd` line or a field separator
    /// never reach a tool (no tool runs: the errors come first).
    #[test]
    fn names_and_hashes_are_checked_before_any_tool_runs() {
        let dir = tempfile::tempdir().unwrap();
        let system = Sandbox::new(Layout::new(dir.path(), None));
        for bad in ["nobody:*\nroot", "-rf", "a b", "", "root\n", "12345"] {
            assert!(
                matches!(system.create_group(bad), Err(SystemError::Input(_))),
                "{bad:?}"
            );
            assert!(matches!(
                system.set_password_hash(bad, "$6$x$y"),
                Err(SystemError::Input(_))
            ));
            let user = User {
                name: bad.into(),
                ..User::default()
            };
            assert!(matches!(
                system.create_user(&user),
                Err(SystemError::Input(_))
            ));
        }
        let e = system
            .set_password_hash("bob", "$6$x$y\nroot:$6$evil")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("control character") && !e.contains("evil"),
            "{e}"
        );
        let with_bad_group = User {
            name: "bob".into(),
            groups: vec!["adm,-x".into()],
            ..User::default()
        };
        assert!(matches!(
            system.create_user(&with_bad_group),
            Err(SystemError::Input(_))
        ));
    }

    #[test]
    fn sandbox_records_machine_effects_instead_of_performing_them() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(Layout::new(dir.path(), None));
        sandbox.set_hostname("box").unwrap();
        sandbox
            .power(PowerAction::Poweroff, 1, Some("bye"))
            .unwrap();
        sandbox
            .change_disk(&["growpart".into(), "/dev/sda".into(), "1".into()])
            .unwrap();
        let log =
            std::fs::read_to_string(sandbox.layout().state.join("sandbox-actions.log")).unwrap();
        assert_eq!(
            log,
            "hostname box\npower poweroff +1\ndisk growpart /dev/sda 1\n"
        );
    }

    #[test]
    fn scripts_run_inside_a_sandbox_that_has_a_shell() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(Layout::new(dir.path(), None));
        let script = dir.path().join("var/lib/s");
        let outside = sandbox.script_command(&script, false);
        assert_eq!(outside.argv, ["/bin/sh", &script.display().to_string()]);
        std::fs::create_dir_all(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/sh"), b"").unwrap();
        let inside = sandbox.script_command(&script, true);
        assert_eq!(
            inside.argv,
            ["chroot", &dir.path().display().to_string(), "/var/lib/s"]
        );
    }
}
