//! IP address, prefix and netmask rules as Python's `ipaddress` module applies them
//! (cloud-init validates network-config with it). Pure.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The address family of a network written as `addr[/prefix-or-mask]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The prefix length of a mask in this family's notations (see
    /// [`ipv4_mask_to_prefix`] and [`ipv6_mask_to_prefix`]).
    pub fn mask_to_prefix(self, mask: &str) -> Option<u8> {
        match self {
            Family::V4 => ipv4_mask_to_prefix(mask),
            Family::V6 => ipv6_mask_to_prefix(mask),
        }
    }
}

/// The family of `text` read as a network (`IPv4Network(text, strict=False)` or the IPv6
/// equivalent), or `None` when it is neither.
pub fn network_family(text: &str) -> Option<Family> {
    if is_ipv4_network(text) {
        Some(Family::V4)
    } else if is_ipv6_network(text) {
        Some(Family::V6)
    } else {
        None
    }
}

/// `IPv4Network(text, strict=False)` succeeds: an address with an optional `/prefix`,
/// `/netmask` or `/hostmask`.
pub fn is_ipv4_network(text: &str) -> bool {
    let (addr, mask) = split_prefix(text);
    let Some(addr) = addr else { return false };
    addr.parse::<Ipv4Addr>().is_ok() && mask.is_none_or(|m| ipv4_mask_to_prefix(m).is_some())
}

/// `IPv6Network(text, strict=False)` succeeds: an address with an optional `/prefix`.
pub fn is_ipv6_network(text: &str) -> bool {
    let (addr, mask) = split_prefix(text);
    let Some(addr) = addr else { return false };
    is_ipv6_address(addr) && mask.is_none_or(|m| decimal_prefix(m, 128).is_some())
}

/// `IPv6Address(text)` succeeds (a `%scope` suffix is allowed, as Python allows it).
pub fn is_ipv6_address(text: &str) -> bool {
    let addr = match text.split_once('%') {
        Some((addr, scope)) if !scope.is_empty() => addr,
        Some(_) => return false,
        None => text,
    };
    addr.parse::<Ipv6Addr>().is_ok()
}

/// The prefix length of an IPv4 mask given as a prefix (`24`), a netmask
/// (`255.255.255.0`) or a hostmask (`0.0.0.255`).
pub fn ipv4_mask_to_prefix(mask: &str) -> Option<u8> {
    if let Some(prefix) = decimal_prefix(mask, 32) {
        return Some(prefix);
    }
    let bits = u32::from(mask.parse::<Ipv4Addr>().ok()?);
    contiguous_prefix(u128::from(bits), 32).or_else(|| contiguous_prefix(u128::from(!bits), 32))
}

/// The prefix length of an IPv6 mask given as a prefix (`64`) or, rarely, as an address
/// (`ffff:ffff::`).
pub fn ipv6_mask_to_prefix(mask: &str) -> Option<u8> {
    if let Some(prefix) = decimal_prefix(mask, 128) {
        return Some(prefix);
    }
    let bits = u128::from(mask.parse::<Ipv6Addr>().ok()?);
    contiguous_prefix(bits, 128)
}

/// The dotted netmask of an IPv4 prefix length (`24` → `255.255.255.0`).
pub fn ipv4_prefix_to_mask(prefix: u8) -> String {
    let bits = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits).to_string()
}

/// Splits `addr/mask`; more than one `/` is no address at all.
fn split_prefix(text: &str) -> (Option<&str>, Option<&str>) {
    match text.split_once('/') {
        Some((_, mask)) if mask.contains('/') => (None, None),
        Some((addr, mask)) => (Some(addr), Some(mask)),
        None => (Some(text), None),
    }
}

/// A prefix written in ASCII decimal digits, at most `max`.
fn decimal_prefix(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let trimmed = text.trim_start_matches('0');
    if trimmed.len() > 3 {
        return None;
    }
    let value: u16 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    (value <= u16::from(max)).then_some(value as u8)
}

/// The prefix length if `bits` (of width `width`) is leading ones followed by zeros.
fn contiguous_prefix(bits: u128, width: u32) -> Option<u8> {
    let ones = if width == 128 {
        bits.leading_ones()
    } else {
        (bits << (128 - width)).leading_ones().min(width)
    };
    let expected = if ones == 0 {
        0
    } else {
        (u128::MAX >> (128 - ones)) << (width - ones)
    };
    (bits == expected).then_some(ones as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_as_python_reads_them() {
        assert!(is_ipv4_network("192.168.0.2/24"));
        assert!(is_ipv4_network("10.1.3.0/255.255.255.0"));
        assert!(is_ipv4_network("10.0.0.5"));
        assert!(is_ipv4_network("10.0.0.5/0.0.0.255"));
        assert!(!is_ipv4_network("10.0.0.5/33"));
        assert!(!is_ipv4_network("10.0.0.300/24"));
        assert!(!is_ipv4_network("010.0.0.1"));
        assert!(!is_ipv4_network("1.2.3.4/2/3"));
        assert!(is_ipv6_network("2001:1::1/92"));
        assert!(is_ipv6_network("fe80::1%eth0"));
        assert!(!is_ipv6_network("2001:1::1/ffff::"));
        assert!(!is_ipv6_network("default"));
    }

    #[test]
    fn masks_and_prefixes() {
        assert_eq!(ipv4_mask_to_prefix("255.255.255.0"), Some(24));
        assert_eq!(ipv4_mask_to_prefix("0.0.0.255"), Some(24));
        assert_eq!(ipv4_mask_to_prefix("24"), Some(24));
        assert_eq!(ipv4_mask_to_prefix("0.0.0.0"), Some(0));
        assert_eq!(ipv4_mask_to_prefix("255.0.255.0"), None);
        assert_eq!(ipv6_mask_to_prefix("ffff:ffff::"), Some(32));
        assert_eq!(ipv6_mask_to_prefix("64"), Some(64));
        assert_eq!(ipv6_mask_to_prefix("::"), Some(0));
        assert_eq!(ipv6_mask_to_prefix("ffff::ffff"), None);
        assert_eq!(ipv4_prefix_to_mask(24), "255.255.255.0");
        assert_eq!(ipv4_prefix_to_mask(0), "0.0.0.0");
        assert_eq!(ipv4_prefix_to_mask(32), "255.255.255.255");
    }
}
