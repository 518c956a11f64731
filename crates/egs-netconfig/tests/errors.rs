//! Bad network configuration gets an error that names the input and the key, never a
//! panic; sizes and depths are bounded.

use egs_netconfig::{convert, interpret, load, Fidelity, InputKind, MacNames, Renderer};

/// The error for `text` rendered with every renderer (they must agree), as text.
fn error(text: &str, kind: InputKind) -> String {
    let macs = MacNames::new();
    let mut messages = Vec::new();
    for renderer in [Renderer::Networkd, Renderer::Eni, Renderer::Netplan] {
        match convert(
            "nc",
            text.as_bytes(),
            kind,
            renderer,
            Fidelity::CloudInit,
            &macs,
        ) {
            Err(e) => messages.push(e.to_string()),
            Ok(_) => messages.push(format!("{renderer}: accepted")),
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "renderers disagree: {messages:?}");
    messages.remove(0)
}

#[test]
fn errors_name_the_key() {
    let yaml = |t| error(t, InputKind::Yaml);
    assert_eq!(
        yaml("version: 2\nethernets:\n  eth0:\n    addresses: [10.0.0.2/24, 10.0.0.300/24]\n"),
        "nc: ethernets.eth0.addresses[1]: '10.0.0.300/24' is not a valid IP network"
    );
    assert_eq!(
        yaml("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    routes: [{to: nowhere, via: 10.0.0.1}]\n"),
        "nc: ethernets.eth0.routes[0].network: 'nowhere' is not a valid IP network"
    );
    assert_eq!(
        yaml("version: 2\nethernets: [eth0]\n"),
        "nc: ethernets: expected a mapping of devices, got a list"
    );
    // Parameters netplan knows and the v1 model does not: refused by networkd and ENI,
    // passed through to netplan.
    let bond = "version: 2\nbonds:\n  bond0:\n    interfaces: [eth0]\n    parameters: {mode: 1, learn-packet-interval: 2}\n";
    let macs = MacNames::new();
    for renderer in [Renderer::Networkd, Renderer::Eni] {
        let e = convert(
            "nc",
            bond.as_bytes(),
            InputKind::Yaml,
            renderer,
            Fidelity::CloudInit,
            &macs,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "nc: bonds.bond0.parameters.learn-packet-interval: unknown bond parameter"
        );
    }
    let netplan = convert(
        "nc",
        bond.as_bytes(),
        InputKind::Yaml,
        Renderer::Netplan,
        Fidelity::CloudInit,
        &macs,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        netplan.warnings,
        ["bonds.bond0.parameters.learn-packet-interval: passed to netplan unchecked"]
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets:\n      - type: static\n        address: 10.0.0.2/24\n        routes: [{network: 10.1.0.0/16, gateway: 10.0.0.1, metric: fast}]\n"),
        "nc: config[0].subnets[0].routes[0].metric: 'fast' is not an integer"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - type: tunnel\n    name: t0\n"),
        "nc: config[0].type: unknown command type 'tunnel' (known: physical, loopback, infiniband, vlan, bond, bridge, nameserver, route)"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - type: physical\n    name: eth0\n    subnets: [{type: static}]\n"),
        "nc: config[0].subnets[0]: no address given (expected one of: address, ip_address)"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - type: nameserver\n    interface: eth9\n    address: [10.0.0.53]\n"),
        "nc: config: nameserver given for interface eth9, but interface eth9 does not exist"
    );
    assert_eq!(yaml("version: 3\n"), "nc: version: expected 1 or 2, got 3");
    assert_eq!(
        yaml("ethernets: {}\n"),
        "nc: version: missing (expected 1 or 2)"
    );
    assert_eq!(
        yaml("version: 1\nconfig: {}\n"),
        "nc: config: a version 1 document needs a list of commands under 'config'"
    );
    assert_eq!(yaml("- 1\n"), "nc: expected a mapping, got a list");
    assert!(
        yaml("version: 2\nethernets:\n  eth0: {dhcp4: true\n").starts_with("nc: line "),
        "syntax errors give the line"
    );
}

#[test]
fn network_data_json_errors_name_the_link() {
    let json = |t| error(t, InputKind::NetworkDataJson);
    assert_eq!(
        json(r#"{"links": [{"id": "a", "type": "phy"}], "networks": [], "services": []}"#),
        "nc: links[0]: no name and no ethernet_mac_address to find the interface by"
    );
    assert_eq!(
        json(
            r#"{"links": [{"id": "a", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:09"}]}"#
        ),
        "nc: links[0]: no interface on this system has the MAC address fa:16:3e:00:00:09"
    );
    assert_eq!(
        json(
            r#"{"links": [{"id": "v", "type": "vlan", "vlan_link": "nope", "vlan_id": 5, "vlan_mac_address": "x"}]}"#
        ),
        "nc: links[0]: refers to link 'nope', which is not in links"
    );
    assert!(json("{\"links\": [").starts_with("nc: line 1, column"));
    assert_eq!(json("[]"), "nc: expected a JSON object");
}

#[test]
fn bounded_and_never_panicking() {
    let macs = MacNames::new();
    let huge = format!("version: 2\n# {}\n", "x".repeat(2 * 1024 * 1024));
    let e = load("nc", huge.as_bytes(), InputKind::Yaml, &macs).unwrap_err();
    assert!(e.to_string().contains("more than the limit"), "{e}");
    let deep = format!(
        "version: 2\nethernets: {}{}\n",
        "[".repeat(500),
        "]".repeat(500)
    );
    assert!(load("nc", deep.as_bytes(), InputKind::Yaml, &macs).is_err());
    let e = load("nc", b"version: 2\n\xff\n", InputKind::Yaml, &macs).unwrap_err();
    assert_eq!(e.to_string(), "nc: byte 11: not UTF-8 text");
    assert!(
        load("nc", b"", InputKind::Yaml, &macs).unwrap().is_none(),
        "empty means none"
    );
    assert!(load("nc", b"network:\n", InputKind::Yaml, &macs)
        .unwrap()
        .is_none());
    let disabled = load(
        "nc",
        b"network: {config: disabled}\n",
        InputKind::Yaml,
        &macs,
    )
    .unwrap()
    .unwrap();
    assert!(disabled.is_disabled());
    assert!(interpret(&disabled, Renderer::Eni, Fidelity::CloudInit, &macs).is_err());
}

/// Hostile names and values (issue 16): a name that would leave the configuration
/// directory, and newlines that would add lines to a rendered file, are refused by every
/// renderer with the key named — v1, v2 and network_data.json alike.
#[test]
fn hostile_names_and_values_are_refused_with_the_key() {
    let yaml = |t| error(t, InputKind::Yaml);
    assert_eq!(
        yaml("version: 1\nconfig:\n  - {type: physical, name: ../../../../tmp/x, subnets: [{type: dhcp}]}\n"),
        "nc: config[0].name: interface name '../../../../tmp/x' is 17 bytes; the limit is 15"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - {type: physical, name: ../../x, subnets: [{type: dhcp}]}\n"),
        "nc: config[0].name: interface name '../../x' contains '/'; names may not contain '/', ':', spaces or control characters"
    );
    assert_eq!(
        yaml("version: 2\nethernets:\n  ../../../x:\n    dhcp4: true\n"),
        "nc: ethernets.../../../x.name: interface name '../../../x' contains '/'; names may not contain '/', ':', spaces or control characters"
    );
    assert_eq!(
        yaml("version: 2\nethernets:\n  lan:\n    match: {macaddress: '52:54:00:12:34:56'}\n    set-name: 'a/b'\n"),
        "nc: ethernets.lan.name: interface name 'a/b' contains '/'; names may not contain '/', ':', spaces or control characters"
    );
    assert_eq!(
        yaml("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    nameservers:\n      search: [\"ex.com\\n[Match]\\nName=*\"]\n"),
        "nc: ethernets.eth0.nameservers.search[0]: 'ex.com\\n[Match]\\nName=*' contains the character U+000A; network-config values may not contain control characters"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - {type: physical, name: \"eth5\\n    up touch /tmp/p\"}\n"),
        "nc: config[0].name: 'eth5\\n    up touch /tmp/p' contains the character U+000A; network-config values may not contain control characters"
    );
    assert_eq!(
        yaml("version: 1\nconfig:\n  - {type: vlan, name: v7, vlan_id: 7, vlan_link: ..}\n"),
        "nc: config[0].vlan_link: '..' is not an interface name"
    );
    let json = |t| error(t, InputKind::NetworkDataJson);
    assert!(json(r#"{"links": [{"id": "l", "type": "phy", "name": "../x", "ethernet_mac_address": "52:54:00:12:34:56"}], "networks": [], "services": []}"#)
        .contains("contains '/'"));
    assert!(json(r#"{"links": [], "networks": [], "services": [{"type": "dns", "address": "1.1.1.1\nup x"}]}"#)
        .contains("services[0].address: '1.1.1.1\\nup x' contains the character U+000A"));
}
