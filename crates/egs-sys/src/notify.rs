//! systemd's readiness protocol (`sd_notify`): a datagram to `$NOTIFY_SOCKET` (a path, or
//! `@name` for the abstract namespace). Without the variable it does nothing, so the same
//! binary runs under systemd, by hand and in tests.

/// Sends `state` (e.g. `READY=1`, `STOPPING=1`, `STATUS=…`) to systemd, if it listens.
pub fn notify(state: &str) -> std::io::Result<()> {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(());
    };
    let sock = std::os::unix::net::UnixDatagram::unbound()?;
    let bytes = socket.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(state.as_bytes(), &addr)?;
        }
        #[cfg(not(target_os = "linux"))]
        let _ = name;
    } else {
        sock.send_to(state.as_bytes(), std::path::Path::new(&socket))?;
    }
    Ok(())
}
