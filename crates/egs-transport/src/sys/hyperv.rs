//! Hyper-V sockets (AF_HYPERV): a Windows guest listens on them, a Windows Hyper-V host
//! connects with them. Linux has none — a Linux guest on Hyper-V is reached through vsock
//! (`hv_sock`), and a Linux host runs no Hyper-V VMs — so there they are an error that says
//! what to use instead. The Windows socket calls are built by the Windows guest and host
//! issues; until then they say so.

use crate::guid::Guid;
use crate::BoxStream;

pub use imp::{connect_hyperv, HyperVListener, HYPERV_UNAVAILABLE};

#[cfg(windows)]
mod imp {
    use super::*;

    /// Why Hyper-V sockets cannot be used on this OS (`None`: they can).
    pub const HYPERV_UNAVAILABLE: Option<&str> = None;

    fn not_built() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "Hyper-V sockets (AF_HYPERV) are not built yet",
        )
    }

    /// A listening Hyper-V socket.
    pub struct HyperVListener(());

    impl HyperVListener {
        /// Binds (`vm_id`, `service_id`): not built yet.
        pub fn bind(_vm_id: Guid, _service_id: Guid) -> std::io::Result<HyperVListener> {
            Err(not_built())
        }

        /// What it is bound to.
        pub fn local(&self) -> String {
            "hv:unbound".into()
        }

        /// The next connection.
        pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
            Err(not_built())
        }
    }

    /// Connects to (`vm_id`, `service_id`): not built yet.
    pub async fn connect_hyperv(_vm_id: Guid, _service_id: Guid) -> std::io::Result<BoxStream> {
        Err(not_built())
    }
}

#[cfg(not(windows))]
mod imp {
    use super::*;

    /// Why Hyper-V sockets cannot be used on this OS.
    pub const HYPERV_UNAVAILABLE: Option<&str> = Some(
        "Hyper-V VMs are reached through the Hyper-V socket of their Windows host: use egs-tool \
         there (on Linux hosts use vsock:CID or fc:SOCKET)",
    );

    /// No Hyper-V sockets on this OS.
    pub struct HyperVListener(());

    impl HyperVListener {
        /// Always an error: a Linux guest on Hyper-V listens on vsock.
        pub fn bind(_vm_id: Guid, _service_id: Guid) -> std::io::Result<HyperVListener> {
            Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "Hyper-V sockets exist on Windows only; a Linux guest on Hyper-V listens on vsock (--listen vsock)",
            ))
        }

        /// Never reached.
        pub fn local(&self) -> String {
            "hv:unsupported".into()
        }

        /// Never reached.
        pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
            Err(std::io::ErrorKind::Unsupported.into())
        }
    }

    /// Always an error: Hyper-V VM ids are reached from a Windows Hyper-V host.
    pub async fn connect_hyperv(vm_id: Guid, _service_id: Guid) -> std::io::Result<BoxStream> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!(
                "{vm_id} is a Hyper-V VM id: those need egs-tool on the Windows Hyper-V host \
                 (on Linux hosts use vsock:CID or fc:SOCKET)"
            ),
        ))
    }
}
