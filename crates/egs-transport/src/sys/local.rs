//! Unix domain sockets (development, tests, Firecracker's hybrid vsock). Windows has AF_UNIX
//! too (since Windows 10 1803), which tokio does not drive: there the socket is WinSock's
//! (`sys::winsock`), with a `sockaddr_un` built here.

use std::path::Path;

pub use imp::{connect_local, LocalListener};

/// Binding a socket path another process still serves: a second daemon must not silently
/// take over the first one's clients.
fn in_use(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "{} is in use: another process is listening on it (stop it first)",
            path.display()
        ),
    )
}

#[cfg(unix)]
mod imp {
    use super::*;
    use crate::BoxStream;

    /// A listening Unix socket.
    pub struct LocalListener(tokio::net::UnixListener);

    impl LocalListener {
        /// Binds `path`. A stale socket file (nothing accepts on it) is replaced; a socket
        /// another process still serves, or anything that is not a socket, is an error —
        /// a second daemon must not silently take over the first one's clients.
        pub fn bind(path: &Path) -> std::io::Result<LocalListener> {
            use std::os::unix::fs::FileTypeExt;
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if !meta.file_type().is_socket() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a socket", path.display()),
                    ));
                }
                if std::os::unix::net::UnixStream::connect(path).is_ok() {
                    return Err(in_use(path));
                }
                std::fs::remove_file(path)?;
            }
            Ok(LocalListener(tokio::net::UnixListener::bind(path)?))
        }

        /// The next connection.
        pub async fn accept(&self) -> std::io::Result<BoxStream> {
            let (stream, _) = self.0.accept().await?;
            Ok(Box::new(stream))
        }
    }

    /// Connects to the socket at `path`.
    pub async fn connect_local(path: &Path) -> std::io::Result<BoxStream> {
        Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
    }
}

#[cfg(windows)]
mod imp {
    use super::*;
    use crate::sockaddr::sockaddr_un;
    use crate::sys::winsock;
    use crate::BoxStream;
    use std::os::windows::io::OwnedSocket;
    use std::sync::Arc;

    /// AF_UNIX on WinSock.
    const UNIX: winsock::Family = winsock::Family {
        number: 1,
        protocol: 0,
        name: "AF_UNIX",
        missing: "this Windows has no Unix sockets (Windows 10 1803 or later has them)",
    };

    /// A listening Unix socket; its file is removed when it is dropped.
    pub struct LocalListener(Arc<OwnedSocket>, std::path::PathBuf);

    impl Drop for LocalListener {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.1);
        }
    }

    impl LocalListener {
        /// Binds `path`. A stale socket file (nothing accepts on it) is replaced; a socket
        /// another process still serves is an error, as on Unix.
        pub fn bind(path: &Path) -> std::io::Result<LocalListener> {
            let address = sockaddr_un(path)?;
            if std::fs::symlink_metadata(path).is_ok() {
                let probe = winsock::stream_socket(UNIX)?;
                if winsock::connect_now(&probe, &address).is_ok() {
                    return Err(in_use(path));
                }
                std::fs::remove_file(path)?;
            }
            let socket = winsock::stream_socket(UNIX)?;
            winsock::bind_listen(&socket, &address, UNIX)?;
            Ok(LocalListener(Arc::new(socket), path.to_path_buf()))
        }

        /// The next connection.
        pub async fn accept(&self) -> std::io::Result<BoxStream> {
            Ok(winsock::accept(self.0.clone()).await?.0)
        }
    }

    /// Connects to the socket at `path`.
    pub async fn connect_local(path: &Path) -> std::io::Result<BoxStream> {
        winsock::connect(UNIX, sockaddr_un(path)?).await
    }
}
