//! `write_files` (network stage, per instance) and `write_files_deferred` (final stage, per
//! instance, after users exist): content decoded by the model, mode applied after `chown`
//! so setuid bits survive, `append` adds to an existing file, default owner `root:root`.
//! On Windows guests paths are translated as the original translates them
//! ([`windows_path`]), and given modes and owners become NTFS access rules.

use egs_cloudconfig::schema::WriteFile;

use super::{Context, Module, ModuleResult, Outcome, Stage};
use crate::state::Frequency;

/// `write_files`.
pub const WRITE_FILES: Module = Module {
    name: "write_files",
    stage: Stage::Network,
    frequency: Frequency::PerInstance,
    run: |ctx| write(ctx, false),
};

/// `write_files_deferred`.
pub const WRITE_FILES_DEFERRED: Module = Module {
    name: "write_files_deferred",
    stage: Stage::Final,
    frequency: Frequency::PerInstance,
    run: |ctx| write(ctx, true),
};

fn write(ctx: &mut Context, deferred: bool) -> ModuleResult {
    let files: Vec<&WriteFile> = ctx
        .config
        .write_files
        .iter()
        .filter(|f| f.defer == deferred)
        .collect();
    if files.is_empty() {
        return Ok(Outcome::NothingToDo);
    }
    if ctx.system.is_windows() {
        return write_windows(ctx, &files);
    }
    for file in files {
        let owner = ctx.system.resolve_owner(&file.owner)?;
        let mut content = Vec::new();
        if file.append {
            content = ctx.system.read_file(&file.path)?.unwrap_or_default();
        }
        content.extend_from_slice(&file.content);
        let path = ctx
            .system
            .write_file(&file.path, &content, file.permissions, Some(owner))?;
        ctx.log.push(format!(
            "wrote {} ({} bytes, mode {:04o}, owner {})",
            path.display(),
            content.len(),
            file.permissions,
            file.owner
        ));
    }
    Ok(Outcome::Done)
}

/// A cloud-config path as a path on a Windows guest (`original-provisioning.md` §4.13):
/// `/home/<u>/…` → `/Users/<u>/…`, `/root/…` → `/Users/Administrator/…`, `/tmp/…` →
/// `/Windows/Temp/…`, `/var/…` → `/ProgramData/…`, other `/x/…` → `C:\x\…` (the
/// system drive, which a sandbox root stands for); `C:\…` and `C:/…` stay on their drive
/// only when it is `C:`; `..` anywhere, UNC names and other drives are refused.
pub fn windows_path(path: &str) -> Result<String, String> {
    let unified = path.replace('\\', "/");
    if unified.starts_with("//") {
        return Err(format!("path {path}: UNC paths are not written"));
    }
    if unified.split('/').any(|part| part == "..") {
        return Err(format!("path traversal: {path}"));
    }
    let rest = match unified.as_bytes() {
        [drive, b':', b'/', ..] if drive.eq_ignore_ascii_case(&b'c') => &unified[2..],
        [drive, b':', ..] => {
            return Err(format!(
                "path {path}: only the system drive C: is written ({}: is not)",
                *drive as char
            ))
        }
        [b'/', ..] => &unified[..],
        _ => return Err(format!("path {path}: not an absolute path")),
    };
    let mapped = if let Some(home) = rest.strip_prefix("/home/") {
        format!("/Users/{home}")
    } else if rest == "/root" || rest.starts_with("/root/") {
        format!("/Users/Administrator{}", &rest[5..])
    } else if rest == "/tmp" || rest.starts_with("/tmp/") {
        format!("/Windows/Temp{}", &rest[4..])
    } else if rest == "/var" || rest.starts_with("/var/") {
        format!("/ProgramData{}", &rest[4..])
    } else {
        rest.to_string()
    };
    Ok(mapped)
}

/// `write_files` on Windows: paths translated, content written or appended; a given
/// `permissions` becomes NTFS access rules (owner bits → the owner, group → Users, other
/// → Everyone, SYSTEM and Administrators full control) and a given `owner` the file's
/// owner (its user part), as the original maps them. Nothing is applied when neither is
/// given (cloud-init's `0644 root:root` defaults mean nothing on NTFS); a rule that cannot
/// be applied is a warning, as in the original.
fn write_windows(ctx: &mut Context, files: &[&WriteFile]) -> ModuleResult {
    for file in files {
        if file.path.trim().is_empty() {
            ctx.log
                .push("write_files: an entry without a path; skipped".into());
            continue;
        }
        let target = windows_path(&file.path).map_err(crate::system::SystemError::Input)?;
        let mut content = Vec::new();
        if file.append {
            content = ctx.system.read_file(&target)?.unwrap_or_default();
        }
        content.extend_from_slice(&file.content);
        let path = ctx
            .system
            .write_file(&target, &content, file.permissions, None)?;
        ctx.log.push(format!(
            "wrote {} ({} bytes)",
            path.display(),
            content.len()
        ));
        let mode = file.permissions_given.then_some(file.permissions);
        let owner = file
            .owner_given
            .then(|| file.owner.split(':').next().unwrap_or_default())
            .filter(|user| !user.is_empty());
        if mode.is_some() || owner.is_some() {
            if let Err(e) = ctx.system.set_windows_access(&target, mode, owner) {
                ctx.log.push(format!(
                    "warning: {}: permissions/owner not applied: {e}",
                    path.display()
                ));
            }
        }
    }
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::windows_path;

    #[test]
    fn unix_paths_map_to_windows_as_the_original_maps_them() {
        for (from, to) in [
            ("/ProgramData/marker.txt", "/ProgramData/marker.txt"),
            ("/home/alice/.profile", "/Users/alice/.profile"),
            ("/root/notes", "/Users/Administrator/notes"),
            ("/tmp/x", "/Windows/Temp/x"),
            ("/var/log/app.log", "/ProgramData/log/app.log"),
            ("/etc/app.conf", "/etc/app.conf"),
            (r"C:\Tools\run.cmd", "/Tools/run.cmd"),
            ("c:/tools/x", "/tools/x"),
        ] {
            assert_eq!(windows_path(from).as_deref(), Ok(to), "{from}");
        }
        assert_eq!(
            windows_path("/ProgramData/../Windows/x"),
            Err("path traversal: /ProgramData/../Windows/x".into())
        );
        assert!(windows_path(r"\\server\share\x")
            .unwrap_err()
            .contains("UNC"));
        assert!(windows_path("D:/x").unwrap_err().contains("D: is not"));
        assert!(windows_path("relative/x").is_err());
    }
}
