//! The loosely typed values network-config is made of, with Python's rules.
//!
//! cloud-init keeps network state as Python dictionaries: keys from the input (bond and
//! bridge parameters, subnet options) travel into the rendered files unchanged, falsy values
//! are dropped, and numbers and booleans are written with `str()`. Renderers that must match
//! cloud-init byte for byte need the same rules, so the state is kept in this small value
//! type rather than in fixed structs. Pure; no I/O.

use egs_cloudconfig::json::python_float_repr;
use egs_cloudconfig::value::{Node, Value};
use indexmap::IndexMap;

use crate::error::PlaceError;

/// A mapping in insertion order (a Python `dict` with string keys).
pub type Dict = IndexMap<String, Val>;

/// A network-config value.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    /// `None` / `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    List(Vec<Val>),
    /// A mapping.
    Map(Dict),
}

impl Val {
    /// A string value.
    pub fn str(text: impl Into<String>) -> Self {
        Val::Str(text.into())
    }

    /// Python truthiness: `None`, `False`, `0`, `""`, `[]` and `{}` are false.
    pub fn truthy(&self) -> bool {
        match self {
            Val::Null => false,
            Val::Bool(b) => *b,
            Val::Int(i) => *i != 0,
            Val::Float(f) => *f != 0.0,
            Val::Str(s) => !s.is_empty(),
            Val::List(l) => !l.is_empty(),
            Val::Map(m) => !m.is_empty(),
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping, if this is one.
    pub fn as_map(&self) -> Option<&Dict> {
        match self {
            Val::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The list, if this is one.
    pub fn as_list(&self) -> Option<&[Val]> {
        match self {
            Val::List(l) => Some(l),
            _ => None,
        }
    }

    /// The mapping, or an error at `place` saying what was found instead.
    pub(crate) fn expect_map(&self, place: &str) -> Result<&Dict, PlaceError> {
        self.as_map()
            .ok_or_else(|| PlaceError::expected(place, "a mapping", self))
    }

    /// The list, or an error at `place` saying what was found instead (a lone scalar too:
    /// cloud-init would iterate it).
    pub(crate) fn expect_list(&self, place: &str) -> Result<&[Val], PlaceError> {
        self.as_list()
            .ok_or_else(|| PlaceError::expected(place, "a list", self))
    }

    /// A list of mappings.
    pub fn list_of_maps(items: Vec<Dict>) -> Self {
        Val::List(items.into_iter().map(Val::Map).collect())
    }

    /// The text a rendered option takes: list items space-separated, anything else its
    /// Python `str()`.
    pub fn spaced(&self) -> String {
        match self {
            Val::List(items) => space_joined(items),
            other => other.py_str(),
        }
    }

    /// A short type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) => "integer",
            Val::Float(_) => "float",
            Val::Str(_) => "string",
            Val::List(_) => "list",
            Val::Map(_) => "mapping",
        }
    }

    /// Python's `str(value)`: strings as they are, `True`/`False`, `None`, and the `repr`
    /// of lists and dictionaries.
    pub fn py_str(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            other => other.py_repr(),
        }
    }

    /// Python's `repr(value)`.
    pub fn py_repr(&self) -> String {
        match self {
            Val::Null => "None".into(),
            Val::Bool(true) => "True".into(),
            Val::Bool(false) => "False".into(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => python_float_repr(*f),
            Val::Str(s) => py_quote(s),
            Val::List(items) => {
                let inner: Vec<String> = items.iter().map(Val::py_repr).collect();
                format!("[{}]", inner.join(", "))
            }
            Val::Map(map) => {
                let inner: Vec<String> = map
                    .iter()
                    .map(|(k, v)| format!("{}: {}", py_quote(k), v.py_repr()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
        }
    }

    /// cloud-init's `util.is_true`: booleans as they are, anything else by its text
    /// (`true`, `1`, `on`, `yes`, any case).
    pub fn is_true(&self) -> bool {
        match self {
            Val::Bool(b) => *b,
            other => matches!(
                other.py_str().trim().to_ascii_lowercase().as_str(),
                "true" | "1" | "on" | "yes"
            ),
        }
    }

    /// Converts a loaded YAML node. Keys become their Python `str()`; dates and binary
    /// data (which network-config never uses) become text.
    pub fn from_node(node: &Node) -> Val {
        match &node.value {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::BigInt(b) => Val::Str(b.to_string()),
            Value::Float(f) => Val::Float(*f),
            Value::Str(s) => Val::Str(s.clone()),
            Value::Bytes(b) => Val::Str(String::from_utf8_lossy(b).into_owned()),
            Value::Date(_) | Value::DateTime(_) => Val::Str(
                egs_cloudconfig::json::to_json(node)
                    .trim_matches('"')
                    .to_string(),
            ),
            Value::Seq(items) | Value::Set(items) => {
                Val::List(items.iter().map(Val::from_node).collect())
            }
            Value::Pairs(pairs) => Val::List(
                pairs
                    .iter()
                    .map(|(k, v)| Val::List(vec![Val::from_node(k), Val::from_node(v)]))
                    .collect(),
            ),
            Value::Map(map) => Val::Map(
                map.iter()
                    .map(|(k, v)| (Val::from_node(k).py_str(), Val::from_node(v)))
                    .collect(),
            ),
        }
    }

    /// Converts a parsed JSON value.
    pub fn from_json(json: &serde_json::Value) -> Val {
        match json {
            serde_json::Value::Null => Val::Null,
            serde_json::Value::Bool(b) => Val::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Val::Int(i),
                None => Val::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Val::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Val::List(items.iter().map(Val::from_json).collect())
            }
            serde_json::Value::Object(map) => Val::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Val::from_json(v)))
                    .collect(),
            ),
        }
    }
}

impl From<&str> for Val {
    fn from(text: &str) -> Self {
        Val::Str(text.to_string())
    }
}

impl From<String> for Val {
    fn from(text: String) -> Self {
        Val::Str(text)
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Self {
        Val::Bool(b)
    }
}

impl From<i64> for Val {
    fn from(i: i64) -> Self {
        Val::Int(i)
    }
}

/// Items' Python `str()`, space-separated.
pub fn space_joined(items: &[Val]) -> String {
    items.iter().map(Val::py_str).collect::<Vec<_>>().join(" ")
}

/// Python's `repr` of a string: single quotes unless the text holds one and no double quote.
fn py_quote(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Dictionary helpers with Python's `dict.get` semantics.
pub trait DictExt {
    /// The value under `key`, treating a missing key and `None` alike.
    fn value(&self, key: &str) -> Option<&Val>;
    /// Whether `key` holds a truthy value.
    fn truthy(&self, key: &str) -> bool;
    /// The text under `key`, if it is a string.
    fn text(&self, key: &str) -> Option<&str>;
    /// The Python `str()` of the value under `key`, if present and not `None`.
    fn text_of(&self, key: &str) -> Option<String>;
    /// The list under `key`; empty when there is none (or it is not a list).
    fn list(&self, key: &str) -> &[Val];
    /// The mappings in the list under `key` (other items passed over).
    fn maps(&self, key: &str) -> impl Iterator<Item = &Dict>;
}

impl DictExt for Dict {
    fn value(&self, key: &str) -> Option<&Val> {
        self.get(key).filter(|v| !matches!(v, Val::Null))
    }

    fn truthy(&self, key: &str) -> bool {
        self.get(key).is_some_and(Val::truthy)
    }

    fn text(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Val::as_str)
    }

    fn text_of(&self, key: &str) -> Option<String> {
        self.value(key).map(Val::py_str)
    }

    fn list(&self, key: &str) -> &[Val] {
        self.get(key).and_then(Val::as_list).unwrap_or_default()
    }

    fn maps(&self, key: &str) -> impl Iterator<Item = &Dict> {
        self.list(key).iter().filter_map(Val::as_map)
    }
}

/// Builds a [`Dict`] from key/value pairs.
pub fn dict<const N: usize>(pairs: [(&str, Val); N]) -> Dict {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_str_and_repr() {
        assert_eq!(Val::Bool(true).py_str(), "True");
        assert_eq!(Val::Int(9000).py_str(), "9000");
        assert_eq!(Val::Float(1.5).py_str(), "1.5");
        let map = Val::Map(dict([
            ("addresses", Val::List(vec!["1.2.3.4".into()])),
            ("search", Val::List(vec!["it's".into()])),
        ]));
        assert_eq!(
            map.py_str(),
            "{'addresses': ['1.2.3.4'], 'search': [\"it's\"]}"
        );
    }

    #[test]
    fn truthiness_and_is_true() {
        assert!(!Val::Int(0).truthy());
        assert!(!Val::str("").truthy());
        assert!(Val::str("0").truthy());
        assert!(Val::str(" Yes ").is_true());
        assert!(Val::Int(1).is_true());
        assert!(!Val::str("no").is_true());
    }
}
