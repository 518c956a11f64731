//! Hyper-V KVP for EGS: the Linux pool files `hv_kvp_daemon` relays to the host
//! ([`pool`]), cloud-init's `CLOUD_INIT|…` event records ([`event`], [`decode`]) and the
//! provisioning reporter that writes them ([`report`]).
//!
//! ```no_run
//! use egs_kvp::pool::{Pool, POOL_GUEST};
//! let pool = Pool::open(std::path::Path::new("/var/lib/hyperv"), POOL_GUEST);
//! pool.set("eryph:guest-services:status", "available")?;
//! # Ok::<(), egs_kvp::pool::KvpError>(())
//! ```

pub mod decode;
pub mod documents;
pub mod event;
pub mod pool;
pub mod report;
