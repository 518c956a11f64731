//! Linux guest KVP: the pool files `hv_kvp_daemon` relays to the host
//! (`/var/lib/hyperv/.kvp_pool_N`), records as in [`crate::record`], no header.
//!
//! Every change takes both the `fcntl` lock `hv_kvp_daemon` uses and the `flock` cloud-init
//! uses, reads the whole file, applies the change and rewrites the file in place (the
//! daemon holds its own descriptor, so the file is never replaced by a rename). Records
//! that cannot be decoded are kept byte for byte; a file with a torn trailing record is
//! reported and never rewritten.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use egs_sys::lock::{lock, LockKind};

use crate::record::{check, decode, decode_records, split_records, upsert, RawRecord, RECORD_SIZE};
use crate::store::{Change, KvpError, KvpStore, Listing, Plan, PoolId};

/// Where a Linux guest's pool files are.
pub const DEFAULT_DIR: &str = "/var/lib/hyperv";

/// The pool files in one directory.
#[derive(Debug, Clone)]
pub struct PoolFiles {
    dir: PathBuf,
    create: bool,
}

impl PoolFiles {
    /// The pools `.kvp_pool_<N>` in `dir`. A missing file is an error: creating pools is
    /// the KVP daemon's job.
    pub fn new(dir: impl Into<PathBuf>) -> PoolFiles {
        PoolFiles {
            dir: dir.into(),
            create: false,
        }
    }

    /// The same, creating a missing pool file on the first write (a host-side copy of a
    /// VM's pools, a test).
    pub fn creating(dir: impl Into<PathBuf>) -> PoolFiles {
        PoolFiles {
            dir: dir.into(),
            create: true,
        }
    }

    /// The file of `pool`.
    pub fn path(&self, pool: PoolId) -> PathBuf {
        self.dir.join(format!(".kvp_pool_{}", pool.number()))
    }

    fn io(path: &Path, source: std::io::Error) -> KvpError {
        if source.kind() == std::io::ErrorKind::NotFound {
            KvpError::MissingPool(path.display().to_string())
        } else {
            KvpError::Io {
                location: path.display().to_string(),
                source,
            }
        }
    }
}

impl KvpStore for PoolFiles {
    fn location(&self, pool: PoolId) -> String {
        self.path(pool).display().to_string()
    }

    /// Under a shared lock.
    fn list(&self, pool: PoolId) -> Result<Listing, KvpError> {
        let path = self.path(pool);
        let io = |e| PoolFiles::io(&path, e);
        let locked = lock(File::open(&path).map_err(io)?, LockKind::Shared).map_err(io)?;
        let mut data = Vec::new();
        (&*locked).read_to_end(&mut data).map_err(io)?;
        let (records, problems) = decode(&data);
        Ok(Listing { records, problems })
    }

    /// Under both exclusive locks; the file is rewritten in place and synced.
    fn edit(&self, pool: PoolId, plan: &mut Plan<'_>) -> Result<(), KvpError> {
        self.rewrite(pool, |raw| {
            let (records, problems) = decode_records(raw);
            let changes = plan(&Listing { records, problems })?;
            Change::check_all(&changes)?;
            for change in &changes {
                match change {
                    Change::Set { key, value } => upsert(raw, key, value),
                    Change::Delete(key) => raw.retain(|r| r.key() != Ok(key.as_str())),
                }
            }
            Ok(!changes.is_empty())
        })
    }

    /// Without decoding the other records (the daemon and cloud-init write often).
    fn set(&self, pool: PoolId, key: &str, value: &str) -> Result<(), KvpError> {
        check(key, value)?;
        self.rewrite(pool, |raw| {
            upsert(raw, key, value);
            Ok(true)
        })
    }

    /// Without decoding the other records.
    fn delete(&self, pool: PoolId, key: &str) -> Result<bool, KvpError> {
        let mut existed = false;
        self.rewrite(pool, |raw| {
            let before = raw.len();
            raw.retain(|r| r.key() != Ok(key));
            existed = raw.len() != before;
            Ok(existed)
        })?;
        Ok(existed)
    }
}

impl PoolFiles {
    /// Reads the records of `pool` under both exclusive locks, lets `change` change them
    /// and, when it says it did, rewrites the file in place and syncs it. A torn file is
    /// never rewritten.
    fn rewrite(
        &self,
        pool: PoolId,
        change: impl FnOnce(&mut Vec<RawRecord>) -> Result<bool, KvpError>,
    ) -> Result<(), KvpError> {
        let path = self.path(pool);
        let io = |e| PoolFiles::io(&path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(self.create)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let locked = lock(file, LockKind::Exclusive).map_err(io)?;
        let mut data = Vec::new();
        (&*locked).read_to_end(&mut data).map_err(io)?;
        let (mut raw, tail) = split_records(&data);
        if tail > 0 {
            return Err(KvpError::Torn {
                location: path.display().to_string(),
                size: data.len(),
                offset: raw.len() * RECORD_SIZE,
            });
        }
        if !change(&mut raw)? {
            return Ok(());
        }
        let mut out = Vec::with_capacity(raw.len() * RECORD_SIZE);
        for record in &raw {
            out.extend_from_slice(record.bytes());
        }
        let mut file: &File = &locked;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(&out).map_err(io)?;
        file.set_len(out.len() as u64).map_err(io)?;
        file.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::KEY_FIELD;

    fn pool() -> (tempfile::TempDir, PoolFiles) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
        let p = PoolFiles::new(dir.path());
        (dir, p)
    }

    const G: PoolId = PoolId::Guest;

    #[test]
    fn set_get_delete_and_layout() {
        let (_d, p) = pool();
        p.set(G, "a", "1").unwrap();
        p.set(G, "b", "ü").unwrap();
        p.set(G, "a", "2").unwrap();
        assert_eq!(p.get(G, "a").unwrap().as_deref(), Some("2"));
        let data = std::fs::read(p.path(G)).unwrap();
        assert_eq!(data.len(), 2 * RECORD_SIZE);
        assert_eq!(&data[..2], b"a\0");
        assert_eq!(&data[KEY_FIELD..KEY_FIELD + 2], b"2\0");
        assert!(p.delete(G, "a").unwrap());
        assert!(!p.delete(G, "a").unwrap());
        assert_eq!(p.list(G).unwrap().records.len(), 1);
    }

    #[test]
    fn limits_and_missing_pools_are_clear_errors() {
        let (d, p) = pool();
        assert!(matches!(
            p.set(G, &"k".repeat(255), "v"),
            Err(KvpError::KeyTooLong { bytes: 255, .. })
        ));
        assert!(matches!(
            p.set(G, "k", &"é".repeat(512)),
            Err(KvpError::ValueTooLong { bytes: 1024, .. })
        ));
        p.set(G, &"k".repeat(254), &"v".repeat(1022)).unwrap();
        assert!(matches!(p.set(G, "", "v"), Err(KvpError::EmptyKey)));
        let e = p.set(PoolId::AutoExternal, "a", "b").unwrap_err();
        assert!(e.to_string().contains("hv_kvp_daemon"), "{e}");
        assert!(matches!(
            p.list(PoolId::AutoExternal),
            Err(KvpError::MissingPool(_))
        ));
        PoolFiles::creating(d.path())
            .set(PoolId::AutoExternal, "a", "b")
            .unwrap();
        assert_eq!(
            p.get(PoolId::AutoExternal, "a").unwrap().as_deref(),
            Some("b")
        );
    }

    #[test]
    fn a_batch_over_the_limits_changes_nothing() {
        let (_d, p) = pool();
        p.set(G, "keep", "1").unwrap();
        let before = std::fs::read(p.path(G)).unwrap();
        let result = p.edit(G, &mut |_| {
            Ok(vec![
                Change::Delete("keep".into()),
                Change::set("x", "y".repeat(2000)),
            ])
        });
        assert!(matches!(result, Err(KvpError::ValueTooLong { .. })));
        assert_eq!(std::fs::read(p.path(G)).unwrap(), before);
    }

    #[test]
    fn undecodable_records_survive_and_torn_files_are_not_rewritten() {
        let (_d, p) = pool();
        let mut bad = RawRecord::new("x", "y").bytes().to_vec();
        bad[0] = 0xff;
        std::fs::write(
            p.path(G),
            [&bad[..], RawRecord::new("ok", "1").bytes()].concat(),
        )
        .unwrap();
        let listing = p.list(G).unwrap();
        assert_eq!(listing.records.len(), 1);
        assert!(listing.problems[0].contains("record 0 (offset 0): key is not UTF-8"));
        p.set(G, "new", "v").unwrap();
        assert_eq!(&std::fs::read(p.path(G)).unwrap()[..RECORD_SIZE], &bad[..]);
        let mut torn = std::fs::read(p.path(G)).unwrap();
        torn.extend_from_slice(&[b'z'; 100]);
        std::fs::write(p.path(G), &torn).unwrap();
        assert!(matches!(
            p.set(G, "a", "b"),
            Err(KvpError::Torn { offset: 7680, .. })
        ));
        assert_eq!(std::fs::read(p.path(G)).unwrap(), torn);
    }
}
