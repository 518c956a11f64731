//! One provisioning run: find the datasource, read user-data and vendor-data, and run the
//! stages' modules in order. A module runs when its frequency says so (semaphores below the
//! state directory); a failing module is recorded `failed` and the others still run (it is
//! retried only with `retry_failed` or for a new instance); a script's reboot request stops
//! the run, records `reboot-pending` and reboots, and the next boot continues. `state.json`
//! is rewritten atomically after every module, so a run killed at any point resumes
//! without running a completed module twice.

use std::path::PathBuf;
use std::sync::Arc;

use egs_cloudconfig::schema::{CloudConfig, Severity, Sudo, User};
use egs_datasource::azure::Azure;
use egs_datasource::configdrive::ConfigDrive;
use egs_datasource::env::SystemEnvironment;
use egs_datasource::locator::{locate, Budget, RealClock};
use egs_datasource::nocloud::NoCloud;
use egs_datasource::{DataSource, DataSourceResult, Override};
use egs_kvp::event::{Event, EventType, KeyStyle, Outcome as KvpOutcome, Timestamp};
use egs_kvp::report::{ProvisioningState, Reporter};
use egs_kvp::store::{KvpStore, PoolId};
use egs_userdata::fetch::UrlFetcher;
use egs_userdata::pipeline::{process, Limits};
use sha2::Digest;

use crate::modules::{self, Context, Outcome, Stage};
use crate::settings::Settings;
use crate::state::{
    create_private_dir, now, read_json, seconds_since, unix_seconds, write_json, Frequency, Layout,
    ModuleRecord, ModuleResult, RunState, RunStatus, Semaphore, StageRecord,
};
use crate::system::System;

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
    /// Write KVP events with cloud-init 26.x's six-field keys (`vm_id` from SMBIOS, and a
    /// `duration`) instead of the five-field keys eryph reads; `None`: as the settings say.
    pub kvp_six_field: Option<bool>,
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

/// A failure before any module could run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RunError(pub String);

/// The boot id of the running system.
pub fn system_boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// The distribution's default user, named after `/etc/os-release`'s `ID` as cloud-init's
/// distro configs name it, in the administrative groups that exist on the system.
pub fn distro_default_user(system: &System) -> User {
    let release = String::from_utf8_lossy(
        &system
            .read_file("/etc/os-release")
            .ok()
            .flatten()
            .unwrap_or_default(),
    )
    .into_owned();
    let id = release
        .lines()
        .find_map(|l| l.strip_prefix("ID="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default();
    let name = match id.as_str() {
        "ubuntu" => "ubuntu",
        "fedora" => "fedora",
        "rhel" | "centos" | "rocky" | "almalinux" | "ol" => "cloud-user",
        "alpine" => "alpine",
        "arch" => "arch",
        _ => "debian",
    };
    let groups = ["adm", "sudo", "wheel", "systemd-journal"]
        .iter()
        .filter(|g| system.group_id(g).ok().flatten().is_some())
        .map(|g| g.to_string())
        .collect();
    User {
        name: name.into(),
        gecos: Some(format!("{}{}", &name[..1].to_uppercase(), &name[1..])),
        shell: Some("/bin/bash".into()),
        groups,
        sudo: Sudo::Rules(vec!["ALL=(ALL) NOPASSWD:ALL".into()]),
        lock_passwd: Some(true),
        ..User::default()
    }
}

struct Kvp {
    reporter: Option<Reporter>,
}

impl Kvp {
    fn open(store: Option<&Arc<dyn KvpStore>>, style: KeyStyle) -> Kvp {
        let reporter = store
            .filter(|s| s.list(PoolId::Guest).is_ok())
            .map(|store| {
                let incarnation = egs_sys::boot::boot_epoch_seconds().ok();
                Reporter::new(store.clone(), style, incarnation)
            });
        Kvp { reporter }
    }

    fn event(
        &mut self,
        name: &str,
        kind: EventType,
        description: &str,
        result: Option<KvpOutcome>,
        started: Option<std::time::Instant>,
    ) {
        if let Some(r) = &mut self.reporter {
            let event = Event {
                name: name.into(),
                event_type: kind,
                timestamp: Timestamp::now(),
                description: description.into(),
                result,
                duration: started.map(|t| t.elapsed().as_secs_f64()),
            };
            // KVP is best effort: a failure to report never fails provisioning.
            let _ = r.report(&event);
        }
    }

    fn state(&self, state: ProvisioningState) {
        if let Some(r) = &self.reporter {
            let _ = r.set_state(state);
        }
    }
}

fn append_log(layout: &Layout, lines: &[String]) {
    use std::io::Write;
    if create_private_dir(&layout.logs).is_err() {
        return;
    }
    let path = layout.logs.join("provisioning.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = egs_sys::fs::set_mode(&path, 0o600);
        for line in lines {
            let _ = writeln!(f, "{} {line}", now());
        }
    }
}

fn find_datasource(
    opts: &RunOptions,
    settings: &Settings,
) -> Result<Option<DataSourceResult>, RunError> {
    let env = SystemEnvironment {
        root: opts.root.clone(),
        devices: opts
            .devices
            .clone()
            .or_else(|| settings.data_sources.devices.clone()),
    };
    let budget = Budget {
        total: std::time::Duration::from_secs(
            settings.data_sources.readiness_timeout_seconds.unwrap_or(
                settings
                    .data_sources
                    .readiness_timeout_minutes
                    .unwrap_or(15)
                    .max(1)
                    * 60,
            ),
        ),
        ..Budget::default()
    };
    if let Some(data) = &opts.user_data {
        let id = opts.instance_id.clone().unwrap_or_else(|| {
            format!("override-{}", hex::encode(sha2::Sha256::digest(data)))
                .chars()
                .take(21)
                .collect()
        });
        let mut source = Override {
            user_data: Some(data.clone()),
            instance_id: id,
        };
        let mut sources: [&mut dyn DataSource; 1] = [&mut source];
        return Ok(locate(&mut sources, &env, &budget, &mut RealClock).result);
    }
    let (mut azure, mut nocloud, mut configdrive) = (
        Azure,
        NoCloud::new(Box::new(UrlFetcher::default())),
        ConfigDrive,
    );
    let mut kvp = opts
        .kvp
        .clone()
        .map(|store| egs_datasource::kvp::Kvp { store });
    // The host's explicit intent (documents in KVP) comes first.
    let mut all: Vec<&mut dyn DataSource> = Vec::new();
    if let Some(k) = kvp.as_mut() {
        all.push(k);
    }
    all.extend([
        &mut azure as &mut dyn DataSource,
        &mut nocloud,
        &mut configdrive,
    ]);
    // datasource_list: only the named ones, in that order (unknown names are ignored).
    if let Some(list) = &settings.data_sources.data_source_list {
        let mut ordered: Vec<&mut dyn DataSource> = Vec::new();
        for name in list {
            if let Some(i) = all.iter().position(|s| s.name().eq_ignore_ascii_case(name)) {
                ordered.push(all.remove(i));
            }
        }
        if !ordered.is_empty() {
            all = ordered;
        }
    }
    let located = locate(&mut all, &env, &budget, &mut RealClock);
    if located.result.is_none() && !(located.failures.is_empty() && located.timed_out.is_empty()) {
        let waited = located
            .timed_out
            .iter()
            .map(|t| format!("{t} (still not ready after {}s)", located.waited.as_secs()));
        return Err(RunError(
            located
                .failures
                .iter()
                .cloned()
                .chain(waited)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    Ok(located.result)
}

/// Whether a module's semaphore says it should not run now.
fn already_done(
    recorded: &Option<Semaphore>,
    frequency: Frequency,
    boot_id: &str,
    retry_failed: bool,
) -> bool {
    match (recorded, frequency) {
        (Some(s), Frequency::PerBoot) if s.boot_id != boot_id => false,
        (Some(s), _) if s.result == ModuleResult::Failed => !retry_failed,
        (Some(_), _) => true,
        (None, _) => false,
    }
}

/// What a run would do, for `--dry-run`.
fn plan(
    layout: &Layout,
    ds: &DataSourceResult,
    user_data: &egs_userdata::pipeline::UserData,
    log: &[String],
    opts: &RunOptions,
    boot_id: &str,
    new_instance: bool,
) -> Vec<String> {
    let mut lines = vec![
        format!("datasource: {} ({})", ds.source, ds.location),
        format!(
            "instance: {}{}",
            ds.instance_id,
            if new_instance { " (new)" } else { "" }
        ),
    ];
    lines.extend(user_data.parts.iter().enumerate().map(|(i, p)| {
        format!(
            "part {}: {} {} ({} bytes)",
            i + 1,
            p.content_type,
            p.filename,
            p.payload.len()
        )
    }));
    lines.extend(log.iter().skip(1).cloned());
    for module in modules::all()
        .iter()
        .filter(|m| opts.stages.is_empty() || opts.stages.contains(&m.stage))
    {
        let recorded: Option<Semaphore> = layout
            .semaphore(&ds.instance_id, module.name, module.frequency)
            .and_then(|p| read_json(&p).ok().flatten());
        let verdict = if already_done(&recorded, module.frequency, boot_id, opts.retry_failed) {
            format!(
                "skip (already {})",
                recorded.map_or("", |r| r.result.as_str())
            )
        } else {
            "run".to_string()
        };
        lines.push(format!(
            "{:<15} {:<22} {:<13} {verdict}",
            module.stage.name(),
            module.name,
            format!("{:?}", module.frequency)
        ));
    }
    lines
}

/// Runs provisioning.
pub fn run(opts: &RunOptions) -> Result<RunResult, RunError> {
    let layout = Layout::new(&opts.root, opts.state_dir.as_deref());
    let system = System::new(layout.clone());
    let (settings, settings_problem) = crate::settings::load(&system);
    let boot_id = opts.boot_id.clone().unwrap_or_else(system_boot_id);
    let state_path = layout.state_file();
    let previous: RunState = read_json(&state_path)
        .map_err(RunError)?
        .unwrap_or_default();
    let six_field = opts
        .kvp_six_field
        .unwrap_or_else(|| settings.reporting.kvp_key_style.as_deref() == Some("six-field"));
    let style = if six_field {
        // cloud-init uses the SMBIOS system UUID, or all zeros without one.
        let vm_id = system
            .read_file("/sys/class/dmi/id/product_uuid")
            .ok()
            .flatten()
            .map(|u| String::from_utf8_lossy(&u).trim().to_lowercase())
            .filter(|u| !u.is_empty());
        KeyStyle::SixField {
            vm_id: vm_id.unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
        }
    } else {
        KeyStyle::FiveField
    };
    let mut kvp = Kvp::open(opts.kvp.as_ref(), style);
    if opts.user_data.is_none() && crate::bridge::cloud_init_enabled(&system) {
        let status = if opts.dry_run {
            "not mirrored (dry run)".to_string()
        } else {
            crate::bridge::mirror(&system, opts.kvp.as_deref(), None).map_err(RunError)?
        };
        append_log(
            &layout,
            &[format!(
                "bridge mode: cloud-init is enabled (status {status}); mirrored, not provisioning"
            )],
        );
        return Ok(RunResult::Bridge(status));
    }

    let search_started = std::time::Instant::now();
    let Some(ds) = find_datasource(opts, &settings)? else {
        if opts.dry_run {
            return Ok(RunResult::NoDataSource);
        }
        let state = RunState {
            status: RunStatus::Disabled,
            boot_id: boot_id.clone(),
            errors: vec!["no datasource found".into()],
            updated: now(),
            ..previous
        };
        write_json(&state_path, &state, 0o600)
            .map_err(|e| RunError(format!("{}: {e}", state_path.display())))?;
        append_log(
            &layout,
            &["no datasource found; nothing to provision".into()],
        );
        return Ok(RunResult::NoDataSource);
    };
    let new_instance = previous.instance_id.as_deref() != Some(ds.instance_id.as_str());
    let stages: Vec<Stage> = Stage::ALL
        .into_iter()
        .filter(|s| opts.stages.is_empty() || opts.stages.contains(s))
        .collect();
    // Within one boot and instance, the records of stages this run does not touch stay
    // (the local stage runs in a unit of its own, before the others).
    let continuing = previous.boot_id == boot_id && !new_instance;
    let other_stage = |name: &str| !stages.iter().any(|s| s.name() == name);
    let kept_modules: Vec<ModuleRecord> = if continuing {
        previous
            .modules
            .iter()
            .filter(|m| other_stage(&m.stage))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    // Failures of the other stages in this boot (the local stage's unit ran first) still
    // make the status `error`.
    let earlier_failures: Vec<String> = kept_modules
        .iter()
        .filter(|m| m.result == ModuleResult::Failed)
        .map(|m| format!("{}: {}", m.name, m.message.as_deref().unwrap_or_default()))
        .collect();
    let mut state = RunState {
        status: RunStatus::Running,
        instance_id: Some(ds.instance_id.clone()),
        datasource: Some(format!("{} ({})", ds.source, ds.location)),
        boot_id: boot_id.clone(),
        stages_done: if continuing {
            previous.stages_done.clone()
        } else {
            Vec::new()
        },
        stages: if continuing {
            previous
                .stages
                .iter()
                .filter(|r| other_stage(&r.name))
                .cloned()
                .collect()
        } else {
            Vec::new()
        },
        datasource_seconds: None,
        modules: kept_modules,
        errors: Vec::new(),
        reboots: if new_instance { 0 } else { previous.reboots },
        updated: now(),
    };
    let save = |state: &RunState| {
        if opts.dry_run {
            return Ok(());
        }
        write_json(&state_path, state, 0o600)
            .map_err(|e| RunError(format!("{}: {e}", state_path.display())))
    };
    if opts.dry_run {
        kvp.reporter = None;
    }
    save(&state)?;
    kvp.state(ProvisioningState::Started);

    let instance_dir = layout.instance(&ds.instance_id);
    if !opts.dry_run {
        create_private_dir(&instance_dir)
            .map_err(|e| RunError(format!("{}: {e}", instance_dir.display())))?;
        for (name, data) in [
            ("user-data.txt", &ds.user_data),
            ("vendor-data.txt", &ds.vendor_data),
        ] {
            if let Some(d) = data {
                egs_sys::fs::write_atomic(&instance_dir.join(name), d, 0o600)
                    .map_err(|e| RunError(format!("{name}: {e}")))?;
            }
        }
    }
    let fetcher = UrlFetcher {
        once_cache: (!opts.dry_run).then(|| instance_dir.join("urlcache")),
        ..UrlFetcher::default()
    };
    let user_data = match process(
        ds.user_data.as_deref().unwrap_or_default(),
        ds.vendor_data.as_deref(),
        &fetcher,
        &Limits::default(),
    ) {
        Ok(u) => u,
        Err(e) => {
            state.status = RunStatus::Error;
            state.errors.push(format!("user-data: {e}"));
            save(&state)?;
            kvp.event(
                "init-network",
                EventType::Finish,
                &format!("userdata-parse: {e}"),
                Some(KvpOutcome::Fail),
                None,
            );
            kvp.state(ProvisioningState::Failed);
            return Ok(RunResult::Errors(state.errors));
        }
    };
    state.datasource_seconds = Some(seconds_since(search_started));
    let (config, schema) = CloudConfig::from_node(&user_data.config);
    let mut log: Vec<String> = vec![format!(
        "instance {} from {} ({}); {} user-data part(s)",
        ds.instance_id,
        ds.source,
        ds.location,
        user_data.parts.len()
    )];
    for d in user_data
        .diagnostics
        .items
        .iter()
        .chain(&schema.items)
        .filter(|d| d.severity == Severity::Error)
    {
        let described = user_data.describe(d);
        log.push(format!(
            "cloud-config problem (applied where possible): {described}"
        ));
        state.errors.push(described);
    }
    let mut default_user = opts
        .default_user
        .clone()
        .unwrap_or_else(|| distro_default_user(&system));
    if let Some(name) = &settings.default_user.name {
        default_user.name = name.clone();
    }
    if let Some(problem) = &settings_problem {
        log.push(format!("settings: {problem}"));
        state.errors.push(format!("settings: {problem}"));
    }
    // A platform-defined user (Azure's UserName) is the default user, as in cloud-init.
    if let Some(platform) = &ds.default_user {
        default_user.name = platform.name.clone();
        default_user.gecos = None;
        if let Some(password) = &platform.password {
            default_user.plain_text_passwd = Some(password.clone());
            default_user.lock_passwd = Some(false);
        }
    }

    if opts.dry_run {
        return Ok(RunResult::Plan(plan(
            &layout,
            &ds,
            &user_data,
            &log,
            opts,
            &boot_id,
            new_instance,
        )));
    }
    let all = modules::all();
    let mut failed = Vec::new();
    for stage in stages {
        let stage_started = std::time::Instant::now();
        let stage_started_at = unix_seconds(std::time::SystemTime::now());
        kvp.state(ProvisioningState::Running);
        kvp.event(
            stage.name(),
            EventType::Start,
            &format!("running stage {}", stage.name()),
            None,
            None,
        );
        for module in all.iter().filter(|m| m.stage == stage) {
            let semaphore = layout.semaphore(&ds.instance_id, module.name, module.frequency);
            let recorded: Option<Semaphore> = semaphore
                .as_deref()
                .and_then(|p| read_json(p).ok().flatten());
            let skip = already_done(&recorded, module.frequency, &boot_id, opts.retry_failed);
            let event_name = format!("{}/config-{}", stage.name(), module.name);
            if skip {
                let (result, earlier) = recorded
                    .map(|s| (Some(s.result), s.message))
                    .unwrap_or_default();
                if result == Some(ModuleResult::Failed) {
                    failed.push(format!(
                        "{}: failed earlier for this instance: {}",
                        module.name,
                        earlier.unwrap_or_default()
                    ));
                }
                state.modules.push(ModuleRecord {
                    name: module.name.into(),
                    stage: stage.name().into(),
                    result: ModuleResult::Skipped,
                    message: Some(format!(
                        "already {} ({:?})",
                        result.map_or("", ModuleResult::as_str),
                        module.frequency
                    )),
                    started: None,
                    duration: None,
                });
                continue;
            }
            kvp.event(
                &event_name,
                EventType::Start,
                &format!(
                    "running config-{} with frequency {:?}",
                    module.name, module.frequency
                ),
                None,
                None,
            );
            let module_started = std::time::Instant::now();
            let module_started_at = unix_seconds(std::time::SystemTime::now());
            let mut ctx = Context {
                system: &system,
                config: &config,
                user_data: &user_data,
                datasource: &ds,
                instance_id: &ds.instance_id,
                default_user: &default_user,
                boot_id: &boot_id,
                log: Vec::new(),
            };
            let outcome = (module.run)(&mut ctx);
            let module_duration = seconds_since(module_started);
            log.extend(ctx.log.into_iter().map(|l| format!("{}: {l}", module.name)));
            let (result, message, reboot) = match outcome {
                Ok(Outcome::Reboot { again }) => {
                    state.reboots += 1;
                    if state.reboots > modules::MAX_REBOOTS {
                        (
                            ModuleResult::Failed,
                            Some(format!(
                                "more than {} reboots requested for this instance",
                                modules::MAX_REBOOTS
                            )),
                            false,
                        )
                    } else {
                        (
                            ModuleResult::Reboot,
                            Some(if again {
                                "reboot requested; the script runs again".into()
                            } else {
                                "reboot requested".into()
                            }),
                            true,
                        )
                    }
                }
                Ok(_) => (ModuleResult::Done, None, false),
                Err(e) => (ModuleResult::Failed, Some(e.to_string()), false),
            };
            if result != ModuleResult::Reboot {
                if let Some(path) = &semaphore {
                    let record = Semaphore {
                        result,
                        boot_id: boot_id.clone(),
                        at: now(),
                        message: message.clone(),
                    };
                    write_json(path, &record, 0o600)
                        .map_err(|e| RunError(format!("{}: {e}", path.display())))?;
                }
            }
            if result == ModuleResult::Failed {
                failed.push(format!(
                    "{}: {}",
                    module.name,
                    message.clone().unwrap_or_default()
                ));
                log.push(format!(
                    "{} failed: {}",
                    module.name,
                    message.clone().unwrap_or_default()
                ));
            }
            let kvp_result = if result == ModuleResult::Failed {
                KvpOutcome::Fail
            } else {
                KvpOutcome::Success
            };
            kvp.event(
                &event_name,
                EventType::Finish,
                message.as_deref().unwrap_or(result.as_str()),
                Some(kvp_result),
                Some(module_started),
            );
            state.modules.push(ModuleRecord {
                name: module.name.into(),
                stage: stage.name().into(),
                result,
                message,
                started: Some(module_started_at),
                duration: Some(module_duration),
            });
            state.updated = now();
            save(&state)?;
            if reboot {
                state.status = RunStatus::RebootPending;
                save(&state)?;
                kvp.state(ProvisioningState::RebootPending);
                append_log(&layout, &log);
                system
                    .power("reboot", 0, Some("EGS: reboot requested by a user script"))
                    .map_err(|e| RunError(e.to_string()))?;
                return Ok(RunResult::RebootPending);
            }
        }
        kvp.event(
            stage.name(),
            EventType::Finish,
            &format!("finished stage {}", stage.name()),
            Some(if failed.is_empty() {
                KvpOutcome::Success
            } else {
                KvpOutcome::Fail
            }),
            Some(stage_started),
        );
        if !state.stages_done.contains(&stage.name().to_string()) {
            state.stages_done.push(stage.name().into());
        }
        state.stages.retain(|r| r.name != stage.name());
        state.stages.push(StageRecord {
            name: stage.name().into(),
            started: stage_started_at,
            duration: seconds_since(stage_started),
        });
        save(&state)?;
    }
    state.errors.extend(failed.iter().cloned());
    state.errors.extend(earlier_failures.iter().cloned());
    // Like cloud-init's status: running until the last stage has run, then done or error.
    let all_stages_done = Stage::ALL
        .iter()
        .all(|s| state.stages_done.iter().any(|d| d == s.name()));
    state.status = if !all_stages_done {
        RunStatus::Running
    } else if failed.is_empty() && earlier_failures.is_empty() {
        RunStatus::Done
    } else {
        RunStatus::Error
    };
    state.updated = now();
    save(&state)?;
    kvp.state(match state.status {
        RunStatus::Running => ProvisioningState::Running,
        RunStatus::Done => ProvisioningState::Completed,
        _ => ProvisioningState::Failed,
    });
    append_log(&layout, &log);
    Ok(if failed.is_empty() {
        RunResult::Done
    } else {
        RunResult::Errors(failed)
    })
}
