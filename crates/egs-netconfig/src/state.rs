//! Network state: network-config v1 commands interpreted the way cloud-init's
//! `NetworkStateInterpreter` does, into interfaces, routes and DNS that every renderer reads.
//!
//! v2 documents are first turned into the same v1 commands (see `v2.rs`), so both versions
//! reach the renderers through one model. Invalid commands (a missing required key) are
//! skipped with a warning, as cloud-init skips them; values that cannot be right (an address
//! that is no address, an unknown command type) are errors naming the key. Pure.

use std::collections::HashMap;

use indexmap::IndexMap;

use crate::error::{index, join, PlaceError};
use crate::ip::{self, Family};
use crate::render::Fidelity;
use crate::value::{dict, Dict, DictExt, Val};

/// Interface names by MAC address (lower-case, colon form), as the system sees them.
///
/// v2 `match: {macaddress}` entries take the system's name for the MAC when there is no
/// `set-name`; `network_data.json` links without a name need it. Empty when unknown.
#[derive(Debug, Clone, Default)]
pub struct MacNames(HashMap<String, String>);

impl MacNames {
    /// No known interfaces.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the interface `name` has the MAC `mac`.
    pub fn insert(&mut self, mac: &str, name: &str) {
        self.0.insert(mac.to_ascii_lowercase(), name.to_string());
    }

    /// The interface with this MAC, if known.
    pub fn name_of(&self, mac: &str) -> Option<&str> {
        self.0.get(&mac.to_ascii_lowercase()).map(String::as_str)
    }

    /// Whether no interface is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The interpreted configuration every renderer reads.
#[derive(Debug, Clone)]
pub struct NetworkState {
    /// 1 or 2: the version of the document this came from.
    pub version: u8,
    /// The document itself (v2 renderers read some keys from it directly).
    pub document: Dict,
    /// Interfaces by name, in the order they were first mentioned.
    pub interfaces: IndexMap<String, Dict>,
    /// Routes not bound to an interface (v1 `type: route`).
    pub routes: Vec<Dict>,
    /// Global name servers.
    pub dns_nameservers: Vec<Val>,
    /// Global search domains.
    pub dns_search: Vec<Val>,
    /// What was skipped, for the log.
    pub warnings: Vec<String>,
}

/// Why a command was not applied.
pub(crate) enum Fault {
    /// A required key is missing: cloud-init skips the command with a warning.
    Skip(String),
    /// The input is wrong: the whole network-config is refused.
    Error(PlaceError),
}

impl From<PlaceError> for Fault {
    fn from(e: PlaceError) -> Self {
        Fault::Error(e)
    }
}

/// Interprets commands into a [`NetworkState`].
pub(crate) struct Interpreter<'a> {
    pub(crate) state: NetworkState,
    interface_dns: IndexMap<String, (Vec<Val>, Vec<Val>)>,
    pub(crate) macs: &'a MacNames,
    /// Checking a v2 document that netplan will read: sections and parameters only netplan
    /// knows are passed over with a warning instead of refused.
    pub(crate) lenient: bool,
    /// `CloudInit` reproduces 22.4.2 exactly; `Complete` keeps what its v1 model loses of
    /// v2 routes (metric, a /0 prefix, host routes written without a prefix).
    pub(crate) fidelity: Fidelity,
}

impl<'a> Interpreter<'a> {
    pub(crate) fn new(version: u8, document: Dict, macs: &'a MacNames) -> Self {
        Self {
            state: NetworkState {
                version,
                document,
                interfaces: IndexMap::new(),
                routes: Vec::new(),
                dns_nameservers: Vec::new(),
                dns_search: Vec::new(),
                warnings: Vec::new(),
            },
            interface_dns: IndexMap::new(),
            macs,
            lenient: false,
            fidelity: Fidelity::CloudInit,
        }
    }

    /// Runs a fault-returning step; a skip becomes a warning.
    pub(crate) fn skip_or_fail(
        &mut self,
        place: &str,
        result: Result<(), Fault>,
    ) -> Result<(), PlaceError> {
        match result {
            Ok(()) => Ok(()),
            Err(Fault::Skip(why)) => {
                self.state.warnings.push(format!("{place}: skipped: {why}"));
                Ok(())
            }
            Err(Fault::Error(e)) => Err(e),
        }
    }

    /// Interprets a v1 `config:` list.
    pub(crate) fn run_v1(&mut self, commands: &[Val], place: &str) -> Result<(), PlaceError> {
        for (i, command) in commands.iter().enumerate() {
            let place = index(place, i);
            let command = command.expect_map(&place)?;
            let kind = command
                .text("type")
                .ok_or_else(|| PlaceError::new(join(&place, "type"), "missing or not a string"))?;
            let result = match kind {
                "physical" | "loopback" | "infiniband" => self.physical(command, &place),
                "vlan" => self.vlan(command, &place),
                "bond" => self.bond(command, &place),
                "bridge" => self.bridge(command, &place),
                "nameserver" => self.nameserver(command, &place),
                "route" => self.route(command, &place),
                other => {
                    return Err(PlaceError::new(
                        join(&place, "type"),
                        format!("unknown command type '{other}' (known: physical, loopback, infiniband, vlan, bond, bridge, nameserver, route)"),
                    ))
                }
            };
            self.skip_or_fail(&place, result)?;
        }
        self.attach_interface_dns()
    }

    /// Interface-scoped `nameserver` commands, attached once every interface is known.
    fn attach_interface_dns(&mut self) -> Result<(), PlaceError> {
        for (name, (nameservers, search)) in std::mem::take(&mut self.interface_dns) {
            let missing = format!(
                "nameserver given for interface {name}, but interface {name} does not exist"
            );
            self.set_dns(&name, "addresses", nameservers, search)
                .ok_or_else(|| PlaceError::new("config", missing))?;
        }
        Ok(())
    }

    /// Sets an interface's `dns` as cloud-init stores it: v1 calls the servers
    /// `addresses`, v2 `nameservers`. `None` when there is no such interface.
    fn set_dns(
        &mut self,
        iface: &str,
        servers_key: &str,
        nameservers: Vec<Val>,
        search: Vec<Val>,
    ) -> Option<()> {
        let dns = Val::Map(dict([
            (servers_key, Val::List(nameservers)),
            ("search", Val::List(search)),
        ]));
        self.state
            .interfaces
            .get_mut(iface)?
            .insert("dns".into(), dns);
        Some(())
    }

    /// `type: physical` (and loopback, infiniband, and the base of every other device).
    pub(crate) fn physical(&mut self, command: &Dict, place: &str) -> Result<(), Fault> {
        require(command, &["name"])?;
        let name = command["name"].py_str();
        crate::names::check_ifname(&name).map_err(|m| PlaceError::new(join(place, "name"), m))?;
        let mut iface = self
            .state
            .interfaces
            .get(&name)
            .cloned()
            .unwrap_or_default();
        if let Some(params) = command.value("params") {
            let params = params
                .as_map()
                .ok_or_else(|| PlaceError::new(join(place, "params"), "expected a mapping"))?;
            for (k, v) in params {
                iface.insert(k.clone(), v.clone());
            }
        }
        let subnets = normalize_subnets(
            command.get("subnets"),
            &join(place, "subnets"),
            self.fidelity,
        )?;
        let flag = |key: &str| {
            command
                .value(key)
                .map_or(Val::Null, |v| Val::Bool(v.is_true()))
        };
        let fields = [
            ("name", command["name"].clone()),
            ("type", command.get("type").cloned().unwrap_or(Val::Null)),
            (
                "mac_address",
                command.get("mac_address").cloned().unwrap_or(Val::Null),
            ),
            ("inet", "inet".into()),
            ("mode", "manual".into()),
            ("mtu", command.get("mtu").cloned().unwrap_or(Val::Null)),
            ("address", Val::Null),
            ("gateway", Val::Null),
            ("subnets", Val::list_of_maps(subnets)),
            ("accept-ra", flag("accept-ra")),
            ("wakeonlan", flag("wakeonlan")),
        ];
        for (k, v) in fields {
            iface.insert(k.to_string(), v);
        }
        self.state.interfaces.insert(name, iface);
        Ok(())
    }

    /// `type: vlan`.
    pub(crate) fn vlan(&mut self, command: &Dict, place: &str) -> Result<(), Fault> {
        require(command, &["name", "vlan_id", "vlan_link"])?;
        crate::names::check_ifname(&command["vlan_link"].py_str())
            .map_err(|m| PlaceError::new(join(place, "vlan_link"), m))?;
        self.physical(command, place)?;
        let iface = self.interface_mut(command);
        iface.insert("vlan-raw-device".into(), command["vlan_link"].clone());
        iface.insert("vlan_id".into(), command["vlan_id"].clone());
        Ok(())
    }

    /// `type: bond`: the bond and its members, which get the bond's parameters too.
    pub(crate) fn bond(&mut self, command: &Dict, place: &str) -> Result<(), Fault> {
        require(command, &["name", "bond_interfaces", "params"])?;
        self.physical(command, place)?;
        let params = command["params"]
            .as_map()
            .ok_or_else(|| PlaceError::new(join(place, "params"), "expected a mapping"))?
            .clone();
        let bond_name = command["name"].clone();
        let iface = self.interface_mut(command);
        for (k, v) in &params {
            iface.insert(k.clone(), v.clone());
        }
        iface.insert("bond-slaves".into(), "none".into());
        for member in command["bond_interfaces"].expect_list(&join(place, "bond_interfaces"))? {
            let member_name = member.py_str();
            if !self.state.interfaces.contains_key(&member_name) {
                let placeholder = dict([("name", member.clone()), ("type", "bond".into())]);
                self.physical(&placeholder, place)?;
            }
            let member_iface = self
                .state
                .interfaces
                .get_mut(&member_name)
                .expect("member was just added");
            member_iface.insert("bond-master".into(), bond_name.clone());
            for (k, v) in &params {
                member_iface.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }

    /// `type: bridge`: ports that are not yet known get an untyped placeholder.
    pub(crate) fn bridge(&mut self, command: &Dict, place: &str) -> Result<(), Fault> {
        require(command, &["name", "bridge_interfaces"])?;
        let ports_place = join(place, "bridge_interfaces");
        for port in command["bridge_interfaces"].expect_list(&ports_place)? {
            if !self.state.interfaces.contains_key(&port.py_str()) {
                self.physical(&dict([("name", port.clone())]), place)?;
            }
        }
        self.physical(command, place)?;
        let ports = command["bridge_interfaces"].clone();
        let params = crate::v2::optional_mapping(command, "params", place)?;
        let iface = self.interface_mut(command);
        iface.insert("bridge_ports".into(), ports);
        for (k, v) in params {
            iface.insert(k, v);
        }
        if let Some(stp) = iface.value("bridge_stp").cloned() {
            let stp = match stp {
                Val::Bool(b) => b,
                Val::Int(1) => true,
                Val::Int(0) => false,
                Val::Str(ref s) if s == "on" || s == "1" => true,
                Val::Str(ref s) if s == "off" || s == "0" => false,
                other => {
                    return Err(PlaceError::new(
                        join(place, "params.bridge_stp"),
                        format!("cannot read {} as on/off", other.py_repr()),
                    )
                    .into())
                }
            };
            iface.insert("bridge_stp".into(), Val::Bool(stp));
        }
        Ok(())
    }

    /// `type: nameserver`: global, or for one interface when `interface` is given.
    pub(crate) fn nameserver(&mut self, command: &Dict, _place: &str) -> Result<(), Fault> {
        require(command, &["address"])?;
        let (nameservers, search) = parse_dns(command);
        match command.get("interface") {
            Some(interface) => {
                self.interface_dns
                    .insert(interface.py_str(), (nameservers, search));
            }
            None => {
                self.state.dns_nameservers.extend(nameservers);
                self.state.dns_search.extend(search);
            }
        }
        Ok(())
    }

    /// `type: route`: a route not bound to an interface.
    pub(crate) fn route(&mut self, command: &Dict, place: &str) -> Result<(), Fault> {
        require(command, &["destination"])?;
        let route = normalize_route(command, place, self.fidelity)?;
        self.state.routes.push(route);
        Ok(())
    }

    /// Sets an interface's DNS from a v2 `nameservers` block.
    pub(crate) fn set_interface_dns(
        &mut self,
        iface: &str,
        command: &Dict,
        place: &str,
    ) -> Result<(), Fault> {
        require(command, &["address"])?;
        let (nameservers, search) = parse_dns(command);
        self.set_dns(iface, "nameservers", nameservers, search)
            .ok_or_else(|| {
                PlaceError::new(
                    place,
                    format!("nameservers given for {iface}, which is not a configured interface"),
                )
                .into()
            })
    }

    fn interface_mut(&mut self, command: &Dict) -> &mut Dict {
        self.state
            .interfaces
            .get_mut(&command["name"].py_str())
            .expect("physical() registered the interface")
    }
}

/// cloud-init's `ensure_command_keys`: a missing key skips the command.
pub(crate) fn require(command: &Dict, keys: &[&str]) -> Result<(), Fault> {
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !command.contains_key(*k))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Fault::Skip(format!(
            "missing required key(s) {}",
            missing.join(", ")
        )))
    }
}

/// `address` and `search` of a nameserver command, each a list or a single value.
fn parse_dns(command: &Dict) -> (Vec<Val>, Vec<Val>) {
    let listed = |key: &str| match command.get(key) {
        None => Vec::new(),
        Some(Val::List(items)) => items.clone(),
        Some(other) => vec![other.clone()],
    };
    (listed("address"), listed("search"))
}

fn normalize_subnets(
    subnets: Option<&Val>,
    place: &str,
    fidelity: Fidelity,
) -> Result<Vec<Dict>, PlaceError> {
    let Some(subnets) = subnets.filter(|s| s.truthy()) else {
        return Ok(Vec::new());
    };
    subnets
        .expect_list(place)?
        .iter()
        .enumerate()
        .map(|(i, subnet)| {
            let place = index(place, i);
            normalize_subnet(subnet.expect_map(&place)?, &place, fidelity)
        })
        .collect()
}

/// A subnet with falsy values dropped, its address split into address and prefix (static
/// subnets), its routes normalized and DNS lists split.
pub(crate) fn normalize_subnet(
    subnet: &Dict,
    place: &str,
    fidelity: Fidelity,
) -> Result<Dict, PlaceError> {
    let mut normal: Dict = subnet
        .iter()
        .filter(|(_, v)| v.truthy())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if matches!(subnet.text("type"), Some("static" | "static6")) {
        let net = normalize_net_keys(&normal, &["address", "ip_address"], place, fidelity)?;
        normal.extend(net);
    }
    let routes = match subnet.get("routes") {
        None | Some(Val::Null) => Vec::new(),
        Some(routes) => {
            let routes_place = join(place, "routes");
            routes
                .expect_list(&routes_place)?
                .iter()
                .enumerate()
                .map(|(i, route)| {
                    let place = index(&routes_place, i);
                    let route = route
                        .as_map()
                        .ok_or_else(|| PlaceError::new(place.as_str(), "expected a mapping"))?;
                    normalize_route(route, &place, fidelity)
                })
                .collect::<Result<_, _>>()?
        }
    };
    normal.insert("routes".into(), Val::list_of_maps(routes));
    for key in ["dns_search", "dns_nameservers"] {
        match normal.get(key) {
            None | Some(Val::List(_)) => {}
            Some(Val::Str(s)) => {
                let split = s.split_whitespace().map(Val::from).collect();
                normal.insert(key.into(), Val::List(split));
            }
            Some(other) => {
                return Err(PlaceError::expected(
                    join(place, key),
                    "a list or a space-separated string",
                    other,
                ))
            }
        }
    }
    Ok(normal)
}

/// A route with `destination` renamed to `network`, prefix and netmask filled in and the
/// metric an integer.
pub(crate) fn normalize_route(
    route: &Dict,
    place: &str,
    fidelity: Fidelity,
) -> Result<Dict, PlaceError> {
    let mut normal: Dict = route
        .iter()
        .filter(|(_, v)| !matches!(v, Val::Null) && v.as_str() != Some(""))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(destination) = normal.get("destination").cloned() {
        normal.insert("network".into(), destination);
        normal.shift_remove("destination");
    }
    let net = normalize_net_keys(&normal, &["network", "destination"], place, fidelity)?;
    normal.extend(net);
    if let Some(metric) = normal.get("metric").filter(|m| m.truthy()).cloned() {
        let value = python_int(&metric).ok_or_else(|| {
            PlaceError::new(
                join(place, "metric"),
                format!("{} is not an integer", metric.py_repr()),
            )
        })?;
        normal.insert("metric".into(), Val::Int(value));
    }
    Ok(normal)
}

/// The address key split into address and `prefix`, with `netmask` for IPv4.
/// cloud-init drops falsy values first, so a prefix of 0 is lost and a normalized `::/0`
/// read again becomes `::/64`; [`Fidelity::Complete`] keeps it.
fn normalize_net_keys(
    network: &Dict,
    address_keys: &[&str],
    place: &str,
    fidelity: Fidelity,
) -> Result<Dict, PlaceError> {
    let keep_zero_prefix = fidelity == Fidelity::Complete;
    let mut net: Dict = network
        .iter()
        .filter(|(k, v)| v.truthy() || (keep_zero_prefix && *k == "prefix" && **v == Val::Int(0)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let Some(addr_key) = address_keys.iter().copied().find(|k| net.truthy(k)) else {
        return Err(PlaceError::new(
            place,
            format!(
                "no address given (expected one of: {})",
                address_keys.join(", ")
            ),
        ));
    };
    let addr = net[addr_key].py_str();
    let key_place = join(place, addr_key);
    let family = ip::network_family(&addr).ok_or_else(|| {
        PlaceError::new(
            key_place.as_str(),
            format!("'{addr}' is not a valid IP network"),
        )
    })?;
    let netmask = net.get("netmask").map(Val::py_str);
    let prefix: i64 = if let Some((part, mask)) = addr.split_once('/') {
        net.insert(addr_key.into(), Val::str(part));
        i64::from(
            family
                .mask_to_prefix(mask)
                .expect("validated by network_family"),
        )
    } else {
        net.insert(addr_key.into(), Val::str(addr.as_str()));
        if let Some(prefix) = net.get("prefix") {
            python_int(prefix).ok_or_else(|| {
                PlaceError::new(
                    join(place, "prefix"),
                    format!("{} is not an integer", prefix.py_repr()),
                )
            })?
        } else if let Some(mask) = netmask {
            i64::from(family.mask_to_prefix(&mask).ok_or_else(|| {
                PlaceError::new(
                    join(place, "netmask"),
                    format!("'{mask}' is not a valid netmask"),
                )
            })?)
        } else if family == Family::V6 {
            64
        } else {
            24
        }
    };
    let max = if family == Family::V6 { 128 } else { 32 };
    if !(0..=max).contains(&prefix) {
        return Err(PlaceError::new(
            join(place, "prefix"),
            format!("{prefix} is not a prefix length (0 to {max})"),
        ));
    }
    net.insert("prefix".into(), Val::Int(prefix));
    match family {
        Family::V6 => {
            net.shift_remove("netmask");
        }
        Family::V4 => {
            net.insert(
                "netmask".into(),
                Val::Str(ip::ipv4_prefix_to_mask(prefix as u8)),
            );
        }
    }
    Ok(net)
}

/// Python's `int(value)` for the values network-config holds.
pub(crate) fn python_int(value: &Val) -> Option<i64> {
    match value {
        Val::Int(i) => Some(*i),
        Val::Bool(b) => Some(i64::from(*b)),
        Val::Float(f) if f.is_finite() => Some(f.trunc() as i64),
        Val::Str(s) => {
            let t = s.trim().replace('_', "");
            t.parse().ok()
        }
        _ => None,
    }
}
