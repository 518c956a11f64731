//! Operating-system calls EGS needs, one module per concern, so that a Windows
//! implementation is added here without touching the logic crates.
//!
//! Architecture invariant: other crates do not call platform-specific APIs directly;
//! `#[cfg(unix)]`/`#[cfg(windows)]` appear only in this crate.

/// Whether this is a Windows build: lets other crates pick a per-OS implementation without
/// a `#[cfg]` of their own.
pub const WINDOWS: bool = cfg!(windows);

pub mod accounts;
pub mod adapters;
mod alloc;
pub mod boot;
pub mod dpapi;
pub mod eventlog;
pub mod fs;
pub mod host;
pub mod lock;
pub mod notify;
pub mod process;
pub mod pty;
pub mod random;
pub mod registry;
pub mod service;
pub mod shutdown;
pub mod smbios;
pub mod timezone;
pub mod volumes;
pub mod win_args;
pub mod wmi;
