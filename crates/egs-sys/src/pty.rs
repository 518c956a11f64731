//! Pseudo-terminals: a child started on a new terminal of a given size, the terminal's
//! output and input as async reads and writes, and resizing. Unix: `openpty`, the child as
//! session leader with the slave as its controlling terminal. Windows: ConPTY.

pub use imp::{spawn, Child, Master};

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

    /// The process on the terminal.
    pub type Child = tokio::process::Child;

    /// Opens a PTY of `size` and starts `argv` on it in `dir` with `env` added to the
    /// service's environment. Returns the master and the child.
    pub fn spawn(
        argv: &[String],
        env: &[(String, String)],
        dir: &std::path::Path,
        size: Size,
    ) -> std::io::Result<(Master, Child)> {
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
    //! ConPTY: `CreatePseudoConsole` over two pipes, the child started with
    //! `CreateProcessW` and `PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE` (as the original and
    //! Win32-OpenSSH do), the pipes read and written on threads of their own (anonymous
    //! pipes have no overlapped I/O), the process waited for on a blocking thread.

    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
    use std::os::windows::process::ExitStatusExt;
    use std::sync::{Arc, Mutex};

    use tokio::sync::mpsc;
    use windows_sys::Win32::Foundation::{HANDLE, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Console::{
        ClosePseudoConsole, CreatePseudoConsole, ResizePseudoConsole, COORD, HPCON,
    };
    use windows_sys::Win32::System::Pipes::CreatePipe;
    use windows_sys::Win32::System::Threading::{
        CreateProcessW, DeleteProcThreadAttributeList, GetExitCodeProcess,
        InitializeProcThreadAttributeList, UpdateProcThreadAttribute, WaitForSingleObject,
        CREATE_UNICODE_ENVIRONMENT, EXTENDED_STARTUPINFO_PRESENT, INFINITE,
        LPPROC_THREAD_ATTRIBUTE_LIST, PROCESS_INFORMATION, PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE,
        STARTUPINFOEXW,
    };

    use super::Size;
    use crate::win_args;

    fn coord(size: Size) -> COORD {
        COORD {
            X: size.cols.min(i16::MAX as u16) as i16,
            Y: size.rows.min(i16::MAX as u16) as i16,
        }
    }

    fn hresult(doing: &str, result: i32) -> std::io::Result<()> {
        if result < 0 {
            return Err(std::io::Error::other(format!(
                "{doing}: HRESULT {result:#010x}"
            )));
        }
        Ok(())
    }

    /// A pseudo console, closed when the last holder lets go (which ends its output).
    struct Console(Mutex<Option<HPCON>>);

    impl Console {
        fn close(&self) {
            if let Some(hpc) = self.0.lock().ok().and_then(|mut h| h.take()) {
                // SAFETY: `hpc` came from CreatePseudoConsole and is closed once (taken).
                unsafe { ClosePseudoConsole(hpc) };
            }
        }
    }

    impl Drop for Console {
        fn drop(&mut self) {
            self.close();
        }
    }

    /// The console's output as it arrives, and what a short read left of the last chunk.
    type Output = (mpsc::Receiver<Vec<u8>>, Vec<u8>);

    /// The terminal side of a session: the console's output and input, and its size.
    #[derive(Clone)]
    pub struct Master {
        output: Arc<tokio::sync::Mutex<Output>>,
        input: mpsc::Sender<Vec<u8>>,
        console: Arc<Console>,
    }

    /// A process started on a pseudo console.
    pub struct Child {
        process: Arc<OwnedHandle>,
        id: u32,
        console: Arc<Console>,
    }

    impl Child {
        /// The process id.
        pub fn id(&self) -> Option<u32> {
            Some(self.id)
        }

        /// Waits for the process to end, then closes its console so the last output is
        /// flushed and the output ends.
        pub async fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
            let process = self.process.clone();
            let code = tokio::task::spawn_blocking(move || {
                let handle = process.as_raw_handle() as HANDLE;
                // SAFETY: `handle` is the live process handle `process` owns.
                if unsafe { WaitForSingleObject(handle, INFINITE) } != WAIT_OBJECT_0 {
                    return Err(std::io::Error::last_os_error());
                }
                let mut code = 0u32;
                // SAFETY: as above; `code` is writable.
                if unsafe { GetExitCodeProcess(handle, &mut code) } == 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(code)
            })
            .await
            .map_err(std::io::Error::other)??;
            let console = self.console.clone();
            let _ = tokio::task::spawn_blocking(move || console.close()).await;
            Ok(std::process::ExitStatus::from_raw(code))
        }
    }

    fn pipe() -> std::io::Result<(OwnedHandle, OwnedHandle)> {
        let (mut read, mut write): (HANDLE, HANDLE) = (std::ptr::null_mut(), std::ptr::null_mut());
        // SAFETY: both out-pointers are valid; default security, default size.
        if unsafe { CreatePipe(&mut read, &mut write, std::ptr::null(), 0) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: CreatePipe returned two new handles that nothing else owns.
        Ok(unsafe {
            (
                OwnedHandle::from_raw_handle(read),
                OwnedHandle::from_raw_handle(write),
            )
        })
    }

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Starts `argv` on a new pseudo console of `size`, in `dir`, with `env` added to the
    /// service's environment.
    pub fn spawn(
        argv: &[String],
        env: &[(String, String)],
        dir: &std::path::Path,
        size: Size,
    ) -> std::io::Result<(Master, Child)> {
        let mut line = wide(&win_args::command_line(argv).map_err(std::io::Error::other)?);
        let environment = win_args::environment_block(std::env::vars_os(), env);
        let directory = wide(&dir.to_string_lossy());
        let (console_input, input) = pipe()?;
        let (output, console_output) = pipe()?;
        let mut hpc: HPCON = 0;
        // SAFETY: the pipe ends are valid handles; ConPTY duplicates what it keeps.
        hresult("CreatePseudoConsole", unsafe {
            CreatePseudoConsole(
                coord(size),
                console_input.as_raw_handle() as HANDLE,
                console_output.as_raw_handle() as HANDLE,
                0,
                &mut hpc,
            )
        })?;
        let console = Arc::new(Console(Mutex::new(Some(hpc))));
        drop((console_input, console_output));

        let mut attributes_size = 0usize;
        // SAFETY: a size query (null list) as documented; it fails with the size set.
        unsafe {
            InitializeProcThreadAttributeList(std::ptr::null_mut(), 1, 0, &mut attributes_size)
        };
        let mut attributes = vec![0u8; attributes_size];
        let list = attributes.as_mut_ptr() as LPPROC_THREAD_ATTRIBUTE_LIST;
        // SAFETY: `list` points to `attributes_size` writable bytes.
        if unsafe { InitializeProcThreadAttributeList(list, 1, 0, &mut attributes_size) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the attribute's value is the HPCON itself, passed by value as the
        // documentation of PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE says.
        let updated = unsafe {
            UpdateProcThreadAttribute(
                list,
                0,
                PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE as usize,
                hpc as *const core::ffi::c_void,
                std::mem::size_of::<HPCON>(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        let started = if updated == 0 {
            Err(std::io::Error::last_os_error())
        } else {
            // SAFETY: STARTUPINFOEXW and PROCESS_INFORMATION are plain data.
            let mut startup: STARTUPINFOEXW = unsafe { std::mem::zeroed() };
            startup.StartupInfo.cb = std::mem::size_of::<STARTUPINFOEXW>() as u32;
            startup.lpAttributeList = list;
            // SAFETY: as above.
            let mut process: PROCESS_INFORMATION = unsafe { std::mem::zeroed() };
            // SAFETY: every pointer is valid for the call: the command line is a mutable
            // NUL-terminated buffer, the environment block double-NUL-terminated UTF-16,
            // the directory NUL-terminated; no handles are inherited.
            let created = unsafe {
                CreateProcessW(
                    std::ptr::null(),
                    line.as_mut_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    0,
                    EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT,
                    environment.as_ptr().cast(),
                    directory.as_ptr(),
                    &startup.StartupInfo,
                    &mut process,
                )
            };
            if created == 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(process)
            }
        };
        // SAFETY: `list` was initialised above and is deleted once.
        unsafe { DeleteProcThreadAttributeList(list) };
        let process = started.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("starting {} on a pseudo console: {e}", argv[0]),
            )
        })?;
        // SAFETY: CreateProcessW returned these handles; each is owned once.
        let (process_handle, _thread) = unsafe {
            (
                OwnedHandle::from_raw_handle(process.hProcess),
                OwnedHandle::from_raw_handle(process.hThread),
            )
        };

        let (output_tx, output_rx) = mpsc::channel::<Vec<u8>>(16);
        std::thread::Builder::new()
            .name("egs-conpty-out".into())
            .spawn(move || {
                use std::io::Read;
                let mut output = std::fs::File::from(output);
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n @ 1..) = output.read(&mut buf) {
                    if output_tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            })?;
        let (input_tx, mut input_rx) = mpsc::channel::<Vec<u8>>(16);
        std::thread::Builder::new()
            .name("egs-conpty-in".into())
            .spawn(move || {
                use std::io::Write;
                let mut input = std::fs::File::from(input);
                while let Some(data) = input_rx.blocking_recv() {
                    if input.write_all(&data).is_err() {
                        return;
                    }
                }
            })?;
        let master = Master {
            output: Arc::new(tokio::sync::Mutex::new((output_rx, Vec::new()))),
            input: input_tx,
            console: console.clone(),
        };
        let child = Child {
            process: Arc::new(process_handle),
            id: process.dwProcessId,
            console,
        };
        Ok((master, child))
    }

    impl Master {
        /// Reads output; 0 once the console is closed and everything was read.
        pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            let mut guard = self.output.lock().await;
            let (chunks, left) = &mut *guard;
            if left.is_empty() {
                match chunks.recv().await {
                    Some(chunk) => *left = chunk,
                    None => return Ok(0),
                }
            }
            let n = buf.len().min(left.len());
            buf[..n].copy_from_slice(&left[..n]);
            left.drain(..n);
            Ok(n)
        }

        /// Writes all of `data`.
        pub async fn write_all(&self, data: &[u8]) -> std::io::Result<()> {
            self.input
                .send(data.to_vec())
                .await
                .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
        }

        /// Sets the window size.
        pub fn resize(&self, size: Size) -> std::io::Result<()> {
            let hpc = self.console.0.lock().ok().and_then(|h| *h);
            let Some(hpc) = hpc else {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            };
            // SAFETY: `hpc` is the open pseudo console (still held by the Mutex's Some).
            hresult("ResizePseudoConsole", unsafe {
                ResizePseudoConsole(hpc, coord(size))
            })
        }
    }
}
