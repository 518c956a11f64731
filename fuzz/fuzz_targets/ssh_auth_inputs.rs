//! What the SSH server parses itself from files and KVP values: authorized_keys lines with
//! options and expiry times, service-control.conf, and shell argument strings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (keys, problems) = egs_ssh::authorized::parse(text);
    assert!(keys.len() + problems.len() <= text.lines().count());
    for problem in &problems {
        assert!(problem.starts_with("line "), "{problem}");
    }
    let _ = egs_ssh::control::ServiceControl::parse(text);
    let args = egs_ssh::shell::split_args(text);
    assert!(args.iter().map(|a| a.len()).sum::<usize>() <= text.len());
});
