//! Socket addresses WinSock takes as bytes — `SOCKADDR_HV` (Hyper-V sockets) and Windows'
//! `sockaddr_un` — built and read here, on every OS, so their layout is tested where
//! Windows is not.

use crate::guid::Guid;

/// The address family of Hyper-V sockets.
pub const AF_HYPERV: u16 = 34;

/// The bytes of a `SOCKADDR_HV` (36): family 34 and a reserved zero (little-endian
/// `u16`s), then the VM id and the service id as Windows' GUID structs.
pub fn sockaddr_hv(vm_id: Guid, service_id: Guid) -> [u8; 36] {
    let mut address = [0u8; 36];
    address[0..2].copy_from_slice(&AF_HYPERV.to_le_bytes());
    address[4..20].copy_from_slice(&vm_id.to_bytes_le());
    address[20..36].copy_from_slice(&service_id.to_bytes_le());
    address
}

/// The (VM id, service id) of a `SOCKADDR_HV`'s bytes, if they are one.
pub fn parse_sockaddr_hv(address: &[u8]) -> Option<(Guid, Guid)> {
    let address: &[u8; 36] = address.try_into().ok()?;
    if u16::from_le_bytes([address[0], address[1]]) != AF_HYPERV {
        return None;
    }
    let guid = |range: std::ops::Range<usize>| {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&address[range]);
        Guid::from_bytes_le(bytes)
    };
    Some((guid(4..20), guid(20..36)))
}

/// Windows' `sockaddr_un` (110 bytes): family 1 (little-endian), then the path as UTF-8,
/// NUL-terminated (at most 107 bytes).
pub fn sockaddr_un(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, why);
    let text = path
        .to_str()
        .ok_or_else(|| invalid(format!("{}: not valid Unicode", path.display())))?;
    if text.len() > 107 || text.contains('\0') {
        return Err(invalid(format!(
            "{text}: a Unix socket path is at most 107 bytes, without NUL"
        )));
    }
    let mut address = vec![0u8; 110];
    address[0..2].copy_from_slice(&1u16.to_le_bytes());
    address[2..2 + text.len()].copy_from_slice(text.as_bytes());
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_un_is_family_one_and_a_terminated_path() {
        let address = sockaddr_un(std::path::Path::new(r"C:\egs\ssh.sock")).unwrap();
        assert_eq!(address.len(), 110);
        assert_eq!(&address[..2], &[1, 0]);
        assert_eq!(&address[2..17], br"C:\egs\ssh.sock");
        assert_eq!(address[17], 0);
        assert!(sockaddr_un(std::path::Path::new(&"x".repeat(108))).is_err());
        assert!(sockaddr_un(std::path::Path::new(&"x".repeat(107))).is_ok());
    }

    #[test]
    fn sockaddr_hv_is_laid_out_as_windows_reads_it() {
        let service: Guid = "0000138a-facb-11e6-bd58-64006a7986d3".parse().unwrap();
        let address = sockaddr_hv(Guid::PARENT, service);
        assert_eq!(address.len(), 36, "sizeof(SOCKADDR_HV)");
        assert_eq!(&address[0..4], &[34, 0, 0, 0], "family 34, reserved 0");
        // a42e7cda-d03f-480c-9cc2-a4de20abb878: Data1..3 little-endian, Data4 as written.
        assert_eq!(
            &address[4..20],
            &[
                0xda, 0x7c, 0x2e, 0xa4, 0x3f, 0xd0, 0x0c, 0x48, 0x9c, 0xc2, 0xa4, 0xde, 0x20, 0xab,
                0xb8, 0x78
            ]
        );
        assert_eq!(
            &address[20..36],
            &[
                0x8a, 0x13, 0x00, 0x00, 0xcb, 0xfa, 0xe6, 0x11, 0xbd, 0x58, 0x64, 0x00, 0x6a, 0x79,
                0x86, 0xd3
            ]
        );
        assert_eq!(parse_sockaddr_hv(&address), Some((Guid::PARENT, service)));
        assert_eq!(parse_sockaddr_hv(&address[..20]), None, "too short");
        let mut other = address;
        other[0] = 2;
        assert_eq!(parse_sockaddr_hv(&other), None, "not AF_HYPERV");
    }
}
