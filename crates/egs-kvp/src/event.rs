//! cloud-init's Hyper-V KVP event records (`HyperVKvpReportingHandler`): the key
//! `CLOUD_INIT|<incarnation>|<start|finish>|<name>|[<vm_id>|]<uuid>` and a compact JSON
//! value `{"name","type","ts"[,"result"][,"duration"][,"msg_i"],"msg"}` with every
//! non-ASCII character escaped as Python's `json.dumps` does.
//!
//! Short events are byte for byte what cloud-init writes. Long descriptions are split
//! differently on purpose: cloud-init slices the *escaped* text, so its chunks can end
//! inside an escape and are not valid JSON; we slice the text itself, so every chunk is
//! valid JSON and stays within the 1,022-byte limit the host reads intact.

use std::fmt::Write;

use egs_cloudconfig::json::{datetime_text, push_char, python_float_repr, write_string_ascii};
use egs_cloudconfig::value::DateTime;

use crate::record::{check, MAX_VALUE_BYTES};
use crate::store::KvpError;

/// `start` or `finish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// A stage or module began.
    Start,
    /// It ended.
    Finish,
}

impl EventType {
    /// The word in keys and values.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "start",
            EventType::Finish => "finish",
        }
    }
}

/// The outcome of a finish event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `SUCCESS`.
    Success,
    /// `WARN`.
    Warn,
    /// `FAIL`.
    Fail,
}

impl Outcome {
    /// The word in values.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "SUCCESS",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        }
    }
}

/// A point in time, as Unix seconds and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    /// Whole seconds since the epoch.
    pub seconds: i64,
    /// Microseconds, 0..1_000_000.
    pub micros: u32,
}

impl Timestamp {
    /// Now.
    pub fn now() -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: d.as_secs() as i64,
            micros: d.subsec_micros(),
        }
    }

    /// From Unix seconds as a float, rounded to the microsecond as Python does.
    pub fn from_f64(t: f64) -> Timestamp {
        let micros = (t * 1e6).round_ties_even() as i64;
        Timestamp {
            seconds: micros.div_euclid(1_000_000),
            micros: micros.rem_euclid(1_000_000) as u32,
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]` in UTC (Python's naive `isoformat()`).
    fn iso(&self) -> String {
        datetime_text(&DateTime::from_unix(self.seconds, self.micros))
    }
}

/// One reporting event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `init-local`, `modules-config/config-users_groups`, …
    pub name: String,
    /// Start or finish.
    pub event_type: EventType,
    /// When it happened.
    pub timestamp: Timestamp,
    /// What happened (cloud-init's description).
    pub description: String,
    /// The outcome (finish events).
    pub result: Option<Outcome>,
    /// Seconds since the matching start (finish events; written in the 26.x style only).
    pub duration: Option<f64>,
}

/// Which of cloud-init's key layouts to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStyle {
    /// `CLOUD_INIT|<incarnation>|<type>|<name>|<uuid>`, `ts` with `Z`: cloud-init up to
    /// 25.3 and the original EGS's RFC 0031, what eryph reads. The default.
    FiveField,
    /// `CLOUD_INIT|<incarnation>|<type>|<name>|<vm_id>|<uuid>`, `ts` with `+00:00` and a
    /// `duration` on finish events: cloud-init 26.x.
    SixField {
        /// The VM's id (lower-case UUID).
        vm_id: String,
    },
}

fn escaped_len(c: char) -> usize {
    let mut buf = String::new();
    push_char(&mut buf, c, true);
    buf.len()
}

impl Event {
    /// The records for this event, with the given incarnation (boot epoch) and uuid.
    pub fn encode(
        &self,
        incarnation: i64,
        uuid: &str,
        style: &KeyStyle,
    ) -> Result<Vec<(String, String)>, KvpError> {
        let (vm_part, ts) = match style {
            KeyStyle::FiveField => (String::new(), format!("{}Z", self.timestamp.iso())),
            KeyStyle::SixField { vm_id } => (
                format!("{vm_id}|"),
                format!("{}+00:00", self.timestamp.iso()),
            ),
        };
        let key = format!(
            "CLOUD_INIT|{incarnation}|{}|{}|{vm_part}{uuid}",
            self.event_type.as_str(),
            self.name
        );
        let mut envelope = String::from("{\"name\":");
        write_string_ascii(&mut envelope, &self.name);
        envelope.push_str(",\"type\":");
        write_string_ascii(&mut envelope, self.event_type.as_str());
        envelope.push_str(",\"ts\":");
        write_string_ascii(&mut envelope, &ts);
        if let Some(result) = self.result {
            envelope.push_str(",\"result\":");
            write_string_ascii(&mut envelope, result.as_str());
        }
        if let (Some(d), KeyStyle::SixField { .. }) = (self.duration, style) {
            let _ = write!(envelope, ",\"duration\":{}", python_float_repr(d));
        }
        let mut whole = envelope.clone();
        whole.push_str(",\"msg\":");
        write_string_ascii(&mut whole, &self.description);
        whole.push('}');
        if whole.len() <= MAX_VALUE_BYTES {
            check(&key, &whole)?;
            return Ok(vec![(key, whole)]);
        }
        let mut records = Vec::new();
        let mut rest = self.description.chars().peekable();
        for index in 0.. {
            let mut value = format!("{envelope},\"msg_i\":{index},\"msg\":\"");
            let budget = MAX_VALUE_BYTES.saturating_sub(value.len() + 2);
            let mut used = 0;
            while let Some(&c) = rest.peek() {
                if used + escaped_len(c) > budget {
                    break;
                }
                used += escaped_len(c);
                push_char(&mut value, c, true);
                rest.next();
            }
            value.push_str("\"}");
            let chunk_key = format!("{key}|{index}");
            check(&chunk_key, &value)?;
            if used == 0 && rest.peek().is_some() {
                return Err(KvpError::ValueTooLong {
                    key: chunk_key,
                    bytes: value.len() + 12,
                });
            }
            records.push((chunk_key, value));
            if rest.peek().is_none() {
                break;
            }
        }
        Ok(records)
    }
}

/// A random (version 4) UUID in lower-case hyphenated form.
pub fn uuid4() -> String {
    egs_sys::random::uuid4().expect("the operating system provides random bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_escaping() {
        let mut s = String::new();
        write_string_ascii(&mut s, "a\"\\\n\u{7f}ü😀<&>");
        assert_eq!(s, r#""a\"\\\n\u007f\u00fc\ud83d\ude00<&>""#);
        assert_eq!(escaped_len('😀'), 12);
    }

    #[test]
    fn timestamps_like_python() {
        assert_eq!(
            Timestamp::from_f64(1700000000.0).iso(),
            "2023-11-14T22:13:20"
        );
        assert_eq!(
            Timestamp::from_f64(1700000010.123456).iso(),
            "2023-11-14T22:13:30.123456"
        );
        assert_eq!(
            Timestamp::from_f64(1700000002.5).iso(),
            "2023-11-14T22:13:22.500000"
        );
    }

    #[test]
    fn long_descriptions_split_into_valid_json_chunks() {
        let ev = Event {
            name: "modules-final/config-x".into(),
            event_type: EventType::Finish,
            timestamp: Timestamp::from_f64(1.0),
            description: "é\"😀\\".repeat(400),
            result: Some(Outcome::Fail),
            duration: None,
        };
        let records = ev.encode(7, &uuid4(), &KeyStyle::FiveField).unwrap();
        assert!(records.len() > 2);
        let mut joined = String::new();
        for (i, (key, value)) in records.iter().enumerate() {
            assert!(key.ends_with(&format!("|{i}")));
            assert!(value.len() <= MAX_VALUE_BYTES);
            let v: serde_json::Value =
                serde_json::from_str(value).expect("every chunk is valid JSON");
            assert_eq!(v["msg_i"], i);
            joined.push_str(v["msg"].as_str().unwrap());
        }
        assert_eq!(joined, ev.description);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(uuid4(), u);
    }
}
