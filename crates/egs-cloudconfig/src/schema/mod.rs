//! The typed cloud-config model: every key the provisioning modules act on, read with
//! cloud-init's Linux semantics, plus validation that names the path and position of each
//! problem. Keys EGS does not act on are kept in the configuration and reported.
//!
//! ```
//! use egs_cloudconfig::{schema::CloudConfig, yaml::load};
//! let doc = load("hostname: web1\nruncmd:\n  - [echo, hi]\n", 0).unwrap().unwrap();
//! let (config, diagnostics) = CloudConfig::from_node(&doc);
//! assert_eq!(config.hostname.as_deref(), Some("web1"));
//! assert!(!diagnostics.has_errors());
//! ```

mod fields;
mod files;
mod users;

pub use fields::{Diagnostic, Diagnostics, Severity};
pub use files::{decode_content, WriteFile};
pub use users::{
    check_account_name, looks_hashed, normalize_users, Chpasswd, Group, PasswordChange,
    PasswordKind, Sudo, User, UserEntry,
};

use fields::{describe, python_str, string_list, Fields};

use crate::value::{Mapping, Node, Value};

/// One `runcmd`/`bootcmd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// A string, run by the shell.
    Shell(String),
    /// A list, run as argv (each item quoted; cloud-init `str()`s non-strings).
    Argv(Vec<String>),
}

/// `manage_etc_hosts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageEtcHosts {
    /// `true`/`template`: render `/etc/hosts` from the hostname.
    Template,
    /// `localhost`: only keep the `127.0.1.1` line for the hostname up to date.
    Localhost,
    /// `false`: leave `/etc/hosts` alone.
    Disabled,
}

/// `ssh_pwauth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshPwauth {
    /// Allow password authentication in sshd.
    Enabled,
    /// Deny it.
    Disabled,
    /// `unchanged`: leave sshd's setting alone.
    Unchanged,
}

/// `power_state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PowerState {
    /// `reboot`, `poweroff` or `halt`.
    pub mode: PowerMode,
    /// Minutes to wait (`now` = 0).
    pub delay_minutes: u32,
    /// Message for `shutdown`.
    pub message: Option<String>,
    /// Seconds to wait for the provisioning run to finish (default 30).
    pub timeout_seconds: u32,
    /// Only act when this holds: `true`/`false` or a shell command that must exit 0.
    pub condition: Condition,
}

/// What `power_state` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerMode {
    /// Restart.
    Reboot,
    /// Power off.
    Poweroff,
    /// Halt.
    Halt,
}

/// `power_state.condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always or never.
    Fixed(bool),
    /// A command whose exit status decides.
    Command(Command),
}

/// `growpart`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growpart {
    /// `auto`, `growpart` or `off`.
    pub mode: String,
    /// Mount points or devices, default `/`.
    pub devices: Vec<String>,
    /// Grow even when `/etc/growroot-disabled` exists.
    pub ignore_growroot_disabled: bool,
}

/// `resize_rootfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResizeRootfs {
    /// Resize (the default).
    Enabled,
    /// Do not resize.
    Disabled,
    /// Resize in the background.
    NoBlock,
}

/// The configuration the provisioning modules act on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CloudConfig {
    /// `hostname`.
    pub hostname: Option<String>,
    /// `fqdn`.
    pub fqdn: Option<String>,
    /// `prefer_fqdn_over_hostname`.
    pub prefer_fqdn_over_hostname: Option<bool>,
    /// `preserve_hostname`.
    pub preserve_hostname: Option<bool>,
    /// `create_hostname_file`.
    pub create_hostname_file: Option<bool>,
    /// `manage_etc_hosts`.
    pub manage_etc_hosts: Option<ManageEtcHosts>,
    /// `users`, before the default user is resolved (`None`: key absent).
    pub users: Option<Vec<UserEntry>>,
    /// The deprecated `user` key (the default user's settings).
    pub user: Option<User>,
    /// `groups`.
    pub groups: Vec<Group>,
    /// `chpasswd`.
    pub chpasswd: Option<Chpasswd>,
    /// `password`: the default user's password.
    pub password: Option<String>,
    /// `ssh_pwauth`.
    pub ssh_pwauth: Option<SshPwauth>,
    /// `ssh_authorized_keys`: keys for the default user.
    pub ssh_authorized_keys: Vec<String>,
    /// `disable_root` (default true).
    pub disable_root: Option<bool>,
    /// `disable_root_opts`.
    pub disable_root_opts: Option<String>,
    /// `ssh_deletekeys` (default true).
    pub ssh_deletekeys: Option<bool>,
    /// `ssh_genkeytypes` (default rsa, ecdsa, ed25519).
    pub ssh_genkeytypes: Option<Vec<String>>,
    /// `ssh_keys`: host keys to install, by `<type>_private`/`_public`/`_certificate`.
    pub ssh_keys: Vec<(String, String)>,
    /// `ssh_quiet_keygen`.
    pub ssh_quiet_keygen: Option<bool>,
    /// `allow_public_ssh_keys` (default true).
    pub allow_public_ssh_keys: Option<bool>,
    /// `write_files`.
    pub write_files: Vec<WriteFile>,
    /// `bootcmd`.
    pub bootcmd: Vec<Command>,
    /// `runcmd`.
    pub runcmd: Vec<Command>,
    /// `timezone`.
    pub timezone: Option<String>,
    /// `power_state`.
    pub power_state: Option<PowerState>,
    /// `growpart`.
    pub growpart: Option<Growpart>,
    /// `resize_rootfs`.
    pub resize_rootfs: Option<ResizeRootfs>,
    /// `final_message`.
    pub final_message: Option<String>,
    /// `vendor_data.enabled` (user-data can refuse vendor-data).
    pub vendor_data_enabled: Option<bool>,
}

/// Which guests a key works on, for `validate --target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Linux and Windows.
    All,
    /// Linux only.
    Linux,
    /// Windows only.
    Windows,
}

/// The platform `validate` checks portability for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Linux guests.
    Linux,
    /// Windows guests.
    Windows,
    /// Any guest: no portability warnings.
    All,
}

/// Top-level keys EGS acts on, and where.
const APPLIED_KEYS: &[(&str, Platform)] = &[
    ("hostname", Platform::All),
    ("fqdn", Platform::All),
    ("prefer_fqdn_over_hostname", Platform::All),
    ("preserve_hostname", Platform::All),
    ("create_hostname_file", Platform::Linux),
    ("manage_etc_hosts", Platform::Linux),
    ("users", Platform::All),
    ("user", Platform::All),
    ("groups", Platform::All),
    ("chpasswd", Platform::All),
    ("password", Platform::All),
    ("ssh_pwauth", Platform::All),
    ("ssh_authorized_keys", Platform::All),
    ("disable_root", Platform::All),
    ("disable_root_opts", Platform::Linux),
    ("ssh_deletekeys", Platform::All),
    ("ssh_genkeytypes", Platform::All),
    ("ssh_keys", Platform::All),
    ("ssh_quiet_keygen", Platform::Linux),
    ("allow_public_ssh_keys", Platform::Linux),
    ("write_files", Platform::All),
    ("bootcmd", Platform::Linux),
    ("runcmd", Platform::All),
    ("timezone", Platform::All),
    ("power_state", Platform::All),
    ("growpart", Platform::All),
    ("resize_rootfs", Platform::Linux),
    ("final_message", Platform::Linux),
    ("vendor_data", Platform::All),
];

/// cloud-init keys EGS recognises but does not act on (kept, reported as a warning).
const RECOGNISED_KEYS: &[(&str, Platform)] = &[
    ("apt", Platform::Linux),
    ("apt_pipelining", Platform::Linux),
    ("packages", Platform::Linux),
    ("package_update", Platform::Linux),
    ("package_upgrade", Platform::Linux),
    ("package_reboot_if_required", Platform::Linux),
    ("snap", Platform::Linux),
    ("yum_repos", Platform::Linux),
    ("yum_repo_dir", Platform::Linux),
    ("zypper", Platform::Linux),
    ("apk_repos", Platform::Linux),
    ("disk_setup", Platform::Linux),
    ("fs_setup", Platform::Linux),
    ("device_aliases", Platform::Linux),
    ("mounts", Platform::Linux),
    ("mount_default_fields", Platform::Linux),
    ("swap", Platform::Linux),
    ("manage_resolv_conf", Platform::Linux),
    ("resolv_conf", Platform::Linux),
    ("phone_home", Platform::Linux),
    ("ca_certs", Platform::Linux),
    ("chef", Platform::Linux),
    ("ansible", Platform::Linux),
    ("puppet", Platform::Linux),
    ("salt_minion", Platform::Linux),
    ("disable_ec2_metadata", Platform::Linux),
    ("ssh_import_id", Platform::Linux),
    ("ssh_publish_hostkeys", Platform::All),
    ("ssh_fp_console_blacklist", Platform::Linux),
    ("ssh_key_console_blacklist", Platform::Linux),
    ("byobu_by_default", Platform::Linux),
    ("locale", Platform::All),
    ("locale_configfile", Platform::Linux),
    ("keyboard", Platform::All),
    ("random_seed", Platform::Linux),
    ("output", Platform::Linux),
    ("reporting", Platform::Linux),
    ("ntp", Platform::All),
    ("lxd", Platform::Linux),
    ("wireguard", Platform::Linux),
    ("rh_subscription", Platform::Linux),
    ("landscape", Platform::Linux),
    ("mcollective", Platform::Linux),
    ("rsyslog", Platform::Linux),
    ("spacewalk", Platform::Linux),
    ("ubuntu_advantage", Platform::Linux),
    ("ubuntu_pro", Platform::Linux),
    ("drivers", Platform::Linux),
    ("migrate", Platform::Linux),
    ("launch-index", Platform::Linux),
    ("update_etc_hosts", Platform::Linux),
    ("update_hostname", Platform::Linux),
    ("cloud_init_modules", Platform::Linux),
    ("cloud_config_modules", Platform::Linux),
    ("cloud_final_modules", Platform::Linux),
    ("system_info", Platform::Linux),
    ("datasource", Platform::Linux),
    ("datasource_list", Platform::Linux),
    ("network", Platform::Linux),
    ("license", Platform::Windows),
    ("egs", Platform::Windows),
];

impl CloudConfig {
    /// Reads the configuration from a loaded (and merged) document. Problems are returned
    /// as diagnostics; the configuration holds everything that could be read.
    pub fn from_node(node: &Node) -> (CloudConfig, Diagnostics) {
        let mut d = Diagnostics::default();
        let config = match &node.value {
            Value::Map(map) => Self::from_map(map, &mut d),
            Value::Null => CloudConfig::default(),
            _ => {
                d.error(
                    "",
                    Some(node),
                    format!("cloud-config must be a mapping, found {}", node.type_name()),
                );
                CloudConfig::default()
            }
        };
        (config, d)
    }

    fn from_map(map: &Mapping, d: &mut Diagnostics) -> CloudConfig {
        let mut f = Fields::new(map, "");
        let mut c = CloudConfig {
            hostname: f.text("hostname", d),
            fqdn: f.text("fqdn", d),
            prefer_fqdn_over_hostname: f.boolean("prefer_fqdn_over_hostname", d),
            preserve_hostname: f.boolean("preserve_hostname", d),
            create_hostname_file: f.boolean("create_hostname_file", d),
            password: f.text("password", d),
            ssh_authorized_keys: f.string_list("ssh_authorized_keys", d).unwrap_or_default(),
            disable_root: f.boolean("disable_root", d),
            disable_root_opts: f.string("disable_root_opts", d),
            ssh_deletekeys: f.boolean("ssh_deletekeys", d),
            ssh_genkeytypes: f.string_list("ssh_genkeytypes", d),
            ssh_quiet_keygen: f.boolean("ssh_quiet_keygen", d),
            allow_public_ssh_keys: f.boolean("allow_public_ssh_keys", d),
            timezone: f.string("timezone", d),
            final_message: f.text("final_message", d),
            ..CloudConfig::default()
        };
        if let Some(h) = &c.hostname {
            check_hostname(h, "hostname", map.get("hostname"), false, d);
        }
        if let Some(h) = &c.fqdn {
            check_hostname(h, "fqdn", map.get("fqdn"), true, d);
        }
        if let Some(n) = f.get("manage_etc_hosts") {
            c.manage_etc_hosts = match &n.value {
                Value::Bool(true) => Some(ManageEtcHosts::Template),
                Value::Bool(false) => Some(ManageEtcHosts::Disabled),
                Value::Str(s) if s == "template" => Some(ManageEtcHosts::Template),
                Value::Str(s) if s == "localhost" => Some(ManageEtcHosts::Localhost),
                _ => {
                    d.error(
                        "manage_etc_hosts",
                        Some(n),
                        format!(
                            "expected true, false, 'template' or 'localhost', found {}",
                            describe(n)
                        ),
                    );
                    None
                }
            };
        }
        if let Some(n) = f.get("users") {
            c.users = Some(users::parse_users(n, d));
        } else if map.contains_key("users") {
            c.users = Some(Vec::new());
        }
        if let Some(n) = f.get("user") {
            d.warning(
                "user",
                Some(n),
                "'user' is deprecated; use a 'default' entry in 'users'",
            );
            c.user = match &n.value {
                Value::Str(name) => Some(User {
                    name: name.clone(),
                    ..User::default()
                }),
                Value::Map(m) => {
                    let mut probe = Diagnostics::default();
                    let entries = users::parse_users(
                        &Node::new(
                            Value::Seq(vec![Node::new(Value::Map(m.clone()), n.origin)]),
                            n.origin,
                        ),
                        &mut probe,
                    );
                    d.items.extend(probe.items.into_iter().map(|mut x| {
                        x.path = x.path.replacen("users[0]", "user", 1);
                        x
                    }));
                    match entries.into_iter().next() {
                        Some(UserEntry::Full(u)) => Some(*u),
                        _ => None,
                    }
                }
                _ => {
                    d.error(
                        "user",
                        Some(n),
                        format!("expected a name or a mapping, found {}", describe(n)),
                    );
                    None
                }
            };
        }
        if let Some(n) = f.get("groups") {
            c.groups = users::parse_groups(n, d);
        }
        if let Some(n) = f.get("chpasswd") {
            c.chpasswd = Some(users::parse_chpasswd(n, d));
        }
        if let Some(n) = f.get("ssh_pwauth") {
            c.ssh_pwauth = match &n.value {
                Value::Bool(true) => Some(SshPwauth::Enabled),
                Value::Bool(false) => Some(SshPwauth::Disabled),
                Value::Str(s) if s == "unchanged" => Some(SshPwauth::Unchanged),
                _ => {
                    d.error(
                        "ssh_pwauth",
                        Some(n),
                        format!("expected true, false or 'unchanged', found {}", describe(n)),
                    );
                    None
                }
            };
        }
        if let Some(types) = &c.ssh_genkeytypes {
            for (i, t) in types.iter().enumerate() {
                if !matches!(t.as_str(), "rsa" | "dsa" | "ecdsa" | "ed25519") {
                    d.error(
                        &format!("ssh_genkeytypes[{i}]"),
                        map.get("ssh_genkeytypes"),
                        format!("'{t}' is not a host key type (rsa, ecdsa, ed25519, dsa)"),
                    );
                }
            }
        }
        if let Some(n) = f.get("ssh_keys") {
            match n.as_map() {
                Some(m) => {
                    for (k, v) in m.iter() {
                        let key = python_str(k).unwrap_or_default();
                        let valid_name = ["rsa", "dsa", "ecdsa", "ed25519"].iter().any(|t| {
                            key.strip_prefix(t).is_some_and(|rest| {
                                matches!(rest, "_private" | "_public" | "_certificate")
                            })
                        });
                        if !valid_name {
                            d.error(
                                &format!("ssh_keys.{key}"),
                                Some(k),
                                "expected <type>_private, <type>_public or <type>_certificate",
                            );
                        }
                        match v.as_str() {
                            Some(text) => c.ssh_keys.push((key, text.to_string())),
                            None => d.error(
                                &format!("ssh_keys.{key}"),
                                Some(v),
                                format!("expected a string, found {}", describe(v)),
                            ),
                        }
                    }
                }
                None => d.error(
                    "ssh_keys",
                    Some(n),
                    format!("expected a mapping, found {}", describe(n)),
                ),
            }
        }
        if let Some(n) = f.get("write_files") {
            c.write_files = files::parse_write_files(n, d);
        }
        if let Some(n) = f.get("bootcmd") {
            c.bootcmd = parse_commands(n, "bootcmd", d);
        }
        if let Some(n) = f.get("runcmd") {
            c.runcmd = parse_commands(n, "runcmd", d);
        }
        if let Some(n) = f.get("power_state") {
            c.power_state = parse_power_state(n, d);
        }
        if let Some(n) = f.get("growpart") {
            c.growpart = parse_growpart(n, d);
        }
        if let Some(n) = f.get("resize_rootfs") {
            c.resize_rootfs = match &n.value {
                Value::Bool(true) => Some(ResizeRootfs::Enabled),
                Value::Bool(false) => Some(ResizeRootfs::Disabled),
                Value::Str(s) if s == "noblock" => Some(ResizeRootfs::NoBlock),
                _ => {
                    d.error(
                        "resize_rootfs",
                        Some(n),
                        format!("expected true, false or 'noblock', found {}", describe(n)),
                    );
                    None
                }
            };
        }
        if let Some(n) = f.get("vendor_data") {
            match n.as_map() {
                Some(m) => {
                    let mut vf = Fields::new(m, "vendor_data");
                    // cloud-init reads `enabled` with is_true; its schema takes a string
                    // too, as deprecated.
                    c.vendor_data_enabled = match vf.get("enabled") {
                        Some(n) if matches!(n.value, Value::Str(_)) => {
                            d.warning(
                                "vendor_data.enabled",
                                Some(n),
                                format!(
                                    "a string here is deprecated (use a boolean); it reads as {}",
                                    n.is_true()
                                ),
                            );
                            Some(n.is_true())
                        }
                        _ => vf.boolean("enabled", d),
                    };
                    vf.accept(&["prefix"]);
                    vf.finish(d, "vendor_data");
                }
                None => d.error(
                    "vendor_data",
                    Some(n),
                    format!("expected a mapping, found {}", describe(n)),
                ),
            }
        }
        // Merge directives are consumed by the pipeline; a leftover merge_type is harmless.
        f.accept(&["merge_how", "merge_type"]);
        for (name, _) in RECOGNISED_KEYS {
            if let Some((key, _)) = map.get_entry(name) {
                f.accept(&[name]);
                d.warning(
                    name,
                    Some(key),
                    "cloud-init key that EGS does not apply (kept, ignored)",
                );
            }
        }
        f.finish(d, "cloud-config");
        c
    }
}

/// Warnings for keys the target platform does not support (`validate --target`).
pub fn portability(map: &Mapping, target: Target) -> Diagnostics {
    let mut d = Diagnostics::default();
    let unsupported = match target {
        Target::All => return d,
        Target::Linux => Platform::Windows,
        Target::Windows => Platform::Linux,
    };
    let target_name = if target == Target::Linux {
        "Linux"
    } else {
        "Windows"
    };
    for (key, _) in map.iter() {
        let Some(name) = key.as_str() else { continue };
        let platform = APPLIED_KEYS
            .iter()
            .chain(RECOGNISED_KEYS)
            .find(|(k, _)| *k == name)
            .map(|(_, p)| *p);
        if platform == Some(unsupported) {
            d.warning(
                name,
                Some(key),
                format!("'{name}' is not supported on {target_name}"),
            );
        }
    }
    if target == Target::Windows {
        if let Some(users) = map.get("users").and_then(Node::as_seq) {
            for (i, user) in users.iter().enumerate() {
                let Some(m) = user.as_map() else { continue };
                for field in users::linux_only_user_keys() {
                    if let Some((k, _)) = m.get_entry(field) {
                        d.warning(
                            &format!("users[{i}].{field}"),
                            Some(k),
                            format!("'{field}' is not supported on Windows"),
                        );
                    }
                }
            }
        }
    }
    d
}

/// Hostnames: labels of letters, digits and `-`, not starting or ending with `-`, at most
/// 63 characters each and 253 in all; an `fqdn` needs a dot.
fn check_hostname(
    name: &str,
    path: &str,
    node: Option<&Node>,
    need_dot: bool,
    d: &mut Diagnostics,
) {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 || !trimmed.split('.').all(label_ok) {
        d.error(path, node, format!("'{name}' is not a valid host name (labels of letters, digits and '-', at most 63 characters each)"));
    } else if need_dot && !trimmed.contains('.') {
        d.error(
            path,
            node,
            format!("'{name}' is not fully qualified (it has no domain part)"),
        );
    }
}

/// `runcmd`/`bootcmd`: a list of strings (shell) and lists (argv); `null` items are
/// skipped as cloud-init does. A lone string is taken as one command, with a warning.
fn parse_commands(node: &Node, path: &str, d: &mut Diagnostics) -> Vec<Command> {
    let items = match &node.value {
        Value::Seq(items) => items,
        Value::Str(s) => {
            d.warning(
                path,
                Some(node),
                format!("'{path}' should be a list of commands; the string is run as one command"),
            );
            return vec![Command::Shell(s.clone())];
        }
        _ => {
            d.error(
                path,
                Some(node),
                format!("expected a list of commands, found {}", describe(node)),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match &item.value {
            Value::Null => {}
            Value::Str(s) => out.push(Command::Shell(s.clone())),
            Value::Seq(args) => {
                let mut argv = Vec::with_capacity(args.len());
                for (j, a) in args.iter().enumerate() {
                    match python_str(a) {
                        Some(s) => argv.push(s),
                        None => d.error(&format!("{p}[{j}]"), Some(a), format!("expected a string, found {}", describe(a))),
                    }
                }
                if argv.is_empty() {
                    d.error(&p, Some(item), "an argv command needs at least one item");
                } else {
                    out.push(Command::Argv(argv));
                }
            }
            Value::Map(_) => d.error(
                &p,
                Some(item),
                "a mapping is not a command (an unquoted ': ' in a command makes YAML read a mapping; quote the command)",
            ),
            _ => d.error(&p, Some(item), format!("expected a string or a list, found {}", describe(item))),
        }
    }
    out
}

fn parse_power_state(node: &Node, d: &mut Diagnostics) -> Option<PowerState> {
    let Some(map) = node.as_map() else {
        d.error(
            "power_state",
            Some(node),
            format!("expected a mapping, found {}", describe(node)),
        );
        return None;
    };
    let mut f = Fields::new(map, "power_state");
    let mode = match f.string("mode", d).as_deref() {
        Some("reboot") => Some(PowerMode::Reboot),
        Some("poweroff") => Some(PowerMode::Poweroff),
        Some("halt") => Some(PowerMode::Halt),
        Some(other) => {
            d.error(
                "power_state.mode",
                map.get("mode"),
                format!("'{other}' is not a mode (reboot, poweroff or halt)"),
            );
            None
        }
        None => {
            d.error(
                "power_state",
                Some(node),
                "'mode' is required (reboot, poweroff or halt)",
            );
            None
        }
    };
    let delay_minutes = match f.get("delay") {
        None => 0,
        Some(n) => {
            let text = python_str(n).unwrap_or_default();
            let minutes = if text == "now" {
                Some(0)
            } else {
                text.trim_start_matches('+').parse::<u32>().ok()
            };
            minutes.unwrap_or_else(|| {
                d.error(
                    "power_state.delay",
                    Some(n),
                    format!("expected 'now' or '+minutes', found {}", describe(n)),
                );
                0
            })
        }
    };
    let message = f.text("message", d);
    let timeout_seconds = f
        .integer("timeout", d)
        .map_or(30, |t| t.clamp(0, u32::MAX as i64) as u32);
    let condition = match f.get("condition") {
        None => Condition::Fixed(true),
        Some(n) => match &n.value {
            Value::Bool(b) => Condition::Fixed(*b),
            Value::Str(s) => Condition::Command(Command::Shell(s.clone())),
            Value::Seq(_) => {
                Condition::Command(Command::Argv(string_list(n, "power_state.condition", d)))
            }
            _ => {
                d.error(
                    "power_state.condition",
                    Some(n),
                    format!("expected a boolean or a command, found {}", describe(n)),
                );
                Condition::Fixed(false)
            }
        },
    };
    f.finish(d, "power_state");
    Some(PowerState {
        mode: mode?,
        delay_minutes,
        message,
        timeout_seconds,
        condition,
    })
}

fn parse_growpart(node: &Node, d: &mut Diagnostics) -> Option<Growpart> {
    let Some(map) = node.as_map() else {
        d.error(
            "growpart",
            Some(node),
            format!("expected a mapping, found {}", describe(node)),
        );
        return None;
    };
    let mut f = Fields::new(map, "growpart");
    let mode = match f.get("mode") {
        None => "auto".to_string(),
        Some(n) => match &n.value {
            Value::Bool(false) => "off".to_string(),
            Value::Str(s) if matches!(s.as_str(), "auto" | "growpart" | "off") => s.clone(),
            _ => {
                d.error(
                    "growpart.mode",
                    Some(n),
                    format!(
                        "expected auto, growpart, off or false, found {}",
                        describe(n)
                    ),
                );
                "off".to_string()
            }
        },
    };
    let devices = f
        .string_list("devices", d)
        .unwrap_or_else(|| vec!["/".to_string()]);
    let ignore_growroot_disabled = f.boolean("ignore_growroot_disabled", d).unwrap_or(false);
    f.finish(d, "growpart");
    Some(Growpart {
        mode,
        devices,
        ignore_growroot_disabled,
    })
}

#[cfg(test)]
mod tests;
