//! Reads a device in whole aligned blocks. A raw Windows volume (`\\.\D:`) accepts only
//! reads that start and end on sector boundaries; the ISO9660 and FAT readers ask for any
//! offset and length. [`Aligned`] serves those from aligned 64 KiB blocks, so the same
//! readers work on a device, an image file or a Linux block device.

use std::io::{self, Read, Seek, SeekFrom};

/// Block size: a multiple of every sector size (512, 2048, 4096).
pub const BLOCK: u64 = 64 * 1024;

/// A reader whose reads of the inner reader all start on a [`BLOCK`] boundary and ask for
/// a whole block.
pub struct Aligned<R> {
    inner: R,
    position: u64,
    block: Vec<u8>,
    block_start: Option<u64>,
}

impl<R: Read + Seek> Aligned<R> {
    /// Wraps `inner`.
    pub fn new(inner: R) -> Aligned<R> {
        Aligned {
            inner,
            position: 0,
            block: Vec::with_capacity(BLOCK as usize),
            block_start: None,
        }
    }

    /// Loads the block holding `position`; an empty block past the end.
    fn load(&mut self, start: u64) -> io::Result<()> {
        self.inner.seek(SeekFrom::Start(start))?;
        self.block.clear();
        self.block.resize(BLOCK as usize, 0);
        let mut filled = 0;
        while filled < self.block.len() {
            match self.inner.read(&mut self.block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.block.truncate(filled);
        self.block_start = Some(start);
        Ok(())
    }
}

impl<R: Read + Seek> Read for Aligned<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let start = self.position - self.position % BLOCK;
        if self.block_start != Some(start) {
            self.load(start)?;
        }
        let offset = (self.position - start) as usize;
        let available = self.block.len().saturating_sub(offset);
        let n = available.min(buf.len());
        buf[..n].copy_from_slice(&self.block[offset..offset + n]);
        self.position += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Aligned<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.position.checked_add_signed(d),
            SeekFrom::End(d) => self.inner.seek(SeekFrom::End(0))?.checked_add_signed(d),
        };
        self.position = target
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A device that refuses what a raw Windows volume refuses.
    struct Strict(Cursor<Vec<u8>>);

    impl Read for Strict {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let at = self.0.position();
            if at % 2048 != 0 || buf.len() % 2048 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("unaligned read of {} bytes at {at}", buf.len()),
                ));
            }
            self.0.read(buf)
        }
    }

    impl Seek for Strict {
        fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
            self.0.seek(to)
        }
    }

    #[test]
    fn any_read_becomes_aligned_block_reads() {
        // A device's size is whole sectors: 98 of 2048 bytes.
        let data: Vec<u8> = (0..200_704u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut strict = Strict(Cursor::new(data.clone()));
        assert!(
            strict.read(&mut [0u8; 10]).is_err(),
            "the stand-in is strict"
        );
        let mut reader = Aligned::new(Strict(Cursor::new(data.clone())));
        for (at, len) in [
            (0u64, 10usize),
            (65_530, 20),
            (100_001, 70_000),
            (200_690, 50),
        ] {
            reader.seek(SeekFrom::Start(at)).unwrap();
            let mut got = Vec::new();
            (&mut reader)
                .take(len as u64)
                .read_to_end(&mut got)
                .unwrap();
            let end = (at as usize + len).min(data.len());
            assert_eq!(got, data[at as usize..end], "{at}+{len}");
        }
        assert_eq!(reader.seek(SeekFrom::End(-5)).unwrap(), 200_699);
        assert_eq!(reader.seek(SeekFrom::Current(-200_699)).unwrap(), 0);
        assert!(reader.seek(SeekFrom::Current(-1)).is_err());
    }
}
