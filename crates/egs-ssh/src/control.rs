//! The service's configuration directory, and the service-control flags of its
//! `service-control.conf`, read
//! once at start exactly as the original reads them: `KEY=VALUE` lines, trimmed; blank
//! lines, `#` comments and lines without a key are skipped; keys match case-insensitively,
//! the first match wins; an integer is on when non-zero, else `true`/`false`
//! (case-insensitive); anything else (`yes`, empty, garbage) keeps the default.

use std::path::{Path, PathBuf};

/// Where the service's configuration lives (`service-control.conf`, `id_egs.pub`, the host
/// key): `/etc/opt/eryph/guest-services` on Linux, `%ProgramData%\eryph\guest-services` on
/// Windows, as the original keeps them.
pub fn default_config_dir() -> PathBuf {
    if egs_sys::WINDOWS {
        let program_data =
            std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        PathBuf::from(program_data).join(r"eryph\guest-services")
    } else {
        PathBuf::from("/etc/opt/eryph/guest-services")
    }
}

/// The flags and their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceControl {
    /// Provisioning runs in the daemon (default on).
    pub provisioning: bool,
    /// The SSH server runs (default on).
    pub remote_access: bool,
    /// Keys from the KVP key slots count (default on).
    pub kvp_auth: bool,
    /// `direct-tcpip` and `tcpip-forward` are served (default off: opt-in).
    pub port_forwarding: bool,
}

impl Default for ServiceControl {
    fn default() -> Self {
        Self {
            provisioning: true,
            remote_access: true,
            kvp_auth: true,
            port_forwarding: false,
        }
    }
}

/// The file name in the config directory.
pub const FILE_NAME: &str = "service-control.conf";

impl ServiceControl {
    /// Parses the file's text; unknown keys are ignored (the original ignores them too).
    pub fn parse(text: &str) -> Self {
        let defaults = Self::default();
        let flag = |name: &str, default: bool| {
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .filter_map(|l| l.split_once('='))
                .filter(|(k, _)| !k.trim().is_empty())
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map_or(default, |(_, v)| value(v.trim(), default))
        };
        Self {
            provisioning: flag("ProvisioningEnabled", defaults.provisioning),
            remote_access: flag("RemoteAccessEnabled", defaults.remote_access),
            kvp_auth: flag("KvpAuthEnabled", defaults.kvp_auth),
            port_forwarding: flag("PortForwardingEnabled", defaults.port_forwarding),
        }
    }

    /// Reads `<config_dir>/service-control.conf`; a missing or unreadable file means the
    /// defaults.
    pub fn load(config_dir: &Path) -> Self {
        std::fs::read_to_string(config_dir.join(FILE_NAME))
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }
}

fn value(v: &str, default: bool) -> bool {
    if let Ok(n) = v.parse::<i64>() {
        return n != 0;
    }
    if v.eq_ignore_ascii_case("true") {
        true
    } else if v.eq_ignore_ascii_case("false") {
        false
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_originals_rules() {
        let c = ServiceControl::parse(
            "# comment\n\n =1\nnoequals\n  remoteaccessenabled = 0 \nRemoteAccessEnabled=1\n\
             KvpAuthEnabled=yes\nPortForwardingEnabled=TRUE\nProvisioningEnabled=false\n",
        );
        assert_eq!(
            c,
            ServiceControl {
                provisioning: false,
                remote_access: false,
                kvp_auth: true,
                port_forwarding: true
            }
        );
        assert!(ServiceControl::parse("PortForwardingEnabled=-3").port_forwarding);
        assert!(!ServiceControl::parse("PortForwardingEnabled=yes").port_forwarding);
        assert!(!ServiceControl::parse("PortForwardingEnabled=").port_forwarding);
        assert!(ServiceControl::parse("KvpAuthEnabled=garbage").kvp_auth);
        assert_eq!(ServiceControl::parse(""), ServiceControl::default());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ServiceControl::load(dir.path()), ServiceControl::default());
    }
}
