//! `../shared/conformance/kvp/`: pool files written by cloud-init 22.4.2 and by cloud-init's
//! current handler. We decode both exactly, reassemble their events (including chunks that
//! end inside an escape or half a surrogate pair), and replaying the same operations with
//! the same uuids and timestamps reproduces every record byte for byte — except, by design,
//! the long event (we split so every chunk is valid JSON) and the 1,286-character value
//! (1,287 bytes: cloud-init silently cuts it to 1,023 characters; we refuse values the host
//! cannot read back).

use std::path::{Path, PathBuf};

use egs_kvp::decode::decode_events;
use egs_kvp::event::{Event, EventType, KeyStyle, Outcome, Timestamp};
use egs_kvp::record::{check, decode, RawRecord, RECORD_SIZE};
use egs_kvp::store::KvpError;
use serde_json::Value;

fn json(path: PathBuf) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

fn event_from(op: &Value) -> Event {
    Event {
        name: op["name"].as_str().unwrap().to_string(),
        event_type: if op["type"] == "start" {
            EventType::Start
        } else {
            EventType::Finish
        },
        timestamp: Timestamp::from_f64(op["timestamp"].as_f64().unwrap()),
        description: op["description"].as_str().unwrap().to_string(),
        result: op["result"].as_str().map(|r| match r {
            "SUCCESS" => Outcome::Success,
            "WARN" => Outcome::Warn,
            _ => Outcome::Fail,
        }),
        duration: op["duration"].as_f64(),
    }
}

#[test]
fn both_cloud_init_generations_decode_and_replay() {
    for variant in ["cloud-init-22.4.2", "cloud-init-head"] {
        let dir = Path::new(env!("EGS_CONFORMANCE_DIR"))
            .join("kvp")
            .join(variant);
        let pool = std::fs::read(dir.join("kvp_pool_1")).unwrap();
        let expected = json(dir.join("records.json"));
        let scenario = json(dir.join("scenario.json"));

        // Reader: every record exactly.
        let (records, problems) = decode(&pool);
        assert!(problems.is_empty(), "{variant}: {problems:?}");
        let want = expected["records"].as_array().unwrap();
        assert_eq!(records.len(), want.len(), "{variant}");
        for (ours, theirs) in records.iter().zip(want) {
            assert_eq!(ours.index as u64, theirs["index"].as_u64().unwrap());
            assert_eq!(
                ours.key,
                theirs["key"].as_str().unwrap(),
                "{variant} record {}",
                ours.index
            );
            assert_eq!(
                ours.value,
                theirs["value"].as_str().unwrap(),
                "{variant} record {}",
                ours.index
            );
        }

        // Events: four, the long one reassembled from seven chunks to the exact description.
        let ops: Vec<&Value> = scenario["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "event")
            .collect();
        let (events, problems) = decode_events(&records);
        assert!(problems.is_empty(), "{variant}: {problems:?}");
        assert_eq!(events.len(), ops.len(), "{variant}");
        for (event, op) in events.iter().zip(&ops) {
            assert_eq!(event.name, op["name"].as_str().unwrap());
            assert_eq!(event.event_type, op["type"].as_str().unwrap());
            assert_eq!(
                event.message,
                op["description"].as_str().unwrap(),
                "{variant} {}",
                event.name
            );
            assert_eq!(event.result.as_deref(), op["result"].as_str());
        }
        assert_eq!(
            (events[3].chunks, events[3].stage(), events[3].module()),
            (7, "init-network", Some("config-users_groups"))
        );

        // Writer: replay with the same incarnation, vm_id, uuids and timestamps.
        let incarnation = scenario["incarnation_no"].as_i64().unwrap();
        let style = match scenario["vm_id"].as_str() {
            Some(vm_id) => KeyStyle::SixField {
                vm_id: vm_id.to_string(),
            },
            None => KeyStyle::FiveField,
        };
        let uuids: Vec<&str> = scenario["uuid4_sequence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        let mut position = 0;
        for (op, uuid) in ops.iter().zip(&uuids) {
            let event = event_from(op);
            let ours = event.encode(incarnation, uuid, &style).unwrap();
            let theirs: Vec<&egs_kvp::record::Record> =
                records.iter().filter(|r| r.key.contains(uuid)).collect();
            if theirs.len() == 1 {
                assert_eq!(ours.len(), 1);
                let raw = RawRecord::new(&ours[0].0, &ours[0].1);
                assert_eq!(
                    raw.bytes(),
                    &pool[position * RECORD_SIZE..(position + 1) * RECORD_SIZE],
                    "{variant}: {} differs",
                    ours[0].0
                );
            } else {
                // Deliberately split differently: every chunk is valid JSON and the text
                // comes back whole.
                assert!(
                    theirs
                        .iter()
                        .any(|r| serde_json::from_str::<Value>(&r.value).is_err()),
                    "cloud-init's chunks include invalid JSON"
                );
                let mut text = String::new();
                for (i, (key, value)) in ours.iter().enumerate() {
                    assert!(key.ends_with(&format!("|{i}")));
                    let v: Value = serde_json::from_str(value).expect("our chunks are valid JSON");
                    text.push_str(v["msg"].as_str().unwrap());
                }
                assert_eq!(text, event.description);
            }
            position += theirs.len();
        }

        // write_key: the short value is identical; the long one is refused, not cut.
        let writes: Vec<&Value> = scenario["operations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["op"] == "write_key")
            .collect();
        let (key, value) = (
            writes[0]["key"].as_str().unwrap(),
            writes[0]["value"].as_str().unwrap(),
        );
        check(key, value).unwrap();
        assert_eq!(
            RawRecord::new(key, value).bytes(),
            &pool[position * RECORD_SIZE..(position + 1) * RECORD_SIZE]
        );
        let (key, value) = (
            writes[1]["key"].as_str().unwrap(),
            writes[1]["value"].as_str().unwrap(),
        );
        assert!(matches!(
            check(key, value),
            Err(KvpError::ValueTooLong { bytes: 1287, .. })
        ));
    }
}
