//! `egs_sys::fs::resolve_in_root` on symbolic-link trees built from the input: whatever
//! links (absolute, relative, `..`-laden, looping) a sandbox image holds, the resolved path
//! is below the root, and where it exists its real path is below the root's real path.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;

/// Names the tree is built from: plain names, separators and the parent marker.
const PARTS: [&str; 8] = ["a", "b", "..", ".", "/", "etc", "/etc", "../../.."];

fn text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| PARTS[*b as usize % PARTS.len()])
        .collect::<Vec<_>>()
        .join("/")
}

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let root = dir.path().join("root");
    let _ = std::fs::create_dir_all(root.join("a/b"));
    let _ = std::fs::create_dir_all(root.join("etc"));
    // Up to 8 links: [where (1 byte), target length, target bytes…] each; the rest is the path.
    let mut rest = data;
    for _ in 0..8 {
        let [place, len, tail @ ..] = rest else { break };
        let len = (*len as usize % 6).min(tail.len());
        let (target, tail) = tail.split_at(len);
        let link = root.join(["a", "a/b", "etc", "a/l", "etc/l", "l"][*place as usize % 6]);
        let _ = std::fs::remove_dir_all(&link);
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(PathBuf::from(text(target)), &link);
        rest = tail;
    }
    let path = format!("/{}", text(rest));
    let Ok(resolved) = egs_sys::fs::resolve_in_root(&root, Path::new(&path)) else {
        return;
    };
    assert!(
        resolved.starts_with(&root),
        "{path} resolved to {resolved:?}"
    );
    let real_root = std::fs::canonicalize(&root).unwrap();
    if let Ok(real) = std::fs::canonicalize(&resolved) {
        assert!(
            real.starts_with(&real_root),
            "{path} resolved to {resolved:?}, which is really {real:?}"
        );
    }
});
