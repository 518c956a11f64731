//! ifupdown's `/etc/network/interfaces` format (Debian writes
//! `/etc/network/interfaces.d/50-cloud-init`) and the udev rules that pin interface names
//! to MAC addresses, as cloud-init's ENI renderer writes them. Pure.
//!
//! One deliberate difference from cloud-init 22.4.2: an interface's own DNS settings were
//! written as a Python dictionary (`dns {'addresses': [...]}`), which ifupdown cannot read;
//! later cloud-init releases drop the line and so do we.

use crate::state::NetworkState;
use crate::value::{dict, space_joined, Dict, DictExt, Val};

use super::subnet_is_ipv6;

/// Keys of a subnet that become `iface` options.
const SUBNET_OPTIONS: &[&str] = &[
    "address",
    "netmask",
    "broadcast",
    "metric",
    "gateway",
    "pointopoint",
    "mtu",
    "scope",
    "dns_search",
    "dns_nameservers",
];

/// Interface keys that are not options.
const NOT_OPTIONS: &[&str] = &[
    "control",
    "device_id",
    "driver",
    "index",
    "inet",
    "mode",
    "name",
    "subnets",
    "type",
    "dns",
    crate::v2::MATCH_NAME,
];

/// Options written once per element of their list value.
const MULTILINE_OPTIONS: &[&str] = &["bridge_pathcost", "bridge_portprio", "bridge_waitport"];

/// The interfaces file body (without header).
pub fn render_interfaces(state: &NetworkState) -> String {
    let mut lo = dict([
        ("name", "lo".into()),
        ("type", "physical".into()),
        ("inet", "inet".into()),
        (
            "subnets",
            Val::List(vec![Val::Map(dict([
                ("type", "loopback".into()),
                ("control", "auto".into()),
            ]))]),
        ),
    ]);
    if let Some(own) = state
        .interfaces
        .values()
        .find(|i| i.text("name") == Some("lo"))
    {
        lo = own.clone();
    }
    if let Some(Val::List(subnets)) = lo.get_mut("subnets") {
        if let Some(Val::Map(first)) = subnets.first_mut() {
            if !state.dns_nameservers.is_empty() {
                first.insert(
                    "dns_nameservers".into(),
                    space_joined(&state.dns_nameservers).into(),
                );
            }
            if !state.dns_search.is_empty() {
                first.insert("dns_search".into(), space_joined(&state.dns_search).into());
            }
        }
    }

    let mut sections: Vec<Vec<String>> = Vec::new();
    render_iface(lo, &mut sections);
    // Interfaces of no kind are bridge ports that were never declared: cloud-init 22.4.2
    // fails on them ("KeyError: None"). ifupdown brings bridge ports up itself, so they get
    // no stanza, and a port named by its v2 key is written by the name `set-name` gives it.
    let renamed = set_names(state);
    let mut others: Vec<Dict> = state
        .interfaces
        .values()
        .filter(|i| i.text("name") != Some("lo") && i.value("type").is_some())
        .map(|i| with_renamed_ports(i, &renamed))
        .collect();
    others.sort_by_key(|i| (type_order(i), i.text_of("name").unwrap_or_default()));
    for iface in others {
        render_iface(iface, &mut sections);
    }
    for route in &state.routes {
        sections.push(route_lines(route, "", None));
    }
    let blocks: Vec<String> = sections.iter().map(|s| s.join("\n")).collect();
    blocks.join("\n\n") + "\n"
}

/// v2 ethernet keys that `set-name` renames, with their new names.
fn set_names(state: &NetworkState) -> Vec<(String, String)> {
    if state.version != 2 {
        return Vec::new();
    }
    let Some(ethernets) = state.document.get("ethernets").and_then(Val::as_map) else {
        return Vec::new();
    };
    ethernets
        .iter()
        .filter_map(|(key, cfg)| {
            let name = cfg
                .as_map()?
                .get("set-name")
                .filter(|n| n.truthy())?
                .py_str();
            Some((key.clone(), name))
        })
        .collect()
}

fn with_renamed_ports(iface: &Dict, renamed: &[(String, String)]) -> Dict {
    let mut iface = iface.clone();
    if let Some(Val::List(ports)) = iface.get_mut("bridge_ports") {
        for port in ports.iter_mut() {
            let name = port.py_str();
            if let Some((_, new)) = renamed.iter().find(|(key, _)| *key == name) {
                *port = Val::str(new.as_str());
            }
        }
    }
    iface
}

/// udev rules naming each physical interface with a MAC (`70-persistent-net.rules`).
pub fn render_udev_rules(state: &NetworkState) -> String {
    let mut out = String::new();
    for iface in state.interfaces.values() {
        if iface.text("type") != Some("physical") {
            continue;
        }
        let (Some(name), Some(mac)) = (
            iface.text_of("name"),
            iface.get("mac_address").filter(|m| m.truthy()),
        ) else {
            continue;
        };
        let driver = iface
            .get("driver")
            .filter(|d| d.truthy())
            .map_or("?*".to_string(), Val::py_str);
        out.push_str(&format!(
            "SUBSYSTEM==\"net\", ACTION==\"add\", DRIVERS==\"{driver}\", ATTR{{address}}==\"{}\", NAME=\"{name}\"\n",
            mac.py_str()
        ));
    }
    out
}

/// cloud-init orders interfaces by kind, then by name. Interfaces of no known kind (a
/// bridge port never declared) come last.
fn type_order(iface: &Dict) -> u8 {
    match iface.text("type") {
        Some("loopback") => 0,
        Some("physical") => 1,
        Some("infiniband") => 2,
        Some("bond") => 3,
        Some("bridge") => 4,
        Some("vlan") => 5,
        _ => 6,
    }
}

fn render_iface(mut iface: Dict, sections: &mut Vec<Vec<String>>) {
    let subnets: Vec<Dict> = iface.maps("subnets").cloned().collect();
    let accept_ra = iface
        .shift_remove("accept-ra")
        .filter(|v| !matches!(v, Val::Null));
    let wakeonlan = iface.shift_remove("wakeonlan");
    if wakeonlan.is_some_and(|w| w.truthy()) {
        iface.insert("ethernet-wol".into(), "g".into());
    }
    let name = iface.text_of("name").unwrap_or_default();
    if subnets.is_empty() {
        let mut lines = Vec::new();
        if iface.contains_key("bond-master") || iface.contains_key("bond-slaves") {
            lines.push(format!("auto {name}"));
        }
        lines.push(format!(
            "iface {name} {} {}",
            iface.text_of("inet").unwrap_or_default(),
            iface.text_of("mode").unwrap_or_default()
        ));
        lines.extend(attribute_lines(&iface, 0, None));
        sections.push(lines);
        return;
    }
    for (index, subnet) in subnets.iter().enumerate() {
        let kind = subnet.text_of("type").unwrap_or_default();
        let mut ipv4_subnet_mtu = None;
        let ipv6 = subnet_is_ipv6(subnet);
        if !ipv6 {
            ipv4_subnet_mtu = subnet.get("mtu").cloned();
        }
        iface.insert("index".into(), Val::Int(index as i64));
        iface.insert("mode".into(), kind.as_str().into());
        iface.insert(
            "control".into(),
            subnet
                .get("control")
                .cloned()
                .unwrap_or_else(|| "auto".into()),
        );
        iface.insert("inet".into(), if ipv6 { "inet6" } else { "inet" }.into());
        let accept_ra_flag = accept_ra
            .as_ref()
            .map(|v| Val::str(if v.truthy() { "1" } else { "0" }));
        match kind.as_str() {
            "dhcp4" | "dhcp6" | "ipv6_dhcpv6-stateful" => {
                iface.insert("mode".into(), "dhcp".into());
                if let Some(flag) = accept_ra_flag {
                    iface.insert("accept_ra".into(), flag);
                }
            }
            "ipv6_dhcpv6-stateless" => {
                iface.insert("mode".into(), "auto".into());
                iface.insert("dhcp".into(), "1".into());
            }
            "ipv6_slaac" => {
                iface.insert("mode".into(), "auto".into());
                iface.insert("dhcp".into(), "0".into());
            }
            _ if ipv6 => {
                iface.insert("mode".into(), "static".into());
                if let Some(flag) = accept_ra_flag {
                    iface.insert("accept_ra".into(), flag);
                }
            }
            _ => {}
        }
        let auto_line = format!("auto {name}");
        if sections.iter().flatten().any(|line| *line == auto_line) {
            iface.insert("control".into(), "alias".into());
        }
        let mut lines = start_lines(&iface);
        lines.extend(subnet_lines(subnet));
        lines.extend(attribute_lines(&iface, index, ipv4_subnet_mtu.as_ref()));
        for route in subnet.maps("routes") {
            lines.extend(route_lines(route, "    ", Some(&name)));
        }
        sections.push(lines);
    }
}

fn start_lines(iface: &Dict) -> Vec<String> {
    let control = iface.text_of("control").unwrap_or_default();
    let verb = match control.as_str() {
        "auto" => "auto".to_string(),
        "hotplug" => "allow-hotplug".to_string(),
        other => format!("# control-{other}"),
    };
    let name = iface.text_of("name").unwrap_or_default();
    vec![
        format!("{verb} {name}"),
        format!(
            "iface {name} {} {}",
            iface.text_of("inet").unwrap_or_default(),
            iface.text_of("mode").unwrap_or_default()
        ),
    ]
}

fn subnet_lines(subnet: &Dict) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, value) in subnet {
        if key == "netmask" || !SUBNET_OPTIONS.contains(&key.as_str()) {
            continue;
        }
        let value = if key == "address" {
            Val::Str(format!(
                "{}/{}",
                value.py_str(),
                subnet.get("prefix").map_or("None".into(), Val::py_str)
            ))
        } else {
            value.clone()
        };
        if !value.truthy() {
            continue;
        }
        lines.push(format!("    {} {}", key.replace('_', "-"), value.spaced()));
    }
    lines.sort();
    lines
}

fn attribute_lines(iface: &Dict, index: usize, ipv4_subnet_mtu: Option<&Val>) -> Vec<String> {
    if index != 0 {
        return Vec::new();
    }
    let kind = iface.text("type").unwrap_or_default();
    let hide_mac = !matches!(kind, "bond" | "bridge" | "infiniband" | "vlan");
    let mut lines = Vec::new();
    for (key, value) in iface {
        let value = match value {
            Val::Bool(b) => Val::str(if *b { "on" } else { "off" }),
            other => other.clone(),
        };
        if !value.truthy() || NOT_OPTIONS.contains(&key.as_str()) {
            continue;
        }
        if key == "mac_address" && hide_mac {
            continue;
        }
        if key == "mtu" && ipv4_subnet_mtu.is_some_and(Val::truthy) {
            continue;
        }
        let option = if key == "mac_address" {
            "hwaddress"
        } else {
            key.as_str()
        };
        if MULTILINE_OPTIONS.contains(&key.as_str()) {
            // A v2 per-port mapping iterates as its keys, as in cloud-init.
            let items: Vec<String> = match &value {
                Val::List(items) => items.iter().map(Val::py_str).collect(),
                Val::Map(ports) => ports.keys().cloned().collect(),
                other => vec![other.py_str()],
            };
            for item in items {
                lines.push(format!("    {option} {item}"));
            }
            continue;
        }
        lines.push(format!("    {option} {}", value.spaced()));
    }
    lines.sort();
    lines
}

/// `post-up route add …` / `pre-down route del …` for a route; `device` is the interface
/// an interface's own route is bound to (used when the route has no gateway, where
/// cloud-init 22.4.2 fails with "KeyError: 'gateway'").
fn route_lines(route: &Dict, indent: &str, device: Option<&str>) -> Vec<String> {
    let network = route.text_of("network").unwrap_or_default();
    let prefix = route.get("prefix").and_then(crate::state::python_int);
    let default_gw =
        if network == "0.0.0.0" && route.text_of("netmask").as_deref() == Some("0.0.0.0") {
            " default"
        } else if network == "::" && prefix == Some(0) {
            " -A inet6 default"
        } else {
            ""
        };
    let mut line = String::new();
    if default_gw.is_empty() && route.contains_key("network") {
        if network.contains(':') {
            line.push_str(" -A inet6");
        } else if prefix == Some(32) {
            line.push_str(" -host");
        } else {
            line.push_str(" -net");
        }
        if let Some(p) = route.get("prefix") {
            line.push_str(&format!(" {network}/{}", p.py_str()));
        }
    }
    match (route.get("gateway"), device) {
        (Some(gateway), _) => line.push_str(&format!("{default_gw} gw {}", gateway.py_str())),
        (None, Some(device)) => line.push_str(&format!("{default_gw} dev {device}")),
        (None, None) => line.push_str(default_gw),
    }
    if let Some(metric) = route.get("metric") {
        line.push_str(&format!(" metric {}", metric.py_str()));
    }
    vec![
        format!("{indent}post-up route add{line} || true"),
        format!("{indent}pre-down route del{line} || true"),
    ]
}
