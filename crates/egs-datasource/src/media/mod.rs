//! Seed media: ISO9660 and FAT volumes read straight from an image file or block device
//! (never mounted, never written; in aligned blocks, so a raw Windows volume works too),
//! and seed directories.

pub mod aligned;
pub mod iso9660;

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use aligned::Aligned;
use iso9660::{is_iso9660, IsoError, IsoImage};

/// A device or image as the readers see it: read-only, in aligned blocks.
type Device = Aligned<File>;

/// Largest seed file read (meta-data, user-data, …).
pub const MAX_SEED_FILE: u64 = 16 * 1024 * 1024;

/// Why a volume or one of its files cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The device or image could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The device, image or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The ISO9660 file system is damaged.
    #[error("{path}: {source}")]
    Iso {
        /// The device or image.
        path: PathBuf,
        /// The cause.
        #[source]
        source: IsoError,
    },
    /// A seed file is larger than allowed.
    #[error("{path}: '{file}' is larger than the limit of {MAX_SEED_FILE} bytes")]
    TooLarge {
        /// The device, image or directory.
        path: PathBuf,
        /// The file.
        file: String,
    },
}

/// Lets `fatfs` read a device it can never write to.
struct ReadOnly(Device);

impl Read for ReadOnly {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ReadOnly {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "seed media are read-only",
        ))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for ReadOnly {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos)
    }
}

enum Kind {
    Iso(IsoImage<Device>),
    Fat(Box<fatfs::FileSystem<ReadOnly>>),
    Directory,
}

/// A readable seed volume.
pub struct Volume {
    path: PathBuf,
    label: Option<String>,
    kind: Kind,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("path", &self.path)
            .field("label", &self.label)
            .finish()
    }
}

/// Whether the first sector looks like a FAT boot sector.
fn is_fat(file: &mut Device) -> bool {
    let mut boot = [0u8; 512];
    if file.seek(SeekFrom::Start(0)).is_err() || file.read_exact(&mut boot).is_err() {
        return false;
    }
    boot[510..512] == [0x55, 0xaa]
        && (&boot[54..59] == b"FAT12" || &boot[54..59] == b"FAT16" || &boot[82..87] == b"FAT32")
}

impl Volume {
    /// Opens a device or image; `Ok(None)` when it holds neither ISO9660 nor FAT.
    pub fn open(path: &Path) -> Result<Option<Volume>, MediaError> {
        let io = |source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = Aligned::new(File::open(path).map_err(io)?);
        if is_iso9660(&mut file) {
            let iso = IsoImage::open(file).map_err(|source| MediaError::Iso {
                path: path.to_path_buf(),
                source,
            })?;
            return Ok(Some(Volume {
                path: path.to_path_buf(),
                label: Some(iso.label().to_string()),
                kind: Kind::Iso(iso),
            }));
        }
        if is_fat(&mut file) {
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            let fs = fatfs::FileSystem::new(ReadOnly(file), fatfs::FsOptions::new()).map_err(io)?;
            let label = match fs.read_volume_label_from_root_dir() {
                Ok(Some(l)) => l,
                _ => fs.volume_label(),
            };
            return Ok(Some(Volume {
                path: path.to_path_buf(),
                label: Some(label.trim_end().to_string()),
                kind: Kind::Fat(Box::new(fs)),
            }));
        }
        Ok(None)
    }

    /// A seed directory (`/var/lib/cloud/seed/nocloud`, …).
    pub fn directory(path: &Path) -> Volume {
        Volume {
            path: path.to_path_buf(),
            label: None,
            kind: Kind::Directory,
        }
    }

    /// Where the volume is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The volume label, if it has one.
    pub fn label(&self) -> Option<&str> {
        self.label.as_deref()
    }

    /// Whether the label is one of `labels` (case-insensitive, as cloud-init matches).
    pub fn has_label(&self, labels: &[&str]) -> bool {
        self.label
            .as_deref()
            .is_some_and(|l| labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
    }

    /// The content of `file` (a `/`-separated path), `None` when absent.
    pub fn read(&mut self, file: &str) -> Result<Option<Vec<u8>>, MediaError> {
        let too_large = || MediaError::TooLarge {
            path: self.path.clone(),
            file: file.to_string(),
        };
        match &mut self.kind {
            Kind::Iso(iso) => match iso.read_file(file, MAX_SEED_FILE) {
                Ok(data) => Ok(data),
                Err(IsoError::TooLarge { .. }) => Err(too_large()),
                Err(source) => Err(MediaError::Iso {
                    path: self.path.clone(),
                    source,
                }),
            },
            Kind::Fat(fs) => {
                let mut handle = match fs.root_dir().open_file(file.trim_start_matches('/')) {
                    Ok(h) => h,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(MediaError::Io {
                            path: self.path.clone(),
                            source,
                        })
                    }
                };
                let mut data = Vec::new();
                (&mut handle)
                    .take(MAX_SEED_FILE + 1)
                    .read_to_end(&mut data)
                    .map_err(|source| MediaError::Io {
                        path: self.path.clone(),
                        source,
                    })?;
                if data.len() as u64 > MAX_SEED_FILE {
                    return Err(too_large());
                }
                Ok(Some(data))
            }
            Kind::Directory => {
                let full = self.path.join(file.trim_start_matches('/'));
                let handle = match File::open(&full) {
                    Ok(h) => h,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => return Err(MediaError::Io { path: full, source }),
                };
                if handle.metadata().is_ok_and(|m| m.is_dir()) {
                    return Ok(None);
                }
                let mut data = Vec::new();
                handle
                    .take(MAX_SEED_FILE + 1)
                    .read_to_end(&mut data)
                    .map_err(|source| MediaError::Io { path: full, source })?;
                if data.len() as u64 > MAX_SEED_FILE {
                    return Err(too_large());
                }
                Ok(Some(data))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn run(cmd: &mut Command) {
        let status = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(status.success(), "{cmd:?}");
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "seed images are made by genisoimage, mkfs.vfat and mtools (Linux peers)"
    )]
    fn fat_images_made_by_mkfs_vfat_and_mtools() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("seed.img");
        let src = dir.path().join("meta-data");
        std::fs::write(&src, "instance-id: iid-fat\n").unwrap();
        run(Command::new("mkfs.vfat")
            .args(["-C", "-n", "CIDATA"])
            .arg(&img)
            .arg("1024")
            .stdout(std::process::Stdio::null()));
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg("::meta-data"));
        run(Command::new("mmd").arg("-i").arg(&img).arg("::openstack"));
        run(Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&src)
            .arg("::openstack/user_data"));
        let before = std::fs::read(&img).unwrap();
        let mut v = Volume::open(&img).unwrap().expect("a FAT volume");
        assert!(v.has_label(&["cidata"]));
        assert_eq!(
            v.read("meta-data").unwrap().unwrap(),
            b"instance-id: iid-fat\n"
        );
        assert_eq!(
            v.read("/openstack/user_data").unwrap().unwrap(),
            b"instance-id: iid-fat\n"
        );
        assert!(v.read("user-data").unwrap().is_none());
        drop(v);
        assert_eq!(std::fs::read(&img).unwrap(), before, "reading never writes");
    }

    #[test]
    fn unknown_data_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![0u8; 100_000]).unwrap();
        assert!(Volume::open(&junk).unwrap().is_none());
        assert!(Volume::open(&dir.path().join("missing")).is_err());
        std::fs::write(dir.path().join("meta-data"), "x").unwrap();
        let mut v = Volume::directory(dir.path());
        assert_eq!(v.read("meta-data").unwrap().unwrap(), b"x");
        assert!(v.read("user-data").unwrap().is_none());
        assert!(v.label().is_none());
    }
}
