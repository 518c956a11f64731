//! The Hyper-V KVP datasource: provisioning documents the host put into the External pool
//! (`.kvp_pool_0`) as described in `egs_kvp::documents` — an explicit host intent, so it is
//! probed before the media datasources. A partial or mismatched set means "not ready yet"
//! (the locator waits within its budget); a set that cannot become valid (bad base64, too
//! large) is an error naming the document.

use std::sync::Arc;
use std::time::Duration;

use egs_kvp::documents::{read, DocumentState, PREFIX};
use egs_kvp::store::{KvpError, KvpStore, PoolId};

use crate::env::Environment;
use crate::{normalize_public_keys, parse_meta_data, DataSource, DataSourceResult, Probe};

/// The KVP datasource, reading the External pool of the guest's KVP store.
#[derive(Debug, Clone)]
pub struct Kvp {
    /// The guest's KVP.
    pub store: Arc<dyn KvpStore>,
}

impl DataSource for Kvp {
    fn name(&self) -> &'static str {
        "KVP"
    }

    fn probe(&mut self, _env: &dyn Environment) -> Probe {
        let location = format!("Hyper-V KVP ({})", self.store.location(PoolId::External));
        let records = match self.store.list(PoolId::External) {
            Ok(listing) => listing.pairs(),
            Err(KvpError::MissingPool(_)) => return Probe::NotApplicable,
            Err(e) => return Probe::Failed(format!("KVP: {e}")),
        };
        if !records.iter().any(|(k, _)| k.starts_with(PREFIX)) {
            return Probe::NotApplicable;
        }
        let wait = |reason: String| Probe::Wait {
            reason,
            hint: Duration::from_secs(1),
        };
        let mut documents = Vec::new();
        for name in ["meta-data", "user-data", "vendor-data", "network-config"] {
            match read(&records, name) {
                DocumentState::Complete(bytes) => documents.push(Some(bytes)),
                DocumentState::Absent if name == "meta-data" => {
                    return wait("meta-data: not sent yet".into())
                }
                DocumentState::Absent => documents.push(None),
                DocumentState::Incomplete(why) => return wait(why),
                DocumentState::Invalid(why) => {
                    return Probe::Failed(format!("KVP ({location}): {why}"))
                }
            }
        }
        let [meta, user_data, vendor_data, network_config]: [Option<Vec<u8>>; 4] =
            documents.try_into().expect("four documents");
        let meta = match parse_meta_data(&meta.unwrap_or_default(), &location) {
            Ok(m) => m,
            Err(e) => return Probe::Failed(format!("KVP: {e}")),
        };
        let Some(instance_id) = meta
            .get("instance-id")
            .and_then(egs_cloudconfig::value::Node::python_str)
            .filter(|s| !s.trim().is_empty() && s != "None")
        else {
            return Probe::Failed(format!("KVP ({location}): meta-data has no 'instance-id'"));
        };
        Probe::Ready(Box::new(DataSourceResult {
            source: "KVP".into(),
            location,
            instance_id,
            hostname: meta
                .get("local-hostname")
                .and_then(egs_cloudconfig::value::Node::python_str),
            user_data,
            vendor_data,
            network_config,
            public_keys: normalize_public_keys(meta.get("public-keys")),
            meta_data: meta,
            default_user: None,
        }))
    }
}
