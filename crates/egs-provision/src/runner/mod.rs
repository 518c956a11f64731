//! One provisioning run: find the datasource, read user-data and vendor-data, and run the
//! stages' modules in order. A module runs when its frequency says so (semaphores below the
//! state directory); a failing module is recorded `failed` and the others still run (it is
//! retried only with `retry_failed` or for a new instance); a script's reboot request stops
//! the run, records `reboot-pending` and reboots, and the next boot continues. `state.json`
//! is rewritten atomically after every module, so a run killed at any point resumes
//! without running a completed module twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use egs_cloudconfig::schema::{CloudConfig, Severity, User};
use egs_datasource::DataSourceResult;
use egs_kvp::event::{EventType, KeyStyle, Outcome as KvpOutcome};
use egs_kvp::report::ProvisioningState;
use egs_kvp::store::KvpStore;
use egs_userdata::fetch::UrlFetcher;
use egs_userdata::pipeline::{process, Limits, UserData};

mod default_user;
mod plan;
mod reporting;
mod sources;

pub use default_user::distro_default_user;

use crate::modules::{self, Context, Module, Outcome, Stage};
use crate::settings::{KvpKeyStyle, Settings};
use crate::state::{
    create_private_dir, now, read_json, seconds_since, unix_seconds, write_json, Layout,
    ModuleRecord, ModuleResult, RunState, RunStatus, Semaphore, StageRecord, StateError,
};
use crate::system::{PowerAction, System, SystemError};
use reporting::{append_log, Kvp};

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `/` or a sandbox root.
    pub root: PathBuf,
    /// Moves all state.
    pub state_dir: Option<PathBuf>,
    /// Devices or images to probe instead of scanning `/sys/class/block`.
    pub devices: Option<Vec<PathBuf>>,
    /// User-data from a file instead of a datasource.
    pub user_data: Option<Vec<u8>>,
    /// Instance id for `user_data` (default: derived from its content).
    pub instance_id: Option<String>,
    /// Only these stages (in their order); empty: all.
    pub stages: Vec<Stage>,
    /// Run modules recorded `failed` again.
    pub retry_failed: bool,
    /// The guest's KVP: documents are read from its External pool, events written to its
    /// Guest pool when that exists.
    pub kvp: Option<Arc<dyn KvpStore>>,
    /// The boot id (default: `/proc/sys/kernel/random/boot_id`); tests simulate reboots.
    pub boot_id: Option<String>,
    /// The distribution's default user (default: from `/etc/os-release` of the root).
    pub default_user: Option<User>,
    /// Only report what would run; change nothing, write no state.
    pub dry_run: bool,
    /// How KVP event keys are written (cloud-init 26.x's six-field keys carry the VM id
    /// from SMBIOS and a `duration`; the five-field keys are what eryph reads); `None`: as
    /// the settings say.
    pub kvp_key_style: Option<KvpKeyStyle>,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunResult {
    /// No datasource was found: nothing to do.
    NoDataSource,
    /// All modules done.
    Done,
    /// Some modules failed (listed in the state).
    Errors(Vec<String>),
    /// A reboot was requested and started; the next boot continues.
    RebootPending,
    /// `dry_run`: what would happen, for people.
    Plan(Vec<String>),
    /// cloud-init provisions this system; its status (given) was mirrored to KVP.
    Bridge(String),
}

/// The target of provisioning's log events.
const LOG: &str = "egs::provision";

/// Why a run stopped before its modules were done (a module's own failure is recorded, not
/// returned).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Provisioning state could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
    /// No datasource could be read (the reasons of each one that failed).
    #[error("{0}")]
    DataSource(String),
    /// cloud-init's status could not be mirrored (bridge mode).
    #[error("cloud-init bridge: {0}")]
    Bridge(#[from] crate::bridge::BridgeError),
    /// The reboot a script asked for could not be started.
    #[error("reboot: {0}")]
    Reboot(SystemError),
}

/// The boot id of the running system (`unknown` when the OS does not say).
pub fn system_boot_id() -> String {
    egs_sys::boot::boot_id().unwrap_or_else(|_| "unknown".into())
}

/// Runs provisioning.
pub fn run(opts: &RunOptions) -> Result<RunResult, RunError> {
    let layout = Layout::new(&opts.root, opts.state_dir.as_deref());
    let system = crate::system::for_layout(layout);
    let (settings, settings_problem) = crate::settings::load(system.as_ref());
    let boot_id = opts.boot_id.clone().unwrap_or_else(system_boot_id);
    let previous: RunState = read_json(&system.layout().state_file())?.unwrap_or_default();
    let style = key_style(opts, &settings, system.as_ref());
    let mut kvp = Kvp::open(opts.kvp.as_ref(), style);
    if opts.dry_run {
        kvp.reporter = None;
    }
    if opts.user_data.is_none() && crate::bridge::cloud_init_enabled(system.as_ref()) {
        return bridge_mode(opts, system.as_ref());
    }
    let search_started = Instant::now();
    let Some(ds) = sources::find_datasource(opts, &settings)? else {
        return no_datasource(opts, system.layout(), previous, boot_id);
    };
    let new_instance = previous.instance_id.as_deref() != Some(ds.instance_id.as_str());
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| opts.stages.is_empty() || opts.stages.contains(s))
        .collect();
    let mut run = Run {
        state: initial_state(&previous, &ds, &stages, &boot_id, new_instance),
        earlier_failures: Vec::new(),
        failed: Vec::new(),
        log: Vec::new(),
        opts,
        system,
        boot_id,
        kvp,
    };
    run.earlier_failures = run
        .state
        .modules
        .iter()
        .filter(|m| m.result == ModuleResult::Failed)
        .map(|m| format!("{}: {}", m.name, m.message.as_deref().unwrap_or_default()))
        .collect();
    run.save()?;
    run.kvp.state(ProvisioningState::Started);
    run.keep_documents(&ds)?;
    let user_data = match run.read_user_data(&ds) {
        Ok(u) => u,
        Err(errors) => return Ok(RunResult::Errors(errors)),
    };
    run.state.datasource_seconds = Some(seconds_since(search_started));
    let (config, schema) = CloudConfig::from_node(&user_data.config);
    run.log.push(format!(
        "instance {} from {} ({}); {} user-data part(s)",
        ds.instance_id,
        ds.source,
        ds.location,
        user_data.parts.len()
    ));
    for d in user_data
        .diagnostics
        .items
        .iter()
        .chain(&schema.items)
        .filter(|d| d.severity == Severity::Error)
    {
        let described = user_data.describe(d);
        run.log.push(format!(
            "cloud-config problem (applied where possible): {described}"
        ));
        run.state.errors.push(described);
    }
    if let Some(problem) = &settings_problem {
        run.log.push(format!("settings: {problem}"));
        run.state.errors.push(format!("settings: {problem}"));
    }
    let default_user = run.default_user(&settings, &ds);
    if opts.dry_run {
        return Ok(RunResult::Plan(plan::plan(
            run.system.layout(),
            &ds,
            &user_data,
            &run.log,
            opts,
            &run.boot_id,
            new_instance,
        )));
    }
    let inputs = Inputs {
        config: &config,
        user_data: &user_data,
        datasource: &ds,
        default_user: &default_user,
    };
    for stage in stages {
        if let Some(reboot) = run.run_stage(stage, &inputs)? {
            return Ok(reboot);
        }
    }
    run.finish()
}

/// What a panic said.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// The KVP key style: the command line's, else the settings', and the VM id for six-field
/// keys from SMBIOS, as cloud-init takes it (all zeros without one).
fn key_style(opts: &RunOptions, settings: &Settings, system: &dyn System) -> KeyStyle {
    let style = opts
        .kvp_key_style
        .or(settings.reporting.kvp_key_style)
        .unwrap_or_default();
    match style {
        KvpKeyStyle::FiveField => KeyStyle::FiveField,
        KvpKeyStyle::SixField => {
            let vm_id = system
                .read_file("/sys/class/dmi/id/product_uuid")
                .ok()
                .flatten()
                .map(|u| String::from_utf8_lossy(&u).trim().to_lowercase())
                .filter(|u| !u.is_empty());
            KeyStyle::SixField {
                vm_id: vm_id.unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
            }
        }
    }
}

/// cloud-init provisions this system: mirror its status, provision nothing.
fn bridge_mode(opts: &RunOptions, system: &dyn System) -> Result<RunResult, RunError> {
    let status = if opts.dry_run {
        "not mirrored (dry run)".to_string()
    } else {
        crate::bridge::mirror(system, opts.kvp.as_deref(), None)?
    };
    append_log(
        system.layout(),
        &[format!(
            "bridge mode: cloud-init is enabled (status {status}); mirrored, not provisioning"
        )],
    );
    Ok(RunResult::Bridge(status))
}

/// No datasource: nothing to provision; the status says `disabled`.
fn no_datasource(
    opts: &RunOptions,
    layout: &Layout,
    previous: RunState,
    boot_id: String,
) -> Result<RunResult, RunError> {
    if opts.dry_run {
        return Ok(RunResult::NoDataSource);
    }
    let state = RunState {
        status: RunStatus::Disabled,
        boot_id,
        errors: vec!["no datasource found".into()],
        updated: now(),
        ..previous
    };
    write_json(&layout.state_file(), &state, 0o600)?;
    append_log(
        layout,
        &["no datasource found; nothing to provision".into()],
    );
    Ok(RunResult::NoDataSource)
}

/// The state a run starts from. Within one boot and instance the records of stages this
/// run does not touch stay (the local stage runs in a unit of its own, before the others).
fn initial_state(
    previous: &RunState,
    ds: &DataSourceResult,
    stages: &[Stage],
    boot_id: &str,
    new_instance: bool,
) -> RunState {
    let continuing = previous.boot_id == boot_id && !new_instance;
    let other_stage = |stage: &Stage| !stages.contains(stage);
    RunState {
        status: RunStatus::Running,
        instance_id: Some(ds.instance_id.clone()),
        datasource: Some(format!("{} ({})", ds.source, ds.location)),
        boot_id: boot_id.to_string(),
        stages_done: if continuing {
            previous.stages_done.clone()
        } else {
            Vec::new()
        },
        stages: previous
            .stages
            .iter()
            .filter(|r| continuing && other_stage(&r.name))
            .cloned()
            .collect(),
        datasource_seconds: None,
        modules: previous
            .modules
            .iter()
            .filter(|m| continuing && other_stage(&m.stage))
            .cloned()
            .collect(),
        errors: Vec::new(),
        reboots: if new_instance { 0 } else { previous.reboots },
        updated: now(),
    }
}

/// What the modules read.
struct Inputs<'a> {
    config: &'a CloudConfig,
    user_data: &'a UserData,
    datasource: &'a DataSourceResult,
    default_user: &'a User,
}

/// One run in progress.
struct Run<'o> {
    opts: &'o RunOptions,
    /// The system, and with it the layout (`system.layout()`).
    system: Box<dyn System>,
    boot_id: String,
    kvp: Kvp,
    state: RunState,
    /// Failures of the other stages in this boot (the local stage's unit ran first): they
    /// still make the status `error`.
    earlier_failures: Vec<String>,
    /// Failures of this run.
    failed: Vec<String>,
    log: Vec<String>,
}

impl Run<'_> {
    /// Writes `state.json` (not in a dry run).
    fn save(&mut self) -> Result<(), RunError> {
        if self.opts.dry_run {
            return Ok(());
        }
        self.state.updated = now();
        write_json(&self.system.layout().state_file(), &self.state, 0o600)?;
        Ok(())
    }

    /// Keeps the instance's user-data and vendor-data as read (0600), as cloud-init does.
    fn keep_documents(&self, ds: &DataSourceResult) -> Result<(), RunError> {
        if self.opts.dry_run {
            return Ok(());
        }
        let dir = self.system.layout().instance(&ds.instance_id);
        create_private_dir(&dir).map_err(|e| StateError::io(&dir, e))?;
        for (name, data) in [
            ("user-data.txt", &ds.user_data),
            ("vendor-data.txt", &ds.vendor_data),
        ] {
            if let Some(d) = data {
                let path = dir.join(name);
                egs_sys::fs::write_atomic(&path, d, 0o600).map_err(|e| StateError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Reads user-data and vendor-data; when they cannot be read at all the run ends here
    /// with the status `error` (the errors are returned).
    fn read_user_data(&mut self, ds: &DataSourceResult) -> Result<UserData, Vec<String>> {
        let fetcher = UrlFetcher {
            once_cache: (!self.opts.dry_run).then(|| {
                self.system
                    .layout()
                    .instance(&ds.instance_id)
                    .join("urlcache")
            }),
            ..UrlFetcher::default()
        };
        let result = process(
            ds.user_data.as_deref().unwrap_or_default(),
            ds.vendor_data.as_deref(),
            &fetcher,
            &Limits::default(),
        );
        result.map_err(|e| {
            self.state.status = RunStatus::Error;
            self.state.errors.push(format!("user-data: {e}"));
            if let Err(save) = self.save() {
                self.state.errors.push(save.to_string());
            }
            self.kvp.event(
                Stage::Network.name(),
                EventType::Finish,
                &format!("userdata-parse: {e}"),
                Some(KvpOutcome::Fail),
                None,
            );
            self.kvp.state(ProvisioningState::Failed);
            self.state.errors.clone()
        })
    }

    /// The user `default` stands for: the distribution's (or the caller's), renamed by the
    /// settings, replaced by a platform-defined user (Azure's UserName) as in cloud-init.
    fn default_user(&self, settings: &Settings, ds: &DataSourceResult) -> User {
        let mut user = self
            .opts
            .default_user
            .clone()
            .unwrap_or_else(|| distro_default_user(self.system.as_ref()));
        if let Some(name) = &settings.default_user.name {
            user.name = name.clone();
        }
        if let Some(platform) = &ds.default_user {
            user.name = platform.name.clone();
            user.gecos = None;
            if let Some(password) = &platform.password {
                user.plain_text_passwd = Some(password.clone());
                user.lock_passwd = Some(false);
            }
        }
        user
    }

    /// Runs one stage's modules; `Some` when a reboot ends the run.
    fn run_stage(&mut self, stage: Stage, inputs: &Inputs) -> Result<Option<RunResult>, RunError> {
        let started = Instant::now();
        let started_at = unix_seconds(SystemTime::now());
        tracing::info!(target: LOG, stage = stage.name(), "stage started");
        self.kvp.state(ProvisioningState::Running);
        self.kvp.event(
            stage.name(),
            EventType::Start,
            &format!("running stage {}", stage.name()),
            None,
            None,
        );
        for module in modules::all().iter().filter(|m| m.stage == stage) {
            if self.run_module(module, inputs)? {
                return self.reboot().map(Some);
            }
        }
        self.kvp.event(
            stage.name(),
            EventType::Finish,
            &format!("finished stage {}", stage.name()),
            Some(if self.failed.is_empty() {
                KvpOutcome::Success
            } else {
                KvpOutcome::Fail
            }),
            Some(started),
        );
        if !self.state.stages_done.contains(&stage) {
            self.state.stages_done.push(stage);
        }
        self.state.stages.retain(|r| r.name != stage);
        let duration = seconds_since(started);
        tracing::info!(target: LOG, stage = stage.name(), duration, "stage finished");
        self.state.stages.push(StageRecord {
            name: stage,
            started: started_at,
            duration,
        });
        self.save()?;
        Ok(None)
    }

    /// Runs one module if its semaphore lets it, records the result; returns whether it
    /// asked for a reboot.
    fn run_module(&mut self, module: &Module, inputs: &Inputs) -> Result<bool, RunError> {
        let instance_id = &inputs.datasource.instance_id;
        let semaphore = self
            .system
            .layout()
            .semaphore(instance_id, module.name, module.frequency);
        let recorded: Option<Semaphore> = semaphore
            .as_deref()
            .and_then(|p| read_json(p).ok().flatten());
        if plan::already_done(
            &recorded,
            module.frequency,
            &self.boot_id,
            self.opts.retry_failed,
        ) {
            self.record_skip(module, recorded);
            return Ok(false);
        }
        let event_name = format!("{}/config-{}", module.stage.name(), module.name);
        self.kvp.event(
            &event_name,
            EventType::Start,
            &format!(
                "running config-{} with frequency {:?}",
                module.name, module.frequency
            ),
            None,
            None,
        );
        let started = Instant::now();
        let started_at = unix_seconds(SystemTime::now());
        let mut ctx = Context {
            system: self.system.as_ref(),
            config: inputs.config,
            user_data: inputs.user_data,
            datasource: inputs.datasource,
            instance_id,
            default_user: inputs.default_user,
            boot_id: &self.boot_id,
            log: Vec::new(),
        };
        // A panicking module (a bug) fails alone; the run and the other modules go on.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (module.run)(&mut ctx)))
                .unwrap_or_else(|panic| Err(SystemError::Panicked(panic_text(panic.as_ref()))));
        let duration = seconds_since(started);
        let module_log = std::mem::take(&mut ctx.log);
        self.log.extend(
            module_log
                .into_iter()
                .map(|l| format!("{}: {l}", module.name)),
        );
        let (result, message) = self.judge(outcome);
        if result != ModuleResult::Reboot {
            if let Some(path) = &semaphore {
                let record = Semaphore {
                    result,
                    boot_id: self.boot_id.clone(),
                    at: now(),
                    message: message.clone(),
                };
                write_json(path, &record, 0o600)?;
            }
        }
        match result {
            ModuleResult::Failed => tracing::warn!(
                target: LOG,
                module = module.name,
                duration,
                "module failed: {}",
                message.as_deref().unwrap_or_default()
            ),
            _ => {
                tracing::info!(target: LOG, module = module.name, duration, result = result.as_str(), "module ran")
            }
        }
        if result == ModuleResult::Failed {
            let text = format!(
                "{}: {}",
                module.name,
                message.as_deref().unwrap_or_default()
            );
            self.log.push(format!(
                "{} failed: {}",
                module.name,
                message.as_deref().unwrap_or_default()
            ));
            self.failed.push(text);
        }
        self.kvp.event(
            &event_name,
            EventType::Finish,
            message.as_deref().unwrap_or(result.as_str()),
            Some(if result == ModuleResult::Failed {
                KvpOutcome::Fail
            } else {
                KvpOutcome::Success
            }),
            Some(started),
        );
        self.state.modules.push(ModuleRecord {
            name: module.name.into(),
            stage: module.stage,
            result,
            message,
            started: Some(started_at),
            duration: Some(duration),
        });
        self.save()?;
        Ok(result == ModuleResult::Reboot)
    }

    /// A module's outcome as a result and message; a reboot beyond the limit is a failure.
    fn judge(&mut self, outcome: Result<Outcome, SystemError>) -> (ModuleResult, Option<String>) {
        match outcome {
            Ok(Outcome::Reboot { again }) => {
                self.state.reboots += 1;
                if self.state.reboots > modules::MAX_REBOOTS {
                    (
                        ModuleResult::Failed,
                        Some(format!(
                            "more than {} reboots requested for this instance",
                            modules::MAX_REBOOTS
                        )),
                    )
                } else if again {
                    (
                        ModuleResult::Reboot,
                        Some("reboot requested; the script runs again".into()),
                    )
                } else {
                    (ModuleResult::Reboot, Some("reboot requested".into()))
                }
            }
            Ok(_) => (ModuleResult::Done, None),
            Err(e) => (ModuleResult::Failed, Some(e.to_string())),
        }
    }

    /// Records a module its semaphore skips; a recorded failure still counts.
    fn record_skip(&mut self, module: &Module, recorded: Option<Semaphore>) {
        let (result, earlier) = recorded
            .map(|s| (Some(s.result), s.message))
            .unwrap_or_default();
        if result == Some(ModuleResult::Failed) {
            self.failed.push(format!(
                "{}: failed earlier for this instance: {}",
                module.name,
                earlier.unwrap_or_default()
            ));
        }
        self.state.modules.push(ModuleRecord {
            name: module.name.into(),
            stage: module.stage,
            result: ModuleResult::Skipped,
            message: Some(format!(
                "already {} ({:?})",
                result.map_or("", ModuleResult::as_str),
                module.frequency
            )),
            started: None,
            duration: None,
        });
    }

    /// A script asked for a reboot: record it and reboot; the next boot continues.
    fn reboot(&mut self) -> Result<RunResult, RunError> {
        self.state.status = RunStatus::RebootPending;
        self.save()?;
        self.kvp.state(ProvisioningState::RebootPending);
        append_log(self.system.layout(), &self.log);
        self.system
            .power(
                PowerAction::Reboot,
                0,
                Some("EGS: reboot requested by a user script"),
            )
            .map_err(RunError::Reboot)?;
        Ok(RunResult::RebootPending)
    }

    /// Like cloud-init's status: `running` until the last stage has run, then `done` or
    /// `error`.
    fn finish(mut self) -> Result<RunResult, RunError> {
        self.state.errors.extend(self.failed.iter().cloned());
        self.state
            .errors
            .extend(self.earlier_failures.iter().cloned());
        let all_stages_done = Stage::ALL
            .iter()
            .all(|s| self.state.stages_done.contains(s));
        self.state.status = if !all_stages_done {
            RunStatus::Running
        } else if self.failed.is_empty() && self.earlier_failures.is_empty() {
            RunStatus::Done
        } else {
            RunStatus::Error
        };
        self.save()?;
        self.kvp.state(self.state.status.kvp_state());
        append_log(self.system.layout(), &self.log);
        Ok(if self.failed.is_empty() {
            RunResult::Done
        } else {
            RunResult::Errors(self.failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Frequency;

    fn panics(_: &mut Context) -> crate::modules::ModuleResult {
        panic!("injected for the test");
    }

    fn works(ctx: &mut Context) -> crate::modules::ModuleResult {
        ctx.log.push("ran".into());
        Ok(Outcome::Done)
    }

    /// Issue 16: a module that panics is recorded failed with the panic's message, and the
    /// run goes on to the next module.
    #[test]
    fn a_panicking_module_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let opts = RunOptions {
            root: dir.path().to_path_buf(),
            ..RunOptions::default()
        };

        let ds = DataSourceResult {
            instance_id: "iid-panic".into(),
            ..DataSourceResult::default()
        };
        let user_data = process(b"", None, &UrlFetcher::default(), &Limits::default()).unwrap();
        let inputs = Inputs {
            config: &CloudConfig::default(),
            user_data: &user_data,
            datasource: &ds,
            default_user: &User::default(),
        };
        let mut run = Run {
            opts: &opts,
            system: crate::system::for_layout(Layout::new(dir.path(), None)),
            boot_id: "boot".into(),
            kvp: Kvp { reporter: None },
            state: RunState::default(),
            earlier_failures: Vec::new(),
            failed: Vec::new(),
            log: Vec::new(),
        };
        let module = |name, run| Module {
            name,
            stage: Stage::Config,
            frequency: Frequency::Always,
            run,
        };
        assert!(!run.run_module(&module("bad", panics), &inputs).unwrap());
        assert!(!run.run_module(&module("good", works), &inputs).unwrap());
        let results: Vec<_> = run
            .state
            .modules
            .iter()
            .map(|m| (m.name.as_str(), m.result))
            .collect();
        assert_eq!(
            results,
            [("bad", ModuleResult::Failed), ("good", ModuleResult::Done)]
        );
        let message = run.state.modules[0].message.as_deref().unwrap();
        assert!(
            message.contains("panicked (injected for the test)"),
            "{message}"
        );
        assert!(run.log.contains(&"good: ran".to_string()));
    }
}
