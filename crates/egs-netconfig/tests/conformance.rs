//! Every case in `shared/conformance/network/` rendered by us and compared with what
//! cloud-init 22.4.2 (`cloud-init devel net-convert --distro debian`) wrote:
//! networkd identical up to whitespace and comment lines, netplan identical as YAML data,
//! ENI identical after normalising the order of stanzas, udev rules identical.
//!
//! Where `meta.json` flags an oracle bug (interface DNS written into ENI as a Python
//! dictionary), the expectation is the oracle's output without that line, which is what
//! later cloud-init releases write.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use egs_netconfig::{convert, Fidelity, InputKind, MacNames, Renderer};

mod common;

fn render_case(case: &Path, kind: &str) -> BTreeMap<String, (String, u32)> {
    let input = fs::read(case.join("input.yaml")).unwrap();
    let renderer: Renderer = kind.parse().unwrap();
    let files = convert(
        "input.yaml",
        &input,
        InputKind::Yaml,
        renderer,
        Fidelity::CloudInit,
        &MacNames::new(),
    )
    .unwrap_or_else(|e| panic!("{}: {kind}: {e}", case.display()))
    .expect("input is not empty");
    files
        .files
        .into_iter()
        .map(|f| (f.path, (f.contents, f.mode)))
        .collect()
}

#[test]
fn every_case_matches_cloud_init() {
    let mut failures = Vec::new();
    let mut compared = 0;
    for case in common::conformance_cases() {
        let meta: serde_json::Value =
            serde_json::from_slice(&fs::read(case.join("meta.json")).unwrap()).unwrap();
        let quirk_lines: Vec<String> = meta["oracle_quirks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["line"].as_str().unwrap().trim().to_string())
            .collect();
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        for kind in meta["kinds"].as_array().unwrap() {
            let kind = kind.as_str().unwrap();
            let ours = render_case(&case, kind);
            let expected_files = meta["files"][kind].as_object().unwrap();
            let expected_paths: Vec<&String> = expected_files.keys().collect();
            let our_paths: Vec<&String> = ours.keys().collect();
            if expected_paths != our_paths {
                failures.push(format!(
                    "{name} {kind}: files {our_paths:?}, cloud-init wrote {expected_paths:?}"
                ));
                continue;
            }
            for (path, info) in expected_files {
                compared += 1;
                let expected = fs::read_to_string(case.join(kind).join(path)).unwrap();
                let (got, mode) = &ours[path];
                let want_mode = u32::from_str_radix(info["mode"].as_str().unwrap(), 8).unwrap();
                if *mode != want_mode {
                    failures.push(format!(
                        "{name} {kind} {path}: mode {mode:o}, cloud-init {want_mode:o}"
                    ));
                }
                let same = common::equivalent(path, got, &expected, &quirk_lines);
                if !same {
                    failures.push(format!(
                        "{name} {kind} {path}:\n--- ours\n{got}\n--- cloud-init\n{expected}"
                    ));
                }
            }
        }
    }
    assert!(compared >= 31 * 3, "only {compared} files compared");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
