//! Bridge mode: when cloud-init is installed and enabled, cloud-init provisions and EGS
//! only mirrors `cloud-init status --format json` into `eryph.provisioning.state`, as the
//! original EGS does on Linux (done → completed, error → failed, running → running,
//! disabled → completed; anything else writes nothing).

use egs_kvp::report::{ProvisioningState, STATE_KEY};
use egs_kvp::store::{KvpError, KvpStore, PoolId};

use crate::command::Command;
use crate::state::{now, write_json, RunState, RunStatus, StateError};
use crate::system::{System, SystemError};

/// Why cloud-init's status could not be mirrored.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// There is no `cloud-init` program.
    #[error("cloud-init is not installed")]
    NotInstalled,
    /// `cloud-init status` could not run.
    #[error("cloud-init status: {0}")]
    Status(SystemError),
    /// It printed something else than JSON.
    #[error("cloud-init status printed no JSON: {0}")]
    NotJson(serde_json::Error),
    /// The KVP state could not be written.
    #[error(transparent)]
    Kvp(#[from] KvpError),
    /// `state.json` could not be written.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Whether cloud-init is installed and not disabled (`/etc/cloud/cloud-init.disabled`,
/// `cloud-init=disabled` on the kernel command line) on this root. Never on a Windows guest
/// (cloudbase-init is what EGS replaces there, not something it bridges).
pub fn cloud_init_enabled(system: &dyn System) -> bool {
    if system.is_windows() {
        return false;
    }
    let installed = program(system).is_some();
    let disabled_file = system
        .layout()
        .host("/etc/cloud/cloud-init.disabled")
        .is_ok_and(|p| p.exists());
    let cmdline = String::from_utf8_lossy(
        &system
            .read_file("/proc/cmdline")
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
    .into_owned();
    installed
        && !disabled_file
        && !cmdline
            .split_whitespace()
            .any(|t| t == "cloud-init=disabled")
}

/// cloud-init's program on this root, when it is installed.
fn program(system: &dyn System) -> Option<std::path::PathBuf> {
    ["/usr/bin/cloud-init", "/usr/local/bin/cloud-init"]
        .iter()
        .filter_map(|p| system.layout().host(p).ok())
        .find(|p| p.exists())
}

/// The `eryph.provisioning.state` value for a cloud-init status.
pub fn map_status(status: &str) -> Option<ProvisioningState> {
    match status {
        "done" | "disabled" => Some(ProvisioningState::Completed),
        "error" => Some(ProvisioningState::Failed),
        "running" => Some(ProvisioningState::Running),
        _ => None,
    }
}

/// What `egs-service status` shows for a system cloud-init provisions.
pub const BRIDGE_DATASOURCE: &str = "cloud-init (bridge mode)";

/// `egs-service status`'s word for a cloud-init status: final ones as they are, anything
/// else (`running`, `not run`, …) as running.
fn run_status(status: &str) -> RunStatus {
    match status {
        "done" => RunStatus::Done,
        "error" => RunStatus::Error,
        "disabled" => RunStatus::Disabled,
        _ => RunStatus::Running,
    }
}

/// Whether cloud-init is finished with this boot (its status no longer changes).
pub fn is_terminal(status: &str) -> bool {
    run_status(status) != RunStatus::Running
}

/// Reads cloud-init's status once and mirrors it: into the Guest pool (when there is one)
/// and into `state.json`, so `egs-service status` (and `--wait`) show cloud-init's progress.
/// Writes only when the status differs from `previous`. Returns cloud-init's status word.
pub fn mirror(
    system: &dyn System,
    kvp: Option<&dyn KvpStore>,
    previous: Option<&str>,
) -> Result<String, BridgeError> {
    let program = program(system).ok_or(BridgeError::NotInstalled)?;
    // The exit status is not an answer (it is non-zero for error and degraded runs).
    let out = system
        .execute(&Command::new([
            program.display().to_string(),
            "status".into(),
            "--format".into(),
            "json".into(),
        ]))
        .map_err(BridgeError::Status)?;
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(BridgeError::NotJson)?;
    let status = json["status"].as_str().unwrap_or("unknown").to_string();
    if previous == Some(status.as_str()) {
        return Ok(status);
    }
    if let (Some(state), Some(kvp)) = (map_status(&status), kvp) {
        match kvp.set(PoolId::Guest, STATE_KEY, state.as_str()) {
            Ok(()) | Err(KvpError::MissingPool(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let errors = json["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    format!(
                        "cloud-init: {}",
                        e.as_str().map_or_else(|| e.to_string(), str::to_string)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let state = RunState {
        status: run_status(&status),
        datasource: Some(BRIDGE_DATASOURCE.into()),
        boot_id: crate::runner::system_boot_id(),
        errors,
        updated: now(),
        ..RunState::default()
    };
    let path = system.layout().state_file();
    write_json(&path, &state, 0o600)?;
    Ok(status)
}

/// The original's `CloudInitStatusWatcher`, run by the daemon: mirrors cloud-init's status
/// until it is final (cloud-init's last stage runs after multi-user.target, so nothing that
/// is part of the boot transaction may wait for it). Stops for good when cloud-init cannot
/// be run. `cloud-init status` is a Python start (seconds of CPU on a small or emulated
/// VM), so after the first reading it is asked again only once cloud-init has written
/// `/run/cloud-init/result.json` (the end of its final stage); until then a file check
/// every 5 s is all the watching costs.
pub fn watch(system: &dyn System, kvp: Option<&dyn KvpStore>) {
    let finished = system.layout().host("/run/cloud-init/result.json").ok();
    let mut last: Option<String> = None;
    loop {
        if program(system).is_none() {
            return;
        }
        let ask = last.is_none() || finished.as_deref().is_some_and(std::path::Path::exists);
        if ask {
            match mirror(system, kvp, last.as_deref()) {
                Ok(status) if is_terminal(&status) => return,
                Ok(status) => last = Some(status),
                Err(_) => {}
            }
        }
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_matches_the_original() {
        assert_eq!(map_status("done"), Some(ProvisioningState::Completed));
        assert_eq!(map_status("disabled"), Some(ProvisioningState::Completed));
        assert_eq!(map_status("error"), Some(ProvisioningState::Failed));
        assert_eq!(map_status("running"), Some(ProvisioningState::Running));
        assert_eq!(map_status("not run"), None);
    }
}
