//! The cloud-config core of EGS: a YAML loader that reads documents exactly as PyYAML's
//! `safe_load` does (the loader cloud-init uses), cloud-init's merge strategies, and the
//! typed cloud-config model with validation.
//!
//! Pure: this crate does no I/O. Everything it returns carries the place it came from, so
//! errors name the line and column.

pub mod json;
pub mod json_patch;
pub mod merge;
pub mod schema;
pub mod value;
pub mod yaml;
