//! OpenStack ConfigDrive `network_data.json` converted to network-config v1, as cloud-init's
//! `convert_net_json` does: `links` become devices (physical, bond, vlan), `networks` their
//! subnets, `services` name servers. Links without a name are named by their MAC through the
//! system's interfaces ([`MacNames`]). Pure.

use crate::error::{index, join, PlaceError};
use crate::state::MacNames;
use crate::value::{dict, Dict, DictExt, Val};

/// Link types cloud-init treats as physical without a warning.
const KNOWN_PHYSICAL_TYPES: &[&str] = &[
    "bgpovs",
    "bridge",
    "cascading",
    "dvs",
    "ethernet",
    "hw_veb",
    "hyperv",
    "ovs",
    "phy",
    "tap",
    "vhostuser",
    "vif",
];

const PHYSICAL_KEYS: &[&str] = &["name", "type", "mac_address", "subnets", "params", "mtu"];
const SUBNET_KEYS: &[&str] = &[
    "type",
    "address",
    "netmask",
    "broadcast",
    "metric",
    "gateway",
    "pointopoint",
    "scope",
    "dns_nameservers",
    "dns_search",
    "routes",
];

/// What a link is known as, for links that refer to it (bond members, vlan parents).
struct LinkInfo {
    id: String,
    name: Option<String>,
    mac: Option<String>,
}

/// A deferred rename: once every link has a name, `key` of config entry `entry` is set
/// from the names of `targets` (formatted with `suffix`).
struct LinkUpdate {
    entry: usize,
    key: &'static str,
    targets: Vec<String>,
    list: bool,
    suffix: String,
}

/// Converts a `network_data.json` document into a v1 document (`{version: 1, config: […]}`).
pub fn convert_network_data(
    json: &Val,
    macs: &MacNames,
    warnings: &mut Vec<String>,
) -> Result<Dict, PlaceError> {
    let root = json
        .as_map()
        .ok_or_else(|| PlaceError::new("", "expected a JSON object"))?;
    let links = array(root, "links")?;
    let networks = array(root, "networks")?;
    let services = array(root, "services")?;

    let mut config: Vec<Dict> = Vec::new();
    let mut infos: Vec<LinkInfo> = Vec::new();
    let mut updates: Vec<LinkUpdate> = Vec::new();
    let mut bonds = 0;

    for (i, link) in links.iter().enumerate() {
        let place = index("links", i);
        let link = object(link, &place)?;
        let id = link
            .value("id")
            .map(Val::py_str)
            .ok_or_else(|| PlaceError::new(join(&place, "id"), "missing"))?;
        let link_type = link.text_of("type");
        let mut cfg: Dict = link
            .iter()
            .filter(|(k, _)| PHYSICAL_KEYS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mac = link
            .get("ethernet_mac_address")
            .filter(|m| m.truthy())
            .map(|m| m.py_str().to_ascii_lowercase());
        let mut info = LinkInfo {
            id: id.clone(),
            name: cfg.text_of("name"),
            mac: mac.clone(),
        };

        let mut subnets = Vec::new();
        for (n, network) in networks.iter().enumerate() {
            let net_place = index("networks", n);
            let network = object(network, &net_place)?;
            if network.value("link").map(Val::py_str).as_deref() != Some(id.as_str()) {
                continue;
            }
            let mut subnet: Dict = network
                .iter()
                .filter(|(k, _)| SUBNET_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ip_address = network.get("ip_address").cloned().unwrap_or(Val::Null);
            let net_type = network.text_of("type").unwrap_or_default();
            match net_type.as_str() {
                "ipv4_dhcp" => {
                    subnet.insert("type".into(), "dhcp4".into());
                }
                "ipv6_dhcp" => {
                    subnet.insert("type".into(), "dhcp6".into());
                }
                "ipv6_slaac" | "ipv6_dhcpv6-stateless" | "ipv6_dhcpv6-stateful" => {
                    subnet.insert("type".into(), net_type.as_str().into());
                }
                "ipv4" | "static" => {
                    subnet.insert("type".into(), "static".into());
                    subnet.insert("address".into(), ip_address);
                }
                "ipv6" | "static6" => {
                    cfg.insert("accept-ra".into(), false.into());
                    subnet.insert("type".into(), "static6".into());
                    subnet.insert("address".into(), ip_address);
                }
                _ => {}
            }
            if matches!(net_type.as_str(), "ipv6_dhcpv6-stateful" | "ipv6_dhcp") {
                cfg.insert("accept-ra".into(), true.into());
            }
            if net_type == "ipv4" {
                subnet.insert("ipv4".into(), true.into());
            }
            if net_type == "ipv6" {
                subnet.insert("ipv6".into(), true.into());
            }
            subnets.push(Val::Map(subnet));
        }
        cfg.insert("subnets".into(), Val::List(subnets));

        match link_type.as_deref() {
            Some("bond") => {
                if let Some(mac) = &mac {
                    cfg.insert("mac_address".into(), mac.as_str().into());
                }
                let params: Dict = link
                    .iter()
                    .filter(|(k, _)| k.starts_with("bond") && *k != "bond_links")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let members = link
                    .get("bond_links")
                    .and_then(Val::as_list)
                    .ok_or_else(|| {
                        PlaceError::new(join(&place, "bond_links"), "expected a list")
                    })?;
                updates.push(LinkUpdate {
                    entry: config.len(),
                    key: "bond_interfaces",
                    targets: members.iter().map(Val::py_str).collect(),
                    list: true,
                    suffix: String::new(),
                });
                let name = format!("bond{bonds}");
                bonds += 1;
                cfg.insert("params".into(), Val::Map(params));
                cfg.insert("name".into(), name.as_str().into());
                info.name = Some(name);
            }
            Some("vlan") => {
                let parent = link
                    .value("vlan_link")
                    .map(Val::py_str)
                    .ok_or_else(|| PlaceError::new(join(&place, "vlan_link"), "missing"))?;
                let vlan_id = link.get("vlan_id").cloned().unwrap_or(Val::Null);
                let name = format!("{parent}.{}", vlan_id.py_str());
                let vlan_mac = link.get("vlan_mac_address").cloned().unwrap_or(Val::Null);
                cfg.insert("name".into(), name.as_str().into());
                cfg.insert("vlan_id".into(), vlan_id.clone());
                cfg.insert("mac_address".into(), vlan_mac.clone());
                updates.push(LinkUpdate {
                    entry: config.len(),
                    key: "vlan_link",
                    targets: vec![parent.clone()],
                    list: false,
                    suffix: String::new(),
                });
                updates.push(LinkUpdate {
                    entry: config.len(),
                    key: "name",
                    targets: vec![parent],
                    list: false,
                    suffix: format!(".{}", vlan_id.py_str()),
                });
                info.mac = vlan_mac.as_str().map(str::to_string);
                info.name = Some(name);
            }
            other => {
                if let Some(other) = other.filter(|t| !KNOWN_PHYSICAL_TYPES.contains(t)) {
                    warnings.push(format!(
                        "{place}: unknown link type '{other}', treated as physical"
                    ));
                }
                cfg.insert("type".into(), "physical".into());
                cfg.insert("mac_address".into(), mac.map_or(Val::Null, Val::from));
            }
        }
        config.push(cfg);
        infos.retain(|known| known.id != info.id);
        infos.push(info);
    }

    let need_names: Vec<usize> = config
        .iter()
        .enumerate()
        .filter(|(_, d)| d.text("type") == Some("physical") && !d.contains_key("name"))
        .map(|(i, _)| i)
        .collect();
    if !need_names.is_empty() || !updates.is_empty() {
        for info in infos.iter_mut().filter(|i| i.name.is_none()) {
            if let Some(name) = info.mac.as_deref().and_then(|m| macs.name_of(m)) {
                info.name = Some(name.to_string());
            }
        }
        for i in need_names {
            let entry = &mut config[i];
            let Some(mac) = entry.text_of("mac_address") else {
                return Err(PlaceError::new(
                    index("links", i),
                    "no name and no ethernet_mac_address to find the interface by",
                ));
            };
            let Some(name) = macs.name_of(&mac) else {
                return Err(PlaceError::new(
                    index("links", i),
                    format!("no interface on this system has the MAC address {mac}"),
                ));
            };
            entry.insert("name".into(), name.into());
        }
        for update in updates {
            let mut names = Vec::new();
            for target in &update.targets {
                let info = infos.iter().find(|i| &i.id == target).ok_or_else(|| {
                    PlaceError::new(
                        index("links", update.entry),
                        format!("refers to link '{target}', which is not in links"),
                    )
                })?;
                let name = info.name.clone().unwrap_or_else(|| "None".to_string());
                names.push(Val::Str(format!("{name}{}", update.suffix)));
            }
            let value = if update.list {
                Val::List(names)
            } else {
                names.remove(0)
            };
            config[update.entry].insert(update.key.into(), value);
        }
    }

    for (i, service) in services.iter().enumerate() {
        let mut service = object(service, &index("services", i))?.clone();
        service.insert("type".into(), "nameserver".into());
        config.push(service);
    }

    Ok(dict([
        ("version", Val::Int(1)),
        ("config", Val::list_of_maps(config)),
    ]))
}

fn array<'v>(root: &'v Dict, key: &str) -> Result<&'v [Val], PlaceError> {
    match root.get(key) {
        None | Some(Val::Null) => Ok(&[]),
        Some(Val::List(items)) => Ok(items),
        Some(other) => Err(PlaceError::expected(key, "a list", other)),
    }
}

fn object<'v>(value: &'v Val, place: &str) -> Result<&'v Dict, PlaceError> {
    value
        .as_map()
        .ok_or_else(|| PlaceError::expected(place, "an object", value))
}
