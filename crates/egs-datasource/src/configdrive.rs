//! OpenStack ConfigDrive: a volume labelled `config-2` (any case) with
//! `openstack/<version>/meta_data.json`, `user_data`, `vendor_data.json` and
//! `network_data.json`; the newest known version directory wins, then `latest`
//! (cloud-init's `_find_working_version`).

use egs_cloudconfig::value::{Mapping, Node, Value};

use crate::env::Environment;
use crate::media::Volume;
use crate::{normalize_public_keys, DataSource, DataSourceResult, Probe};

/// Volume labels ConfigDrive looks for.
pub const LABELS: &[&str] = &["config-2"];
/// Version directories, newest first; `latest` is the fallback.
pub const VERSIONS: &[&str] = &[
    "2018-08-27",
    "2017-02-22",
    "2016-10-06",
    "2016-06-30",
    "2015-10-15",
    "2013-10-17",
    "2013-04-04",
    "2012-08-10",
    "latest",
];

/// The ConfigDrive datasource.
#[derive(Debug, Default)]
pub struct ConfigDrive;

/// JSON → loaded value (the same value model YAML metadata uses).
fn json_to_node(v: &serde_json::Value) -> Node {
    Node::detached(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(a) => Value::Seq(a.iter().map(json_to_node).collect()),
        serde_json::Value::Object(o) => {
            let mut m = Mapping::new();
            for (k, v) in o {
                m.insert_str(k, json_to_node(v));
            }
            Value::Map(m)
        }
    })
}

/// cloud-init's `convert_vendordata`: a JSON string is the payload, an object's
/// `cloud-init` string is, anything else is no vendor-data; bytes that are not JSON pass
/// through unchanged.
pub fn convert_vendor_data(raw: &[u8]) -> Option<Vec<u8>> {
    match serde_json::from_slice::<serde_json::Value>(raw) {
        Ok(serde_json::Value::String(s)) => Some(s.into_bytes()),
        Ok(serde_json::Value::Object(o)) => match o.get("cloud-init") {
            Some(serde_json::Value::String(s)) => Some(s.clone().into_bytes()),
            _ => None,
        },
        Ok(_) => None,
        Err(_) if raw.iter().all(u8::is_ascii_whitespace) => None,
        Err(_) => Some(raw.to_vec()),
    }
}

fn read_drive(volume: &mut Volume) -> Result<Option<DataSourceResult>, String> {
    let location = volume.path().display().to_string();
    let read = |v: &mut Volume, f: &str| v.read(f).map_err(|e| e.to_string());
    let mut chosen = None;
    for version in VERSIONS {
        if let Some(meta) = read(volume, &format!("openstack/{version}/meta_data.json"))? {
            chosen = Some((version, meta));
            break;
        }
    }
    let Some((version, meta)) = chosen else {
        return Ok(None);
    };
    let dir = format!("openstack/{version}");
    let json: serde_json::Value = serde_json::from_slice(&meta)
        .map_err(|e| format!("{location}: {dir}/meta_data.json is not valid JSON: {e}"))?;
    let Value::Map(meta_data) = json_to_node(&json).value else {
        return Err(format!(
            "{location}: {dir}/meta_data.json must be a JSON object"
        ));
    };
    let instance_id = meta_data
        .get("uuid")
        .and_then(Node::python_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{location}: {dir}/meta_data.json has no 'uuid'"))?;
    let hostname = meta_data
        .get("hostname")
        .or_else(|| meta_data.get("name"))
        .and_then(Node::python_str);
    Ok(Some(DataSourceResult {
        source: "ConfigDrive".into(),
        location: format!("{location} ({dir})"),
        instance_id,
        hostname,
        user_data: read(volume, &format!("{dir}/user_data"))?,
        vendor_data: read(volume, &format!("{dir}/vendor_data.json"))?
            .and_then(|v| convert_vendor_data(&v)),
        network_config: read(volume, &format!("{dir}/network_data.json"))?,
        public_keys: normalize_public_keys(meta_data.get("public_keys")),
        meta_data,
        default_user: None,
    }))
}

impl DataSource for ConfigDrive {
    fn name(&self) -> &'static str {
        "ConfigDrive"
    }

    fn probe(&mut self, env: &dyn Environment) -> Probe {
        for device in env.candidate_devices() {
            let Ok(Some(mut volume)) = Volume::open(&device) else {
                continue;
            };
            if !volume.has_label(LABELS) {
                continue;
            }
            return match read_drive(&mut volume) {
                Ok(Some(result)) => Probe::Ready(Box::new(result)),
                Ok(None) => Probe::Failed(format!(
                    "ConfigDrive: {}: no openstack/<version>/meta_data.json",
                    device.display()
                )),
                Err(e) => Probe::Failed(format!("ConfigDrive: {e}")),
            };
        }
        Probe::NotApplicable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_data_conversion() {
        assert_eq!(
            convert_vendor_data(br##""#cloud-config\na: 1""##).unwrap(),
            b"#cloud-config\na: 1"
        );
        assert_eq!(
            convert_vendor_data(br#"{"cloud-init": "x"}"#).unwrap(),
            b"x"
        );
        assert!(convert_vendor_data(b"{}").is_none());
        assert!(convert_vendor_data(b"[1]").is_none());
        assert_eq!(
            convert_vendor_data(b"#cloud-config\n").unwrap(),
            b"#cloud-config\n"
        );
    }
}
