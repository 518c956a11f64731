//! `egs-service run` and `egs-service status`: provision (or show how provisioning went)
//! on the running system or a sandbox root.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use egs_kvp::store::KvpStore;
use egs_provision::modules::Stage;
use egs_provision::runner::{run, RunOptions, RunResult};
use egs_provision::settings::KvpKeyStyle;
use egs_provision::state::{read_json, Layout, RunState, RunStatus};
use serde_json::json;

/// Options of `run`.
#[derive(Debug, Default, clap::Args)]
pub struct RunArgs {
    /// Only these stages: local, network, config, final (cloud-init's names work too);
    /// repeat it or separate them with commas.
    #[arg(long, value_name = "STAGE", value_delimiter = ',')]
    stage: Vec<String>,
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
    #[arg(long, value_name = "STYLE", value_enum)]
    kvp_key_style: Option<KeyStyleArg>,
    /// Devices or image files to probe for seed media instead of /sys/class/block.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    devices: Option<Vec<PathBuf>>,
    /// As the boot units run it: do nothing when `service-control.conf` (below the root)
    /// says `ProvisioningEnabled=0`.
    #[arg(long)]
    if_enabled: bool,
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

    /// The state layout of this place.
    pub fn layout(&self) -> Layout {
        Layout::new(&self.root(), self.state_dir.as_deref())
    }

    /// The root provisioned (`/` unless a sandbox is given).
    pub fn root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(|| PathBuf::from("/"))
    }
}

/// `--kvp-key-style`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KeyStyleArg {
    /// `CLOUD_INIT|<boot>|<type>|<name>|<uuid>` (cloud-init up to 25.3; what eryph reads).
    FiveField,
    /// With the VM id, and durations (cloud-init 26.x).
    SixField,
}

/// Runs `egs-service run`.
pub fn run_command(args: RunArgs, place: &Where, kvp: Arc<dyn KvpStore>) -> ExitCode {
    if args.if_enabled {
        let config = place.root().join("etc/opt/eryph/guest-services");
        if !egs_ssh::control::ServiceControl::load(&config).provisioning {
            println!(
                "provisioning is disabled (ProvisioningEnabled=0 in {}/service-control.conf)",
                config.display()
            );
            return ExitCode::SUCCESS;
        }
    }
    let mut stages = Vec::new();
    for name in &args.stage {
        match Stage::parse(name) {
            Some(stage) => stages.push(stage),
            None => {
                eprintln!(
                    "egs-service run: unknown stage '{name}' (local, network, config, final)"
                );
                return ExitCode::from(2);
            }
        }
    }
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
        stages: stages.clone(),
        retry_failed: args.retry_failed,
        kvp: Some(kvp),
        boot_id: args.boot_id,
        default_user: None,
        dry_run: args.dry_run,
        kvp_key_style: args.kvp_key_style.map(|style| match style {
            KeyStyleArg::FiveField => KvpKeyStyle::FiveField,
            KeyStyleArg::SixField => KvpKeyStyle::SixField,
        }),
    };
    match run(&options) {
        Ok(RunResult::Done) => {
            if stages.is_empty() {
                println!("provisioning done");
            } else {
                let names: Vec<&str> = stages.iter().map(|s| s.name()).collect();
                println!("{} done", names.join(", "));
            }
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
    let layout = place.layout();
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
    let layout = place.layout();
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

/// How `status` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatusFormat {
    /// Lines for people (cloud-init's `tabular`).
    Tabular,
    /// One JSON object.
    Json,
}

/// Options of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Print JSON (the same as `--format json`).
    #[arg(long)]
    json: bool,
    /// Output format, as `cloud-init status --format`.
    #[arg(long, value_enum, default_value_t = StatusFormat::Tabular)]
    format: StatusFormat,
    /// Show stages and modules with their timings, and errors.
    #[arg(long)]
    long: bool,
    /// Wait until this boot's provisioning has finished (also while it has not started).
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (exit 3).
    #[arg(long, value_name = "SECONDS", requires = "wait")]
    timeout: Option<f64>,
}

/// Whether `status --wait` keeps waiting: nothing recorded yet, a run in progress (or
/// between stages), or, on the running system, only an earlier boot's run.
fn still_to_finish(state: Option<&RunState>, this_boot: Option<&str>) -> bool {
    match state {
        None => true,
        Some(s) if s.status == RunStatus::Running => true,
        Some(s) => this_boot.is_some_and(|boot| s.boot_id != boot),
    }
}

/// Runs `egs-service status`; exit 0 done/running/not started, 1 error, 2 done with
/// recoverable errors (as `cloud-init status`), 3 when `--wait --timeout` ran out.
pub fn status_command(place: &Where, args: StatusArgs) -> ExitCode {
    let layout = place.layout();
    let as_json = args.json || args.format == StatusFormat::Json;
    // Boots are told apart on the running system only (a sandbox's runs name their own).
    let this_boot = (place.root.is_none() && place.state_dir.is_none())
        .then(egs_provision::runner::system_boot_id);
    let deadline = args
        .timeout
        .map(|t| std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0)));
    let state = loop {
        let state: Option<RunState> = match read_json(&layout.state_file()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("egs-service status: {e}");
                return ExitCode::from(1);
            }
        };
        if args.wait && still_to_finish(state.as_ref(), this_boot.as_deref()) {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                eprintln!(
                    "egs-service status: provisioning has not finished after {} s",
                    args.timeout.unwrap_or_default()
                );
                print_status(state.as_ref(), as_json, args.long);
                return ExitCode::from(3);
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            continue;
        }
        break state;
    };
    let (status, degraded) = print_status(state.as_ref(), as_json, args.long);
    ExitCode::from(match (status.as_str(), degraded) {
        ("error", _) => 1,
        (_, true) => 2,
        _ => 0,
    })
}

/// Seconds as `cloud-init analyze show` prints them.
fn secs(s: f64) -> String {
    format!("{s:08.5}s")
}

/// Prints the state; returns the status and whether it is "degraded done".
fn print_status(state: Option<&RunState>, as_json: bool, long: bool) -> (String, bool) {
    let status = state
        .map_or("not started", |s| s.status.as_str())
        .to_string();
    // Like cloud-init: done with recoverable errors (bad settings, cloud-config problems
    // applied where possible) is "degraded done", exit 2.
    let degraded = status == "done" && state.is_some_and(|s| !s.errors.is_empty());
    let extended = if degraded {
        "degraded done"
    } else {
        status.as_str()
    };
    if as_json {
        let body = match state {
            Some(s) => json!({
                "status": s.status,
                "extended_status": extended,
                "instance_id": s.instance_id,
                "datasource": s.datasource,
                "boot_id": s.boot_id,
                "stages_done": s.stages_done,
                "stages": s.stages,
                "datasource_seconds": s.datasource_seconds,
                "errors": s.errors,
                "modules": s.modules,
                "reboots": s.reboots,
                "updated": s.updated,
            }),
            None => json!({"status": status, "extended_status": status}),
        };
        println!("{body}");
        return (status, degraded);
    }
    println!("status: {status}");
    if degraded {
        println!("extended_status: {extended}");
    }
    let (true, Some(s)) = (long, state) else {
        return (status, degraded);
    };
    println!("instance: {}", s.instance_id.as_deref().unwrap_or("-"));
    println!("datasource: {}", s.datasource.as_deref().unwrap_or("-"));
    let done: Vec<&str> = s.stages_done.iter().map(|d| d.name()).collect();
    println!("stages done: {}", done.join(", "));
    if let Some(d) = s.datasource_seconds {
        println!("datasource found and user-data read in {d:.3} s (last run)");
    }
    // As `cloud-init analyze show`: @ time since the first stage started, + duration.
    let origin = s
        .stages
        .iter()
        .map(|r| r.started)
        .chain(s.modules.iter().filter_map(|m| m.started))
        .fold(f64::INFINITY, f64::min);
    let mut stages: Vec<Stage> = Vec::new();
    for stage in s
        .stages
        .iter()
        .map(|r| r.name)
        .chain(s.modules.iter().map(|m| m.stage))
    {
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    for stage in stages {
        match s.stages.iter().find(|r| r.name == stage) {
            Some(r) => println!(
                "{:<15} @{} +{}",
                stage.name(),
                secs(r.started - origin),
                secs(r.duration)
            ),
            None => println!("{:<15} (not finished)", stage.name()),
        }
        for m in s.modules.iter().filter(|m| m.stage == stage) {
            let timing = match (m.started, m.duration) {
                (Some(at), Some(d)) => format!("@{} +{}", secs(at - origin), secs(d)),
                _ => String::new(),
            };
            println!(
                "  {:<24} {:<8} {timing}{}",
                m.name,
                m.result.as_str(),
                m.message
                    .as_deref()
                    .map(|x| format!("  {x}"))
                    .unwrap_or_default()
            );
        }
    }
    if let Some(total) = s
        .stages
        .iter()
        .map(|r| r.started + r.duration)
        .reduce(f64::max)
        .filter(|_| origin.is_finite())
    {
        println!(
            "total: {:.3} s from the first stage's start",
            total - origin
        );
    }
    for e in &s.errors {
        println!("error: {e}");
    }
    (status, degraded)
}
