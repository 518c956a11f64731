//! Network configuration on Windows guests (`original-provisioning.md` §8.3): the
//! interpreted state turned into a plan of `netsh` commands and two registry values, per
//! adapter matched by MAC. Pure: the caller lists the adapters and runs the plan.
//!
//! Why `netsh`: it ships with every Windows edition including Server Core and Nano-less
//! images without PowerShell's NetTCPIP module, starts in milliseconds (a PowerShell
//! process takes a second or more), takes plain argv (no script text to quote), and its
//! commands name the interface by index, so what runs is exactly what this module's tests
//! show. The two things `netsh` cannot set, the connection-specific DNS suffix and the
//! global suffix search list, are the registry values Windows's own dialog writes.
//!
//! Idempotence: IPv4 addresses are set as a whole (`set address` replaces every static
//! address), IPv6 addresses are diffed against the adapter's manual addresses, and routes
//! are deleted before they are added, so a second run leaves the adapter as the first did.

use std::collections::HashSet;
use std::net::IpAddr;

use crate::ip::{self, Family};
use crate::render::{Fidelity, Renderer};
use crate::state::{MacNames, NetworkState};
use crate::value::{Dict, DictExt, Val};
use crate::{interpret, NetConfigError, NetworkConfig};

/// Registry key under `HKEY_LOCAL_MACHINE` with TCP/IP's DNS settings.
pub const TCPIP_PARAMETERS: &str = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters";

/// A network adapter as `GetAdaptersAddresses` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adapter {
    /// Interface index (`IfIndex`): what `netsh` commands name.
    pub index: u32,
    /// Adapter GUID with braces (`AdapterName`), the key of its registry settings.
    pub guid: String,
    /// Friendly name (`Ethernet`, `Ethernet 2`).
    pub alias: String,
    /// MAC address, lower-case colon form.
    pub mac: String,
    /// IPv6 addresses configured by hand (prefix origin manual), without prefix.
    pub manual_ipv6: Vec<String>,
}

/// One thing to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run `netsh.exe` with these arguments; a failure of a `may_fail` step (deleting
    /// what is not there) is expected and ignored.
    Netsh {
        /// Arguments after `netsh.exe`.
        args: Vec<String>,
        /// Failure is expected when there is nothing to delete.
        may_fail: bool,
    },
    /// Set the connection-specific DNS suffix (`Interfaces\{guid}` value `Domain`).
    ConnectionSuffix {
        /// The adapter's GUID with braces.
        guid: String,
        /// The suffix.
        suffix: String,
    },
    /// Set the global DNS suffix search list (`SearchList`, comma-separated).
    SearchList(Vec<String>),
}

impl Step {
    /// The step as a log line (a command line, or the registry value written).
    pub fn describe(&self) -> String {
        match self {
            Step::Netsh { args, .. } => format!("netsh {}", args.join(" ")),
            Step::ConnectionSuffix { guid, suffix } => {
                format!(r"HKLM\{TCPIP_PARAMETERS}\Interfaces\{guid}\Domain = {suffix}")
            }
            Step::SearchList(list) => {
                format!(r"HKLM\{TCPIP_PARAMETERS}\SearchList = {}", list.join(","))
            }
        }
    }
}

/// What to do, and what was passed over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Entries skipped and options not supported on Windows, for the log.
    pub warnings: Vec<String>,
}

/// The lower-case colon form of a MAC given with any case and `:`/`-`/no separators, or
/// `None` when it is not 12 hex digits.
pub fn normalize_mac(text: &str) -> Option<String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if digits.len() != 12 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let lower = digits.to_ascii_lowercase();
    let pairs: Vec<&str> = (0..6).map(|i| &lower[2 * i..2 * i + 2]).collect();
    Some(pairs.join(":"))
}

/// Plans `config` for these adapters. `search_list` is the machine's current global
/// suffix search list, which the configuration's search domains are merged into.
pub fn plan(
    config: &NetworkConfig,
    adapters: &[Adapter],
    search_list: &[String],
) -> Result<Plan, NetConfigError> {
    // Interfaces keep the names the configuration gives them (Windows aliases have
    // spaces, which interface names may not); adapters are found by MAC below.
    let state = interpret(
        config,
        Renderer::Networkd,
        Fidelity::Complete,
        &MacNames::new(),
    )?;
    let mut plan = Plan {
        warnings: state.warnings.clone(),
        ..Plan::default()
    };
    let mut searches: Vec<String> = Vec::new();
    for (name, iface) in &state.interfaces {
        let kind = iface.text("type").unwrap_or("physical");
        if kind != "physical" {
            plan.warnings.push(format!(
                "{name}: {kind} interfaces are not configured on Windows; skipped"
            ));
            continue;
        }
        unsupported_options(name, &state, &mut plan.warnings);
        let Some(mac) = interface_mac(name, iface, &state) else {
            match adapters.iter().find(|a| a.alias.eq_ignore_ascii_case(name)) {
                Some(adapter) => configure((name, iface), adapter, &state, &mut plan, &mut searches),
                None => plan.warnings.push(format!(
                    "{name}: no MAC address to find its adapter by, and no adapter named so; skipped"
                )),
            }
            continue;
        };
        match adapter_by_mac(adapters, &mac) {
            Some(adapter) => configure((name, iface), adapter, &state, &mut plan, &mut searches),
            None => plan
                .warnings
                .push(format!("{name}: no adapter with MAC {mac}; skipped")),
        }
    }
    if !searches.is_empty() {
        let mut merged: Vec<String> = Vec::new();
        for domain in search_list.iter().chain(&searches) {
            if !merged.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                merged.push(domain.clone());
            }
        }
        if merged != search_list {
            plan.steps.push(Step::SearchList(merged));
        }
    }
    Ok(plan)
}

/// The adapter with this MAC; with duplicates (a team and its members) the lowest index.
fn adapter_by_mac<'a>(adapters: &'a [Adapter], mac: &str) -> Option<&'a Adapter> {
    adapters
        .iter()
        .filter(|a| normalize_mac(&a.mac).as_deref() == Some(mac))
        .min_by_key(|a| a.index)
}

/// The MAC an interface is bound by: v2 `match.macaddress`, else v2's top-level
/// `macaddress` (as the original binds it), else v1 `mac_address`.
fn interface_mac(name: &str, iface: &Dict, state: &NetworkState) -> Option<String> {
    if let Some(mac) = iface.get("mac_address").filter(|m| m.truthy()) {
        return normalize_mac(&mac.py_str());
    }
    let ethernet = v2_ethernet(name, state)?;
    ethernet
        .get("macaddress")
        .filter(|m| m.truthy())
        .and_then(|m| normalize_mac(&m.py_str()))
}

/// The v2 `ethernets` entry an interface came from (by `set-name` or by key).
fn v2_ethernet<'a>(name: &str, state: &'a NetworkState) -> Option<&'a Dict> {
    let ethernets = state.document.get("ethernets").and_then(Val::as_map)?;
    ethernets
        .iter()
        .find(|(key, cfg)| {
            cfg.as_map().is_some_and(|c| {
                c.text_of("set-name")
                    .map_or(key.as_str() == name, |set| set == name)
            })
        })
        .or_else(|| ethernets.iter().find(|(key, _)| key.as_str() == name))
        .and_then(|(_, cfg)| cfg.as_map())
}

/// Warns about v2 options Windows does not apply.
fn unsupported_options(name: &str, state: &NetworkState, warnings: &mut Vec<String>) {
    let Some(ethernet) = v2_ethernet(name, state) else {
        return;
    };
    for option in [
        "set-name",
        "wakeonlan",
        "accept-ra",
        "dhcp4-overrides",
        "dhcp6-overrides",
        "routing-policy",
    ] {
        if ethernet.contains_key(option) {
            warnings.push(format!(
                "{name}: {option} is not supported on Windows; ignored"
            ));
        }
    }
    let matched = ethernet
        .get("match")
        .and_then(Val::as_map)
        .and_then(|m| m.get("macaddress"))
        .map(Val::py_str);
    if let (Some(matched), Some(set)) = (matched, ethernet.get("macaddress")) {
        if normalize_mac(&matched) != normalize_mac(&set.py_str()) {
            warnings.push(format!(
                "{name}: setting a new adapter MAC is not supported; macaddress ignored"
            ));
        }
    }
}

/// An address with its prefix length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Address {
    ip: String,
    prefix: u8,
}

/// What one interface asks for, by family.
#[derive(Default)]
struct Wanted {
    dhcp4: bool,
    dhcp6: bool,
    v4: Vec<Address>,
    v6: Vec<Address>,
    gateway4: Option<String>,
    gateway6: Option<String>,
    routes: Vec<Dict>,
    dns: Vec<String>,
    search: Vec<String>,
}

/// What an interface asks for. Every value that reaches a `netsh` argument or a registry
/// value is checked here (addresses and gateways parse as IP addresses, domains are host
/// names); anything else is left out with a warning, so no input can add a word to a
/// command.
fn wanted(name: &str, iface: &Dict, state: &NetworkState, warnings: &mut Vec<String>) -> Wanted {
    let mut wanted = Wanted::default();
    let mut ip_or_warn = |what: &str, text: String| -> Option<String> {
        if text.parse::<IpAddr>().is_ok() {
            Some(text)
        } else {
            warnings.push(format!(
                "{name}: {what} '{text}' is not an IP address; left out"
            ));
            None
        }
    };
    for subnet in iface.maps("subnets") {
        match subnet.text("type") {
            Some("dhcp" | "dhcp4") => wanted.dhcp4 = true,
            Some(t) if crate::render::IPV6_DYNAMIC_TYPES.contains(&t) => wanted.dhcp6 = true,
            _ => {}
        }
        if let Some(ip) = subnet
            .text_of("address")
            .and_then(|a| ip_or_warn("address", a))
        {
            let v6 = ip.contains(':');
            let prefix = subnet
                .get("prefix")
                .and_then(|p| p.py_str().parse().ok())
                .unwrap_or(if v6 { 64 } else { 24 });
            let gateway = subnet
                .text_of("gateway")
                .and_then(|g| ip_or_warn("gateway", g));
            if v6 {
                wanted.v6.push(Address { ip, prefix });
                wanted.gateway6 = wanted.gateway6.take().or(gateway);
            } else {
                wanted.v4.push(Address { ip, prefix });
                wanted.gateway4 = wanted.gateway4.take().or(gateway);
            }
        }
        wanted.routes.extend(subnet.maps("routes").cloned());
        push_texts(&mut wanted.dns, subnet.list("dns_nameservers"));
        push_texts(&mut wanted.search, subnet.list("dns_search"));
    }
    if let Some(dns) = iface.get("dns").and_then(Val::as_map) {
        push_texts(&mut wanted.dns, dns.list("nameservers"));
        push_texts(&mut wanted.dns, dns.list("addresses"));
        push_texts(&mut wanted.search, dns.list("search"));
    }
    if state.version == 1 && wanted.dns.is_empty() && wanted.search.is_empty() {
        push_texts(&mut wanted.dns, &state.dns_nameservers);
        push_texts(&mut wanted.search, &state.dns_search);
    }
    let dns = std::mem::take(&mut wanted.dns);
    wanted.dns = dns
        .into_iter()
        .filter_map(|server| ip_or_warn("name server", server))
        .collect();
    let (search, bad): (Vec<String>, Vec<String>) = std::mem::take(&mut wanted.search)
        .into_iter()
        .partition(|domain| is_domain(domain));
    wanted.search = search;
    for domain in bad {
        warnings.push(format!(
            "{name}: search domain '{domain}' is not a domain name; left out"
        ));
    }
    wanted
}

/// A DNS name: labels of letters, digits, `-` and `_`, at most 253 characters.
fn is_domain(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn push_texts(into: &mut Vec<String>, values: &[Val]) {
    for value in values {
        let text = value.py_str();
        if !text.is_empty() && !into.contains(&text) {
            into.push(text);
        }
    }
}

fn netsh(args: &[&str]) -> Step {
    Step::Netsh {
        args: args.iter().map(|a| a.to_string()).collect(),
        may_fail: false,
    }
}

fn netsh_may_fail(args: &[&str]) -> Step {
    Step::Netsh {
        args: args.iter().map(|a| a.to_string()).collect(),
        may_fail: true,
    }
}

/// The steps for one adapter, in the order of §8.3: IPv4, IPv6, routes, DNS, suffixes, MTU.
fn configure(
    (name, iface): (&str, &Dict),
    adapter: &Adapter,
    state: &NetworkState,
    plan: &mut Plan,
    searches: &mut Vec<String>,
) {
    let wanted = wanted(name, iface, state, &mut plan.warnings);
    let steps = &mut plan.steps;
    let index = adapter.index.to_string();
    let name = format!("name={index}");
    let interface = format!("interface={index}");

    if !wanted.v4.is_empty() {
        let first = &wanted.v4[0];
        let gateway = format!("gateway={}", wanted.gateway4.as_deref().unwrap_or("none"));
        steps.push(netsh(&[
            "interface",
            "ipv4",
            "set",
            "address",
            &name,
            "source=static",
            &format!("address={}", first.ip),
            &format!("mask={}", ip::ipv4_prefix_to_mask(first.prefix)),
            &gateway,
        ]));
        for extra in &wanted.v4[1..] {
            steps.push(netsh(&[
                "interface",
                "ipv4",
                "add",
                "address",
                &name,
                &format!("address={}", extra.ip),
                &format!("mask={}", ip::ipv4_prefix_to_mask(extra.prefix)),
            ]));
        }
    } else if wanted.dhcp4 {
        steps.push(netsh(&[
            "interface",
            "ipv4",
            "set",
            "address",
            &name,
            "source=dhcp",
        ]));
    }

    if !wanted.v6.is_empty() || wanted.dhcp6 {
        let keep: HashSet<&str> = wanted.v6.iter().map(|a| a.ip.as_str()).collect();
        for existing in &adapter.manual_ipv6 {
            if !keep.contains(existing.as_str()) {
                steps.push(netsh(&[
                    "interface",
                    "ipv6",
                    "delete",
                    "address",
                    &interface,
                    &format!("address={existing}"),
                ]));
            }
        }
        for address in &wanted.v6 {
            if !adapter.manual_ipv6.contains(&address.ip) {
                steps.push(netsh(&[
                    "interface",
                    "ipv6",
                    "add",
                    "address",
                    &interface,
                    &format!("address={}/{}", address.ip, address.prefix),
                ]));
            }
        }
    }
    if !wanted.v6.is_empty() {
        steps.push(netsh_may_fail(&[
            "interface",
            "ipv6",
            "delete",
            "route",
            "prefix=::/0",
            &interface,
        ]));
        if let Some(gateway) = &wanted.gateway6 {
            steps.push(netsh(&[
                "interface",
                "ipv6",
                "add",
                "route",
                "prefix=::/0",
                &interface,
                &format!("nexthop={gateway}"),
            ]));
        }
    } else if wanted.dhcp6 {
        steps.push(netsh(&[
            "interface",
            "ipv6",
            "set",
            "interface",
            &interface,
            "managedaddress=enabled",
            "otherstateful=enabled",
        ]));
    }

    for route in &wanted.routes {
        if let Err(why) = route_steps(route, &interface, steps) {
            plan.warnings.push(format!("{name}: route left out: {why}"));
        }
    }
    let steps = &mut plan.steps;

    for family in [Family::V4, Family::V6] {
        let servers: Vec<&String> = wanted
            .dns
            .iter()
            .filter(|s| (family == Family::V6) == s.contains(':'))
            .collect();
        let proto = family_name(family);
        for (i, server) in servers.iter().enumerate() {
            let address = format!("address={server}");
            if i == 0 {
                steps.push(netsh(&[
                    "interface",
                    proto,
                    "set",
                    "dnsservers",
                    &name,
                    "source=static",
                    &address,
                    "register=primary",
                    "validate=no",
                ]));
            } else {
                steps.push(netsh(&[
                    "interface",
                    proto,
                    "add",
                    "dnsservers",
                    &name,
                    &address,
                    &format!("index={}", i + 1),
                    "validate=no",
                ]));
            }
        }
    }

    if let Some(first) = wanted.search.first() {
        steps.push(Step::ConnectionSuffix {
            guid: adapter.guid.clone(),
            suffix: first.clone(),
        });
        for domain in &wanted.search {
            if !searches.contains(domain) {
                searches.push(domain.clone());
            }
        }
    }

    if let Some(mtu) = iface
        .get("mtu")
        .and_then(|m| m.py_str().parse::<u32>().ok())
        .filter(|m| *m > 0)
    {
        let mtu = format!("mtu={mtu}");
        for proto in ["ipv4", "ipv6"] {
            steps.push(netsh(&[
                "interface",
                proto,
                "set",
                "subinterface",
                &interface,
                &mtu,
                "store=persistent",
            ]));
        }
    }
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

/// A route replaced: deleted (there may be none) and added with its next hop and metric.
/// Its values must be an address, a prefix length, an address and a number.
fn route_steps(route: &Dict, interface: &str, steps: &mut Vec<Step>) -> Result<(), String> {
    let Some(network) = route.text_of("network") else {
        return Ok(());
    };
    let Ok(destination) = network.parse::<IpAddr>() else {
        return Err(format!("'{network}' is not an address"));
    };
    let v6 = destination.is_ipv6();
    let prefix = match route.get("prefix") {
        None => {
            if v6 {
                128
            } else {
                32
            }
        }
        Some(p) => p
            .py_str()
            .parse::<u8>()
            .map_err(|_| format!("prefix '{}' is not a number", p.py_str()))?,
    };
    let gateway = route.text_of("gateway");
    if let Some(g) = gateway.as_deref().filter(|g| g.parse::<IpAddr>().is_err()) {
        return Err(format!("gateway '{g}' is not an address"));
    }
    let metric = match route.get("metric") {
        None => None,
        Some(m) => Some(
            m.py_str()
                .parse::<u32>()
                .map_err(|_| format!("metric '{}' is not a number", m.py_str()))?,
        ),
    };
    let destination = format!("prefix={network}/{prefix}");
    let proto = if v6 { "ipv6" } else { "ipv4" };
    steps.push(netsh_may_fail(&[
        "interface",
        proto,
        "delete",
        "route",
        &destination,
        interface,
    ]));
    let mut add = vec![
        "interface".to_string(),
        proto.into(),
        "add".into(),
        "route".into(),
        destination,
        interface.into(),
    ];
    if let Some(gateway) = gateway {
        add.push(format!("nexthop={gateway}"));
    }
    if let Some(metric) = metric {
        add.push(format!("metric={metric}"));
    }
    steps.push(Step::Netsh {
        args: add,
        may_fail: false,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, InputKind};

    fn adapters() -> Vec<Adapter> {
        vec![
            Adapter {
                index: 12,
                guid: "{11111111-2222-3333-4444-555555555555}".into(),
                alias: "Ethernet".into(),
                mac: "00:11:22:33:44:55".into(),
                manual_ipv6: Vec::new(),
            },
            Adapter {
                index: 7,
                guid: "{aaaaaaaa-2222-3333-4444-555555555555}".into(),
                alias: "Ethernet 2".into(),
                mac: "d2:ab:04:5a:29:47".into(),
                manual_ipv6: vec!["2001:db8::99".into()],
            },
        ]
    }

    fn planned(yaml: &str, search_list: &[&str]) -> Plan {
        let config = load(
            "network-config",
            yaml.as_bytes(),
            InputKind::Yaml,
            &MacNames::new(),
        )
        .unwrap()
        .unwrap();
        let search: Vec<String> = search_list.iter().map(|s| s.to_string()).collect();
        plan(&config, &adapters(), &search).unwrap()
    }

    fn lines(plan: &Plan) -> Vec<String> {
        plan.steps.iter().map(Step::describe).collect()
    }

    const V1_STATIC: &str = "\
version: 1
config:
  - type: physical
    name: eth0
    mac_address: '00:11:22:33:44:55'
    mtu: 1400
    subnets:
      - type: static
        address: 10.0.0.5/24
        gateway: 10.0.0.1
        dns_nameservers: [1.1.1.1, 8.8.8.8]
        dns_search: [corp.local]
";

    const V2_STATIC: &str = "\
version: 2
ethernets:
  eth0:
    macaddress: '00-11-22-33-44-55'
    addresses: [10.0.0.5/24]
    gateway4: 10.0.0.1
    mtu: 1400
    nameservers:
      addresses: [1.1.1.1, 8.8.8.8]
      search: [corp.local]
";

    #[test]
    fn the_static_fixtures_of_v1_and_v2_give_the_same_steps() {
        let expected = vec![
            "netsh interface ipv4 set address name=12 source=static address=10.0.0.5 mask=255.255.255.0 gateway=10.0.0.1",
            "netsh interface ipv4 set dnsservers name=12 source=static address=1.1.1.1 register=primary validate=no",
            "netsh interface ipv4 add dnsservers name=12 address=8.8.8.8 index=2 validate=no",
            r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{11111111-2222-3333-4444-555555555555}\Domain = corp.local",
            "netsh interface ipv4 set subinterface interface=12 mtu=1400 store=persistent",
            "netsh interface ipv6 set subinterface interface=12 mtu=1400 store=persistent",
            r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\SearchList = example.org,corp.local",
        ];
        assert_eq!(lines(&planned(V1_STATIC, &["example.org"])), expected);
        assert_eq!(lines(&planned(V2_STATIC, &["example.org"])), expected);
    }

    #[test]
    fn a_search_list_that_already_has_the_domains_is_left_alone() {
        let plan = planned(V1_STATIC, &["CORP.local"]);
        assert!(!plan.steps.iter().any(|s| matches!(s, Step::SearchList(_))));
    }

    #[test]
    fn v1_dhcp_only_turns_dhcp_on() {
        let plan = planned(
            "version: 1\nconfig:\n  - type: physical\n    name: eth0\n    mac_address: 'D2:AB:04:5A:29:47'\n    subnets: [{type: dhcp}]\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            ["netsh interface ipv4 set address name=7 source=dhcp"]
        );
    }

    #[test]
    fn ipv6_addresses_are_diffed_and_the_default_route_replaced() {
        let plan = planned(
            "version: 2\nethernets:\n  lan:\n    match: {macaddress: 'd2:ab:04:5a:29:47'}\n    addresses: ['2001:db8::5/64']\n    gateway6: '2001:db8::1'\n    routes:\n      - {to: 10.10.0.0/16, via: 10.0.0.1, metric: 50}\n      - {to: default, via: 10.0.0.254}\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            [
                "netsh interface ipv6 delete address interface=7 address=2001:db8::99",
                "netsh interface ipv6 add address interface=7 address=2001:db8::5/64",
                "netsh interface ipv6 delete route prefix=::/0 interface=7",
                "netsh interface ipv6 add route prefix=::/0 interface=7 nexthop=2001:db8::1",
                "netsh interface ipv4 delete route prefix=10.10.0.0/16 interface=7",
                "netsh interface ipv4 add route prefix=10.10.0.0/16 interface=7 nexthop=10.0.0.1 metric=50",
                "netsh interface ipv4 delete route prefix=0.0.0.0/0 interface=7",
                "netsh interface ipv4 add route prefix=0.0.0.0/0 interface=7 nexthop=10.0.0.254",
            ]
        );
        let deletes_may_fail: Vec<bool> = plan
            .steps
            .iter()
            .map(|s| matches!(s, Step::Netsh { may_fail: true, .. }))
            .collect();
        assert_eq!(
            deletes_may_fail,
            [false, false, true, false, true, false, true, false]
        );
    }

    #[test]
    fn unknown_macs_bonds_and_unsupported_options_are_warned_not_applied() {
        let plan = planned(
            "version: 2\nethernets:\n  a:\n    match: {macaddress: '00:00:00:00:00:01'}\n    dhcp4: true\n  b:\n    match: {macaddress: '00:11:22:33:44:55'}\n    set-name: wan\n    wakeonlan: true\n    dhcp4: true\nbonds:\n  bond0:\n    interfaces: [a]\n    dhcp4: true\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            ["netsh interface ipv4 set address name=12 source=dhcp"]
        );
        let warnings = plan.warnings.join("\n");
        assert!(
            warnings.contains("a: no adapter with MAC 00:00:00:00:00:01; skipped"),
            "{warnings}"
        );
        assert!(
            warnings.contains("wan: set-name is not supported on Windows"),
            "{warnings}"
        );
        assert!(
            warnings.contains("wan: wakeonlan is not supported"),
            "{warnings}"
        );
        assert!(
            warnings.contains("bond0: bond interfaces are not configured on Windows"),
            "{warnings}"
        );
    }

    #[test]
    fn without_a_mac_the_adapter_is_found_by_its_name() {
        let plan = planned(
            "version: 2\nethernets:\n  Ethernet:\n    dhcp4: true\n  eth9:\n    dhcp4: true\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            ["netsh interface ipv4 set address name=12 source=dhcp"]
        );
        assert!(plan
            .warnings
            .iter()
            .any(|w| w.starts_with("eth9: no MAC address")));
    }

    #[test]
    fn values_that_are_not_addresses_or_domains_never_reach_a_command() {
        let plan = planned(
            "version: 2\nethernets:\n  e:\n    match: {macaddress: '00:11:22:33:44:55'}\n    dhcp4: true\n    nameservers:\n      addresses: ['1.1.1.1 source=dhcp', 9.9.9.9]\n      search: ['a,b', 'ok.example', 'x y']\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            [
                "netsh interface ipv4 set address name=12 source=dhcp",
                "netsh interface ipv4 set dnsservers name=12 source=static address=9.9.9.9 register=primary validate=no",
                r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces\{11111111-2222-3333-4444-555555555555}\Domain = ok.example",
                r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\SearchList = ok.example",
            ]
        );
        let warnings = plan.warnings.join("\n");
        assert!(
            warnings.contains("e: name server '1.1.1.1 source=dhcp' is not an IP address"),
            "{warnings}"
        );
        assert!(
            warnings.contains("e: search domain 'a,b' is not a domain name"),
            "{warnings}"
        );
        assert!(
            warnings.contains("e: search domain 'x y' is not a domain name"),
            "{warnings}"
        );
    }

    #[test]
    fn routes_of_an_interface_without_addresses_are_applied() {
        let plan = planned(
            "version: 2\nethernets:\n  e:\n    match: {macaddress: '00:11:22:33:44:55'}\n    routes: [{to: 10.10.0.0/16, via: 10.0.0.1}]\n",
            &[],
        );
        assert_eq!(
            lines(&plan),
            [
                "netsh interface ipv4 delete route prefix=10.10.0.0/16 interface=12",
                "netsh interface ipv4 add route prefix=10.10.0.0/16 interface=12 nexthop=10.0.0.1",
            ]
        );
    }

    #[test]
    fn duplicate_macs_take_the_lowest_index() {
        let mut list = adapters();
        list.push(Adapter {
            index: 3,
            guid: "{x}".into(),
            alias: "Team member".into(),
            mac: "00-11-22-33-44-55".into(),
            manual_ipv6: Vec::new(),
        });
        assert_eq!(adapter_by_mac(&list, "00:11:22:33:44:55").unwrap().index, 3);
    }

    #[test]
    fn macs_are_normalized_or_refused() {
        assert_eq!(
            normalize_mac("00-11-22-AA-BB-CC").as_deref(),
            Some("00:11:22:aa:bb:cc")
        );
        assert_eq!(
            normalize_mac("001122aabbcc").as_deref(),
            Some("00:11:22:aa:bb:cc")
        );
        assert_eq!(normalize_mac("00:11:22"), None);
        assert_eq!(normalize_mac("00:11:22:aa:bb:zz"), None);
    }
}
