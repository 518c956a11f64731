//! The systemd units in `packaging/` pass `systemd-analyze verify` with the real binary.

use std::path::Path;

#[test]
fn systemd_units_verify() {
    let units = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/systemd");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("opt/eryph/guest-services/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(
        assert_cmd::cargo::cargo_bin("egs-service"),
        bin.join("egs-service"),
    )
    .unwrap();
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&units).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "/opt/eryph",
            &dir.path().join("opt/eryph").display().to_string(),
        );
        let name = path.file_name().unwrap().to_owned();
        std::fs::write(dir.path().join(&name), text).unwrap();
        names.push(name);
    }
    assert!(names.len() >= 2);
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(names.iter().map(|n| dir.path().join(n)))
        .output()
        .expect("systemd-analyze (package systemd) verifies the units");
    let messages = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && messages.trim().is_empty(),
        "{messages}"
    );
}
