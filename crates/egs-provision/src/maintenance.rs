//! `reset` (forget provisioning state so the next run starts over) and `collect-logs` (a
//! zip of state and logs for a bug report — never user-data, scripts or semaphores, which
//! can hold secrets).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::state::{Layout, StateError};

/// What `reset` removes besides the instance state.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResetOptions {
    /// Also the logs.
    pub logs: bool,
    /// Also the `scripts/per-*` directories.
    pub scripts: bool,
    /// Also per-once semaphores (so once-modules run again).
    pub reset_once: bool,
    /// Keep per-boot semaphores.
    pub keep_per_boot: bool,
}

/// One path `reset` looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    /// The path.
    pub path: PathBuf,
    /// Whether it existed and was removed.
    pub removed: bool,
}

fn remove(path: &Path) -> std::io::Result<Removal> {
    let result = if path.is_dir() && !path.is_symlink() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Ok(()) => Ok(Removal {
            path: path.to_path_buf(),
            removed: true,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Removal {
            path: path.to_path_buf(),
            removed: false,
        }),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("{}: {e}", path.display()),
        )),
    }
}

/// Removes provisioning state: `state.json`, every instance's data and semaphores, per-boot
/// semaphores and markers (unless kept), and what the options add.
pub fn reset(layout: &Layout, options: ResetOptions) -> std::io::Result<Vec<Removal>> {
    let mut targets = vec![
        layout.state_file(),
        layout.state.join("instances"),
        layout.state.join("sandbox-actions.log"),
    ];
    let sem = layout.state.join("sem");
    for entry in std::fs::read_dir(&sem).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".boot") && !options.keep_per_boot)
            || (name.ends_with(".once") && options.reset_once)
        {
            targets.push(entry.path());
        }
    }
    let done = layout.state.join("scripts-done");
    for entry in std::fs::read_dir(&done).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.starts_with("boot-") && !options.keep_per_boot)
            || (name == "once" && options.reset_once)
        {
            targets.push(entry.path());
        }
    }
    if options.scripts {
        targets.push(layout.state.join("scripts"));
    }
    if options.logs {
        targets.push(layout.logs.clone());
    }
    targets.iter().map(|t| remove(t)).collect()
}

/// Writes a zip of `state.json`, the logs and a `version.txt` to `output` (mode 0600).
/// Returns the archive's entry names.
pub fn collect_logs(layout: &Layout, output: &Path) -> Result<Vec<String>, StateError> {
    let err =
        |e: &dyn std::fmt::Display| StateError::io(output, std::io::Error::other(e.to_string()));
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    if layout.state_file().is_file() {
        files.push(("state.json".into(), layout.state_file()));
    }
    let mut stack = vec![layout.logs.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else if path.is_file() {
                // Zip names separate with '/', whatever the OS does.
                let relative = path
                    .strip_prefix(&layout.logs)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((format!("logs/{relative}"), path));
            }
        }
    }
    files.sort();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(output)
        .map_err(|e| err(&e))?;
    egs_sys::fs::set_mode(output, 0o600).map_err(|e| err(&e))?;
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut names = Vec::new();
    for (name, path) in files {
        // A file that cannot be read (e.g. removed meanwhile) is left out, not fatal.
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        zip.start_file(name.as_str(), options)
            .map_err(|e| err(&e))?;
        zip.write_all(&data).map_err(|e| err(&e))?;
        names.push(name);
    }
    let version = format!(
        "egs-service {}\ncollected at {} (Unix time)\n",
        env!("CARGO_PKG_VERSION"),
        crate::state::now()
    );
    zip.start_file("version.txt", options)
        .map_err(|e| err(&e))?;
    zip.write_all(version.as_bytes()).map_err(|e| err(&e))?;
    names.push("version.txt".into());
    zip.finish().map_err(|e| err(&e))?;
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_removes_what_it_should_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), None);
        for f in [
            "state.json",
            "instances/i/sem/config_x",
            "sem/config_a.boot",
            "sem/config_b.once",
            "scripts/per-boot/s.sh",
            "scripts-done/boot-1/s.sh",
            "scripts-done/once/t.sh",
        ] {
            let p = layout.state.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        std::fs::create_dir_all(&layout.logs).unwrap();
        std::fs::write(layout.logs.join("provisioning.log"), "x").unwrap();
        let removed = reset(&layout, ResetOptions::default()).unwrap();
        assert!(removed.iter().filter(|r| r.removed).count() >= 4);
        assert!(!layout.state_file().exists() && !layout.state.join("instances").exists());
        assert!(
            !layout.state.join("sem/config_a.boot").exists()
                && !layout.state.join("scripts-done/boot-1").exists()
        );
        assert!(
            layout.state.join("sem/config_b.once").exists()
                && layout.state.join("scripts/per-boot/s.sh").exists()
        );
        assert!(layout.logs.join("provisioning.log").exists());
        reset(
            &layout,
            ResetOptions {
                logs: true,
                scripts: true,
                reset_once: true,
                keep_per_boot: false,
            },
        )
        .unwrap();
        assert!(
            !layout.state.join("sem/config_b.once").exists()
                && !layout.state.join("scripts").exists()
                && !layout.logs.exists()
        );
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "python3 reads the zip and modes are POSIX (Linux peers)"
    )]
    fn collect_logs_zips_state_and_logs_only() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), None);
        std::fs::create_dir_all(layout.logs.join("scripts")).unwrap();
        std::fs::write(layout.logs.join("provisioning.log"), "log").unwrap();
        std::fs::write(layout.logs.join("scripts/scripts_user-runcmd.log"), "out").unwrap();
        std::fs::create_dir_all(layout.instance("i")).unwrap();
        std::fs::write(layout.instance("i").join("user-data.txt"), "secret").unwrap();
        std::fs::write(layout.state_file(), "{}").unwrap();
        let out = dir.path().join("logs.zip");
        let names = collect_logs(&layout, &out).unwrap();
        assert_eq!(
            names,
            [
                "logs/provisioning.log",
                "logs/scripts/scripts_user-runcmd.log",
                "state.json",
                "version.txt"
            ]
        );
        let listing = std::process::Command::new("python3")
            .args([
                "-c",
                "import zipfile,sys; print(' '.join(zipfile.ZipFile(sys.argv[1]).namelist()))",
            ])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&listing.stdout).trim(),
            names.join(" ")
        );
        assert_eq!(egs_sys::fs::mode(&out).map(|m| m & 0o777), Some(0o600));
    }
}
