//! `json_patch::apply` against python3-jsonpatch (the library cloud-init applies
//! `#cloud-config-jsonp` parts with, installed with Debian's cloud-init): for each case
//! both give the same document, or both refuse the patch.
//!
//! Linux only: the system's `python3` with `jsonpatch` is the oracle.
#![cfg(unix)]

use std::io::Write;
use std::process::{Command, Stdio};

use egs_cloudconfig::json::to_json;
use egs_cloudconfig::json_patch::apply;

const DOCUMENT: &str = r#"{"a": "b", "c": "d", "runcmd": ["one", "two"], "users": [{"name": "x"}], "x/y": 1, "m~n": {"k": [1, 2]}}"#;

const PATCHES: &[&str] = &[
    r#"[{"op": "add", "path": "/baz", "value": "qux"}]"#,
    r#"[{"op": "remove", "path": "/c"}]"#,
    r#"[{"op": "add", "path": "/runcmd/-", "value": "three"}, {"op": "add", "path": "/runcmd/0", "value": "zero"}]"#,
    r#"[{"op": "add", "path": "/runcmd/2", "value": "end"}]"#,
    r#"[{"op": "add", "path": "/runcmd/3", "value": "beyond"}]"#,
    r#"[{"op": "add", "path": "/runcmd/01", "value": "leading zero"}]"#,
    r#"[{"op": "replace", "path": "/x~1y", "value": {"deep": [null, true, 1.5]}}]"#,
    r#"[{"op": "replace", "path": "/nothing", "value": 1}]"#,
    r#"[{"op": "remove", "path": "/m~0n/k/1"}]"#,
    r#"[{"op": "remove", "path": "/m~0n/k/5"}]"#,
    r#"[{"op": "move", "from": "/runcmd/1", "path": "/users/0/shell"}]"#,
    r#"[{"op": "move", "from": "/users", "path": "/users/0/inner"}]"#,
    r#"[{"op": "copy", "from": "/users/0", "path": "/users/-"}]"#,
    r#"[{"op": "test", "path": "/a", "value": "b"}, {"op": "add", "path": "/t", "value": 1}]"#,
    r#"[{"op": "test", "path": "/a", "value": "z"}, {"op": "add", "path": "/t", "value": 1}]"#,
    r#"[{"op": "add", "path": "", "value": {"whole": true}}]"#,
    r#"[{"op": "add", "path": "/a/b", "value": 1}]"#,
    r#"[{"op": "add", "path": "/missing/b", "value": 1}]"#,
    r#"[{"op": "frob", "path": "/a"}]"#,
    r#"[{"op": "add", "path": "/new", "value": 1}, {"op": "remove", "path": "/gone"}]"#,
    r#"[]"#,
    r#"{"op": "add", "path": "/a", "value": 1}"#,
    r#"[{"op": "add", "path": "/~2", "value": 1}]"#,
];

const ORACLE: &str = r#"
import json, sys, jsonpatch
doc_text, patches = json.load(sys.stdin)
out = []
for patch in patches:
    try:
        out.append(json.dumps(jsonpatch.JsonPatch.from_string(patch).apply(json.loads(doc_text), in_place=False), separators=(",", ":")))
    except Exception as e:
        out.append(None)
print(json.dumps(out))
"#;

#[test]
fn patches_apply_as_python_jsonpatch_applies_them() {
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with jsonpatch (cloud-init's) is the oracle");
    let input = serde_json::to_string(&(DOCUMENT, PATCHES)).unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the oracle failed");
    let expected: Vec<Option<String>> = serde_json::from_slice(&output.stdout).unwrap();
    let document = egs_cloudconfig::yaml::load(DOCUMENT, 0).unwrap().unwrap();
    for (patch, python) in PATCHES.iter().zip(expected) {
        let ours = apply(&document, patch).ok().map(|n| to_json(&n));
        let normalize = |text: Option<String>| {
            text.map(|t| serde_json::from_str::<serde_json::Value>(&t).unwrap())
        };
        assert_eq!(normalize(ours), normalize(python), "{patch}");
    }
}
