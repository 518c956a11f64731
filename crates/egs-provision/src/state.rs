//! Where provisioning keeps its state, and the state itself: the layout below the state
//! directory (default `/var/lib/eryph/provisioning`, moved as a whole by `--state-dir`),
//! module semaphores, and `state.json`. Every write is atomic (temp file, fsync, rename).

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::modules::Stage;

/// How often a module runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    /// Every run.
    Always,
    /// Once per boot.
    PerBoot,
    /// Once per instance id.
    PerInstance,
    /// Once ever.
    Once,
}

/// How provisioning stands, as `state.json` and `status` spell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// A run is in progress, or stages are still to run in this boot.
    #[default]
    Running,
    /// Every stage ran, no module failed.
    Done,
    /// Every stage ran; a module (or the user-data) failed.
    Error,
    /// A script asked for a reboot; the next boot continues.
    RebootPending,
    /// No datasource: nothing to provision.
    Disabled,
}

impl RunStatus {
    /// The word `status` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Done => "done",
            RunStatus::Error => "error",
            RunStatus::RebootPending => "reboot-pending",
            RunStatus::Disabled => "disabled",
        }
    }
}

impl RunStatus {
    /// What `eryph.provisioning.state` says for it.
    pub fn kvp_state(self) -> egs_kvp::report::ProvisioningState {
        use egs_kvp::report::ProvisioningState;
        match self {
            RunStatus::Running => ProvisioningState::Running,
            RunStatus::Done | RunStatus::Disabled => ProvisioningState::Completed,
            RunStatus::Error => ProvisioningState::Failed,
            RunStatus::RebootPending => ProvisioningState::RebootPending,
        }
    }
}

/// How a module's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModuleResult {
    /// It ran (or had nothing to do).
    Done,
    /// It failed; the message says why.
    Failed,
    /// Its semaphore says it already ran.
    Skipped,
    /// A script asked for a reboot.
    Reboot,
}

impl ModuleResult {
    /// The word `status --long` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleResult::Done => "done",
            ModuleResult::Failed => "failed",
            ModuleResult::Skipped => "skipped",
            ModuleResult::Reboot => "reboot",
        }
    }
}

/// Paths of one system (the real one, or a sandbox root).
#[derive(Debug, Clone)]
pub struct Layout {
    /// `/`, or the sandbox root every effect goes below.
    pub root: PathBuf,
    /// The state directory.
    pub state: PathBuf,
    /// The log directory.
    pub logs: PathBuf,
}

/// A path that would leave the root, or cannot be resolved inside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{path}' {reason}")]
pub struct OutsideRoot {
    /// The path as given.
    pub path: String,
    /// Why it cannot be used.
    pub reason: String,
}

impl OutsideRoot {
    fn not_absolute(path: &str) -> OutsideRoot {
        OutsideRoot {
            path: path.to_string(),
            reason: "is not an absolute path inside the system root (no '..' allowed)".into(),
        }
    }
}

impl Layout {
    /// The layout for `root`; `state` overrides the state directory (all state moves). On
    /// Linux state is in `/var/lib/eryph/provisioning` and logs in
    /// `/var/log/eryph/guest-services`; on Windows both in `\ProgramData\eryph\provisioning`.
    pub fn new(root: &Path, state: Option<&Path>) -> Layout {
        // A path that cannot be resolved (a link loop) fails the same way when it is used.
        let below = |path: &str| {
            egs_sys::fs::below_root(root, Path::new(path)).unwrap_or_else(|_| root.join(path))
        };
        if egs_sys::WINDOWS {
            // As the original: `%ProgramData%\eryph\provisioning`, its logs inside.
            let state = state
                .map(Path::to_path_buf)
                .unwrap_or_else(|| below("ProgramData/eryph/provisioning"));
            return Layout {
                root: root.to_path_buf(),
                logs: state.join("logs"),
                state,
            };
        }
        Layout {
            root: root.to_path_buf(),
            state: state
                .map(Path::to_path_buf)
                .unwrap_or_else(|| below("var/lib/eryph/provisioning")),
            logs: below("var/log/eryph/guest-services"),
        }
    }

    /// The place of an absolute system path below the root. The one path-joining rule:
    /// only paths from the root (`/etc/x`; on Windows also `C:\x`, whose drive is the
    /// root's), no `..` components; below a sandbox root, symbolic links on the way are
    /// followed inside the root (`egs_sys::fs::resolve_in_root`), so the result is always
    /// below it, whatever links the root's image holds.
    pub fn host(&self, absolute: &str) -> Result<PathBuf, OutsideRoot> {
        let path = Path::new(absolute);
        if !path.has_root() || path.components().any(|c| c == Component::ParentDir) {
            return Err(OutsideRoot::not_absolute(absolute));
        }
        egs_sys::fs::below_root(&self.root, path).map_err(|e| OutsideRoot {
            path: absolute.to_string(),
            reason: format!("cannot be resolved inside the system root: {e}"),
        })
    }

    /// The directory of one instance.
    pub fn instance(&self, instance_id: &str) -> PathBuf {
        self.state
            .join("instances")
            .join(instance_id.replace(['/', '\0'], "_"))
    }

    /// The semaphore file of a module at a frequency (`None` for `always`).
    pub fn semaphore(
        &self,
        instance_id: &str,
        module: &str,
        frequency: Frequency,
    ) -> Option<PathBuf> {
        match frequency {
            Frequency::Always => None,
            Frequency::PerInstance => Some(
                self.instance(instance_id)
                    .join("sem")
                    .join(format!("config_{module}")),
            ),
            Frequency::PerBoot => {
                Some(self.state.join("sem").join(format!("config_{module}.boot")))
            }
            Frequency::Once => Some(self.state.join("sem").join(format!("config_{module}.once"))),
        }
    }

    /// `state.json`.
    pub fn state_file(&self) -> PathBuf {
        self.state.join("state.json")
    }
}

/// What a semaphore records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Semaphore {
    /// `done` or `failed`.
    pub result: ModuleResult,
    /// The boot it ran in.
    pub boot_id: String,
    /// When (Unix seconds).
    pub at: u64,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why state could not be read or written; names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the JSON it should be.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

impl StateError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> StateError {
        StateError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Writes JSON atomically, creating parent directories (0700 for state).
pub fn write_json<T: Serialize>(path: &Path, value: &T, mode: u32) -> Result<(), StateError> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent).map_err(|e| StateError::io(parent, e))?;
    }
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| StateError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    text.push(b'\n');
    egs_sys::fs::write_atomic(path, &text, mode).map_err(|e| StateError::io(path, e))
}

/// Creates a directory (and parents) readable only by root.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    if !path.is_dir() {
        std::fs::create_dir_all(path)?;
        egs_sys::fs::set_mode(path, 0o700)?;
    }
    Ok(())
}

/// Reads JSON written by [`write_json`]; a missing file is `None`, a corrupt one an error
/// naming the file.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, StateError> {
    match std::fs::read(path) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|source| StateError::Json {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError::io(path, e)),
    }
}

/// One module's result in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleRecord {
    /// Module name.
    pub name: String,
    /// Its stage.
    pub stage: Stage,
    /// How it ended.
    pub result: ModuleResult,
    /// Details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it started (Unix seconds, microsecond precision); absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<f64>,
    /// How long it ran, in seconds; absent when skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
}

/// One stage of a run in `state.json`, as `cloud-init analyze show` reports stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The stage (`init-local`, `init-network`, `modules-config`, `modules-final`).
    pub name: Stage,
    /// When it started (Unix seconds, microsecond precision).
    pub started: f64,
    /// How long it ran, in seconds.
    pub duration: f64,
}

/// A point in time as stored in `state.json`: Unix seconds with microseconds.
pub fn unix_seconds(at: std::time::SystemTime) -> f64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_micros() as f64) / 1e6)
        .unwrap_or(0.0)
}

/// Seconds since `start`, to the microsecond.
pub fn seconds_since(start: std::time::Instant) -> f64 {
    (start.elapsed().as_micros() as f64) / 1e6
}

/// `state.json`: what the last run did, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Where provisioning stands.
    pub status: RunStatus,
    /// The instance.
    pub instance_id: Option<String>,
    /// Which datasource and where.
    pub datasource: Option<String>,
    /// The boot of the last run.
    pub boot_id: String,
    /// Stages finished in this boot.
    pub stages_done: Vec<Stage>,
    /// When each stage of this boot ran and how long it took.
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// Seconds the last run spent finding the datasource and reading its user-data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datasource_seconds: Option<f64>,
    /// Per-module results of this boot's runs (a stage run on its own keeps the others').
    pub modules: Vec<ModuleRecord>,
    /// Errors, for people.
    pub errors: Vec<String>,
    /// Reboots requested by scripts for this instance so far.
    pub reboots: u32,
    /// Unix seconds of the last update.
    pub updated: u64,
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cloud-config's `/…` paths and Windows' `C:\…` paths both land below the root.
    #[test]
    fn paths_from_the_root_stay_below_it_on_every_os() {
        let root = std::env::temp_dir().join("sandbox");
        let l = Layout::new(&root, None);
        assert_eq!(
            l.host("/ProgramData/x.txt").unwrap(),
            root.join("ProgramData").join("x.txt")
        );
        assert!(l.host("ProgramData/x.txt").is_err());
        assert!(l.host("/a/../../x").is_err());
        if cfg!(windows) {
            assert_eq!(
                l.host(r"C:\ProgramData\x.txt").unwrap(),
                root.join("ProgramData").join("x.txt")
            );
            assert!(l.host(r"C:x.txt").is_err(), "drive-relative");
        }
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "POSIX paths; mapping them to Windows paths belongs to the Windows provisioning issue"
    )]
    fn paths_stay_below_the_root() {
        let l = Layout::new(Path::new("/sandbox"), None);
        assert_eq!(
            l.host("/etc/hosts").unwrap(),
            PathBuf::from("/sandbox/etc/hosts")
        );
        assert!(l.host("etc/hosts").is_err());
        assert!(l.host("/etc/../../x").is_err());
        assert_eq!(
            l.state,
            PathBuf::from("/sandbox/var/lib/eryph/provisioning")
        );
        let moved = Layout::new(Path::new("/"), Some(Path::new("/tmp/st")));
        assert_eq!(
            moved
                .semaphore("i-1", "runcmd", Frequency::PerInstance)
                .unwrap(),
            PathBuf::from("/tmp/st/instances/i-1/sem/config_runcmd")
        );
        assert_eq!(
            moved.semaphore("i/2", "x", Frequency::Once).unwrap(),
            PathBuf::from("/tmp/st/sem/config_x.once")
        );
        assert_eq!(
            moved.instance("a/b"),
            PathBuf::from("/tmp/st/instances/a_b")
        );
        assert!(moved.semaphore("i", "x", Frequency::Always).is_none());
    }

    #[test]
    fn json_round_trip_is_atomic_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deep/state.json");
        let state = RunState {
            status: RunStatus::Done,
            ..RunState::default()
        };
        write_json(&path, &state, 0o600).unwrap();
        assert_eq!(read_json::<RunState>(&path).unwrap().unwrap(), state);
        assert!(read_json::<RunState>(&dir.path().join("none"))
            .unwrap()
            .is_none());
        std::fs::write(&path, "{").unwrap();
        assert!(read_json::<RunState>(&path)
            .unwrap_err()
            .to_string()
            .contains("state.json"));
    }
}
