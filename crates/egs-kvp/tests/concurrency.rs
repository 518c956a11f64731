//! Our writer against real peer processes sharing the pool file: one like `hv_kvp_daemon`
//! (fcntl lock, whole-file rewrite) and one like cloud-init (flock, append). Thousands of
//! operations, each adding a record of its own, so a lost update shows as a missing record;
//! afterwards nothing is lost, torn or duplicated.
//!
//! Linux only: cloud-init's own KVP writer (python3) is the peer.

#![cfg(unix)]

use std::collections::HashMap;
use std::process::{Command, Stdio};

use egs_kvp::files::PoolFiles;
use egs_kvp::record::{decode, RECORD_SIZE};
use egs_kvp::store::{KvpStore, PoolId};

const OURS: usize = 1000;
const PEER: usize = 600;

fn peer(mode: &str, pool: &PoolFiles) -> std::process::Child {
    Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kvp_peers.py"))
        .args([
            mode,
            pool.path(PoolId::Guest).to_str().unwrap(),
            &PEER.to_string(),
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the KVP peer processes")
}

fn our_writes(pool: &PoolFiles) {
    for i in 0..OURS {
        pool.set(PoolId::Guest, &format!("egs-{i}"), &format!("{i}"))
            .unwrap();
        if i % 50 == 0 {
            pool.set(PoolId::Guest, "egs-transient", "x").unwrap();
            assert!(pool.delete(PoolId::Guest, "egs-transient").unwrap());
        }
    }
}

fn finish(child: std::process::Child) -> usize {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn final_values(pool: &PoolFiles) -> HashMap<String, String> {
    let data = std::fs::read(pool.path(PoolId::Guest)).unwrap();
    assert_eq!(data.len() % RECORD_SIZE, 0, "torn pool file");
    let (records, problems) = decode(&data);
    assert!(problems.is_empty(), "{problems:?}");
    let mut map = HashMap::new();
    for r in records {
        assert!(
            map.insert(r.key.clone(), r.value).is_none(),
            "duplicate record {}",
            r.key
        );
    }
    map
}

fn check_ours(values: &HashMap<String, String>) {
    for i in 0..OURS {
        assert_eq!(
            values.get(&format!("egs-{i}")),
            Some(&i.to_string()),
            "our record egs-{i} lost"
        );
    }
    assert!(!values.contains_key("egs-transient"));
}

#[test]
fn against_a_daemon_like_rewriter() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
    let pool = PoolFiles::new(dir.path());
    let daemon = peer("daemon", &pool);
    our_writes(&pool);
    assert_eq!(finish(daemon), 0, "the daemon saw torn or undecodable data");
    let values = final_values(&pool);
    check_ours(&values);
    for i in 0..PEER {
        assert_eq!(
            values.get(&format!("daemon-{i}")),
            Some(&i.to_string()),
            "daemon record {i} lost"
        );
    }
}

#[test]
fn against_a_cloud_init_like_appender() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".kvp_pool_1"), b"").unwrap();
    let pool = PoolFiles::new(dir.path());
    let cloud_init = peer("cloud-init", &pool);
    our_writes(&pool);
    finish(cloud_init);
    let values = final_values(&pool);
    check_ours(&values);
    for i in 0..PEER {
        assert_eq!(
            values.get(&format!("ci-{i}")),
            Some(&format!("event {i}")),
            "cloud-init record {i} lost"
        );
    }
}
