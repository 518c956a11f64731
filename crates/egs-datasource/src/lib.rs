//! Datasources: where a VM's instance id, metadata, user-data, vendor-data and
//! network-config come from — NoCloud (seed directories, `cidata` volumes, `ds=nocloud` on
//! the kernel command line or in the SMBIOS serial, `seedfrom`), ConfigDrive (`config-2`),
//! Azure (`ovf-env.xml` on the provisioning media) and an explicit override — and the
//! locator that probes them in priority order within one readiness budget.
//!
//! Media are read straight from block devices or image files, never mounted ([`media`]);
//! everything the datasources look at on the machine goes through [`env::Environment`].

pub mod azure;
pub mod configdrive;
pub mod env;
pub mod kvp;
pub mod locator;
pub mod media;
pub mod nocloud;

use egs_cloudconfig::value::{Mapping, Node, Value};

/// What a datasource found.
#[derive(Debug, Clone, Default)]
pub struct DataSourceResult {
    /// `NoCloud`, `ConfigDrive`, `Azure`, `override`.
    pub source: String,
    /// Where exactly: a device, image, seed directory or URL.
    pub location: String,
    /// The instance id; a new one means a new instance.
    pub instance_id: String,
    /// The host name from metadata.
    pub hostname: Option<String>,
    /// Raw user-data (may be gzip; the pipeline handles it).
    pub user_data: Option<Vec<u8>>,
    /// Raw vendor-data.
    pub vendor_data: Option<Vec<u8>>,
    /// Raw network-config (NoCloud) or `network_data.json` (ConfigDrive).
    pub network_config: Option<Vec<u8>>,
    /// The metadata as loaded (YAML for NoCloud, JSON for ConfigDrive).
    pub meta_data: Mapping,
    /// SSH public keys for the default user.
    pub public_keys: Vec<String>,
    /// The default user the platform asks for (Azure).
    pub default_user: Option<PlatformUser>,
}

/// A user the platform itself defines (Azure's `UserName`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PlatformUser {
    /// Login name.
    pub name: String,
    /// Clear-text password (a secret: never logged; hashed before use).
    pub password: Option<String>,
    /// Whether password authentication over SSH should be off.
    pub disable_password_auth: bool,
}

impl std::fmt::Debug for PlatformUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformUser")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("disable_password_auth", &self.disable_password_auth)
            .finish()
    }
}

/// The outcome of one probe.
#[derive(Debug)]
pub enum Probe {
    /// This datasource is not present.
    NotApplicable,
    /// Present but not ready; ask again after about this long.
    Wait {
        /// Why.
        reason: String,
        /// Suggested delay.
        hint: std::time::Duration,
    },
    /// Found.
    Ready(Box<DataSourceResult>),
    /// Present but broken; the message names the medium and the problem.
    Failed(String),
}

/// A place provisioning data may come from.
pub trait DataSource {
    /// Name for logs and `datasource_list`.
    fn name(&self) -> &'static str;
    /// Looks once.
    fn probe(&mut self, env: &dyn env::Environment) -> Probe;
}

/// The datasource given on the command line (`run --user-data`, `--instance-id`).
#[derive(Debug, Clone)]
pub struct Override {
    /// The user-data bytes.
    pub user_data: Option<Vec<u8>>,
    /// The instance id (required: a stable id keeps per-instance state).
    pub instance_id: String,
}

impl DataSource for Override {
    fn name(&self) -> &'static str {
        "override"
    }

    fn probe(&mut self, _env: &dyn env::Environment) -> Probe {
        Probe::Ready(Box::new(DataSourceResult {
            source: "override".into(),
            location: "command line".into(),
            instance_id: self.instance_id.clone(),
            user_data: self.user_data.clone(),
            ..DataSourceResult::default()
        }))
    }
}

/// NoCloud-style `meta-data`: a YAML mapping (empty is an empty mapping); errors name the
/// location.
pub fn parse_meta_data(bytes: &[u8], location: &str) -> Result<Mapping, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{location}: meta-data is not UTF-8: {e}"))?;
    match egs_cloudconfig::yaml::load(text.strip_prefix('\u{feff}').unwrap_or(text), 0) {
        Ok(Some(Node {
            value: Value::Map(m),
            ..
        })) => Ok(m),
        Ok(None) => Ok(Mapping::new()),
        Ok(Some(other)) => Err(format!(
            "{location}: meta-data must be a mapping, found {}",
            other.type_name()
        )),
        Err(e) => Err(format!("{location}: meta-data is not valid YAML: {e}")),
    }
}

/// cloud-init's `normalize_pubkey_data`: a string is one key per line, a list is one key
/// per item, a mapping contributes each value (string or list); empty entries and repeats
/// are dropped.
pub fn normalize_public_keys(node: Option<&Node>) -> Vec<String> {
    fn add(keys: &mut Vec<String>, key: &str) {
        let key = key.trim();
        if !key.is_empty() && !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    fn items(node: &Node, keys: &mut Vec<String>) {
        match &node.value {
            Value::Str(s) => add(keys, s),
            Value::Seq(list) => list
                .iter()
                .filter_map(Node::as_str)
                .for_each(|s| add(keys, s)),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    match node.map(|n| &n.value) {
        Some(Value::Str(s)) => s.lines().for_each(|l| add(&mut keys, l)),
        Some(Value::Map(m)) => m.iter().for_each(|(_, v)| items(v, &mut keys)),
        Some(_) => items(node.expect("matched Some"), &mut keys),
        None => {}
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_in_every_form() {
        let load = |t: &str| egs_cloudconfig::yaml::load(t, 0).unwrap().unwrap();
        assert_eq!(
            normalize_public_keys(Some(&load("'ssh-ed25519 A\n\nssh-rsa B\n'"))),
            ["ssh-ed25519 A", "ssh-rsa B"]
        );
        assert_eq!(
            normalize_public_keys(Some(&load("[a, b, a, '']"))),
            ["a", "b"]
        );
        assert_eq!(
            normalize_public_keys(Some(&load("{k1: a, k2: [b, c]}"))),
            ["a", "b", "c"]
        );
        assert!(normalize_public_keys(None).is_empty());
        let user = PlatformUser {
            name: "u".into(),
            password: Some("hunter2".into()),
            disable_password_auth: false,
        };
        assert!(!format!("{user:?}").contains("hunter2"));
    }
}
