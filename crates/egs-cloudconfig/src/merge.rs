//! cloud-init's configuration mergers (`cloudinit/mergers`): how cloud-config parts are
//! folded together, directed by `merge_how` / `merge_type` and the `Merge-Type` header.
//!
//! A merge is a list of mergers such as `dict(no_replace,recurse_list)+list(append)+str()`.
//! Merging dispatches on the type of the *existing* value: mappings go to the `dict` merger,
//! lists to `list`, strings to `str`; any other existing value (or a type with no merger in
//! the list) is kept as it is. This module does no I/O.

use crate::value::{Mapping, Node, Value};

/// What a part's mergers are when it names none: each part replaces keys of the previous
/// ones, as if all parts were one YAML file (`cloudinit/handlers/cloud_config.py`).
pub const PART_DEFAULT: &str = "dict(replace)+list()+str()";

/// cloud-init's default for combining whole configurations (`mergemanydict`): the earlier
/// configuration wins, nested mappings are merged.
pub const CONFIG_DEFAULT: &str = "list()+dict()+str()";

/// A merge that cannot be carried out; cloud-init drops the part with a warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// A merger in `merge_how` is written wrongly.
    #[error("merger '{0}' is not in the form name(settings)")]
    BadSyntax(String),
    /// A merger name other than `dict`, `list` or `str`.
    #[error("unknown merger '{0}' (cloud-init has dict, list and str)")]
    UnknownMerger(String),
    /// The list form of `merge_how` is missing `name` or `settings`.
    #[error("merge_how entry {0} needs 'name' and 'settings'")]
    BadEntry(usize),
    /// Values that Python cannot combine (e.g. appending a number to a list).
    #[error("cannot merge {new} into {old}")]
    Incompatible {
        /// Type of the existing value.
        old: &'static str,
        /// Type of the incoming value.
        new: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DictMethod {
    Replace,
    NoReplace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMethod {
    Append,
    Prepend,
    Replace,
    NoReplace,
}

#[derive(Debug, Clone, PartialEq)]
enum Merger {
    Dict {
        method: DictMethod,
        recurse_str: bool,
        recurse_array: bool,
        allow_delete: bool,
    },
    List {
        method: ListMethod,
        recurse_str: bool,
        recurse_dict: bool,
        recurse_array: bool,
    },
    Str {
        append: bool,
    },
}

/// A parsed list of mergers, applied in the order cloud-init's `LookupMerger` tries them.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    mergers: Vec<Merger>,
}

impl Strategy {
    /// Parses the string form, e.g. `dict(no_replace,recurse_list)+list(append)`.
    pub fn parse(text: &str) -> Result<Strategy, MergeError> {
        let mut mergers = Vec::new();
        for raw in text.split('+') {
            let name = raw.trim().to_lowercase().replace('-', "_");
            if name.is_empty() {
                continue;
            }
            let (head, settings) = name
                .strip_suffix(')')
                .and_then(|s| s.split_once('('))
                .filter(|(head, _)| is_identifier(head))
                .ok_or_else(|| MergeError::BadSyntax(name.clone()))?;
            let settings: Vec<String> = settings
                .split(',')
                .map(|s| s.trim().to_lowercase())
                .filter(|s| !s.is_empty())
                .collect();
            mergers.push(Merger::new(head, &settings)?);
        }
        Ok(Strategy { mergers })
    }

    /// Parses the value of a `merge_how`/`merge_type` key: a string, or a list of
    /// `{name, settings}` mappings or `[name, setting…]` lists.
    pub fn from_node(node: &Node) -> Result<Strategy, MergeError> {
        let items = match &node.value {
            Value::Str(s) => return Strategy::parse(s),
            Value::Seq(items) => items,
            _ => return Err(MergeError::BadEntry(0)),
        };
        let mut mergers = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (name, settings): (String, Vec<String>) = match &item.value {
                Value::Map(m) => {
                    let name = m
                        .get("name")
                        .and_then(Node::as_str)
                        .ok_or(MergeError::BadEntry(i))?;
                    let settings = m.get("settings").ok_or(MergeError::BadEntry(i))?;
                    (
                        name.replace('-', "_").trim().to_string(),
                        setting_list(settings),
                    )
                }
                Value::Seq(parts) if !parts.is_empty() => (
                    parts[0]
                        .as_str()
                        .ok_or(MergeError::BadEntry(i))?
                        .to_string(),
                    parts[1..]
                        .iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect(),
                ),
                _ => return Err(MergeError::BadEntry(i)),
            };
            if !name.is_empty() {
                mergers.push(Merger::new(&name, &settings)?);
            }
        }
        Ok(Strategy { mergers })
    }

    /// Whether no merger is named (cloud-init then falls back to its default).
    pub fn is_empty(&self) -> bool {
        self.mergers.is_empty()
    }

    /// This strategy followed by another's mergers (a part's own `merge_how`, then its
    /// `Merge-Type` header).
    pub fn then(mut self, other: Strategy) -> Strategy {
        self.mergers.extend(other.mergers);
        self
    }

    /// Merges `incoming` into `existing` and returns the result.
    pub fn merge(&self, existing: &Node, incoming: &Node) -> Result<Node, MergeError> {
        let kind = match &existing.value {
            Value::Map(_) => Kind::Dict,
            Value::Seq(_) | Value::Pairs(_) => Kind::List,
            Value::Str(_) => Kind::Str,
            _ => return Ok(existing.clone()),
        };
        let Some(merger) = self.mergers.iter().find(|m| m.kind() == kind) else {
            return Ok(existing.clone());
        };
        merger.apply(self, existing, incoming)
    }
}

fn setting_list(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::Str(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dict,
    List,
    Str,
}

impl Merger {
    fn new(name: &str, settings: &[String]) -> Result<Merger, MergeError> {
        let has = |s: &str| settings.iter().any(|x| x == s);
        Ok(match name {
            "dict" => Merger::Dict {
                method: if has("replace") {
                    DictMethod::Replace
                } else {
                    DictMethod::NoReplace
                },
                recurse_str: has("recurse_str"),
                recurse_array: has("recurse_array") || has("recurse_list"),
                allow_delete: has("allow_delete"),
            },
            "list" => Merger::List {
                // cloud-init checks the methods in this order.
                method: if has("append") {
                    ListMethod::Append
                } else if has("prepend") {
                    ListMethod::Prepend
                } else if has("replace") {
                    ListMethod::Replace
                } else if has("no_replace") {
                    ListMethod::NoReplace
                } else {
                    ListMethod::Replace
                },
                recurse_str: has("recurse_str"),
                recurse_dict: has("recurse_dict"),
                recurse_array: has("recurse_array") || has("recurse_list"),
            },
            "str" => Merger::Str {
                append: has("append"),
            },
            other => return Err(MergeError::UnknownMerger(other.to_string())),
        })
    }

    fn kind(&self) -> Kind {
        match self {
            Merger::Dict { .. } => Kind::Dict,
            Merger::List { .. } => Kind::List,
            Merger::Str { .. } => Kind::Str,
        }
    }

    fn apply(&self, all: &Strategy, existing: &Node, incoming: &Node) -> Result<Node, MergeError> {
        let origin = existing.origin;
        match *self {
            Merger::Dict {
                method,
                recurse_str,
                recurse_array,
                allow_delete,
            } => {
                let (Value::Map(old), Value::Map(new)) = (&existing.value, &incoming.value) else {
                    return Ok(existing.clone());
                };
                let mut merged: Mapping = old.clone();
                for (id, key, value) in new.iter_with_ids() {
                    let Some(current) = merged.get_by_id(id) else {
                        let _ = merged.insert(key.clone(), value.clone());
                        continue;
                    };
                    if matches!(value.value, Value::Null) && allow_delete {
                        merged.remove_by_id(id);
                        continue;
                    }
                    let replacement = if method == DictMethod::Replace {
                        value.clone()
                    } else {
                        let recurse = match &value.value {
                            Value::Seq(_) | Value::Pairs(_) => recurse_array,
                            Value::Str(_) => recurse_str,
                            Value::Map(_) => true,
                            _ => false,
                        };
                        if recurse {
                            all.merge(current, value)?
                        } else {
                            current.clone()
                        }
                    };
                    if let Some(slot) = merged.get_mut_by_id(id) {
                        *slot = replacement;
                    }
                }
                Ok(Node::new(Value::Map(merged), origin))
            }
            Merger::List {
                method,
                recurse_str,
                recurse_dict,
                recurse_array,
            } => {
                let old = list_items(existing).expect("dispatched on a list");
                let new = match list_items(incoming) {
                    Some(items) => items,
                    None if method == ListMethod::Replace => return Ok(incoming.clone()),
                    None => extend_items(existing, incoming)?,
                };
                let merged = match method {
                    ListMethod::Append => old.into_iter().chain(new).collect(),
                    ListMethod::Prepend => new.into_iter().chain(old).collect(),
                    ListMethod::NoReplace => old,
                    ListMethod::Replace => {
                        let mut merged = old;
                        for (slot, new_item) in merged.iter_mut().zip(new.iter()) {
                            let recurse = match &new_item.value {
                                Value::Seq(_) | Value::Pairs(_) => recurse_array,
                                Value::Str(_) => recurse_str,
                                Value::Map(_) => recurse_dict,
                                _ => false,
                            };
                            *slot = if recurse {
                                all.merge(slot, new_item)?
                            } else {
                                new_item.clone()
                            };
                        }
                        merged
                    }
                };
                Ok(Node::new(Value::Seq(merged), origin))
            }
            Merger::Str { append } => {
                let (Value::Str(old), incoming_value) = (&existing.value, &incoming.value) else {
                    return Ok(incoming.clone());
                };
                if !append {
                    return Ok(incoming.clone());
                }
                match incoming_value {
                    Value::Str(new) => Ok(Node::new(Value::Str(format!("{old}{new}")), origin)),
                    other => Err(MergeError::Incompatible {
                        old: "string",
                        new: other.type_name(),
                    }),
                }
            }
        }
    }
}

/// Items of a list (a `!!pairs` list's entries become two-item lists).
fn list_items(node: &Node) -> Option<Vec<Node>> {
    match &node.value {
        Value::Seq(items) => Some(items.clone()),
        Value::Pairs(pairs) => Some(
            pairs
                .iter()
                .map(|(k, v)| Node::new(Value::Seq(vec![k.clone(), v.clone()]), k.origin))
                .collect(),
        ),
        _ => None,
    }
}

/// What Python's `list.extend(x)` takes from a non-list: a string's characters, a
/// mapping's keys, a set's members; anything else cannot be iterated.
fn extend_items(existing: &Node, incoming: &Node) -> Result<Vec<Node>, MergeError> {
    let origin = incoming.origin;
    match &incoming.value {
        Value::Str(s) => Ok(s
            .chars()
            .map(|c| Node::new(Value::Str(c.to_string()), origin))
            .collect()),
        Value::Map(m) => Ok(m.iter().map(|(k, _)| k.clone()).collect()),
        Value::Set(items) => Ok(items.clone()),
        other => Err(MergeError::Incompatible {
            old: existing.type_name(),
            new: other.type_name(),
        }),
    }
}

/// Takes a part's own merge directive out of it, as cloud-init does before merging:
/// `merge_how` if present, else `merge_type` (the other one stays in the config).
pub fn take_directive(config: &mut Node) -> Option<Node> {
    let Value::Map(map) = &mut config.value else {
        return None;
    };
    match map.remove("merge_how") {
        Some(Node {
            value: Value::Null, ..
        })
        | None => map
            .remove("merge_type")
            .filter(|n| !matches!(n.value, Value::Null)),
        Some(how) => Some(how),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_json;
    use crate::yaml::load;

    fn doc(text: &str) -> Node {
        load(text, 0).unwrap().unwrap()
    }

    fn merged(strategy: &str, a: &str, b: &str) -> String {
        let s = Strategy::parse(strategy).unwrap();
        to_json(&s.merge(&doc(a), &doc(b)).unwrap())
    }

    #[test]
    fn part_default_replaces_keys() {
        assert_eq!(
            merged(PART_DEFAULT, "{a: 1, l: [1, 2]}", "{a: 2, l: [3]}"),
            r#"{"a":2,"l":[3]}"#
        );
    }

    #[test]
    fn no_replace_keeps_first_and_recurse_list_appends() {
        assert_eq!(
            merged(
                "dict(no_replace,recurse_list)+list(append)",
                "{h: a, p: [1], n: {x: 1}}",
                "{h: b, p: [2], n: {y: 2}, z: 3}"
            ),
            r#"{"h":"a","p":[1,2],"n":{"x":1,"y":2},"z":3}"#
        );
    }

    #[test]
    fn list_replace_keeps_existing_length() {
        assert_eq!(
            merged(
                "dict(no_replace,recurse_list)+list()",
                "{l: [1, 2]}",
                "{l: [3, 4, 5]}"
            ),
            r#"{"l":[3,4]}"#
        );
    }

    #[test]
    fn str_append_and_allow_delete() {
        assert_eq!(
            merged(
                "dict(no_replace,recurse_str,allow_delete)+str(append)",
                "{s: ab, d: 1}",
                "{s: cd, d: null}"
            ),
            r#"{"s":"abcd"}"#
        );
    }

    #[test]
    fn list_form_and_errors() {
        let s = Strategy::from_node(&doc(
            "[{name: list, settings: [append]}, [dict, no_replace]]",
        ))
        .unwrap();
        assert_eq!(
            to_json(&s.merge(&doc("{a: [1]}"), &doc("{a: [2]}")).unwrap()),
            r#"{"a":[1]}"#
        );
        assert!(matches!(
            Strategy::parse("dict"),
            Err(MergeError::BadSyntax(_))
        ));
        assert!(matches!(
            Strategy::parse("tree()"),
            Err(MergeError::UnknownMerger(_))
        ));
        assert!(Strategy::parse("list(append)")
            .unwrap()
            .merge(&doc("[1]"), &doc("5"))
            .is_err());
    }

    #[test]
    fn directive_is_taken_out() {
        let mut d = doc("{merge_how: 'list(append)', merge_type: x, a: 1}");
        let how = take_directive(&mut d).unwrap();
        assert_eq!(how.as_str(), Some("list(append)"));
        assert_eq!(to_json(&d), r#"{"merge_type":"x","a":1}"#);
    }
}
