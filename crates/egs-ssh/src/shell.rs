//! Which shell a session runs, as the original chooses it, freshly for each session:
//! the KVP override (`eryph:guest-services:shell` / `shell-args`, External pool), then
//! `SHELL` / `SHELL_ARGS` sent with `env` (interactive sessions only), then the default.
//! On Linux the default is the service's `$SHELL`, else `/bin/bash`, else `/bin/sh`, as a
//! login shell (`-l`, which OpenSSH users expect: profile read, PATH set); on Windows it is
//! `powershell.exe -NoLogo` (Win32-OpenSSH users choose PowerShell as the default shell).
//! Commands (`exec`) run as `<shell> <flag> <command>` through the KVP override or the
//! default shell, never through the client's `SHELL`, and without the override's
//! arguments, as in the original; the Windows default runs them as
//! `powershell.exe -NoLogo -NoProfile -Command <command>`.

use std::path::Path;

use egs_kvp::store::{KvpStore, PoolId};

/// KVP key of the shell override.
pub const KVP_SHELL: &str = "eryph:guest-services:shell";
/// KVP key of the override's arguments.
pub const KVP_SHELL_ARGS: &str = "eryph:guest-services:shell-args";

/// A chosen shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shell {
    /// Absolute path of the program.
    pub program: String,
    /// Arguments for an interactive shell.
    pub args: Vec<String>,
}

/// The KVP override, if the External pool sets a non-blank shell.
pub fn kvp_override(kvp: Option<&dyn KvpStore>) -> Option<Shell> {
    let listing = kvp?.list(PoolId::External).ok()?;
    let get = |key: &str| listing.get(key).map(|v| v.trim().to_string());
    let program = get(KVP_SHELL).filter(|s| !s.is_empty())?;
    Some(Shell {
        program,
        args: split_args(&get(KVP_SHELL_ARGS).unwrap_or_default()),
    })
}

/// PowerShell, the default shell of Windows guests.
const POWERSHELL: &str = "powershell.exe";

/// The default shell for this service process.
pub fn default_shell() -> Shell {
    if egs_sys::WINDOWS {
        return Shell {
            program: POWERSHELL.into(),
            args: vec!["-NoLogo".into()],
        };
    }
    let program = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.trim().is_empty() && Path::new(s.trim()).is_absolute())
        .map(|s| s.trim().to_string())
        .or_else(|| {
            ["/bin/bash", "/bin/sh"]
                .iter()
                .find(|p| Path::new(p).exists())
                .map(|p| p.to_string())
        })
        .unwrap_or_else(|| "/bin/sh".into());
    Shell {
        program,
        args: vec!["-l".into()],
    }
}

/// The shell for an interactive session: KVP override > the client's `SHELL`/`SHELL_ARGS`
/// > default.
pub fn interactive(
    kvp: Option<Shell>,
    client_shell: Option<&str>,
    client_args: Option<&str>,
) -> Shell {
    if let Some(shell) = kvp {
        return shell;
    }
    if let Some(program) = client_shell.map(str::trim).filter(|s| !s.is_empty()) {
        return Shell {
            program: program.to_string(),
            args: split_args(client_args.unwrap_or("")),
        };
    }
    default_shell()
}

/// argv for `exec`: `[shell, flag, command]`, the flag chosen by the shell's file name
/// (`pwsh`/`powershell` → `-Command`, `cmd` → `/c`, else `-c`); the Windows default
/// shell also gets `-NoLogo -NoProfile`.
pub fn exec_argv(kvp: Option<Shell>, command: &str) -> Vec<String> {
    if kvp.is_none() && egs_sys::WINDOWS {
        return [POWERSHELL, "-NoLogo", "-NoProfile", "-Command", command]
            .map(String::from)
            .to_vec();
    }
    let program = kvp.map_or_else(|| default_shell().program, |s| s.program);
    let name = program
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let flag = match name.as_str() {
        "pwsh" | "powershell" => "-Command",
        "cmd" => "/c",
        _ => "-c",
    };
    vec![program, flag.into(), command.into()]
}

/// Splits an argument string: whitespace separates, single and double quotes group, a
/// backslash escapes the next character outside single quotes.
pub fn split_args(s: &str) -> Vec<String> {
    let (mut args, mut current, mut started) = (Vec::new(), String::new(), false);
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => current.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    current.push(n);
                }
                started = true;
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !current.is_empty() {
                    args.push(std::mem::take(&mut current));
                }
                started = false;
            }
            (None, c) => current.push(c),
        }
    }
    if started || !current.is_empty() {
        args.push(current);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_and_exec_flags() {
        let kvp = Shell {
            program: "/usr/bin/pwsh".into(),
            args: vec!["-NoLogo".into()],
        };
        assert_eq!(interactive(Some(kvp.clone()), Some("/bin/zsh"), None), kvp);
        let client = interactive(None, Some(" /bin/zsh "), Some("-i -x"));
        assert_eq!(client.program, "/bin/zsh");
        assert_eq!(client.args, ["-i", "-x"]);
        assert_eq!(interactive(None, Some("  "), None), default_shell());
        assert_eq!(
            exec_argv(Some(kvp), "Get-Date"),
            ["/usr/bin/pwsh", "-Command", "Get-Date"]
        );
        let cmd = Shell {
            program: "C:\\Windows\\System32\\CMD.EXE".into(),
            args: vec![],
        };
        assert_eq!(exec_argv(Some(cmd), "dir")[1], "/c");
        if egs_sys::WINDOWS {
            assert_eq!(
                exec_argv(None, "Get-Date"),
                [
                    "powershell.exe",
                    "-NoLogo",
                    "-NoProfile",
                    "-Command",
                    "Get-Date"
                ]
            );
            assert_eq!(default_shell().args, ["-NoLogo"]);
        } else {
            assert_eq!(exec_argv(None, "true")[1], "-c");
            assert_eq!(default_shell().args, ["-l"]);
        }
    }

    #[test]
    fn argument_splitting() {
        assert_eq!(split_args(""), Vec::<String>::new());
        assert_eq!(
            split_args("  -a  'b c' \"d \\\" e\" f\\ g ''"),
            ["-a", "b c", "d \" e", "f g", ""]
        );
    }

    #[test]
    fn kvp_override_from_a_pool_file() {
        let dir = tempfile::tempdir().unwrap();
        let pool = egs_kvp::files::PoolFiles::new(dir.path());
        assert_eq!(kvp_override(Some(&pool)), None, "no pool file");
        std::fs::write(pool.path(PoolId::External), b"").unwrap();
        pool.set(PoolId::External, KVP_SHELL_ARGS, "-NoLogo -NoProfile")
            .unwrap();
        assert_eq!(kvp_override(Some(&pool)), None, "args alone do nothing");
        pool.set(PoolId::External, KVP_SHELL, " /usr/bin/pwsh ")
            .unwrap();
        assert_eq!(
            kvp_override(Some(&pool)),
            Some(Shell {
                program: "/usr/bin/pwsh".into(),
                args: vec!["-NoLogo".into(), "-NoProfile".into()]
            })
        );
    }
}
