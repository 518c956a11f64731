//! Windows guest KVP: the integration services mirror the pools into registry keys under
//! `HKLM\SOFTWARE\Microsoft\Virtual Machine` — `External` (host → guest), `Guest`
//! (guest → host) and `Auto` (intrinsic) — as `REG_SZ` values (`original-remote-access.md`
//! §3.3). Keys are created when missing, as the original does. There are no locks: each
//! value is written on its own, as every writer of these keys does.

use egs_sys::registry;

use crate::record::Record;
use crate::store::{Change, KvpError, KvpStore, Listing, Plan, PoolId};

/// Where the integration services keep the pools.
pub const DEFAULT_ROOT: &str = r"SOFTWARE\Microsoft\Virtual Machine";

/// The KVP pools in the registry.
#[derive(Debug, Clone)]
pub struct GuestRegistry {
    root: String,
}

impl Default for GuestRegistry {
    fn default() -> Self {
        GuestRegistry::at(DEFAULT_ROOT)
    }
}

impl GuestRegistry {
    /// The pools under `HKLM\<root>` (a scratch key in tests).
    pub fn at(root: impl Into<String>) -> GuestRegistry {
        GuestRegistry { root: root.into() }
    }

    fn subkey(&self, pool: PoolId) -> Result<String, KvpError> {
        let name = match pool {
            PoolId::External => "External",
            PoolId::Guest => "Guest",
            PoolId::Auto => "Auto",
            PoolId::AutoExternal | PoolId::AutoInternal => {
                return Err(KvpError::NoSuchPool {
                    store: format!(r"HKLM\{}", self.root),
                    pool,
                })
            }
        };
        Ok(format!(r"{}\{name}", self.root))
    }

    fn io(&self, pool: PoolId, source: std::io::Error) -> KvpError {
        KvpError::Io {
            location: self.location(pool),
            source,
        }
    }
}

impl KvpStore for GuestRegistry {
    fn location(&self, pool: PoolId) -> String {
        match self.subkey(pool) {
            Ok(key) => format!(r"HKLM\{key}"),
            Err(_) => format!(r"HKLM\{} ({pool})", self.root),
        }
    }

    fn list(&self, pool: PoolId) -> Result<Listing, KvpError> {
        let values = registry::read_strings(&self.subkey(pool)?).map_err(|e| self.io(pool, e))?;
        Ok(Listing {
            records: values
                .into_iter()
                .enumerate()
                .map(|(index, (key, value))| Record { index, key, value })
                .collect(),
            problems: Vec::new(),
        })
    }

    fn edit(&self, pool: PoolId, plan: &mut Plan<'_>) -> Result<(), KvpError> {
        let subkey = self.subkey(pool)?;
        let changes = plan(&self.list(pool)?)?;
        Change::check_all(&changes)?;
        for change in &changes {
            match change {
                Change::Set { key, value } => registry::set_string(&subkey, key, value),
                Change::Delete(key) => registry::delete_value(&subkey, key).map(drop),
            }
            .map_err(|e| self.io(pool, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Under Wine (or on Windows), in a scratch key.
    #[cfg(windows)]
    #[test]
    fn set_get_delete_list_in_the_registry() {
        let root = format!(r"SOFTWARE\egs-test-kvp-{}", std::process::id());
        let store = GuestRegistry::at(&root);
        assert_eq!(store.list(PoolId::Guest).unwrap(), Listing::default());
        store
            .set(PoolId::Guest, "eryph:guest-services:status", "available")
            .unwrap();
        store.set(PoolId::External, "user-data", "ünï").unwrap();
        assert_eq!(
            store
                .get(PoolId::Guest, "eryph:guest-services:status")
                .unwrap()
                .as_deref(),
            Some("available")
        );
        assert_eq!(
            store.get(PoolId::External, "user-data").unwrap().as_deref(),
            Some("ünï")
        );
        assert!(store
            .delete(PoolId::Guest, "eryph:guest-services:status")
            .unwrap());
        assert!(!store
            .delete(PoolId::Guest, "eryph:guest-services:status")
            .unwrap());
        assert!(matches!(
            store.set(PoolId::Guest, "k", &"v".repeat(2000)),
            Err(KvpError::ValueTooLong { .. })
        ));
        assert!(store.list(PoolId::Guest).unwrap().records.is_empty());
        assert_eq!(
            store.location(PoolId::External),
            format!(r"HKLM\{root}\External")
        );
        egs_sys::registry::delete_tree(&root).unwrap();
    }

    #[test]
    fn pools_without_a_registry_key_are_named_in_the_error() {
        let e = GuestRegistry::default()
            .list(PoolId::AutoInternal)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            r"HKLM\SOFTWARE\Microsoft\Virtual Machine has no AutoInternal pool (4)"
        );
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_the_error_names_the_key_and_the_reason() {
        let e = GuestRegistry::default().list(PoolId::Guest).unwrap_err();
        assert_eq!(
            e.to_string(),
            r"HKLM\SOFTWARE\Microsoft\Virtual Machine\Guest: the Windows registry exists only on Windows"
        );
    }
}
