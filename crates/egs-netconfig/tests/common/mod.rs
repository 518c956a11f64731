//! How rendered files are compared with cloud-init's: networkd identical up to whitespace
//! and comment lines, netplan identical as YAML data, ENI identical after normalising the
//! order of stanzas, everything else byte for byte.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use egs_cloudconfig::yaml;
use egs_netconfig::render::FILE_HEADER;
use egs_netconfig::Val;

/// Non-blank, non-comment lines, trimmed.
pub fn significant_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// ENI stanzas (blank-line separated, header dropped, lines trimmed), sorted. Comment
/// lines inside stanzas stay: `# control-alias eth0` is how ENI marks an alias.
pub fn eni_stanzas(text: &str) -> Vec<String> {
    let body = text.strip_prefix(FILE_HEADER).unwrap_or(text);
    let mut stanzas: Vec<String> = body
        .split("\n\n")
        .map(|block| {
            let lines: Vec<&str> = block
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            lines.join("\n")
        })
        .filter(|s| !s.is_empty())
        .collect();
    stanzas.sort();
    stanzas
}

/// The YAML data of a netplan file.
pub fn yaml_data(text: &str, what: &str) -> Val {
    let node = yaml::load(text, 0)
        .unwrap_or_else(|e| panic!("{what}: not YAML: {e}"))
        .unwrap_or_else(|| panic!("{what}: empty"));
    Val::from_node(&node)
}

/// Whether our file at `path` is equivalent to cloud-init's, ignoring in cloud-init's
/// ENI output the lines listed in `quirk_lines` (its known bugs).
pub fn equivalent(path: &str, ours: &str, theirs: &str, quirk_lines: &[String]) -> bool {
    if path.ends_with(".network") {
        significant_lines(ours) == significant_lines(theirs)
    } else if path.ends_with(".yaml") {
        yaml_data(ours, "ours") == yaml_data(theirs, "cloud-init's")
    } else if path.contains("network/interfaces") {
        let corrected: String = theirs
            .lines()
            .filter(|l| !quirk_lines.iter().any(|q| q == l.trim()))
            .map(|l| format!("{l}\n"))
            .collect();
        eni_stanzas(ours) == eni_stanzas(&corrected)
    } else {
        ours == theirs
    }
}

/// The case directories of `shared/conformance/network/` (each with `meta.json`,
/// `input.yaml` and cloud-init's output), sorted.
pub fn conformance_cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/network");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the shared/ folder must sit beside the project)",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    cases.sort();
    cases
}

/// Every file under `dir`, sorted.
pub fn paths_under(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// Every file under `dir` with its text, by path relative to it.
pub fn files_under(dir: &Path) -> BTreeMap<String, String> {
    paths_under(dir)
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (relative, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}
