//! Processes EGS started (SSH sessions): delivery of signals by name, how one ended, and
//! ending a whole process tree. Unix: signals and process groups. Windows has no signals:
//! only `KILL` is delivered (as termination), and a tree is ended with `taskkill /T`.
//! Also whether a process named in another program's lock file is alive.

pub use imp::{
    end_quietly_on_closed_pipe, is_running, kill_group, outcome, own_process_group, signal,
};

#[cfg(unix)]
mod imp {
    use std::os::unix::process::ExitStatusExt;

    /// Whether process `pid` is alive and named `name` (.NET's `ProcessName`: the kernel's
    /// 15-character `comm`, or the executable's file name for longer names).
    pub fn is_running(pid: u32, name: &str) -> bool {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let comm = comm.trim_end_matches('\n');
        if comm.is_empty() {
            return false;
        }
        if comm == name {
            return true;
        }
        name.len() > 15
            && name.starts_with(comm)
            && std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|exe| exe.file_name().map(|f| f == name))
                .unwrap_or(false)
    }

    /// The signals SSH names (RFC 4254 §6.10), without `SIG`.
    const SIGNALS: [(&str, i32); 13] = [
        ("ABRT", libc::SIGABRT),
        ("ALRM", libc::SIGALRM),
        ("FPE", libc::SIGFPE),
        ("HUP", libc::SIGHUP),
        ("ILL", libc::SIGILL),
        ("INT", libc::SIGINT),
        ("KILL", libc::SIGKILL),
        ("PIPE", libc::SIGPIPE),
        ("QUIT", libc::SIGQUIT),
        ("SEGV", libc::SIGSEGV),
        ("TERM", libc::SIGTERM),
        ("USR1", libc::SIGUSR1),
        ("USR2", libc::SIGUSR2),
    ];

    /// Sends the signal named `name` (SSH spelling: `INT`, `TERM`, …) to `pid`; false for
    /// an unknown name or a failed delivery.
    pub fn signal(pid: u32, name: &str) -> bool {
        let Some((_, number)) = SIGNALS.iter().find(|(n, _)| *n == name) else {
            return false;
        };
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(pid as libc::pid_t, *number) == 0 }
    }

    /// Kills process group `pid` (a session's process and everything it started).
    pub fn kill_group(pid: u32) {
        // SAFETY: kill(2) has no memory effects.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }

    /// How a process ended: its exit code, or the SSH name of the signal that killed it (a
    /// number for signals SSH does not name) and whether it dumped core.
    pub fn outcome(status: std::process::ExitStatus) -> Result<i32, (String, bool)> {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ok(code),
            (None, Some(sig)) => {
                let name = SIGNALS
                    .iter()
                    .find(|(_, n)| *n == sig)
                    .map_or_else(|| format!("SIG{sig}"), |(name, _)| name.to_string());
                Err((name, status.core_dumped()))
            }
            (None, None) => Ok(255),
        }
    }

    /// Puts a command into its own process group when it starts, so [`kill_group`]
    /// reaches everything it spawns.
    pub fn own_process_group(command: &mut tokio::process::Command) {
        command.process_group(0);
    }

    /// Lets a write to a closed pipe end this process quietly, as it ends C tools
    /// (`egs-service kvp events | head -1`), instead of a "Broken pipe" panic. Only for
    /// commands that print and neither feed children nor write to Unix sockets, which
    /// would then be ended the same way.
    pub fn end_quietly_on_closed_pipe() {
        // SAFETY: restoring the default disposition of SIGPIPE has no memory effects.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
}

#[cfg(windows)]
mod imp {
    /// `CREATE_NEW_PROCESS_GROUP`.
    const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;

    /// Whether process `pid` is alive and its image is `name` (.NET's `ProcessName`: the
    /// file name without `.exe`, compared case-insensitively).
    pub fn is_running(pid: u32, name: &str) -> bool {
        use windows_sys::Win32::Foundation::{CloseHandle, STILL_ACTIVE};
        use windows_sys::Win32::System::Threading::{
            GetExitCodeProcess, OpenProcess, QueryFullProcessImageNameW,
            PROCESS_QUERY_LIMITED_INFORMATION,
        };
        // SAFETY: OpenProcess takes plain values; the handle is closed below.
        let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if handle.is_null() {
            return false;
        }
        let mut buffer = [0u16; 1024];
        let mut length = buffer.len() as u32;
        let mut code = 0u32;
        // SAFETY: the buffer and its length describe valid memory; the handle is open.
        let (named, alive) = unsafe {
            (
                QueryFullProcessImageNameW(handle, 0, buffer.as_mut_ptr(), &mut length) != 0,
                GetExitCodeProcess(handle, &mut code) != 0 && code == STILL_ACTIVE as u32,
            )
        };
        // SAFETY: the handle came from OpenProcess and is closed once.
        unsafe { CloseHandle(handle) };
        if !named || !alive {
            return false;
        }
        let image = String::from_utf16_lossy(&buffer[..length as usize]);
        let file = image.rsplit(['\\', '/']).next().unwrap_or_default();
        let stem = file
            .get(file.len().saturating_sub(4)..)
            .filter(|ext| ext.eq_ignore_ascii_case(".exe"))
            .map_or(file, |_| &file[..file.len() - 4]);
        stem.eq_ignore_ascii_case(name)
    }

    /// Windows has no signals; `KILL` ends the process tree, anything else is refused.
    pub fn signal(pid: u32, name: &str) -> bool {
        if name == "KILL" {
            kill_group(pid);
            return true;
        }
        false
    }

    /// Ends process `pid` and every process it started.
    pub fn kill_group(pid: u32) {
        let _ = std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }

    /// How a process ended: Windows processes always have an exit code.
    pub fn outcome(status: std::process::ExitStatus) -> Result<i32, (String, bool)> {
        Ok(status.code().unwrap_or(255))
    }

    /// Starts a command as the root of a process group of its own.
    pub fn own_process_group(command: &mut tokio::process::Command) {
        command.creation_flags(CREATE_NEW_PROCESS_GROUP);
    }

    /// Windows has no SIGPIPE: a write to a closed pipe fails and the caller handles it.
    pub fn end_quietly_on_closed_pipe() {}
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signals_by_name_and_back() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!signal(child.id().unwrap(), "NOPE"));
        assert!(signal(child.id().unwrap(), "TERM"));
        let status = child.wait().await.unwrap();
        assert_eq!(outcome(status), Err(("TERM".into(), false)));
        let status = tokio::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .status()
            .await
            .unwrap();
        assert_eq!(outcome(status), Ok(7));
    }
}

#[cfg(test)]
mod running_tests {
    /// This test process is running under its own name (longer than Linux's 15-character
    /// `comm`, so both paths are taken) and not under another; a pid that cannot exist is not.
    #[test]
    fn own_process_is_running_by_name() {
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_stem().unwrap().to_str().unwrap().to_string();
        assert!(name.len() > 15, "{name}");
        assert!(super::is_running(std::process::id(), &name));
        assert!(!super::is_running(std::process::id(), "not-this-one"));
        assert!(!super::is_running(u32::MAX - 1, &name));
    }
}
