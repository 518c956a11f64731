//! Pseudo-terminals: a child started on a new terminal of a given size, the terminal's
//! output and input as async reads and writes, and resizing. Unix: `openpty`, the child as
//! session leader with the slave as its controlling terminal. Windows: ConPTY, which the
//! Windows guest issue builds; until then [`spawn`] says so.

pub use imp::{spawn, Master};

/// Window size in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

impl Size {
    /// From an SSH request's u32 fields; 0 or absurd values fall back to 80×24.
    pub fn from_request(cols: u32, rows: u32) -> Size {
        let clamp = |v: u32, default: u16| {
            if v == 0 || v > 10_000 {
                default
            } else {
                v as u16
            }
        };
        Size {
            cols: clamp(cols, 80),
            rows: clamp(rows, 24),
        }
    }
}

#[cfg(unix)]
mod imp {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::sync::Arc;

    use tokio::io::unix::AsyncFd;

    use super::Size;

    fn winsize(size: Size) -> libc::winsize {
        libc::winsize {
            ws_row: size.rows,
            ws_col: size.cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        }
    }

    /// The master side of a PTY; cloneable, so one task reads while another writes.
    #[derive(Clone)]
    pub struct Master(Arc<AsyncFd<OwnedFd>>);

    /// Opens a PTY of `size` and starts `argv` on it in `dir` with `env` added to the
    /// service's environment. Returns the master and the child.
    pub fn spawn(
        argv: &[String],
        env: &[(String, String)],
        dir: &std::path::Path,
        size: Size,
    ) -> std::io::Result<(Master, tokio::process::Child)> {
        let pty = nix::pty::openpty(Some(&winsize(size)), None).map_err(std::io::Error::from)?;
        let (master, slave) = (pty.master, pty.slave);
        set_nonblocking(&master)?;
        let mut command = tokio::process::Command::new(&argv[0]);
        command
            .args(&argv[1..])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave)
            .kill_on_drop(true);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        // SAFETY: `master` is an open descriptor owned by the AsyncFd for its whole life.
        let master = unsafe { AsyncFd::register(master) }.map_err(std::io::Error::from)?;
        Ok((Master(Arc::new(master)), child))
    }

    fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    impl Master {
        /// Reads output; `Ok(0)` when the terminal has closed (the kernel's EIO once every
        /// slave descriptor is gone counts as the end, not an error).
        pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            loop {
                let mut guard = self.0.readable().await?;
                // SAFETY: reading into a buffer we own from a descriptor we own.
                let result = guard.try_io(|fd| {
                    let n =
                        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if n < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                match result {
                    Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                    Ok(r) => return r,
                    Err(_would_block) => continue,
                }
            }
        }

        /// Writes all of `data` (keyboard input).
        pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
            while !data.is_empty() {
                let mut guard = self.0.writable().await?;
                // SAFETY: writing from a buffer we own to a descriptor we own.
                let result = guard.try_io(|fd| {
                    let n =
                        unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
                    if n < 0 {
                        Err(std::io::Error::last_os_error())
                    } else {
                        Ok(n as usize)
                    }
                });
                match result {
                    Ok(Ok(n)) => data = &data[n..],
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => continue,
                }
            }
            Ok(())
        }

        /// Sets the window size (the child gets SIGWINCH).
        pub fn resize(&self, size: Size) -> std::io::Result<()> {
            let ws = winsize(size);
            // SAFETY: TIOCSWINSZ with a valid winsize on our master descriptor.
            if unsafe { libc::ioctl(self.0.get_ref().as_raw_fd(), libc::TIOCSWINSZ as _, &ws) } < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }
    }
}

#[cfg(windows)]
mod imp {
    use super::Size;

    fn not_built() -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "PTY sessions on Windows (ConPTY) are not built yet",
        )
    }

    /// The terminal side of a session (ConPTY's pipes, once built).
    #[derive(Clone)]
    pub struct Master(());

    /// Starts `argv` on a new pseudo console: not built yet.
    pub fn spawn(
        _argv: &[String],
        _env: &[(String, String)],
        _dir: &std::path::Path,
        _size: Size,
    ) -> std::io::Result<(Master, tokio::process::Child)> {
        Err(not_built())
    }

    impl Master {
        /// Reads output.
        pub async fn read(&self, _buf: &mut [u8]) -> std::io::Result<usize> {
            Err(not_built())
        }

        /// Writes all of `data`.
        pub async fn write_all(&self, _data: &[u8]) -> std::io::Result<()> {
            Err(not_built())
        }

        /// Sets the window size.
        pub fn resize(&self, _size: Size) -> std::io::Result<()> {
            Err(not_built())
        }
    }
}
