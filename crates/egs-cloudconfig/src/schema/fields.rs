//! Reading typed fields out of a loaded mapping while recording, with path and position,
//! every problem found and every key nobody asked for.

use crate::value::{Mapping, Node, Origin, Value};

/// How serious a finding is: errors make `validate` reject the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Informational: the configuration still works.
    Warning,
    /// The configuration is rejected.
    Error,
}

/// One finding about a configuration: where (`users[0].name`, line and column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Path in the merged configuration, e.g. `write_files[2].permissions` (empty for the root).
    pub path: String,
    /// Where the offending value was read, when it came from a document.
    pub origin: Option<Origin>,
    /// What is wrong, for people.
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: ")?;
        if !self.path.is_empty() {
            write!(f, "{}", self.path)?;
        }
        if let Some(o) = self.origin.filter(|o| o.line > 0) {
            write!(f, " (line {}, column {})", o.line, o.column)?;
        }
        if !self.path.is_empty() || self.origin.is_some_and(|o| o.line > 0) {
            write!(f, ": ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Collected findings.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    /// In the order found.
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records an error at `path`, positioned at `node`.
    pub fn error(&mut self, path: &str, node: Option<&Node>, message: impl Into<String>) {
        self.push(Severity::Error, path, node, message);
    }

    /// Records a warning at `path`, positioned at `node`.
    pub fn warning(&mut self, path: &str, node: Option<&Node>, message: impl Into<String>) {
        self.push(Severity::Warning, path, node, message);
    }

    fn push(
        &mut self,
        severity: Severity,
        path: &str,
        node: Option<&Node>,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            path: path.to_string(),
            origin: node.map(|n| n.origin).filter(|o| o.line > 0),
            message: message.into(),
        });
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }
}

/// Joins a child key onto a path (`users[0]` + `name` → `users[0].name`).
pub(crate) fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A short quote of a scalar for messages.
pub(crate) fn describe(node: &Node) -> String {
    match &node.value {
        Value::Str(s) if s.chars().count() > 40 => {
            format!("string '{}…'", s.chars().take(40).collect::<String>())
        }
        Value::Str(s) => format!("string '{s}'"),
        Value::Int(i) => format!("integer {i}"),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Float(f) => format!("float {f}"),
        other => other.type_name().to_string(),
    }
}

/// Python's `str()` of a scalar, which cloud-init applies to argv items and names.
pub(crate) fn python_str(node: &Node) -> Option<String> {
    node.python_str()
}

/// Reads the fields of one mapping; keys not read are reported by [`Fields::finish`].
pub(crate) struct Fields<'a> {
    pub map: &'a Mapping,
    pub path: String,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Mapping, path: impl Into<String>) -> Self {
        Self {
            map,
            path: path.into(),
            read: Vec::new(),
        }
    }

    /// The node under `key`, marking the key as known. `null` counts as absent.
    pub fn get(&mut self, key: &'static str) -> Option<&'a Node> {
        self.read.push(key);
        self.map
            .get(key)
            .filter(|n| !matches!(n.value, Value::Null))
    }

    /// Marks keys as known without reading them.
    pub fn accept(&mut self, keys: &[&'static str]) {
        self.read.extend_from_slice(keys);
    }

    pub fn path_of(&self, key: &str) -> String {
        child(&self.path, key)
    }

    pub fn string(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<String> {
        self.read_text(key, false, d)
    }

    /// A string, also accepting numbers (converted as Python's `str()` would).
    pub fn text(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<String> {
        self.read_text(key, true, d)
    }

    fn read_text(
        &mut self,
        key: &'static str,
        numbers: bool,
        d: &mut Diagnostics,
    ) -> Option<String> {
        let node = self.get(key)?;
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::BigInt(_) | Value::Float(_) if numbers => python_str(node),
            _ => {
                d.error(
                    &self.path_of(key),
                    Some(node),
                    format!("expected a string, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A boolean. cloud-init's schema wants a YAML boolean (anything else is an error
    /// here too), but its modules read the value with `translate_bool`, so that is the
    /// value used: `"false"` is false, `"yes"` true, `0` false.
    pub fn boolean(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<bool> {
        let node = self.get(key)?;
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                let read = node.translate_bool();
                d.error(
                    &self.path_of(key),
                    Some(node),
                    format!(
                        "expected a boolean (true/false, yes/no, on/off), found {}; \
                         cloud-init reads it as {read}",
                        describe(node)
                    ),
                );
                Some(read)
            }
        }
    }

    pub fn integer(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<i64> {
        let node = self.get(key)?;
        match &node.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) if s.trim().parse::<i64>().is_ok() => s.trim().parse().ok(),
            _ => {
                d.error(
                    &self.path_of(key),
                    Some(node),
                    format!("expected an integer, found {}", describe(node)),
                );
                None
            }
        }
    }

    /// A list of strings; a single string is a one-item list (cloud-init's shorthand).
    pub fn string_list(&mut self, key: &'static str, d: &mut Diagnostics) -> Option<Vec<String>> {
        let node = self.get(key)?;
        let path = self.path_of(key);
        Some(string_list(node, &path, d))
    }

    /// Reports every key that no reader asked for.
    pub fn finish(self, d: &mut Diagnostics, what: &str) {
        for (key, value) in self.map.iter() {
            let known = key.as_str().is_some_and(|k| self.read.contains(&k));
            if !known {
                let name = python_str(key).unwrap_or_else(|| key.type_name().to_string());
                d.warning(
                    &child(&self.path, &name),
                    Some(key).filter(|k| k.origin.line > 0).or(Some(value)),
                    format!("unknown key in {what} (kept, ignored)"),
                );
            }
        }
    }
}

/// A list of strings from a string (one item) or a list of strings.
pub(crate) fn string_list(node: &Node, path: &str, d: &mut Diagnostics) -> Vec<String> {
    match &node.value {
        Value::Str(s) => vec![s.clone()],
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match &item.value {
                Value::Str(s) => Some(s.clone()),
                _ => {
                    d.error(
                        &format!("{path}[{i}]"),
                        Some(item),
                        format!("expected a string, found {}", describe(item)),
                    );
                    None
                }
            })
            .collect(),
        _ => {
            d.error(
                path,
                Some(node),
                format!(
                    "expected a string or a list of strings, found {}",
                    describe(node)
                ),
            );
            Vec::new()
        }
    }
}
