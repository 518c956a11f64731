//! Errors that name the input and the key that is wrong.

use std::fmt;

use crate::value::Val;

/// A network-config that cannot be used, with the input it came from and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetConfigError {
    /// The input, as a person would name it (`network-config`, a file path, …).
    pub input: String,
    /// Where in the input: a key path such as `ethernets.eth0.addresses[1]`, or
    /// `line 3, column 5` for syntax errors; empty for the document as a whole.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl NetConfigError {
    /// An error at `place` in `input`.
    pub fn new(input: &str, place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            input: input.to_string(),
            place: place.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for NetConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.input, self.message)
        } else {
            write!(f, "{}: {}: {}", self.input, self.place, self.message)
        }
    }
}

impl std::error::Error for NetConfigError {}

/// A problem found while interpreting, before the input's name is known.
///
/// Interpretation works on values; the loader adds the input's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceError {
    /// Key path.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl PlaceError {
    /// An error at `place`.
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
        }
    }

    /// `expected <what>, got a <type>` at `place`, for a value of the wrong type.
    pub fn expected(place: impl Into<String>, what: &str, got: &Val) -> Self {
        Self::new(place, format!("expected {what}, got a {}", got.type_name()))
    }

    /// Names the input.
    pub fn in_input(self, input: &str) -> NetConfigError {
        NetConfigError::new(input, self.place, self.message)
    }
}

/// Appends a key to a key path (`a` + `b` → `a.b`).
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends a list index to a key path (`a` + 2 → `a[2]`).
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
