//! Differential test against the real cloud-init: every input in `tests/data/oracle/` is
//! rendered by Debian's cloud-init 22.4.2 (`cloud-init devel net-convert`) and by us, for
//! each renderer, and the files must be equivalent (the rules in `common`). The only
//! cloud-init output corrected is its Python-dictionary `dns {…}` line in ENI.
//!
//! Linux only: Debian's cloud-init is the oracle.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

use egs_netconfig::{convert, Fidelity, InputKind, MacNames, Renderer};

mod common;

/// The system interfaces both sides are told about (`--mac name,mac`).
const MACS: &[(&str, &str)] = &[
    ("eth0", "fa:16:3e:10:00:01"),
    ("eth1", "fa:16:3e:10:00:02"),
    ("eth2", "fa:16:3e:10:00:03"),
];

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/oracle");
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json" || e == "yaml"))
        .collect();
    inputs.sort();
    inputs
}

fn kind_of(input: &Path) -> (InputKind, &'static str) {
    if input.extension().is_some_and(|e| e == "json") {
        (InputKind::NetworkDataJson, "network_data.json")
    } else {
        (InputKind::Yaml, "yaml")
    }
}

/// One comparison; `Err` describes the difference.
fn compare(input: &Path, renderer: Renderer, work: &Path) -> Result<(), String> {
    let name = input.file_name().unwrap().to_string_lossy().into_owned();
    let (kind, kind_name) = kind_of(input);
    let out = work.join(format!("{name}-{renderer}"));
    let mut oracle = Command::new("cloud-init");
    oracle
        .args([
            "devel",
            "net-convert",
            "-D",
            "debian",
            "-k",
            kind_name,
            "-O",
            renderer.name(),
        ])
        .arg("-p")
        .arg(input)
        .arg("-d")
        .arg(&out);
    for (iface, mac) in MACS {
        oracle.arg("-m").arg(format!("{iface},{mac}"));
    }
    let result = oracle
        .output()
        .unwrap_or_else(|e| panic!("cloud-init: {e} (scripts/test-deps installs it)"));
    if !result.status.success() {
        return Err(format!(
            "{name} {renderer}: cloud-init itself failed, so the input proves nothing:\n{}",
            String::from_utf8_lossy(&result.stderr)
        ));
    }
    let theirs = common::files_under(&out);
    let mut macs = MacNames::new();
    for (iface, mac) in MACS {
        macs.insert(mac, iface);
    }
    let bytes = std::fs::read(input).unwrap();
    let ours = convert(&name, &bytes, kind, renderer, Fidelity::CloudInit, &macs)
        .map_err(|e| format!("{name} {renderer}: we refused it: {e}"))?
        .expect("not empty")
        .files;
    let our_paths: Vec<&String> = ours.iter().map(|f| &f.path).collect();
    let their_paths: Vec<&String> = theirs.keys().collect();
    if our_paths.len() != their_paths.len() || our_paths.iter().any(|p| !theirs.contains_key(*p)) {
        return Err(format!(
            "{name} {renderer}: files {our_paths:?}, cloud-init wrote {their_paths:?}"
        ));
    }
    for file in &ours {
        let their = &theirs[&file.path];
        let quirks: Vec<String> = their
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("dns {"))
            .map(str::to_string)
            .collect();
        if !common::equivalent(&file.path, &file.contents, their, &quirks) {
            return Err(format!(
                "{name} {renderer} {}:\n--- ours\n{}\n--- cloud-init\n{their}",
                file.path, file.contents
            ));
        }
    }
    Ok(())
}

#[test]
fn our_renders_match_the_installed_cloud_init() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let inputs = inputs();
    assert!(inputs.len() >= 5, "oracle inputs missing");
    // cloud-init takes about a second to start; run the comparisons side by side.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = inputs
            .iter()
            .flat_map(|input| {
                [Renderer::Netplan, Renderer::Networkd, Renderer::Eni]
                    .map(|renderer| scope.spawn(move || compare(input, renderer, work)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap().err())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} differences:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
