//! What datasources may look at on the machine: candidate block devices, the kernel
//! command line, SMBIOS strings and seed directories (on a Windows machine: its CD-ROM and
//! removable drives, SMBIOS through WMI). [`SystemEnvironment`] reads them from
//! the running system (or from below a sandbox root); tests and `--devices` name the
//! devices or image files to probe instead of scanning `/sys/class/block`.

use std::path::{Path, PathBuf};

/// The machine as datasources see it.
pub trait Environment {
    /// Devices or image files that may hold seed media, in probe order.
    fn candidate_devices(&self) -> Vec<PathBuf>;
    /// `/proc/cmdline`.
    fn kernel_cmdline(&self) -> Option<String>;
    /// SMBIOS system serial number (`/sys/class/dmi/id/product_serial`).
    fn smbios_serial(&self) -> Option<String>;
    /// SMBIOS system UUID (`/sys/class/dmi/id/product_uuid`), lower case.
    fn system_uuid(&self) -> Option<String>;
    /// A path of the system, below the sandbox root when there is one
    /// (e.g. `/var/lib/cloud/seed/nocloud`).
    fn path(&self, absolute: &str) -> PathBuf;
}

/// The running system, or a sandbox root standing in for it.
#[derive(Debug, Clone)]
pub struct SystemEnvironment {
    /// `/`, or the sandbox root.
    pub root: PathBuf,
    /// Devices/images to probe instead of scanning `/sys/class/block`.
    pub devices: Option<Vec<PathBuf>>,
}

impl SystemEnvironment {
    /// The running system.
    pub fn system() -> Self {
        Self {
            root: PathBuf::from("/"),
            devices: None,
        }
    }

    /// Whether this is a running Windows machine (not a sandbox root): its media and SMBIOS
    /// come from Windows' own interfaces, not from files below the root.
    fn windows_machine(&self) -> bool {
        egs_sys::WINDOWS && self.root == Path::new("/")
    }

    fn read(&self, absolute: &str) -> Option<String> {
        std::fs::read_to_string(self.path(absolute))
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

/// Block devices worth probing for seed media: every disk and partition except RAM,
/// zram and loop devices (loop devices back images that `--devices` names directly).
fn scan_block_devices(sys_class_block: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(sys_class_block) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("zram") && !n.starts_with("loop"))
        .collect();
    // Optical drives first: NoCloud and ConfigDrive media are usually CD images.
    names.sort_by_key(|n| (!n.starts_with("sr"), n.clone()));
    names
        .into_iter()
        .map(|n| PathBuf::from("/dev").join(n))
        .collect()
}

impl Environment for SystemEnvironment {
    /// `--devices`, else on Linux the block devices in sysfs (below the root), on Windows
    /// the CD-ROM and removable drives as raw volumes (the running system only: a sandbox
    /// root has no drives of its own).
    fn candidate_devices(&self) -> Vec<PathBuf> {
        match &self.devices {
            Some(d) => d.clone(),
            None if self.windows_machine() => egs_sys::volumes::removable(),
            None if egs_sys::WINDOWS => Vec::new(),
            None => scan_block_devices(&self.path("/sys/class/block")),
        }
    }

    fn kernel_cmdline(&self) -> Option<String> {
        self.read("/proc/cmdline")
    }

    fn smbios_serial(&self) -> Option<String> {
        if self.windows_machine() {
            return egs_sys::smbios::serial();
        }
        self.read("/sys/class/dmi/id/product_serial")
    }

    fn system_uuid(&self) -> Option<String> {
        if self.windows_machine() {
            return egs_sys::smbios::system_uuid();
        }
        self.read("/sys/class/dmi/id/product_uuid")
            .map(|s| s.to_lowercase())
    }

    fn path(&self, absolute: &str) -> PathBuf {
        self.root.join(absolute.trim_start_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_sys_class_block_below_the_root() {
        let root = tempfile::tempdir().unwrap();
        let block = root.path().join("sys/class/block");
        for name in ["vda", "vda1", "sr0", "loop0", "ram0"] {
            std::fs::create_dir_all(block.join(name)).unwrap();
        }
        std::fs::create_dir_all(root.path().join("proc")).unwrap();
        std::fs::write(
            root.path().join("proc/cmdline"),
            "root=/dev/vda1 ds=nocloud\n",
        )
        .unwrap();
        let env = SystemEnvironment {
            root: root.path().to_path_buf(),
            devices: None,
        };
        if egs_sys::WINDOWS {
            // Windows has no sysfs; a sandbox root has no drives of its own.
            assert!(env.candidate_devices().is_empty());
        } else {
            assert_eq!(
                env.candidate_devices(),
                [
                    PathBuf::from("/dev/sr0"),
                    PathBuf::from("/dev/vda"),
                    PathBuf::from("/dev/vda1")
                ]
            );
        }
        assert_eq!(
            env.kernel_cmdline().as_deref(),
            Some("root=/dev/vda1 ds=nocloud")
        );
        assert!(env.smbios_serial().is_none());
        assert_eq!(
            env.path("/var/lib/cloud/seed/nocloud"),
            root.path().join("var/lib/cloud/seed/nocloud")
        );
    }
}
