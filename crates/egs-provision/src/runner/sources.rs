//! Finding the datasource: the override, or the configured datasources in order.

use egs_datasource::azure::Azure;
use egs_datasource::configdrive::ConfigDrive;
use egs_datasource::env::SystemEnvironment;
use egs_datasource::locator::{locate, Budget, RealClock};
use egs_datasource::nocloud::NoCloud;
use egs_datasource::{DataSource, DataSourceResult, Override};
use egs_userdata::fetch::UrlFetcher;
use sha2::Digest;

use super::{RunError, RunOptions};
use crate::settings::Settings;

/// The datasource this run provisions from: the override (`--user-data`), or the first
/// that answers in the configured order, KVP first (the host's explicit intent).
pub(super) fn find_datasource(
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
        return Err(RunError::DataSource(
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
