//! Hyper-V KVP for EGS: the store seam every reader and writer goes through ([`store`]),
//! its backends — Linux guest pool files ([`files`]), the Windows guest registry
//! ([`registry`]), a VM's KVP through WMI on its Hyper-V host ([`wmi`]) — the record format
//! and limits ([`record`]), cloud-init's `CLOUD_INIT|…` event records ([`event`],
//! [`decode`]), provisioning documents carried in KVP ([`documents`]) and the provisioning
//! reporter ([`report`]).
//!
//! ```no_run
//! use egs_kvp::store::{guest_store, PoolId};
//! let kvp = guest_store(None); // /var/lib/hyperv on Linux, the registry on Windows
//! kvp.set(PoolId::Guest, "eryph:guest-services:status", "available")?;
//! # Ok::<(), egs_kvp::store::KvpError>(())
//! ```

pub mod decode;
pub mod documents;
pub mod event;
pub mod files;
pub mod record;
pub mod registry;
pub mod report;
pub mod store;
pub mod wmi;
