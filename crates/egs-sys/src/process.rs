//! Processes EGS started (SSH sessions): delivery of signals by name, how one ended, and
//! ending a whole process tree. Unix: signals and process groups. Windows has no signals:
//! only `KILL` is delivered (as termination), and a tree is ended with `taskkill /T`.

pub use imp::{end_quietly_on_closed_pipe, kill_group, outcome, own_process_group, signal};

#[cfg(unix)]
mod imp {
    use std::os::unix::process::ExitStatusExt;

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
