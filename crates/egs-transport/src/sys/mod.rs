//! The VM socket of this OS: AF_VSOCK on Linux. (The Hyper-V socket of a Windows guest or
//! host belongs in a `windows` module beside this one.)

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{connect_vm, VmListener};

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::{connect_vm, VmListener};
