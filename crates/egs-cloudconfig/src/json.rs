//! JSON rendering of loaded values with cloud-init's conventions: bytes become
//! `"ci-b64:<base64>"`, timestamps ISO-8601 as Python's `isoformat()`, non-string keys take
//! JSON's spelling, and `.nan`/`.inf`/`-.inf` become those strings.

use std::fmt::Write;

use base64::Engine;

use crate::value::{Date, DateTime, Node, Value};

/// Renders a value as compact JSON text.
pub fn to_json(node: &Node) -> String {
    let mut out = String::new();
    write_value(&mut out, &node.value);
    out
}

/// Renders a value as JSON text indented by two spaces.
pub fn to_json_pretty(node: &Node) -> String {
    let mut out = String::new();
    write_pretty(&mut out, &node.value, 0);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Seq(items) | Value::Set(items) => {
            out.push('[');
            for (i, item) in sorted_if_set(value, items).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, &item.value);
            }
            out.push(']');
        }
        Value::Pairs(pairs) => {
            out.push('[');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push('[');
                write_value(out, &k.value);
                out.push(',');
                write_value(out, &v.value);
                out.push(']');
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, &key_text(&k.value));
                out.push(':');
                write_value(out, &v.value);
            }
            out.push('}');
        }
        scalar => write_scalar(out, scalar),
    }
}

fn write_pretty(out: &mut String, value: &Value, indent: usize) {
    let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n(' ', n));
    match value {
        Value::Seq(items) | Value::Set(items) if !items.is_empty() => {
            out.push_str("[\n");
            let items = sorted_if_set(value, items);
            for (i, item) in items.iter().enumerate() {
                pad(out, indent + 2);
                write_pretty(out, &item.value, indent + 2);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push(']');
        }
        Value::Map(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, v)) in map.iter().enumerate() {
                pad(out, indent + 2);
                write_string(out, &key_text(&k.value));
                out.push_str(": ");
                write_pretty(out, &v.value, indent + 2);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            pad(out, indent);
            out.push('}');
        }
        other => write_value(out, other),
    }
}

/// A `!!set` is rendered as a sorted list (by each element's JSON text).
fn sorted_if_set<'a>(value: &Value, items: &'a [Node]) -> Vec<&'a Node> {
    let mut refs: Vec<&Node> = items.iter().collect();
    if matches!(value, Value::Set(_)) {
        refs.sort_by_cached_key(|n| to_json(n));
    }
    refs
}

fn write_scalar(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::BigInt(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_nan() => write_string(out, ".nan"),
        Value::Float(f) if f.is_infinite() => {
            write_string(out, if *f > 0.0 { ".inf" } else { "-.inf" })
        }
        Value::Float(f) => out.push_str(&python_float_repr(*f)),
        Value::Str(s) => write_string(out, s),
        Value::Bytes(b) => write_string(out, &bytes_text(b)),
        Value::Date(d) => write_string(out, &date_text(d)),
        Value::DateTime(dt) => write_string(out, &datetime_text(dt)),
        Value::Seq(_) | Value::Map(_) | Value::Set(_) | Value::Pairs(_) => {
            unreachable!("collections are written by write_value")
        }
    }
}

/// How a mapping key is spelled in JSON (Python's `json` rules for non-string keys).
fn key_text(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".into(),
        Value::Float(f) if f.is_infinite() => {
            if *f > 0.0 { "Infinity" } else { "-Infinity" }.into()
        }
        Value::Float(f) => python_float_repr(*f),
        Value::Bytes(b) => bytes_text(b),
        Value::Date(d) => date_text(d),
        Value::DateTime(dt) => datetime_text(dt),
        other => to_json(&Node::detached(other.clone())),
    }
}

fn bytes_text(bytes: &[u8]) -> String {
    format!(
        "ci-b64:{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn date_text(d: &Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// Python's `datetime.isoformat()`.
pub fn datetime_text(dt: &DateTime) -> String {
    let mut s = format!(
        "{}T{:02}:{:02}:{:02}",
        date_text(&dt.date),
        dt.hour,
        dt.minute,
        dt.second
    );
    if dt.microsecond != 0 {
        let _ = write!(s, ".{:06}", dt.microsecond);
    }
    if let Some(offset) = dt.utc_offset_minutes {
        let sign = if offset < 0 { '-' } else { '+' };
        let _ = write!(s, "{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60);
    }
    s
}

/// Python's `repr(float)`: the shortest round-tripping digits, fixed notation for
/// exponents from -4 to 15, scientific (`1e+16`, `1.5e-05`) otherwise.
pub fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp < 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        } else {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Writes a JSON string literal; non-ASCII text is written as is (UTF-8).
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    s.chars().for_each(|c| push_char(out, c, false));
    out.push('"');
}

/// Writes a JSON string literal as Python's `json.dumps` does by default (`ensure_ascii`):
/// everything outside printable ASCII, DEL included, as `\uXXXX` (UTF-16 surrogate pairs
/// beyond the BMP).
pub fn write_string_ascii(out: &mut String, s: &str) {
    out.push('"');
    s.chars().for_each(|c| push_char(out, c, true));
    out.push('"');
}

/// Appends one character as it appears inside a JSON string literal.
pub fn push_char(out: &mut String, c: char, ascii_only: bool) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{08}' => out.push_str("\\b"),
        '\u{0c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 || (ascii_only && !(' '..='~').contains(&c)) => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        for (f, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (-0.0, "-0.0"),
            (1e15, "1000000000000000.0"),
            (685230.15, "685230.15"),
        ] {
            assert_eq!(python_float_repr(f), s);
        }
    }

    #[test]
    fn conventions() {
        let doc = crate::yaml::load(
            "b: !!binary aGk=\nd: 2001-12-14\nt: 2001-12-14 21:59:43.10 -5\n1: x\nn: .nan\ni: -.inf\n",
            0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            to_json(&doc),
            r#"{"b":"ci-b64:aGk=","d":"2001-12-14","t":"2001-12-14T21:59:43.100000-05:00","1":"x","n":".nan","i":"-.inf"}"#
        );
    }
}
