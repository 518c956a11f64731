//! The Windows system. Files (below the root, through the shared provided methods), the
//! programs modules run and power actions (`shutdown.exe`) work today; accounts
//! (NetUserAdd and friends), the computer name, the time zone and network configuration
//! are built by the Windows provisioning issue, and until then each says so with
//! [`SystemError::NotBuilt`] instead of pretending.

use std::path::{Path, PathBuf};

use egs_cloudconfig::schema::User;
use egs_netconfig::apply::Outcome as NetOutcome;
use egs_netconfig::system::SystemInterface;
use egs_netconfig::NetworkConfig;

use super::{Account, DiskChange, PowerAction, System, SystemError};
use crate::command::Command;
use crate::state::Layout;

const OS: &str = "Windows";

fn not_built<T>(what: &'static str) -> Result<T, SystemError> {
    Err(SystemError::NotBuilt(what, OS))
}

/// A Windows guest.
#[derive(Debug, Clone)]
pub struct Windows {
    layout: Layout,
}

impl Windows {
    /// The system with these paths.
    pub fn new(layout: Layout) -> Windows {
        Windows { layout }
    }
}

impl System for Windows {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn account(&self, _name: &str) -> Result<Option<Account>, SystemError> {
        not_built("looking up accounts")
    }

    fn group_id(&self, _name: &str) -> Result<Option<u32>, SystemError> {
        not_built("looking up groups")
    }

    fn create_group(&self, _name: &str) -> Result<(), SystemError> {
        not_built("creating groups")
    }

    fn add_to_group(&self, _user: &str, _group: &str) -> Result<(), SystemError> {
        not_built("adding users to groups")
    }

    fn create_user(&self, _user: &User) -> Result<(), SystemError> {
        not_built("creating users")
    }

    fn set_password_hash(&self, _user: &str, _hash: &str) -> Result<(), SystemError> {
        not_built("setting passwords")
    }

    fn lock_password(&self, _user: &str) -> Result<(), SystemError> {
        not_built("locking passwords")
    }

    fn expire_password(&self, _user: &str) -> Result<(), SystemError> {
        not_built("expiring passwords")
    }

    fn set_hostname(&self, _name: &str) -> Result<(), SystemError> {
        not_built("setting the computer name")
    }

    fn set_timezone(&self, _zone: &str) -> Result<(), SystemError> {
        not_built("setting the time zone")
    }

    fn network_interfaces(&self) -> Vec<SystemInterface> {
        Vec::new()
    }

    fn network_disabled_by(&self) -> Option<PathBuf> {
        None
    }

    fn apply_network(
        &self,
        _config: Option<NetworkConfig>,
        _interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError> {
        not_built("network configuration")
    }

    fn rename_interface(&self, _current: &str, _wanted: &str) -> Result<(), SystemError> {
        not_built("renaming network interfaces")
    }

    fn netplan_generate(&self) -> Result<(), SystemError> {
        not_built("netplan")
    }

    fn change_disk(&self, _argv: &[String]) -> Result<DiskChange, SystemError> {
        not_built("growing partitions and file systems")
    }

    fn has_program(&self, name: &str) -> bool {
        super::which(&format!("{name}.exe"))
    }

    /// PowerShell for `.ps1`, `cmd.exe` for everything else (cloudbase-init's rule for
    /// scripts without a known extension is the same).
    fn script_command(&self, script: &Path, _shebang: bool) -> Command {
        let path = script.display().to_string();
        let is_powershell = script
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("ps1"));
        if is_powershell {
            Command::new([
                "powershell.exe",
                "-NoProfile",
                "-NonInteractive",
                "-ExecutionPolicy",
                "Bypass",
                "-File",
                &path,
            ])
        } else {
            Command::new(["cmd.exe", "/C", &path])
        }
    }

    /// `shutdown.exe /r` or `/s` with the delay in seconds and the message as its comment.
    fn power(
        &self,
        action: PowerAction,
        delay_minutes: u32,
        message: Option<&str>,
    ) -> Result<(), SystemError> {
        self.run(&power_command(action, delay_minutes, message))
            .map(drop)
    }
}

fn power_command(action: PowerAction, delay_minutes: u32, message: Option<&str>) -> Command {
    let mut argv = vec!["shutdown.exe".to_string()];
    match action {
        PowerAction::Reboot => argv.push("/r".into()),
        PowerAction::Poweroff => argv.push("/s".into()),
        // Windows has no halt; a power-off is the nearest.
        PowerAction::Halt => argv.push("/s".into()),
    }
    argv.extend(["/t".to_string(), (delay_minutes * 60).to_string()]);
    if let Some(m) = message {
        argv.extend(["/c".to_string(), m.to_string()]);
    }
    Command::new(argv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_built_says_so_and_files_work() {
        let dir = tempfile::tempdir().unwrap();
        let system = Windows::new(Layout::new(dir.path(), None));
        let e = system.create_user(&User::default()).unwrap_err();
        assert_eq!(e.to_string(), "creating users is not built yet on Windows");
        assert!(system.set_hostname("x").is_err());
        assert!(system.apply_network(None, &[]).is_err());
        system
            .write_file("/ProgramData/x.txt", b"hello", 0o644, None)
            .unwrap();
        assert_eq!(
            system.read_file("/ProgramData/x.txt").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn scripts_and_power_use_the_windows_programs() {
        let system = Windows::new(Layout::new(Path::new("/"), None));
        assert_eq!(
            system.script_command(Path::new("C:/s/run.PS1"), false).argv[0],
            "powershell.exe"
        );
        assert_eq!(
            system.script_command(Path::new("C:/s/run.cmd"), false).argv,
            ["cmd.exe", "/C", "C:/s/run.cmd"]
        );
        assert_eq!(
            power_command(PowerAction::Reboot, 2, Some("EGS")).argv,
            ["shutdown.exe", "/r", "/t", "120", "/c", "EGS"]
        );
    }
}
