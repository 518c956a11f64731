//! Stream sockets of families tokio does not know (AF_HYPERV, AF_UNIX) on Windows, through
//! WinSock: created, bound and listened on directly; accepted and connected on tokio's
//! blocking threads (the calls block); a connected socket is then handed to tokio as a TCP
//! stream, which IOCP drives like any stream socket.

use std::os::windows::io::{AsRawSocket, FromRawSocket, OwnedSocket, RawSocket};
use std::sync::{Arc, Once};

use windows_sys::Win32::Networking::WinSock as ws;

use crate::BoxStream;

/// The last WinSock error, with what was being done (and for WSAEAFNOSUPPORT, `missing`:
/// what this system lacks).
pub fn last_error(doing: &str, missing: &str) -> std::io::Error {
    // SAFETY: reads the calling thread's last WinSock error; no arguments.
    let code = unsafe { ws::WSAGetLastError() };
    if code == ws::WSAEAFNOSUPPORT {
        return std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{doing}: {missing} (WSAEAFNOSUPPORT)"),
        );
    }
    let error = std::io::Error::from_raw_os_error(code);
    std::io::Error::new(error.kind(), format!("{doing}: {error}"))
}

/// A stream socket family: its number, protocol, name, and what a system without it lacks.
#[derive(Clone, Copy)]
pub struct Family {
    /// `AF_…`.
    pub number: u16,
    /// The protocol `socket` takes.
    pub protocol: i32,
    /// `AF_HYPERV`, `AF_UNIX`.
    pub name: &'static str,
    /// Said when WinSock does not know the family.
    pub missing: &'static str,
}

/// A new stream socket of `family` (WinSock started first: std starts it lazily, only for
/// its own sockets).
pub fn stream_socket(family: Family) -> std::io::Result<OwnedSocket> {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        // SAFETY: WSADATA is plain data that WSAStartup fills; version 2.2.
        let mut data: ws::WSADATA = unsafe { std::mem::zeroed() };
        // SAFETY: `data` is a valid, writable WSADATA.
        unsafe { ws::WSAStartup(0x0202, &mut data) };
    });
    // SAFETY: plain socket creation; the result is checked before use.
    let socket = unsafe { ws::socket(i32::from(family.number), ws::SOCK_STREAM, family.protocol) };
    if socket == ws::INVALID_SOCKET {
        return Err(last_error(
            &format!("socket({})", family.name),
            family.missing,
        ));
    }
    // SAFETY: `socket` is a new, valid socket that nothing else owns.
    Ok(unsafe { OwnedSocket::from_raw_socket(socket as RawSocket) })
}

fn raw(socket: &OwnedSocket) -> ws::SOCKET {
    socket.as_raw_socket() as ws::SOCKET
}

/// Binds `socket` to `address` (a sockaddr's bytes) and listens.
pub fn bind_listen(socket: &OwnedSocket, address: &[u8], family: Family) -> std::io::Result<()> {
    let missing = family.missing;
    // SAFETY: `address` holds a sockaddr of the socket's family; its length goes with it.
    let bound = unsafe { ws::bind(raw(socket), address.as_ptr().cast(), address.len() as i32) };
    if bound == ws::SOCKET_ERROR {
        return Err(last_error("bind", missing));
    }
    // SAFETY: `socket` is bound.
    if unsafe { ws::listen(raw(socket), ws::SOMAXCONN as i32) } == ws::SOCKET_ERROR {
        return Err(last_error("listen", missing));
    }
    Ok(())
}

/// The next connection on `listener`, with the peer's sockaddr bytes.
pub async fn accept(listener: Arc<OwnedSocket>) -> std::io::Result<(BoxStream, Vec<u8>)> {
    let (socket, peer) = tokio::task::spawn_blocking(move || {
        let mut address = [0u8; 128];
        let mut length = address.len() as i32;
        // SAFETY: `address` has room for `length` bytes; accept writes the peer's sockaddr
        // there and its length into `length`.
        let socket =
            unsafe { ws::accept(raw(&listener), address.as_mut_ptr().cast(), &mut length) };
        if socket == ws::INVALID_SOCKET {
            return Err(last_error("accept", ""));
        }
        // SAFETY: `socket` is the new connection, owned by nothing else.
        let socket = unsafe { OwnedSocket::from_raw_socket(socket as RawSocket) };
        Ok((socket, address[..length.clamp(0, 128) as usize].to_vec()))
    })
    .await
    .map_err(std::io::Error::other)??;
    Ok((into_stream(socket)?, peer))
}

/// Connects `socket` to `address` (a sockaddr of its family), blocking.
pub fn connect_now(socket: &OwnedSocket, address: &[u8]) -> std::io::Result<()> {
    // SAFETY: `address` holds a sockaddr of the socket's family; its length goes with it.
    let connected =
        unsafe { ws::connect(raw(socket), address.as_ptr().cast(), address.len() as i32) };
    if connected == ws::SOCKET_ERROR {
        return Err(last_error("connect", ""));
    }
    Ok(())
}

/// Connects a new socket of `family` to `address`, synchronously on a blocking thread.
pub async fn connect(family: Family, address: Vec<u8>) -> std::io::Result<BoxStream> {
    let socket = tokio::task::spawn_blocking(move || {
        let socket = stream_socket(family)?;
        connect_now(&socket, &address)?;
        Ok::<_, std::io::Error>(socket)
    })
    .await
    .map_err(std::io::Error::other)??;
    into_stream(socket)
}

/// Hands a connected socket to tokio.
fn into_stream(socket: OwnedSocket) -> std::io::Result<BoxStream> {
    let stream = std::net::TcpStream::from(socket);
    stream.set_nonblocking(true)?;
    Ok(Box::new(tokio::net::TcpStream::from_std(stream)?))
}
