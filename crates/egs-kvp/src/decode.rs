//! Reading `CLOUD_INIT|…` event records back: keys with 5 parts (cloud-init ≤ 25.3, the
//! original EGS), 6 parts (either a ≤ 25.3 chunk `…|<uuid>|<i>` or 26.x `…|<vm_id>|<uuid>`)
//! and 7 parts (26.x chunks); chunks are joined on the *escaped* text before decoding, so
//! cloud-init's chunks that end inside an escape or half of a surrogate pair reassemble
//! into the original message. Events come out in time order.

use std::collections::BTreeMap;

use crate::record::Record;

/// One event, reassembled.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEvent {
    /// Boot epoch of the boot that wrote it.
    pub incarnation: i64,
    /// `start` or `finish`.
    pub event_type: String,
    /// `init-network/config-users_groups`, …
    pub name: String,
    /// The VM id (26.x keys only).
    pub vm_id: Option<String>,
    /// The event's uuid.
    pub uuid: String,
    /// `ts` as written.
    pub timestamp: String,
    /// `SUCCESS`, `WARN`, `FAIL` (finish events).
    pub result: Option<String>,
    /// `duration` in seconds (26.x finish events).
    pub duration: Option<f64>,
    /// The description, all chunks joined.
    pub message: String,
    /// How many records it was stored in.
    pub chunks: usize,
}

impl DecodedEvent {
    /// The stage: the part of the name before the first `/`.
    pub fn stage(&self) -> &str {
        self.name.split('/').next().unwrap_or(&self.name)
    }

    /// The module: the part after the first `/`, if any.
    pub fn module(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, m)| m)
    }
}

struct Parsed<'a> {
    incarnation: i64,
    event_type: &'a str,
    name: &'a str,
    vm_id: Option<&'a str>,
    uuid: &'a str,
    index: Option<usize>,
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn parse_key(key: &str) -> Option<Parsed<'_>> {
    let parts: Vec<&str> = key.split('|').collect();
    if parts.first() != Some(&"CLOUD_INIT") {
        return None;
    }
    let incarnation = parts.get(1)?.parse().ok()?;
    let (vm_id, uuid, index) = match parts.len() {
        5 => (None, parts[4], None),
        6 if !looks_like_uuid(parts[5]) => (None, parts[4], Some(parts[5].parse().ok()?)),
        6 => (Some(parts[4]), parts[5], None),
        7 => (Some(parts[4]), parts[5], Some(parts[6].parse().ok()?)),
        _ => return None,
    };
    Some(Parsed {
        incarnation,
        event_type: parts[2],
        name: parts[3],
        vm_id,
        uuid,
        index,
    })
}

/// The raw (still escaped) text of the `msg` field and the envelope before it.
fn split_value(value: &str) -> Option<(&str, &str)> {
    let at = value.find(",\"msg\":\"")?;
    let raw = value[at + 8..].strip_suffix("\"}")?;
    Some((&value[..at], raw))
}

/// Decodes the inside of a JSON string; half surrogate pairs become U+FFFD.
pub fn unescape_json(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut pending_high: Option<u16> = None;
    let flush = |out: &mut String, pending: &mut Option<u16>| {
        if pending.take().is_some() {
            out.push('\u{fffd}');
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut out, &mut pending_high);
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or("the text ends inside an escape")?;
        let simple = match e {
            '"' => Some('"'),
            '\\' => Some('\\'),
            '/' => Some('/'),
            'b' => Some('\u{08}'),
            'f' => Some('\u{0c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'u' => None,
            other => return Err(format!("unknown escape '\\{other}'")),
        };
        if let Some(s) = simple {
            flush(&mut out, &mut pending_high);
            out.push(s);
            continue;
        }
        let hex: String = chars.by_ref().take(4).collect();
        let unit =
            u16::from_str_radix(&hex, 16).map_err(|_| format!("bad \\u escape '\\u{hex}'"))?;
        match (pending_high.take(), unit) {
            (Some(high), 0xdc00..=0xdfff) => {
                let c = 0x10000 + ((u32::from(high) - 0xd800) << 10) + (u32::from(unit) - 0xdc00);
                out.push(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            (previous, 0xd800..=0xdbff) => {
                if previous.is_some() {
                    out.push('\u{fffd}');
                }
                pending_high = Some(unit);
            }
            (previous, unit) => {
                if previous.is_some() {
                    out.push('\u{fffd}');
                }
                out.push(char::from_u32(u32::from(unit)).unwrap_or('\u{fffd}'));
            }
        }
    }
    flush(&mut out, &mut pending_high);
    Ok(out)
}

/// Decodes the events among `records`; the second value lists records that look like
/// events but cannot be read, each with its key.
pub fn decode_events(records: &[Record]) -> (Vec<DecodedEvent>, Vec<String>) {
    type GroupKey = (i64, String, String, String);
    let mut groups: BTreeMap<GroupKey, Vec<(usize, usize, &Record)>> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in records {
        if !r.key.starts_with("CLOUD_INIT|") {
            continue;
        }
        let Some(p) = parse_key(&r.key) else {
            problems.push(format!("{}: not a cloud-init event key", r.key));
            continue;
        };
        let group = (
            p.incarnation,
            p.event_type.to_string(),
            p.name.to_string(),
            p.uuid.to_string(),
        );
        groups
            .entry(group)
            .or_default()
            .push((p.index.unwrap_or(0), r.index, r));
    }
    let mut events = Vec::new();
    for ((incarnation, event_type, name, uuid), mut chunks) in groups {
        chunks.sort_by_key(|(i, pos, _)| (*i, *pos));
        let first = chunks[0].2;
        let Some((envelope, _)) = split_value(&first.value) else {
            problems.push(format!("{}: value has no \"msg\" field", first.key));
            continue;
        };
        let head: serde_json::Value = match serde_json::from_str(&format!("{envelope}}}")) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{}: value is not an event: {e}", first.key));
                continue;
            }
        };
        let mut raw = String::new();
        let mut broken = false;
        for (_, _, r) in &chunks {
            match split_value(&r.value) {
                Some((_, text)) => raw.push_str(text),
                None => {
                    problems.push(format!("{}: value has no \"msg\" field", r.key));
                    broken = true;
                }
            }
        }
        if broken {
            continue;
        }
        let message = match unescape_json(&raw) {
            Ok(m) => m,
            Err(e) => {
                problems.push(format!("{}: message does not decode: {e}", first.key));
                continue;
            }
        };
        events.push((
            first.index,
            DecodedEvent {
                incarnation,
                vm_id: parse_key(&first.key).and_then(|p| p.vm_id.map(str::to_string)),
                event_type,
                name,
                uuid,
                timestamp: head["ts"].as_str().unwrap_or_default().to_string(),
                result: head["result"].as_str().map(str::to_string),
                duration: head["duration"].as_f64(),
                message,
                chunks: chunks.len(),
            },
        ));
    }
    events.sort_by(|(pa, a), (pb, b)| {
        (a.incarnation, sortable_ts(&a.timestamp), *pa).cmp(&(
            b.incarnation,
            sortable_ts(&b.timestamp),
            *pb,
        ))
    });
    (events.into_iter().map(|(_, e)| e).collect(), problems)
}

/// `2023-11-14T22:13:22.5Z`-style timestamps made comparable as text: offset dropped
/// (cloud-init writes UTC), fraction padded to six digits.
fn sortable_ts(ts: &str) -> String {
    let base = ts.trim_end_matches('Z').trim_end_matches("+00:00");
    let (main, fraction) = base.split_once('.').unwrap_or((base, ""));
    format!("{main}.{fraction:0<6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_forms() {
        let u = "0d200cb2-57d6-4858-889a-8c2682ffcbbe";
        let v = "2ab2b1d5-0c3c-4b4e-9a84-1f3f0e7f9a61";
        let five = format!("CLOUD_INIT|1|start|init-local|{u}");
        let p = parse_key(&five).unwrap();
        assert_eq!((p.uuid, p.vm_id, p.index), (u, None, None));
        let six_chunk = format!("CLOUD_INIT|1|finish|x|{u}|3");
        assert_eq!(parse_key(&six_chunk).unwrap().index, Some(3));
        let six_vm = format!("CLOUD_INIT|1|start|x|{v}|{u}");
        let p = parse_key(&six_vm).unwrap();
        assert_eq!((p.vm_id, p.uuid), (Some(v), u));
        let seven = format!("CLOUD_INIT|1|start|x|{v}|{u}|2");
        assert_eq!(parse_key(&seven).unwrap().index, Some(2));
        assert!(parse_key("CLOUD_INIT|x|start|a|b").is_none());
        assert!(parse_key("OTHER|1|start|a|b").is_none());
    }

    #[test]
    fn split_surrogates_and_escapes_reassemble() {
        assert_eq!(
            unescape_json(r"a\ud83d\ude00b\u00e9\n\\").unwrap(),
            "a😀bé\n\\"
        );
        assert_eq!(unescape_json(r"\ud83dx").unwrap(), "\u{fffd}x");
        assert!(unescape_json("x\\").is_err());
    }
}
