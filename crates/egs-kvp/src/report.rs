//! The provisioning reporter: writes cloud-init event records for stages and modules and
//! keeps `eryph.provisioning.state` current, in the Guest pool the host reads.
//!
//! The first event a reporter writes also removes `CLOUD_INIT|<n>|…` records of earlier
//! boots (`n` ≠ this boot's incarnation), as the original EGS does (RFC 0031). Errors are
//! returned, never panicked on: KVP is a best-effort channel and callers log and go on.

use std::sync::Arc;

use crate::event::{uuid4, Event, KeyStyle};
use crate::store::{Change, KvpError, KvpStore, PoolId};

/// The key eryph reads provisioning progress from.
pub const STATE_KEY: &str = "eryph.provisioning.state";

/// Values of `eryph.provisioning.state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisioningState {
    /// Provisioning began on this boot.
    Started,
    /// A stage is running.
    Running,
    /// A reboot was requested and provisioning continues after it.
    RebootPending,
    /// All stages finished.
    Completed,
    /// Provisioning failed.
    Failed,
}

impl ProvisioningState {
    /// The value written.
    pub fn as_str(self) -> &'static str {
        match self {
            ProvisioningState::Started => "started",
            ProvisioningState::Running => "running",
            ProvisioningState::RebootPending => "reboot_pending",
            ProvisioningState::Completed => "completed",
            ProvisioningState::Failed => "failed",
        }
    }
}

/// Writes events and state to the Guest pool of a store.
#[derive(Debug)]
pub struct Reporter {
    store: Arc<dyn KvpStore>,
    style: KeyStyle,
    incarnation: Option<i64>,
    swept: bool,
}

impl Reporter {
    /// A reporter into `store`'s Guest pool; `incarnation` is this boot's epoch (`None`
    /// when unknown: events are then keyed `0` and nothing is swept).
    pub fn new(store: Arc<dyn KvpStore>, style: KeyStyle, incarnation: Option<i64>) -> Reporter {
        Reporter {
            store,
            style,
            incarnation,
            swept: false,
        }
    }

    /// Writes one event (all its chunks, under one lock).
    pub fn report(&mut self, event: &Event) -> Result<(), KvpError> {
        let current = self.incarnation.unwrap_or(0);
        let records = event.encode(current, &uuid4(), &self.style)?;
        let sweep = !self.swept && self.incarnation.is_some();
        self.store.edit(PoolId::Guest, &mut |listing| {
            let mut changes = Vec::new();
            if sweep {
                changes.extend(
                    listing
                        .records
                        .iter()
                        .filter(|r| is_earlier_boot_event(&r.key, current))
                        .map(|r| Change::Delete(r.key.clone())),
                );
            }
            changes.extend(records.iter().map(|(k, v)| Change::set(k, v)));
            Ok(changes)
        })?;
        self.swept |= sweep;
        Ok(())
    }

    /// Sets `eryph.provisioning.state`.
    pub fn set_state(&self, state: ProvisioningState) -> Result<(), KvpError> {
        self.store.set(PoolId::Guest, STATE_KEY, state.as_str())
    }
}

fn is_earlier_boot_event(key: &str, current: i64) -> bool {
    let mut parts = key.split('|');
    parts.next() == Some("CLOUD_INIT")
        && parts
            .next()
            .and_then(|n| n.parse::<i64>().ok())
            .is_some_and(|n| n != current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_events;
    use crate::event::{EventType, Outcome, Timestamp};
    use crate::files::PoolFiles;

    const G: PoolId = PoolId::Guest;

    fn event(name: &str, kind: EventType) -> Event {
        Event {
            name: name.into(),
            event_type: kind,
            timestamp: Timestamp::now(),
            description: format!("running {name}"),
            result: (kind == EventType::Finish).then_some(Outcome::Success),
            duration: Some(0.25),
        }
    }

    #[test]
    fn sweeps_earlier_boots_once_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
        let pool = Arc::new(PoolFiles::new(dir.path()));
        pool.set(
            G,
            "CLOUD_INIT|100|start|init-local|0d200cb2-57d6-4858-889a-8c2682ffcbbe",
            "{}",
        )
        .unwrap();
        pool.set(G, "CLOUD_INIT.probe", "1").unwrap();
        pool.set(G, "eryph:guest-services:status", "available")
            .unwrap();
        let mut r = Reporter::new(pool.clone(), KeyStyle::FiveField, Some(200));
        r.set_state(ProvisioningState::Started).unwrap();
        r.report(&event("init-local", EventType::Start)).unwrap();
        // An event of an earlier boot written after the sweep (e.g. by cloud-init) stays.
        pool.set(
            G,
            "CLOUD_INIT|150|start|init-local|0d200cb2-57d6-4858-889a-8c2682ffcbbe",
            "{}",
        )
        .unwrap();
        r.report(&event("init-local", EventType::Finish)).unwrap();
        r.set_state(ProvisioningState::Completed).unwrap();
        let records = pool.list(G).unwrap().records;
        let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
        assert!(!keys.iter().any(|k| k.starts_with("CLOUD_INIT|100|")));
        assert!(keys.iter().any(|k| k.starts_with("CLOUD_INIT|150|")));
        assert!(
            keys.contains(&"CLOUD_INIT.probe") && keys.contains(&"eryph:guest-services:status")
        );
        assert_eq!(
            pool.get(G, STATE_KEY).unwrap().as_deref(),
            Some("completed")
        );
        let (events, _) = decode_events(&records);
        let ours: Vec<_> = events
            .iter()
            .filter(|e| e.incarnation == 200)
            .map(|e| e.event_type.as_str())
            .collect();
        assert_eq!(ours, ["start", "finish"]);
    }

    #[test]
    fn missing_pool_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Reporter::new(
            Arc::new(PoolFiles::new(dir.path())),
            KeyStyle::FiveField,
            None,
        );
        assert!(matches!(
            r.report(&event("init-local", EventType::Start)),
            Err(KvpError::MissingPool(_))
        ));
        assert!(r.set_state(ProvisioningState::Failed).is_err());
    }
}
