//! The operating system as provisioning modules change it: files, accounts (shadow-utils,
//! as cloud-init uses them), the host name and power actions. With a sandbox root every
//! file effect lands below the root, shadow-utils run with `--prefix <root>`, and the host
//! name and power actions are recorded in the state directory instead of performed.
//! User scripts run for real either way, with `EGS_ROOT` telling them the root.

use std::path::{Path, PathBuf};

use crate::command::{Command, Output};
use crate::state::{create_private_dir, Layout, OutsideRoot};

/// Why a system change failed; names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// A path outside the root.
    #[error(transparent)]
    Path(#[from] OutsideRoot),
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A program failed or could not start.
    #[error("{command}: {message}")]
    Command {
        /// What ran (never includes secrets).
        command: String,
        /// How it failed.
        message: String,
    },
    /// An unknown user or group.
    #[error("{0}")]
    Lookup(String),
    /// Input that cannot be applied (a network-config with an error, naming the key).
    #[error("{0}")]
    Input(String),
}

/// An account from `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// The system provisioning acts on.
#[derive(Debug, Clone)]
pub struct System {
    /// Paths.
    pub layout: Layout,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SystemError + '_ {
    move |source| SystemError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl System {
    /// The system at `layout.root`.
    pub fn new(layout: Layout) -> System {
        System { layout }
    }

    /// Whether this is a sandbox root rather than the running system.
    pub fn is_sandbox(&self) -> bool {
        self.layout.root != Path::new("/")
    }

    /// Writes a file atomically with mode and optional owner, creating parent directories.
    pub fn write_file(
        &self,
        absolute: &str,
        data: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, SystemError> {
        let path = self.layout.host(absolute)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        egs_sys::fs::write_atomic(&path, data, mode).map_err(io(&path))?;
        if let Some((uid, gid)) = owner {
            egs_sys::fs::set_owner(&path, uid, gid).map_err(io(&path))?;
            // chown clears setuid/setgid bits: put the requested mode back.
            egs_sys::fs::set_mode(&path, mode).map_err(io(&path))?;
        }
        Ok(path)
    }

    /// Reads a file below the root (`None` when absent).
    pub fn read_file(&self, absolute: &str) -> Result<Option<Vec<u8>>, SystemError> {
        let path = self.layout.host(absolute)?;
        match std::fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SystemError::Io { path, source: e }),
        }
    }

    /// Creates a directory with mode and owner.
    pub fn make_dir(
        &self,
        absolute: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, SystemError> {
        let path = self.layout.host(absolute)?;
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        if let Some((uid, gid)) = owner {
            egs_sys::fs::set_owner(&path, uid, gid).map_err(io(&path))?;
        }
        egs_sys::fs::set_mode(&path, mode).map_err(io(&path))?;
        Ok(path)
    }

    /// Runs a command, turning failure into an error that names it.
    pub fn run(&self, command: &Command) -> Result<Output, SystemError> {
        let out = command.run().map_err(|e| SystemError::Command {
            command: command.describe(),
            message: e.to_string(),
        })?;
        if !out.success() {
            return Err(SystemError::Command {
                command: command.describe(),
                message: out.failure_text(),
            });
        }
        Ok(out)
    }

    /// A shadow-utils command (`useradd`, `usermod`, `groupadd`, `chpasswd`, `chage`) for
    /// this root: in a sandbox with `--prefix <root>`, or `--root <root>` for the programs
    /// that only know that (`chpasswd`, `chage`).
    pub fn shadow(&self, program: &str, args: &[&str]) -> Command {
        let mut argv = vec![program.to_string()];
        if self.is_sandbox() {
            let flag = if matches!(program, "chpasswd" | "chage") {
                "--root"
            } else {
                "--prefix"
            };
            argv.push(flag.into());
            argv.push(self.layout.root.display().to_string());
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        Command::new(argv)
    }

    /// The account `name`, from the root's `/etc/passwd`.
    pub fn account(&self, name: &str) -> Result<Option<Account>, SystemError> {
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

    /// The id of group `name`, from the root's `/etc/group`.
    pub fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError> {
        let group = self.read_file("/etc/group")?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&group).lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| f[2].parse().unwrap_or(0))
        }))
    }

    /// `user[:group]` → numeric ids, as `chown` resolves them.
    pub fn resolve_owner(&self, owner: &str) -> Result<(u32, u32), SystemError> {
        let (user, group) = owner.split_once(':').unwrap_or((owner, ""));
        let account = self
            .account(user)?
            .ok_or_else(|| SystemError::Lookup(format!("unknown user '{user}'")))?;
        let gid = if group.is_empty() {
            account.gid
        } else {
            self.group_id(group)?
                .ok_or_else(|| SystemError::Lookup(format!("unknown group '{group}'")))?
        };
        Ok((account.uid, gid))
    }

    /// Sets the running host name with `sethostname(2)`, as cloud-init's Debian distro
    /// does (no D-Bus or systemd-hostnamed needed); the static name is `/etc/hostname`,
    /// written by the module. A sandbox only records it.
    pub fn set_hostname(&self, name: &str) -> Result<(), SystemError> {
        if self.is_sandbox() {
            return self.record_action("hostname", name);
        }
        egs_sys::host::set_hostname(name).map_err(|e| SystemError::Command {
            command: format!("sethostname {name}"),
            message: e.to_string(),
        })
    }

    /// Renames a network interface (taken down first, as the kernel requires), as
    /// cloud-init does in its local stage for `set-name` and v1 names. A sandbox only
    /// records it.
    pub fn rename_interface(&self, current: &str, wanted: &str) -> Result<(), SystemError> {
        if self.is_sandbox() {
            return self.record_action("rename-interface", &format!("{current} {wanted}"));
        }
        self.run(&Command::new(["ip", "link", "set", "dev", current, "down"]))?;
        self.run(&Command::new([
            "ip", "link", "set", "dev", current, "name", wanted,
        ]))
        .map(|_| ())
    }

    /// Turns netplan's YAML into the backend's files now (`netplan generate`): its systemd
    /// generator ran at boot, before the local stage wrote the configuration. A sandbox
    /// only records it.
    pub fn netplan_generate(&self) -> Result<(), SystemError> {
        if self.is_sandbox() {
            return self.record_action("netplan", "generate");
        }
        self.run(&Command::new(["netplan", "generate"])).map(|_| ())
    }

    /// Reboots, powers off or halts through the init system (a sandbox only records it).
    pub fn power(
        &self,
        action: &str,
        delay_minutes: u32,
        message: Option<&str>,
    ) -> Result<(), SystemError> {
        if self.is_sandbox() {
            return self.record_action("power", &format!("{action} +{delay_minutes}"));
        }
        let flag = match action {
            "poweroff" => "-P",
            "halt" => "-H",
            _ => "-r",
        };
        let mut argv = vec![
            "shutdown".to_string(),
            flag.to_string(),
            format!("+{delay_minutes}"),
        ];
        if let Some(m) = message {
            argv.push(m.to_string());
        }
        self.run(&Command::new(argv)).map(|_| ())
    }

    /// Appends an action a sandbox did not perform to `<state>/sandbox-actions.log`.
    pub fn record_action(&self, what: &str, value: &str) -> Result<(), SystemError> {
        use std::io::Write;
        let path = self.layout.state.join("sandbox-actions.log");
        create_private_dir(&self.layout.state).map_err(io(&self.layout.state))?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        writeln!(f, "{what} {value}").map_err(io(&path))
    }
}

/// Whether a program is on `PATH`.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
