//! The record format of Hyper-V KVP pools: fixed 2,560-byte records (512-byte key,
//! 2,048-byte value, UTF-8, NUL-padded) as `hv_kvp_daemon` keeps them in Linux pool files,
//! and the limits a guest-written key and value must keep so the host reads them back
//! intact (they apply to every store).

use crate::store::KvpError;

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
    /// Position in the pool (0-based: the record number in a pool file, the value's
    /// enumeration order in the registry).
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
    let (records, mut problems) = decode_records(&raw);
    if tail > 0 {
        problems.push(format!(
            "torn record: {tail} trailing bytes at offset {}",
            raw.len() * RECORD_SIZE
        ));
    }
    (records, problems)
}

/// Decodes whole records: the ones that decode, and a description of each that does not.
pub fn decode_records(raw: &[RawRecord]) -> (Vec<Record>, Vec<String>) {
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
    (records, problems)
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
