//! Cloud-config through Hyper-V KVP: `egs-tool set-user-data --kvp-dir` writes the External
//! pool, `egs-service run --kvp-dir` provisions from it — exactly as from a NoCloud ISO with
//! the same documents — and partial, reordered, oversized, non-base64 and hash-mismatched
//! chunk sets give their documented outcomes.
//!
//! Linux only: seed media made by genisoimage; shadow-utils in a sandbox root.

#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{binary, code_and_output};

fn sandbox(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    common::sandbox_root(&root);
    root
}

const META: &str = "instance-id: iid-kvp\nlocal-hostname: kvp-host\n";
const USER_DATA: &str = "#cloud-config\nusers:\n  - default\n  - name: kay\n    groups: [adm]\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKay kay@x]\nssh_genkeytypes: [ed25519]\nwrite_files:\n  - path: /etc/kvp-test.conf\n    content: from the host\n    permissions: '0640'\nruncmd:\n  - echo \"$INSTANCE_ID\" > \"$EGS_ROOT/var/tmp/instance\"\n";

fn egs_tool(kvp: &Path, args: &[&str]) -> (i32, String) {
    code_and_output(
        Command::new(binary("egs-tool"))
            .arg("--kvp-dir")
            .arg(kvp)
            .args(args),
    )
}

fn run(root: &Path, kvp: &Path, extra: &[&str]) -> (i32, String) {
    code_and_output(
        Command::new(binary("egs-service"))
            .arg("--kvp-dir")
            .arg(kvp)
            .args(["run", "--root"])
            .arg(root)
            .args(extra),
    )
}

fn short_budget(root: &Path) {
    let settings = root.join("etc/opt/eryph/guest-services/egs-provisioning.json");
    std::fs::create_dir_all(settings.parent().unwrap()).unwrap();
    std::fs::write(
        settings,
        r#"{"dataSources": {"readinessTimeoutSeconds": 2}}"#,
    )
    .unwrap();
}

/// The files provisioning produces, for comparing two sandboxes.
fn outcome(root: &Path) -> Vec<(String, String)> {
    [
        "etc/passwd",
        "etc/group",
        "etc/hostname",
        "etc/sudoers.d/90-cloud-init-users",
        "etc/kvp-test.conf",
        "home/kay/.ssh/authorized_keys",
        "var/tmp/instance",
    ]
    .iter()
    .map(|f| {
        (
            f.to_string(),
            std::fs::read_to_string(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
        )
    })
    .collect()
}

#[test]
fn kvp_provisions_exactly_like_a_nocloud_iso() {
    let dir = tempfile::tempdir().unwrap();
    let (ud, meta) = (dir.path().join("user-data"), dir.path().join("meta-data"));
    std::fs::write(&ud, USER_DATA).unwrap();
    std::fs::write(&meta, META).unwrap();

    let kvp = dir.path().join("kvp");
    std::fs::create_dir_all(&kvp).unwrap();
    let (code, out) = egs_tool(
        &kvp,
        &[
            "set-user-data",
            "vm1",
            "--user-data",
            ud.to_str().unwrap(),
            "--meta-data",
            meta.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let via_kvp = sandbox(&dir.path().join("a"));
    let (code, out) = run(&via_kvp, &kvp, &[]);
    assert_eq!(code, 0, "{out}");

    let seed = dir.path().join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::copy(&ud, seed.join("user-data")).unwrap();
    std::fs::copy(&meta, seed.join("meta-data")).unwrap();
    let iso = dir.path().join("seed.iso");
    assert!(Command::new("genisoimage")
        .args(["-quiet", "-joliet", "-rock", "-volid", "cidata", "-output"])
        .arg(&iso)
        .arg(&seed)
        .status()
        .unwrap()
        .success());
    let via_iso = sandbox(&dir.path().join("b"));
    let empty_kvp = dir.path().join("no-kvp");
    let (code, out) = run(&via_iso, &empty_kvp, &["--devices", iso.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");

    assert_eq!(outcome(&via_kvp), outcome(&via_iso));
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(via_kvp.join("var/lib/eryph/provisioning/state.json")).unwrap(),
    )
    .unwrap();
    assert!(
        state["datasource"]
            .as_str()
            .unwrap()
            .starts_with("KVP (Hyper-V KVP"),
        "{state}"
    );
}

#[test]
fn instance_id_and_hostname_options_and_clearing() {
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("user-data");
    std::fs::write(
        &ud,
        "#cloud-config\nruncmd:\n  - echo \"$INSTANCE_ID\" > \"$EGS_ROOT/var/tmp/instance\"\n",
    )
    .unwrap();
    let kvp = dir.path().join("kvp");
    std::fs::create_dir_all(&kvp).unwrap();
    assert_eq!(
        egs_tool(
            &kvp,
            &[
                "set-user-data",
                "vm1",
                "--user-data",
                ud.to_str().unwrap(),
                "--instance-id",
                "iid-opt",
                "--hostname",
                "opt-host"
            ]
        )
        .0,
        0
    );
    let root = sandbox(dir.path());
    assert_eq!(run(&root, &kvp, &[]).0, 0);
    assert_eq!(
        std::fs::read_to_string(root.join("var/tmp/instance")).unwrap(),
        "iid-opt\n"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap(),
        "opt-host\n"
    );
    let (code, out) = egs_tool(&kvp, &["clear-user-data", "vm1"]);
    assert_eq!((code, out.contains("removed")), (0, true), "{out}");
    let pool = std::fs::read(kvp.join(".kvp_pool_0")).unwrap();
    assert!(!String::from_utf8_lossy(&pool).contains("eryph:provisioning:"));
    let (code, out) = egs_tool(
        &kvp,
        &["set-user-data", "vm1", "--user-data", ud.to_str().unwrap()],
    );
    assert_eq!(code, 2, "instance id or meta-data is required: {out}");
    let out = Command::new(binary("egs-tool"))
        .args([
            "set-user-data",
            "vm1",
            "--user-data",
            ud.to_str().unwrap(),
            "--instance-id",
            "x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("KVP belongs to Hyper-V VMs"),
        "without --kvp-dir the Hyper-V path is named"
    );
}

use egs_kvp::store::KvpStore;

#[test]
fn bad_chunk_sets_have_their_documented_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("user-data");
    let big: String = (0..3000).map(|i| format!("# line {i}\n")).collect();
    std::fs::write(&ud, format!("#cloud-config\n{big}")).unwrap();
    let kvp = dir.path().join("kvp");
    std::fs::create_dir_all(&kvp).unwrap();
    let pool = egs_kvp::files::PoolFiles::new(&kvp);
    let external = egs_kvp::store::PoolId::External;
    let set = || {
        assert_eq!(
            egs_tool(
                &kvp,
                &[
                    "set-user-data",
                    "vm",
                    "--user-data",
                    ud.to_str().unwrap(),
                    "--instance-id",
                    "iid-bad"
                ]
            )
            .0,
            0
        )
    };

    // Reordered records are fine.
    set();
    let mut records = pool.list(external).unwrap().records;
    records.reverse();
    let bytes: Vec<u8> = records
        .iter()
        .flat_map(|r| {
            egs_kvp::record::RawRecord::new(&r.key, &r.value)
                .bytes()
                .to_vec()
        })
        .collect();
    std::fs::write(pool.path(external), bytes).unwrap();
    let root = sandbox(&dir.path().join("reordered"));
    assert_eq!(run(&root, &kvp, &[]).0, 0);

    // A missing chunk waits for the budget, then names what is missing.
    set();
    assert!(pool
        .delete(external, "eryph:provisioning:user-data:2")
        .unwrap());
    let root = sandbox(&dir.path().join("partial"));
    short_budget(&root);
    let (code, out) = run(&root, &kvp, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("user-data: chunk(s) 2 of")
            && out.contains("missing")
            && out.contains("still not ready"),
        "{out}"
    );

    // A hash that does not match waits too, then says so.
    set();
    pool.set(
        external,
        "eryph:provisioning:user-data:sha256",
        &"0".repeat(64),
    )
    .unwrap();
    let root = sandbox(&dir.path().join("mismatch"));
    short_budget(&root);
    let (code, out) = run(&root, &kvp, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("expected 0000"), "{out}");

    // Bad base64 cannot become valid: an error at once.
    set();
    pool.set(
        external,
        "eryph:provisioning:user-data:1",
        "%%% not base64 %%%",
    )
    .unwrap();
    let root = sandbox(&dir.path().join("garbage"));
    let (code, out) = run(&root, &kvp, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("user-data: chunk 1 is not base64"), "{out}");

    // Over 256 KiB is refused by the writer.
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![b'#'; 300 * 1024]).unwrap();
    let (code, out) = egs_tool(
        &kvp,
        &[
            "set-user-data",
            "vm",
            "--user-data",
            huge.to_str().unwrap(),
            "--instance-id",
            "x",
        ],
    );
    assert_eq!(code, 2);
    assert!(out.contains("the limit is"), "{out}");

    // Replacing a large document by a small one leaves no stale chunks.
    set();
    let small = dir.path().join("small");
    std::fs::write(&small, "#cloud-config\n").unwrap();
    assert_eq!(
        egs_tool(
            &kvp,
            &[
                "set-user-data",
                "vm",
                "--user-data",
                small.to_str().unwrap(),
                "--instance-id",
                "iid-small"
            ]
        )
        .0,
        0
    );
    let keys: Vec<String> = pool
        .list(external)
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.key)
        .filter(|k| k.starts_with("eryph:provisioning:user-data:"))
        .collect();
    assert_eq!(keys.len(), 3, "one chunk, sha256, count: {keys:?}");
}

/// Without `--kvp-dir` the tool means a Hyper-V VM's KVP through WMI on its host: a target
/// that is not a VM id is refused, and off Windows a VM id says where WMI is — for every KVP
/// command, before touching anything.
#[test]
fn a_vms_kvp_needs_a_vm_id_and_a_windows_host() {
    let dir = tempfile::tempdir().unwrap();
    let ud = dir.path().join("user-data");
    std::fs::write(&ud, USER_DATA).unwrap();
    for (target, expected) in [
        (
            "vm1",
            "vm1: KVP belongs to Hyper-V VMs: give the VM id (a GUID), or --kvp-dir DIR for pool files",
        ),
        (
            "5c5b4a4e-1d2c-4b6a-9f00-abcdefabcdef",
            "a VM's KVP is read through Hyper-V's WMI, on its Windows host (elsewhere use --kvp-dir DIR with pool files)",
        ),
    ] {
        for args in [
            vec![
                "set-user-data",
                target,
                "--user-data",
                ud.to_str().unwrap(),
                "--instance-id",
                "iid-wmi",
            ],
            vec!["clear-user-data", target],
            vec!["set-shell", target, "--command", "/bin/sh"],
            vec!["get-data", target, "--json"],
            vec!["get-status", target],
        ]
        .into_iter()
        // get-status of a target that is no VM id asks over SSH (and says it is no target).
        .filter(|args| args[0] != "get-status" || target != "vm1")
        {
            let (code, out) = code_and_output(
                Command::new(binary("egs-tool"))
                    .env("EGS_TOOL_HOME", dir.path().join("home"))
                    .args(&args),
            );
            assert_eq!(code, 2, "{args:?}: {out}");
            assert!(out.contains(expected), "{args:?}: {out}");
        }
    }
}
