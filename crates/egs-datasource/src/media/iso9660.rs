//! A small, bounded ISO9660 reader for seed media (NoCloud `cidata`, ConfigDrive
//! `config-2`, Azure provisioning media): the volume label and files by path, read straight
//! from an image file or block device without mounting. Names come from Rock Ridge (`NM`)
//! when present, else Joliet, else plain ISO9660 (`NAME.EXT;1`, matched case-insensitively).

use std::io::{Read, Seek, SeekFrom};

/// ISO9660 logical sector size.
const SECTOR: u64 = 2048;
/// Largest directory read (bytes).
const MAX_DIRECTORY: u64 = 1024 * 1024;
/// Deepest path followed.
const MAX_PATH_DEPTH: usize = 16;

/// Why an image cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    /// Reading failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// Not ISO9660, or damaged.
    #[error("not a valid ISO9660 image: {0}")]
    Invalid(String),
    /// A file is larger than allowed.
    #[error("'{path}' is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// Whether the data looks like ISO9660 (the `CD001` signature of sector 16).
pub fn is_iso9660<R: Read + Seek>(reader: &mut R) -> bool {
    let mut sig = [0u8; 6];
    reader.seek(SeekFrom::Start(16 * SECTOR)).is_ok()
        && reader.read_exact(&mut sig).is_ok()
        && &sig[1..6] == b"CD001"
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    RockRidge,
    Joliet,
    Plain,
}

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    extent: u32,
    size: u32,
    directory: bool,
}

/// An opened ISO9660 image.
pub struct IsoImage<R> {
    reader: R,
    label: String,
    root: Entry,
    naming: Naming,
}

impl<R: Read + Seek> IsoImage<R> {
    /// Reads the volume descriptors.
    pub fn open(mut reader: R) -> Result<IsoImage<R>, IsoError> {
        let mut primary: Option<[u8; 2048]> = None;
        let mut joliet: Option<[u8; 2048]> = None;
        for sector in 16..64u64 {
            let mut d = [0u8; 2048];
            reader.seek(SeekFrom::Start(sector * SECTOR))?;
            reader.read_exact(&mut d)?;
            if &d[1..6] != b"CD001" {
                return Err(IsoError::Invalid(format!(
                    "no volume descriptor at sector {sector}"
                )));
            }
            match d[0] {
                1 if primary.is_none() => primary = Some(d),
                2 if matches!(&d[88..91], b"%/@" | b"%/C" | b"%/E") => joliet = Some(d),
                255 => break,
                _ => {}
            }
        }
        let primary =
            primary.ok_or_else(|| IsoError::Invalid("no primary volume descriptor".into()))?;
        let block = u16::from_le_bytes([primary[128], primary[129]]);
        if u64::from(block) != SECTOR {
            return Err(IsoError::Invalid(format!(
                "logical block size {block} is not 2048"
            )));
        }
        let label = String::from_utf8_lossy(&primary[40..72])
            .trim_end()
            .to_string();
        let plain_root = parse_record(&primary[156..190], Naming::Plain)
            .ok_or_else(|| IsoError::Invalid("bad root directory record".into()))?;
        let mut image = IsoImage {
            reader,
            label,
            root: plain_root.0,
            naming: Naming::Plain,
        };
        if image.root_has_rock_ridge()? {
            image.naming = Naming::RockRidge;
        } else if let Some(j) = joliet {
            image.root = parse_record(&j[156..190], Naming::Joliet)
                .ok_or_else(|| IsoError::Invalid("bad Joliet root directory record".into()))?
                .0;
            image.naming = Naming::Joliet;
            let joliet_label = decode_ucs2(&j[40..72]);
            if !joliet_label.trim().is_empty() {
                image.label = joliet_label.trim_end().to_string();
            }
        }
        Ok(image)
    }

    /// The volume label (Joliet's when present, as `blkid` reports it).
    pub fn label(&self) -> &str {
        &self.label
    }

    fn root_has_rock_ridge(&mut self) -> Result<bool, IsoError> {
        let raw = self.read_extent(self.root.extent, self.root.size.min(SECTOR as u32))?;
        let len = raw.first().copied().unwrap_or(0) as usize;
        if len < 34 || len > raw.len() {
            return Ok(false);
        }
        let name_len = raw[32] as usize;
        let sua_start = 33 + name_len + usize::from(name_len % 2 == 0);
        Ok(raw
            .get(sua_start..len)
            .is_some_and(|sua| sua.starts_with(b"SP") && sua.get(4..6) == Some(&[0xbe, 0xef])))
    }

    fn read_extent(&mut self, extent: u32, size: u32) -> Result<Vec<u8>, IsoError> {
        let mut data = vec![0u8; size as usize];
        self.reader
            .seek(SeekFrom::Start(u64::from(extent) * SECTOR))?;
        self.reader.read_exact(&mut data)?;
        Ok(data)
    }

    fn list(&mut self, dir: &Entry) -> Result<Vec<Entry>, IsoError> {
        if u64::from(dir.size) > MAX_DIRECTORY {
            return Err(IsoError::Invalid(format!(
                "directory of {} bytes is too large",
                dir.size
            )));
        }
        let data = self.read_extent(dir.extent, dir.size)?;
        let mut entries = Vec::new();
        let mut offset = 0usize;
        while offset < data.len() {
            let len = data[offset] as usize;
            if len == 0 {
                // Records do not cross sectors: continue at the next one.
                offset = (offset / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            let Some(record) = data.get(offset..offset + len) else {
                return Err(IsoError::Invalid(format!(
                    "directory record at {offset} runs past the directory"
                )));
            };
            if let Some((entry, special)) = parse_record(record, self.naming) {
                if !special {
                    entries.push(entry);
                }
            }
            offset += len;
        }
        Ok(entries)
    }

    fn find(&mut self, path: &str) -> Result<Option<Entry>, IsoError> {
        let mut current = self.root.clone();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() > MAX_PATH_DEPTH {
            return Ok(None);
        }
        for (i, part) in parts.iter().enumerate() {
            if !current.directory {
                return Ok(None);
            }
            let entries = self.list(&current)?;
            let naming = self.naming;
            let found = entries.into_iter().find(|e| match naming {
                Naming::Plain => e.name.eq_ignore_ascii_case(part),
                _ => e.name == *part,
            });
            match found {
                Some(e) if i + 1 == parts.len() || e.directory => current = e,
                _ => return Ok(None),
            }
        }
        Ok(Some(current))
    }

    /// The content of the file at `path` (`/`-separated), `None` when absent.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, IsoError> {
        let Some(entry) = self.find(path)? else {
            return Ok(None);
        };
        if entry.directory {
            return Ok(None);
        }
        if u64::from(entry.size) > limit {
            return Err(IsoError::TooLarge {
                path: path.to_string(),
                size: entry.size.into(),
                limit,
            });
        }
        self.read_extent(entry.extent, entry.size).map(Some)
    }
}

fn decode_ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Parses one directory record; the flag marks `.` and `..`.
fn parse_record(record: &[u8], naming: Naming) -> Option<(Entry, bool)> {
    if record.len() < 34 {
        return None;
    }
    let extent = u32::from_le_bytes(record[2..6].try_into().ok()?);
    let size = u32::from_le_bytes(record[10..14].try_into().ok()?);
    let directory = record[25] & 0x02 != 0;
    let name_len = record[32] as usize;
    let raw_name = record.get(33..33 + name_len)?;
    let special = name_len == 1 && (raw_name[0] == 0 || raw_name[0] == 1);
    let mut name = match naming {
        Naming::Joliet => decode_ucs2(raw_name),
        _ => String::from_utf8_lossy(raw_name).into_owned(),
    };
    if naming != Naming::RockRidge || !directory {
        if let Some(stripped) = name.split(';').next() {
            name = stripped.trim_end_matches('.').to_string();
        }
    }
    if naming == Naming::RockRidge {
        let sua_start = 33 + name_len + usize::from(name_len % 2 == 0);
        if let Some(rr) = record.get(sua_start..).and_then(rock_ridge_name) {
            name = rr;
        }
    }
    Some((
        Entry {
            name,
            extent,
            size,
            directory,
        },
        special,
    ))
}

/// The Rock Ridge alternate name (`NM` entries, continued while their flag says so).
fn rock_ridge_name(mut sua: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    while sua.len() >= 4 {
        let len = sua[2] as usize;
        if len < 4 || len > sua.len() {
            break;
        }
        if &sua[..2] == b"NM" && len >= 5 {
            found = true;
            name.extend_from_slice(&sua[5..len]);
            if sua[4] & 0x01 == 0 {
                break;
            }
        }
        sua = &sua[len..];
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn image(tool: &[&str], label: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("openstack/latest")).unwrap();
        std::fs::write(src.join("meta-data"), "instance-id: iid-1\n").unwrap();
        std::fs::write(src.join("user-data"), "#cloud-config\nhostname: x\n").unwrap();
        std::fs::write(
            src.join("openstack/latest/meta_data.json"),
            "{\"uuid\": \"u\"}",
        )
        .unwrap();
        let out = dir.path().join("seed.iso");
        let status = Command::new(tool[0])
            .args(&tool[1..])
            .args(["-o", out.to_str().unwrap(), "-V", label])
            .arg(&src)
            .status()
            .unwrap_or_else(|e| panic!("{} is needed to build test images: {e}", tool[0]));
        assert!(status.success());
        (dir, out)
    }

    fn read(path: &std::path::Path, file: &str) -> Option<Vec<u8>> {
        let mut iso = IsoImage::open(std::fs::File::open(path).unwrap()).unwrap();
        iso.read_file(file, 1 << 20).unwrap()
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "seed images are made by genisoimage, mkfs.vfat and mtools (Linux peers)"
    )]
    fn reads_rock_ridge_joliet_and_plain_images() {
        for tool in [
            &["genisoimage", "-quiet", "-joliet", "-rock"][..],
            &["genisoimage", "-quiet", "-joliet"][..],
            &["xorriso", "-as", "mkisofs", "-quiet", "-R", "-J"][..],
        ] {
            let (_d, path) = image(tool, "cidata");
            let mut f = std::fs::File::open(&path).unwrap();
            assert!(is_iso9660(&mut f));
            let iso = IsoImage::open(f).unwrap();
            assert_eq!(iso.label(), "cidata", "{tool:?}");
            assert_eq!(
                read(&path, "meta-data").unwrap(),
                b"instance-id: iid-1\n",
                "{tool:?}"
            );
            assert_eq!(
                read(&path, "/openstack/latest/meta_data.json").unwrap(),
                b"{\"uuid\": \"u\"}"
            );
            assert!(read(&path, "vendor-data").is_none());
            assert!(
                read(&path, "openstack").is_none(),
                "directories are not files"
            );
        }
        // Without extensions names are 8.3 upper case; lookups ignore case.
        let (_d, path) = image(&["genisoimage", "-quiet"], "CONFIG-2");
        assert_eq!(
            IsoImage::open(std::fs::File::open(&path).unwrap())
                .unwrap()
                .label(),
            "CONFIG-2"
        );
        assert_eq!(read(&path, "META_DAT").unwrap(), b"instance-id: iid-1\n");
    }

    #[test]
    #[cfg_attr(
        not(unix),
        ignore = "seed images are made by genisoimage, mkfs.vfat and mtools (Linux peers)"
    )]
    fn damaged_images_are_errors_not_panics() {
        let (_d, path) = image(&["genisoimage", "-quiet", "-joliet", "-rock"], "cidata");
        let data = std::fs::read(&path).unwrap();
        assert!(IsoImage::open(std::io::Cursor::new(&data[..16 * 2048 + 100])).is_err());
        assert!(!is_iso9660(&mut std::io::Cursor::new(vec![0u8; 40_000])));
        let mut iso = IsoImage::open(std::io::Cursor::new(data.clone())).unwrap();
        assert!(matches!(
            iso.read_file("user-data", 4),
            Err(IsoError::TooLarge { .. })
        ));
        // Flip bytes all over the directory area: every outcome is Ok or Err.
        for i in (17 * 2048..data.len().min(40 * 2048)).step_by(97) {
            let mut broken = data.clone();
            broken[i] ^= 0xff;
            if let Ok(mut iso) = IsoImage::open(std::io::Cursor::new(broken)) {
                let _ = iso.read_file("meta-data", 1 << 20);
                let _ = iso.read_file("openstack/latest/meta_data.json", 1 << 20);
            }
        }
    }
}
