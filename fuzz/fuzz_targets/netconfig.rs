//! The network-config loader (v1/v2 YAML, or network_data.json when the first byte is odd),
//! the interpreter and all three renderers on arbitrary input: errors are fine, panics and
//! hangs are not, every netplan file written must load back as YAML, and no rendered file
//! may have a path that leaves its directory or a control character other than a newline
//! (issue 16: names and values with separators must never reach a file). The Windows
//! planner runs too: no `netsh` argument may hold whitespace or a control character, and
//! no search domain a comma (the registry's separator).
#![no_main]

use egs_netconfig::windows::{plan, Adapter, Step};
use egs_netconfig::{interpret, load, render, Fidelity, InputKind, MacNames, Renderer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        InputKind::Yaml
    } else {
        InputKind::NetworkDataJson
    };
    let mut macs = MacNames::new();
    macs.insert("52:54:00:12:34:56", "eth0");
    macs.insert("fa:16:3e:00:00:01", "ens3");
    let Ok(Some(config)) = load("fuzz", input, kind, &macs) else {
        return;
    };
    for renderer in [Renderer::Netplan, Renderer::Networkd, Renderer::Eni] {
        for fidelity in [Fidelity::CloudInit, Fidelity::Complete] {
            let Ok(state) = interpret(&config, renderer, fidelity, &macs) else {
                continue;
            };
            for file in render(&state, renderer, fidelity) {
                assert!(
                    !file.path.starts_with('/') && !file.path.split('/').any(|p| p == ".."),
                    "a rendered path leaves its directory: {}",
                    file.path
                );
                assert!(
                    !file.contents.chars().any(|c| c.is_control() && c != '\n'),
                    "a control character in {}",
                    file.path
                );
                if renderer == Renderer::Netplan {
                    egs_cloudconfig::yaml::load(&file.contents, 0)
                        .expect("our netplan file is YAML");
                }
            }
        }
    }
    let adapters = [Adapter {
        index: 4,
        guid: "{g}".into(),
        alias: "eth0".into(),
        mac: "52:54:00:12:34:56".into(),
        manual_ipv6: vec!["2001:db8::1".into()],
    }];
    if let Ok(planned) = plan(&config, &adapters, &["corp.example".into()]) {
        for step in &planned.steps {
            match step {
                Step::Netsh { args, .. } => assert!(
                    args.iter().all(|a| !a.is_empty()
                        && !a.chars().any(|c| c.is_whitespace() || c.is_control())),
                    "a netsh argument with a separator: {args:?}"
                ),
                Step::ConnectionSuffix { suffix, .. } => {
                    assert!(!suffix.contains(',') && !suffix.chars().any(char::is_control))
                }
                Step::SearchList(list) => assert!(list.iter().all(|d| !d.contains(','))),
            }
        }
    }
});
