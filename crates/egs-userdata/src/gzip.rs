//! Bounded gzip decompression: user-data may be gzip-compressed as a whole or per part,
//! and a small bomb must not become gigabytes in memory.

use std::io::Read;

/// Whether the bytes start with the gzip magic number.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Decompresses all gzip members, refusing output larger than `limit` bytes.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not valid gzip data: {e}"))?;
    if out.len() > limit {
        return Err(format!(
            "gzip data expands beyond the limit of {limit} bytes"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trip_truncation_and_bombs() {
        let packed = gz(b"#cloud-config\n");
        assert!(is_gzip(&packed));
        assert_eq!(gunzip(&packed, 100).unwrap(), b"#cloud-config\n");
        assert!(gunzip(&packed[..packed.len() - 6], 100).is_err());
        let bomb = gz(&vec![0u8; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20_000);
        assert!(gunzip(&bomb, 1024 * 1024).unwrap_err().contains("limit"));
    }
}
