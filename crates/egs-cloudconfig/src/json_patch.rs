//! JSON Patch (RFC 6902) on a cloud-config tree, as cloud-init applies a
//! `#cloud-config-jsonp` part: the text after the marker is JSON, a list of operations
//! (`add`, `remove`, `replace`, `move`, `copy`, `test`) applied in order to the
//! configuration merged so far, all or nothing (cloud-init's `jsonpatch.apply(…,
//! in_place=False)`). Paths are JSON Pointers (RFC 6901: `~1` is `/`, `~0` is `~`, `-`
//! appends to a list); mapping keys are strings, as after `json.loads`.
//!
//! Bounded: at most [`MAX_OPERATIONS`] operations, and `copy`/`add` may not grow the tree
//! beyond [`MAX_NODES`] values (a patch that copies the document into itself doubles it).
//! Pure.

use num_bigint::BigInt;

use crate::value::{Mapping, Node, Value};

/// Most operations in one patch.
pub const MAX_OPERATIONS: usize = 10_000;
/// Most values the patched configuration may hold.
pub const MAX_NODES: usize = 1_000_000;

/// Why a patch was not applied; `operation` is its 0-based index (`None`: the patch as a
/// whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", operation.map(|i| format!("operation {i}: ")).unwrap_or_default())]
pub struct PatchError {
    /// Index of the failing operation.
    pub operation: Option<usize>,
    /// What went wrong.
    pub message: String,
}

fn whole(message: impl Into<String>) -> PatchError {
    PatchError {
        operation: None,
        message: message.into(),
    }
}

/// Applies the JSON Patch `text` (without the `#cloud-config-jsonp` line) to `doc`;
/// returns the patched copy.
pub fn apply(doc: &Node, text: &str) -> Result<Node, PatchError> {
    let patch: serde_json::Value =
        serde_json::from_str(text).map_err(|e| whole(format!("not valid JSON: {e}")))?;
    let serde_json::Value::Array(operations) = patch else {
        return Err(whole("a JSON Patch is a list of operations"));
    };
    if operations.len() > MAX_OPERATIONS {
        return Err(whole(format!("more than {MAX_OPERATIONS} operations")));
    }
    let mut doc = doc.clone();
    let mut nodes = count(&doc);
    for (i, operation) in operations.iter().enumerate() {
        let fail = |message: String| PatchError {
            operation: Some(i),
            message,
        };
        apply_one(&mut doc, operation, &mut nodes).map_err(fail)?;
        if nodes > MAX_NODES {
            return Err(fail(format!(
                "the configuration would hold more than {MAX_NODES} values"
            )));
        }
    }
    Ok(doc)
}

fn apply_one(
    doc: &mut Node,
    operation: &serde_json::Value,
    nodes: &mut usize,
) -> Result<(), String> {
    let op = operation
        .as_object()
        .ok_or("an operation is a JSON object")?;
    let text = |key: &str| -> Result<&str, String> {
        op.get(key)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| format!("'{key}' is missing or not a string"))
    };
    let kind = text("op")?;
    let path = pointer(text("path")?)?;
    let value = || -> Result<Node, String> {
        op.get("value")
            .map(from_json)
            .ok_or_else(|| "'value' is missing".to_string())
    };
    match kind {
        "add" => {
            let value = value()?;
            *nodes += count(&value);
            add(doc, &path, value)
        }
        "remove" => remove(doc, &path).map(drop),
        "replace" => {
            let value = value()?;
            *nodes += count(&value);
            let target = resolve_mut(doc, &path)?;
            *target = value;
            Ok(())
        }
        "move" => {
            let from = pointer(text("from")?)?;
            if path.len() > from.len() && path[..from.len()] == from[..] {
                return Err("cannot move a value into itself".into());
            }
            let moved = remove(doc, &from)?;
            add(doc, &path, moved)
        }
        "copy" => {
            let from = pointer(text("from")?)?;
            let copied = resolve(doc, &from)?.clone();
            *nodes += count(&copied);
            add(doc, &path, copied)
        }
        "test" => {
            let expected = value()?;
            if *resolve(doc, &path)? == expected {
                Ok(())
            } else {
                Err(format!(
                    "test failed: {} is not the value given",
                    path_text(&path)
                ))
            }
        }
        other => Err(format!(
            "unknown op '{other}' (add, remove, replace, move, copy, test)"
        )),
    }
}

/// RFC 6901: `""` is the whole document, else `/`-separated tokens with `~1` and `~0`.
fn pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!("path '{text}' does not start with '/'"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(format!("path '{text}': '~' must be '~0' or '~1'")),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn path_text(path: &[String]) -> String {
    if path.is_empty() {
        return "the document".into();
    }
    path.iter()
        .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
        .collect()
}

/// A list index: digits. RFC 6901 forbids leading zeros, but python-jsonpointer (what
/// cloud-init uses) reads `01` as 1, so this does too.
fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    let valid = !token.is_empty() && token.chars().all(|c| c.is_ascii_digit());
    let i = if valid {
        token.parse::<usize>().ok()
    } else {
        None
    }
    .ok_or_else(|| format!("'{token}' is not a list index"))?;
    if i < len || (allow_end && i == len) {
        Ok(i)
    } else {
        Err(format!("index {i} is out of range (the list has {len})"))
    }
}

fn resolve<'a>(doc: &'a Node, path: &[String]) -> Result<&'a Node, String> {
    let mut node = doc;
    for (depth, token) in path.iter().enumerate() {
        node = match &node.value {
            Value::Map(map) => map.get(token),
            Value::Seq(items) => Some(&items[index(token, items.len(), false)?]),
            _ => None,
        }
        .ok_or_else(|| format!("{} does not exist", path_text(&path[..=depth])))?;
    }
    Ok(node)
}

fn resolve_mut<'a>(doc: &'a mut Node, path: &[String]) -> Result<&'a mut Node, String> {
    let mut node = doc;
    for (depth, token) in path.iter().enumerate() {
        let missing = || format!("{} does not exist", path_text(&path[..=depth]));
        node = match &mut node.value {
            Value::Map(map) => {
                let id = crate::value::KeyId::Str(token.clone());
                map.get_mut_by_id(&id).ok_or_else(missing)?
            }
            Value::Seq(items) => {
                let i = index(token, items.len(), false)?;
                &mut items[i]
            }
            _ => return Err(missing()),
        };
    }
    Ok(node)
}

fn add(doc: &mut Node, path: &[String], value: Node) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let parent = resolve_mut(doc, parent_path)?;
    match &mut parent.value {
        Value::Map(map) => {
            map.insert_str(last, value);
            Ok(())
        }
        Value::Seq(items) => {
            let i = if last == "-" {
                items.len()
            } else {
                index(last, items.len(), true)?
            };
            items.insert(i, value);
            Ok(())
        }
        _ => Err(format!(
            "{} is neither a mapping nor a list",
            path_text(parent_path)
        )),
    }
}

fn remove(doc: &mut Node, path: &[String]) -> Result<Node, String> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    let parent = resolve_mut(doc, parent_path)?;
    match &mut parent.value {
        Value::Map(map) => map
            .remove(last)
            .ok_or_else(|| format!("{} does not exist", path_text(path))),
        Value::Seq(items) => {
            let i = index(last, items.len(), false)?;
            Ok(items.remove(i))
        }
        _ => Err(format!("{} does not exist", path_text(path))),
    }
}

/// A JSON value as `json.loads` gives it to cloud-init: objects with string keys, lists,
/// integers of any size, floats, strings, booleans, null.
fn from_json(value: &serde_json::Value) -> Node {
    Node::detached(match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::BigInt(BigInt::from(u)),
            (_, _, Some(f)) => Value::Float(f),
            _ => Value::Null,
        },
        serde_json::Value::String(s) => Value::Str(s.clone()),
        serde_json::Value::Array(items) => Value::Seq(items.iter().map(from_json).collect()),
        serde_json::Value::Object(object) => {
            let mut map = Mapping::new();
            for (key, item) in object {
                map.insert_str(key, from_json(item));
            }
            Value::Map(map)
        }
    })
}

/// Values in a tree (each node once).
fn count(node: &Node) -> usize {
    1 + match &node.value {
        Value::Seq(items) | Value::Set(items) => items.iter().map(count).sum(),
        Value::Map(map) => map.iter().map(|(k, v)| count(k) + count(v)).sum(),
        Value::Pairs(pairs) => pairs.iter().map(|(k, v)| count(k) + count(v)).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_json;

    fn doc(yaml: &str) -> Node {
        crate::yaml::load(yaml, 0).unwrap().unwrap()
    }

    fn patched(yaml: &str, patch: &str) -> Result<String, PatchError> {
        apply(&doc(yaml), patch).map(|n| to_json(&n))
    }

    #[test]
    fn the_issues_examples() {
        assert_eq!(
            patched("{}", r#"[{"op": "add", "path": "/baz", "value": "qux"}]"#).unwrap(),
            r#"{"baz":"qux"}"#
        );
        assert_eq!(
            patched("a: b\nc: d\n", r#"[{"op":"remove","path":"/c"}]"#).unwrap(),
            r#"{"a":"b"}"#
        );
    }

    #[test]
    fn every_operation_as_rfc_6902_defines_it() {
        let base = "runcmd: [one, two]\nusers: [{name: a}]\n'x/y': 1\n'm~n': 2\n";
        let ok = |patch: &str| patched(base, patch).unwrap();
        assert_eq!(
            ok(
                r#"[{"op":"add","path":"/runcmd/-","value":"three"},{"op":"add","path":"/runcmd/0","value":"zero"}]"#
            ),
            r#"{"runcmd":["zero","one","two","three"],"users":[{"name":"a"}],"x/y":1,"m~n":2}"#
        );
        assert_eq!(
            ok(r#"[{"op":"replace","path":"/x~1y","value":10},{"op":"remove","path":"/m~0n"}]"#),
            r#"{"runcmd":["one","two"],"users":[{"name":"a"}],"x/y":10}"#
        );
        assert_eq!(
            ok(
                r#"[{"op":"move","from":"/runcmd/1","path":"/users/0/shell"},{"op":"copy","from":"/users/0","path":"/users/-"}]"#
            ),
            r#"{"runcmd":["one"],"users":[{"name":"a","shell":"two"},{"name":"a","shell":"two"}],"x/y":1,"m~n":2}"#
        );
        assert_eq!(
            ok(
                r#"[{"op":"test","path":"/users/0/name","value":"a"},{"op":"add","path":"","value":{"new":true}}]"#
            ),
            r#"{"new":true}"#
        );
    }

    #[test]
    fn a_failing_operation_changes_nothing_and_says_which() {
        let base = "a: [1]\n";
        for (patch, message) in [
            (
                r#"[{"op":"add","path":"/b","value":1},{"op":"remove","path":"/c"}]"#,
                "operation 1: /c does not exist",
            ),
            (
                r#"[{"op":"replace","path":"/zz","value":1}]"#,
                "operation 0: /zz does not exist",
            ),
            (
                r#"[{"op":"add","path":"/a/2","value":1}]"#,
                "operation 0: index 2 is out of range (the list has 1)",
            ),
            (
                r#"[{"op":"add","path":"/a/x","value":1}]"#,
                "operation 0: 'x' is not a list index",
            ),
            (
                r#"[{"op":"test","path":"/a/0","value":2}]"#,
                "operation 0: test failed: /a/0 is not the value given",
            ),
            (
                r#"[{"op":"move","from":"/a","path":"/a/0"}]"#,
                "operation 0: cannot move a value into itself",
            ),
            (
                r#"[{"op":"frob","path":"/a"}]"#,
                "operation 0: unknown op 'frob'",
            ),
            (
                r#"[{"op":"add","path":"a","value":1}]"#,
                "operation 0: path 'a' does not start with '/'",
            ),
            (
                r#"[{"op":"add","path":"/~2","value":1}]"#,
                "'~' must be '~0' or '~1'",
            ),
            (
                r#"[{"op":"add","path":"/b"}]"#,
                "operation 0: 'value' is missing",
            ),
            (r#"{"op":"add"}"#, "a JSON Patch is a list of operations"),
            ("[", "not valid JSON"),
        ] {
            let e = patched(base, patch).unwrap_err().to_string();
            assert!(e.contains(message), "{patch}: {e}");
        }
    }

    #[test]
    fn a_patch_cannot_blow_the_configuration_up() {
        let doubling = r#"{"op":"copy","from":"","path":"/a/-"}"#;
        let patch = format!("[{}]", vec![doubling; 40].join(","));
        let e = patched("a: []\n", &patch).unwrap_err();
        assert!(e.message.contains("more than"), "{e}");
    }
}
