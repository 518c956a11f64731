//! GUIDs as Hyper-V sockets use them: VM ids and service ids, parsed from and written as
//! `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (braces and upper case accepted), and laid out in
//! `SOCKADDR_HV` as Windows' GUID struct (Data1, Data2, Data3 little-endian; Data4 as is).

use std::fmt;

/// A GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid {
    data1: u32,
    data2: u16,
    data3: u16,
    data4: [u8; 8],
}

impl Guid {
    /// `00000000-0000-0000-0000-000000000000`: any partition (listening).
    pub const WILDCARD: Guid = Guid::from_fields(0, 0, 0, [0; 8]);
    /// `a42e7cda-d03f-480c-9cc2-a4de20abb878`: the parent partition (the host), as a guest
    /// listens.
    pub const PARENT: Guid = Guid::from_fields(
        0xa42e_7cda,
        0xd03f,
        0x480c,
        [0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab, 0xb8, 0x78],
    );
    /// `90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd`: every child partition.
    pub const CHILDREN: Guid = Guid::from_fields(
        0x90db_8b89,
        0x0d35,
        0x4f79,
        [0x8c, 0xe9, 0x49, 0xea, 0x0a, 0xc8, 0xb7, 0xcd],
    );
    /// `e0e16197-dd56-4a10-9195-5ee7a155a838`: this partition.
    pub const LOOPBACK: Guid = Guid::from_fields(
        0xe0e1_6197,
        0xdd56,
        0x4a10,
        [0x91, 0x95, 0x5e, 0xe7, 0xa1, 0x55, 0xa8, 0x38],
    );

    /// A GUID from its four fields.
    pub const fn from_fields(data1: u32, data2: u16, data3: u16, data4: [u8; 8]) -> Guid {
        Guid {
            data1,
            data2,
            data3,
            data4,
        }
    }

    /// The 16 bytes of Windows' GUID struct (what `SOCKADDR_HV` holds).
    pub fn to_bytes_le(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.data1.to_le_bytes());
        b[4..6].copy_from_slice(&self.data2.to_le_bytes());
        b[6..8].copy_from_slice(&self.data3.to_le_bytes());
        b[8..16].copy_from_slice(&self.data4);
        b
    }

    /// The GUID of Windows' 16-byte struct.
    pub fn from_bytes_le(b: [u8; 16]) -> Guid {
        let mut data4 = [0u8; 8];
        data4.copy_from_slice(&b[8..16]);
        Guid {
            data1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_le_bytes([b[4], b[5]]),
            data3: u16::from_le_bytes([b[6], b[7]]),
            data4,
        }
    }
}

impl std::str::FromStr for Guid {
    type Err = crate::AddressError;

    fn from_str(text: &str) -> Result<Guid, crate::AddressError> {
        let bad = || crate::AddressError::NotAGuid(text.to_string());
        let inner = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        let groups: Vec<&str> = inner.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lengths != [8, 4, 4, 4, 12]
            || !groups
                .iter()
                .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(bad());
        }
        let hex = |s: &str| u64::from_str_radix(s, 16).map_err(|_| bad());
        let tail = format!("{}{}", groups[3], groups[4]);
        let mut data4 = [0u8; 8];
        for (i, byte) in data4.iter_mut().enumerate() {
            *byte = hex(&tail[i * 2..i * 2 + 2])? as u8;
        }
        Ok(Guid {
            data1: hex(groups[0])? as u32,
            data2: hex(groups[1])? as u16,
            data3: hex(groups[2])? as u16,
            data4,
        })
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_formats_and_lays_out_as_windows_does() {
        let parent: Guid = "{A42E7CDA-D03F-480C-9CC2-A4DE20ABB878}".parse().unwrap();
        assert_eq!(parent, Guid::PARENT);
        assert_eq!(parent.to_string(), "a42e7cda-d03f-480c-9cc2-a4de20abb878");
        // .NET's Guid.TryWriteBytes / uuid's to_bytes_le: the first three fields reversed.
        assert_eq!(
            parent.to_bytes_le(),
            [
                0xda, 0x7c, 0x2e, 0xa4, 0x3f, 0xd0, 0x0c, 0x48, 0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab,
                0xb8, 0x78
            ]
        );
        assert_eq!(Guid::from_bytes_le(parent.to_bytes_le()), parent);
        let service: Guid = crate::SERVICE_ID.parse().unwrap();
        assert_eq!(&service.to_bytes_le()[..4], &5002u32.to_le_bytes());
        for bad in [
            "",
            "a42e7cda-d03f-480c-9cc2",
            "a42e7cda-d03f-480c-9cc2-a4de20abb87g",
            "a42e7cdad03f480c9cc2a4de20abb878",
            "+42e7cda-d03f-480c-9cc2-a4de20abb878",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "{bad}");
        }
    }
}
