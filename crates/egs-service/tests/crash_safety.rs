//! `egs-service run` killed with SIGKILL at random points, 50 times: after every kill the
//! state still parses, a module that had completed (its semaphore existed when the run
//! began) never runs again, and a final run completes provisioning.
//!
//! Linux only: SIGKILL at random points and shadow-utils in a sandbox root.

#![cfg(unix)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const RUNS: usize = 50;

/// A deterministic pseudo-random sequence (xorshift), so failures can be reproduced.
struct Rng(u64);
impl Rng {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

#[test]
fn killed_runs_resume_without_repeating_completed_modules() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    common::sandbox_root(&root);
    let user_data = dir.path().join("user-data");
    std::fs::write(
        &user_data,
        "#cloud-config\nssh_genkeytypes: [ed25519]\nusers:\n  - name: carol\n    groups: [adm]\nwrite_files:\n  - path: /etc/crash-test\n    content: x\nbootcmd:\n  - echo boot >> \"$EGS_ROOT/var/tmp/bootcmd\"\nruncmd:\n  - echo ran >> \"$EGS_ROOT/var/tmp/runcmd\"\n",
    )
    .unwrap();
    let binary = assert_cmd::cargo::cargo_bin("egs-service");
    let state = root.join("var/lib/eryph/provisioning");
    // A new instance every five runs: its first runs are interrupted at random points, its
    // later ones must skip what completed.
    let instance = |run: usize| format!("iid-crash-{}", run / 5);
    let sem = |run: usize, module: &str| {
        state
            .join("instances")
            .join(instance(run))
            .join("sem")
            .join(format!("config_{module}"))
    };
    // How long a whole run takes here, so the kills can land anywhere in one. The fastest
    // of three runs: a cold first run (page cache, CI noise) would otherwise push most
    // deadlines past the end of a run and leave too few runs interrupted.
    let full_run_ms = (0..3)
        .map(|attempt| {
            let calibration = tempfile::tempdir().unwrap();
            common::sandbox_root(calibration.path());
            let started = Instant::now();
            let status = Command::new(&binary)
                .args(["run", "--root"])
                .arg(calibration.path())
                .arg("--user-data")
                .arg(&user_data)
                .args(["--instance-id", &format!("iid-calibrate-{attempt}")])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
            started.elapsed().as_millis() as u64
        })
        .min()
        .unwrap()
        .max(5);
    let mut rng = Rng(0x5eed_cafe_f00d);
    let mut window_us = full_run_ms * 1000;
    let mut kills = 0;
    let mut runs_after_completion = 0;
    for run in 0..RUNS {
        let users_done = sem(run, "users_groups").exists();
        let scripts_done = sem(run, "scripts_user").exists();
        let runcmd_lines = lines(&root.join("var/tmp/runcmd"));
        let passwd_carols = std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("carol:"))
            .count();
        let mut child = Command::new(&binary)
            .args(["run", "--root"])
            .arg(&root)
            .arg("--user-data")
            .arg(&user_data)
            .args(["--instance-id", &instance(run)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_micros(rng.next(window_us));
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        // The window follows how long runs really take: a run that finished before its
        // deadline narrows it, a killed one widens it again (resuming runs that skip
        // completed modules are shorter than the calibrated whole run).
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
            window_us = (window_us * 5 / 4).min(full_run_ms * 1000);
        } else {
            window_us = (window_us * 3 / 4).max(1000);
        }
        child.wait().unwrap();
        if state.join("state.json").exists() {
            let text = std::fs::read_to_string(state.join("state.json")).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("run {run}: state.json is torn: {e}"));
        }
        if scripts_done {
            runs_after_completion += 1;
            assert_eq!(
                lines(&root.join("var/tmp/runcmd")),
                runcmd_lines,
                "run {run}: scripts_user ran again after completing"
            );
        }
        if users_done {
            let carols = std::fs::read_to_string(root.join("etc/passwd"))
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("carol:"))
                .count();
            assert_eq!(carols, passwd_carols, "run {run}: users_groups ran again");
        }
    }
    eprintln!("{kills} of {RUNS} runs interrupted (a full run takes {full_run_ms} ms)");
    assert!(
        kills >= RUNS / 3,
        "only {kills} of {RUNS} runs were interrupted; the test would prove little"
    );
    assert!(
        runs_after_completion > 0,
        "no run started after scripts_user had completed; the test would prove little"
    );
    let out = Command::new(&binary)
        .args(["run", "--root"])
        .arg(&root)
        .arg("--user-data")
        .arg(&user_data)
        .args(["--instance-id", &instance(RUNS - 1)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(
        &Command::new(&binary)
            .args(["status", "--json", "--root"])
            .arg(&root)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(status["status"], "done", "{status}");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/passwd"))
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("carol:"))
            .count(),
        1
    );
    assert!(lines(&root.join("var/tmp/runcmd")) >= 1);
    assert!(
        lines(&root.join("var/tmp/bootcmd")) >= 1,
        "bootcmd runs every time"
    );
    println!("{kills} of {RUNS} runs killed, {runs_after_completion} started after completion; runcmd ran {} time(s)", lines(&root.join("var/tmp/runcmd")));
}
