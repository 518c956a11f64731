//! `set-user-data` / `clear-user-data`: a VM's provisioning documents through Hyper-V KVP.

use std::path::{Path, PathBuf};

use egs_kvp::documents;

use crate::kvp::host_store;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// What `set-user-data` sends.
#[derive(Debug, clap::Args)]
pub struct UserDataArgs {
    /// The VM (its id or name on a Hyper-V host).
    target: String,
    /// The user-data file (cloud-config, script, MIME, gzip …).
    #[arg(long, value_name = "PATH")]
    user_data: PathBuf,
    /// A NoCloud-style meta-data file (must hold `instance-id`).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["instance_id", "hostname"])]
    meta_data: Option<PathBuf>,
    /// The instance id, when no --meta-data is given.
    #[arg(long, value_name = "ID", required_unless_present = "meta_data")]
    instance_id: Option<String>,
    /// The host name, when no --meta-data is given.
    #[arg(long, value_name = "NAME")]
    hostname: Option<String>,
    /// Vendor-data.
    #[arg(long, value_name = "PATH")]
    vendor_data: Option<PathBuf>,
    /// Network configuration (v1 or v2).
    #[arg(long, value_name = "PATH")]
    network_config: Option<PathBuf>,
}

/// `set-user-data`.
pub fn set_user_data(kvp_dir: Option<&Path>, args: UserDataArgs) -> Result<String, String> {
    let UserDataArgs {
        target,
        user_data,
        meta_data,
        instance_id,
        hostname,
        vendor_data,
        network_config,
    } = args;
    let meta = match (meta_data, instance_id) {
        (Some(path), _) => read(&path)?,
        (None, Some(id)) => {
            let mut m = format!("instance-id: {id}\n");
            if let Some(h) = hostname {
                m.push_str(&format!("local-hostname: {h}\n"));
            }
            m.into_bytes()
        }
        (None, None) => unreachable!("clap requires --instance-id without --meta-data"),
    };
    let mut docs: Vec<(&str, Vec<u8>)> =
        vec![("meta-data", meta), ("user-data", read(&user_data)?)];
    if let Some(p) = vendor_data {
        docs.push(("vendor-data", read(&p)?));
    }
    if let Some(p) = network_config {
        docs.push(("network-config", read(&p)?));
    }
    let kvp = host_store(kvp_dir, &target)?;
    let refs: Vec<(&str, &[u8])> = docs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    documents::write(kvp.as_ref(), &refs).map_err(|e| format!("{target}: {e}"))?;
    let summary: Vec<String> = docs
        .iter()
        .map(|(n, b)| {
            format!(
                "{n} ({} bytes, {} chunks)",
                b.len(),
                b.len().div_ceil(documents::CHUNK_BYTES)
            )
        })
        .collect();
    Ok(format!("{target}: wrote {}", summary.join(", ")))
}

/// `clear-user-data`.
pub fn clear_user_data(kvp_dir: Option<&Path>, target: &str) -> Result<String, String> {
    let kvp = host_store(kvp_dir, target)?;
    let removed = documents::clear(kvp.as_ref()).map_err(|e| format!("{target}: {e}"))?;
    Ok(format!("{target}: removed {removed} key(s)"))
}
