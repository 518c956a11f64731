//! network-config v2 (netplan's format) turned into v1 commands, as cloud-init does for
//! every renderer except netplan (which gets v2 passed through untouched).
//!
//! `ethernets` become `physical` interfaces (named by `set-name`, else by the system's name
//! for `match.macaddress`, else by their key), `bonds`/`bridges` map their netplan parameter
//! names back to the v1 (ifupdown) ones, `vlans` become `vlan`; addresses, gateways, DHCP and
//! routes become subnets. Pure.

use crate::error::{index, join, PlaceError};
use crate::ip;
use crate::render::Fidelity;
use crate::state::{normalize_route, Fault, Interpreter};
use crate::value::{dict, Dict, DictExt, Val};

/// Interface key holding a v2 `match.name` pattern (only with `Fidelity::Complete`).
pub(crate) const MATCH_NAME: &str = "egs-match-name";

/// netplan bond parameter → v1 `params` key.
const BOND_PARAMS: &[(&str, &str)] = &[
    ("ad-select", "bond-ad-select"),
    ("arp-interval", "bond-arp-interval"),
    ("arp-ip-target", "bond-arp-ip-target"),
    ("arp-validate", "bond-arp-validate"),
    ("down-delay", "bond-downdelay"),
    ("fail-over-mac-policy", "bond-fail-over-mac"),
    ("lacp-rate", "bond-lacp-rate"),
    ("mii-monitor-interval", "bond-miimon"),
    ("min-links", "bond-min-links"),
    ("mode", "bond-mode"),
    ("gratuitous-arp", "bond-num-grat-arp"),
    ("primary", "bond-primary"),
    ("primary-reselect-policy", "bond-primary-reselect"),
    ("up-delay", "bond-updelay"),
    ("transmit-hash-policy", "bond-xmit-hash-policy"),
];

/// netplan bridge parameter → v1 `params` key.
const BRIDGE_PARAMS: &[(&str, &str)] = &[
    ("ageing-time", "bridge_ageing"),
    ("priority", "bridge_bridgeprio"),
    ("forward-delay", "bridge_fd"),
    ("hello-time", "bridge_hello"),
    ("max-age", "bridge_maxage"),
    ("path-cost", "bridge_pathcost"),
    ("port-priority", "bridge_portprio"),
    ("stp", "bridge_stp"),
];

/// The v1 key for a v2 bond or bridge parameter.
pub(crate) fn v1_param(table: &[(&'static str, &'static str)], v2: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == v2).map(|(_, v)| *v)
}

/// The v2 name of a v1 bond parameter (`bond-mode`, `bond_miimon`, … → `mode`, …).
pub(crate) fn bond_param_v2(v1: &str) -> Option<&'static str> {
    let v1 = v1.replace('_', "-");
    BOND_PARAMS.iter().find(|(_, k)| *k == v1).map(|(v, _)| *v)
}

/// The v2 name of a v1 bridge parameter (`bridge_stp` → `stp`).
pub(crate) fn bridge_param_v2(v1: &str) -> Option<&'static str> {
    BRIDGE_PARAMS
        .iter()
        .find(|(_, k)| *k == v1)
        .map(|(v, _)| *v)
}

impl Interpreter<'_> {
    /// Interprets a v2 document's device sections in the order they appear.
    pub(crate) fn run_v2(&mut self, document: &Dict) -> Result<(), PlaceError> {
        for (section, devices) in document {
            if section == "version" || section == "renderer" {
                continue;
            }
            let empty = Dict::new();
            let devices = match devices {
                Val::Map(devices) => devices,
                Val::Null => &empty,
                other => {
                    return Err(PlaceError::expected(
                        section.as_str(),
                        "a mapping of devices",
                        other,
                    ))
                }
            };
            let result = match section.as_str() {
                "ethernets" => self.ethernets(devices, section),
                "bonds" => self.bonds_or_bridges(devices, section, "bond"),
                "bridges" => self.bonds_or_bridges(devices, section, "bridge"),
                "vlans" => self.vlans(devices, section),
                "wifis" => {
                    self.state.warnings.push(
                        "wifis: wifi configuration is only rendered by netplan".to_string(),
                    );
                    continue;
                }
                other if self.lenient => {
                    self.state
                        .warnings
                        .push(format!("{other}: passed to netplan unchecked"));
                    continue;
                }
                other => {
                    return Err(PlaceError::new(
                        other,
                        "unknown section (this renderer knows ethernets, bonds, bridges, vlans and wifis; only netplan takes the others)",
                    ))
                }
            };
            let result = result.and_then(|()| self.interface_nameservers(devices, section));
            self.skip_or_fail(section, result)?;
        }
        Ok(())
    }

    fn ethernets(&mut self, devices: &Dict, section: &str) -> Result<(), Fault> {
        for (key, cfg) in devices {
            let place = join(section, key);
            let cfg = cfg.expect_map(&place)?;
            let matcher = optional_mapping(cfg, "match", &place)?;
            let mac = matcher.get("macaddress").filter(|m| m.truthy()).cloned();
            let name = if cfg.truthy("set-name") {
                cfg["set-name"].clone()
            } else {
                mac.as_ref()
                    .and_then(|mac| self.macs.name_of(&mac.py_str()))
                    .map_or_else(|| Val::str(key.as_str()), Val::from)
            };
            let mut command = dict([
                ("type", "physical".into()),
                ("mac_address", mac.unwrap_or(Val::Null)),
                ("name", name),
            ]);
            if matcher.truthy("driver") {
                command.insert(
                    "params".into(),
                    Val::Map(dict([("driver", matcher["driver"].clone())])),
                );
            }
            for key in ["mtu", "match", "wakeonlan", "accept-ra"] {
                if let Some(v) = cfg.get(key) {
                    command.insert(key.into(), v.clone());
                }
            }
            add_subnets(&mut command, cfg, &place, self.fidelity)?;
            let registered = command["name"].py_str();
            self.physical(&command, &place)?;
            // netplan matches `match: {name: …}` (a glob) when there is no set-name;
            // cloud-init 22.4.2 matches the entry's key instead. Complete fidelity keeps
            // the pattern for networkd's [Match] Name=.
            if self.fidelity == Fidelity::Complete && !cfg.truthy("set-name") {
                if let Some(pattern) = matcher.get("name").filter(|n| n.truthy()) {
                    if let Some(iface) = self.state.interfaces.get_mut(&registered) {
                        iface.insert(MATCH_NAME.into(), pattern.clone());
                    }
                }
            }
        }
        Ok(())
    }

    fn vlans(&mut self, devices: &Dict, section: &str) -> Result<(), Fault> {
        for (key, cfg) in devices {
            let place = join(section, key);
            let cfg = cfg.expect_map(&place)?;
            let mut command = dict([
                ("type", "vlan".into()),
                ("name", key.as_str().into()),
                ("vlan_id", cfg.get("id").cloned().unwrap_or(Val::Null)),
                ("vlan_link", cfg.get("link").cloned().unwrap_or(Val::Null)),
            ]);
            if let Some(mtu) = cfg.get("mtu") {
                command.insert("mtu".into(), mtu.clone());
            }
            add_subnets(&mut command, cfg, &place, self.fidelity)?;
            self.vlan(&command, &place)?;
        }
        Ok(())
    }

    fn bonds_or_bridges(&mut self, devices: &Dict, section: &str, kind: &str) -> Result<(), Fault> {
        let table = if kind == "bond" {
            BOND_PARAMS
        } else {
            BRIDGE_PARAMS
        };
        for (key, cfg) in devices {
            let place = join(section, key);
            let cfg = cfg.expect_map(&place)?;
            let mut parameters = optional_mapping(cfg, "parameters", &place)?;
            // netplan accepts the old misspelling too (LP: #1756701).
            if let Some(value) = parameters.shift_remove("gratuitious-arp") {
                if value.truthy() {
                    parameters.insert("gratuitous-arp".into(), value);
                }
            }
            let mut params = Dict::new();
            for (name, value) in &parameters {
                let param_place = join(&join(&place, "parameters"), name);
                match v1_param(table, name) {
                    Some(v1) => {
                        params.insert(v1.into(), value.clone());
                    }
                    None if self.lenient => self
                        .state
                        .warnings
                        .push(format!("{param_place}: passed to netplan unchecked")),
                    None => {
                        return Err(PlaceError::new(
                            param_place,
                            format!("unknown {kind} parameter"),
                        )
                        .into())
                    }
                }
            }
            let mut command = dict([
                ("type", kind.into()),
                ("name", key.as_str().into()),
                (
                    if kind == "bond" {
                        "bond_interfaces"
                    } else {
                        "bridge_interfaces"
                    },
                    cfg.get("interfaces").cloned().unwrap_or(Val::Null),
                ),
                ("params", Val::Map(params)),
            ]);
            if let Some(mtu) = cfg.get("mtu") {
                command.insert("mtu".into(), mtu.clone());
            }
            add_subnets(&mut command, cfg, &place, self.fidelity)?;
            if kind == "bond" {
                self.bond(&command, &place)?;
            } else {
                self.bridge(&command, &place)?;
            }
        }
        Ok(())
    }

    /// A device's `nameservers` become global DNS and the interface's own DNS.
    fn interface_nameservers(&mut self, devices: &Dict, section: &str) -> Result<(), Fault> {
        for (key, cfg) in devices {
            let place = join(section, key);
            let Some(cfg) = cfg.as_map() else { continue };
            let Some(nameservers) = cfg.get("nameservers") else {
                continue;
            };
            let nameservers = nameservers.as_map().ok_or_else(|| {
                PlaceError::new(join(&place, "nameservers"), "expected a mapping")
            })?;
            let mut iface = if cfg.truthy("set-name") {
                cfg["set-name"].py_str()
            } else {
                key.clone()
            };
            let mut command = dict([("type", "nameserver".into())]);
            for (from, to) in [("search", "search"), ("addresses", "address")] {
                if let Some(v) = nameservers.get(from).filter(|v| v.truthy()) {
                    command.insert(to.into(), v.clone());
                }
            }
            self.nameserver(&command, &place)?;
            let mac = cfg
                .get("match")
                .and_then(Val::as_map)
                .and_then(|m| m.get("macaddress"))
                .filter(|m| m.truthy());
            // The name the interface was registered under: `set-name` wins over the
            // system's name for the MAC, as in `ethernets` (cloud-init 22.4.2 looks the MAC
            // up regardless and fails with a KeyError when both are given).
            if !cfg.truthy("set-name") {
                if let Some(real) = mac.and_then(|mac| self.macs.name_of(&mac.py_str())) {
                    iface = real.to_string();
                }
            }
            self.set_interface_dns(&iface, &command, &place)?;
        }
        Ok(())
    }
}

/// The mapping under `key`; absent or null is empty, anything else an error.
pub(crate) fn optional_mapping(cfg: &Dict, key: &str, place: &str) -> Result<Dict, PlaceError> {
    match cfg.get(key) {
        Some(Val::Map(m)) => Ok(m.clone()),
        None | Some(Val::Null) => Ok(Dict::new()),
        Some(other) => Err(PlaceError::expected(join(place, key), "a mapping", other)),
    }
}

/// Adds a v2 device's DHCP, addresses and routes to its v1 command as `subnets` (no key
/// when there are none).
fn add_subnets(
    command: &mut Dict,
    cfg: &Dict,
    place: &str,
    fidelity: Fidelity,
) -> Result<(), PlaceError> {
    let subnets = subnets_of(cfg, place, fidelity)?;
    if !subnets.is_empty() {
        command.insert("subnets".into(), Val::list_of_maps(subnets));
    }
    Ok(())
}

/// DHCP, addresses, gateways, name servers and routes of a v2 device as v1 subnets.
fn subnets_of(cfg: &Dict, place: &str, fidelity: Fidelity) -> Result<Vec<Dict>, PlaceError> {
    let mut subnets = Vec::new();
    for family in ["4", "6"] {
        if cfg.truthy(&format!("dhcp{family}")) {
            let mut subnet = dict([("type", format!("dhcp{family}").into())]);
            if let Some(Val::Map(overrides)) = cfg.get(&format!("dhcp{family}-overrides")) {
                if let Some(metric) = overrides.get("route-metric") {
                    subnet.insert("metric".into(), metric.clone());
                }
            }
            subnets.push(subnet);
        }
    }
    let mut gateway4: Option<Val> = None;
    let mut gateway6: Option<Val> = None;
    let mut dns = Dict::new();
    for address in addresses_of(cfg, place)? {
        let mut subnet = dict([
            ("type", "static".into()),
            ("address", address.as_str().into()),
        ]);
        let (gateway_key, slot) = if address.contains(':') {
            ("gateway6", &mut gateway6)
        } else {
            ("gateway4", &mut gateway4)
        };
        if slot.is_none() {
            if let Some(gateway) = cfg.get(gateway_key) {
                *slot = Some(gateway.clone());
                subnet.insert("gateway".into(), gateway.clone());
            }
        }
        if let Some(nameservers) = cfg.get("nameservers") {
            if dns.is_empty() {
                let nameservers = nameservers.as_map().ok_or_else(|| {
                    PlaceError::new(join(place, "nameservers"), "expected a mapping")
                })?;
                if let Some(v) = nameservers.get("addresses").filter(|v| v.truthy()) {
                    dns.insert("dns_nameservers".into(), v.clone());
                }
                if let Some(v) = nameservers.get("search").filter(|v| v.truthy()) {
                    dns.insert("dns_search".into(), v.clone());
                }
                subnet.extend(dns.clone());
            }
        }
        subnets.push(subnet);
    }
    let mut routes = Vec::new();
    if let Some(list) = cfg.value("routes") {
        let routes_place = join(place, "routes");
        for (i, route) in list.expect_list(&routes_place)?.iter().enumerate() {
            let route_place = index(&routes_place, i);
            let route = route
                .as_map()
                .ok_or_else(|| PlaceError::new(route_place.as_str(), "expected a mapping"))?;
            let via = route.get("via").cloned().unwrap_or(Val::Null);
            let to = match route.get("to") {
                Some(Val::Str(to)) if to == "default" => {
                    let v6 = via.as_str().is_some_and(|v| v.contains(':'));
                    Val::str(if v6 { "::/0" } else { "0.0.0.0/0" })
                }
                Some(to) => to.clone(),
                None => Val::Null,
            };
            // cloud-init 22.4 carries only destination and gateway of a v2 route into
            // the v1 model, and reads a destination without a prefix as a v1 network
            // (/24 or /64). Complete fidelity keeps the metric and, as netplan does,
            // reads such a destination as one host.
            let mut v1 = dict([("destination", to), ("gateway", via)]);
            if fidelity == Fidelity::Complete {
                if let Some(Val::Str(to)) = v1.get("destination").cloned() {
                    if !to.contains('/') {
                        let host = if to.contains(':') { 128 } else { 32 };
                        v1.insert("destination".into(), Val::Str(format!("{to}/{host}")));
                    }
                }
                if let Some(metric) = route.get("metric") {
                    v1.insert("metric".into(), metric.clone());
                }
            }
            let normalized = normalize_route(&v1, &route_place, fidelity)?;
            routes.push(Val::Map(normalized));
        }
    }
    if !subnets.is_empty() && !routes.is_empty() {
        subnets[0].insert("routes".into(), Val::List(routes));
    } else if !routes.is_empty() && fidelity == Fidelity::Complete {
        // cloud-init 22.4.2 drops routes of a device with neither addresses nor DHCP;
        // netplan (and the original EGS) keep them: a `manual` subnet carries them.
        subnets.push(dict([
            ("type", "manual".into()),
            ("routes", Val::List(routes)),
        ]));
    }
    Ok(subnets)
}

/// `addresses`: a list (or a lone string) of `ip/prefix` strings; netplan's
/// `{"ip/prefix": {lifetime, label}}` form contributes its key.
fn addresses_of(cfg: &Dict, place: &str) -> Result<Vec<String>, PlaceError> {
    let place = join(place, "addresses");
    let items = match cfg.get("addresses") {
        None | Some(Val::Null) => return Ok(Vec::new()),
        Some(Val::List(items)) => items.clone(),
        Some(Val::Str(s)) => vec![Val::str(s.as_str())],
        Some(other) => return Err(PlaceError::expected(place, "a list", other)),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let address = match item {
                Val::Str(s) => s.clone(),
                Val::Map(m) if m.len() == 1 => m.keys().next().expect("one key").clone(),
                other => {
                    return Err(PlaceError::expected(
                        index(&place, i),
                        "an address string",
                        other,
                    ))
                }
            };
            if ip::network_family(&address).is_none() {
                return Err(PlaceError::new(
                    index(&place, i),
                    format!("'{address}' is not a valid IP network"),
                ));
            }
            Ok(address)
        })
        .collect()
}
