//! systemd-networkd `.network` files (`/etc/systemd/network/10-cloud-init-<name>.network`),
//! one per interface, laid out as cloud-init's networkd renderer lays them out: sections in
//! name order, each section's lines sorted and de-duplicated, one `[Address]` section per
//! address and one `[Route]` section per route. Pure.

use std::collections::BTreeMap;

use crate::render::Fidelity;
use crate::state::NetworkState;
use crate::v2::MATCH_NAME;
use crate::value::{Dict, DictExt, Val};

/// The lines of one `.network` file, by section.
#[derive(Default)]
struct Sections {
    /// Plain sections (`Match`, `Link`, `Network`, `DHCPv4`, `DHCPv6`, `Address`).
    plain: BTreeMap<&'static str, Vec<String>>,
    /// `[Route]` sections by route id.
    routes: BTreeMap<String, Vec<String>>,
}

impl Sections {
    fn add(&mut self, section: &'static str, key: &str, value: impl Into<String>) {
        push_unique(self.plain.entry(section).or_default(), key, value.into());
    }

    fn add_route(&mut self, id: &str, key: &str, value: impl Into<String>) {
        push_unique(
            self.routes.entry(id.to_string()).or_default(),
            key,
            value.into(),
        );
    }

    fn text(mut self) -> String {
        let mut out = String::new();
        let routes = std::mem::take(&mut self.routes);
        let mut names: Vec<&'static str> = self.plain.keys().copied().collect();
        if !routes.is_empty() {
            names.push("Route");
        }
        names.sort_unstable();
        for name in names {
            if name == "Route" {
                for lines in routes.values() {
                    out.push_str("[Route]\n");
                    for line in sorted(lines) {
                        out.push_str(&line);
                        out.push_str("\n\n");
                    }
                }
                continue;
            }
            let lines = sorted(&self.plain[name]);
            if name == "Address" {
                for line in lines {
                    out.push_str(&format!("[Address]\n{line}\n\n"));
                }
            } else {
                out.push_str(&format!("[{name}]\n"));
                for line in lines {
                    out.push_str(&line);
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        out
    }
}

/// Adds `key=value` unless the section has that line already (cloud-init de-duplicates).
fn push_unique(lines: &mut Vec<String>, key: &str, value: String) {
    let line = format!("{key}={value}");
    if !lines.contains(&line) {
        lines.push(line);
    }
}

fn sorted(lines: &[String]) -> Vec<String> {
    let mut lines = lines.to_vec();
    lines.sort();
    lines
}

/// `(interface name, file body)` for every interface, in state order.
///
/// With [`Fidelity::Complete`] a physical interface with a MAC is matched by its permanent
/// MAC alone: on the boot that renames it (its `.link` file) it still has the kernel's
/// name, and a bond or VLAN that borrows the MAC has no permanent one. A v2 name pattern
/// is matched as a pattern.
pub fn render(state: &NetworkState, fidelity: Fidelity) -> Vec<(String, String)> {
    let complete = fidelity == Fidelity::Complete;
    let mut files: Vec<(String, String)> = Vec::new();
    for iface in state.interfaces.values() {
        let mut sections = Sections::default();
        let by_permanent_mac = complete
            && iface.text("type") == Some("physical")
            && iface.get("mac_address").is_some_and(Val::truthy);
        let name_key = if iface.contains_key(MATCH_NAME) {
            MATCH_NAME
        } else {
            "name"
        };
        let mut matches = vec![
            (name_key, "Name"),
            ("driver", "Driver"),
            ("mac_address", "MACAddress"),
        ];
        if by_permanent_mac {
            matches = vec![("driver", "Driver"), ("mac_address", "PermanentMACAddress")];
        }
        for (key, section_key) in matches {
            if let Some(v) = iface.get(key).filter(|v| v.truthy()) {
                let value = if by_permanent_mac && key == "mac_address" {
                    v.py_str().to_lowercase()
                } else {
                    v.py_str()
                };
                sections.add("Match", section_key, value);
            }
        }
        if let Some(mtu) = iface.get("mtu").filter(|v| v.truthy()) {
            sections.add("Link", "MTUBytes", mtu.py_str());
        }
        let dhcp = subnets(iface, &mut sections);
        dns(iface, state, &mut sections);
        for (i, route) in state.routes.iter().enumerate() {
            add_route(&format!("c{i}"), route, &mut sections);
        }
        if state.version == 2 {
            dhcp_overrides(iface, state, &dhcp, &mut sections);
        }
        let name = iface.text_of("name").unwrap_or_default();
        let body = sections.text();
        match files.iter_mut().find(|(n, _)| *n == name) {
            Some(existing) => existing.1 = body,
            None => files.push((name, body)),
        }
    }
    files
}

fn add_route(id: &str, route: &Dict, sections: &mut Sections) {
    let prefix = route
        .get("prefix")
        .map(|p| format!("/{}", p.py_str()))
        .unwrap_or_default();
    for (key, value) in route {
        match key.as_str() {
            "gateway" => sections.add_route(id, "Gateway", value.py_str()),
            "network" => {
                sections.add_route(id, "Destination", format!("{}{prefix}", value.py_str()))
            }
            "metric" => sections.add_route(id, "Metric", value.py_str()),
            _ => {}
        }
    }
}

/// `[Network] DHCP=`, addresses, gateways as routes, per-subnet DNS; returns the DHCP mode.
fn subnets(iface: &Dict, sections: &mut Sections) -> String {
    let mut dhcp = "no";
    let mut route_id = 0;
    for subnet in iface.maps("subnets") {
        match subnet.text("type") {
            Some("dhcp4" | "dhcp") => {
                dhcp = match dhcp {
                    "no" => "ipv4",
                    "ipv6" => "yes",
                    other => other,
                }
            }
            Some("dhcp6") => {
                dhcp = match dhcp {
                    "no" => "ipv6",
                    "ipv4" => "yes",
                    other => other,
                }
            }
            _ => {}
        }
        for route in subnet.maps("routes") {
            add_route(&format!("r{route_id}"), route, sections);
            route_id += 1;
        }
        if subnet.contains_key("address") {
            for (key, value) in subnet {
                match key.as_str() {
                    "address" => {
                        let mut address = value.py_str();
                        if let Some(prefix) = subnet.get("prefix") {
                            address = format!("{address}/{}", prefix.py_str());
                        }
                        sections.add("Address", "Address", address);
                    }
                    "gateway" => {
                        sections.add_route(&format!("a{route_id}"), "Gateway", value.py_str());
                        route_id += 1;
                    }
                    "dns_nameservers" => sections.add("Network", "DNS", value.spaced()),
                    "dns_search" => sections.add("Network", "Domains", value.spaced()),
                    _ => {}
                }
            }
        }
    }
    sections.add("Network", "DHCP", dhcp);
    if matches!(dhcp, "ipv6" | "yes") {
        if let Some(Val::Bool(accept_ra)) = iface.get("accept-ra") {
            sections.add("Network", "IPv6AcceptRA", Val::Bool(*accept_ra).py_str());
        }
    }
    dhcp.to_string()
}

/// The interface's own DNS, or (v1 only) the global DNS.
fn dns(iface: &Dict, state: &NetworkState, sections: &mut Sections) {
    let own = iface
        .get("dns")
        .and_then(Val::as_map)
        .filter(|d| !d.is_empty());
    let global;
    let dns = match own {
        Some(dns) => dns,
        None if state.version == 1 => {
            global = crate::value::dict([
                ("search", Val::List(state.dns_search.clone())),
                ("nameservers", Val::List(state.dns_nameservers.clone())),
            ]);
            &global
        }
        None => return,
    };
    for (key, section_key) in [
        ("search", "Domains"),
        ("nameservers", "DNS"),
        ("addresses", "DNS"),
    ] {
        if let Some(v) = dns.get(key).filter(|v| v.truthy()) {
            sections.add("Network", section_key, v.spaced());
        }
    }
}

/// v2 `dhcp4domain`/`dhcp6domain` and `dhcp4-overrides`/`dhcp6-overrides` of the ethernet
/// this interface came from.
fn dhcp_overrides(iface: &Dict, state: &NetworkState, dhcp: &str, sections: &mut Sections) {
    let Some(ethernets) = state.document.get("ethernets").and_then(Val::as_map) else {
        return;
    };
    let mut name = iface.text_of("name").unwrap_or_default();
    if let Some((key, _)) = ethernets.iter().find(|(_, cfg)| {
        cfg.as_map().is_some_and(|c| {
            c.contains_key("set-name") && c.text_of("set-name").as_deref() == Some(name.as_str())
        })
    }) {
        name = key.clone();
    }
    let Some(device) = ethernets.get(&name).and_then(Val::as_map) else {
        return;
    };
    for (key, section) in [("dhcp4domain", "DHCPv4"), ("dhcp6domain", "DHCPv6")] {
        let Some(value) = device.get(key) else {
            continue;
        };
        let text = value.py_str().to_lowercase();
        let rendered = match text.as_str() {
            "true" | "yes" | "on" | "1" => "yes",
            "false" | "no" | "off" | "0" => "no",
            "route" => "route",
            _ => "no",
        };
        sections.add(section, "UseDomains", rendered);
    }
    for version in ["4", "6"] {
        if !matches!(dhcp, "yes") && dhcp != format!("ipv{version}") {
            continue;
        }
        let Some(overrides) = device
            .get(&format!("dhcp{version}-overrides"))
            .and_then(Val::as_map)
        else {
            continue;
        };
        let mut map = vec![
            ("UseDNS", "use-dns"),
            ("UseDomains", "use-domains"),
            ("UseHostname", "use-hostname"),
            ("UseNTP", "use-ntp"),
        ];
        if version == "4" {
            map.extend([
                ("SendHostname", "send-hostname"),
                ("Hostname", "hostname"),
                ("RouteMetric", "route-metric"),
                ("UseMTU", "use-mtu"),
                ("UseRoutes", "use-routes"),
            ]);
        }
        let section = if version == "4" { "DHCPv4" } else { "DHCPv6" };
        for (key, v2) in map {
            if let Some(value) = overrides.get(v2) {
                sections.add(section, key, value.py_str());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{convert, Fidelity, InputKind, MacNames, Renderer};

    fn network_file(yaml: &str, fidelity: Fidelity) -> (String, String) {
        let files = convert(
            "t",
            yaml.as_bytes(),
            InputKind::Yaml,
            Renderer::Networkd,
            fidelity,
            &MacNames::new(),
        )
        .unwrap()
        .unwrap()
        .files;
        let file = files
            .into_iter()
            .find(|f| f.path.ends_with(".network"))
            .unwrap();
        (file.path, file.contents)
    }

    #[test]
    fn a_name_pattern_matches_by_pattern_when_applying() {
        let yaml =
            "version: 2\nethernets:\n  uplinks:\n    match: {name: 'enp2*'}\n    dhcp4: true\n";
        let (path, body) = network_file(yaml, Fidelity::CloudInit);
        assert_eq!(path, "etc/systemd/network/10-cloud-init-uplinks.network");
        assert!(
            body.contains("Name=uplinks\n"),
            "cloud-init 22.4.2 matches the key: {body}"
        );
        let (path, body) = network_file(yaml, Fidelity::Complete);
        assert_eq!(path, "etc/systemd/network/10-cloud-init-uplinks.network");
        assert!(body.contains("[Match]\nName=enp2*\n"), "{body}");
    }
}
