//! The commands that only touch KVP: the shell override (`set-shell`) and `get-data`, and
//! the store every KVP command of the tool uses: a VM's KVP through WMI on its Hyper-V
//! host, or the pool files under `--kvp-dir` (a copy of a guest's `/var/lib/hyperv`, tests).

use std::path::Path;

use egs_kvp::files::PoolFiles;
use egs_kvp::store::{Change, KvpStore, PoolId};
use egs_kvp::wmi::HostWmi;
use egs_ssh::shell::{KVP_SHELL, KVP_SHELL_ARGS};

/// The KVP of `target` as its host sees it: pool files in `kvp_dir` (created on the first
/// write, as the host creates a VM's External pool), otherwise WMI.
pub fn host_store(kvp_dir: Option<&Path>, target: &str) -> Box<dyn KvpStore> {
    match kvp_dir {
        Some(dir) => Box::new(PoolFiles::creating(dir)),
        None => Box::new(HostWmi::new(target)),
    }
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
    let kvp = host_store(kvp_dir, target);
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
        .get(PoolId::Guest, "eryph:guest-services:features")
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

/// `get-data --json`: the pools as one JSON object (`guest`, `guest_intrinsic`,
/// `external`, `host_only`); values that are JSON objects are embedded as objects.
pub fn get_data(kvp_dir: Option<&Path>, target: &str) -> Result<String, String> {
    let kvp = host_store(kvp_dir, target);
    let pool = |pool: PoolId| -> Result<serde_json::Value, String> {
        let mut map = serde_json::Map::new();
        match kvp.list(pool) {
            Err(egs_kvp::store::KvpError::MissingPool(_)) => {}
            Err(e) => return Err(format!("{target}: {e}")),
            Ok(listing) => {
                for r in listing.records {
                    let value = if r.value.trim_start().starts_with('{') {
                        serde_json::from_str::<serde_json::Value>(&r.value)
                            .ok()
                            .filter(|v| v.is_object())
                            .unwrap_or(serde_json::Value::String(r.value.clone()))
                    } else {
                        serde_json::Value::String(r.value)
                    };
                    map.insert(r.key, value);
                }
            }
        }
        Ok(serde_json::Value::Object(map))
    };
    let data = serde_json::json!({
        "guest": pool(PoolId::Guest)?,
        "guest_intrinsic": pool(PoolId::Auto)?,
        "external": pool(PoolId::External)?,
        "host_only": {},
    });
    serde_json::to_string_pretty(&data).map_err(|e| e.to_string())
}
