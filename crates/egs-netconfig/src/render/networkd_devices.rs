//! What systemd-networkd needs beyond cloud-init's `.network` files to bring a
//! configuration up as written: `.netdev` files that create bonds, bridges and VLANs,
//! `.link` files that give interfaces their configured names by MAC address, and one
//! drop-in per interface (`10-cloud-init-<name>.network.d/50-egs.conf`) that attaches
//! members (`Bond=`, `Bridge=`, `VLAN=`) and corrects what cloud-init 22.4.2's networkd
//! renderer gets wrong: DHCPv6 and SLAAC subnet types it ignores, and a subnet MTU it
//! drops (its netplan renderer honours both).
//!
//! These are additional files: the `.network` files stay identical to cloud-init's. Pure.

use crate::state::NetworkState;
use crate::value::{Dict, DictExt, Val};

use super::NETWORKD_DIR;

/// One extra file: path relative to the root and body.
pub type DeviceFile = (String, String);

/// Name of the drop-in with what EGS adds to an interface's `.network` file.
pub const DROP_IN: &str = "50-egs.conf";

/// `.netdev` and `.link` files and `.network` drop-ins for `state`.
pub fn render(state: &NetworkState) -> Vec<DeviceFile> {
    let mut files = Vec::new();
    let mut additions: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |iface: &str, line: String| match additions.iter_mut().find(|(n, _)| n == iface) {
        Some((_, lines)) => {
            if !lines.contains(&line) {
                lines.push(line)
            }
        }
        None => additions.push((iface.to_string(), vec![line])),
    };

    for iface in state.interfaces.values() {
        let name = iface.text_of("name").unwrap_or_default();
        match iface.text("type") {
            Some("physical") => {
                if let Some(link) = link_file(iface, &name) {
                    files.push((format!("{NETWORKD_DIR}/10-cloud-init-{name}.link"), link));
                }
            }
            Some("bond") if iface.text("bond-slaves") == Some("none") => {
                files.push((netdev_path(&name), bond_netdev(iface, &name)));
                let primary = param(iface, "bond-primary").map(|p| p.py_str());
                for (member_name, member_iface) in &state.interfaces {
                    if member_iface.text_of("bond-master").as_deref() == Some(name.as_str()) {
                        add(member_name, format!("Bond={name}"));
                        if primary.as_deref() == Some(member_name.as_str()) {
                            add(member_name, "PrimarySlave=true".to_string());
                        }
                    }
                }
            }
            Some("bridge") => {
                files.push((netdev_path(&name), bridge_netdev(iface, &name)));
                for port in iface.list("bridge_ports") {
                    add(&port.py_str(), format!("Bridge={name}"));
                }
            }
            Some("vlan") => {
                files.push((netdev_path(&name), vlan_netdev(iface, &name)));
                if let Some(parent) = iface.text_of("vlan-raw-device") {
                    add(&parent, format!("VLAN={name}"));
                }
            }
            _ => {}
        }
    }
    for iface in state.interfaces.values() {
        let name = iface.text_of("name").unwrap_or_default();
        for line in corrections(iface) {
            add(&name, line);
        }
    }
    for (iface, lines) in additions {
        if !state.interfaces.contains_key(&iface) {
            continue;
        }
        let (link, network): (Vec<String>, Vec<String>) =
            lines.into_iter().partition(|l| l.starts_with("MTUBytes="));
        let mut body = String::new();
        for (section, lines) in [("Link", link), ("Network", network)] {
            if lines.is_empty() {
                continue;
            }
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(&format!("[{section}]\n"));
            for line in lines {
                body.push_str(&line);
                body.push('\n');
            }
        }
        files.push((
            format!("{NETWORKD_DIR}/10-cloud-init-{iface}.network.d/{DROP_IN}"),
            body,
        ));
    }
    files
}

/// Settings cloud-init's `.network` file gets wrong for this interface: DHCP that leaves
/// out DHCPv6 subnet types, SLAAC without router advertisements, subnet MTUs.
fn corrections(iface: &Dict) -> Vec<String> {
    let subnets: Vec<&Dict> = iface.maps("subnets").collect();
    let kinds: Vec<String> = subnets
        .iter()
        .map(|s| s.text_of("type").unwrap_or_default())
        .collect();
    let has = |names: &[&str]| kinds.iter().any(|k| names.contains(&k.as_str()));
    let mut lines = Vec::new();
    let v4 = has(&["dhcp", "dhcp4"]);
    let v6_cloud_init = has(&["dhcp6"]);
    // cloud-init's netplan renderer turns every dynamic IPv6 type into `dhcp6: true`.
    let v6 = has(super::IPV6_DYNAMIC_TYPES);
    if v6 != v6_cloud_init {
        lines.push(format!("DHCP={}", if v4 { "yes" } else { "ipv6" }));
    }
    if has(&["ipv6_slaac", "ipv6_dhcpv6-stateless"])
        && iface.get("accept-ra") != Some(&Val::Bool(false))
    {
        lines.push("IPv6AcceptRA=yes".to_string());
    }
    let static_mtu = |ipv6: bool| {
        subnets
            .iter()
            .filter(|s| matches!(s.text("type"), Some("static" | "static6")))
            .filter(|s| super::subnet_is_ipv6(s) == ipv6)
            .find_map(|s| s.get("mtu").filter(|m| m.truthy()))
            .map(Val::py_str)
    };
    if let Some(mtu) = static_mtu(false) {
        if iface.get("mtu").map(Val::py_str) != Some(mtu.clone()) {
            lines.push(format!("MTUBytes={mtu}"));
        }
    }
    if let Some(mtu) = static_mtu(true) {
        lines.push(format!("IPv6MTUBytes={mtu}"));
    }
    lines
}

fn netdev_path(name: &str) -> String {
    format!("{NETWORKD_DIR}/10-cloud-init-{name}.netdev")
}

/// Renames the interface with this permanent MAC to its configured name.
fn link_file(iface: &Dict, name: &str) -> Option<String> {
    let mac = iface.get("mac_address").filter(|m| m.truthy())?.py_str();
    let mut body = format!(
        "[Match]\nPermanentMACAddress={}\n\n[Link]\nName={name}\n",
        mac.to_lowercase()
    );
    if iface.get("wakeonlan") == Some(&Val::Bool(true)) {
        body.push_str("WakeOnLan=magic\n");
    }
    Some(body)
}

fn netdev_header(iface: &Dict, name: &str, kind: &str) -> String {
    let mut body = format!("[NetDev]\nName={name}\nKind={kind}\n");
    if let Some(mac) = iface.get("mac_address").filter(|m| m.truthy()) {
        body.push_str(&format!("MACAddress={}\n", mac.py_str().to_lowercase()));
    }
    if let Some(mtu) = iface.get("mtu").filter(|m| m.truthy()) {
        body.push_str(&format!("MTUBytes={}\n", mtu.py_str()));
    }
    body
}

/// A bond parameter under either spelling (`bond-miimon`, `bond_miimon`).
fn param<'a>(iface: &'a Dict, name: &str) -> Option<&'a Val> {
    iface
        .iter()
        .find(|(k, v)| k.replace('_', "-") == name && v.truthy())
        .map(|(_, v)| v)
}

/// How a bond parameter's value is written in `[Bond]`.
#[derive(Clone, Copy)]
enum BondValue {
    /// As it is (lists space-separated).
    Plain,
    /// Milliseconds: ifenslave counts in ms, networkd wants a unit.
    Millis,
    /// A mode, numeric or named.
    Mode,
}

/// v1 bond parameter → `[Bond]` setting.
const BOND_SETTINGS: &[(&str, &str, BondValue)] = &[
    ("bond-mode", "Mode", BondValue::Mode),
    ("bond-miimon", "MIIMonitorSec", BondValue::Millis),
    (
        "bond-xmit-hash-policy",
        "TransmitHashPolicy",
        BondValue::Plain,
    ),
    ("bond-updelay", "UpDelaySec", BondValue::Millis),
    ("bond-downdelay", "DownDelaySec", BondValue::Millis),
    ("bond-fail-over-mac", "FailOverMACPolicy", BondValue::Plain),
    ("bond-num-grat-arp", "GratuitousARP", BondValue::Plain),
    (
        "bond-primary-reselect",
        "PrimaryReselectPolicy",
        BondValue::Plain,
    ),
    ("bond-lacp-rate", "LACPTransmitRate", BondValue::Plain),
    ("bond-ad-select", "AdSelect", BondValue::Plain),
    ("bond-min-links", "MinLinks", BondValue::Plain),
    ("bond-arp-interval", "ARPIntervalSec", BondValue::Millis),
    ("bond-arp-ip-target", "ARPIPTargets", BondValue::Plain),
    ("bond-arp-validate", "ARPValidate", BondValue::Plain),
];

fn bond_netdev(iface: &Dict, name: &str) -> String {
    let mut body = netdev_header(iface, name, "bond");
    body.push_str("\n[Bond]\n");
    for (key, setting, kind) in BOND_SETTINGS {
        let Some(value) = param(iface, key) else {
            continue;
        };
        let text = match (kind, value) {
            (BondValue::Mode, v) => bond_mode(&v.py_str()),
            (BondValue::Millis, v) => format!("{}ms", v.py_str()),
            (BondValue::Plain, v) => v.spaced(),
        };
        body.push_str(&format!("{setting}={text}\n"));
    }
    body
}

/// ifenslave's numeric modes as names (networkd accepts names only).
fn bond_mode(mode: &str) -> String {
    let named = match mode {
        "0" => "balance-rr",
        "1" => "active-backup",
        "2" => "balance-xor",
        "3" => "broadcast",
        "4" => "802.3ad",
        "5" => "balance-tlb",
        "6" => "balance-alb",
        other => other,
    };
    named.to_string()
}

fn bridge_netdev(iface: &Dict, name: &str) -> String {
    let mut body = netdev_header(iface, name, "bridge");
    let mut bridge = String::new();
    if let Some(Val::Bool(stp)) = iface.get("bridge_stp") {
        bridge.push_str(&format!("STP={}\n", if *stp { "yes" } else { "no" }));
    }
    for (key, setting) in [
        ("bridge_fd", "ForwardDelaySec"),
        ("bridge_hello", "HelloTimeSec"),
        ("bridge_maxage", "MaxAgeSec"),
        ("bridge_ageing", "AgeingTimeSec"),
        ("bridge_bridgeprio", "Priority"),
    ] {
        if let Some(value) = iface.value(key) {
            bridge.push_str(&format!("{setting}={}\n", value.py_str()));
        }
    }
    if !bridge.is_empty() {
        body.push_str("\n[Bridge]\n");
        body.push_str(&bridge);
    }
    body
}

fn vlan_netdev(iface: &Dict, name: &str) -> String {
    let mut body = netdev_header(iface, name, "vlan");
    if let Some(id) = iface.value("vlan_id") {
        body.push_str(&format!("\n[VLAN]\nId={}\n", id.py_str()));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{interpret, load, Fidelity, InputKind, MacNames, Renderer};

    fn devices(yaml: &str) -> Vec<DeviceFile> {
        let macs = MacNames::new();
        let config = load("test", yaml.as_bytes(), InputKind::Yaml, &macs)
            .unwrap()
            .unwrap();
        render(&interpret(&config, Renderer::Networkd, Fidelity::Complete, &macs).unwrap())
    }

    #[test]
    fn bonds_bridges_and_vlans_get_netdevs_and_members() {
        let files = devices(
            "version: 2
ethernets:
  eth0: {match: {macaddress: 'AA:BB:CC:00:00:01'}, set-name: lan0}
  eth1: {}
bonds:
  bond0:
    interfaces: [lan0, eth1]
    parameters: {mode: active-backup, mii-monitor-interval: 100, primary: lan0}
vlans:
  bond0.7: {id: 7, link: bond0}
bridges:
  br0: {interfaces: [bond0.7], parameters: {stp: false, forward-delay: 0}}
",
        );
        let get = |suffix: &str| {
            files
                .iter()
                .find(|(p, _)| p.ends_with(suffix))
                .unwrap_or_else(|| panic!("no {suffix} in {files:#?}"))
                .1
                .clone()
        };
        assert_eq!(
            get("10-cloud-init-lan0.link"),
            "[Match]\nPermanentMACAddress=aa:bb:cc:00:00:01\n\n[Link]\nName=lan0\n"
        );
        let bond = get("10-cloud-init-bond0.netdev");
        assert!(bond.contains("Kind=bond\n"), "{bond}");
        assert!(
            bond.contains("Mode=active-backup\nMIIMonitorSec=100ms\n"),
            "{bond}"
        );
        assert_eq!(
            get("10-cloud-init-lan0.network.d/50-egs.conf"),
            "[Network]\nBond=bond0\nPrimarySlave=true\n"
        );
        assert_eq!(
            get("10-cloud-init-eth1.network.d/50-egs.conf"),
            "[Network]\nBond=bond0\n"
        );
        assert_eq!(
            get("10-cloud-init-bond0.network.d/50-egs.conf"),
            "[Network]\nVLAN=bond0.7\n"
        );
        assert!(get("10-cloud-init-bond0.7.netdev").ends_with("[VLAN]\nId=7\n"));
        assert_eq!(
            get("10-cloud-init-bond0.7.network.d/50-egs.conf"),
            "[Network]\nBridge=br0\n"
        );
        let bridge = get("10-cloud-init-br0.netdev");
        assert!(bridge.contains("[Bridge]\nSTP=no\n"), "{bridge}");
        assert!(bridge.contains("ForwardDelaySec=0\n"), "{bridge}");
    }
}
