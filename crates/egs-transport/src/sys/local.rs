//! Unix domain sockets (development, tests, Firecracker's hybrid vsock). Windows has AF_UNIX
//! too, but tokio does not drive it; the Windows guest issue builds it, until then binding
//! or connecting says so.

use std::path::Path;

pub use imp::{connect_local, LocalListener};

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
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!(
                            "{} is in use: another process is listening on it (stop it first)",
                            path.display()
                        ),
                    ));
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

#[cfg(not(unix))]
mod imp {
    use super::*;
    use crate::BoxStream;

    fn not_built() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "Unix sockets on Windows are not built yet (use tcp:127.0.0.1:PORT)",
        )
    }

    /// A listening Unix socket: not built on this OS yet.
    pub struct LocalListener(());

    impl LocalListener {
        /// Binds `path`: not built yet.
        pub fn bind(_path: &Path) -> std::io::Result<LocalListener> {
            Err(not_built())
        }

        /// The next connection.
        pub async fn accept(&self) -> std::io::Result<BoxStream> {
            Err(not_built())
        }
    }

    /// Connects to the socket at `path`: not built yet.
    pub async fn connect_local(_path: &Path) -> std::io::Result<BoxStream> {
        Err(not_built())
    }
}
