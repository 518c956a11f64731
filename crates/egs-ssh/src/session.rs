//! One `session` channel: what the client asked for (`env`, `pty-req`) and the process it
//! runs (`exec`, `shell`), with stdin, stdout, stderr (extended data 1), window changes,
//! signals and the real exit status or signal at the end. Closing the channel kills the
//! process group.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use russh::server::Handle;
use russh::ChannelId;
use tokio::io::AsyncReadExt;
use tokio::process::Child;

use egs_sys::{process, pty};

use crate::input::{Flow, InputQueue, Sink};

/// How long a PTY session's output is still read after its process ended (background
/// processes may hold the terminal open; the original waits 1 s too).
const PTY_DRAIN: Duration = Duration::from_secs(1);

/// Variables a client may set with `env`: `SHELL`/`SHELL_ARGS` choose the shell of an
/// interactive session; `LANG` and `LC_*` are exported to the process (Debian's
/// `AcceptEnv LANG LC_*`). Everything else is refused.
pub fn accepted_env(name: &str) -> bool {
    matches!(name, "SHELL" | "SHELL_ARGS" | "LANG") || name.starts_with("LC_")
}

/// The service user's home, where sessions start (as OpenSSH's do): `$HOME` (on Windows
/// `%USERPROFILE%`, LocalSystem's profile for the service), else the root (`/`, `C:\`).
pub fn home() -> std::path::PathBuf {
    let (variable, root) = if egs_sys::WINDOWS {
        ("USERPROFILE", "C:\\")
    } else {
        ("HOME", "/")
    };
    std::env::var_os(variable)
        .map(std::path::PathBuf::from)
        .filter(|h| h.is_absolute() && h.is_dir())
        .unwrap_or_else(|| root.into())
}

/// A requested terminal.
#[derive(Debug, Clone)]
pub struct PtyRequest {
    /// `TERM` for the process.
    pub term: String,
    /// Initial size.
    pub size: pty::Size,
}

/// The state of one session channel.
#[derive(Default)]
pub struct SessionChannel {
    env: Vec<(String, String)>,
    client_shell: Option<String>,
    client_shell_args: Option<String>,
    /// The terminal asked for with `pty-req`, if any.
    pub pty: Option<PtyRequest>,
    input: Option<InputQueue>,
    piped: bool,
    master: Option<pty::Master>,
    pid: Option<u32>,
    running: Arc<AtomicBool>,
}

impl SessionChannel {
    /// Records an `env` request; false (refused) for variables not in [`accepted_env`] or
    /// once the process runs.
    pub fn set_env(&mut self, name: &str, value: &str) -> bool {
        if self.started() || !accepted_env(name) || value.len() > 4096 {
            return false;
        }
        match name {
            "SHELL" => self.client_shell = Some(value.to_string()),
            "SHELL_ARGS" => self.client_shell_args = Some(value.to_string()),
            _ => self.env.push((name.to_string(), value.to_string())),
        }
        true
    }

    /// `SHELL` and `SHELL_ARGS` as the client sent them.
    pub fn client_shell(&self) -> (Option<&str>, Option<&str>) {
        (
            self.client_shell.as_deref(),
            self.client_shell_args.as_deref(),
        )
    }

    /// Whether a process was started on this channel.
    pub fn started(&self) -> bool {
        self.pid.is_some()
    }

    /// Starts `argv` (on the PTY if one was requested) and a task that carries its output
    /// and, at the end, its exit status, EOF and close. Its input and output take part in
    /// the connection's `flow`.
    pub fn start(
        &mut self,
        argv: &[String],
        id: ChannelId,
        handle: Handle,
        flow: &Arc<Flow>,
    ) -> std::io::Result<()> {
        if self.started() {
            return Err(std::io::Error::other(
                "a process already runs on this channel",
            ));
        }
        let mut env = self.env.clone();
        let running = self.running.clone();
        running.store(true, Ordering::SeqCst);
        if let Some(request) = &self.pty {
            env.push(("TERM".into(), request.term.clone()));
            let (master, child) = pty::spawn(argv, &env, &home(), request.size)?;
            self.pid = child.id();
            self.input = Some(InputQueue::start(Sink::Pty(master.clone()), flow.clone()));
            self.master = Some(master.clone());
            let output = Output {
                handle,
                id,
                flow: flow.clone(),
            };
            tokio::spawn(finish_pty(child, master, output, running));
        } else {
            let mut command = tokio::process::Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .envs(env)
                .current_dir(home())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            process::own_process_group(&mut command);
            let mut child = command.spawn()?;
            self.pid = child.id();
            self.input = child
                .stdin
                .take()
                .map(|stdin| InputQueue::start(Sink::Pipe(stdin), flow.clone()));
            self.piped = true;
            let output = Output {
                handle,
                id,
                flow: flow.clone(),
            };
            tokio::spawn(finish_piped(child, output, running));
        }
        Ok(())
    }

    /// Client data to the process (queued, waiting while the channel or connection holds
    /// as much unread input as it may); dropped once the process stops reading.
    pub async fn input(&mut self, data: &[u8]) {
        if let Some(queue) = &self.input {
            if queue.push(data).await.is_err() {
                self.input = None;
            }
        }
    }

    /// Client EOF: the process's stdin gets end-of-file after the queued data (a terminal
    /// has no end-of-file; its input stays open).
    pub fn eof(&mut self) {
        if self.piped {
            self.input = None;
        }
    }

    /// `window-change`: false without a terminal.
    pub fn resize(&mut self, size: pty::Size) -> bool {
        if let Some(request) = &mut self.pty {
            request.size = size;
        }
        match &self.master {
            Some(master) => master.resize(size).is_ok(),
            None => self.pty.is_some(),
        }
    }

    /// `signal`: delivered to the running process.
    pub fn signal(&self, sig: &russh::Sig) -> bool {
        match self.pid {
            Some(pid) if self.running.load(Ordering::SeqCst) => {
                process::signal(pid, &sig_name(sig))
            }
            _ => false,
        }
    }
}

impl Drop for SessionChannel {
    fn drop(&mut self) {
        // The channel is gone: so is whatever still runs on it (its whole group).
        if let Some(pid) = self.pid.filter(|_| self.running.load(Ordering::SeqCst)) {
            process::kill_group(pid);
        }
    }
}

/// The SSH name of a signal (`INT`, `TERM`, …).
fn sig_name(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// The russh value of a signal name.
fn sig_of(name: String) -> russh::Sig {
    use russh::Sig::*;
    [
        ABRT, ALRM, FPE, HUP, ILL, INT, KILL, PIPE, QUIT, SEGV, TERM, USR1,
    ]
    .into_iter()
    .find(|s| sig_name(s) == name)
    .unwrap_or(Custom(name))
}

/// Sends the process's end: `exit-status`, or `exit-signal` when a signal killed it; then
/// EOF and close.
async fn report_exit(
    status: std::io::Result<std::process::ExitStatus>,
    id: ChannelId,
    handle: &Handle,
) {
    match status.map(process::outcome) {
        Ok(Err((signal, core_dumped))) => {
            let _ = handle
                .exit_signal_request(
                    id,
                    sig_of(signal),
                    core_dumped,
                    String::new(),
                    String::new(),
                )
                .await;
        }
        Ok(Ok(code)) => {
            let _ = handle.exit_status_request(id, code as u32).await;
        }
        Err(_) => {
            let _ = handle.exit_status_request(id, 255).await;
        }
    }
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

/// Where a process's output goes: its channel, as part of the connection's flow.
#[derive(Clone)]
struct Output {
    handle: Handle,
    id: ChannelId,
    flow: Arc<Flow>,
}

impl Output {
    /// Hands `data` to the connection (stderr as extended data 1); false once the channel
    /// is gone.
    async fn send(&self, data: Vec<u8>, stderr: bool) -> bool {
        let _waiting = self.flow.carrying();
        let sent = if stderr {
            self.handle.extended_data(self.id, 1, data).await
        } else {
            self.handle.data(self.id, data).await
        };
        sent.is_ok()
    }
}

async fn finish_piped(mut child: Child, output: Output, running: Arc<AtomicBool>) {
    let stdout = child.stdout.take().map(|mut s| {
        tokio::spawn(pump(
            async move |buf| s.read(buf).await,
            output.clone(),
            false,
        ))
    });
    let stderr = child.stderr.take().map(|mut s| {
        tokio::spawn(pump(
            async move |buf| s.read(buf).await,
            output.clone(),
            true,
        ))
    });
    for pump in [stdout, stderr].into_iter().flatten() {
        let _ = pump.await;
    }
    let status = child.wait().await;
    running.store(false, Ordering::SeqCst);
    report_exit(status, output.id, &output.handle).await;
}

async fn finish_pty(
    mut child: pty::Child,
    master: pty::Master,
    output: Output,
    running: Arc<AtomicBool>,
) {
    let mut carried = tokio::spawn(pump(
        async move |buf| master.read(buf).await,
        output.clone(),
        false,
    ));
    let status = tokio::select! {
        status = child.wait() => {
            if tokio::time::timeout(PTY_DRAIN, &mut carried).await.is_err() {
                carried.abort();
            }
            status
        }
        _ = &mut carried => child.wait().await,
    };
    running.store(false, Ordering::SeqCst);
    report_exit(status, output.id, &output.handle).await;
}

/// Copies a process's (or its terminal's) output, as `read` gives it, to the channel
/// (stderr as extended data 1), in order.
async fn pump(
    mut read: impl AsyncFnMut(&mut [u8]) -> std::io::Result<usize>,
    output: Output,
    stderr: bool,
) {
    let mut buf = vec![0u8; 32 * 1024];
    while let Ok(n @ 1..) = read(&mut buf).await {
        if !output.send(buf[..n].to_vec(), stderr).await {
            return;
        }
    }
}
