//! The operating system as provisioning changes it — the one seam every module goes
//! through: files with owners and modes, accounts and passwords, the host name, the time
//! zone, network configuration, disks, power, and the programs modules run.
//!
//! Implementations: [`Linux`] (the running system: shadow-utils as cloud-init uses them,
//! `sethostname(2)`, `shutdown`), [`Sandbox`] (a directory as the root: every file effect
//! below it, shadow-utils with `--prefix`/`--root`, host name, interface renames, disk
//! changes and power actions recorded in the state directory instead of performed) and
//! [`Windows`] (files and power today; accounts, host name, time zone and network are
//! built by the Windows provisioning issue and say so). [`for_layout`] picks one. File
//! operations are provided methods: every implementation shares them, and they only ever
//! touch paths that went through [`Layout::host`].

mod linux;
mod windows;

use std::path::{Path, PathBuf};

use egs_cloudconfig::schema::User;
use egs_netconfig::apply::Outcome as NetOutcome;
use egs_netconfig::system::SystemInterface;
use egs_netconfig::NetworkConfig;

use crate::command::{Command, Output};
use crate::state::{Layout, OutsideRoot};

pub use linux::{Linux, Sandbox};
pub use windows::{has_sudo, windows_groups, Windows, WindowsSandbox, ADMINISTRATORS};

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
    /// A module panicked (a bug): it is recorded failed and the other modules still run.
    #[error("internal error: the module panicked ({0}); the other modules still ran")]
    Panicked(String),
    /// An effect this system does not have yet (a later release builds it).
    #[error("{0} is not built yet on {1}")]
    NotBuilt(&'static str, &'static str),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SystemError + '_ {
    move |source| SystemError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends a line to `<state>/sandbox-actions.log`: what a sandbox records instead of
/// doing it (both the Linux and the Windows sandbox).
pub(crate) fn record_action(layout: &Layout, line: &str) -> Result<(), SystemError> {
    use std::io::Write;
    let state = &layout.state;
    crate::state::create_private_dir(state).map_err(io(state))?;
    let path = state.join("sandbox-actions.log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    writeln!(f, "{line}").map_err(io(&path))
}

/// An account.
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

/// What `power_state` (or a script's reboot request) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    /// Restart.
    Reboot,
    /// Power off.
    Poweroff,
    /// Halt.
    Halt,
}

impl PowerAction {
    /// cloud-init's word for it (`power_state.mode`).
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::Reboot => "reboot",
            PowerAction::Poweroff => "poweroff",
            PowerAction::Halt => "halt",
        }
    }
}

/// What [`System::change_disk`] did.
#[derive(Debug)]
pub enum DiskChange {
    /// The program ran (whatever its exit status).
    Ran(Output),
    /// A sandbox recorded it.
    Recorded,
    /// The program is not installed.
    NotInstalled,
}

/// A block device, as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Kernel name (`sda1`).
    pub name: String,
    /// Partition number, for a partition.
    pub partition: Option<u32>,
    /// The disk a partition is on (`/dev/sda`).
    pub disk: Option<String>,
}

/// The system provisioning acts on.
pub trait System: Send + Sync {
    /// Its paths.
    fn layout(&self) -> &Layout;

    /// Whether this is a Windows guest (modules follow the original's Windows rules: path
    /// translation, `Administrators`, `.cmd`/PowerShell scripts, no `/etc`).
    fn is_windows(&self) -> bool {
        false
    }

    /// The account `name`.
    fn account(&self, name: &str) -> Result<Option<Account>, SystemError>;
    /// The id of group `name`.
    fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError>;
    /// Creates group `name`.
    fn create_group(&self, name: &str) -> Result<(), SystemError>;
    /// Adds the existing `user` to the existing `group`.
    fn add_to_group(&self, user: &str, group: &str) -> Result<(), SystemError>;
    /// Creates the account `user` describes (groups must exist).
    fn create_user(&self, user: &User) -> Result<(), SystemError>;
    /// Sets a password from its hash (`$6$…`); the hash never reaches argv or logs.
    fn set_password_hash(&self, user: &str, hash: &str) -> Result<(), SystemError>;
    /// Sets a password given in clear text; it never reaches argv or logs. Linux hashes it
    /// (SHA-512 crypt) and sets the hash; Windows takes clear text only.
    fn set_password_plain(&self, user: &str, plain: &str) -> Result<(), SystemError> {
        let hash = crate::modules::users_groups::hash_password(plain)?;
        self.set_password_hash(user, &hash)
    }
    /// Locks the password (key logins keep working).
    fn lock_password(&self, user: &str) -> Result<(), SystemError>;
    /// Makes the user change the password at the next login.
    fn expire_password(&self, user: &str) -> Result<(), SystemError>;

    /// Sets the host name (on Linux the running one; the static name is a file the module
    /// writes). `true`: it takes effect only after a reboot (a Windows computer name).
    fn set_hostname(&self, name: &str) -> Result<bool, SystemError>;
    /// Sets the time zone (an IANA name).
    fn set_timezone(&self, zone: &str) -> Result<(), SystemError>;

    /// The system's network interfaces.
    fn network_interfaces(&self) -> Vec<SystemInterface>;
    /// The file that turns network configuration off, if any.
    fn network_disabled_by(&self) -> Option<PathBuf>;
    /// Writes `config` (or the DHCP fallback) for the network stack the system uses.
    fn apply_network(
        &self,
        config: Option<NetworkConfig>,
        interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError>;
    /// Renames a network interface.
    fn rename_interface(&self, current: &str, wanted: &str) -> Result<(), SystemError>;
    /// Turns netplan's YAML into the backend's files now.
    fn netplan_generate(&self) -> Result<(), SystemError>;

    /// Runs a command that changes disks or file systems (`growpart`, `resize2fs`).
    fn change_disk(&self, argv: &[String]) -> Result<DiskChange, SystemError>;
    /// Whether a program is installed.
    fn has_program(&self, name: &str) -> bool;
    /// The command that runs a user script (`shebang`: it starts with `#!`).
    fn script_command(&self, script: &Path, shebang: bool) -> Command;
    /// Reboots, powers off or halts after `delay_minutes`.
    fn power(
        &self,
        action: PowerAction,
        delay_minutes: u32,
        message: Option<&str>,
    ) -> Result<(), SystemError>;

    /// Runs a program and returns how it ended, whatever the exit status.
    fn execute(&self, command: &Command) -> Result<Output, SystemError> {
        command.run().map_err(|e| SystemError::Command {
            command: command.describe(),
            message: e.to_string(),
        })
    }

    /// Runs a program; a non-zero exit status is an error that names it.
    fn run(&self, command: &Command) -> Result<Output, SystemError> {
        let out = self.execute(command)?;
        if !out.success() {
            return Err(SystemError::Command {
                command: command.describe(),
                message: out.failure_text(),
            });
        }
        Ok(out)
    }

    /// Writes a file atomically with mode and optional owner, creating parent directories.
    fn write_file(
        &self,
        absolute: &str,
        data: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, SystemError> {
        let path = self.layout().host(absolute)?;
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

    /// Reads a file (`None` when absent).
    fn read_file(&self, absolute: &str) -> Result<Option<Vec<u8>>, SystemError> {
        let path = self.layout().host(absolute)?;
        match std::fs::read(&path) {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SystemError::Io { path, source: e }),
        }
    }

    /// Creates a directory (and its parents) with mode and owner.
    fn make_dir(
        &self,
        absolute: &str,
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<PathBuf, SystemError> {
        let path = self.layout().host(absolute)?;
        std::fs::create_dir_all(&path).map_err(io(&path))?;
        if let Some((uid, gid)) = owner {
            egs_sys::fs::set_owner(&path, uid, gid).map_err(io(&path))?;
        }
        egs_sys::fs::set_mode(&path, mode).map_err(io(&path))?;
        Ok(path)
    }

    /// Whether `absolute` is a directory.
    fn is_dir(&self, absolute: &str) -> Result<bool, SystemError> {
        Ok(self.layout().host(absolute)?.is_dir())
    }

    /// Whether `absolute` exists.
    fn exists(&self, absolute: &str) -> Result<bool, SystemError> {
        Ok(self.layout().host(absolute)?.exists())
    }

    /// The names in a directory, sorted (empty when it does not exist).
    fn list_dir(&self, absolute: &str) -> Result<Vec<String>, SystemError> {
        let path = self.layout().host(absolute)?;
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SystemError::Io { path, source: e }),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Removes a file; returns whether it existed.
    fn remove_file(&self, absolute: &str) -> Result<bool, SystemError> {
        let path = self.layout().host(absolute)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(SystemError::Io { path, source: e }),
        }
    }

    /// Renames a file (atomically, within one file system).
    fn rename(&self, from: &str, to: &str) -> Result<(), SystemError> {
        let (from, to) = (self.layout().host(from)?, self.layout().host(to)?);
        std::fs::rename(&from, &to).map_err(io(&to))
    }

    /// Windows: gives a written file the NTFS access rules standing for a POSIX `mode`
    /// (`egs_sys::fs::mode_sddl`) and the local account `owner`. Other systems have modes
    /// and owners of their own and refuse this.
    fn set_windows_access(
        &self,
        absolute: &str,
        mode: Option<u32>,
        owner: Option<&str>,
    ) -> Result<(), SystemError> {
        let _ = (mode, owner);
        Err(SystemError::Input(format!(
            "{absolute}: NTFS access rules exist on Windows only"
        )))
    }

    /// Makes `link` a symbolic link to `target` (replacing what is there, atomically).
    fn replace_symlink(&self, target: &str, link: &str) -> Result<(), SystemError> {
        let path = self.layout().host(link)?;
        egs_sys::fs::replace_symlink(Path::new(target), &path).map_err(io(&path))
    }

    /// The block device `major:minor`, from sysfs.
    fn block_device(&self, major_minor: &str) -> Result<Option<BlockDevice>, SystemError> {
        let sys = self
            .layout()
            .host(&format!("/sys/dev/block/{major_minor}"))?;
        let Ok(target) = std::fs::canonicalize(&sys) else {
            return Ok(None);
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let partition = std::fs::read_to_string(target.join("partition"))
            .ok()
            .and_then(|p| p.trim().parse().ok());
        let disk = partition
            .and(target.parent())
            .and_then(|p| p.file_name())
            .map(|n| format!("/dev/{}", n.to_string_lossy()));
        Ok(Some(BlockDevice {
            name,
            partition,
            disk,
        }))
    }

    /// `user[:group]` → numeric ids, as `chown` resolves them.
    fn resolve_owner(&self, owner: &str) -> Result<(u32, u32), SystemError> {
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
}

/// The system at `layout.root`: a sandbox for any root but `/` ([`WindowsSandbox`] on
/// Windows, [`Sandbox`] elsewhere), otherwise this OS's.
pub fn for_layout(layout: Layout) -> Box<dyn System> {
    if layout.root != Path::new("/") && egs_sys::WINDOWS {
        Box::new(WindowsSandbox::new(layout))
    } else if layout.root != Path::new("/") {
        Box::new(Sandbox::new(layout))
    } else if egs_sys::WINDOWS {
        Box::new(Windows::new(layout))
    } else {
        Box::new(Linux::new(layout))
    }
}

/// Whether a program is on `PATH`.
pub fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}
