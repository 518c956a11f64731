//! `apply_network_config`: the datasource's network configuration (NoCloud/KVP
//! `network-config`, ConfigDrive `network_data.json`) or, without one, DHCP on the first
//! interface, rendered for the network stack the system uses and written before networking
//! starts (for netplan followed by `netplan generate`, as cloud-init does: netplan's boot
//! generator has already run). Once per instance, as cloud-init does by default.
//!
//! A network configuration that cannot be read fails this module only: the error names the
//! key, nothing is written, and every other module still runs.

use egs_netconfig::apply::Outcome as NetOutcome;
use egs_netconfig::{load, system as net_system, InputKind, Renderer};

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::state::Frequency;
use crate::system::SystemError;

/// `apply_network_config`.
pub const APPLY_NETWORK_CONFIG: Module = Module {
    name: "apply_network_config",
    stage: Stage::Local,
    frequency: Frequency::PerInstance,
    run: apply_network_config,
};

fn apply_network_config(ctx: &mut Context) -> ModuleResult {
    let root = ctx.system.layout().root.clone();
    if let Some(file) = ctx.system.network_disabled_by() {
        ctx.log.push(format!(
            "network configuration disabled by {}",
            file.strip_prefix(&root).unwrap_or(&file).display()
        ));
        return Ok(Outcome::NothingToDo);
    }
    if ctx.system.is_windows() && ctx.datasource.network_config.is_none() {
        // Windows configures its adapters by DHCP itself; there is no fallback to write.
        return Ok(Outcome::NothingToDo);
    }
    let interfaces = ctx.system.network_interfaces();
    let ds = ctx.datasource;
    let config = match &ds.network_config {
        None => None,
        Some(bytes) => {
            let (kind, name) = if ds.source == "ConfigDrive" {
                (InputKind::NetworkDataJson, "network_data.json")
            } else {
                (InputKind::Yaml, "network-config")
            };
            let input = format!("{} {name}", ds.source);
            let macs = net_system::mac_names(&interfaces);
            load(&input, bytes, kind, &macs).map_err(|e| SystemError::Input(e.to_string()))?
        }
    };
    let renames = match &config {
        Some(c) if !c.is_disabled() => {
            net_system::renames(c, &interfaces).map_err(|e| SystemError::Input(e.to_string()))?
        }
        _ => Vec::new(),
    };
    let result = ctx.system.apply_network(config, &interfaces);
    if matches!(result, Ok(NetOutcome::Written { .. })) {
        for (current, wanted) in &renames {
            ctx.system.rename_interface(current, wanted)?;
            ctx.log
                .push(format!("interface {current} renamed to {wanted}"));
        }
    }
    match result {
        Ok(NetOutcome::Written {
            renderer,
            source,
            files,
            removed,
            warnings,
        }) => {
            ctx.log.push(format!(
                "{source} rendered for {renderer}: {}",
                files.join(", ")
            ));
            if renderer == Renderer::Netplan {
                ctx.system.netplan_generate()?;
            }
            if !removed.is_empty() {
                ctx.log.push(format!(
                    "removed from an earlier instance: {}",
                    removed.join(", ")
                ));
            }
            ctx.log
                .extend(warnings.into_iter().map(|w| format!("warning: {w}")));
            Ok(Outcome::Done)
        }
        Ok(NetOutcome::Applied {
            source,
            steps,
            warnings,
        }) => {
            ctx.log
                .push(format!("{source} applied: {} step(s)", steps.len()));
            ctx.log.extend(steps.into_iter().map(|s| format!("  {s}")));
            ctx.log
                .extend(warnings.into_iter().map(|w| format!("warning: {w}")));
            Ok(Outcome::Done)
        }
        Ok(NetOutcome::Disabled) => {
            ctx.log
                .push("network-config says config: disabled; networking left alone".into());
            Ok(Outcome::NothingToDo)
        }
        Ok(NetOutcome::NothingToConfigure) => {
            ctx.log.push(
                "no network-config and no interface for the DHCP fallback; nothing written".into(),
            );
            Ok(Outcome::NothingToDo)
        }
        Err(e) => Err(e),
    }
}
