//! Differential property test: generated scalars and small documents are loaded by our
//! loader and by PyYAML (`python3` with the `yaml` module, installed by `.ci/run`), and
//! both results are compared in a canonical typed rendering (so `1`, `1.0`, `"1"` and
//! `true` all differ). Errors must agree too: both refuse, or both accept the same value.
//!
//! Linux only: PyYAML (python3) is the oracle.

#![cfg(unix)]

use std::fmt::Write;
use std::process::Command;

use egs_cloudconfig::json::{datetime_text, python_float_repr};
use egs_cloudconfig::value::{Node, Value};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const SCALAR_CASES: usize = 4000;
const DOCUMENT_CASES: usize = 1500;
const MERGE_CASES: usize = 300;

/// Texts chosen to sit on the edges of PyYAML's implicit resolvers.
const EDGE_SCALARS: &[&str] = &[
    "yes",
    "Yes",
    "YES",
    "yEs",
    "no",
    "No",
    "NO",
    "true",
    "True",
    "TRUE",
    "tRue",
    "false",
    "on",
    "On",
    "ON",
    "off",
    "Off",
    "OFF",
    "y",
    "Y",
    "n",
    "N",
    "null",
    "Null",
    "NULL",
    "nULL",
    "~",
    ".inf",
    "-.Inf",
    "+.INF",
    ".nan",
    ".NaN",
    ".NAN",
    "-.nan",
    "<<",
    "=",
    "0",
    "-0",
    "+0",
    "00",
    "0o7",
    "0o600",
    "0x1F",
    "0X1F",
    "-0x1f",
    "0b101",
    "0B1",
    "-0b11",
    "1_000",
    "1__0",
    "_1",
    "1_",
    "0_",
    "0b_",
    "0x_",
    "0_7",
    "1:30",
    "1:60",
    "-1:30:59",
    "+1:00",
    "1:3.5",
    "190:20:30.15",
    "1.",
    "-1.",
    "1.e+5",
    ".5",
    "-.5",
    "1e5",
    "1.0e+10",
    "1.5E-3",
    "1.5e3",
    "0644",
    "0755",
    "0888",
    "08",
    "09.5",
    "0.0",
    "-0.0",
    "2001-12-14",
    "2001-1-14",
    "2001-12-14t21:59:43.10-05:00",
    "2001-12-14 21:59:43.10 -5",
    "2001-12-15T02:59:43.1Z",
    "2002-12-14 1:2:03",
    "2001-02-30",
    "2000-02-29",
    "1900-02-29",
    "9999-12-31 23:59:59.9999999+23:59",
    "2001-12-14 24:00:00",
    "2001-12-14T10:00:00+24",
    "0000-01-01",
    "12:30:45",
    "1_0:30",
    "99999999999999999999",
    "-0x_ff_ff",
    "0b1111111111111111111111111111111111111111111111111111111111111111111",
    "1.7976931348623157e+308",
    "1.8e+308",
    "123456789012345678.0",
    "3.14159265358979323846",
    "0.1",
    "1e-5",
];

fn scalar_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(EDGE_SCALARS).prop_map(str::to_string),
        3 => "[0-9_:.+eExXbBoO-]{1,10}",
        2 => "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,8})?( ?(Z|[+-][0-9]{1,2}(:[0-9]{2})?))?)?",
        2 => "[a-zA-Z~<=.]{1,6}",
        1 => "[ -~]{0,12}",
        1 => "[ -~\u{a0}-\u{ff}\u{4e00}-\u{4e10}\u{1f600}]{0,8}",
    ]
}

/// Whether text can be written as a plain scalar in block (and optionally flow) context
/// without changing its meaning to the parser.
fn plain_safe(text: &str, flow: bool) -> bool {
    let first = text.chars().next();
    let second = text.chars().nth(1);
    !text.is_empty()
        && !text.starts_with([' ', '\t'])
        && !text.ends_with([' ', '\t', ':'])
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.contains('\t')
        && !matches!(first, Some(',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`'))
        && !(matches!(first, Some('-' | '?' | ':')) && matches!(second, None | Some(' ')))
        && !text.starts_with("---")
        && !text.starts_with("...")
        && !(flow && text.contains([',', '[', ']', '{', '}', '#', ':']))
        // PyYAML reads a leading '?' in flow context as a key indicator (`[?a]` is
        // `[{a: null}]`); we refuse such scalars on purpose (see the loader's docs).
        && !(flow && text.starts_with('?'))
}

fn single_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn double_quoted(text: &str) -> String {
    let mut s = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

const TAGS: &[&str] = &[
    "!!str",
    "!!int",
    "!!float",
    "!!bool",
    "!!null",
    "!!timestamp",
    "!!binary",
    "!",
];

/// A scalar as it appears in a document: plain, quoted, or quoted with an explicit tag.
fn rendered_scalar(flow: bool) -> impl Strategy<Value = String> {
    (scalar_text(), 0u8..10, proptest::sample::select(TAGS)).prop_map(move |(text, style, tag)| {
        match style {
            0..=4 if plain_safe(&text, flow) => text,
            0..=5 => single_quoted(&text),
            6..=7 => double_quoted(&text),
            _ => format!("{tag} {}", double_quoted(&text)),
        }
    })
}

#[derive(Debug, Clone)]
enum Doc {
    Scalar(String),
    Seq(Vec<Doc>),
    Map(Vec<(String, Doc)>),
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            &[
                "a",
                "b",
                "c",
                "1",
                "1.0",
                "yes",
                "null",
                "~",
                "0x1",
                "'a'",
                "\"b\"",
                "2001-12-14"
            ][..]
        )
        .prop_map(str::to_string),
        rendered_scalar(false).prop_filter("keys stay on one line", |k| !k.contains(['\n', '#'])),
    ]
}

fn doc(flow: bool) -> impl Strategy<Value = Doc> {
    let leaf = rendered_scalar(flow).prop_map(Doc::Scalar);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Doc::Seq),
            proptest::collection::vec(
                (
                    key().prop_filter("flow keys", move |k| !flow || plain_or_quoted_flow_safe(k)),
                    inner
                ),
                0..4
            )
            .prop_map(Doc::Map),
        ]
    })
}

fn plain_or_quoted_flow_safe(k: &str) -> bool {
    k.starts_with(['\'', '"', '!']) || plain_safe(k, true)
}

fn emit_block(doc: &Doc, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match doc {
        Doc::Scalar(s) => {
            let _ = writeln!(out, "{pad}{s}");
        }
        Doc::Seq(items) if items.is_empty() => {
            let _ = writeln!(out, "{pad}[]");
        }
        Doc::Map(pairs) if pairs.is_empty() => {
            let _ = writeln!(out, "{pad}{{}}");
        }
        Doc::Seq(items) => {
            for item in items {
                match item {
                    Doc::Scalar(s) => {
                        let _ = writeln!(out, "{pad}- {s}");
                    }
                    nested => {
                        let _ = writeln!(out, "{pad}-");
                        emit_block(nested, indent + 2, out);
                    }
                }
            }
        }
        Doc::Map(pairs) => {
            for (k, v) in pairs {
                match v {
                    Doc::Scalar(s) => {
                        let _ = writeln!(out, "{pad}{k}: {s}");
                    }
                    nested => {
                        let _ = writeln!(out, "{pad}{k}:");
                        emit_block(nested, indent + 2, out);
                    }
                }
            }
        }
    }
}

fn emit_flow(doc: &Doc) -> String {
    match doc {
        Doc::Scalar(s) => s.clone(),
        Doc::Seq(items) => format!(
            "[{}]",
            items.iter().map(emit_flow).collect::<Vec<_>>().join(", ")
        ),
        Doc::Map(pairs) => format!(
            "{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{k}: {}", emit_flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn generate<S: Strategy>(strategy: S, n: usize, runner: &mut TestRunner) -> Vec<S::Value> {
    (0..n)
        .map(|_| strategy.new_tree(runner).expect("generate").current())
        .collect()
}

fn canon(node: &Node) -> String {
    match &node.value {
        Value::Null => "N".into(),
        Value::Bool(b) => format!("B:{b}"),
        Value::Int(i) => format!("I:{i}"),
        Value::BigInt(i) => format!("I:{i}"),
        Value::Float(f) => format!("F:{}", python_float_repr(*f)),
        Value::Str(s) => format!("S:{}", serde_json::to_string(s).unwrap()),
        Value::Bytes(b) => format!(
            "Y:{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        ),
        Value::Date(d) => format!("D:{:04}-{:02}-{:02}", d.year, d.month, d.day),
        Value::DateTime(dt) => format!("T:{}", datetime_text(dt)),
        Value::Seq(items) => format!(
            "L[{}]",
            items.iter().map(canon).collect::<Vec<_>>().join(",")
        ),
        Value::Pairs(pairs) => format!(
            "L[{}]",
            pairs
                .iter()
                .map(|(k, v)| format!("P[{},{}]", canon(k), canon(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Map(map) => format!(
            "M{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}=>{}", canon(k), canon(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Set(items) => {
            let mut parts: Vec<String> = items.iter().map(canon).collect();
            parts.sort();
            format!("E{{{}}}", parts.join(","))
        }
    }
}

fn ours(doc: &str) -> String {
    match egs_cloudconfig::yaml::load(doc, 0) {
        Ok(Some(node)) => canon(&node),
        Ok(None) => "N".into(),
        Err(_) => "ERR".into(),
    }
}

fn pyyaml(docs: &[String]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.json");
    std::fs::write(&input, serde_json::to_string(docs).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pyyaml_oracle.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&input)
        .output()
        .expect("python3 is needed for the PyYAML differential test (.ci/run installs it)");
    assert!(
        output.status.success(),
        "PyYAML oracle failed (is `pip install pyyaml` done?): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn loader_agrees_with_pyyaml_on_generated_documents() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let mut docs: Vec<String> = Vec::new();
    for s in generate(rendered_scalar(false), SCALAR_CASES, &mut runner) {
        docs.push(format!("v: {s}\n"));
        docs.push(format!("- {s}\n"));
    }
    for s in generate(rendered_scalar(true), SCALAR_CASES / 4, &mut runner) {
        docs.push(format!("[{s}, {{k: {s}}}]\n"));
    }
    for d in generate(doc(false), DOCUMENT_CASES, &mut runner) {
        let mut text = String::new();
        emit_block(&d, 0, &mut text);
        docs.push(text);
    }
    for d in generate(doc(true), DOCUMENT_CASES / 2, &mut runner) {
        docs.push(emit_flow(&d) + "\n");
    }
    let merge = (doc(true), doc(true), doc(false), 0u8..3);
    for (a, b, local, form) in generate(merge, MERGE_CASES, &mut runner) {
        let mut text = format!("a: &a {}\nb: &b {}\nc:\n", emit_flow(&a), emit_flow(&b));
        text.push_str(match form {
            0 => "  <<: *a\n",
            1 => "  <<: [*a, *b]\n",
            _ => "  <<: [*b, *a]\n  k: *a\n",
        });
        if let Doc::Map(_) = local {
            emit_block(&local, 2, &mut text);
        }
        docs.push(text);
    }

    let expected = pyyaml(&docs);
    assert_eq!(expected.len(), docs.len());
    let mismatches: Vec<String> = docs
        .iter()
        .zip(&expected)
        .filter_map(|(doc, theirs)| {
            let mine = ours(doc);
            (mine != *theirs)
                .then(|| format!("document {doc:?}\n  pyyaml: {theirs}\n  ours:   {mine}"))
        })
        .collect();
    let accepted = expected.iter().filter(|e| *e != "ERR").count();
    assert!(
        accepted * 2 > docs.len(),
        "the generator should mostly produce valid YAML ({accepted}/{})",
        docs.len()
    );
    assert!(
        mismatches.is_empty(),
        "{} of {} documents differ from PyYAML; first ones:\n{}",
        mismatches.len(),
        docs.len(),
        mismatches
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
