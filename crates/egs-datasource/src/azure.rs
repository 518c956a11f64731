//! Azure, from `ovf-env.xml` on the provisioning media (any volume that has it at its root)
//! or in `/var/lib/waagent`: host name, the user with its password and SSH keys, and
//! `CustomData` (base64 user-data). The instance id is the SMBIOS system UUID, as cloud-init
//! uses on Azure. Elements are matched by namespace URI and local name, never by prefix.

use base64::Engine;
use egs_cloudconfig::value::{Mapping, Node, Value};

use crate::env::Environment;
use crate::media::Volume;
use crate::{DataSource, DataSourceResult, PlatformUser, Probe};

const AZURE_NS: &str = "http://schemas.microsoft.com/windowsazure";

/// The Azure datasource.
#[derive(Debug, Default)]
pub struct Azure;

/// What `ovf-env.xml` says.
#[derive(Debug, Default, PartialEq)]
pub struct OvfEnv {
    /// `HostName`.
    pub hostname: Option<String>,
    /// `UserName`, `UserPassword`, `DisableSshPasswordAuthentication`.
    pub user: Option<PlatformUser>,
    /// `SSH/PublicKeys/PublicKey/Value`.
    pub public_keys: Vec<String>,
    /// `CustomData`, base64-decoded.
    pub custom_data: Option<Vec<u8>>,
}

/// Parses `ovf-env.xml`; errors name the element that is wrong.
pub fn parse_ovf_env(xml: &str) -> Result<OvfEnv, String> {
    let doc = roxmltree::Document::parse(xml)
        .map_err(|e| format!("ovf-env.xml is not well-formed XML: {e}"))?;
    let is = |n: &roxmltree::Node, name: &str| {
        n.is_element() && n.tag_name().namespace() == Some(AZURE_NS) && n.tag_name().name() == name
    };
    let set = doc
        .descendants()
        .find(|n| is(n, "LinuxProvisioningConfigurationSet"))
        .ok_or("ovf-env.xml has no LinuxProvisioningConfigurationSet")?;
    let text = |name: &str| {
        set.children()
            .find(|n| is(n, name))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    let custom_data = match text("CustomData") {
        None => None,
        Some(b64) => {
            let cleaned: String = b64.chars().filter(|c| !c.is_whitespace()).collect();
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(cleaned)
                    .map_err(|e| format!("ovf-env.xml: CustomData is not base64: {e}"))?,
            )
        }
    };
    let user = text("UserName").map(|name| PlatformUser {
        name,
        password: text("UserPassword"),
        disable_password_auth: text("DisableSshPasswordAuthentication")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
    });
    let public_keys = set
        .descendants()
        .filter(|n| is(n, "PublicKey"))
        .filter_map(|k| {
            k.children()
                .find(|c| is(c, "Value"))
                .and_then(|v| v.text())
                .map(|t| t.trim().to_string())
        })
        .filter(|k| !k.is_empty())
        .collect();
    Ok(OvfEnv {
        hostname: text("HostName"),
        user,
        public_keys,
        custom_data,
    })
}

impl Azure {
    fn find(env: &dyn Environment) -> Result<Option<(Vec<u8>, String)>, String> {
        let mut waagent = Volume::directory(&env.path("/var/lib/waagent"));
        if let Some(xml) = waagent.read("ovf-env.xml").map_err(|e| e.to_string())? {
            return Ok(Some((
                xml,
                waagent.path().join("ovf-env.xml").display().to_string(),
            )));
        }
        for device in env.candidate_devices() {
            let Ok(Some(mut volume)) = Volume::open(&device) else {
                continue;
            };
            if let Some(xml) = volume.read("ovf-env.xml").map_err(|e| e.to_string())? {
                return Ok(Some((xml, device.display().to_string())));
            }
        }
        Ok(None)
    }
}

impl DataSource for Azure {
    fn name(&self) -> &'static str {
        "Azure"
    }

    fn probe(&mut self, env: &dyn Environment) -> Probe {
        let (xml, location) = match Azure::find(env) {
            Ok(Some(x)) => x,
            Ok(None) => return Probe::NotApplicable,
            Err(e) => return Probe::Failed(format!("Azure: {e}")),
        };
        let ovf = match std::str::from_utf8(&xml)
            .map_err(|e| format!("ovf-env.xml is not UTF-8: {e}"))
            .and_then(parse_ovf_env)
        {
            Ok(o) => o,
            Err(e) => return Probe::Failed(format!("Azure ({location}): {e}")),
        };
        let Some(instance_id) = env.system_uuid() else {
            return Probe::Failed(format!(
                "Azure ({location}): no SMBIOS system UUID to use as the instance id"
            ));
        };
        let mut meta_data = Mapping::new();
        meta_data.insert_str(
            "instance-id",
            Node::detached(Value::Str(instance_id.clone())),
        );
        if let Some(h) = &ovf.hostname {
            meta_data.insert_str("local-hostname", Node::detached(Value::Str(h.clone())));
        }
        Probe::Ready(Box::new(DataSourceResult {
            source: "Azure".into(),
            location,
            instance_id,
            hostname: ovf.hostname,
            user_data: ovf.custom_data,
            public_keys: ovf.public_keys,
            default_user: ovf.user,
            meta_data,
            ..DataSourceResult::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OVF: &str = include_str!("../tests/ovf-env.xml");

    #[test]
    fn parses_ovf_env() {
        let ovf = parse_ovf_env(OVF).unwrap();
        assert_eq!(ovf.hostname.as_deref(), Some("azvm1"));
        let user = ovf.user.unwrap();
        assert_eq!(
            (
                user.name.as_str(),
                user.password.as_deref(),
                user.disable_password_auth
            ),
            ("azureuser", Some("s3cret!"), true)
        );
        assert_eq!(ovf.public_keys, ["ssh-ed25519 AAAAkey azure"]);
        assert_eq!(
            ovf.custom_data.unwrap(),
            b"#cloud-config\nhostname: from-custom-data\n"
        );
        // The same elements under another prefix are found; a foreign namespace is not.
        assert!(
            parse_ovf_env(&OVF.replace("ns1:", "wa:").replace("xmlns:ns1", "xmlns:wa")).is_ok()
        );
        assert!(parse_ovf_env(
            &OVF.replace("http://schemas.microsoft.com/windowsazure", "urn:other")
        )
        .is_err());
        assert!(parse_ovf_env("<broken")
            .unwrap_err()
            .contains("not well-formed"));
        assert!(parse_ovf_env(&OVF.replace("I2Nsb3Vk", "!!!"))
            .unwrap_err()
            .contains("CustomData"));
    }
}
