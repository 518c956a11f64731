//! The YAML loader on arbitrary text: it returns a value or an error, never panics, and
//! whatever it loads can be rendered and read as cloud-config.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(node)) = egs_cloudconfig::yaml::load(text, 0) {
        let _ = egs_cloudconfig::json::to_json(&node);
        let _ = egs_cloudconfig::schema::CloudConfig::from_node(&node);
    }
});
