//! Network configuration: network-config v1 and v2 (and OpenStack `network_data.json`),
//! interpreted as cloud-init interprets them and rendered to netplan, systemd-networkd or
//! ifupdown (ENI) files that match cloud-init's own.
//!
//! ```text
//! bytes ──load──▶ NetworkConfig ──interpret──▶ NetworkState ──render──▶ [RenderedFile]
//!                 (v1 / v2 document)          (interfaces, routes, DNS)   (netplan | networkd | eni)
//! ```
//!
//! Everything up to [`render::render`] is pure. [`apply`] picks the renderer the system uses
//! and writes the files under a root directory; [`system`] reads the interfaces the system
//! has (names, MACs) behind one module so other platforms can be added.

#![warn(missing_docs)]

pub mod apply;
pub mod error;
pub mod ip;
pub mod names;
mod openstack;
pub mod render;
pub mod state;
pub mod system;
mod v2;
pub mod value;
pub mod windows;

pub use error::NetConfigError;
pub use render::{render, Fidelity, RenderedFile, Renderer};
pub use state::{MacNames, NetworkState};
pub use value::{Dict, Val};

use egs_cloudconfig::yaml;

use crate::error::PlaceError;
use crate::state::Interpreter;
use crate::value::DictExt;

/// Largest network-config accepted (cloud-init has no limit; real ones are a few KiB).
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 64;

/// The formats a network configuration is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// network-config v1 or v2 YAML (NoCloud `network-config`, KVP, netplan-style files).
    Yaml,
    /// OpenStack ConfigDrive `network_data.json`.
    NetworkDataJson,
}

impl InputKind {
    /// The name used on the command line (`yaml`, `network_data.json`).
    pub fn name(self) -> &'static str {
        match self {
            InputKind::Yaml => "yaml",
            InputKind::NetworkDataJson => "network_data.json",
        }
    }
}

impl std::str::FromStr for InputKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yaml" => Ok(InputKind::Yaml),
            "network_data.json" => Ok(InputKind::NetworkDataJson),
            other => Err(format!(
                "unknown input kind '{other}' (expected yaml or network_data.json)"
            )),
        }
    }
}

/// A loaded network configuration document.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Name of the input, for messages.
    pub input: String,
    /// 1 or 2 (0 when the document only says `config: disabled`).
    pub version: u8,
    /// The document, without a `network:` wrapper.
    pub document: Dict,
    /// Notes from loading (unknown link types, …).
    pub warnings: Vec<String>,
}

impl NetworkConfig {
    /// `config: disabled`: the user asked that networking be left alone.
    pub fn is_disabled(&self) -> bool {
        self.document.text("config") == Some("disabled")
    }

    /// cloud-init's fallback: DHCPv4 on one interface, matched by its MAC.
    pub fn fallback(name: &str, mac: &str) -> Self {
        let ethernet = value::dict([
            ("dhcp4", Val::Bool(true)),
            ("set-name", name.into()),
            (
                "match",
                Val::Map(value::dict([(
                    "macaddress",
                    mac.to_ascii_lowercase().into(),
                )])),
            ),
        ]);
        Self {
            input: "fallback network configuration".into(),
            version: 2,
            document: value::dict([
                (
                    "ethernets",
                    Val::Map(value::dict([(name, Val::Map(ethernet))])),
                ),
                ("version", Val::Int(2)),
            ]),
            warnings: Vec::new(),
        }
    }
}

/// Loads a network configuration; `Ok(None)` when the input is empty (no configuration).
///
/// `macs` names interfaces by MAC for `network_data.json` links without a name.
pub fn load(
    input: &str,
    bytes: &[u8],
    kind: InputKind,
    macs: &MacNames,
) -> Result<Option<NetworkConfig>, NetConfigError> {
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(NetConfigError::new(
            input,
            "",
            format!(
                "{} bytes, more than the limit of {MAX_INPUT_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        NetConfigError::new(input, format!("byte {}", e.valid_up_to()), "not UTF-8 text")
    })?;
    match kind {
        InputKind::Yaml => load_yaml(input, text),
        InputKind::NetworkDataJson => load_network_data(input, text, macs).map(Some),
    }
}

fn load_yaml(input: &str, text: &str) -> Result<Option<NetworkConfig>, NetConfigError> {
    let limits = yaml::Limits {
        max_bytes: MAX_INPUT_BYTES,
        max_depth: MAX_DEPTH,
        max_alias_expansion: 10_000,
        max_nodes: 100_000,
    };
    let node = yaml::load_with_limits(text, 0, &limits).map_err(|e| {
        NetConfigError::new(
            input,
            format!("line {}, column {}", e.line, e.column),
            e.message,
        )
    })?;
    let Some(node) = node else { return Ok(None) };
    let document = Val::from_node(&node);
    names::reject_control_characters(&document, "").map_err(|e| e.in_input(input))?;
    let mut document = match document {
        Val::Map(document) => document,
        other => return Err(PlaceError::expected("", "a mapping", &other).in_input(input)),
    };
    if document.contains_key("network") {
        document = match document.shift_remove("network") {
            Some(Val::Map(inner)) => inner,
            Some(Val::Null) => return Ok(None),
            Some(other) => {
                return Err(PlaceError::expected("network", "a mapping", &other).in_input(input))
            }
            None => unreachable!("checked above"),
        };
    }
    let mut config = NetworkConfig {
        input: input.to_string(),
        version: 0,
        document,
        warnings: Vec::new(),
    };
    if config.is_disabled() {
        return Ok(Some(config));
    }
    config.version = match config.document.get("version") {
        Some(Val::Int(1)) => 1,
        Some(Val::Int(2)) => 2,
        Some(other) => {
            return Err(NetConfigError::new(
                input,
                "version",
                format!("expected 1 or 2, got {}", other.py_repr()),
            ))
        }
        None => {
            return Err(NetConfigError::new(
                input,
                "version",
                "missing (expected 1 or 2)",
            ))
        }
    };
    if config.version == 1
        && config
            .document
            .get("config")
            .and_then(Val::as_list)
            .is_none()
    {
        return Err(NetConfigError::new(
            input,
            "config",
            "a version 1 document needs a list of commands under 'config'",
        ));
    }
    Ok(Some(config))
}

fn load_network_data(
    input: &str,
    text: &str,
    macs: &MacNames,
) -> Result<NetworkConfig, NetConfigError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        NetConfigError::new(
            input,
            format!("line {}, column {}", e.line(), e.column()),
            e.to_string(),
        )
    })?;
    let json = Val::from_json(&json);
    names::reject_control_characters(&json, "").map_err(|e| e.in_input(input))?;
    let mut warnings = Vec::new();
    let document = openstack::convert_network_data(&json, macs, &mut warnings)
        .map_err(|e| e.in_input(input))?;
    Ok(NetworkConfig {
        input: input.to_string(),
        version: 1,
        document,
        warnings,
    })
}

/// Interprets a loaded configuration for `renderer`.
///
/// netplan gets a v2 document as it is (cloud-init passes it through); every other
/// renderer gets v2 translated to the v1 model, exactly as cloud-init 22.4.2 does with
/// [`Fidelity::CloudInit`], keeping route metrics and prefixes with
/// [`Fidelity::Complete`]. `macs` gives v2 `match.macaddress` entries without `set-name`
/// the system's interface name.
pub fn interpret(
    config: &NetworkConfig,
    renderer: Renderer,
    fidelity: Fidelity,
    macs: &MacNames,
) -> Result<NetworkState, NetConfigError> {
    let mut interpreter = Interpreter::new(config.version, config.document.clone(), macs);
    interpreter.fidelity = fidelity;
    interpreter
        .state
        .warnings
        .extend(config.warnings.iter().cloned());
    let result = match config.version {
        2 if renderer == Renderer::Netplan => {
            // netplan reads the document itself; check what we understand of it so a
            // wrong address is reported here rather than by netplan at boot.
            interpreter.lenient = true;
            let checked = interpreter.run_v2(&config.document);
            let warnings = std::mem::take(&mut interpreter.state.warnings);
            interpreter = Interpreter::new(2, config.document.clone(), macs);
            interpreter.state.warnings = warnings;
            checked
        }
        2 => interpreter.run_v2(&config.document),
        1 => interpreter.run_v1(config.document.list("config"), "config"),
        _ => Err(PlaceError::new(
            "",
            "no network configuration (config: disabled)",
        )),
    };
    result.map_err(|e| e.in_input(&config.input))?;
    Ok(interpreter.state)
}

/// The result of [`convert`].
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The rendered files.
    pub files: Vec<RenderedFile>,
    /// What was skipped or guessed, for the log.
    pub warnings: Vec<String>,
}

/// Loads, interprets and renders in one step (what `net-convert` does); `Ok(None)` for
/// empty input.
pub fn convert(
    input: &str,
    bytes: &[u8],
    kind: InputKind,
    renderer: Renderer,
    fidelity: Fidelity,
    macs: &MacNames,
) -> Result<Option<Conversion>, NetConfigError> {
    let Some(config) = load(input, bytes, kind, macs)? else {
        return Ok(None);
    };
    let state = interpret(&config, renderer, fidelity, macs)?;
    Ok(Some(Conversion {
        files: render(&state, renderer, fidelity),
        warnings: state.warnings,
    }))
}
