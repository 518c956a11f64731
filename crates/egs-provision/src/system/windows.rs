//! Windows guests. [`Windows`] is the running system: files (below the root, through the
//! shared provided methods), local users and groups (`egs_sys::accounts`: NetUserAdd and
//! friends, password expiry through `usri3_password_expired`), the computer name
//! (`SetComputerNameExW`, effective after a reboot), scripts through
//! `powershell.exe`/`cmd.exe`, the time zone (`tzutil`), network configuration (the
//! `netsh` plan of `egs_netconfig::windows` for the adapters `GetAdaptersAddresses` lists)
//! and power actions (`shutdown.exe`); growing disks is not built and says so with
//! [`SystemError::NotBuilt`] instead of pretending. [`WindowsSandbox`] is a directory
//! standing for `C:\`: files and scripts for real, accounts, groups, passwords (never the
//! password itself), the computer name, the time zone, the network plan (for the adapters
//! `<root>/sandbox-adapters.json` describes) and power recorded in
//! `<state>/sandbox-accounts.json` and `<state>/sandbox-actions.log`, as the Linux sandbox
//! records what it cannot do.

use std::path::{Path, PathBuf};

use egs_cloudconfig::schema::{Sudo, User};
use egs_netconfig::apply::Outcome as NetOutcome;
use egs_netconfig::system::SystemInterface;
use egs_netconfig::windows::{Adapter, Step, TCPIP_PARAMETERS};
use egs_netconfig::NetworkConfig;

use super::{Account, DiskChange, PowerAction, System, SystemError};
use crate::command::Command;
use crate::state::Layout;
use egs_sys::accounts;

const OS: &str = "Windows";

fn not_built<T>(what: &'static str) -> Result<T, SystemError> {
    Err(SystemError::NotBuilt(what, OS))
}

/// An account call's failure, naming what was being done (never a password: the
/// errors of `egs_sys::accounts` carry none).
fn failed(what: &'static str) -> impl Fn(std::io::Error) -> SystemError {
    move |e| SystemError::Command {
        command: what.to_string(),
        message: e.to_string(),
    }
}

/// The Windows id for cloud-config's `timezone` (IANA names mapped, Windows ids as given).
fn windows_time_zone(zone: &str) -> Result<String, SystemError> {
    if !egs_sys::timezone::is_iana(zone) {
        return Ok(zone.to_string());
    }
    egs_sys::timezone::windows_id(zone)
        .map_err(|e| SystemError::Input(format!("timezone: unknown id '{zone}' ({e})")))
}

/// A group as this machine names it: `Administrators` is the built-in group of SID
/// S-1-5-32-544, whatever its localized name.
fn local_group(name: &str) -> Result<String, SystemError> {
    if name.eq_ignore_ascii_case(ADMINISTRATORS) {
        accounts::administrators_group().map_err(failed("naming the Administrators group"))
    } else {
        Ok(name.to_string())
    }
}

/// Plans `config` for `adapters` and runs each step through `run_step`.
fn apply_windows_network(
    config: Option<NetworkConfig>,
    adapters: &[Adapter],
    search_list: &[String],
    mut run_step: impl FnMut(&Step) -> Result<(), SystemError>,
) -> Result<NetOutcome, SystemError> {
    let Some(config) = config else {
        return Ok(NetOutcome::NothingToConfigure);
    };
    if config.is_disabled() {
        return Ok(NetOutcome::Disabled);
    }
    let plan = egs_netconfig::windows::plan(&config, adapters, search_list)
        .map_err(|e| SystemError::Input(e.to_string()))?;
    for step in &plan.steps {
        run_step(step)?;
    }
    Ok(NetOutcome::Applied {
        source: config.input,
        steps: plan.steps.iter().map(Step::describe).collect(),
        warnings: plan.warnings,
    })
}

/// `SearchList` as Windows stores it: comma-separated (spaces tolerated).
fn split_search_list(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

fn adapter(info: egs_sys::adapters::AdapterInfo) -> Adapter {
    Adapter {
        index: info.index,
        guid: info.guid,
        alias: info.alias,
        mac: info.mac,
        manual_ipv6: info.manual_ipv6,
    }
}

/// An adapter of `<root>/sandbox-adapters.json`, as a test describes the machine.
#[derive(Debug, Clone, serde::Deserialize)]
struct SandboxAdapter {
    index: u32,
    #[serde(default)]
    guid: String,
    #[serde(default)]
    alias: String,
    mac: String,
    #[serde(default)]
    manual_ipv6: Vec<String>,
}

impl From<SandboxAdapter> for Adapter {
    fn from(a: SandboxAdapter) -> Adapter {
        Adapter {
            index: a.index,
            guid: a.guid,
            alias: a.alias,
            mac: a.mac,
            manual_ipv6: a.manual_ipv6,
        }
    }
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

impl Windows {
    /// Runs one network step: `netsh.exe` (a failing delete of what is not there is
    /// expected), or a registry value.
    fn network_step(&self, step: &Step) -> Result<(), SystemError> {
        match step {
            Step::Netsh { args, may_fail } => {
                let mut argv = vec!["netsh.exe".to_string()];
                argv.extend(args.iter().cloned());
                let command = Command::new(argv);
                if *may_fail {
                    self.execute(&command).map(drop)
                } else {
                    self.run(&command).map(drop)
                }
            }
            Step::ConnectionSuffix { guid, suffix } => egs_sys::registry::set_string(
                &format!(r"{TCPIP_PARAMETERS}\Interfaces\{guid}"),
                "Domain",
                suffix,
            )
            .map_err(failed("setting the connection DNS suffix")),
            Step::SearchList(list) => {
                egs_sys::registry::set_string(TCPIP_PARAMETERS, "SearchList", &list.join(","))
                    .map_err(failed("setting the DNS suffix search list"))
            }
        }
    }
}

impl System for Windows {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn account(&self, name: &str) -> Result<Option<Account>, SystemError> {
        let exists = accounts::user_exists(name).map_err(failed("looking up a user"))?;
        Ok(exists.then(|| Account {
            name: name.to_string(),
            uid: 0,
            gid: 0,
            home: format!("/Users/{name}"),
        }))
    }

    fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError> {
        let local = local_group(name)?;
        let exists = accounts::group_exists(&local).map_err(failed("looking up a group"))?;
        Ok(exists.then_some(0))
    }

    fn create_group(&self, name: &str) -> Result<(), SystemError> {
        accounts::create_group(&local_group(name)?).map_err(failed("creating a group"))
    }

    fn add_to_group(&self, user: &str, group: &str) -> Result<(), SystemError> {
        accounts::add_member(&local_group(group)?, user).map_err(failed("adding a group member"))
    }

    /// `NetUserAdd` with a random password no one knows (key logins need none; a
    /// password from cloud-config is set next), the full name from `gecos`, then the
    /// groups (`Administrators` for `sudo`).
    fn create_user(&self, user: &User) -> Result<(), SystemError> {
        let password = accounts::random_password().map_err(failed("creating a user"))?;
        accounts::create_user(&user.name, &password).map_err(failed("creating a user"))?;
        if let Some(full_name) = &user.gecos {
            accounts::set_full_name(&user.name, full_name)
                .map_err(failed("setting a full name"))?;
        }
        for group in windows_groups(user) {
            self.add_to_group(&user.name, &group)?;
        }
        Ok(())
    }

    fn set_password_hash(&self, user: &str, _hash: &str) -> Result<(), SystemError> {
        Err(SystemError::Input(format!(
            "{user}: Windows takes passwords in clear text only, not as hashes"
        )))
    }

    fn set_password_plain(&self, user: &str, plain: &str) -> Result<(), SystemError> {
        accounts::set_password(user, plain).map_err(failed("setting a password"))
    }

    /// Disables the account (`lock_passwd: true`), as the original does.
    fn lock_password(&self, user: &str) -> Result<(), SystemError> {
        accounts::set_disabled(user, true).map_err(failed("disabling an account"))
    }

    /// The password must be changed at the next logon (`usri3_password_expired`).
    fn expire_password(&self, user: &str) -> Result<(), SystemError> {
        accounts::expire_password(user).map_err(failed("expiring a password"))
    }

    /// `SetComputerNameExW` when the active name differs (case aside); the new name needs
    /// a reboot.
    fn set_hostname(&self, name: &str) -> Result<bool, SystemError> {
        let failed = |e: std::io::Error| SystemError::Command {
            command: format!("SetComputerNameEx {name}"),
            message: e.to_string(),
        };
        if egs_sys::host::hostname()
            .map_err(failed)?
            .eq_ignore_ascii_case(name)
        {
            return Ok(false);
        }
        egs_sys::host::set_hostname(name).map_err(failed)?;
        Ok(true)
    }

    /// `tzutil /s` with the Windows id: given as is, or mapped from an IANA name by the
    /// ICU that Windows ships; an unknown zone fails the module (`timezone: unknown id`).
    fn set_timezone(&self, zone: &str) -> Result<(), SystemError> {
        let id = windows_time_zone(zone)?;
        self.run(&Command::new(["tzutil.exe", "/s", &id])).map(drop)
    }

    fn network_interfaces(&self) -> Vec<SystemInterface> {
        Vec::new()
    }

    fn network_disabled_by(&self) -> Option<PathBuf> {
        None
    }

    /// The DACL for `mode` (protected), then the owner looked up by name.
    fn set_windows_access(
        &self,
        absolute: &str,
        mode: Option<u32>,
        owner: Option<&str>,
    ) -> Result<(), SystemError> {
        let path = self.layout.host(absolute)?;
        if let Some(mode) = mode {
            egs_sys::fs::set_mode_as_acl(&path, mode).map_err(super::io(&path))?;
        }
        if let Some(owner) = owner {
            egs_sys::fs::set_owner_name(&path, owner).map_err(super::io(&path))?;
        }
        Ok(())
    }

    /// The plan of [`egs_netconfig::windows`] for the adapters `GetAdaptersAddresses`
    /// lists: `netsh.exe` for addresses, routes, DNS servers and MTU, the registry for
    /// the DNS suffixes.
    fn apply_network(
        &self,
        config: Option<NetworkConfig>,
        _interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError> {
        let adapters = egs_sys::adapters::list().map_err(failed("listing network adapters"))?;
        let adapters: Vec<Adapter> = adapters.into_iter().map(adapter).collect();
        let search_list = egs_sys::registry::read_strings(TCPIP_PARAMETERS)
            .ok()
            .and_then(|values| {
                values
                    .into_iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("SearchList"))
            })
            .map(|(_, list)| split_search_list(&list))
            .unwrap_or_default();
        apply_windows_network(config, &adapters, &search_list, |step| {
            self.network_step(step)
        })
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

    fn script_command(&self, script: &Path, _shebang: bool) -> Command {
        script_command(script)
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

    fn is_windows(&self) -> bool {
        true
    }
}

/// How a staged script runs (`original-provisioning.md` §5.4): `.ps1` through PowerShell
/// with UTF-8 console encodings and its exit code passed on, everything else (`.cmd`,
/// `.bat`) through `cmd.exe /c`.
pub fn script_command(script: &Path) -> Command {
    let path = script.display().to_string();
    let is_powershell = script
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("ps1"));
    if is_powershell {
        let wrapper = format!(
            "& {{ [Console]::OutputEncoding = [Text.Encoding]::UTF8; \
             [Console]::InputEncoding = [Text.Encoding]::UTF8; \
             $OutputEncoding = [Text.Encoding]::UTF8; & '{}'; exit $LASTEXITCODE }}",
            path.replace('\'', "''")
        );
        Command::new([
            "powershell.exe",
            "-NoProfile",
            "-NonInteractive",
            "-ExecutionPolicy",
            "Bypass",
            "-Command",
            &wrapper,
        ])
    } else {
        Command::new(["cmd.exe", "/c", &path])
    }
}

/// The built-in administrators group (`S-1-5-32-544`), where `sudo` puts a user.
pub const ADMINISTRATORS: &str = "Administrators";

/// Windows' local groups (and a built-in user) a fresh machine has.
const BUILT_IN_GROUPS: [&str; 3] = [ADMINISTRATORS, "Users", "Remote Desktop Users"];
const BUILT_IN_ADMIN: &str = "Administrator";

/// A recorded account of [`WindowsSandbox`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxUser {
    /// The name as created.
    pub name: String,
    /// Full name (cloud-config's `gecos`).
    pub full_name: Option<String>,
    /// Whether a password was set (the password is never recorded).
    pub password_set: bool,
    /// Whether the account is disabled (`lock_passwd: true`).
    pub disabled: bool,
    /// Whether the password must change at the next logon.
    pub must_change_password: bool,
}

/// What [`WindowsSandbox`] records of accounts: users and groups with their members, in
/// creation order; names compare case-insensitively, as Windows compares them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SandboxAccounts {
    /// The users.
    pub users: Vec<SandboxUser>,
    /// The groups as (name, members).
    pub groups: Vec<(String, Vec<String>)>,
}

impl Default for SandboxAccounts {
    fn default() -> SandboxAccounts {
        SandboxAccounts {
            users: vec![SandboxUser {
                name: BUILT_IN_ADMIN.into(),
                ..SandboxUser::default()
            }],
            groups: BUILT_IN_GROUPS
                .iter()
                .map(|g| {
                    let members = if *g == ADMINISTRATORS {
                        vec![BUILT_IN_ADMIN.to_string()]
                    } else {
                        Vec::new()
                    };
                    (g.to_string(), members)
                })
                .collect(),
        }
    }
}

impl SandboxAccounts {
    fn user(&mut self, name: &str) -> Result<&mut SandboxUser, SystemError> {
        self.users
            .iter_mut()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| SystemError::Lookup(format!("unknown user '{name}'")))
    }

    fn group(&mut self, name: &str) -> Result<&mut Vec<String>, SystemError> {
        self.groups
            .iter_mut()
            .find(|(g, _)| g.eq_ignore_ascii_case(name))
            .map(|(_, members)| members)
            .ok_or_else(|| SystemError::Lookup(format!("unknown group '{name}'")))
    }
}

/// A directory standing for a Windows guest's `C:\` (`run --root` on Windows).
#[derive(Debug, Clone)]
pub struct WindowsSandbox {
    layout: Layout,
}

impl WindowsSandbox {
    /// The sandbox at `layout.root`.
    pub fn new(layout: Layout) -> WindowsSandbox {
        WindowsSandbox { layout }
    }

    fn accounts_file(&self) -> PathBuf {
        self.layout.state.join("sandbox-accounts.json")
    }

    /// The recorded accounts (the built-in ones when nothing is recorded yet).
    pub fn accounts(&self) -> Result<SandboxAccounts, SystemError> {
        crate::state::read_json(&self.accounts_file())
            .map(Option::unwrap_or_default)
            .map_err(|e| SystemError::Input(e.to_string()))
    }

    /// Changes the recorded accounts and notes `what` in the actions log.
    fn change(
        &self,
        what: &str,
        edit: impl FnOnce(&mut SandboxAccounts) -> Result<(), SystemError>,
    ) -> Result<(), SystemError> {
        let mut accounts = self.accounts()?;
        edit(&mut accounts)?;
        crate::state::write_json(&self.accounts_file(), &accounts, 0o600)
            .map_err(|e| SystemError::Input(e.to_string()))?;
        self.record(what)
    }

    /// Appends an action not performed to `<state>/sandbox-actions.log`.
    fn record(&self, what: &str) -> Result<(), SystemError> {
        super::record_action(&self.layout, what)
    }
}

impl System for WindowsSandbox {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn is_windows(&self) -> bool {
        true
    }

    fn account(&self, name: &str) -> Result<Option<Account>, SystemError> {
        let accounts = self.accounts()?;
        Ok(accounts
            .users
            .iter()
            .position(|u| u.name.eq_ignore_ascii_case(name))
            .map(|i| Account {
                name: accounts.users[i].name.clone(),
                uid: if i == 0 { 500 } else { 1000 + i as u32 },
                gid: 513,
                home: format!("/Users/{}", accounts.users[i].name),
            }))
    }

    fn group_id(&self, name: &str) -> Result<Option<u32>, SystemError> {
        Ok(self
            .accounts()?
            .groups
            .iter()
            .position(|(g, _)| g.eq_ignore_ascii_case(name))
            .map(|i| 544 + i as u32))
    }

    fn create_group(&self, name: &str) -> Result<(), SystemError> {
        self.change(&format!("group created: {name}"), |a| {
            a.groups.push((name.to_string(), Vec::new()));
            Ok(())
        })
    }

    fn add_to_group(&self, user: &str, group: &str) -> Result<(), SystemError> {
        self.change(&format!("group {group}: added {user}"), |a| {
            let name = a.user(user)?.name.clone();
            let members = a.group(group)?;
            if !members.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
                members.push(name);
            }
            Ok(())
        })
    }

    fn create_user(&self, user: &User) -> Result<(), SystemError> {
        self.change(&format!("user created: {}", user.name), |a| {
            a.users.push(SandboxUser {
                name: user.name.clone(),
                full_name: user.gecos.clone(),
                ..SandboxUser::default()
            });
            Ok(())
        })?;
        for group in windows_groups(user) {
            self.add_to_group(&user.name, &group)?;
        }
        Ok(())
    }

    fn set_password_hash(&self, user: &str, _hash: &str) -> Result<(), SystemError> {
        Err(SystemError::Input(format!(
            "{user}: Windows takes passwords in clear text only, not as hashes"
        )))
    }

    fn set_password_plain(&self, user: &str, _plain: &str) -> Result<(), SystemError> {
        self.change(&format!("password set: {user}"), |a| {
            a.user(user)?.password_set = true;
            Ok(())
        })
    }

    fn lock_password(&self, user: &str) -> Result<(), SystemError> {
        self.change(&format!("account disabled: {user}"), |a| {
            a.user(user)?.disabled = true;
            Ok(())
        })
    }

    fn expire_password(&self, user: &str) -> Result<(), SystemError> {
        self.change(
            &format!("password must change at next logon: {user}"),
            |a| {
                a.user(user)?.must_change_password = true;
                Ok(())
            },
        )
    }

    fn set_hostname(&self, name: &str) -> Result<bool, SystemError> {
        self.record(&format!("computer name: {name}"))
            .map(|()| false)
    }

    fn set_timezone(&self, zone: &str) -> Result<(), SystemError> {
        self.record(&format!("time zone: {zone}"))
    }

    fn network_interfaces(&self) -> Vec<SystemInterface> {
        Vec::new()
    }

    fn network_disabled_by(&self) -> Option<PathBuf> {
        None
    }

    /// Recorded: the DACL as SDDL and the owner (the sandbox's accounts are not real).
    fn set_windows_access(
        &self,
        absolute: &str,
        mode: Option<u32>,
        owner: Option<&str>,
    ) -> Result<(), SystemError> {
        if let Some(mode) = mode {
            self.record(&format!("acl: {absolute} {}", egs_sys::fs::mode_sddl(mode)))?;
        }
        if let Some(owner) = owner {
            if self.account(owner)?.is_none() {
                return Err(SystemError::Lookup(format!("unknown user '{owner}'")));
            }
            self.record(&format!("owner: {absolute} {owner}"))?;
        }
        Ok(())
    }

    /// The same plan as on a real guest, for the adapters `<root>/sandbox-adapters.json`
    /// lists (none without it); each step recorded, nothing run.
    fn apply_network(
        &self,
        config: Option<NetworkConfig>,
        _interfaces: &[SystemInterface],
    ) -> Result<NetOutcome, SystemError> {
        let path = self.layout.root.join("sandbox-adapters.json");
        let adapters: Vec<Adapter> = crate::state::read_json::<Vec<SandboxAdapter>>(&path)
            .map_err(|e| SystemError::Input(format!("{}: {e}", path.display())))?
            .unwrap_or_default()
            .into_iter()
            .map(Adapter::from)
            .collect();
        apply_windows_network(config, &adapters, &[], |step| {
            self.record(&format!("network: {}", step.describe()))
        })
    }

    fn rename_interface(&self, _current: &str, _wanted: &str) -> Result<(), SystemError> {
        not_built("renaming network interfaces")
    }

    fn netplan_generate(&self) -> Result<(), SystemError> {
        not_built("netplan")
    }

    fn change_disk(&self, argv: &[String]) -> Result<DiskChange, SystemError> {
        self.record(&format!("disk change: {}", argv.join(" ")))?;
        Ok(DiskChange::Recorded)
    }

    fn has_program(&self, name: &str) -> bool {
        super::which(&format!("{name}.exe"))
    }

    /// Scripts run for real, on this machine, with `EGS_ROOT` naming the sandbox root.
    fn script_command(&self, script: &Path, _shebang: bool) -> Command {
        script_command(script).env("EGS_ROOT", &self.layout.root.display().to_string())
    }

    fn power(
        &self,
        action: PowerAction,
        delay_minutes: u32,
        message: Option<&str>,
    ) -> Result<(), SystemError> {
        self.record(&format!(
            "power: {}",
            power_command(action, delay_minutes, message).argv.join(" ")
        ))
    }
}

/// Whether `sudo` is set to anything but false (the original's "SudoPolicy").
pub fn has_sudo(user: &User) -> bool {
    matches!(&user.sudo, Sudo::Rules(rules)
        if rules.iter().any(|r| !r.trim().eq_ignore_ascii_case("false")))
}

/// The groups a user joins on Windows: its `groups`, and `Administrators` when `sudo` is
/// set to anything but false (as the original maps sudo).
pub fn windows_groups(user: &User) -> Vec<String> {
    let mut groups = user.groups.clone();
    if has_sudo(user)
        && !groups
            .iter()
            .any(|g| g.eq_ignore_ascii_case(ADMINISTRATORS))
    {
        groups.push(ADMINISTRATORS.into());
    }
    groups
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
    fn the_real_system_reaches_the_os_and_files_work() {
        let dir = tempfile::tempdir().unwrap();
        let system = Windows::new(Layout::new(dir.path(), None));
        let e = system.expire_password("x").unwrap_err();
        assert!(e.to_string().contains("expiring a password"), "{e}");
        let fallback = || Some(NetworkConfig::fallback("eth0", "00:11:22:33:44:55"));
        if egs_sys::WINDOWS {
            // Wine lists the host's adapters; none has the fallback's MAC, so nothing runs.
            match system.apply_network(fallback(), &[]).unwrap() {
                NetOutcome::Applied {
                    steps, warnings, ..
                } => {
                    assert!(steps.is_empty(), "{steps:?}");
                    assert!(warnings.iter().any(|w| w.contains("no adapter with MAC")));
                }
                other => panic!("{other:?}"),
            }
        } else {
            let e = system.apply_network(fallback(), &[]).unwrap_err();
            assert!(e.to_string().contains("GetAdaptersAddresses"), "{e}");
        }
        // A Windows id passes through; an IANA name needs Windows' ICU.
        assert_eq!(
            windows_time_zone("W. Europe Standard Time").unwrap(),
            "W. Europe Standard Time"
        );
        if !egs_sys::WINDOWS {
            assert!(windows_time_zone("Europe/Berlin")
                .unwrap_err()
                .to_string()
                .starts_with("timezone: unknown id 'Europe/Berlin'"));
        }
        system
            .write_file("/ProgramData/x.txt", b"hello", 0o644, None)
            .unwrap();
        assert_eq!(
            system.read_file("/ProgramData/x.txt").unwrap().as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn the_sandbox_records_the_network_plan_for_its_adapters() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = WindowsSandbox::new(Layout::new(dir.path(), None));
        std::fs::write(
            dir.path().join("sandbox-adapters.json"),
            r#"[{"index": 5, "guid": "{g}", "alias": "Ethernet", "mac": "00-15-5D-01-02-03"}]"#,
        )
        .unwrap();
        let config = egs_netconfig::load(
            "NoCloud network-config",
            b"version: 1\nconfig:\n  - {type: physical, name: eth0, mac_address: '00:15:5d:01:02:03', subnets: [{type: dhcp}]}\n",
            egs_netconfig::InputKind::Yaml,
            &egs_netconfig::MacNames::new(),
        )
        .unwrap();
        let outcome = sandbox.apply_network(config, &[]).unwrap();
        assert_eq!(
            outcome,
            NetOutcome::Applied {
                source: "NoCloud network-config".into(),
                steps: vec!["netsh interface ipv4 set address name=5 source=dhcp".into()],
                warnings: Vec::new(),
            }
        );
        let log = std::fs::read_to_string(sandbox.layout().state.join("sandbox-actions.log"));
        assert_eq!(
            log.unwrap(),
            "network: netsh interface ipv4 set address name=5 source=dhcp\n"
        );
        assert_eq!(
            sandbox.apply_network(None, &[]).unwrap(),
            NetOutcome::NothingToConfigure
        );
        std::fs::write(dir.path().join("sandbox-adapters.json"), "[{").unwrap();
        let e = sandbox
            .apply_network(Some(NetworkConfig::fallback("e", "00:15:5d:01:02:03")), &[])
            .unwrap_err();
        assert!(e.to_string().contains("sandbox-adapters.json"), "{e}");
    }

    #[test]
    fn the_sandbox_records_accounts_and_never_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = WindowsSandbox::new(Layout::new(dir.path(), None));
        assert!(
            sandbox.account("administrator").unwrap().is_some(),
            "built in"
        );
        assert!(sandbox.group_id("ADMINISTRATORS").unwrap().is_some());
        let carol = User {
            name: "carol".into(),
            gecos: Some("Carol C".into()),
            groups: vec!["Users".into()],
            sudo: Sudo::Rules(vec!["ALL=(ALL) NOPASSWD:ALL".into()]),
            ..User::default()
        };
        assert_eq!(windows_groups(&carol), ["Users", ADMINISTRATORS]);
        sandbox.create_user(&carol).unwrap();
        sandbox.set_password_plain("Carol", "hunter2").unwrap();
        sandbox.lock_password("carol").unwrap();
        assert!(matches!(
            sandbox.set_password_hash("carol", "$6$x$y"),
            Err(SystemError::Input(_))
        ));
        let accounts = sandbox.accounts().unwrap();
        let recorded = &accounts.users[1];
        assert_eq!(
            (
                recorded.full_name.as_deref(),
                recorded.password_set,
                recorded.disabled
            ),
            (Some("Carol C"), true, true)
        );
        let members = |g: &str| {
            accounts
                .groups
                .iter()
                .find(|(n, _)| n == g)
                .unwrap()
                .1
                .clone()
        };
        assert_eq!(members("Users"), ["carol"]);
        assert_eq!(members(ADMINISTRATORS), ["Administrator", "carol"]);
        for file in ["sandbox-accounts.json", "sandbox-actions.log"] {
            let text = std::fs::read_to_string(sandbox.layout().state.join(file)).unwrap();
            assert!(!text.contains("hunter2"), "{file}: {text}");
        }
        assert!(sandbox.add_to_group("nobody", "Users").is_err());
    }

    /// Under Wine only (on a real Windows machine it would create a real account): a user
    /// through `NetUserAdd` found again by `NetUserGetInfo`, and the Administrators group
    /// found by its SID. (Wine 8 has no `NetUserSetInfo`: passwords, full names and the
    /// disabled flag are not callable there.)
    #[cfg(windows)]
    #[test]
    fn accounts_through_netapi32_under_wine() {
        if std::env::var_os("WINEPREFIX").is_none() {
            return;
        }
        let system = Windows::new(Layout::new(Path::new("/"), None));
        let name = format!("egs-test-{}", std::process::id());
        assert!(system.group_id(ADMINISTRATORS).unwrap().is_some());
        assert!(system.account(&name).unwrap().is_none());
        let user = User {
            name: name.clone(),
            ..User::default()
        };
        system.create_user(&user).unwrap();
        assert_eq!(
            system.account(&name).unwrap().unwrap().home,
            format!("/Users/{name}")
        );
        assert!(matches!(
            system.set_password_hash(&name, "$6$x"),
            Err(SystemError::Input(_))
        ));
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
            ["cmd.exe", "/c", "C:/s/run.cmd"]
        );
        assert_eq!(
            power_command(PowerAction::Reboot, 2, Some("EGS")).argv,
            ["shutdown.exe", "/r", "/t", "120", "/c", "EGS"]
        );
    }
}
