//! Removable media a Windows guest's seed may be on: its CD-ROM and removable drives as
//! raw volumes (`\\.\D:`), read with EGS's own ISO9660/FAT readers, never through the
//! mounted file system. Linux finds its block devices in sysfs (`egs_datasource::env`):
//! there this list is empty.

use std::path::PathBuf;

/// The raw volumes of CD-ROM drives, then removable drives, in drive-letter order.
pub fn removable() -> Vec<PathBuf> {
    imp::drives()
        .into_iter()
        .map(|letter| PathBuf::from(format!(r"\\.\{letter}:")))
        .collect()
}

/// Orders drive letters as seeds are probed: optical first (`kind` true), then the rest.
pub fn probe_order(mut drives: Vec<(char, bool)>) -> Vec<char> {
    drives.sort_by_key(|(letter, optical)| (!optical, *letter));
    drives.into_iter().map(|(letter, _)| letter).collect()
}

#[cfg(not(windows))]
mod imp {
    pub fn drives() -> Vec<char> {
        Vec::new()
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Storage::FileSystem::{GetDriveTypeW, GetLogicalDrives};

    const DRIVE_REMOVABLE: u32 = 2;
    const DRIVE_CDROM: u32 = 5;

    pub fn drives() -> Vec<char> {
        // SAFETY: no arguments.
        let mask = unsafe { GetLogicalDrives() };
        let mut found = Vec::new();
        for i in 0..26u8 {
            if mask & (1 << i) == 0 {
                continue;
            }
            let letter = (b'A' + i) as char;
            let root: Vec<u16> = format!("{letter}:\\")
                .encode_utf16()
                .chain(std::iter::once(0))
                .collect();
            // SAFETY: a NUL-terminated root path.
            match unsafe { GetDriveTypeW(root.as_ptr()) } {
                DRIVE_CDROM => found.push((letter, true)),
                DRIVE_REMOVABLE => found.push((letter, false)),
                _ => {}
            }
        }
        super::probe_order(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optical_drives_are_probed_first() {
        assert_eq!(
            probe_order(vec![('A', false), ('E', true), ('D', true), ('B', false)]),
            ['D', 'E', 'A', 'B']
        );
        if !crate::WINDOWS {
            assert!(removable().is_empty());
        }
    }
}
