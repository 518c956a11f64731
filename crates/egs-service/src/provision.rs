//! `egs-service run` and `egs-service status`: provision (or show how provisioning went)
//! on the running system or a sandbox root.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use egs_provision::modules::Stage;
use egs_provision::runner::{run, RunOptions, RunResult};
use egs_provision::state::{read_json, Layout, RunState};
use serde_json::json;

/// Options of `run`.
#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Only this stage: local, network, config or final (cloud-init's names work too).
    #[arg(long, value_name = "STAGE")]
    stage: Option<String>,
    /// Take user-data from this file instead of a datasource.
    #[arg(long, value_name = "PATH")]
    user_data: Option<PathBuf>,
    /// Instance id for --user-data (default: derived from the file's content).
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Run modules recorded as failed again.
    #[arg(long)]
    retry_failed: bool,
    /// Show what would run (datasource, parts, modules) without changing anything.
    #[arg(long)]
    dry_run: bool,
    /// KVP event keys: `five-field` (cloud-init up to 25.3, what eryph reads) or
    /// `six-field` (cloud-init 26.x: with the VM id, and durations).
    #[arg(long, value_name = "STYLE", value_parser = ["five-field", "six-field"])]
    kvp_key_style: Option<String>,
    /// Devices or image files to probe for seed media instead of /sys/class/block.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    devices: Option<Vec<PathBuf>>,
    /// Pretend this is the boot with this id (tests simulate reboots with it).
    #[arg(long, value_name = "ID", hide = true)]
    boot_id: Option<String>,
}

/// Where provisioning acts (every command and the daemon).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Where {
    /// Act on a sandbox root instead of the running system: files, accounts (shadow-utils
    /// with --prefix), seed directories and state all live below it.
    #[arg(long, value_name = "DIR", global = true, env = "EGS_ROOT")]
    root: Option<PathBuf>,
    /// Keep all provisioning state here (default /var/lib/eryph/provisioning below the root).
    #[arg(long, value_name = "DIR", global = true, env = "EGS_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

impl Where {
    /// Hands this place to child processes (`EGS_ROOT`, `EGS_STATE_DIR`), so that
    /// `egs-service status` in an SSH session of a sandboxed daemon reads the sandbox.
    pub fn export(&self) {
        if let Some(root) = &self.root {
            std::env::set_var("EGS_ROOT", root);
        }
        if let Some(dir) = &self.state_dir {
            std::env::set_var("EGS_STATE_DIR", dir);
        }
    }

    /// The root provisioned (`/` unless a sandbox is given).
    pub fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| PathBuf::from("/"))
    }
}

/// Runs `egs-service run`.
pub fn run_command(args: RunArgs, place: &Where, kvp_dir: &Path) -> ExitCode {
    let stage = match args.stage.as_deref().map(|s| (s, Stage::parse(s))) {
        Some((name, None)) => {
            eprintln!("egs-service run: unknown stage '{name}' (local, network, config, final)");
            return ExitCode::from(2);
        }
        Some((_, s)) => s,
        None => None,
    };
    let user_data = match &args.user_data {
        Some(p) => match std::fs::read(p) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("egs-service run: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let options = RunOptions {
        root: place.root(),
        state_dir: place.state_dir.clone(),
        devices: args.devices,
        user_data,
        instance_id: args.instance_id,
        stage,
        retry_failed: args.retry_failed,
        kvp_dir: Some(kvp_dir.to_path_buf()),
        boot_id: args.boot_id,
        default_user: None,
        dry_run: args.dry_run,
        kvp_six_field: args.kvp_key_style.map(|s| s == "six-field"),
    };
    match run(&options) {
        Ok(RunResult::Done) => {
            println!("provisioning done");
            ExitCode::SUCCESS
        }
        Ok(RunResult::NoDataSource) => {
            println!("no datasource found; nothing to provision");
            ExitCode::SUCCESS
        }
        Ok(RunResult::Bridge(status)) => {
            println!("bridge mode: cloud-init is installed and enabled here (status: {status}); its status is mirrored to KVP and EGS does not provision. To let EGS provision, disable cloud-init (touch /etc/cloud/cloud-init.disabled).");
            ExitCode::SUCCESS
        }
        Ok(RunResult::Plan(lines)) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Ok(RunResult::RebootPending) => {
            println!("reboot requested; provisioning continues after it");
            ExitCode::SUCCESS
        }
        Ok(RunResult::Errors(errors)) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("egs-service run: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `egs-service reset`; exit 1 on the first path that cannot be removed.
pub fn reset_command(place: &Where, options: egs_provision::maintenance::ResetOptions) -> ExitCode {
    let layout = Layout::new(&place.root(), place.state_dir.as_deref());
    match egs_provision::maintenance::reset(&layout, options) {
        Ok(removals) => {
            for r in &removals {
                println!(
                    "{}: {}",
                    if r.removed { "removed" } else { "not present" },
                    r.path.display()
                );
            }
            println!(
                "Removed {} item(s).",
                removals.iter().filter(|r| r.removed).count()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("egs-service reset: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `egs-service collect-logs OUTPUT`.
pub fn collect_logs_command(place: &Where, output: &Path) -> ExitCode {
    let layout = Layout::new(&place.root(), place.state_dir.as_deref());
    match egs_provision::maintenance::collect_logs(&layout, output) {
        Ok(names) => {
            println!(
                "wrote {} ({} files: {})",
                output.display(),
                names.len(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("egs-service collect-logs: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `egs-service status`; exit 0 done/running/not started, 1 error, 2 done with
/// recoverable errors (as `cloud-init status`).
pub fn status_command(place: &Where, as_json: bool, long: bool, wait: bool) -> ExitCode {
    let layout = Layout::new(&place.root(), place.state_dir.as_deref());
    let state = loop {
        let state: Option<RunState> = match read_json(&layout.state_file()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("egs-service status: {e}");
                return ExitCode::from(1);
            }
        };
        if wait && state.as_ref().is_some_and(|s| s.status == "running") {
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue;
        }
        break state;
    };
    let status = state.as_ref().map_or("not started", |s| s.status.as_str());
    // Like cloud-init: done with recoverable errors (bad settings, cloud-config problems
    // applied where possible) is "degraded done", exit 2.
    let degraded = status == "done" && state.as_ref().is_some_and(|s| !s.errors.is_empty());
    let extended = if degraded { "degraded done" } else { status };
    if as_json {
        let body = match &state {
            Some(s) => json!({
                "status": s.status,
                "extended_status": extended,
                "instance_id": s.instance_id,
                "datasource": s.datasource,
                "boot_id": s.boot_id,
                "stages_done": s.stages_done,
                "errors": s.errors,
                "modules": s.modules.iter().map(|m| json!({"name": m.name, "stage": m.stage, "result": m.result, "message": m.message})).collect::<Vec<_>>(),
                "reboots": s.reboots,
                "updated": s.updated,
            }),
            None => json!({"status": status}),
        };
        println!("{body}");
    } else {
        println!("status: {status}");
        if degraded {
            println!("extended_status: {extended}");
        }
        if let (true, Some(s)) = (long, &state) {
            println!("instance: {}", s.instance_id.as_deref().unwrap_or("-"));
            println!("datasource: {}", s.datasource.as_deref().unwrap_or("-"));
            println!("stages done: {}", s.stages_done.join(", "));
            for m in &s.modules {
                println!(
                    "  {:<15} {:<22} {}{}",
                    m.stage,
                    m.name,
                    m.result,
                    m.message
                        .as_deref()
                        .map(|x| format!(": {x}"))
                        .unwrap_or_default()
                );
            }
            for e in &s.errors {
                println!("error: {e}");
            }
        }
    }
    ExitCode::from(match (status, degraded) {
        ("error", _) => 1,
        (_, true) => 2,
        _ => 0,
    })
}
