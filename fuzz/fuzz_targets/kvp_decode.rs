//! The KVP pool reader and the cloud-init event decoder on arbitrary pool bytes, and the
//! encoder on arbitrary descriptions (every chunk must stay valid JSON within the limit).
#![no_main]

use egs_kvp::decode::decode_events;
use egs_kvp::event::{Event, EventType, KeyStyle, Outcome, Timestamp};
use egs_kvp::record::{decode, MAX_VALUE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, _) = decode(data);
    let _ = decode_events(&records);
    if let Ok(text) = std::str::from_utf8(data) {
        let event = Event {
            name: "modules-final/config-fuzz".into(),
            event_type: EventType::Finish,
            timestamp: Timestamp {
                seconds: 1_700_000_000,
                micros: 5,
            },
            description: text.to_string(),
            result: Some(Outcome::Fail),
            duration: Some(1.5),
        };
        if let Ok(chunks) = event.encode(
            1,
            "0d200cb2-57d6-4858-889a-8c2682ffcbbe",
            &KeyStyle::FiveField,
        ) {
            let mut joined = String::new();
            for (_, value) in &chunks {
                assert!(value.len() <= MAX_VALUE_BYTES);
                let v: serde_json::Value =
                    serde_json::from_str(value).expect("chunk is valid JSON");
                joined.push_str(v["msg"].as_str().unwrap());
            }
            assert_eq!(joined, text);
        }
    }
});
