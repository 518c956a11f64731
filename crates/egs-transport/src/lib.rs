//! Where the EGS SSH channel runs: the VM socket (vsock port 5002, which Hyper-V names
//! service `0000138a-facb-11e6-bd58-64006a7986d3`), Firecracker/cloud-hypervisor hybrid
//! vsock, and Unix sockets and loopback TCP for development and tests.
//!
//! [`Endpoint`] is the parsed address; [`Listener`] serves one (guest side) and [`connect`]
//! reaches one (host side). Every stream is a [`Stream`], so the SSH code above never
//! knows which transport it runs on. OS-specific sockets (vsock, Hyper-V sockets) live in
//! the `sys` module.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

mod guid;
mod sockaddr;
mod sys;

pub use guid::Guid;
pub use sockaddr::{parse_sockaddr_hv, sockaddr_hv, sockaddr_un, AF_HYPERV};

/// Why an address cannot be used; the text names the address and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not a GUID.
    #[error("'{0}' is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)")]
    NotAGuid(String),
    /// A GUID that is not built from the vsock template.
    #[error("'{0}' is not a vsock-template service id (xxxxxxxx-facb-11e6-bd58-64006a7986d3)")]
    NotAVsockServiceId(String),
    /// A port or CID that is not a number.
    #[error("'{text}' is not a {what} (a number)")]
    NotANumber {
        /// The text.
        text: String,
        /// What it should have been.
        what: &'static str,
    },
    /// A TCP address that does not parse.
    #[error("'{text}': {reason} (use tcp:127.0.0.1:PORT)")]
    BadTcpAddress {
        /// The text.
        text: String,
        /// Why.
        reason: String,
    },
    /// A TCP address that is not loopback, without `allow_remote`.
    #[error("'{0}' is not a loopback address: SSH for EGS belongs on the VM socket; TCP is for development (pass --allow-remote-tcp to insist)")]
    NotLoopback(SocketAddr),
    /// Not a listen address.
    #[error("'{0}': listen on vsock, vsock:PORT, hv, hv:VMID, unix:PATH or tcp:127.0.0.1:PORT")]
    NotAListenAddress(String),
    /// Not a target.
    #[error("'{0}': a target is vsock:CID[:PORT], fc:SOCKET[:PORT], a Hyper-V VM id (GUID or hv:GUID), unix:PATH or tcp:127.0.0.1:PORT")]
    NotATarget(String),
    /// A transport this OS does not have.
    #[error("{vm_id}: {why}")]
    Unreachable {
        /// The VM.
        vm_id: Guid,
        /// Why, and what to use instead.
        why: &'static str,
    },
}

/// The Hyper-V integration service id of EGS.
pub const SERVICE_ID: &str = "0000138a-facb-11e6-bd58-64006a7986d3";

/// The vsock port of EGS (the first field of [`SERVICE_ID`]).
pub const VSOCK_PORT: u32 = 5002;

/// vsock's "any CID" (listen for every peer; the Hyper-V vsock transport cannot restrict
/// peers, so the guest listens on it, as the original does).
pub const VMADDR_CID_ANY: u32 = u32::MAX;

/// The Hyper-V "vsock template" service id for a port: the port is the first field.
pub fn service_id_for_port(port: u32) -> String {
    format!("{port:08x}-facb-11e6-bd58-64006a7986d3")
}

/// The vsock port of a Hyper-V service id built from the vsock template; an error for
/// any other GUID.
pub fn port_for_service_id(service_id: &str) -> Result<u32, AddressError> {
    let lower = service_id
        .trim_matches(|c| c == '{' || c == '}')
        .to_ascii_lowercase();
    match lower.split_once('-') {
        Some((first, rest))
            if rest == "facb-11e6-bd58-64006a7986d3"
                && first.len() == 8
                && first.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            u32::from_str_radix(first, 16)
                .map_err(|_| AddressError::NotAVsockServiceId(service_id.to_string()))
        }
        _ => Err(AddressError::NotAVsockServiceId(service_id.to_string())),
    }
}

/// A place the SSH channel runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// AF_VSOCK: `cid` ([`VMADDR_CID_ANY`] when listening) and port.
    Vsock {
        /// Context id of the peer (or any, when listening).
        cid: u32,
        /// vsock port.
        port: u32,
    },
    /// Firecracker / cloud-hypervisor hybrid vsock: the VMM's Unix socket, then
    /// `CONNECT <port>\n`, answered by `OK <n>\n` (host side only).
    Firecracker {
        /// The VMM's vsock Unix socket.
        socket: PathBuf,
        /// The guest port.
        port: u32,
    },
    /// A Hyper-V socket (Windows): the partition and the service.
    HyperV {
        /// The VM (host side), or which partitions may connect (guest side:
        /// [`Guid::PARENT`] or [`Guid::WILDCARD`]).
        vm_id: Guid,
        /// The service ([`SERVICE_ID`] for EGS).
        service_id: Guid,
    },
    /// A Unix socket (development, tests, and as a proxy target).
    Unix(PathBuf),
    /// TCP; loopback unless explicitly allowed (development and tests).
    Tcp(SocketAddr),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Vsock { cid, port } if *cid == VMADDR_CID_ANY => {
                write!(f, "vsock:any:{port}")
            }
            Endpoint::Vsock { cid, port } => write!(f, "vsock:{cid}:{port}"),
            Endpoint::Firecracker { socket, port } => write!(f, "fc:{}:{port}", socket.display()),
            Endpoint::HyperV { vm_id, service_id } if *service_id == egs_service_id() => {
                write!(f, "hv:{vm_id}")
            }
            Endpoint::HyperV { vm_id, service_id } => write!(f, "hv:{vm_id}:{service_id}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "tcp:{addr}"),
        }
    }
}

/// [`SERVICE_ID`] as a [`Guid`].
pub fn egs_service_id() -> Guid {
    Guid::from_fields(
        VSOCK_PORT,
        0xfacb,
        0x11e6,
        [0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79, 0x86, 0xd3],
    )
}

/// `hv:VMID[:SERVICEID]` after the prefix; `parent`, `any` name the well-known VM ids.
fn parse_hyperv(rest: &str) -> Result<Endpoint, AddressError> {
    let (vm, service) = match rest.split_once(':') {
        Some((vm, service)) => (vm, service.parse::<Guid>()?),
        None => (rest, egs_service_id()),
    };
    let vm_id = match vm {
        "parent" => Guid::PARENT,
        "any" => Guid::WILDCARD,
        guid => guid.parse()?,
    };
    Ok(Endpoint::HyperV {
        vm_id,
        service_id: service,
    })
}

fn parse_port(s: &str, what: &'static str) -> Result<u32, AddressError> {
    s.parse::<u32>().map_err(|_| AddressError::NotANumber {
        text: s.to_string(),
        what,
    })
}

fn parse_tcp(addr: &str, allow_remote: bool) -> Result<Endpoint, AddressError> {
    let addr: SocketAddr =
        addr.parse()
            .map_err(|e: std::net::AddrParseError| AddressError::BadTcpAddress {
                text: addr.to_string(),
                reason: e.to_string(),
            })?;
    if !allow_remote && !addr.ip().is_loopback() {
        return Err(AddressError::NotLoopback(addr));
    }
    Ok(Endpoint::Tcp(addr))
}

/// Parses where the guest listens: `vsock` (any CID, port 5002), `vsock:PORT`, `hv`
/// (Hyper-V socket of a Windows guest: the parent partition, EGS's service) or
/// `hv:VMID|parent|any[:SERVICEID]`, `unix:PATH` or `tcp:ADDR:PORT` (loopback unless
/// `allow_remote`).
pub fn parse_listen(s: &str, allow_remote: bool) -> Result<Endpoint, AddressError> {
    if s == "hv" {
        return Ok(Endpoint::HyperV {
            vm_id: Guid::PARENT,
            service_id: egs_service_id(),
        });
    }
    if let Some(rest) = s.strip_prefix("hv:") {
        return parse_hyperv(rest);
    }
    if s == "vsock" {
        return Ok(Endpoint::Vsock {
            cid: VMADDR_CID_ANY,
            port: VSOCK_PORT,
        });
    }
    if let Some(port) = s.strip_prefix("vsock:") {
        return Ok(Endpoint::Vsock {
            cid: VMADDR_CID_ANY,
            port: parse_port(port, "vsock port")?,
        });
    }
    if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = s.strip_prefix("tcp:") {
        return parse_tcp(addr, allow_remote);
    }
    Err(AddressError::NotAListenAddress(s.to_string()))
}

/// Parses a host-side target: `vsock:CID` (port 5002) or `vsock:CID:PORT`,
/// `fc:UDS_PATH` (port 5002) or `fc:UDS_PATH:PORT`, a Hyper-V VM id (`hv:VMID[:SERVICEID]`
/// or, as the original takes it, the bare VM GUID), `unix:PATH`, `tcp:127.0.0.1:PORT`.
pub fn parse_target(s: &str) -> Result<Endpoint, AddressError> {
    if let Some(rest) = s.strip_prefix("hv:") {
        return parse_hyperv(rest);
    }
    if let Ok(vm_id) = s.parse::<Guid>() {
        return Ok(Endpoint::HyperV {
            vm_id,
            service_id: egs_service_id(),
        });
    }
    if let Some(rest) = s.strip_prefix("vsock:") {
        let (cid, port) = match rest.split_once(':') {
            Some((cid, port)) => (cid, parse_port(port, "vsock port")?),
            None => (rest, VSOCK_PORT),
        };
        let cid = parse_port(cid, "vsock CID")?;
        return Ok(Endpoint::Vsock { cid, port });
    }
    if let Some(rest) = s.strip_prefix("fc:").filter(|p| !p.is_empty()) {
        // A trailing `:<digits>` is the port; a path may itself contain colons.
        let (socket, port) = match rest.rsplit_once(':') {
            Some((path, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (path, parse_port(port, "vsock port")?)
            }
            _ => (rest, VSOCK_PORT),
        };
        return Ok(Endpoint::Firecracker {
            socket: PathBuf::from(socket),
            port,
        });
    }
    if let Some(path) = s.strip_prefix("unix:").filter(|p| !p.is_empty()) {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if let Some(addr) = s.strip_prefix("tcp:") {
        return parse_tcp(addr, false);
    }
    Err(AddressError::NotATarget(s.to_string()))
}

/// A byte stream of any transport.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// A boxed stream of any transport.
pub type BoxStream = Box<dyn Stream>;

/// A bound listener of any transport.
pub enum Listener {
    /// Unix socket (the path is removed again on drop).
    Unix(sys::LocalListener, PathBuf),
    /// TCP.
    Tcp(tokio::net::TcpListener),
    /// vsock.
    Vm(sys::VmListener),
    /// A Hyper-V socket (Windows guests).
    HyperV(sys::HyperVListener),
}

impl Listener {
    /// Binds `endpoint`. A stale Unix socket file is replaced; anything else at that path
    /// is an error. Needs a Tokio runtime with I/O enabled.
    pub async fn bind(endpoint: &Endpoint) -> std::io::Result<Listener> {
        match endpoint {
            Endpoint::Unix(path) => Ok(Listener::Unix(
                sys::LocalListener::bind(path)?,
                path.clone(),
            )),
            Endpoint::Tcp(addr) => Ok(Listener::Tcp(tokio::net::TcpListener::bind(addr).await?)),
            Endpoint::Vsock { cid, port } => Ok(Listener::Vm(sys::VmListener::bind(*cid, *port)?)),
            Endpoint::HyperV { vm_id, service_id } => Ok(Listener::HyperV(
                sys::HyperVListener::bind(*vm_id, *service_id)?,
            )),
            Endpoint::Firecracker { .. } => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "hybrid vsock is reached from the host; the guest listens on vsock",
            )),
        }
    }

    /// What this listener is bound to (the real port for `tcp:…:0`).
    pub fn local(&self) -> String {
        match self {
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| format!("tcp:{a}"))
                .unwrap_or_else(|_| "tcp:?".into()),
            Listener::Vm(l) => l.local(),
            Listener::HyperV(l) => l.local(),
        }
    }

    /// The next connection, and a description of the peer for logs.
    pub async fn accept(&self) -> std::io::Result<(BoxStream, String)> {
        match self {
            Listener::Unix(l, path) => Ok((l.accept().await?, format!("unix:{}", path.display()))),
            Listener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // As on the connecting side: no Nagle delay on SSH's small packets.
                s.set_nodelay(true)?;
                Ok((Box::new(s), format!("tcp:{peer}")))
            }
            Listener::Vm(l) => l.accept().await,
            Listener::HyperV(l) => l.accept().await,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The longest reply line accepted in the hybrid-vsock handshake.
const MAX_HANDSHAKE_LINE: u64 = 64;

/// Connects to `endpoint` (host side). For hybrid vsock, sends `CONNECT <port>\n` and
/// expects `OK <n>\n` before handing the stream over.
pub async fn connect(endpoint: &Endpoint) -> std::io::Result<BoxStream> {
    match endpoint {
        Endpoint::Unix(path) => sys::connect_local(path).await,
        Endpoint::Tcp(addr) => {
            // SSH's small packets (SFTP requests, acknowledgements) must not wait for
            // Nagle's algorithm: it stalled many-small-file transfers by a delayed ACK each.
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            Ok(Box::new(stream))
        }
        Endpoint::Vsock { cid, port } => sys::connect_vm(*cid, *port).await,
        Endpoint::HyperV { vm_id, service_id } => sys::connect_hyperv(*vm_id, *service_id).await,
        Endpoint::Firecracker { socket, port } => {
            let stream = sys::connect_local(socket).await?;
            hybrid_vsock_handshake(stream, *port).await
        }
    }
}

/// Whether this OS can reach `endpoint` at all (an error naming what to use instead), so a
/// tool can refuse it as a bad argument before trying to connect.
pub fn check_reachable(endpoint: &Endpoint) -> Result<(), AddressError> {
    match (endpoint, sys::HYPERV_UNAVAILABLE) {
        (Endpoint::HyperV { vm_id, .. }, Some(why)) => {
            Err(AddressError::Unreachable { vm_id: *vm_id, why })
        }
        _ => Ok(()),
    }
}

/// The Firecracker / cloud-hypervisor hybrid vsock handshake on an open stream.
pub async fn hybrid_vsock_handshake<S: Stream>(stream: S, port: u32) -> std::io::Result<BoxStream> {
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await?;
    let mut line = Vec::new();
    let mut limited = (&mut reader).take(MAX_HANDSHAKE_LINE);
    limited.read_until(b'\n', &mut line).await?;
    let text = String::from_utf8_lossy(&line);
    let ok = text
        .strip_prefix("OK ")
        .and_then(|rest| rest.strip_suffix('\n'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            format!(
                "hybrid vsock: the VMM answered {:?} to CONNECT {port} (is egs-service running in the guest?)",
                text.trim_end()
            ),
        ));
    }
    // Bytes the VMM sent after the OK line belong to the guest's stream: keep them.
    Ok(Box::new(reader))
}

#[cfg(test)]
mod tests;
