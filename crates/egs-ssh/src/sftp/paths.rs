//! SFTP names and local paths.
//!
//! On Unix an SFTP name is the path itself, relative names starting at the home. On
//! Windows names look as Win32-OpenSSH's `sftp-server` presents them: `/C:/Users/x/file`,
//! forward slashes, the drive as the first component. Clients may also send `C:/x`,
//! `C:\x` or backslashes anywhere; a relative name starts at the home; `/` is a virtual
//! directory whose entries are the drives (`C:`, `D:`, …). UNC names (`//server/share`),
//! device names and colons beyond the drive (alternate data streams) are refused, so a
//! name can only mean a plain file on a local drive.
//!
//! Both styles are plain string work, so both are tested on every OS.

use std::path::{Path, PathBuf};

/// How names map to paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// The name is the path.
    Unix,
    /// Win32-OpenSSH's names: `/C:/dir/file`.
    Windows,
}

impl Style {
    /// This OS's style.
    pub const NATIVE: Style = if egs_sys::WINDOWS {
        Style::Windows
    } else {
        Style::Unix
    };
}

/// What a name stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Local {
    /// A path on the local file system.
    Path(PathBuf),
    /// Windows' `/`: the list of drives.
    Drives,
}

/// Maps an SFTP name to what it stands for; `home` is where relative names start.
pub fn to_local(style: Style, home: &Path, name: &str) -> Result<Local, String> {
    match style {
        Style::Unix if name.is_empty() => Ok(Local::Path(home.to_path_buf())),
        Style::Unix => Ok(Local::Path(home.join(name))),
        Style::Windows => windows_local(home, name),
    }
}

/// The SFTP name of a local path (what `realpath` and `readlink` answer).
pub fn to_name(style: Style, path: &Path) -> String {
    let text = path.to_string_lossy();
    match style {
        Style::Unix => text.into_owned(),
        Style::Windows => {
            // std's canonical paths are verbatim (`\\?\C:\x`); the name is `/C:/x`.
            let plain = text.strip_prefix(r"\\?\").unwrap_or(&text);
            let slashed = plain.replace('\\', "/");
            match drive_of(&slashed) {
                Some(_) => format!("/{}", slashed.trim_end_matches('/')),
                None => slashed,
            }
        }
    }
}

/// The drive letter a name starts with (`C:` followed by nothing or a separator).
fn drive_of(name: &str) -> Option<char> {
    let mut chars = name.chars();
    let (letter, colon, next) = (chars.next()?, chars.next()?, chars.next());
    (letter.is_ascii_alphabetic() && colon == ':' && matches!(next, None | Some('/')))
        .then(|| letter.to_ascii_uppercase())
}

/// Names DOS reserves in every directory.
fn is_device(component: &str) -> bool {
    let stem = component
        .split('.')
        .next()
        .unwrap_or("")
        .trim_end()
        .to_ascii_uppercase();
    matches!(
        stem.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || ((stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit())
}

/// `C:rest` or `/C:rest` as (drive, rest).
fn split_drive(slashed: &str) -> Option<(char, &str)> {
    if let Some(drive) = drive_of(slashed) {
        return Some((drive, &slashed[2..]));
    }
    let unrooted = slashed.strip_prefix('/')?;
    drive_of(unrooted).map(|drive| (drive, &unrooted[2..]))
}

fn windows_local(home: &Path, name: &str) -> Result<Local, String> {
    let slashed = name.replace('\\', "/");
    if slashed.starts_with("//") && slashed.trim_start_matches('/').contains(|c| c != '/') {
        return Err(format!("{name}: network (UNC) names are not served"));
    }
    let home_name = to_name(Style::Windows, home);
    let relative = format!("{}/{slashed}", home_name.trim_end_matches('/'));
    let (drive, rest) = match split_drive(&slashed) {
        Some(split) => split,
        None if slashed.starts_with('/') && slashed.trim_matches('/').is_empty() => {
            return Ok(Local::Drives);
        }
        None if slashed.starts_with('/') => {
            return Err(format!(
                "{name}: not on a drive (names start with a drive, as /C:/Users)"
            ));
        }
        None => split_drive(&relative)
            .ok_or_else(|| format!("{name}: the home {home_name} is not on a drive"))?,
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in rest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part if part.contains(':') => {
                return Err(format!(
                    "{name}: ':' only follows a drive letter (no alternate data streams)"
                ));
            }
            part if is_device(part) => {
                return Err(format!("{name}: '{part}' is a device name"));
            }
            part => parts.push(part),
        }
    }
    Ok(Local::Path(PathBuf::from(format!(
        "{drive}:\\{}",
        parts.join("\\")
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(name: &str) -> Result<String, String> {
        let home = Path::new(r"C:\Windows\system32\config\systemprofile");
        to_local(Style::Windows, home, name).map(|local| match local {
            Local::Path(p) => p.to_string_lossy().into_owned(),
            Local::Drives => "<drives>".into(),
        })
    }

    #[test]
    fn windows_names_as_win32_openssh_presents_them() {
        let cases = [
            ("/C:/Users/egs/file.txt", r"C:\Users\egs\file.txt"),
            ("/c:/Users/", r"C:\Users"),
            ("/D:", r"D:\"),
            ("/D:/", r"D:\"),
            ("C:/ProgramData/x", r"C:\ProgramData\x"),
            (r"C:\ProgramData\x", r"C:\ProgramData\x"),
            (r"/C:\a\..\b\.\c", r"C:\b\c"),
            ("/C:/../../x", r"C:\x"),
            ("", r"C:\Windows\system32\config\systemprofile"),
            (".", r"C:\Windows\system32\config\systemprofile"),
            ("file", r"C:\Windows\system32\config\systemprofile\file"),
            (r"..\..\x", r"C:\Windows\system32\x"),
            ("/", "<drives>"),
            ("//", "<drives>"),
        ];
        for (name, want) in cases {
            assert_eq!(windows(name).as_deref(), Ok(want), "{name}");
        }
    }

    #[test]
    fn windows_names_that_are_not_plain_local_files_are_refused() {
        for name in [
            "/Users/x",
            "//server/share/x",
            r"\\server\share",
            r"\\?\C:\x",
            "/C:/x/file.txt:hidden",
            "/C:/x/NUL",
            "/C:/x/com1.txt",
            "/C:/x/CONOUT$",
            "C:relative",
        ] {
            let refused = windows(name);
            assert!(refused.is_err(), "{name}: {refused:?}");
            assert!(refused.unwrap_err().starts_with(name), "names the input");
        }
        assert_eq!(
            windows("/C:/x/console.txt").as_deref(),
            Ok(r"C:\x\console.txt")
        );
    }

    #[test]
    fn local_paths_become_names_again() {
        for (path, name) in [
            (r"C:\Users\egs", "/C:/Users/egs"),
            (r"\\?\C:\Users\egs", "/C:/Users/egs"),
            (r"C:\", "/C:"),
            (r"Z:\tmp\x", "/Z:/tmp/x"),
        ] {
            assert_eq!(to_name(Style::Windows, Path::new(path)), name);
            assert_eq!(
                windows(name).as_deref(),
                Ok(path.trim_start_matches(r"\\?\"))
            );
        }
        assert_eq!(to_name(Style::Unix, Path::new("/home/egs")), "/home/egs");
    }

    #[test]
    fn unix_names_are_paths() {
        let home = Path::new("/root");
        assert_eq!(
            to_local(Style::Unix, home, ""),
            Ok(Local::Path("/root".into()))
        );
        assert_eq!(
            to_local(Style::Unix, home, "a/b"),
            Ok(Local::Path("/root/a/b".into()))
        );
        assert_eq!(
            to_local(Style::Unix, home, "/etc/x"),
            Ok(Local::Path("/etc/x".into()))
        );
    }
}
