//! Applying a configuration on a system: choose the renderer, fall back to DHCP on the
//! first interface when the datasource gave none, write the files atomically under a root.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::render::networkd_devices::DROP_IN;
use crate::render::{render, Fidelity, Renderer, NETWORKD_DIR};
use crate::system::{self, SystemInterface};
use crate::{interpret, NetConfigError, NetworkConfig};

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Files were written.
    Written {
        /// The renderer used.
        renderer: Renderer,
        /// Where the configuration came from (the datasource's input or the fallback).
        source: String,
        /// Paths written, relative to the root.
        files: Vec<String>,
        /// Paths of earlier renders removed, relative to the root.
        removed: Vec<String>,
        /// Notes (skipped commands, unknown link types).
        warnings: Vec<String>,
    },
    /// Settings were applied to the running system (Windows: `netsh` and the registry).
    Applied {
        /// Where the configuration came from.
        source: String,
        /// What was done, one line each (see `windows::Step::describe`).
        steps: Vec<String>,
        /// Entries skipped and options not supported, for the log.
        warnings: Vec<String>,
    },
    /// The configuration says `config: disabled`.
    Disabled,
    /// No configuration and no interface to fall back to.
    NothingToConfigure,
}

/// Why [`apply`] failed.
#[derive(Debug)]
pub enum ApplyError {
    /// The configuration is wrong.
    Config(NetConfigError),
    /// No network stack that EGS can configure is installed.
    NoRenderer,
    /// A file could not be written.
    Io(PathBuf, io::Error),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Config(e) => e.fmt(f),
            ApplyError::NoRenderer => f.write_str(
                "no supported network stack found (netplan, systemd-networkd or ifupdown)",
            ),
            ApplyError::Io(path, e) => write!(f, "{}: {e}", path.display()),
        }
    }
}

impl std::error::Error for ApplyError {}

/// Renders `config` (or, when `None`, the fallback for the system's first interface) with
/// `renderer` (or the one the system uses) and writes the files under `root`.
///
/// `interfaces` are the system's ([`system::interfaces`]), read once by the caller, which
/// needed them to load the configuration too.
pub fn apply(
    root: &Path,
    config: Option<NetworkConfig>,
    renderer: Option<Renderer>,
    interfaces: &[SystemInterface],
) -> Result<Outcome, ApplyError> {
    let config = match config {
        Some(config) if config.is_disabled() => return Ok(Outcome::Disabled),
        Some(config) => config,
        None => match system::fallback_interface(interfaces) {
            Some((name, mac)) => NetworkConfig::fallback(&name, &mac),
            None => return Ok(Outcome::NothingToConfigure),
        },
    };
    let renderer = match renderer {
        Some(r) => r,
        None => system::detect_renderer(root).ok_or(ApplyError::NoRenderer)?,
    };
    let macs = system::mac_names(interfaces);
    let state =
        interpret(&config, renderer, Fidelity::Complete, &macs).map_err(ApplyError::Config)?;
    let files = render(&state, renderer, Fidelity::Complete);
    let mut written = Vec::new();
    for file in &files {
        let path = below(root, &file.path)?;
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| ApplyError::Io(parent.to_path_buf(), e))?;
        }
        egs_sys::fs::write_atomic(&path, file.contents.as_bytes(), file.mode)
            .map_err(|e| ApplyError::Io(path.clone(), e))?;
        written.push(file.path.clone());
    }
    let removed = if renderer == Renderer::Networkd {
        remove_stale_networkd(root, &written)?
    } else {
        Vec::new()
    };
    Ok(Outcome::Written {
        renderer,
        source: config.input.clone(),
        files: written,
        removed,
        warnings: state.warnings,
    })
}

/// Where a rendered file's root-relative path lands: below a sandbox root, symbolic links
/// are followed inside it (a link in the image cannot send a file outside); the running
/// system's links are its own.
fn below(root: &Path, relative: &str) -> Result<PathBuf, ApplyError> {
    egs_sys::fs::below_root(root, Path::new(relative))
        .map_err(|e| ApplyError::Io(root.join(relative), e))
}

/// Files of an earlier instance's render that this render did not write (an interface
/// the new configuration no longer has would otherwise stay configured): `10-cloud-init-*`
/// `.network`, `.netdev` and `.link` files and our membership drop-ins.
fn remove_stale_networkd(root: &Path, written: &[String]) -> Result<Vec<String>, ApplyError> {
    let dir = below(root, NETWORKD_DIR)?;
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    let mut remove = |path: PathBuf, relative: String| -> Result<(), ApplyError> {
        if !written.contains(&relative) {
            fs::remove_file(&path).map_err(|e| ApplyError::Io(path, e))?;
            removed.push(relative);
        }
        Ok(())
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("10-cloud-init-") {
            continue;
        }
        if name.ends_with(".network.d") {
            let drop_in = entry.path().join(DROP_IN);
            if drop_in.is_file() {
                remove(drop_in, format!("{NETWORKD_DIR}/{name}/{DROP_IN}"))?;
                // Only empty directories go; someone else's drop-ins stay.
                let _ = fs::remove_dir(entry.path());
            }
        } else if [".network", ".netdev", ".link"]
            .iter()
            .any(|ext| name.ends_with(ext))
        {
            remove(entry.path(), format!("{NETWORKD_DIR}/{name}"))?;
        }
    }
    removed.sort();
    Ok(removed)
}
