//! What the system has: its network interfaces (from `/sys/class/net`) and which network
//! stack is installed. Read under a root directory so a sandbox can stand in for `/`.
//! The one module with OS knowledge in this crate; other platforms add theirs here.

use std::fs;
use std::path::{Path, PathBuf};

use crate::render::Renderer;
use crate::state::MacNames;
use crate::value::Val;

/// A network interface as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInterface {
    /// Kernel name (`eth0`, `ens3`).
    pub name: String,
    /// MAC address, lower-case, when it has one.
    pub mac: Option<String>,
    /// Backed by a device (not a bridge, bond, vlan, tunnel or loopback).
    pub physical: bool,
    /// Link is up (`carrier` reads 1).
    pub carrier: bool,
}

/// The interfaces under `root/sys/class/net`, sorted by name.
pub fn interfaces(root: &Path) -> Vec<SystemInterface> {
    let dir = root.join("sys/class/net");
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut found: Vec<SystemInterface> = entries
        .filter_map(Result::ok)
        .map(|entry| {
            let path = entry.path();
            let read = |file: &str| {
                fs::read_to_string(path.join(file))
                    .map(|s| s.trim().to_string())
                    .ok()
            };
            SystemInterface {
                name: entry.file_name().to_string_lossy().into_owned(),
                mac: read("address")
                    .filter(|m| !m.is_empty() && m != "00:00:00:00:00:00")
                    .map(|m| m.to_ascii_lowercase()),
                physical: path.join("device").exists(),
                carrier: read("carrier").as_deref() == Some("1"),
            }
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Interface names by MAC.
pub fn mac_names(interfaces: &[SystemInterface]) -> MacNames {
    let mut macs = MacNames::new();
    for iface in interfaces {
        if let Some(mac) = &iface.mac {
            macs.insert(mac, &iface.name);
        }
    }
    macs
}

/// The interface cloud-init's fallback configures: a physical interface with a MAC,
/// one with carrier first, then by name (`eth0` before `eth1`).
pub fn fallback_interface(interfaces: &[SystemInterface]) -> Option<(String, String)> {
    let mut candidates: Vec<&SystemInterface> = interfaces
        .iter()
        .filter(|i| i.physical && i.name != "lo" && i.mac.is_some())
        .collect();
    candidates.sort_by(|a, b| {
        b.carrier
            .cmp(&a.carrier)
            .then_with(|| natural_cmp(&a.name, &b.name))
    });
    candidates
        .first()
        .map(|i| (i.name.clone(), i.mac.clone().expect("filtered on mac")))
}

/// Names compared with their digit runs as numbers (`eth2` < `eth10`).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(s: &str) -> Vec<(String, u64)> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
            } else {
                if !digits.is_empty() {
                    parts.push((
                        std::mem::take(&mut text),
                        digits.parse().unwrap_or(u64::MAX),
                    ));
                    digits.clear();
                }
                text.push(c);
            }
        }
        parts.push((text, digits.parse().unwrap_or(0)));
        parts
    }
    key(a).cmp(&key(b))
}

/// The renderer this system's network stack reads, or `None` when none is installed:
/// netplan when it is installed; otherwise systemd-networkd when it is enabled (or present
/// and ifupdown is not); otherwise ifupdown (ENI); otherwise networkd if present.
pub fn detect_renderer(root: &Path) -> Option<Renderer> {
    let exists = |p: &str| root.join(p).exists();
    let any = |paths: &[&str]| paths.iter().any(|p| exists(p));
    let netplan = any(&["usr/sbin/netplan", "sbin/netplan"]);
    let networkd = any(&[
        "lib/systemd/systemd-networkd",
        "usr/lib/systemd/systemd-networkd",
    ]);
    let networkd_enabled = any(&[
        "etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
        "etc/systemd/system/network-online.target.wants/systemd-networkd-wait-online.service",
    ]);
    let ifupdown = any(&["sbin/ifup", "usr/sbin/ifup"]) && exists("etc/network/interfaces");
    if netplan {
        Some(Renderer::Netplan)
    } else if networkd && (networkd_enabled || !ifupdown) {
        Some(Renderer::Networkd)
    } else if ifupdown {
        Some(Renderer::Eni)
    } else {
        None
    }
}

/// The system configuration file that turns network configuration off
/// (`network: {config: disabled}` in `/etc/cloud/cloud.cfg` or `/etc/cloud/cloud.cfg.d/*.cfg`,
/// as the header of every rendered file tells people to do), if any.
pub fn disabled_by(root: &Path) -> Option<PathBuf> {
    let mut candidates = vec![root.join("etc/cloud/cloud.cfg")];
    if let Ok(entries) = fs::read_dir(root.join("etc/cloud/cloud.cfg.d")) {
        let mut dropins: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "cfg"))
            .collect();
        dropins.sort();
        candidates.extend(dropins);
    }
    // Later files override earlier ones, as cloud-init merges them.
    let mut disabled_by = None;
    for path in candidates {
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(Some(node)) = egs_cloudconfig::yaml::load(&text, 0) else {
            continue;
        };
        let Val::Map(doc) = Val::from_node(&node) else {
            continue;
        };
        let Some(Val::Map(network)) = doc.get("network") else {
            continue;
        };
        match network.get("config") {
            Some(Val::Str(s)) if s == "disabled" => disabled_by = Some(path),
            Some(_) => disabled_by = None,
            None => {}
        }
    }
    disabled_by
}

/// The renames a configuration asks for, as cloud-init's `apply_network_config_names`
/// performs them in its local stage: a physical interface named in the configuration
/// (v1 `name` with `mac_address`, v2 `set-name` with `match.macaddress`) whose device is
/// present under another name. `(current, wanted)` pairs.
pub fn renames(
    config: &crate::NetworkConfig,
    interfaces: &[SystemInterface],
) -> Result<Vec<(String, String)>, crate::NetConfigError> {
    let state = crate::interpret(
        config,
        crate::Renderer::Networkd,
        crate::render::Fidelity::Complete,
        &mac_names(interfaces),
    )?;
    let mut renames = Vec::new();
    for (name, iface) in &state.interfaces {
        let physical = iface.get("type").and_then(Val::as_str) == Some("physical");
        let Some(mac) = iface.get("mac_address").and_then(Val::as_str) else {
            continue;
        };
        let mac = mac.to_ascii_lowercase();
        let present = interfaces
            .iter()
            .find(|i| i.physical && i.mac.as_deref() == Some(mac.as_str()));
        if let (true, Some(present)) = (physical, present) {
            if &present.name != name {
                renames.push((present.name.clone(), name.clone()));
            }
        }
    }
    Ok(renames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic(root: &Path, name: &str, mac: &str, physical: bool, carrier: bool) {
        let dir = root.join("sys/class/net").join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("address"), format!("{mac}\n")).unwrap();
        fs::write(dir.join("carrier"), if carrier { "1\n" } else { "0\n" }).unwrap();
        if physical {
            fs::create_dir_all(dir.join("device")).unwrap();
        }
    }

    #[test]
    fn fallback_prefers_a_connected_physical_nic() {
        let root = tempfile::tempdir().unwrap();
        nic(root.path(), "lo", "00:00:00:00:00:00", false, true);
        nic(root.path(), "br0", "aa:00:00:00:00:01", false, true);
        nic(root.path(), "eth10", "AA:00:00:00:00:10", true, false);
        nic(root.path(), "eth2", "aa:00:00:00:00:02", true, false);
        assert_eq!(
            fallback_interface(&interfaces(root.path())),
            Some(("eth2".into(), "aa:00:00:00:00:02".into()))
        );
        nic(root.path(), "eth10", "AA:00:00:00:00:10", true, true);
        assert_eq!(
            fallback_interface(&interfaces(root.path())),
            Some(("eth10".into(), "aa:00:00:00:00:10".into()))
        );
        assert_eq!(
            mac_names(&interfaces(root.path())).name_of("AA:00:00:00:00:10"),
            Some("eth10")
        );
    }

    #[test]
    fn renderer_follows_what_is_installed() {
        let root = tempfile::tempdir().unwrap();
        let touch = |p: &str| {
            let path = root.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "").unwrap();
        };
        assert_eq!(detect_renderer(root.path()), None);
        touch("lib/systemd/systemd-networkd");
        assert_eq!(detect_renderer(root.path()), Some(Renderer::Networkd));
        touch("sbin/ifup");
        touch("etc/network/interfaces");
        assert_eq!(detect_renderer(root.path()), Some(Renderer::Eni));
        touch("etc/systemd/system/multi-user.target.wants/systemd-networkd.service");
        assert_eq!(detect_renderer(root.path()), Some(Renderer::Networkd));
        touch("usr/sbin/netplan");
        assert_eq!(detect_renderer(root.path()), Some(Renderer::Netplan));
    }

    #[test]
    fn the_header_promise_disables_network_configuration() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(disabled_by(root.path()), None);
        let dir = root.path().join("etc/cloud/cloud.cfg.d");
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("99-disable-network-config.cfg");
        fs::write(&file, "network: {config: disabled}\n").unwrap();
        assert_eq!(disabled_by(root.path()), Some(file));
        fs::write(
            dir.join("99-zz-enable.cfg"),
            "network: {config: {version: 2}}\n",
        )
        .unwrap();
        assert_eq!(disabled_by(root.path()), None);
    }
}
