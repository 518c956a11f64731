//! The KVP store seam: "read, write, delete or list a key in pool N", whoever keeps the
//! pools. Every reader and writer of KVP in EGS goes through [`KvpStore`]; the backends are
//! Linux guest pool files ([`crate::files::PoolFiles`]), the Windows guest registry
//! ([`crate::registry::GuestRegistry`]) and, on a Hyper-V host, WMI
//! ([`crate::wmi::HostWmi`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::record::{check, Record, MAX_KEY_BYTES, MAX_VALUE_BYTES, RECORD_SIZE};

/// A KVP pool, by `hv_kvp_daemon`'s numbering (`.kvp_pool_<number>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PoolId {
    /// 0: host → guest (what the host sets for the VM).
    External,
    /// 1: guest → host (what the guest reports).
    Guest,
    /// 2: the intrinsic data the integration services fill (host name, OS, addresses).
    Auto,
    /// 3: intrinsic, host → guest.
    AutoExternal,
    /// 4: intrinsic, guest-internal.
    AutoInternal,
}

impl PoolId {
    /// Every pool, in number order.
    pub const ALL: [PoolId; 5] = [
        PoolId::External,
        PoolId::Guest,
        PoolId::Auto,
        PoolId::AutoExternal,
        PoolId::AutoInternal,
    ];

    /// `hv_kvp_daemon`'s number.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The pool with that number.
    pub fn from_number(number: u8) -> Option<PoolId> {
        PoolId::ALL.get(number as usize).copied()
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            PoolId::External => "External",
            PoolId::Guest => "Guest",
            PoolId::Auto => "Auto",
            PoolId::AutoExternal => "AutoExternal",
            PoolId::AutoInternal => "AutoInternal",
        };
        write!(f, "{name} pool ({})", self.number())
    }
}

/// What can go wrong with a pool.
#[derive(Debug, thiserror::Error)]
pub enum KvpError {
    /// The pool does not exist (no KVP daemon, not on Hyper-V, or not started yet).
    #[error(
        "{0}: no such KVP pool (is the Hyper-V KVP daemon, hv_kvp_daemon, installed and running?)"
    )]
    MissingPool(String),
    /// This store does not keep that pool.
    #[error("{store} has no {pool}")]
    NoSuchPool {
        /// The store.
        store: String,
        /// The pool.
        pool: PoolId,
    },
    /// Reading, locking or writing failed.
    #[error("{location}: {source}")]
    Io {
        /// The pool (file path, registry key, …).
        location: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A pool file ends in the middle of a record.
    #[error("{location}: {size} bytes is not a whole number of {RECORD_SIZE}-byte records (torn record at offset {offset}); not modified")]
    Torn {
        /// The pool file.
        location: String,
        /// Its size.
        size: usize,
        /// Where the partial record starts.
        offset: usize,
    },
    /// An empty key.
    #[error("KVP key must not be empty")]
    EmptyKey,
    /// A key the host cannot read back.
    #[error("KVP key '{key}' is {bytes} bytes; the limit is {MAX_KEY_BYTES} bytes")]
    KeyTooLong {
        /// The key.
        key: String,
        /// Its UTF-8 length.
        bytes: usize,
    },
    /// A value the host cannot read back.
    #[error("value for KVP key '{key}' is {bytes} bytes; the limit is {MAX_VALUE_BYTES} bytes")]
    ValueTooLong {
        /// The key.
        key: String,
        /// The value's UTF-8 length.
        bytes: usize,
    },
    /// Keys and values cannot contain NUL (the fields are NUL-terminated).
    #[error("KVP key or value for '{0}' contains a NUL character")]
    Nul(String),
}

/// What a pool holds: the records that decode, and a description of each that does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The readable records, in pool order.
    pub records: Vec<Record>,
    /// Why the others could not be read.
    pub problems: Vec<String>,
}

impl Listing {
    /// The value of `key` (the last record with it wins, as in the original EGS).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.records
            .iter()
            .rev()
            .find(|r| r.key == key)
            .map(|r| r.value.as_str())
    }

    /// Whether a record has `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.records.iter().any(|r| r.key == key)
    }

    /// The records as (key, value) pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone()))
            .collect()
    }
}

/// One change to a pool, applied by [`KvpStore::edit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Set `key` to `value` (replacing every record with that key).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove every record with this key.
    Delete(String),
}

impl Change {
    /// A [`Change::Set`].
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Change {
        Change::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    /// Checks every `Set` against the record limits; a store calls this before it changes
    /// anything, so a batch is applied whole or not at all as far as limits go.
    pub fn check_all(changes: &[Change]) -> Result<(), KvpError> {
        changes.iter().try_for_each(|c| match c {
            Change::Set { key, value } => check(key, value),
            Change::Delete(_) => Ok(()),
        })
    }
}

/// How [`KvpStore::edit`] learns what to change: called with the pool's current contents.
pub type Plan<'a> = dyn FnMut(&Listing) -> Result<Vec<Change>, KvpError> + 'a;

/// The KVP pools of one machine (a guest's own, or a VM's as seen from its host).
pub trait KvpStore: fmt::Debug + Send + Sync {
    /// Where `pool` is kept, for messages (a file path, a registry key, a VM).
    fn location(&self, pool: PoolId) -> String;

    /// What `pool` holds. A pool that does not exist is [`KvpError::MissingPool`].
    fn list(&self, pool: PoolId) -> Result<Listing, KvpError>;

    /// Reads `pool`, lets `plan` decide the changes from what it holds, checks them and
    /// applies them — under one lock where the store has locks (pool files), so no other
    /// writer's update is lost in between.
    fn edit(&self, pool: PoolId, plan: &mut Plan<'_>) -> Result<(), KvpError>;

    /// The value of `key` (the last record with it wins).
    fn get(&self, pool: PoolId, key: &str) -> Result<Option<String>, KvpError> {
        Ok(self.list(pool)?.get(key).map(str::to_string))
    }

    /// Sets `key` to `value`.
    fn set(&self, pool: PoolId, key: &str, value: &str) -> Result<(), KvpError> {
        check(key, value)?;
        self.edit(pool, &mut |_| Ok(vec![Change::set(key, value)]))
    }

    /// Removes `key`; returns whether it existed.
    fn delete(&self, pool: PoolId, key: &str) -> Result<bool, KvpError> {
        let mut existed = false;
        self.edit(pool, &mut |listing| {
            existed = listing.contains(key);
            Ok(if existed {
                vec![Change::Delete(key.to_string())]
            } else {
                Vec::new()
            })
        })?;
        Ok(existed)
    }
}

/// This machine's own KVP as a guest: the pool files in `pool_dir` when one is given (any
/// OS: a copy of a Linux guest's pools, a test), otherwise the OS's own store — the
/// registry on Windows, `/var/lib/hyperv` elsewhere.
pub fn guest_store(pool_dir: Option<&Path>) -> Arc<dyn KvpStore> {
    match pool_dir {
        Some(dir) => Arc::new(crate::files::PoolFiles::new(dir)),
        None if egs_sys::registry::AVAILABLE => Arc::new(crate::registry::GuestRegistry::default()),
        None => Arc::new(crate::files::PoolFiles::new(crate::files::DEFAULT_DIR)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_numbers_round_trip() {
        for pool in PoolId::ALL {
            assert_eq!(PoolId::from_number(pool.number()), Some(pool));
        }
        assert_eq!(PoolId::from_number(5), None);
        assert_eq!(PoolId::Guest.to_string(), "Guest pool (1)");
    }

    #[test]
    fn listing_last_record_wins() {
        let r = |index, key: &str, value: &str| Record {
            index,
            key: key.into(),
            value: value.into(),
        };
        let listing = Listing {
            records: vec![r(0, "k", "1"), r(1, "j", "x"), r(2, "k", "2")],
            problems: Vec::new(),
        };
        assert_eq!(listing.get("k"), Some("2"));
        assert_eq!(listing.get("z"), None);
        assert!(listing.contains("j"));
    }

    #[test]
    fn batches_are_checked_before_anything_is_applied() {
        let changes = [
            Change::set("ok", "1"),
            Change::Delete("x".into()),
            Change::set("bad", "v".repeat(MAX_VALUE_BYTES + 1)),
        ];
        assert!(matches!(
            Change::check_all(&changes),
            Err(KvpError::ValueTooLong { .. })
        ));
        assert!(Change::check_all(&changes[..2]).is_ok());
    }
}
