//! `users`, `groups` and `chpasswd`: every form cloud-init accepts on Linux, and the
//! normalisation cloud-init applies (`cloudinit/distros/ug_util.py`): the `default` entry,
//! comma-separated strings, group lists and mappings, `lock_passwd` defaulting to true.

use super::fields::{child, describe, python_str, string_list, Diagnostics, Fields};
use crate::value::{Mapping, Node, Value};

/// `sudo`: rules for `/etc/sudoers.d/`, or explicitly none.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Sudo {
    /// No `sudo` key.
    #[default]
    Unset,
    /// `sudo: false` or `sudo: null` (cloud-init's way to say "no sudo rule").
    Disabled,
    /// One or more sudoers rules, e.g. `ALL=(ALL) NOPASSWD:ALL`.
    Rules(Vec<String>),
}

/// One user as cloud-config describes it (field names as cloud-init's).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Full name / comment.
    pub gecos: Option<String>,
    /// Home directory.
    pub homedir: Option<String>,
    /// Primary group.
    pub primary_group: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Login shell.
    pub shell: Option<String>,
    /// `passwd`: a password hash.
    pub passwd: Option<String>,
    /// `hashed_passwd`: a password hash.
    pub hashed_passwd: Option<String>,
    /// `plain_text_passwd`: a clear-text password (hashed before use).
    pub plain_text_passwd: Option<String>,
    /// `lock_passwd`; cloud-init locks the password unless this is false.
    pub lock_passwd: Option<bool>,
    /// Sudo rules.
    pub sudo: Sudo,
    /// `doas` rules.
    pub doas: Vec<String>,
    /// Keys for `~/.ssh/authorized_keys`.
    pub ssh_authorized_keys: Vec<String>,
    /// `ssh_import_id` (recognised; EGS does not import keys).
    pub ssh_import_id: Vec<String>,
    /// `ssh_redirect_user`.
    pub ssh_redirect_user: bool,
    /// Create a system account.
    pub system: bool,
    /// Numeric user id.
    pub uid: Option<u32>,
    /// Do not create the home directory.
    pub no_create_home: bool,
    /// Do not create a group named after the user.
    pub no_user_group: bool,
    /// Do not add to lastlog/faillog.
    pub no_log_init: bool,
    /// Create missing groups from `groups` (default true).
    pub create_groups: Option<bool>,
    /// Account expiry date (`YYYY-MM-DD`).
    pub expiredate: Option<String>,
    /// Days after password expiry until the account is disabled.
    pub inactive: Option<String>,
    /// SELinux user.
    pub selinux_user: Option<String>,
    /// Ubuntu snap user (recognised only).
    pub snapuser: Option<String>,
}

impl User {
    /// Whether the password ends up locked (cloud-init's default is to lock).
    pub fn password_locked(&self) -> bool {
        self.lock_passwd.unwrap_or(true)
    }
}

/// One entry of `users` before the default user is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserEntry {
    /// `default`: the distribution's default user.
    Default,
    /// A user given by name only (`- bob` or `users: "bob, alice"`).
    Name(String),
    /// A user with settings.
    Full(Box<User>),
}

/// One group from `groups`, with the members to add.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Users to add to it.
    pub members: Vec<String>,
}

/// Password type in `chpasswd.users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordKind {
    /// Clear text (hashed before use).
    Text,
    /// Already a crypt(3) hash.
    Hash,
    /// Generate a random password.
    Random,
}

/// One entry of `chpasswd.users` or `chpasswd.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordChange {
    /// Account.
    pub name: String,
    /// Password or hash (empty for random).
    pub password: String,
    /// How to read `password`.
    pub kind: PasswordKind,
}

/// `chpasswd`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chpasswd {
    /// Expire the passwords so they must be changed (default true).
    pub expire: Option<bool>,
    /// The changes from `users` and the deprecated `list`.
    pub changes: Vec<PasswordChange>,
}

const USER_KEYS_LINUX_ONLY: &[&str] = &[
    "hashed_passwd",
    "inactive",
    "ssh_import_id",
    "ssh_redirect_user",
    "expiredate",
    "no_create_home",
    "no_user_group",
    "no_log_init",
    "selinux_user",
    "uid",
    "snapuser",
    "doas",
    "create_groups",
];

/// Linux-only user fields, for `--target windows` portability warnings.
pub fn linux_only_user_keys() -> &'static [&'static str] {
    USER_KEYS_LINUX_ONLY
}

/// Parses `users` in any of cloud-init's forms.
pub fn parse_users(node: &Node, d: &mut Diagnostics) -> Vec<UserEntry> {
    let path = "users";
    match &node.value {
        Value::Str(s) => split_commas(s)
            .into_iter()
            .filter_map(|n| name_entry(n, path, node, d))
            .collect(),
        Value::Seq(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                match &item.value {
                    Value::Str(s) => out.extend(
                        split_commas(s)
                            .into_iter()
                            .filter_map(|n| name_entry(n, &p, item, d)),
                    ),
                    Value::Seq(_) => {
                        let names: Vec<String> = string_list(item, &p, d)
                            .iter()
                            .flat_map(|s| split_commas(s))
                            .collect();
                        out.extend(names.into_iter().filter_map(|n| name_entry(n, &p, item, d)))
                    }
                    Value::Map(m) => {
                        if let Some(user) = parse_user(m, &p, Some(item), d) {
                            out.push(user);
                        }
                    }
                    _ => d.error(
                        &p,
                        Some(item),
                        format!(
                            "expected a user name or a mapping, found {}",
                            describe(item)
                        ),
                    ),
                }
            }
            out
        }
        Value::Map(m) => {
            d.warning(
                path,
                Some(node),
                "the mapping form of 'users' is deprecated; use a list",
            );
            let mut out = Vec::new();
            for (key, value) in m.iter() {
                let Some(name) = python_str(key) else {
                    continue;
                };
                let p = child(path, &name);
                match &value.value {
                    Value::Map(fields) => {
                        let mut with_name = fields.clone();
                        with_name
                            .insert_str("name", Node::new(Value::Str(name.clone()), key.origin));
                        if let Some(user) = parse_user(&with_name, &p, Some(value), d) {
                            out.push(user);
                        }
                    }
                    Value::Bool(true) | Value::Str(_) | Value::Int(_) | Value::Float(_) => {
                        out.extend(name_entry(name, &p, key, d))
                    }
                    Value::Bool(false) | Value::Null => {}
                    _ => d.error(
                        &p,
                        Some(value),
                        format!("expected a mapping or true, found {}", describe(value)),
                    ),
                }
            }
            out
        }
        _ => {
            d.error(
                path,
                Some(node),
                format!("expected a list of users, found {}", describe(node)),
            );
            Vec::new()
        }
    }
}

fn name_entry(name: String, path: &str, node: &Node, d: &mut Diagnostics) -> Option<UserEntry> {
    if name == "default" {
        Some(UserEntry::Default)
    } else {
        valid_name(&name, path, Some(node), d).then_some(UserEntry::Name(name))
    }
}

fn split_commas(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_user(
    map: &Mapping,
    path: &str,
    node: Option<&Node>,
    d: &mut Diagnostics,
) -> Option<UserEntry> {
    let mut f = Fields::new(map, path);
    let name = match f.get("name") {
        None => {
            if f.get("snapuser").is_none() {
                d.error(
                    path,
                    node,
                    "'name' is required (cloud-init's schema refuses a user without one); \
                     this entry configures the default user",
                );
            }
            "default".to_string()
        }
        Some(n) => match python_str(n) {
            Some(s) if matches!(n.value, Value::Str(_)) => s,
            _ => {
                d.error(
                    &f.path_of("name"),
                    Some(n),
                    format!("expected a user name, found {}", describe(n)),
                );
                return None;
            }
        },
    };
    if let Some(n) = f.get("name") {
        if name != "default" && !valid_name(&name, &f.path_of("name"), Some(n), d) {
            return None;
        }
    }
    let mut user = User {
        name,
        gecos: f.text("gecos", d),
        homedir: f.string("homedir", d),
        primary_group: f
            .string("primary_group", d)
            .filter(|g| valid_name(g, &f.path_of("primary_group"), map.get("primary_group"), d)),
        shell: f.string("shell", d),
        passwd: f.string("passwd", d),
        hashed_passwd: f.string("hashed_passwd", d),
        plain_text_passwd: f.text("plain_text_passwd", d),
        lock_passwd: f.boolean("lock_passwd", d),
        doas: f.string_list("doas", d).unwrap_or_default(),
        ssh_authorized_keys: f.string_list("ssh_authorized_keys", d).unwrap_or_default(),
        ssh_import_id: f.string_list("ssh_import_id", d).unwrap_or_default(),
        ssh_redirect_user: f.boolean("ssh_redirect_user", d).unwrap_or(false),
        system: f.boolean("system", d).unwrap_or(false),
        no_create_home: f.boolean("no_create_home", d).unwrap_or(false),
        no_user_group: f.boolean("no_user_group", d).unwrap_or(false),
        no_log_init: f.boolean("no_log_init", d).unwrap_or(false),
        create_groups: f.boolean("create_groups", d),
        expiredate: f.text("expiredate", d),
        inactive: f.text("inactive", d),
        selinux_user: f.string("selinux_user", d),
        snapuser: f.string("snapuser", d),
        ..User::default()
    };
    if let Some(node) = f.get("lock-passwd") {
        d.warning(
            &f.path_of("lock-passwd"),
            Some(node),
            "'lock-passwd' is deprecated; use 'lock_passwd'",
        );
        if user.lock_passwd.is_none() {
            user.lock_passwd = f.boolean("lock-passwd", d);
        }
    }
    if let Some(node) = f.get("uid") {
        match &node.value {
            Value::Int(i) if (0..=u32::MAX as i64).contains(i) => user.uid = Some(*i as u32),
            Value::Str(s) if s.parse::<u32>().is_ok() => user.uid = s.parse().ok(),
            _ => d.error(
                &f.path_of("uid"),
                Some(node),
                format!(
                    "expected a user id (0..4294967295), found {}",
                    describe(node)
                ),
            ),
        }
    }
    if let Some(node) = f.get("groups") {
        user.groups = valid_names(
            group_names(node, &f.path_of("groups"), d),
            &f.path_of("groups"),
            node,
            d,
        );
    }
    user.sudo = match map.get("sudo") {
        None => Sudo::Unset,
        Some(node) => {
            let sudo = f.get("sudo");
            match (&node.value, sudo) {
                (Value::Null, _) | (Value::Bool(false), _) => Sudo::Disabled,
                (_, Some(n)) => Sudo::Rules(string_list(n, &f.path_of("sudo"), d)),
                _ => Sudo::Unset,
            }
        }
    };
    if user.passwd.is_some() as u8
        + user.hashed_passwd.is_some() as u8
        + user.plain_text_passwd.is_some() as u8
        > 1
    {
        d.warning(
            path,
            map.get("plain_text_passwd").or(map.get("hashed_passwd")),
            "more than one of passwd, hashed_passwd and plain_text_passwd is set; cloud-init applies plain_text_passwd, then hashed_passwd, then passwd, the last one winning",
        );
    }
    f.finish(d, "a user");
    Some(UserEntry::Full(Box::new(user)))
}

/// Group names from a comma-separated string or a list.
fn group_names(node: &Node, path: &str, d: &mut Diagnostics) -> Vec<String> {
    match &node.value {
        Value::Str(s) => split_commas(s),
        _ => string_list(node, path, d)
            .iter()
            .flat_map(|s| split_commas(s))
            .collect(),
    }
}

/// The one rule for user and group names, wherever a name reaches a tool (`useradd`,
/// `groupadd`, `usermod`, `chpasswd`'s `name:hash` lines): what shadow-utils accept by
/// default — ASCII letters, digits, `_`, `-`, `.`, an optional final `$`, not starting with
/// `-`, not all digits, not `.` or `..`, at most 32 bytes. So a name can never be an option,
/// a second `chpasswd` line or a field separator.
pub fn check_account_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('$').unwrap_or(name);
    let valid = !body.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !body.chars().all(|c| c.is_ascii_digit())
        && body != "."
        && body != "..";
    if valid {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid user or group name (letters, digits, '_', '-', '.', not starting with '-', at most 32 characters, not all digits)",
            name.escape_default()
        ))
    }
}

/// Reports `name` when it breaks [`check_account_name`]; returns whether it is valid.
fn valid_name(name: &str, path: &str, node: Option<&Node>, d: &mut Diagnostics) -> bool {
    match check_account_name(name) {
        Ok(()) => true,
        Err(message) => {
            d.error(path, node, format!("{message}; ignored"));
            false
        }
    }
}

/// Keeps the valid names of a list, reporting the others.
fn valid_names(names: Vec<String>, path: &str, node: &Node, d: &mut Diagnostics) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| valid_name(n, path, Some(node), d))
        .collect()
}

/// Parses `groups` in any of cloud-init's forms: `"a, b"`, `[a, {b: [u1, u2]}]`, or
/// `{a: [u1], b: u2}`; members of repeated groups are merged, in order, without repeats.
pub fn parse_groups(node: &Node, d: &mut Diagnostics) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    let mut add =
        |name: String, members: Vec<String>| match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => {
                for m in members {
                    if !g.members.contains(&m) {
                        g.members.push(m);
                    }
                }
            }
            None => {
                let mut unique = Vec::new();
                for m in members {
                    if !unique.contains(&m) {
                        unique.push(m);
                    }
                }
                groups.push(Group {
                    name,
                    members: unique,
                });
            }
        };
    let from_map = |map: &Mapping,
                    path: &str,
                    d: &mut Diagnostics,
                    add: &mut dyn FnMut(String, Vec<String>)| {
        for (key, value) in map.iter() {
            let Some(name) = python_str(key) else {
                continue;
            };
            let p = child(path, &name);
            if !valid_name(&name, &p, Some(key), d) {
                continue;
            }
            let members = match &value.value {
                Value::Null => Vec::new(),
                Value::Str(s) => valid_names(vec![s.clone()], &p, value, d),
                Value::Seq(_) => {
                    let members = string_list(value, &p, d);
                    valid_names(members, &p, value, d)
                }
                _ => {
                    d.error(
                        &p,
                        Some(value),
                        format!(
                            "group members must be a string or a list, found {}",
                            describe(value)
                        ),
                    );
                    continue;
                }
            };
            add(name, members);
        }
    };
    match &node.value {
        Value::Str(s) => valid_names(split_commas(s), "groups", node, d)
            .into_iter()
            .for_each(|n| add(n, Vec::new())),
        Value::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("groups[{i}]");
                match &item.value {
                    Value::Str(s) => {
                        if valid_name(s, &p, Some(item), d) {
                            add(s.clone(), Vec::new())
                        }
                    }
                    Value::Map(m) => from_map(m, &p, d, &mut add),
                    _ => d.error(
                        &p,
                        Some(item),
                        format!(
                            "expected a group name or a mapping, found {}",
                            describe(item)
                        ),
                    ),
                }
            }
        }
        Value::Map(m) => from_map(m, "groups", d, &mut add),
        _ => d.error(
            "groups",
            Some(node),
            format!(
                "expected a list or mapping of groups, found {}",
                describe(node)
            ),
        ),
    }
    groups
}

/// Parses `chpasswd`.
pub fn parse_chpasswd(node: &Node, d: &mut Diagnostics) -> Chpasswd {
    let Some(map) = node.as_map() else {
        d.error(
            "chpasswd",
            Some(node),
            format!("expected a mapping, found {}", describe(node)),
        );
        return Chpasswd::default();
    };
    let mut f = Fields::new(map, "chpasswd");
    let mut out = Chpasswd {
        expire: f.boolean("expire", d),
        changes: Vec::new(),
    };
    if let Some(users) = f.get("users") {
        match users.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("chpasswd.users[{i}]");
                    let Some(m) = item.as_map() else {
                        d.error(
                            &p,
                            Some(item),
                            format!(
                                "expected a mapping with name and password, found {}",
                                describe(item)
                            ),
                        );
                        continue;
                    };
                    let mut uf = Fields::new(m, p.clone());
                    let name = uf.string("name", d);
                    let password = uf.text("password", d);
                    let kind = match (uf.string("type", d).as_deref(), password.as_deref()) {
                        (Some("RANDOM"), _) => PasswordKind::Random,
                        (Some("hash"), _) => PasswordKind::Hash,
                        (Some("text"), _) => PasswordKind::Text,
                        (Some(other), _) => {
                            d.error(
                                &child(&p, "type"),
                                m.get("type"),
                                format!("'{other}' is not a password type (text, hash or RANDOM)"),
                            );
                            PasswordKind::Text
                        }
                        (None, Some(pw)) if looks_hashed(pw) => PasswordKind::Hash,
                        (None, Some(_)) => {
                            d.warning(&p, Some(item), "no 'type': cloud-init's default is 'hash', but this password is not a crypt hash, so it is used as text");
                            PasswordKind::Text
                        }
                        // cloud-init's default type is hash, and a missing password is
                        // the word RANDOM: the literal hash `RANDOM`, which no password
                        // matches (its schema refuses the entry).
                        (None, None) => PasswordKind::Hash,
                    };
                    let password = match (password, kind) {
                        (Some(_), PasswordKind::Random) => {
                            d.error(&p, Some(item), "a RANDOM entry takes no 'password'");
                            None
                        }
                        (None, PasswordKind::Hash) => {
                            d.error(&p, Some(item), "'password' is required unless type is RANDOM; cloud-init sets the literal hash 'RANDOM' (no password matches it)");
                            Some("RANDOM".to_string())
                        }
                        (None, PasswordKind::Text) => {
                            // cloud-init would set the password to the word RANDOM: a
                            // password anyone can guess. This entry is left out instead.
                            d.error(&p, Some(item), "'password' is required unless type is RANDOM; this entry is left out (cloud-init would set the password to the word 'RANDOM')");
                            continue;
                        }
                        (password, _) => password,
                    };
                    uf.finish(d, "a chpasswd user");
                    match name {
                        Some(name) if !valid_name(&name, &child(&p, "name"), m.get("name"), d) => {}
                        Some(name) => out.changes.push(PasswordChange {
                            name,
                            password: password.unwrap_or_default(),
                            kind,
                        }),
                        None => d.error(&p, Some(item), "'name' is required"),
                    }
                }
            }
            None => d.error(
                "chpasswd.users",
                Some(users),
                format!("expected a list, found {}", describe(users)),
            ),
        }
    }
    if let Some(list) = f.get("list") {
        d.warning(
            "chpasswd.list",
            Some(list),
            "'chpasswd.list' is deprecated; use 'chpasswd.users'",
        );
        if !out.changes.is_empty() {
            d.error(
                "chpasswd",
                Some(list),
                "cannot specify both 'users' and 'list'",
            );
        }
        let lines: Vec<String> = match &list.value {
            Value::Str(s) => s.lines().map(str::to_string).collect(),
            _ => string_list(list, "chpasswd.list", d),
        };
        for (i, line) in lines
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .enumerate()
        {
            match line.split_once(':') {
                Some((name, _))
                    if !valid_name(name, &format!("chpasswd.list[{i}]"), Some(list), d) => {}
                Some((name, password)) => {
                    let kind = if matches!(password, "R" | "RANDOM") {
                        PasswordKind::Random
                    } else if looks_hashed(password) {
                        PasswordKind::Hash
                    } else {
                        PasswordKind::Text
                    };
                    out.changes.push(PasswordChange {
                        name: name.to_string(),
                        password: password.to_string(),
                        kind,
                    });
                }
                _ => d.error(
                    &format!("chpasswd.list[{i}]"),
                    Some(list),
                    "expected 'user:password'",
                ),
            }
        }
    }
    f.finish(d, "chpasswd");
    out
}

/// cloud-init treats `$1$`, `$2a$`, `$2y$`, `$5$` and `$6$` prefixed values as hashes.
pub fn looks_hashed(password: &str) -> bool {
    ["$1$", "$2a$", "$2y$", "$5$", "$6$", "$y$"]
        .iter()
        .any(|p| password.starts_with(p))
}

/// Resolves `users` into concrete accounts, as cloud-init's `normalize_users_groups` does:
/// `default` becomes the distribution's default user (merged with any settings given for
/// it), names given twice are merged, and the order of first mention is kept.
/// With no `users` key at all cloud-init creates the default user.
pub fn normalize_users(entries: Option<&[UserEntry]>, default_user: &User) -> Vec<User> {
    let entries: Vec<UserEntry> = match entries {
        None => vec![UserEntry::Default],
        Some(e) => e.to_vec(),
    };
    let mut users: Vec<User> = Vec::new();
    for entry in entries {
        let user = match entry {
            UserEntry::Default => User {
                groups: default_user.groups.clone(),
                ..default_user.clone()
            },
            UserEntry::Name(name) => User {
                name,
                ..User::default()
            },
            UserEntry::Full(user) if user.name == "default" => {
                merge_user(default_user.clone(), *user, &default_user.name)
            }
            UserEntry::Full(user) => *user,
        };
        match users.iter_mut().find(|u| u.name == user.name) {
            Some(existing) => *existing = merge_user(existing.clone(), user, ""),
            None => users.push(user),
        }
    }
    users
}

/// Later settings win; group lists are united.
fn merge_user(base: User, over: User, name: &str) -> User {
    let mut groups = base.groups.clone();
    for g in &over.groups {
        if !groups.contains(g) {
            groups.push(g.clone());
        }
    }
    let mut keys = base.ssh_authorized_keys.clone();
    keys.extend(over.ssh_authorized_keys.iter().cloned());
    User {
        name: if name.is_empty() {
            over.name
        } else {
            name.to_string()
        },
        gecos: over.gecos.or(base.gecos),
        homedir: over.homedir.or(base.homedir),
        primary_group: over.primary_group.or(base.primary_group),
        groups,
        shell: over.shell.or(base.shell),
        passwd: over.passwd.or(base.passwd),
        hashed_passwd: over.hashed_passwd.or(base.hashed_passwd),
        plain_text_passwd: over.plain_text_passwd.or(base.plain_text_passwd),
        lock_passwd: over.lock_passwd.or(base.lock_passwd),
        sudo: if over.sudo == Sudo::Unset {
            base.sudo
        } else {
            over.sudo
        },
        doas: if over.doas.is_empty() {
            base.doas
        } else {
            over.doas
        },
        ssh_authorized_keys: keys,
        ssh_import_id: if over.ssh_import_id.is_empty() {
            base.ssh_import_id
        } else {
            over.ssh_import_id
        },
        ssh_redirect_user: over.ssh_redirect_user || base.ssh_redirect_user,
        system: over.system || base.system,
        uid: over.uid.or(base.uid),
        no_create_home: over.no_create_home || base.no_create_home,
        no_user_group: over.no_user_group || base.no_user_group,
        no_log_init: over.no_log_init || base.no_log_init,
        create_groups: over.create_groups.or(base.create_groups),
        expiredate: over.expiredate.or(base.expiredate),
        inactive: over.inactive.or(base.inactive),
        selinux_user: over.selinux_user.or(base.selinux_user),
        snapuser: over.snapuser.or(base.snapuser),
    }
}
