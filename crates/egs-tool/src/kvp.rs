//! The commands that only touch KVP: the shell override (`set-shell`) and `get-data`. On a
//! Hyper-V host they go through WMI (the Windows build); here they act on pool files under
//! `--kvp-dir` (a guest's own `/var/lib/hyperv`, or tests).

use std::path::Path;

use egs_kvp::pool::{Pool, POOL_EXTERNAL, POOL_GUEST};
use egs_ssh::shell::{KVP_SHELL, KVP_SHELL_ARGS};

fn pools_dir<'a>(kvp_dir: Option<&'a Path>, target: &str) -> Result<&'a Path, String> {
    kvp_dir.ok_or_else(|| {
        format!("{target}: KVP is written through WMI on the VM's Hyper-V host, which this build does not include; use --kvp-dir DIR for a pool file")
    })
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
    let dir = pools_dir(kvp_dir, target)?;
    let external = Pool::open(dir, POOL_EXTERNAL);
    let blank = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    if reset {
        if command.is_some() || arguments.is_some() {
            return Err("--reset cannot be combined with --command or --arguments".into());
        }
        external.delete(KVP_SHELL).map_err(|e| e.to_string())?;
        external.delete(KVP_SHELL_ARGS).map_err(|e| e.to_string())?;
        return Ok(format!("{target}: shell override removed"));
    }
    let command = blank(command).ok_or("--command is required (or --reset)")?;
    let features = Pool::open(dir, POOL_GUEST)
        .get("eryph:guest-services:features")
        .ok()
        .flatten()
        .unwrap_or_default();
    if !features.split_whitespace().any(|f| f == "shell-override") {
        return Err(format!(
            "{target}: the guest service does not support the 'shell-override' feature (is it running?)"
        ));
    }
    external
        .set(KVP_SHELL, &command)
        .map_err(|e| e.to_string())?;
    match blank(arguments) {
        Some(args) => external
            .set(KVP_SHELL_ARGS, &args)
            .map_err(|e| e.to_string())?,
        None => {
            external.delete(KVP_SHELL_ARGS).map_err(|e| e.to_string())?;
        }
    }
    Ok(format!(
        "{target}: shell set to {command} (from the next session)"
    ))
}

/// `get-data --json`: the pools as one JSON object (`guest`, `guest_intrinsic`,
/// `external`, `host_only`); values that are JSON objects are embedded as objects.
pub fn get_data(kvp_dir: Option<&Path>, target: &str) -> Result<String, String> {
    let dir = pools_dir(kvp_dir, target)?;
    let pool = |n: u8| -> serde_json::Value {
        let mut map = serde_json::Map::new();
        if let Ok((records, _)) = Pool::open(dir, n).read() {
            for r in records {
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
        serde_json::Value::Object(map)
    };
    let data = serde_json::json!({
        "guest": pool(POOL_GUEST),
        "guest_intrinsic": pool(egs_kvp::pool::POOL_AUTO),
        "external": pool(POOL_EXTERNAL),
        "host_only": {},
    });
    serde_json::to_string_pretty(&data).map_err(|e| e.to_string())
}
