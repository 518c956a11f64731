//! What a run reports: KVP events and state (best effort), and the provisioning log.

use std::sync::Arc;

use egs_kvp::event::{Event, EventType, KeyStyle, Outcome as KvpOutcome, Timestamp};
use egs_kvp::report::{ProvisioningState, Reporter};
use egs_kvp::store::{KvpStore, PoolId};

use crate::state::{create_private_dir, now, Layout};

/// The KVP reporter of a run, when the Guest pool exists; reporting is best effort.
pub(super) struct Kvp {
    /// `None`: nothing is reported (no pool, or a dry run).
    pub(super) reporter: Option<Reporter>,
}

impl Kvp {
    pub(super) fn open(store: Option<&Arc<dyn KvpStore>>, style: KeyStyle) -> Kvp {
        let reporter = store
            .filter(|s| s.list(PoolId::Guest).is_ok())
            .map(|store| {
                let incarnation = egs_sys::boot::boot_epoch_seconds().ok();
                Reporter::new(store.clone(), style, incarnation)
            });
        Kvp { reporter }
    }

    pub(super) fn event(
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

    pub(super) fn state(&self, state: ProvisioningState) {
        if let Some(r) = &self.reporter {
            let _ = r.set_state(state);
        }
    }
}

/// Appends lines to `<logs>/provisioning.log` (0600); best effort.
pub(super) fn append_log(layout: &Layout, lines: &[String]) {
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
