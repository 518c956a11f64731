//! `egs-service kvp …` against pool files in a temporary `--kvp-dir`, and against the pool
//! cloud-init 22.4.2 wrote.
//!
//! Unix only: a test under Wine 8 cannot spawn egs-service.exe with piped output (Invalid handle); scripts/windows-parity runs the .exe from Linux instead.

#![cfg(unix)]

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn egs(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("egs-service")
        .unwrap()
        .arg("--kvp-dir")
        .arg(dir)
        .arg("kvp")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn set_get_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
    assert_eq!(
        egs(
            dir.path(),
            &["set", "eryph:guest-services:status", "available"]
        )
        .0,
        0
    );
    assert_eq!(
        egs(
            dir.path(),
            &["set", "eryph:guest-services:version", "0.1.0"]
        )
        .0,
        0
    );
    let (code, out, _) = egs(dir.path(), &["get", "eryph:guest-services:status"]);
    assert_eq!((code, out.as_str()), (0, "available\n"));
    let (_, out, _) = egs(dir.path(), &["list"]);
    assert_eq!(
        out,
        "eryph:guest-services:status=available\neryph:guest-services:version=0.1.0\n"
    );
    let (_, out, _) = egs(dir.path(), &["list", "--json"]);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[1]["key"], "eryph:guest-services:version");
    assert_eq!(
        egs(dir.path(), &["delete", "eryph:guest-services:status"]).0,
        0
    );
    assert_eq!(
        egs(dir.path(), &["delete", "eryph:guest-services:status"]).0,
        1
    );
    assert_eq!(
        egs(dir.path(), &["get", "eryph:guest-services:status"]).0,
        1
    );
    assert_eq!(
        std::fs::metadata(dir.path().join(".kvp_pool_1"))
            .unwrap()
            .len(),
        2560
    );
}

#[test]
fn limits_and_missing_pools_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
    let (code, _, err) = egs(dir.path(), &["set", "k", &"x".repeat(1023)]);
    assert_eq!(code, 2);
    assert!(err.contains("1023 bytes; the limit is 1022 bytes"), "{err}");
    let (code, _, err) = egs(dir.path(), &["set", &"k".repeat(255), "v"]);
    assert_eq!(code, 2);
    assert!(err.contains("the limit is 254 bytes"), "{err}");
    let (code, _, err) = egs(dir.path(), &["list", "--pool", "0"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(".kvp_pool_0: no such KVP pool (is the Hyper-V KVP daemon"),
        "{err}"
    );
}

#[test]
fn events_from_cloud_init_22_pool() {
    let dir = tempfile::tempdir().unwrap();
    let source = Path::new(env!("EGS_CONFORMANCE_DIR")).join("kvp/cloud-init-22.4.2");
    std::fs::copy(source.join("kvp_pool_1"), dir.path().join(".kvp_pool_1")).unwrap();
    let scenario: Value =
        serde_json::from_str(&std::fs::read_to_string(source.join("scenario.json")).unwrap())
            .unwrap();
    let (code, out, err) = egs(dir.path(), &["events", "--json"]);
    assert_eq!(code, 0, "{err}");
    let events: Value = serde_json::from_str(&out).unwrap();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 4);
    assert_eq!(
        (events[3]["stage"].as_str(), events[3]["module"].as_str()),
        (Some("init-network"), Some("config-users_groups"))
    );
    assert_eq!(events[3]["result"], "FAIL");
    assert_eq!(
        events[3]["message"],
        scenario["operations"][3]["description"]
    );
    let (_, text, _) = egs(dir.path(), &["events"]);
    assert_eq!(text.lines().count(), 4, "one line per event");
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .contains("finish SUCCESS init-local"));
}

/// Issue 16: `egs-service kvp list | head -1` used to abort with a "Broken pipe" panic and
/// a backtrace; a reader that goes away now ends the command quietly, as it ends C tools.
#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let pool = egs_kvp::files::PoolFiles::creating(dir.path());
    let guest = egs_kvp::store::PoolId::Guest;
    egs_kvp::store::KvpStore::edit(&pool, guest, &mut |_| {
        Ok((0..2000)
            .map(|i| egs_kvp::store::Change::set(format!("key-{i}"), "v".repeat(200)))
            .collect())
    })
    .unwrap();
    let binary = assert_cmd::cargo::cargo_bin("egs-service");
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#""$0" --kvp-dir "$1" kvp list | head -1; echo "status ${PIPESTATUS[0]}" >&2"#)
        .arg(&binary)
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("key-0={}\n", "v".repeat(200))
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("status 141") || stderr.contains("status 0"),
        "ended by SIGPIPE (141) or cleanly: {stderr}"
    );
}
