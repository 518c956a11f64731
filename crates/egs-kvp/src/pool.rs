//! Linux KVP pool files (`/var/lib/hyperv/.kvp_pool_N`) as `hv_kvp_daemon` keeps them:
//! fixed 2,560-byte records (512-byte key, 2,048-byte value, UTF-8, NUL-padded), no header.
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

/// Size of one record.
pub const RECORD_SIZE: usize = 2560;
/// Size of the key field.
pub const KEY_FIELD: usize = 512;
/// Size of the value field.
pub const VALUE_FIELD: usize = 2048;
/// Longest key a guest may write that the host reads back intact (UTF-8 bytes).
pub const MAX_KEY_BYTES: usize = 254;
/// Longest value a guest may write that the host reads back intact (UTF-8 bytes).
pub const MAX_VALUE_BYTES: usize = 1022;

/// The pools, by `hv_kvp_daemon`'s numbering.
pub const POOL_EXTERNAL: u8 = 0;
/// Guest → host pool.
pub const POOL_GUEST: u8 = 1;
/// The intrinsic pool the KVP driver fills (host name, OS version, addresses).
pub const POOL_AUTO: u8 = 2;

/// What can go wrong with a pool.
#[derive(Debug, thiserror::Error)]
pub enum KvpError {
    /// The pool file does not exist (is `hv_kvp_daemon` running?).
    #[error("{0}: no such KVP pool file (is the Hyper-V KVP daemon, hv_kvp_daemon, installed and running?)")]
    MissingPool(PathBuf),
    /// Reading, locking or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The pool file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file ends in the middle of a record.
    #[error("{path}: {size} bytes is not a whole number of {RECORD_SIZE}-byte records (torn record at offset {offset}); not modified")]
    Torn {
        /// The pool file.
        path: PathBuf,
        /// Its size.
        size: usize,
        /// Where the partial record starts.
        offset: usize,
    },
    /// An empty key.
    #[error("KVP key must not be empty")]
    EmptyKey,
    /// A key the host cannot read back.
    #[error("KVP key '{key}' is {bytes} bytes; the limit is {MAX_KEY_BYTES} bytes")]
    KeyTooLong {
        /// The key.
        key: String,
        /// Its UTF-8 length.
        bytes: usize,
    },
    /// A value the host cannot read back.
    #[error("value for KVP key '{key}' is {bytes} bytes; the limit is {MAX_VALUE_BYTES} bytes")]
    ValueTooLong {
        /// The key.
        key: String,
        /// The value's UTF-8 length.
        bytes: usize,
    },
    /// Keys and values cannot contain NUL (the fields are NUL-terminated).
    #[error("KVP key or value for '{0}' contains a NUL character")]
    Nul(String),
}

/// Checks a key/value pair against the limits for guest-written records.
pub fn check(key: &str, value: &str) -> Result<(), KvpError> {
    if key.is_empty() {
        return Err(KvpError::EmptyKey);
    }
    if key.contains('\0') || value.contains('\0') {
        return Err(KvpError::Nul(key.to_string()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvpError::KeyTooLong {
            key: key.to_string(),
            bytes: key.len(),
        });
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvpError::ValueTooLong {
            key: key.to_string(),
            bytes: value.len(),
        });
    }
    Ok(())
}

/// One 2,560-byte record, kept as bytes so undecodable records survive a rewrite.
#[derive(Clone, PartialEq, Eq)]
pub struct RawRecord(Vec<u8>);

impl std::fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawRecord")
            .field("key", &self.key())
            .field("value", &self.value())
            .finish()
    }
}

fn field(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end])
}

impl RawRecord {
    /// Encodes a record (limits are checked by [`check`], not here, so that readers of
    /// other writers' records can re-encode them).
    pub fn new(key: &str, value: &str) -> RawRecord {
        let mut raw = vec![0u8; RECORD_SIZE];
        let k = &key.as_bytes()[..key.len().min(KEY_FIELD)];
        let v = &value.as_bytes()[..value.len().min(VALUE_FIELD)];
        raw[..k.len()].copy_from_slice(k);
        raw[KEY_FIELD..KEY_FIELD + v.len()].copy_from_slice(v);
        RawRecord(raw)
    }

    /// The key: the key field up to its first NUL.
    pub fn key(&self) -> Result<&str, std::str::Utf8Error> {
        field(&self.0[..KEY_FIELD])
    }

    /// The value: the value field up to its first NUL.
    pub fn value(&self) -> Result<&str, std::str::Utf8Error> {
        field(&self.0[KEY_FIELD..])
    }

    /// The 2,560 bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the pool file (0-based).
    pub index: usize,
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// Splits pool bytes into records; the second value is the length of a torn tail.
pub fn split_records(data: &[u8]) -> (Vec<RawRecord>, usize) {
    let chunks = data.chunks_exact(RECORD_SIZE);
    let tail = chunks.remainder().len();
    (chunks.map(|c| RawRecord(c.to_vec())).collect(), tail)
}

/// Decodes pool bytes: the records that decode, and a description of each that does not.
pub fn decode(data: &[u8]) -> (Vec<Record>, Vec<String>) {
    let (raw, tail) = split_records(data);
    let mut records = Vec::new();
    let mut problems = Vec::new();
    for (index, r) in raw.iter().enumerate() {
        match (r.key(), r.value()) {
            (Ok(key), Ok(value)) if !key.is_empty() => records.push(Record {
                index,
                key: key.to_string(),
                value: value.to_string(),
            }),
            (Ok(_), Ok(_)) => {}
            (Err(e), _) => problems.push(format!(
                "record {index} (offset {}): key is not UTF-8: {e}",
                index * RECORD_SIZE
            )),
            (_, Err(e)) => problems.push(format!(
                "record {index} (offset {}): value is not UTF-8: {e}",
                index * RECORD_SIZE
            )),
        }
    }
    if tail > 0 {
        problems.push(format!(
            "torn record: {tail} trailing bytes at offset {}",
            raw.len() * RECORD_SIZE
        ));
    }
    (records, problems)
}

/// One pool file.
#[derive(Debug, Clone)]
pub struct Pool {
    path: PathBuf,
}

impl Pool {
    /// The pool file `.kvp_pool_<number>` in `dir` (normally `/var/lib/hyperv`).
    pub fn open(dir: &Path, number: u8) -> Pool {
        Pool {
            path: dir.join(format!(".kvp_pool_{number}")),
        }
    }

    /// The pool at an explicit path.
    pub fn at(path: impl Into<PathBuf>) -> Pool {
        Pool { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: std::io::Error) -> KvpError {
        if source.kind() == std::io::ErrorKind::NotFound {
            KvpError::MissingPool(self.path.clone())
        } else {
            KvpError::Io {
                path: self.path.clone(),
                source,
            }
        }
    }

    /// All records that decode, and problems with the others, under a shared lock.
    pub fn read(&self) -> Result<(Vec<Record>, Vec<String>), KvpError> {
        let file = File::open(&self.path).map_err(|e| self.io(e))?;
        let locked = lock(file, LockKind::Shared).map_err(|e| self.io(e))?;
        let mut data = Vec::new();
        (&*locked).read_to_end(&mut data).map_err(|e| self.io(e))?;
        Ok(decode(&data))
    }

    /// The value of `key` (the last record with it wins, as in the original EGS).
    pub fn get(&self, key: &str) -> Result<Option<String>, KvpError> {
        let (records, _) = self.read()?;
        Ok(records
            .into_iter()
            .rev()
            .find(|r| r.key == key)
            .map(|r| r.value))
    }

    /// Applies `change` to the records under the exclusive locks and rewrites the file.
    /// The pool file must exist (creating it is the daemon's job) unless `create` is set.
    pub fn update<T>(
        &self,
        create: bool,
        change: impl FnOnce(&mut Vec<RawRecord>) -> Result<T, KvpError>,
    ) -> Result<T, KvpError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        let locked = lock(file, LockKind::Exclusive).map_err(|e| self.io(e))?;
        let mut data = Vec::new();
        (&*locked).read_to_end(&mut data).map_err(|e| self.io(e))?;
        let (mut records, tail) = split_records(&data);
        if tail > 0 {
            return Err(KvpError::Torn {
                path: self.path.clone(),
                size: data.len(),
                offset: records.len() * RECORD_SIZE,
            });
        }
        let result = change(&mut records)?;
        let mut out = Vec::with_capacity(records.len() * RECORD_SIZE);
        for r in &records {
            out.extend_from_slice(r.bytes());
        }
        let mut file: &File = &locked;
        file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        file.write_all(&out).map_err(|e| self.io(e))?;
        file.set_len(out.len() as u64).map_err(|e| self.io(e))?;
        file.sync_data().map_err(|e| self.io(e))?;
        Ok(result)
    }

    /// Sets `key` to `value`: replaces the first record with that key (dropping later
    /// duplicates) or appends one.
    pub fn set(&self, key: &str, value: &str) -> Result<(), KvpError> {
        check(key, value)?;
        self.update(false, |records| {
            upsert(records, key, value);
            Ok(())
        })
    }

    /// Removes every record with `key`; returns whether one existed.
    pub fn delete(&self, key: &str) -> Result<bool, KvpError> {
        self.update(false, |records| {
            let before = records.len();
            records.retain(|r| r.key() != Ok(key));
            Ok(records.len() != before)
        })
    }
}

/// Replaces the first record with `key` (dropping later duplicates) or appends one.
pub fn upsert(records: &mut Vec<RawRecord>, key: &str, value: &str) {
    let mut found = false;
    records.retain_mut(|r| {
        if r.key() != Ok(key) {
            return true;
        }
        if found {
            return false;
        }
        found = true;
        *r = RawRecord::new(key, value);
        true
    });
    if !found {
        records.push(RawRecord::new(key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
        let p = Pool::open(dir.path(), 1);
        (dir, p)
    }

    #[test]
    fn set_get_delete_and_layout() {
        let (_d, p) = pool();
        p.set("a", "1").unwrap();
        p.set("b", "ü").unwrap();
        p.set("a", "2").unwrap();
        assert_eq!(p.get("a").unwrap().as_deref(), Some("2"));
        let data = std::fs::read(p.path()).unwrap();
        assert_eq!(data.len(), 2 * RECORD_SIZE);
        assert_eq!(&data[..2], b"a\0");
        assert_eq!(&data[KEY_FIELD..KEY_FIELD + 2], b"2\0");
        assert!(p.delete("a").unwrap());
        assert!(!p.delete("a").unwrap());
        assert_eq!(p.read().unwrap().0.len(), 1);
    }

    #[test]
    fn limits_and_missing_pools_are_clear_errors() {
        let (d, p) = pool();
        assert!(matches!(
            p.set(&"k".repeat(255), "v"),
            Err(KvpError::KeyTooLong { bytes: 255, .. })
        ));
        assert!(matches!(
            p.set("k", &"é".repeat(512)),
            Err(KvpError::ValueTooLong { bytes: 1024, .. })
        ));
        p.set(&"k".repeat(254), &"v".repeat(1022)).unwrap();
        assert!(matches!(p.set("", "v"), Err(KvpError::EmptyKey)));
        let missing = Pool::open(d.path(), 3);
        let e = missing.set("a", "b").unwrap_err();
        assert!(e.to_string().contains("hv_kvp_daemon"), "{e}");
        assert!(matches!(missing.read(), Err(KvpError::MissingPool(_))));
    }

    #[test]
    fn undecodable_records_survive_and_torn_files_are_not_rewritten() {
        let (_d, p) = pool();
        let mut bad = RawRecord::new("x", "y").bytes().to_vec();
        bad[0] = 0xff;
        std::fs::write(
            p.path(),
            [&bad[..], RawRecord::new("ok", "1").bytes()].concat(),
        )
        .unwrap();
        let (records, problems) = p.read().unwrap();
        assert_eq!(records.len(), 1);
        assert!(problems[0].contains("record 0 (offset 0): key is not UTF-8"));
        p.set("new", "v").unwrap();
        assert_eq!(&std::fs::read(p.path()).unwrap()[..RECORD_SIZE], &bad[..]);
        let mut torn = std::fs::read(p.path()).unwrap();
        torn.extend_from_slice(&[b'z'; 100]);
        std::fs::write(p.path(), &torn).unwrap();
        assert!(matches!(
            p.set("a", "b"),
            Err(KvpError::Torn { offset: 7680, .. })
        ));
        assert_eq!(std::fs::read(p.path()).unwrap(), torn);
    }

    #[test]
    fn duplicates_collapse_on_upsert() {
        let mut records = vec![
            RawRecord::new("k", "1"),
            RawRecord::new("j", "x"),
            RawRecord::new("k", "2"),
        ];
        upsert(&mut records, "k", "3");
        let keys: Vec<_> = records
            .iter()
            .map(|r| (r.key().unwrap(), r.value().unwrap()))
            .collect();
        assert_eq!(keys, [("k", "3"), ("j", "x")]);
    }
}
