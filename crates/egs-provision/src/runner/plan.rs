//! Whether a module runs now, and `--dry-run`'s account of what would run.

use egs_datasource::DataSourceResult;

use super::RunOptions;
use crate::modules;
use crate::state::{read_json, Frequency, Layout, ModuleResult, Semaphore};

/// Whether a module's semaphore says it should not run now.
pub(super) fn already_done(
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
pub(super) fn plan(
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
