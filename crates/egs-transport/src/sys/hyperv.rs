//! Hyper-V sockets (AF_HYPERV): a Windows guest listens on them, a Windows Hyper-V host
//! connects with them. Linux has none — a Linux guest on Hyper-V is reached through vsock
//! (`hv_sock`), and a Linux host runs no Hyper-V VMs — so there they are an error that says
//! what to use instead.
//!
//! On Windows the socket is WinSock's (`socket(AF_HYPERV, SOCK_STREAM, HV_PROTOCOL_RAW)`)
//! with a `SOCKADDR_HV` address ([`crate::sockaddr_hv`]: family, reserved, VM id, service id, the
//! GUIDs in Windows' struct layout). Accepting and connecting block, so they run on
//! tokio's blocking threads (the original notes that .NET's asynchronous connect fails on
//! AF_HYPERV); a connected socket is then handed to tokio as a TCP stream, which IOCP
//! drives like any stream socket.

use crate::guid::Guid;
use crate::BoxStream;

pub use imp::{connect_hyperv, HyperVListener, HYPERV_UNAVAILABLE};

#[cfg(windows)]
mod imp {
    use super::*;
    use crate::sockaddr::{parse_sockaddr_hv, sockaddr_hv, AF_HYPERV};
    use std::os::windows::io::{AsRawSocket, FromRawSocket, OwnedSocket, RawSocket};
    use std::sync::{Arc, Once};
    use windows_sys::Win32::Networking::WinSock as ws;

    /// Why Hyper-V sockets cannot be used on this OS (`None`: they can).
    pub const HYPERV_UNAVAILABLE: Option<&str> = None;

    /// `HV_PROTOCOL_RAW`, the only protocol of AF_HYPERV.
    const HV_PROTOCOL_RAW: i32 = 1;

    /// The last WinSock error, with what was being done.
    fn last_error(doing: &str) -> std::io::Error {
        // SAFETY: reads the calling thread's last WinSock error; no arguments.
        let code = unsafe { ws::WSAGetLastError() };
        if code == ws::WSAEAFNOSUPPORT {
            return std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!(
                    "{doing}: this system has no Hyper-V sockets (WSAEAFNOSUPPORT: not a \
                     Hyper-V VM or host, or an emulator; use --listen tcp:127.0.0.1:PORT there)"
                ),
            );
        }
        let error = std::io::Error::from_raw_os_error(code);
        std::io::Error::new(error.kind(), format!("{doing}: {error}"))
    }

    /// A new AF_HYPERV stream socket (WinSock started first: std starts it lazily, only
    /// for its own sockets).
    fn hyperv_socket() -> std::io::Result<OwnedSocket> {
        static STARTED: Once = Once::new();
        STARTED.call_once(|| {
            // SAFETY: WSADATA is plain data that WSAStartup fills; version 2.2.
            let mut data: ws::WSADATA = unsafe { std::mem::zeroed() };
            // SAFETY: `data` is a valid, writable WSADATA.
            unsafe { ws::WSAStartup(0x0202, &mut data) };
        });
        // SAFETY: plain socket creation; the result is checked before use.
        let socket = unsafe { ws::socket(i32::from(AF_HYPERV), ws::SOCK_STREAM, HV_PROTOCOL_RAW) };
        if socket == ws::INVALID_SOCKET {
            return Err(last_error("socket(AF_HYPERV)"));
        }
        // SAFETY: `socket` is a new, valid socket that nothing else owns.
        Ok(unsafe { OwnedSocket::from_raw_socket(socket as RawSocket) })
    }

    /// Hands a connected socket to tokio.
    fn into_stream(socket: OwnedSocket) -> std::io::Result<BoxStream> {
        let stream = std::net::TcpStream::from(socket);
        stream.set_nonblocking(true)?;
        Ok(Box::new(tokio::net::TcpStream::from_std(stream)?))
    }

    /// A listening Hyper-V socket.
    pub struct HyperVListener {
        socket: Arc<OwnedSocket>,
        local: String,
    }

    impl HyperVListener {
        /// Binds (`vm_id`, `service_id`) and listens.
        pub fn bind(vm_id: Guid, service_id: Guid) -> std::io::Result<HyperVListener> {
            let socket = hyperv_socket()?;
            let address = sockaddr_hv(vm_id, service_id);
            let raw = socket.as_raw_socket() as ws::SOCKET;
            // SAFETY: `address` is a SOCKADDR_HV's 36 bytes, its length passed with it.
            let bound = unsafe { ws::bind(raw, address.as_ptr().cast(), address.len() as i32) };
            if bound == ws::SOCKET_ERROR {
                return Err(last_error(&format!("bind hv:{vm_id}:{service_id}")));
            }
            // SAFETY: `raw` is the bound socket owned by `socket`.
            if unsafe { ws::listen(raw, ws::SOMAXCONN as i32) } == ws::SOCKET_ERROR {
                return Err(last_error("listen on the Hyper-V socket"));
            }
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
            let listener = self.socket.clone();
            let (socket, peer) = tokio::task::spawn_blocking(move || {
                let mut address = [0u8; 36];
                let mut length = address.len() as i32;
                let raw = listener.as_raw_socket() as ws::SOCKET;
                // SAFETY: `address` has room for `length` bytes; accept writes the peer's
                // SOCKADDR_HV there and its length into `length`.
                let socket = unsafe { ws::accept(raw, address.as_mut_ptr().cast(), &mut length) };
                if socket == ws::INVALID_SOCKET {
                    return Err(last_error("accept on the Hyper-V socket"));
                }
                // SAFETY: `socket` is the new connection, owned by nothing else.
                let socket = unsafe { OwnedSocket::from_raw_socket(socket as RawSocket) };
                let peer = parse_sockaddr_hv(&address[..length.clamp(0, 36) as usize])
                    .map_or_else(|| "hv:unknown".to_string(), |(vm, _)| format!("hv:{vm}"));
                Ok((socket, peer))
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok((into_stream(socket)?, peer))
        }
    }

    /// Connects to (`vm_id`, `service_id`), synchronously on a blocking thread.
    pub async fn connect_hyperv(vm_id: Guid, service_id: Guid) -> std::io::Result<BoxStream> {
        let socket = tokio::task::spawn_blocking(move || {
            let socket = hyperv_socket()?;
            let address = sockaddr_hv(vm_id, service_id);
            let raw = socket.as_raw_socket() as ws::SOCKET;
            // SAFETY: `address` is a SOCKADDR_HV's 36 bytes, its length passed with it.
            let connected =
                unsafe { ws::connect(raw, address.as_ptr().cast(), address.len() as i32) };
            if connected == ws::SOCKET_ERROR {
                return Err(last_error(&format!("connect to hv:{vm_id}:{service_id}")));
            }
            Ok(socket)
        })
        .await
        .map_err(std::io::Error::other)??;
        into_stream(socket)
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
