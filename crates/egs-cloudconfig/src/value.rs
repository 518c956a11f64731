//! The values a YAML document loads into, shaped like the Python objects PyYAML's
//! `safe_load` returns, plus the place every node came from.
//!
//! Mapping keys follow Python's dictionary rules: `1`, `1.0` and `true` are the same key,
//! a repeated key keeps its first position and takes the last value. This module does no I/O.

use indexmap::IndexMap;
use num_bigint::BigInt;

/// Where a node was read: which source (user-data part) and which line and column.
///
/// Lines and columns are 1-based; `0` means "not from a document" (e.g. built by a merge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Origin {
    /// Index of the source document (the pipeline numbers cloud-config parts from 0).
    pub source: u32,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl Origin {
    /// An origin in source `source` at `line`, `column` (both 1-based).
    pub fn new(source: u32, line: u32, column: u32) -> Self {
        Self {
            source,
            line,
            column,
        }
    }
}

/// A YAML 1.1 timestamp without a time part (`2001-12-14`), Python's `datetime.date`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    /// Year, 1..=9999.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of month.
    pub day: u8,
}

/// A YAML 1.1 timestamp with a time part, Python's `datetime.datetime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// The calendar date.
    pub date: Date,
    /// Hour, 0..=23.
    pub hour: u8,
    /// Minute, 0..=59.
    pub minute: u8,
    /// Second, 0..=59.
    pub second: u8,
    /// Microseconds, 0..=999_999.
    pub microsecond: u32,
    /// Offset from UTC in minutes, `None` for a naive timestamp.
    pub utc_offset_minutes: Option<i32>,
}

/// A loaded YAML value. Every nested value is a [`Node`] and so knows its [`Origin`].
#[derive(Debug, Clone)]
pub enum Value {
    /// `null`, `~`, empty.
    Null,
    /// YAML 1.1 booleans (`yes`, `On`, `false`, …).
    Bool(bool),
    /// Integers that fit in 64 bits.
    Int(i64),
    /// Integers that do not (Python integers are unbounded).
    BigInt(BigInt),
    /// Floats, including infinities and NaN.
    Float(f64),
    /// Text.
    Str(String),
    /// `!!binary` content.
    Bytes(Vec<u8>),
    /// Timestamp with only a date.
    Date(Date),
    /// Timestamp with a time.
    DateTime(DateTime),
    /// Sequences.
    Seq(Vec<Node>),
    /// Mappings, in Python dictionary order.
    Map(Mapping),
    /// `!!set`: unique keys in insertion order.
    Set(Vec<Node>),
    /// `!!omap` and `!!pairs`: a list of key/value pairs (Python tuples).
    Pairs(Vec<(Node, Node)>),
}

/// A value and where it came from.
#[derive(Debug, Clone)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it was read.
    pub origin: Origin,
}

impl Node {
    /// A node with the given value and origin.
    pub fn new(value: Value, origin: Origin) -> Self {
        Self { value, origin }
    }

    /// A node with no document origin.
    pub fn detached(value: Value) -> Self {
        Self {
            value,
            origin: Origin::default(),
        }
    }

    /// The value as text, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping, if the value is one.
    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The sequence items, if the value is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// Python's `str()` of a scalar (`True`, `None`, `1.0`), as cloud-init applies it to
    /// command arguments and header values; `None` for collections and binary.
    pub fn python_str(&self) -> Option<String> {
        Some(match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(i) => i.to_string(),
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Null => "None".into(),
            Value::Float(f) => crate::json::python_float_repr(*f),
            _ => return None,
        })
    }

    /// The name PyYAML/Python would give this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        self.value.type_name()
    }

    /// cloud-init's `util.is_true`: a boolean as it is, anything else true when its
    /// `str()`, lower-cased and trimmed, is `true`, `1`, `on` or `yes`.
    pub fn is_true(&self) -> bool {
        match &self.value {
            Value::Bool(b) => *b,
            _ => self.python_str().is_some_and(|s| {
                matches!(
                    s.trim().to_lowercase().as_str(),
                    "true" | "1" | "on" | "yes"
                )
            }),
        }
    }

    /// cloud-init's `util.translate_bool` (what `get_cfg_option_bool` reads): Python-falsy
    /// values (null, `0`, `""`, empty collections) are false, a boolean is itself, anything
    /// else is [`Node::is_true`].
    pub fn translate_bool(&self) -> bool {
        let falsy = match &self.value {
            Value::Null => true,
            Value::Bool(b) => return *b,
            Value::Int(i) => *i == 0,
            Value::Float(f) => *f == 0.0,
            Value::Str(s) => s.is_empty(),
            Value::Seq(items) => items.is_empty(),
            Value::Map(map) => map.is_empty(),
            _ => false,
        };
        !falsy && self.is_true()
    }
}

impl PartialEq for Node {
    /// Nodes compare by value only; origins are provenance, not content.
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Value {
    /// A short type name as people know it from YAML/Python (`string`, `integer`, `list`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::BigInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Bytes(_) => "binary",
            Value::Date(_) => "date",
            Value::DateTime(_) => "timestamp",
            Value::Seq(_) => "list",
            Value::Map(_) => "mapping",
            Value::Set(_) => "set",
            Value::Pairs(_) => "pairs",
        }
    }
}

impl PartialEq for Value {
    /// Structural equality with Python's rules for numbers (`1 == 1.0 == true`); NaN equals
    /// NaN here so that loaded documents can be compared.
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Date(a), Date(b)) => a == b,
            (DateTime(a), DateTime(b)) => a == b,
            (Seq(a), Seq(b)) | (Set(a), Set(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Pairs(a), Pairs(b)) => a == b,
            (Float(a), Float(b)) if a.is_nan() && b.is_nan() => true,
            _ => match (KeyId::of(self), KeyId::of(other)) {
                (Some(a), Some(b)) if is_number(self) && is_number(other) => a == b,
                _ => false,
            },
        }
    }
}

fn is_number(v: &Value) -> bool {
    matches!(
        v,
        Value::Bool(_) | Value::Int(_) | Value::BigInt(_) | Value::Float(_)
    )
}

/// The identity of a mapping key under Python's hashing rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// `None`.
    Null,
    /// Any number whose value is integral (bools and integral floats included).
    Int(BigInt),
    /// A non-integral finite float or an infinity, by bit pattern.
    Float(u64),
    /// NaN: PyYAML hands out one shared NaN object, so all NaN keys collide.
    Nan,
    /// Text.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A date.
    Date(Date),
    /// A naive timestamp, or an aware one normalised to UTC (aware and naive never collide).
    DateTime(DateTime),
}

impl KeyId {
    /// The key identity of a value, or `None` when Python would call it unhashable.
    pub fn of(value: &Value) -> Option<KeyId> {
        Some(match value {
            Value::Null => KeyId::Null,
            Value::Bool(b) => KeyId::Int(BigInt::from(*b as i64)),
            Value::Int(i) => KeyId::Int(BigInt::from(*i)),
            Value::BigInt(i) => KeyId::Int(i.clone()),
            Value::Float(f) if f.is_nan() => KeyId::Nan,
            Value::Float(f) if f.is_finite() && f.fract() == 0.0 => {
                KeyId::Int(BigInt::from(*f as i128))
            }
            Value::Float(f) => KeyId::Float(f.to_bits()),
            Value::Str(s) => KeyId::Str(s.clone()),
            Value::Bytes(b) => KeyId::Bytes(b.clone()),
            Value::Date(d) => KeyId::Date(*d),
            Value::DateTime(dt) => KeyId::DateTime(dt.normalised_to_utc()),
            Value::Seq(_) | Value::Map(_) | Value::Set(_) | Value::Pairs(_) => return None,
        })
    }
}

impl DateTime {
    /// A naive UTC timestamp from Unix seconds and microseconds (Python's
    /// `datetime.utcfromtimestamp`).
    pub fn from_unix(seconds: i64, microsecond: u32) -> DateTime {
        let (days, secs) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        DateTime {
            date: civil_from_days(days),
            hour: (secs / 3600) as u8,
            minute: (secs % 3600 / 60) as u8,
            second: (secs % 60) as u8,
            microsecond,
            utc_offset_minutes: None,
        }
    }

    /// The same instant with a zero UTC offset; naive timestamps are returned unchanged.
    pub fn normalised_to_utc(&self) -> DateTime {
        let Some(offset) = self.utc_offset_minutes else {
            return *self;
        };
        let days = days_from_civil(self.date);
        let minutes_of_day = self.hour as i64 * 60 + self.minute as i64 - offset as i64;
        let total = days * 1440 + minutes_of_day;
        let (day, minute) = (total.div_euclid(1440), total.rem_euclid(1440));
        DateTime {
            date: civil_from_days(day),
            hour: (minute / 60) as u8,
            minute: (minute % 60) as u8,
            utc_offset_minutes: Some(0),
            ..*self
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(d: Date) -> i64 {
    let (y, m, day) = (d.year as i64, d.month as i64, d.day as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> Date {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date {
        year: year.clamp(0, u16::MAX as i64) as u16,
        month,
        day,
    }
}

/// A mapping with Python dictionary semantics: insertion order, one entry per [`KeyId`].
#[derive(Debug, Clone, Default)]
pub struct Mapping {
    entries: IndexMap<KeyId, (Node, Node)>,
}

impl PartialEq for Mapping {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .all(|(k, (_, v))| other.entries.get(k).is_some_and(|(_, ov)| ov == v))
    }
}

/// The key was a list, mapping or set, which Python cannot hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnhashableKey;

impl Mapping {
    /// An empty mapping.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces `key`'s value; a replaced entry keeps its position and its
    /// original key (as `dict[key] = value` does in Python).
    pub fn insert(&mut self, key: Node, value: Node) -> Result<(), UnhashableKey> {
        let id = KeyId::of(&key.value).ok_or(UnhashableKey)?;
        match self.entries.get_mut(&id) {
            Some(entry) => entry.1 = value,
            None => {
                self.entries.insert(id, (key, value));
            }
        }
        Ok(())
    }

    /// Inserts a string key.
    pub fn insert_str(&mut self, key: &str, value: Node) {
        let key = Node::detached(Value::Str(key.to_string()));
        // A string key is always hashable.
        let _ = self.insert(key, value);
    }

    /// The value under a string key.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .get(&KeyId::Str(key.to_string()))
            .map(|(_, v)| v)
    }

    /// The value under any key.
    pub fn get_by_id(&self, key: &KeyId) -> Option<&Node> {
        self.entries.get(key).map(|(_, v)| v)
    }

    /// The entry (original key and value) under a string key.
    pub fn get_entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries
            .get(&KeyId::Str(key.to_string()))
            .map(|(k, v)| (k, v))
    }

    /// Mutable access to the value under any key.
    pub fn get_mut_by_id(&mut self, key: &KeyId) -> Option<&mut Node> {
        self.entries.get_mut(key).map(|(_, v)| v)
    }

    /// Removes a string key, keeping the order of the others.
    pub fn remove(&mut self, key: &str) -> Option<Node> {
        self.entries
            .shift_remove(&KeyId::Str(key.to_string()))
            .map(|(_, v)| v)
    }

    /// Removes any key, keeping the order of the others.
    pub fn remove_by_id(&mut self, key: &KeyId) -> Option<Node> {
        self.entries.shift_remove(key).map(|(_, v)| v)
    }

    /// Whether the string key is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Node, &Node)> {
        self.entries.values().map(|(k, v)| (k, v))
    }

    /// Entries in order, with their key identities.
    pub fn iter_with_ids(&self) -> impl Iterator<Item = (&KeyId, &Node, &Node)> {
        self.entries.iter().map(|(id, (k, v))| (id, k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl IntoIterator for Mapping {
    type Item = (Node, Node);
    type IntoIter = indexmap::map::IntoValues<KeyId, (Node, Node)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: Value) -> Node {
        Node::detached(v)
    }

    #[test]
    fn python_key_identity_merges_numbers_and_keeps_first_key() {
        let mut m = Mapping::new();
        m.insert(n(Value::Int(1)), n(Value::Str("a".into())))
            .unwrap();
        m.insert(n(Value::Bool(true)), n(Value::Str("b".into())))
            .unwrap();
        m.insert(n(Value::Float(1.0)), n(Value::Str("c".into())))
            .unwrap();
        assert_eq!(m.len(), 1);
        let (k, v) = m.iter().next().unwrap();
        assert!(matches!(k.value, Value::Int(1)));
        assert_eq!(v.as_str(), Some("c"));
    }

    #[test]
    fn unhashable_keys_are_refused() {
        let mut m = Mapping::new();
        assert_eq!(
            m.insert(n(Value::Seq(vec![])), n(Value::Null)),
            Err(UnhashableKey)
        );
    }

    #[test]
    fn aware_timestamps_compare_as_instants() {
        let d = |h, off| DateTime {
            date: Date {
                year: 2001,
                month: 12,
                day: 31,
            },
            hour: h,
            minute: 30,
            second: 0,
            microsecond: 0,
            utc_offset_minutes: off,
        };
        assert_eq!(
            KeyId::of(&Value::DateTime(d(23, Some(-60)))),
            KeyId::of(&Value::DateTime(DateTime {
                date: Date {
                    year: 2002,
                    month: 1,
                    day: 1
                },
                hour: 0,
                ..d(0, Some(0))
            }))
        );
        assert_ne!(
            KeyId::of(&Value::DateTime(d(23, None))),
            KeyId::of(&Value::DateTime(d(23, Some(0))))
        );
    }
}
