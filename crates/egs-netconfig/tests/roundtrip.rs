//! Property: a v1 configuration rendered to netplan and read back (as the v2 document it
//! now is) is stable. The netplan file is a fixed point (rendering it again gives the same
//! YAML data), and it describes the same network as the v1 original: the systemd-networkd
//! files rendered from either are the same settings.

use std::collections::BTreeSet;

use egs_cloudconfig::yaml;
use egs_netconfig::value::dict;
use egs_netconfig::{convert, Dict, Fidelity, InputKind, MacNames, Renderer, Val};
use proptest::prelude::*;

/// One generated interface: MAC, MTU, DHCP flags, static addresses with at most one
/// gateway per family, routes, per-interface DNS on one subnet.
fn interface(index: usize) -> impl Strategy<Value = Val> {
    (
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![1280i64, 1500, 9000])),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec((1u8..250, 8u8..=30), 0..3),
        prop::collection::vec(1u16..0xfff, 0..2),
        any::<bool>(),
        prop::collection::vec(1u8..250, 0..3),
        any::<bool>(),
    )
        .prop_map(
            move |(mac, mtu, dhcp4, dhcp6, v4, v6, gateway, routes, dns)| {
                let mut cmd = dict([
                    ("type", "physical".into()),
                    ("name", Val::Str(format!("eth{index}"))),
                ]);
                if mac {
                    cmd.insert(
                        "mac_address".into(),
                        Val::Str(format!("52:54:00:12:34:{index:02x}")),
                    );
                }
                if let Some(mtu) = mtu {
                    cmd.insert("mtu".into(), Val::Int(mtu));
                }
                let mut subnets = Vec::new();
                if dhcp4 {
                    subnets.push(Val::Map(dict([("type", "dhcp".into())])));
                }
                if dhcp6 {
                    subnets.push(Val::Map(dict([("type", "dhcp6".into())])));
                }
                for (i, (host, prefix)) in v4.iter().enumerate() {
                    let mut subnet = dict([
                        ("type", "static".into()),
                        (
                            "address",
                            Val::Str(format!("10.{index}.{i}.{host}/{prefix}")),
                        ),
                    ]);
                    if i == 0 {
                        if gateway {
                            subnet.insert("gateway".into(), Val::Str(format!("10.{index}.0.254")));
                        }
                        if dns {
                            subnet.insert(
                                "dns_nameservers".into(),
                                Val::List(vec![Val::Str(format!("10.{index}.0.53"))]),
                            );
                            subnet.insert(
                                "dns_search".into(),
                                Val::List(vec!["example.test".into()]),
                            );
                        }
                        let routes: Vec<Val> = routes
                            .iter()
                            .map(|r| {
                                Val::Map(dict([
                                    ("network", Val::Str(format!("172.16.{r}.0/24"))),
                                    ("gateway", Val::Str(format!("10.{index}.0.1"))),
                                ]))
                            })
                            .collect();
                        if !routes.is_empty() {
                            subnet.insert("routes".into(), Val::List(routes));
                        }
                    }
                    subnets.push(Val::Map(subnet));
                }
                for (i, host) in v6.iter().enumerate() {
                    let mut subnet = dict([
                        ("type", "static6".into()),
                        (
                            "address",
                            Val::Str(format!("2001:db8:{index}::{host:x}/64")),
                        ),
                    ]);
                    if i == 0 && gateway {
                        subnet.insert("gateway".into(), Val::Str(format!("2001:db8:{index}::1")));
                    }
                    subnets.push(Val::Map(subnet));
                }
                if !subnets.is_empty() {
                    cmd.insert("subnets".into(), Val::List(subnets));
                }
                Val::Map(cmd)
            },
        )
}

fn v1_document() -> impl Strategy<Value = Dict> {
    (1usize..4)
        .prop_flat_map(|n| (0..n).map(interface).collect::<Vec<_>>())
        .prop_map(|commands| dict([("version", Val::Int(1)), ("config", Val::List(commands))]))
}

fn render(text: &str, renderer: Renderer) -> Vec<(String, String)> {
    convert(
        "doc",
        text.as_bytes(),
        InputKind::Yaml,
        renderer,
        Fidelity::CloudInit,
        &MacNames::new(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{text}"))
    .expect("not empty")
    .files
    .into_iter()
    .map(|f| (f.path, f.contents))
    .collect()
}

fn to_json(value: &Val) -> String {
    fn convert(value: &Val) -> serde_json::Value {
        match value {
            Val::Null => serde_json::Value::Null,
            Val::Bool(b) => (*b).into(),
            Val::Int(i) => (*i).into(),
            Val::Float(f) => (*f).into(),
            Val::Str(s) => s.as_str().into(),
            Val::List(items) => items.iter().map(convert).collect(),
            Val::Map(map) => map.iter().map(|(k, v)| (k.clone(), convert(v))).collect(),
        }
    }
    convert(value).to_string()
}

fn yaml_data(text: &str) -> Val {
    Val::from_node(&yaml::load(text, 0).unwrap().unwrap())
}

/// The settings of networkd files: (file, section-less line) pairs, `[Route]` grouping
/// and v1-only route metrics aside.
fn settings(files: &[(String, String)]) -> BTreeSet<(String, String)> {
    files
        .iter()
        .flat_map(|(path, body)| {
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('[') && !l.starts_with("Metric="))
                .map(move |l| (path.clone(), l.to_string()))
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn v1_to_netplan_and_back_is_stable(doc in v1_document()) {
        // Written as JSON (which YAML reads), so the v1 side does not depend on the YAML
        // writer under test.
        let v1 = to_json(&Val::Map(doc));
        let netplan = &render(&v1, Renderer::Netplan)[0].1;
        let again = &render(netplan, Renderer::Netplan)[0].1;
        prop_assert_eq!(yaml_data(netplan), yaml_data(again), "netplan file is not a fixed point:\n{}", netplan);
        let direct = settings(&render(&v1, Renderer::Networkd));
        let via_netplan = settings(&render(netplan, Renderer::Networkd));
        prop_assert_eq!(direct, via_netplan, "v1:\n{}\nnetplan:\n{}", v1, netplan);
    }
}
