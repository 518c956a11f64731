//! systemd's readiness protocol (`sd_notify`): a datagram to `$NOTIFY_SOCKET` (a path, or
//! `@name` for the abstract namespace). Without the variable it does nothing, so the same
//! binary runs under systemd, by hand and in tests.
//!
//! The variable is taken out of the environment when the [`Notifier`] is made, as
//! `sd_notify(unset_environment=1)` does: child processes (provisioning commands, SSH
//! sessions) never inherit it, so they cannot send messages systemd would reject (or, worse,
//! accept for the service under `NotifyAccess=all`).

use std::ffi::OsString;

/// Where readiness messages go: systemd's socket, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<OsString>,
}

impl Notifier {
    /// Takes `$NOTIFY_SOCKET` and removes it from this process's environment. Call it
    /// before any thread or child process starts.
    pub fn take_from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        std::env::remove_var("NOTIFY_SOCKET");
        Notifier { socket }
    }

    /// Sends `state` (e.g. `READY=1`, `STOPPING=1`, `STATUS=…`) to systemd, if it listens.
    pub fn notify(&self, state: &str) -> std::io::Result<()> {
        match &self.socket {
            Some(socket) => send(socket, state),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn send(socket: &OsString, state: &str) -> std::io::Result<()> {
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
        sock.send_to(state.as_bytes(), std::path::Path::new(socket))?;
    }
    Ok(())
}

/// systemd does not exist on Windows; the service control manager is told elsewhere.
#[cfg(not(unix))]
fn send(_socket: &OsString, _state: &str) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_socket_leaves_the_environment_and_still_gets_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        std::env::set_var("NOTIFY_SOCKET", &path);
        let notifier = Notifier::take_from_env();
        assert!(std::env::var_os("NOTIFY_SOCKET").is_none());
        notifier.notify("READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Without a socket nothing is sent and nothing fails.
        Notifier::default().notify("READY=1").unwrap();
    }
}
