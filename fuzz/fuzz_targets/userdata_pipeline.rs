//! The whole user-data pipeline (gzip, MIME, sniffing, archives, YAML, merge_how, schema)
//! on arbitrary bytes, with includes answered from a fixed in-memory table (no I/O).
#![no_main]

use egs_userdata::fetch::{FetchError, Fetcher};
use egs_userdata::pipeline::{process, Limits};
use libfuzzer_sys::fuzz_target;

struct Table;

impl Fetcher for Table {
    fn fetch(&self, url: &str, _once: bool) -> Result<Vec<u8>, FetchError> {
        match url {
            "http://a/" => Ok(b"#cloud-config\nmerge_how: 'dict(no_replace,recurse_list)+list(append)'\nruncmd: [x]\n".to_vec()),
            "http://b/" => Ok(b"#include http://a/\n#include http://b/\n".to_vec()),
            _ => Err(FetchError::Status { url: url.to_string(), status: 404 }),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (user, vendor) = match data.iter().position(|&b| b == 0xfe) {
        Some(split) => (&data[..split], Some(&data[split + 1..])),
        None => (data, None),
    };
    if let Ok(resolved) = process(user, vendor, &Table, &Limits::default()) {
        let _ = egs_cloudconfig::json::to_json(&resolved.config);
        let _ = egs_cloudconfig::schema::CloudConfig::from_node(&resolved.config);
    }
});
