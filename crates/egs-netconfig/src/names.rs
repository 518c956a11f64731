//! What network-config text may contain before it reaches a rendered file or a file name.
//!
//! Every renderer writes interface names into file names (`10-cloud-init-<name>.network`)
//! and values into line-based formats (networkd INI, ENI stanzas, udev rules), so a name
//! with `/` or `..` would write outside the configuration directory, and a newline in any
//! value would add lines of the author's choosing (a `[Match]` section, an ENI `up` command
//! run as root). The loader refuses control characters anywhere in the input; the
//! interpreter refuses interface names the kernel would refuse.

use crate::error::PlaceError;
use crate::value::Val;

/// Longest interface name (the kernel's `IFNAMSIZ` is 16, with the terminating NUL).
pub const MAX_IFNAME_BYTES: usize = 15;

/// Checks an interface name as the kernel's `dev_valid_name` does: 1 to 15 bytes, not `.`
/// or `..`, no `/`, `:`, whitespace or control characters.
pub fn check_ifname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an interface name must not be empty".into());
    }
    if name.len() > MAX_IFNAME_BYTES {
        return Err(format!(
            "interface name '{}' is {} bytes; the limit is {MAX_IFNAME_BYTES}",
            name.escape_default(),
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err(format!("'{name}' is not an interface name"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| matches!(c, '/' | ':') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name '{}' contains {}; names may not contain '/', ':', spaces or control characters",
            name.escape_default(),
            describe(c)
        ));
    }
    Ok(())
}

fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() {
        format!("the character U+{:04X}", c as u32)
    } else {
        format!("'{c}'")
    }
}

/// Refuses a control character (newline, carriage return, tab, NUL, …) in any key or string
/// of a loaded document; the error names the key path.
pub fn reject_control_characters(value: &Val, place: &str) -> Result<(), PlaceError> {
    let check = |text: &str, place: &str| match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(PlaceError::new(
            place,
            format!(
                "'{}' contains {}; network-config values may not contain control characters",
                text.escape_default(),
                describe(c)
            ),
        )),
        None => Ok(()),
    };
    match value {
        Val::Str(text) => check(text, place),
        Val::List(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| reject_control_characters(item, &format!("{place}[{i}]"))),
        Val::Map(map) => map.iter().try_for_each(|(key, item)| {
            let inner = if place.is_empty() {
                key.clone()
            } else {
                format!("{place}.{key}")
            };
            check(key, &inner)?;
            reject_control_characters(item, &inner)
        }),
        Val::Null | Val::Bool(_) | Val::Int(_) | Val::Float(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel() {
        for good in [
            "eth0",
            "enp0s31f6",
            "bond0.100",
            "br-lan",
            "a",
            "x".repeat(15).as_str(),
        ] {
            assert!(check_ifname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../../etc/x",
            "a/b",
            "eth0:1",
            "eth 0",
            "eth0\n[Match]",
            "eth\t0",
            &"x".repeat(16),
        ] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
        let e = check_ifname("eth5\nup").unwrap_err();
        assert!(e.contains("U+000A"), "{e}");
    }

    #[test]
    fn control_characters_are_named_with_their_key_path() {
        let doc = Val::Map(crate::value::dict([(
            "nameservers",
            Val::Map(crate::value::dict([(
                "search",
                Val::List(vec!["ok.com".into(), "ex.com\n[Match]\nName=*".into()]),
            )])),
        )]));
        let e = reject_control_characters(&doc, "").unwrap_err();
        assert_eq!(e.place, "nameservers.search[1]");
        assert!(e.message.contains("U+000A"), "{}", e.message);
        let key = Val::Map(crate::value::dict([("eth\r0", Val::Null)]));
        assert_eq!(
            reject_control_characters(&key, "ethernets")
                .unwrap_err()
                .place,
            "ethernets.eth\r0"
        );
    }
}
