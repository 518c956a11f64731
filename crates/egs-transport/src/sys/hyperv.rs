//! Hyper-V sockets (AF_HYPERV): a Windows guest listens on them, a Windows Hyper-V host
//! connects with them. Linux has none — a Linux guest on Hyper-V is reached through vsock
//! (`hv_sock`), and a Linux host runs no Hyper-V VMs — so there they are an error that says
//! what to use instead.
//!
//! On Windows the socket is WinSock's (`socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW)`,
//! through `sys::winsock`) with a `SOCKADDR_HV` address ([`crate::sockaddr_hv`]). Connecting
//! is synchronous, on a blocking thread: the original notes that .NET's asynchronous
//! connect fails on AF_HYPERV.

use crate::guid::Guid;
use crate::BoxStream;

pub use imp::{connect_hyperv, HyperVListener, HYPERV_UNAVAILABLE};

#[cfg(windows)]
mod imp {
    use super::*;
    use crate::sockaddr::{parse_sockaddr_hv, sockaddr_hv, AF_HYPERV};
    use crate::sys::winsock;
    use std::os::windows::io::OwnedSocket;
    use std::sync::Arc;

    /// Why Hyper-V sockets cannot be used on this OS (`None`: they can).
    pub const HYPERV_UNAVAILABLE: Option<&str> = None;

    /// AF_HYPERV with `HV_PROTOCOL_RAW`, its only protocol.
    const HYPERV: winsock::Family = winsock::Family {
        number: AF_HYPERV,
        protocol: 1,
        name: "AF_HYPERV",
        missing: "this system has no Hyper-V sockets (not a Hyper-V VM or host, or an \
                  emulator; use --listen tcp:127.0.0.1:PORT there)",
    };

    /// A listening Hyper-V socket.
    pub struct HyperVListener {
        socket: Arc<OwnedSocket>,
        local: String,
    }

    impl HyperVListener {
        /// Binds (`vm_id`, `service_id`) and listens.
        pub fn bind(vm_id: Guid, service_id: Guid) -> std::io::Result<HyperVListener> {
            let socket = winsock::stream_socket(HYPERV)?;
            winsock::bind_listen(&socket, &sockaddr_hv(vm_id, service_id), HYPERV)?;
            Ok(HyperVListener {
                socket: Arc::new(socket),
                local: format!("hv:{vm_id}:{service_id}"),
            })
        }

        /// What it is bound to.
        pub fn local(&self) -> String {
            self.local.clone()
        }

        /// The next connection, with its peer (`hv:VMID`).
        pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
            let (stream, peer) = winsock::accept(self.socket.clone()).await?;
            let peer = parse_sockaddr_hv(&peer)
                .map_or_else(|| "hv:unknown".to_string(), |(vm, _)| format!("hv:{vm}"));
            Ok((stream, peer))
        }
    }

    /// Connects to (`vm_id`, `service_id`), synchronously on a blocking thread.
    pub async fn connect_hyperv(vm_id: Guid, service_id: Guid) -> std::io::Result<BoxStream> {
        let address = sockaddr_hv(vm_id, service_id).to_vec();
        winsock::connect(HYPERV, address)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("hv:{vm_id}:{service_id}: {e}")))
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
