//! Provisioning documents carried through KVP (host → guest, External pool 0), so a plain
//! Hyper-V VM gets its cloud-config without an ISO. For each document `D` in `meta-data`,
//! `user-data`, `vendor-data`, `network-config`:
//!
//! - `eryph:provisioning:D:count` — the number of chunks `N` (decimal);
//! - `eryph:provisioning:D:sha256` — lower-case hex SHA-256 of the document's bytes;
//! - `eryph:provisioning:D:<i>`, `i` in `0..N` — standard base64 (no line breaks) of
//!   consecutive 765-byte slices of the bytes, so each value is at most 1,020 characters.
//!
//! A document counts only when all `N` chunks are there and the hash matches.

use std::collections::BTreeMap;

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::store::{Change, KvpError, KvpStore, PoolId};

/// The documents, in the order they are written.
pub const DOCUMENTS: &[&str] = &["meta-data", "user-data", "vendor-data", "network-config"];
/// Bytes per chunk (base64 of 765 bytes is exactly 1,020 characters).
pub const CHUNK_BYTES: usize = 765;
/// Largest document, after base64 decoding.
pub const MAX_DOCUMENT: usize = 256 * 1024;
/// Every key of the contract starts with this.
pub const PREFIX: &str = "eryph:provisioning:";

/// What the pool holds for one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentState {
    /// No `count` key: the host sent no such document.
    Absent,
    /// Complete and verified.
    Complete(Vec<u8>),
    /// Not (yet) usable: the host may still be writing. The text says what is missing.
    Incomplete(String),
    /// Wrong in a way waiting will not fix: the text says what.
    Invalid(String),
}

/// The records for one document: chunks, then hash, then count (readers see the count
/// last). Refuses documents over [`MAX_DOCUMENT`].
pub fn encode(name: &str, bytes: &[u8]) -> Result<Vec<(String, String)>, KvpError> {
    if bytes.len() > MAX_DOCUMENT {
        return Err(KvpError::ValueTooLong {
            key: format!("{PREFIX}{name}"),
            bytes: bytes.len(),
        });
    }
    let chunks: Vec<String> = bytes
        .chunks(CHUNK_BYTES)
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
        .collect();
    let mut records: Vec<(String, String)> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{PREFIX}{name}:{i}"), c.clone()))
        .collect();
    records.push((
        format!("{PREFIX}{name}:sha256"),
        hex::encode(Sha256::digest(bytes)),
    ));
    records.push((format!("{PREFIX}{name}:count"), chunks.len().to_string()));
    Ok(records)
}

/// Reads one document from a pool's records (the last record of a key wins).
pub fn read(records: &[(String, String)], name: &str) -> DocumentState {
    let prefix = format!("{PREFIX}{name}:");
    let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
    for (k, v) in records {
        if let Some(rest) = k.strip_prefix(&prefix) {
            fields.insert(rest, v);
        }
    }
    let Some(count) = fields.get("count") else {
        return DocumentState::Absent;
    };
    let Ok(count) = count.trim().parse::<usize>() else {
        return DocumentState::Invalid(format!("{name}: count '{count}' is not a number"));
    };
    if count > MAX_DOCUMENT.div_ceil(CHUNK_BYTES) {
        return DocumentState::Invalid(format!(
            "{name}: {count} chunks is more than the limit of {MAX_DOCUMENT} bytes allows"
        ));
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !fields.contains_key(i.to_string().as_str()))
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return DocumentState::Incomplete(format!(
            "{name}: chunk(s) {} of {count} missing",
            missing.join(", ")
        ));
    }
    let Some(expected) = fields.get("sha256").map(|s| s.trim().to_ascii_lowercase()) else {
        return DocumentState::Incomplete(format!("{name}: no sha256 yet"));
    };
    let mut bytes = Vec::new();
    for i in 0..count {
        let chunk = fields[i.to_string().as_str()];
        match base64::engine::general_purpose::STANDARD.decode(chunk.trim()) {
            Ok(b) => bytes.extend(b),
            Err(e) => {
                return DocumentState::Invalid(format!("{name}: chunk {i} is not base64: {e}"))
            }
        }
        if bytes.len() > MAX_DOCUMENT {
            return DocumentState::Invalid(format!(
                "{name}: more than the limit of {MAX_DOCUMENT} bytes"
            ));
        }
    }
    let actual = hex::encode(Sha256::digest(&bytes));
    if actual != expected {
        return DocumentState::Incomplete(format!(
            "{name}: sha256 is {actual}, expected {expected} (chunks from another version?)"
        ));
    }
    DocumentState::Complete(bytes)
}

/// Replaces the documents in `store`'s External pool: the given ones are written (with
/// their stale chunks removed), every other document of the contract is removed. One edit
/// (one locked rewrite of a pool file).
pub fn write(store: &dyn KvpStore, documents: &[(&str, &[u8])]) -> Result<(), KvpError> {
    let mut encoded = Vec::new();
    for (name, bytes) in documents {
        encoded.extend(encode(name, bytes)?);
    }
    store.edit(PoolId::External, &mut |listing| {
        let stale = listing
            .records
            .iter()
            .filter(|r| r.key.starts_with(PREFIX) && !encoded.iter().any(|(k, _)| *k == r.key))
            .map(|r| Change::Delete(r.key.clone()));
        let new = encoded.iter().map(|(k, v)| Change::set(k, v));
        Ok(stale.chain(new).collect())
    })
}

/// Removes every key of the contract from `store`'s External pool; returns how many.
pub fn clear(store: &dyn KvpStore) -> Result<usize, KvpError> {
    let mut removed = 0;
    store.edit(PoolId::External, &mut |listing| {
        let changes: Vec<Change> = listing
            .records
            .iter()
            .filter(|r| r.key.starts_with(PREFIX))
            .map(|r| Change::Delete(r.key.clone()))
            .collect();
        removed = changes.len();
        Ok(changes)
    })?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(records: &[(String, String)]) -> Vec<(String, String)> {
        records.to_vec()
    }

    #[test]
    fn round_trip_and_chunk_sizes() {
        let doc: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
        let records = encode("user-data", &doc).unwrap();
        assert_eq!(records.len(), 3 + 2);
        assert!(records.iter().all(|(_, v)| v.len() <= 1020));
        assert_eq!(records[0].1.len(), 1020);
        assert_eq!(
            read(&pairs(&records), "user-data"),
            DocumentState::Complete(doc.clone())
        );
        let mut reordered = records.clone();
        reordered.reverse();
        assert_eq!(read(&reordered, "user-data"), DocumentState::Complete(doc));
        assert_eq!(read(&records, "vendor-data"), DocumentState::Absent);
        let empty = encode("meta-data", b"").unwrap();
        assert_eq!(
            read(&empty, "meta-data"),
            DocumentState::Complete(Vec::new())
        );
    }

    #[test]
    fn partial_mismatched_invalid_and_oversized() {
        let records = encode("user-data", &[7u8; 3000]).unwrap();
        let without_1: Vec<_> = records
            .iter()
            .filter(|(k, _)| !k.ends_with(":1"))
            .cloned()
            .collect();
        assert_eq!(
            read(&without_1, "user-data"),
            DocumentState::Incomplete("user-data: chunk(s) 1 of 4 missing".into())
        );
        let mut wrong = records.clone();
        wrong[0].1 = base64::engine::general_purpose::STANDARD.encode([8u8; 765]);
        assert!(
            matches!(read(&wrong, "user-data"), DocumentState::Incomplete(m) if m.contains("sha256 is"))
        );
        let mut garbage = records.clone();
        garbage[2].1 = "not base64!".into();
        assert!(
            matches!(read(&garbage, "user-data"), DocumentState::Invalid(m) if m.contains("chunk 2 is not base64"))
        );
        assert!(encode("user-data", &vec![0u8; MAX_DOCUMENT + 1]).is_err());
        let huge = vec![(
            "eryph:provisioning:user-data:count".to_string(),
            "100000".to_string(),
        )];
        assert!(matches!(
            read(&huge, "user-data"),
            DocumentState::Invalid(_)
        ));
    }

    #[test]
    fn a_shorter_document_leaves_no_stale_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let pool = crate::files::PoolFiles::creating(dir.path());
        write(
            &pool,
            &[
                ("meta-data", b"instance-id: a\n"),
                ("user-data", &[1u8; 5000]),
            ],
        )
        .unwrap();
        pool.set(PoolId::External, "unrelated", "kept").unwrap();
        write(
            &pool,
            &[("meta-data", b"instance-id: b\n"), ("user-data", b"short")],
        )
        .unwrap();
        let records = pool.list(PoolId::External).unwrap().records;
        let keys: Vec<&str> = records.iter().map(|r| r.key.as_str()).collect();
        assert!(
            !keys.contains(&"eryph:provisioning:user-data:1"),
            "{keys:?}"
        );
        assert!(keys.contains(&"unrelated"));
        let pairs: Vec<(String, String)> = records
            .iter()
            .map(|r| (r.key.clone(), r.value.clone()))
            .collect();
        assert_eq!(
            read(&pairs, "user-data"),
            DocumentState::Complete(b"short".to_vec())
        );
        assert_eq!(clear(&pool).unwrap(), 6);
        assert_eq!(pool.list(PoolId::External).unwrap().records.len(), 1);
    }
}
