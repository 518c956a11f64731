//! A small block-style YAML writer for netplan files: mappings and lists in block style,
//! strings unquoted only when they load back as the same string (YAML 1.1 rules, so
//! `on`, `0644` or a MAC that reads as a base-60 number get quotes). Pure.

use egs_cloudconfig::json::python_float_repr;
use egs_cloudconfig::yaml::plain_scalar_stays_string;

use crate::value::{Dict, Val};

/// Spaces per nesting level (cloud-init's netplan files use four).
const INDENT: usize = 4;

/// YAML allows implicit keys of at most 1024 characters; longer ones are written explicitly.
const MAX_SIMPLE_KEY: usize = 1000;

/// Writes `map` as a YAML document body; with `sort_keys`, keys in code point order at
/// every level (as PyYAML's `dump` does by default).
pub fn to_yaml(map: &Dict, sort_keys: bool) -> String {
    let mut out = String::new();
    Writer { sort_keys }.map(&mut out, map, 0, false);
    out
}

struct Writer {
    sort_keys: bool,
}

impl Writer {
    fn map(&self, out: &mut String, map: &Dict, col: usize, first_inline: bool) {
        let mut entries: Vec<(&String, &Val)> = map.iter().collect();
        if self.sort_keys {
            entries.sort_by(|a, b| a.0.cmp(b.0));
        }
        for (i, (key, value)) in entries.into_iter().enumerate() {
            if !(i == 0 && first_inline) {
                pad(out, col);
            }
            let key = scalar_text(key);
            if key.len() > MAX_SIMPLE_KEY {
                // Too long for an implicit key: the explicit `? key` / `: value` form.
                out.push_str("? ");
                out.push_str(&key);
                out.push('\n');
                pad(out, col);
            } else {
                out.push_str(&key);
            }
            out.push(':');
            self.after_key(out, value, col);
        }
    }

    fn after_key(&self, out: &mut String, value: &Val, col: usize) {
        match value {
            Val::Map(m) if !m.is_empty() => {
                out.push('\n');
                self.map(out, m, col + INDENT, false);
            }
            Val::List(l) if !l.is_empty() => {
                out.push('\n');
                self.list(out, l, col);
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_value(scalar));
                out.push('\n');
            }
        }
    }

    fn list(&self, out: &mut String, items: &[Val], col: usize) {
        for item in items {
            pad(out, col);
            match item {
                Val::Map(m) if !m.is_empty() => {
                    out.push_str("- ");
                    self.map(out, m, col + 2, true);
                }
                Val::List(l) if !l.is_empty() => {
                    out.push_str("-\n");
                    self.list(out, l, col + 2);
                }
                scalar => {
                    out.push_str("- ");
                    out.push_str(&scalar_value(scalar));
                    out.push('\n');
                }
            }
        }
    }
}

fn pad(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

/// A scalar (or empty collection) as YAML text.
fn scalar_value(value: &Val) -> String {
    match value {
        Val::Null => "null".into(),
        Val::Bool(b) => b.to_string(),
        Val::Int(i) => i.to_string(),
        Val::Float(f) if f.is_nan() => ".nan".into(),
        Val::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Val::Float(f) => python_float_repr(*f),
        Val::Str(s) => scalar_text(s),
        Val::List(_) => "[]".into(),
        Val::Map(_) => "{}".into(),
    }
}

/// A string, plain when that is unambiguous, else quoted.
fn scalar_text(text: &str) -> String {
    if is_plain_safe(text) {
        return text.to_string();
    }
    if text.chars().any(needs_escape) {
        double_quoted(text)
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

fn is_plain_safe(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    !"-?:,[]{}#&*!|>'\"%@`".contains(first)
        && text.trim() == text
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':')
        && !text.chars().any(|c| needs_escape(c) || c == '\t')
        && plain_scalar_stays_string(text)
}

fn needs_escape(c: char) -> bool {
    (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{feff}' || ('\u{80}'..='\u{9f}').contains(&c)
}

fn double_quoted(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                if (c as u32) <= 0xff {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                } else {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::dict;
    use egs_cloudconfig::yaml;

    #[test]
    fn writes_what_loads_back_the_same() {
        let doc = dict([
            ("version", Val::Int(2)),
            (
                "ethernets",
                Val::Map(dict([(
                    "eth0",
                    Val::Map(dict([
                        (
                            "match",
                            Val::Map(dict([("macaddress", "52:54:00:12:34:00".into())])),
                        ),
                        (
                            "addresses",
                            Val::List(vec!["::/0".into(), "10.0.0.2/24".into()]),
                        ),
                        ("dhcp4", Val::Bool(true)),
                        ("label", "on".into()),
                        ("odd", "it's: \"x\"\n".into()),
                        (
                            "routes",
                            Val::List(vec![Val::Map(dict([
                                ("to", "default".into()),
                                ("metric", Val::Int(5)),
                            ]))]),
                        ),
                        ("empty", Val::List(vec![])),
                    ])),
                )])),
            ),
        ]);
        let text = to_yaml(&doc, true);
        let loaded = yaml::load(&text, 0).unwrap().unwrap();
        assert_eq!(Val::from_node(&loaded), Val::Map(doc.clone()), "{text}");
        assert!(text.contains("'52:54:00:12:34:00'"), "{text}");
        assert!(text.contains("'on'"), "{text}");
        assert!(text.starts_with("ethernets:\n    eth0:\n"), "{text}");
    }

    #[test]
    fn long_keys_are_written_explicitly() {
        let long = "k".repeat(1500);
        for value in [
            Val::str("v"),
            Val::List(vec!["a".into(), "b".into()]),
            Val::Map(dict([("x", Val::Int(1))])),
        ] {
            let doc = dict([
                (long.as_str(), value.clone()),
                (
                    "list",
                    Val::List(vec![Val::Map(dict([(long.as_str(), value)]))]),
                ),
            ]);
            let text = to_yaml(&doc, false);
            let loaded = yaml::load(&text, 0)
                .unwrap_or_else(|e| panic!("{e}\n{text}"))
                .unwrap();
            assert_eq!(Val::from_node(&loaded), Val::Map(doc), "{text}");
        }
    }
}
