//! The OpenSSH client configuration `egs-tool add-ssh-config` writes: one file per guest in
//! `<base>/ssh/vm.d/`, pulled into `~/.ssh/config` by a managed block between the
//! original's marker lines, so that `ssh <alias>` goes through `egs-tool proxy`.

use egs_transport::Endpoint;

/// The marker line that opens and closes the managed block in `~/.ssh/config`.
pub const MARKER: &str = "# ------ eryph guest services ------";

/// Host-name suffixes that belong to EGS and cannot be used in aliases.
pub const RESERVED_SUFFIXES: [&str; 6] = [
    ".hyper-v.alt",
    ".eryph.alt",
    ".vsock.alt",
    ".fc.alt",
    ".unix.alt",
    ".tcp.alt",
];

fn fnv(text: &str) -> String {
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:08x}", h >> 32)
}

/// The canonical host name of a target: `<vm-id>.hyper-v.alt` (as the original),
/// `<cid>.vsock.alt`, `<hash>.fc.alt` (of the VMM
/// socket path), `<hash>.unix.alt`, `<port>.tcp.alt` (hash: 8 hex digits of the path, so
/// the name is a safe token whatever the path is).
pub fn canonical_name(endpoint: &Endpoint) -> String {
    match endpoint {
        Endpoint::Vsock { cid, port } if *port == egs_transport::VSOCK_PORT => {
            format!("{cid}.vsock.alt")
        }
        Endpoint::Vsock { cid, port } => format!("{cid}-{port}.vsock.alt"),
        Endpoint::Firecracker { socket, port } => {
            format!("{}.fc.alt", fnv(&format!("{}:{port}", socket.display())))
        }
        Endpoint::HyperV { vm_id, .. } => format!("{vm_id}.hyper-v.alt"),
        Endpoint::Unix(path) => format!("{}.unix.alt", fnv(&path.display().to_string())),
        Endpoint::Tcp(addr) => format!("{}.tcp.alt", addr.port()),
    }
}

/// Why an alias or an SSH config cannot be used. Messages never repeat an alias (it may
/// hold anything).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An alias with characters ssh config cannot carry safely.
    #[error("the alias may only contain ASCII letters, digits, '.', '-' and '_'")]
    BadAlias,
    /// An alias ending in a suffix EGS generates.
    #[error("aliases ending in '{0}' are reserved for EGS")]
    ReservedAlias(&'static str),
    /// A value that would break the line it is written on (a newline starts a directive of
    /// its own) or the quotes around it.
    #[error("the {what} contains a control character or a double quote, which an SSH config cannot carry")]
    UnsafeValue {
        /// Which value (the text itself is not repeated).
        what: &'static str,
    },
    /// One marker line alone, or more than two.
    #[error("the SSH config contains a broken eryph guest services block ({markers} marker lines '{MARKER}'); please clean up {path}")]
    BrokenBlock {
        /// How many marker lines there are.
        markers: usize,
        /// The file.
        path: String,
    },
}

/// Checks a user alias: ASCII letters, digits, `.`, `-`, `_`, and none of the reserved
/// suffixes.
pub fn check_alias(alias: &str) -> Result<(), ConfigError> {
    if alias.is_empty()
        || alias.starts_with(['-', '.'])
        || !alias
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(ConfigError::BadAlias);
    }
    let lower = alias.to_ascii_lowercase();
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| lower.ends_with(*s)) {
        return Err(ConfigError::ReservedAlias(suffix));
    }
    Ok(())
}

/// A value as an SSH config line carries it: refused when it has a control character (a
/// newline would start a directive of its own) or a double quote, and with `%` written as
/// `%%` (ssh expands `%` tokens in ProxyCommand, IdentityFile, UserKnownHostsFile and
/// Include).
fn config_value(what: &'static str, text: &str) -> Result<String, ConfigError> {
    if text.chars().any(|c| c.is_control() || c == '"') {
        return Err(ConfigError::UnsafeValue { what });
    }
    Ok(text.replace('%', "%%"))
}

/// Quotes a word for the shell that runs ProxyCommand.
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:@=+,".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// One guest's stanza.
pub struct Stanza<'a> {
    /// The canonical host name.
    pub canonical: &'a str,
    /// A user alias, listed first.
    pub alias: Option<&'a str>,
    /// The machine's private key.
    pub identity: &'a std::path::Path,
    /// The guest's own known-hosts file.
    pub known_hosts: &'a std::path::Path,
    /// The `egs-tool` executable.
    pub tool: &'a std::path::Path,
    /// The target as `egs-tool proxy` takes it.
    pub target: &'a str,
}

impl Stanza<'_> {
    /// The file's text; an error when a path or the target cannot be written safely.
    pub fn render(&self) -> Result<String, ConfigError> {
        let hosts = match self.alias {
            Some(alias) => format!("{alias} {}", self.canonical),
            None => self.canonical.to_string(),
        };
        let identity = config_value("identity file path", &self.identity.display().to_string())?;
        let known_hosts = config_value(
            "known-hosts file path",
            &self.known_hosts.display().to_string(),
        )?;
        let tool = config_value("egs-tool path", &self.tool.display().to_string())?;
        let target = config_value("target", self.target)?;
        Ok(format!(
            "# This file was auto-generated by the eryph guest services and\n\
             # should not be edited manually.\n\
             Host {hosts}\n\
             \x20   HostName {canonical}\n\
             \x20   User egs\n\
             \x20   IdentityFile \"{identity}\"\n\
             \x20   IdentitiesOnly yes\n\
             \x20   KbdInteractiveAuthentication no\n\
             \x20   PasswordAuthentication no\n\
             \x20   StrictHostKeyChecking no\n\
             \x20   UserKnownHostsFile \"{known_hosts}\"\n\
             \x20   LogLevel ERROR\n\
             \x20   ProxyCommand {tool} proxy {target}\n\n",
            canonical = self.canonical,
            tool = shell_quote(&tool),
            target = shell_quote(&target),
        ))
    }
}

/// The managed block for `~/.ssh/config`: includes every file in `vm_dir`.
pub fn include_block(vm_dir: &std::path::Path) -> Result<String, ConfigError> {
    let dir = config_value(
        "guest configuration directory",
        &vm_dir.display().to_string(),
    )?;
    Ok(format!(
        "{MARKER}\n# This part was auto-generated by the eryph guest services.\n# Do not edit it: egs-tool add-ssh-config rewrites it.\n\nInclude \"{dir}/*.config\"\n\n{MARKER}\n"
    ))
}

/// `~/.ssh/config` with the managed block in place: created when there is no file,
/// prepended when there is no block (ssh reads the first match, and Include must come
/// before any Host), replaced in place when there is one. One marker alone, or more than
/// two, is a broken block: an error, the file untouched.
pub fn with_include_block(existing: &str, block: &str, path: &str) -> Result<String, ConfigError> {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let markers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_end() == MARKER)
        .map(|(i, _)| i)
        .collect();
    match markers.as_slice() {
        [] if existing.trim().is_empty() => Ok(block.to_string()),
        [] => Ok(format!("{block}\n{existing}")),
        [open, close] => {
            let mut out: String = lines[..*open].concat();
            out.push_str(block);
            out.push_str(&lines[close + 1..].concat());
            Ok(out)
        }
        _ => Err(ConfigError::BrokenBlock {
            markers: markers.len(),
            path: path.to_string(),
        }),
    }
}

/// Removes `alias` (case-insensitively) from the `Host` lines of another guest's file;
/// `None` when nothing changes or the line would be left without names.
pub fn without_alias(text: &str, alias: &str) -> Option<String> {
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let (keyword, rest) = trimmed.split_once([' ', '\t']).unwrap_or((trimmed, ""));
        if keyword.eq_ignore_ascii_case("host") {
            let names: Vec<&str> = rest.split_whitespace().collect();
            let kept: Vec<&str> = names
                .iter()
                .copied()
                .filter(|n| {
                    !n.eq_ignore_ascii_case(alias)
                        || RESERVED_SUFFIXES
                            .iter()
                            .any(|s| n.to_ascii_lowercase().ends_with(s))
                })
                .collect();
            if kept.len() != names.len() {
                if kept.is_empty() {
                    return None;
                }
                changed = true;
                out.push_str(&format!("Host {}\n", kept.join(" ")));
                continue;
            }
        }
        out.push_str(line);
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        let t = |s: &str| canonical_name(&egs_transport::parse_target(s).unwrap());
        assert_eq!(t("vsock:42"), "42.vsock.alt");
        assert_eq!(t("vsock:42:22"), "42-22.vsock.alt");
        assert_eq!(t("tcp:127.0.0.1:2222"), "2222.tcp.alt");
        assert!(t("fc:/run/v.sock").ends_with(".fc.alt"));
        assert_ne!(t("unix:/a"), t("unix:/b"));
        assert!(check_alias("web-1.lab").is_ok());
        assert_eq!(check_alias("bad alias"), Err(ConfigError::BadAlias));
        assert_eq!(
            check_alias("x.VSOCK.alt"),
            Err(ConfigError::ReservedAlias(".vsock.alt"))
        );
        assert!(check_alias("").is_err());
    }

    /// Issue 16: a newline in the target (or a path) would add directives of the target's
    /// choosing (`Match exec` runs a command on every `ssh`); `%` would be expanded by ssh.
    #[test]
    fn values_that_would_break_the_config_are_refused_and_percent_is_escaped() {
        let stanza = |target: &str, home: &str| {
            Stanza {
                canonical: "1.vsock.alt",
                alias: None,
                identity: std::path::Path::new(&format!("{home}/id")),
                known_hosts: std::path::Path::new(&format!("{home}/kh")),
                tool: std::path::Path::new("/usr/bin/egs-tool"),
                target,
            }
            .render()
        };
        assert_eq!(
            stanza("unix:/tmp/y\nMatch exec \"touch /tmp/p\"\n#", "/h"),
            Err(ConfigError::UnsafeValue { what: "target" })
        );
        assert_eq!(
            stanza("vsock:3", "/h\"x"),
            Err(ConfigError::UnsafeValue {
                what: "identity file path"
            })
        );
        let text = stanza("unix:/run/%h.sock", "/home/50%").unwrap();
        assert!(text.contains("IdentityFile \"/home/50%%/id\""), "{text}");
        assert!(text.contains("proxy 'unix:/run/%%h.sock'\n"), "{text}");
        assert!(text.lines().all(|l| !l.starts_with("Match")));
        assert!(include_block(std::path::Path::new("/h/\nMatch all")).is_err());
        for alias in ["..", ".", "-oProxyCommand=x", ".hidden"] {
            assert_eq!(check_alias(alias), Err(ConfigError::BadAlias), "{alias}");
        }
    }

    #[test]
    fn the_include_block_is_created_prepended_replaced_and_never_clobbered() {
        let block = include_block(std::path::Path::new("/h/vm.d")).unwrap();
        assert_eq!(with_include_block("", &block, "c").unwrap(), block);
        let mine = "Host other\n  User me\n";
        let prepended = with_include_block(mine, &block, "c").unwrap();
        assert_eq!(prepended, format!("{block}\n{mine}"));
        let newer = include_block(std::path::Path::new("/new/vm.d")).unwrap();
        let replaced = with_include_block(&prepended, &newer, "c").unwrap();
        assert_eq!(replaced, format!("{newer}\n{mine}"), "updated in place");
        assert_eq!(
            with_include_block(&replaced, &newer, "c").unwrap(),
            replaced,
            "stable"
        );
        let broken = format!("{MARKER}\nInclude x\n{mine}");
        let err = with_include_block(&broken, &block, "/root/.ssh/config")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("broken") && err.contains("/root/.ssh/config"),
            "{err}"
        );
    }

    #[test]
    fn alias_sweep() {
        let text = "# c\nHost web 7.vsock.alt\n    HostName 7.vsock.alt\n";
        assert_eq!(
            without_alias(text, "WEB").unwrap(),
            "# c\nHost 7.vsock.alt\n    HostName 7.vsock.alt\n"
        );
        assert_eq!(without_alias(text, "db"), None);
        assert_eq!(without_alias("Host web\n", "web"), None, "never left empty");
        assert_eq!(
            without_alias(text, "7.vsock.alt"),
            None,
            "canonical names stay"
        );
    }

    #[test]
    fn proxy_command_quoting() {
        assert_eq!(shell_quote("/usr/bin/egs-tool"), "/usr/bin/egs-tool");
        assert_eq!(shell_quote("unix:/tmp/a b"), "'unix:/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
