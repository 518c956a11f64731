//! The MIME parser on arbitrary bytes: parts, filenames and decoded payloads never panic.
#![no_main]

use egs_userdata::mime::{parse, MimeLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse(data, &MimeLimits::default()) {
        for part in message.leaves() {
            let _ = part.content_type();
            let _ = part.filename();
            let _ = part.decoded_payload();
        }
    }
});
