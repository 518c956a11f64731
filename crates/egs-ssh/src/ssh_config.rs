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

/// How the ssh config files are written for the ssh that reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavor {
    /// OpenSSH on Unix: paths as they are, LF, ProxyCommand words quoted for `sh -c`.
    Posix,
    /// Win32-OpenSSH (and MSYS/Git-Bash ssh): paths with `/`, those under the user's
    /// profile as `~/…` so both ssh builds find them, CRLF as the original writes, and
    /// ProxyCommand words in double quotes only when they need them (the command is split
    /// by CreateProcess or `sh -c`, and both read `"C:/Program Files/…"`).
    Windows {
        /// `%USERPROFILE%`.
        profile: String,
    },
}

impl Flavor {
    /// This OS's flavor (`profile`: the user's profile directory on Windows).
    pub fn native(profile: &std::path::Path) -> Flavor {
        if egs_sys::WINDOWS {
            Flavor::Windows {
                profile: profile.display().to_string(),
            }
        } else {
            Flavor::Posix
        }
    }

    /// The line ending of the files.
    pub fn newline(&self) -> &'static str {
        match self {
            Flavor::Posix => "\n",
            Flavor::Windows { .. } => "\r\n",
        }
    }

    /// A path as the config names it.
    pub fn path(&self, path: &std::path::Path) -> String {
        let text = path.display().to_string();
        let Flavor::Windows { profile } = self else {
            return text;
        };
        let text = text.replace('\\', "/");
        let profile = profile.replace('\\', "/");
        let profile = profile.trim_end_matches('/');
        match text.get(..profile.len()) {
            Some(head)
                if !profile.is_empty()
                    && head.eq_ignore_ascii_case(profile)
                    && text[profile.len()..].starts_with('/') =>
            {
                format!("~{}", &text[profile.len()..])
            }
            _ => text,
        }
    }

    /// A word of the ProxyCommand.
    fn command_word(&self, word: &str) -> String {
        match self {
            Flavor::Posix => shell_quote(word),
            Flavor::Windows { .. }
                if !word.is_empty()
                    && word
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/\\._-:@=+,~".contains(&b)) =>
            {
                word.to_string()
            }
            Flavor::Windows { .. } => format!("\"{word}\""),
        }
    }
}

/// One guest's stanza.
pub struct Stanza<'a> {
    /// The names of the `Host` line, in order (each checked by [`check_alias`] or built
    /// from safe tokens).
    pub hosts: &'a [&'a str],
    /// The `HostName`: the canonical name (a placeholder; the ProxyCommand is the transport).
    pub host_name: &'a str,
    /// The private key to log in with.
    pub identity: &'a std::path::Path,
    /// The guest's own known-hosts file.
    pub known_hosts: &'a std::path::Path,
    /// The `egs-tool` executable.
    pub tool: &'a std::path::Path,
    /// The words after the tool in the ProxyCommand: `proxy <target>` or
    /// `catlet proxy <id> [--configuration <name>] [--client-id <id>]`.
    pub proxy_args: &'a [&'a str],
    /// For which ssh.
    pub flavor: &'a Flavor,
}

impl Stanza<'_> {
    /// The stanza's text, or which value would break the config.
    pub fn render(&self) -> Result<String, ConfigError> {
        let flavor = self.flavor;
        let identity = config_value("identity file path", &flavor.path(self.identity))?;
        let known_hosts = config_value("known-hosts file path", &flavor.path(self.known_hosts))?;
        let tool = config_value("egs-tool path", &flavor.path(self.tool))?;
        let mut proxy = flavor.command_word(&tool);
        for word in self.proxy_args {
            proxy.push(' ');
            proxy.push_str(&flavor.command_word(&config_value("target", word)?));
        }
        let lines = [
            "# This file was auto-generated by the eryph guest services and".to_string(),
            "# should not be edited manually.".to_string(),
            format!("Host {}", self.hosts.join(" ")),
            format!("    HostName {}", self.host_name),
            "    User egs".to_string(),
            format!("    IdentityFile \"{identity}\""),
            "    IdentitiesOnly yes".to_string(),
            "    KbdInteractiveAuthentication no".to_string(),
            "    PasswordAuthentication no".to_string(),
            "    StrictHostKeyChecking no".to_string(),
            format!("    UserKnownHostsFile \"{known_hosts}\""),
            "    LogLevel ERROR".to_string(),
            format!("    ProxyCommand {proxy}"),
            String::new(),
            String::new(),
        ];
        Ok(lines.join(flavor.newline()))
    }
}

/// The managed block for `~/.ssh/config`: includes every `*.config` in `dirs`, in order
/// (`catlet.d` before `vm.d`, as the original).
pub fn include_block(dirs: &[&std::path::Path], flavor: &Flavor) -> Result<String, ConfigError> {
    let mut lines = vec![
        MARKER.to_string(),
        "# This part was auto-generated by the eryph guest services.".to_string(),
        "# Do not edit it: egs-tool add-ssh-config rewrites it.".to_string(),
        String::new(),
    ];
    for dir in dirs {
        let dir = config_value("guest configuration directory", &flavor.path(dir))?;
        lines.push(format!("Include \"{dir}/*.config\""));
    }
    lines.extend([String::new(), MARKER.to_string(), String::new()]);
    Ok(lines.join(flavor.newline()))
}

/// `~/.ssh/config` with the managed block in place: created when there is no file,
/// prepended when there is no block (ssh reads the first match, and Include must come
/// before any Host), replaced in place when there is one. One marker alone, or more than
/// two, is a broken block: an error, the file untouched.
pub fn with_include_block(
    existing: &str,
    block: &str,
    path: &str,
    flavor: &Flavor,
) -> Result<String, ConfigError> {
    let lines: Vec<&str> = existing.split_inclusive('\n').collect();
    let markers: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_end() == MARKER)
        .map(|(i, _)| i)
        .collect();
    match markers.as_slice() {
        [] if existing.trim().is_empty() => Ok(block.to_string()),
        [] => Ok(format!("{block}{}{existing}", flavor.newline())),
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
                let ending = if line.ends_with("\r\n") { "\r\n" } else { "\n" };
                out.push_str(&format!("Host {}{ending}", kept.join(" ")));
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
                hosts: &["1.vsock.alt"],
                host_name: "1.vsock.alt",
                identity: std::path::Path::new(&format!("{home}/id")),
                known_hosts: std::path::Path::new(&format!("{home}/kh")),
                tool: std::path::Path::new("/usr/bin/egs-tool"),
                proxy_args: &["proxy", target],
                flavor: &Flavor::Posix,
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
        assert!(include_block(&[std::path::Path::new("/h/\nMatch all")], &Flavor::Posix).is_err());
        for alias in ["..", ".", "-oProxyCommand=x", ".hidden"] {
            assert_eq!(check_alias(alias), Err(ConfigError::BadAlias), "{alias}");
        }
    }

    #[test]
    fn the_include_block_is_created_prepended_replaced_and_never_clobbered() {
        let posix = &Flavor::Posix;
        let block = include_block(&[std::path::Path::new("/h/vm.d")], posix).unwrap();
        assert_eq!(with_include_block("", &block, "c", posix).unwrap(), block);
        let mine = "Host other\n  User me\n";
        let prepended = with_include_block(mine, &block, "c", posix).unwrap();
        assert_eq!(prepended, format!("{block}\n{mine}"));
        let newer = include_block(&[std::path::Path::new("/new/vm.d")], posix).unwrap();
        let replaced = with_include_block(&prepended, &newer, "c", posix).unwrap();
        assert_eq!(replaced, format!("{newer}\n{mine}"), "updated in place");
        assert_eq!(
            with_include_block(&replaced, &newer, "c", posix).unwrap(),
            replaced,
            "stable"
        );
        let broken = format!("{MARKER}\nInclude x\n{mine}");
        let err = with_include_block(&broken, &block, "/root/.ssh/config", posix)
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

    /// The files as Win32-OpenSSH reads them, byte for byte (`original-remote-access.md`
    /// §4.3): CRLF, `/` paths, the profile as `~`, the ProgramData key as an absolute path.
    #[test]
    fn windows_files_byte_for_byte() {
        let windows = Flavor::Windows {
            profile: r"C:\Users\Ann Lee".into(),
        };
        let vm = "5c5b4a4e-1d2c-4b6a-9f00-abcdefabcdef";
        let canonical = format!("{vm}.hyper-v.alt");
        let local = r"C:\Users\Ann Lee\AppData\Local\.eryph\guest-services\ssh";
        let text = Stanza {
            hosts: &["web", &canonical],
            host_name: &canonical,
            identity: std::path::Path::new(r"C:\ProgramData\eryph\guest-services\private\id_egs"),
            known_hosts: std::path::Path::new(&format!(r"{local}\known_hosts.d\{canonical}")),
            tool: std::path::Path::new(r"C:\Program Files\eryph\egs-tool.exe"),
            proxy_args: &["proxy", vm],
            flavor: &windows,
        }
        .render()
        .unwrap();
        assert_eq!(
            text,
            format!(
                "# This file was auto-generated by the eryph guest services and\r\n\
                 # should not be edited manually.\r\n\
                 Host web {vm}.hyper-v.alt\r\n\
                 \x20   HostName {vm}.hyper-v.alt\r\n\
                 \x20   User egs\r\n\
                 \x20   IdentityFile \"C:/ProgramData/eryph/guest-services/private/id_egs\"\r\n\
                 \x20   IdentitiesOnly yes\r\n\
                 \x20   KbdInteractiveAuthentication no\r\n\
                 \x20   PasswordAuthentication no\r\n\
                 \x20   StrictHostKeyChecking no\r\n\
                 \x20   UserKnownHostsFile \"~/AppData/Local/.eryph/guest-services/ssh/known_hosts.d/{vm}.hyper-v.alt\"\r\n\
                 \x20   LogLevel ERROR\r\n\
                 \x20   ProxyCommand \"C:/Program Files/eryph/egs-tool.exe\" proxy {vm}\r\n\r\n"
            )
        );
        let block = include_block(
            &[
                std::path::Path::new(&format!(r"{local}\catlet.d")),
                std::path::Path::new(&format!(r"{local}\vm.d")),
            ],
            &windows,
        )
        .unwrap();
        assert_eq!(
            block,
            format!(
                "{MARKER}\r\n# This part was auto-generated by the eryph guest services.\r\n\
                 # Do not edit it: egs-tool add-ssh-config rewrites it.\r\n\r\n\
                 Include \"~/AppData/Local/.eryph/guest-services/ssh/catlet.d/*.config\"\r\n\
                 Include \"~/AppData/Local/.eryph/guest-services/ssh/vm.d/*.config\"\r\n\r\n{MARKER}\r\n"
            )
        );
        let mine = "Host other\r\n  User me\r\n";
        let config = with_include_block(mine, &block, "c", &windows).unwrap();
        assert_eq!(config, format!("{block}\r\n{mine}"));
        assert_eq!(
            with_include_block(&config, &block, "c", &windows).unwrap(),
            config
        );
        // The profile is matched case-insensitively and only as a whole directory.
        assert_eq!(
            windows.path(std::path::Path::new(r"c:\users\ann lee\x")),
            "~/x"
        );
        assert_eq!(
            windows.path(std::path::Path::new(r"C:\Users\Ann Leeds\x")),
            "C:/Users/Ann Leeds/x"
        );
        assert_eq!(
            windows.command_word("unix:C:/run/a b.sock"),
            "\"unix:C:/run/a b.sock\""
        );
        assert_eq!(
            without_alias("Host web x.hyper-v.alt\r\n    User egs\r\n", "web").unwrap(),
            "Host x.hyper-v.alt\r\n    User egs\r\n"
        );
    }
}
