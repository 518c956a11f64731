//! The sockets of this OS: the VM socket (AF_VSOCK on Linux; the Hyper-V socket of a
//! Windows guest or host belongs in a `windows` module beside it) and Unix sockets
//! (`local`).

mod hyperv;
mod local;
#[cfg(windows)]
mod winsock;
pub use hyperv::{connect_hyperv, HyperVListener, HYPERV_UNAVAILABLE};
pub use local::{connect_local, LocalListener};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub use linux::{connect_vm, VmListener};

#[cfg(not(target_os = "linux"))]
mod unsupported;
#[cfg(not(target_os = "linux"))]
pub use unsupported::{connect_vm, VmListener};
