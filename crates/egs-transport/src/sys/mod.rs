//! The sockets of this OS: the VM socket (AF_VSOCK on Linux in `linux`, AF_HYPERV of a
//! Windows guest or host in `hyperv`) and Unix sockets (`local`); on Windows the last two
//! go through WinSock (`winsock`), which tokio does not drive for them.

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
