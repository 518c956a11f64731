//! Network adapters of a Windows guest as `GetAdaptersAddresses` lists them: what
//! network configuration matches by MAC and names by index. Linux reads its interfaces
//! from sysfs below the root (`egs_netconfig::system`); elsewhere this is `Unsupported`.

use std::io;

/// An Ethernet or Wi-Fi adapter with a MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterInfo {
    /// Interface index (IPv4's, else IPv6's).
    pub index: u32,
    /// The adapter's GUID with braces (`AdapterName`).
    pub guid: String,
    /// Friendly name (`Ethernet`).
    pub alias: String,
    /// MAC, lower-case colon form.
    pub mac: String,
    /// IPv6 unicast addresses configured by hand (prefix origin manual).
    pub manual_ipv6: Vec<String>,
}

/// The Ethernet and Wi-Fi adapters that have a MAC address.
pub fn list() -> io::Result<Vec<AdapterInfo>> {
    imp::list()
}

/// `aa:bb:cc:dd:ee:ff` for the first `len` bytes of `bytes`.
#[cfg_attr(not(windows), allow(dead_code))]
fn mac_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(windows)]
mod imp {
    use std::io;
    use std::net::Ipv6Addr;

    use windows_sys::Win32::Foundation::{ERROR_BUFFER_OVERFLOW, ERROR_SUCCESS};
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetAdaptersAddresses, GAA_FLAG_SKIP_ANYCAST, GAA_FLAG_SKIP_DNS_SERVER,
        GAA_FLAG_SKIP_MULTICAST, IF_TYPE_ETHERNET_CSMACD, IF_TYPE_IEEE80211,
        IP_ADAPTER_ADDRESSES_LH,
    };
    use windows_sys::Win32::Networking::WinSock::{
        IpPrefixOriginManual, AF_INET6, AF_UNSPEC, SOCKADDR_IN6,
    };

    use super::{mac_text, AdapterInfo};

    fn wide(text: *const u16) -> String {
        if text.is_null() {
            return String::new();
        }
        // SAFETY: the API returns NUL-terminated strings that live as long as the buffer.
        unsafe {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            String::from_utf16_lossy(std::slice::from_raw_parts(text, len))
        }
    }

    fn narrow(text: *const u8) -> String {
        if text.is_null() {
            return String::new();
        }
        // SAFETY: as above, a NUL-terminated ANSI string.
        unsafe {
            std::ffi::CStr::from_ptr(text.cast())
                .to_string_lossy()
                .into_owned()
        }
    }

    pub fn list() -> io::Result<Vec<AdapterInfo>> {
        let flags = GAA_FLAG_SKIP_ANYCAST | GAA_FLAG_SKIP_MULTICAST | GAA_FLAG_SKIP_DNS_SERVER;
        let mut size: u32 = 16 * 1024;
        let mut buffer: Vec<u64>;
        loop {
            // u64 elements keep the buffer aligned for the structures written into it.
            buffer = vec![0u64; (size as usize).div_ceil(8)];
            // SAFETY: `buffer` holds `size` bytes; the API writes at most that many.
            let status = unsafe {
                GetAdaptersAddresses(
                    u32::from(AF_UNSPEC),
                    flags,
                    std::ptr::null(),
                    buffer.as_mut_ptr().cast(),
                    &mut size,
                )
            };
            match status {
                ERROR_SUCCESS => break,
                ERROR_BUFFER_OVERFLOW => continue,
                // ERROR_NO_DATA: no adapters at all.
                232 => return Ok(Vec::new()),
                other => return Err(io::Error::from_raw_os_error(other as i32)),
            }
        }
        let mut found = Vec::new();
        let mut next = buffer.as_ptr() as *const IP_ADAPTER_ADDRESSES_LH;
        while !next.is_null() {
            // SAFETY: a linked list inside `buffer`, which outlives this loop.
            let adapter = unsafe { &*next };
            next = adapter.Next;
            if !matches!(adapter.IfType, IF_TYPE_ETHERNET_CSMACD | IF_TYPE_IEEE80211) {
                continue;
            }
            let len = (adapter.PhysicalAddressLength as usize).min(8);
            if len != 6 || adapter.PhysicalAddress[..len].iter().all(|b| *b == 0) {
                continue;
            }
            // SAFETY: the union's struct member is what the API fills.
            let ipv4_index = unsafe { adapter.Anonymous1.Anonymous.IfIndex };
            let index = if ipv4_index != 0 {
                ipv4_index
            } else {
                adapter.Ipv6IfIndex
            };
            let mut manual_ipv6 = Vec::new();
            let mut unicast = adapter.FirstUnicastAddress;
            while !unicast.is_null() {
                // SAFETY: a linked list inside `buffer`.
                let address = unsafe { &*unicast };
                unicast = address.Next;
                let sockaddr = address.Address.lpSockaddr;
                // SAFETY: non-null socket addresses point into `buffer`; the family says
                // which structure it is.
                if sockaddr.is_null() || unsafe { (*sockaddr).sa_family } != AF_INET6 {
                    continue;
                }
                if address.PrefixOrigin != IpPrefixOriginManual {
                    continue;
                }
                // SAFETY: an AF_INET6 address is a SOCKADDR_IN6.
                let bytes = unsafe { (*(sockaddr as *const SOCKADDR_IN6)).sin6_addr.u.Byte };
                manual_ipv6.push(Ipv6Addr::from(bytes).to_string());
            }
            found.push(AdapterInfo {
                index,
                guid: narrow(adapter.AdapterName),
                alias: wide(adapter.FriendlyName),
                mac: mac_text(&adapter.PhysicalAddress[..len]),
                manual_ipv6,
            });
        }
        Ok(found)
    }
}

#[cfg(not(windows))]
mod imp {
    use std::io;

    use super::AdapterInfo;

    pub fn list() -> io::Result<Vec<AdapterInfo>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "network adapters are listed through GetAdaptersAddresses on Windows only",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_are_lower_case_colon_separated() {
        assert_eq!(
            super::mac_text(&[0x00, 0x15, 0x5D, 0xAB, 0x01, 0xFF]),
            "00:15:5d:ab:01:ff"
        );
    }

    #[test]
    fn adapters_are_listed_on_windows_only() {
        match (super::list(), crate::WINDOWS) {
            (Ok(adapters), true) => {
                // Wine lists the host's interfaces; whatever they are, each one has a
                // six-byte MAC, an index and a GUID name.
                for adapter in adapters {
                    assert_eq!(adapter.mac.len(), 17, "{adapter:?}");
                    assert!(adapter.index > 0, "{adapter:?}");
                    assert!(adapter.guid.starts_with('{'), "{adapter:?}");
                }
            }
            (Err(e), false) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported),
            (other, _) => panic!("{other:?}"),
        }
    }
}
