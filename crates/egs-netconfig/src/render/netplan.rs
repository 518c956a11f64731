//! netplan YAML (`/etc/netplan/50-cloud-init.yaml`), as cloud-init's netplan renderer
//! writes it: a v2 document is passed through unchanged under `network:`; v1 state becomes
//! `ethernets`, `bonds`, `bridges` and `vlans`. Pure.

use crate::state::NetworkState;
use crate::v2::{bond_param_v2, bridge_param_v2};
use crate::value::{dict, Dict, DictExt, Val};

use super::yaml::to_yaml;
use super::{subnet_is_ipv6, IPV6_DYNAMIC_TYPES};

/// netplan features cloud-init uses when the installed netplan has them; netplan 0.106
/// (Debian 12) has both.
const FEATURES: &[&str] = &["dhcp-use-domains", "ipv6-mtu"];

/// The file body (without header) for this state.
pub fn render(state: &NetworkState) -> String {
    if state.version == 2 {
        return to_yaml(&dict([("network", Val::Map(state.document.clone()))]), true);
    }
    let mut ethernets = Dict::new();
    let mut bonds = Dict::new();
    let mut bridges = Dict::new();
    let mut vlans = Dict::new();

    for iface in state.interfaces.values() {
        let name = iface.text_of("name").unwrap_or_default();
        let cfg: Dict = iface
            .iter()
            .filter(|(_, v)| !matches!(v, Val::Null))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match cfg.text("type") {
            Some("physical") => {
                let mut eth = Dict::new();
                if let Some(matcher) = cfg.get("match") {
                    eth.insert("set-name".into(), name.as_str().into());
                    eth.insert("match".into(), matcher.clone());
                } else if let Some(mac) = cfg.text_of("mac_address") {
                    eth.insert("set-name".into(), name.as_str().into());
                    eth.insert(
                        "match".into(),
                        Val::Map(dict([("macaddress", mac.to_lowercase().into())])),
                    );
                }
                extract_addresses(&cfg, &mut eth);
                ethernets.insert(name, Val::Map(eth));
            }
            Some("bond") => {
                let mut bond = Dict::new();
                let mut parameters = Dict::new();
                for prefix in ["bond_", "bond-"] {
                    for (key, value) in cfg.iter().filter(|(k, _)| k.starts_with(prefix)) {
                        if let Some(v2) = bond_param_v2(key) {
                            parameters.insert(v2.into(), value.clone());
                        }
                    }
                }
                if !parameters.is_empty() {
                    bond.insert("parameters".into(), Val::Map(parameters));
                }
                if let Some(mac) = cfg.get("mac_address").filter(|m| m.truthy()) {
                    bond.insert("macaddress".into(), mac.py_str().to_lowercase().into());
                }
                if cfg.text("bond-slaves") == Some("none") {
                    let mut members: Vec<&String> = state
                        .interfaces
                        .iter()
                        .filter(|(_, i)| i.text_of("bond-master").as_deref() == Some(name.as_str()))
                        .map(|(n, _)| n)
                        .collect();
                    members.sort();
                    if !members.is_empty() {
                        bond.insert(
                            "interfaces".into(),
                            Val::List(members.into_iter().map(|n| n.as_str().into()).collect()),
                        );
                    }
                }
                extract_addresses(&cfg, &mut bond);
                bonds.insert(name, Val::Map(bond));
            }
            Some("bridge") => {
                let mut ports: Vec<Val> = cfg.list("bridge_ports").to_vec();
                ports.sort_by_key(Val::py_str);
                let mut bridge = dict([("interfaces", Val::List(ports))]);
                let mut parameters = Dict::new();
                for (key, value) in cfg.iter().filter(|(k, _)| k.starts_with("bridge_")) {
                    let Some(v2) = bridge_param_v2(key) else {
                        continue;
                    };
                    let value = if matches!(v2, "path-cost" | "port-priority") {
                        per_port(value)
                    } else {
                        value.clone()
                    };
                    parameters.insert(v2.into(), value);
                }
                if !parameters.is_empty() {
                    bridge.insert("parameters".into(), Val::Map(parameters));
                }
                if let Some(mac) = cfg.get("mac_address").filter(|m| m.truthy()) {
                    bridge.insert("macaddress".into(), mac.py_str().to_lowercase().into());
                }
                extract_addresses(&cfg, &mut bridge);
                bridges.insert(name, Val::Map(bridge));
            }
            Some("vlan") => {
                let mut vlan = dict([
                    ("id", cfg.get("vlan_id").cloned().unwrap_or(Val::Null)),
                    (
                        "link",
                        cfg.get("vlan-raw-device").cloned().unwrap_or(Val::Null),
                    ),
                ]);
                if let Some(mac) = cfg.text_of("mac_address") {
                    vlan.insert("macaddress".into(), mac.to_lowercase().into());
                }
                extract_addresses(&cfg, &mut vlan);
                vlans.insert(name, Val::Map(vlan));
            }
            _ => {}
        }
    }

    if !state.dns_nameservers.is_empty() || !state.dns_search.is_empty() {
        let global = Val::Map(dict([
            ("addresses", Val::List(state.dns_nameservers.clone())),
            ("search", Val::List(state.dns_search.clone())),
        ]));
        for section in [&mut ethernets, &mut bonds, &mut bridges, &mut vlans] {
            for device in section.values_mut() {
                let Val::Map(device) = device else { continue };
                if !device.contains_key("nameservers") && device.contains_key("addresses") {
                    device.insert("nameservers".into(), global.clone());
                }
            }
        }
    }

    let mut out = String::from("network:\n    version: 2\n");
    for (section, devices) in [
        ("ethernets", ethernets),
        ("bonds", bonds),
        ("bridges", bridges),
        ("vlans", vlans),
    ] {
        if devices.is_empty() {
            continue;
        }
        let body = to_yaml(&dict([(section, Val::Map(devices))]), true);
        for line in body.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// v1 `bridge_pathcost: ["eth0 50", …]` → v2 `{eth0: 50}`.
fn per_port(value: &Val) -> Val {
    let mut ports = Dict::new();
    for entry in value.as_list().unwrap_or_default() {
        let text = entry.py_str();
        let mut parts = text.split_whitespace();
        if let (Some(port), Some(cost)) = (parts.next(), parts.next()) {
            let cost = cost
                .parse::<i64>()
                .map_or_else(|_| Val::str(cost), Val::Int);
            ports.insert(port.to_string(), cost);
        }
    }
    Val::Map(ports)
}

/// Subnets of an interface as netplan keys: DHCP flags, addresses, gateways, name servers,
/// routes, MTU and accept-ra.
fn extract_addresses(cfg: &Dict, entry: &mut Dict) {
    let mut addresses = Vec::new();
    let mut routes = Vec::new();
    let mut nameservers = Vec::new();
    let mut search = Vec::new();
    for subnet in cfg.maps("subnets") {
        let kind = subnet.text_of("type").unwrap_or_default();
        if kind.starts_with("dhcp") {
            let key = if kind == "dhcp" {
                "dhcp4".to_string()
            } else {
                kind
            };
            entry.insert(key, Val::Bool(true));
        } else if IPV6_DYNAMIC_TYPES.contains(&kind.as_str()) {
            entry.insert("dhcp6".into(), Val::Bool(true));
        } else if kind == "static" || kind == "static6" {
            let mut address = subnet.get("address").map_or("None".into(), Val::py_str);
            if let Some(prefix) = subnet.get("prefix") {
                address = format!("{address}/{}", prefix.py_str());
            }
            if let Some(gateway) = subnet.get("gateway").filter(|g| g.truthy()) {
                let key = if gateway.py_str().contains(':') {
                    "gateway6"
                } else {
                    "gateway4"
                };
                entry.insert(key.into(), gateway.clone());
            }
            if let Some(v) = subnet.get("dns_nameservers") {
                nameservers.extend(listify(v));
            }
            if let Some(v) = subnet.get("dns_search") {
                search.extend(listify(v));
            }
            if let Some(mtu) = subnet.get("mtu") {
                let key = if subnet_is_ipv6(subnet) && FEATURES.contains(&"ipv6-mtu") {
                    "ipv6-mtu"
                } else {
                    "mtu"
                };
                entry.insert(key.into(), mtu.clone());
            }
            for route in subnet.maps("routes") {
                let to = format!(
                    "{}/{}",
                    route.get("network").map_or("None".into(), Val::py_str),
                    route.get("prefix").map_or("None".into(), Val::py_str)
                );
                let mut netplan_route = dict([
                    ("via", route.get("gateway").cloned().unwrap_or(Val::Null)),
                    ("to", to.into()),
                ]);
                if let Some(metric) = route.get("metric") {
                    netplan_route.insert("metric".into(), metric.clone());
                }
                routes.push(Val::Map(netplan_route));
            }
            addresses.push(Val::Str(address));
        }
    }
    if let Some(mtu) = cfg.get("mtu") {
        let subnet_mtu = entry.get("mtu").filter(|m| m.truthy());
        if subnet_mtu.is_none_or(|m| m == mtu) {
            entry.insert("mtu".into(), mtu.clone());
        }
    }
    if !addresses.is_empty() {
        entry.insert("addresses".into(), Val::List(addresses));
    }
    if !routes.is_empty() {
        entry.insert("routes".into(), Val::List(routes));
    }
    if !nameservers.is_empty() {
        entry.insert(
            "nameservers".into(),
            Val::Map(dict([("addresses", Val::List(nameservers))])),
        );
    }
    if !search.is_empty() {
        let mut ns = match entry.shift_remove("nameservers") {
            Some(Val::Map(ns)) => ns,
            _ => Dict::new(),
        };
        ns.insert("search".into(), Val::List(search));
        entry.insert("nameservers".into(), Val::Map(ns));
    }
    if let Some(accept_ra) = cfg.value("accept-ra") {
        entry.insert("accept-ra".into(), Val::Bool(accept_ra.is_true()));
    }
}

/// A space-separated string as a list; lists as they are.
fn listify(value: &Val) -> Vec<Val> {
    match value {
        Val::Str(s) if s.is_empty() => Vec::new(),
        Val::Str(s) if s.contains(' ') => s.split(' ').map(Val::from).collect(),
        Val::List(items) => items.clone(),
        Val::Null => Vec::new(),
        other => vec![other.clone()],
    }
}
