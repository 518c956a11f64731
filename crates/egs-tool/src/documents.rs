//! `set-user-data` / `clear-user-data`: a VM's provisioning documents through Hyper-V KVP.

use std::path::{Path, PathBuf};

use egs_kvp::documents;
use egs_kvp::pool::{Pool, POOL_EXTERNAL};

/// The External pool of `target`: a pool file under `--kvp-dir` (WMI needs the Windows
/// build).
pub fn pool_for(kvp_dir: Option<&Path>, target: &str) -> Result<Pool, String> {
    match kvp_dir {
        Some(dir) => Ok(Pool::open(dir, POOL_EXTERNAL)),
        None => Err(format!(
            "{target}: writing a VM's KVP goes through WMI on its Hyper-V host, which this build does not include yet; use --kvp-dir DIR to write a pool file"
        )),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// `set-user-data`.
#[allow(clippy::too_many_arguments)]
pub fn set_user_data(
    kvp_dir: Option<&Path>,
    target: String,
    user_data: PathBuf,
    meta_data: Option<PathBuf>,
    instance_id: Option<String>,
    hostname: Option<String>,
    vendor_data: Option<PathBuf>,
    network_config: Option<PathBuf>,
) -> Result<String, String> {
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
    let pool = pool_for(kvp_dir, &target)?;
    let refs: Vec<(&str, &[u8])> = docs.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    documents::write(&pool, &refs, true).map_err(|e| format!("{target}: {e}"))?;
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
    let pool = pool_for(kvp_dir, target)?;
    let removed = documents::clear(&pool).map_err(|e| format!("{target}: {e}"))?;
    Ok(format!("{target}: removed {removed} key(s)"))
}
