//! `egs-provisioning.json` in `/etc/opt/eryph/guest-services/` (below the root): the
//! original EGS's settings file, with the keys this agent uses. JSON with camelCase names;
//! `//` comment lines are allowed. Command-line options win over it. A malformed file is
//! reported and the defaults are used (the original ignored it silently).

use std::path::PathBuf;

use serde::Deserialize;

use crate::system::System;

/// The settings file, below the root.
pub const PATH: &str = "/etc/opt/eryph/guest-services/egs-provisioning.json";

/// Datasource settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataSources {
    /// Devices or image files to probe instead of scanning `/sys/class/block`.
    pub devices: Option<Vec<PathBuf>>,
    /// Which datasources to probe, in this order (`Azure`, `NoCloud`, `ConfigDrive`).
    pub data_source_list: Option<Vec<String>>,
    /// The shared readiness budget in minutes (default 15).
    pub readiness_timeout_minutes: Option<u64>,
    /// The same in seconds (wins over minutes; for short budgets).
    pub readiness_timeout_seconds: Option<u64>,
}

/// Default user settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DefaultUser {
    /// The name `default` in `users` stands for.
    pub name: Option<String>,
}

/// How KVP event keys are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KvpKeyStyle {
    /// `CLOUD_INIT|<boot>|<type>|<name>|<uuid>`: cloud-init up to 25.3, what eryph reads.
    #[default]
    FiveField,
    /// With the VM id, and durations: cloud-init 26.x.
    SixField,
}

/// Reporting settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Reporting {
    /// `five-field` or `six-field` KVP event keys.
    pub kvp_key_style: Option<KvpKeyStyle>,
}

/// The settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Datasources.
    pub data_sources: DataSources,
    /// The default user.
    pub default_user: DefaultUser,
    /// Reporting.
    pub reporting: Reporting,
}

/// Reads the settings; a problem is returned beside the defaults.
pub fn load(system: &dyn System) -> (Settings, Option<String>) {
    let data = match system.read_file(PATH) {
        Ok(Some(d)) => d,
        Ok(None) => return (Settings::default(), None),
        Err(e) => return (Settings::default(), Some(e.to_string())),
    };
    let text: String = String::from_utf8_lossy(&data)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    match serde_json::from_str(&text) {
        Ok(s) => (s, None),
        Err(e) => (
            Settings::default(),
            Some(format!("{PATH}: {e}; using defaults")),
        ),
    }
}
