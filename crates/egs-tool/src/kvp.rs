//! The commands that only touch KVP — the shell override (`set-shell`), `get-data`, the
//! KVP form of `get-status` and the key push of `add-ssh-config` — and the store every KVP
//! command of the tool uses: a Hyper-V VM's KVP through WMI on its host, or the pool files
//! under `--kvp-dir` (a copy of a guest's `/var/lib/hyperv`, tests).

use std::path::Path;

use egs_kvp::files::PoolFiles;
use egs_kvp::store::{Change, KvpError, KvpStore, Listing, PoolId};
use egs_kvp::wmi::protocol::HostPool;
use egs_kvp::wmi::HostWmi;
use egs_ssh::server::{KVP_FEATURES, KVP_KEY_SLOT, KVP_STATUS, KVP_VERSION};
use egs_ssh::shell::{KVP_SHELL, KVP_SHELL_ARGS};
use egs_transport::Endpoint;

/// The Hyper-V VM id a KVP command was given (bare or `hv:`), as WMI names the VM.
fn vm_id(target: &str) -> Result<String, String> {
    match egs_transport::parse_target(target) {
        Ok(Endpoint::HyperV { vm_id, .. }) => Ok(vm_id.to_string()),
        _ => Err(format!(
            "{target}: KVP belongs to Hyper-V VMs: give the VM id (a GUID), or --kvp-dir DIR for pool files"
        )),
    }
}

/// The KVP of `target` as its host sees it: pool files in `kvp_dir` (created on the first
/// write, as the host creates a VM's External pool), otherwise the VM's KVP through WMI.
pub fn host_store(kvp_dir: Option<&Path>, target: &str) -> Result<Box<dyn KvpStore>, String> {
    match kvp_dir {
        Some(dir) => Ok(Box::new(PoolFiles::creating(dir))),
        None => Ok(Box::new(HostWmi::new(vm_id(target)?))),
    }
}

/// Whether `target` has KVP the tool reaches: a Hyper-V VM, or any target when pool files
/// stand in for its KVP.
pub fn uses_kvp(kvp_dir: Option<&Path>, target: &str) -> bool {
    kvp_dir.is_some()
        || matches!(
            egs_transport::parse_target(target),
            Ok(Endpoint::HyperV { .. })
        )
}

/// `add-ssh-config`'s key push (`original-remote-access.md` §4.2): the machine's public key
/// into the External pool, in the original's slot and in this host's own slot
/// (`…:<lower-case host name>`), so several hosts can each reach the VM.
pub fn push_client_key(
    kvp_dir: Option<&Path>,
    target: &str,
    public_key: &str,
) -> Result<Vec<String>, String> {
    let kvp = host_store(kvp_dir, target)?;
    let host = egs_sys::host::hostname()
        .map_err(|e| format!("this machine's host name: {e}"))?
        .to_lowercase();
    let slots = vec![KVP_KEY_SLOT.to_string(), format!("{KVP_KEY_SLOT}:{host}")];
    let key = public_key.trim();
    kvp.edit(PoolId::External, &mut |_| {
        Ok(slots.iter().map(|slot| Change::set(slot, key)).collect())
    })
    .map_err(|e| format!("{target}: {e}"))?;
    Ok(slots)
}

/// What `pool` holds; a pool that does not exist (yet) holds nothing.
fn listing_or_empty(kvp: &dyn KvpStore, pool: PoolId, target: &str) -> Result<Listing, String> {
    match kvp.list(pool) {
        Ok(listing) => Ok(listing),
        Err(KvpError::MissingPool(_)) => Ok(Listing::default()),
        Err(e) => Err(format!("{target}: {e}")),
    }
}

/// `get-status` from KVP (`original-remote-access.md` §3.9): the Guest pool's status, or
/// `unknown` when the VM is off, absent or its service has not reported; with the version
/// and the provisioning state the guest reports beside it.
pub fn get_status(kvp_dir: Option<&Path>, target: &str, json: bool) -> Result<String, String> {
    let kvp = host_store(kvp_dir, target)?;
    let guest = listing_or_empty(kvp.as_ref(), PoolId::Guest, target)?;
    let value = |key: &str| guest.get(key).map(str::trim).filter(|v| !v.is_empty());
    let status = value(KVP_STATUS).unwrap_or("unknown");
    let version = value(KVP_VERSION);
    let provisioning = value(egs_kvp::report::STATE_KEY);
    if json {
        return Ok(serde_json::json!({
            "status": status,
            "version": version,
            "provisioning": provisioning.map(|p| serde_json::json!({"status": p})),
        })
        .to_string());
    }
    Ok(format!(
        "Guest services: {status}\nVersion: {}\nProvisioning: {}",
        version.unwrap_or("-"),
        provisioning.unwrap_or("-")
    ))
}

/// `set-shell`: sets (or with `reset` removes) the KVP shell override. Setting needs the
/// guest to advertise `shell-override`; a command without arguments clears old arguments.
pub fn set_shell(
    kvp_dir: Option<&Path>,
    target: &str,
    command: Option<&str>,
    arguments: Option<&str>,
    reset: bool,
) -> Result<String, String> {
    let kvp = host_store(kvp_dir, target)?;
    let blank = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if reset {
        if command.is_some() || arguments.is_some() {
            return Err("--reset cannot be combined with --command or --arguments".into());
        }
        for key in [KVP_SHELL, KVP_SHELL_ARGS] {
            kvp.delete(PoolId::External, key)
                .map_err(|e| format!("{target}: {e}"))?;
        }
        return Ok(format!("{target}: shell override removed"));
    }
    let command = blank(command).ok_or("--command is required (or --reset)")?;
    let features = kvp
        .get(PoolId::Guest, KVP_FEATURES)
        .map_err(|e| format!("{target}: {e}"))?
        .unwrap_or_default();
    if !features.split_whitespace().any(|f| f == "shell-override") {
        return Err(format!(
            "{target}: the guest service does not support the 'shell-override' feature (is it running?)"
        ));
    }
    let arguments = blank(arguments);
    kvp.edit(PoolId::External, &mut |_| {
        Ok(vec![
            Change::set(KVP_SHELL, &command),
            match &arguments {
                Some(args) => Change::set(KVP_SHELL_ARGS, args),
                None => Change::Delete(KVP_SHELL_ARGS.into()),
            },
        ])
    })
    .map_err(|e| format!("{target}: {e}"))?;
    Ok(format!(
        "{target}: shell set to {command} (from the next session)"
    ))
}

/// A pool's records as one JSON object; values that are JSON objects are embedded as
/// objects, anything else (broken JSON too) is a string (§4.6).
fn pool_json(listing: &Listing) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for r in &listing.records {
        let value = if r.value.trim_start().starts_with('{') {
            serde_json::from_str::<serde_json::Value>(&r.value)
                .ok()
                .filter(|v| v.is_object())
                .unwrap_or_else(|| serde_json::Value::String(r.value.clone()))
        } else {
            serde_json::Value::String(r.value.clone())
        };
        map.insert(r.key.clone(), value);
    }
    serde_json::Value::Object(map)
}

/// The four pools of `get-data` with their JSON member names and titles (§4.6).
const DATA_POOLS: [(&str, &str, HostPool); 4] = [
    ("guest", "Guest data", HostPool::Guest),
    (
        "guest_intrinsic",
        "Intrinsic guest data",
        HostPool::GuestIntrinsic,
    ),
    ("external", "External data", HostPool::External),
    ("host_only", "Host-only data", HostPool::HostOnly),
];

/// The pools as `get-data` shows them: as one indented JSON object with the four members
/// of the original (`guest`, `guest_intrinsic`, `external`, `host_only`), or as four
/// titled key/value lists sorted by key.
pub fn data_document(pools: &[Listing; 4], json: bool) -> String {
    if json {
        let object: serde_json::Map<String, serde_json::Value> = DATA_POOLS
            .iter()
            .zip(pools)
            .map(|((member, _, _), listing)| (member.to_string(), pool_json(listing)))
            .collect();
        return serde_json::to_string_pretty(&object).unwrap_or_default();
    }
    let mut out = Vec::new();
    for ((_, title, _), listing) in DATA_POOLS.iter().zip(pools) {
        out.push(title.to_string());
        let mut pairs = listing.pairs();
        pairs.sort();
        pairs.dedup_by(|later, earlier| later.0 == earlier.0);
        if pairs.is_empty() {
            out.push("  no data".into());
        }
        let width = pairs
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        for (key, value) in pairs {
            out.push(format!("  {key:width$}  {value}"));
        }
        out.push(String::new());
    }
    out.pop();
    out.join("\n")
}

/// `get-data [--json]`: a Hyper-V VM's Guest, intrinsic, External and host-only pools
/// through WMI; with `--kvp-dir` the pool files' Guest, Auto and External pools (pool
/// files have no host-only pool).
pub fn get_data(kvp_dir: Option<&Path>, target: &str, json: bool) -> Result<String, String> {
    let pools = match kvp_dir {
        Some(dir) => {
            let kvp = PoolFiles::creating(dir);
            let list = |pool| listing_or_empty(&kvp, pool, target);
            [
                list(PoolId::Guest)?,
                list(PoolId::Auto)?,
                list(PoolId::External)?,
                Listing::default(),
            ]
        }
        None => {
            let wmi = HostWmi::new(vm_id(target)?);
            let list = |pool| wmi.list_host(pool).map_err(|e| format!("{target}: {e}"));
            [
                list(HostPool::Guest)?,
                list(HostPool::GuestIntrinsic)?,
                list(HostPool::External)?,
                list(HostPool::HostOnly)?,
            ]
        }
    };
    Ok(data_document(&pools, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use egs_kvp::record::Record;

    fn listing(pairs: &[(&str, &str)]) -> Listing {
        Listing {
            records: pairs
                .iter()
                .enumerate()
                .map(|(index, (key, value))| Record {
                    index,
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            problems: Vec::new(),
        }
    }

    /// `get-data` as the original prints it (§4.6): four members, JSON objects embedded,
    /// anything else (broken JSON, arrays) a string; the text form sorted by key.
    #[test]
    fn get_data_document() {
        let pools = [
            listing(&[
                ("eryph:guest-services:status", "available"),
                (
                    "eryph.provisioning.state",
                    r#"  {"status": "done", "n": 1}"#,
                ),
                ("broken", "{not json"),
                ("array", "[1, 2]"),
            ]),
            listing(&[("FullyQualifiedDomainName", "vm1.lab")]),
            Listing::default(),
            listing(&[("note", "x")]),
        ];
        let json: serde_json::Value = serde_json::from_str(&data_document(&pools, true)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "guest": {
                    "eryph:guest-services:status": "available",
                    "eryph.provisioning.state": {"status": "done", "n": 1},
                    "broken": "{not json",
                    "array": "[1, 2]",
                },
                "guest_intrinsic": {"FullyQualifiedDomainName": "vm1.lab"},
                "external": {},
                "host_only": {"note": "x"},
            })
        );
        assert!(
            data_document(&pools, true).starts_with("{\n  \""),
            "indented"
        );
        assert_eq!(
            data_document(&pools, false),
            "Guest data\n\
             \x20 array                        [1, 2]\n\
             \x20 broken                       {not json\n\
             \x20 eryph.provisioning.state       {\"status\": \"done\", \"n\": 1}\n\
             \x20 eryph:guest-services:status  available\n\
             \n\
             Intrinsic guest data\n\
             \x20 FullyQualifiedDomainName  vm1.lab\n\
             \n\
             External data\n\
             \x20 no data\n\
             \n\
             Host-only data\n\
             \x20 note  x"
        );
    }
}
