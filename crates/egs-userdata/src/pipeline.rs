//! From user-data bytes to parts and a merged cloud-config, as cloud-init's
//! `UserDataProcessor` and cloud-config part handler do it.
//!
//! 1. gzip is undone (bounded); data with a `MIME-Version:` header in its first 4 KiB (or
//!    starting with `Content-Type:`) is parsed as MIME, anything else is one part.
//! 2. Every leaf part is transfer-decoded; gzip-typed parts are decompressed; parts typed
//!    `text/plain`, `text/x-shellscript` or untyped are re-typed from their first line.
//! 3. `#include` parts are fetched and processed in place; `#cloud-config-archive` parts
//!    are exploded; every other part is kept, named `part-NNN` when it has no filename.
//! 4. `text/cloud-config` parts are loaded (PyYAML rules) and merged in order, each by its
//!    own `merge_how`/`merge_type` or `Merge-Type` header, else by replacing keys.
//!
//! Like cloud-init (since 20.3), a failed include or a broken gzip part fails the whole
//! user-data; a bad cloud-config part is reported and left out, the others still apply.

use egs_cloudconfig::merge::{self, Strategy};
use egs_cloudconfig::schema::{Diagnostic, Diagnostics, Severity};
use egs_cloudconfig::value::{Mapping, Node, Origin, Value};
use egs_cloudconfig::yaml;
use sha2::{Digest, Sha256};

use crate::fetch::{FetchError, Fetcher};
use crate::gzip::{gunzip, is_gzip};
use crate::mime::{self, Message, MimeError, MimeLimits};
use crate::sniff::type_from_starts_with;

/// Content types cloud-init decompresses before looking inside.
const GZIP_TYPES: &[&str] = &[
    "application/gzip",
    "application/gzip-compressed",
    "application/gzipped",
    "application/x-compress",
    "application/x-compressed",
    "application/x-gunzip",
    "application/x-gzip",
    "application/x-gzip-compressed",
];

/// Bounds on what user-data may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest user-data accepted, before decompression.
    pub max_input: usize,
    /// Largest output of any one decompression.
    pub max_decompressed: usize,
    /// Deepest `#include` chain.
    pub max_include_depth: usize,
    /// MIME bounds.
    pub mime: MimeLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input: 16 * 1024 * 1024,
            max_decompressed: 16 * 1024 * 1024,
            max_include_depth: 10,
            mime: MimeLimits::default(),
        }
    }
}

/// User-data that cannot be processed at all; names the input and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{input}: {kind}")]
pub struct UserDataError {
    /// Which input: `user-data`, `user-data part 2 (x.gz)`, an include URL …
    pub input: String,
    /// What went wrong.
    pub kind: ErrorKind,
}

/// What went wrong with user-data.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Larger than allowed.
    #[error("{size} bytes is more than the limit of {limit} bytes")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Broken or oversized gzip data.
    #[error("{0}")]
    Gzip(String),
    /// A MIME bound was exceeded.
    #[error(transparent)]
    Mime(#[from] MimeError),
    /// An `#include` URL could not be fetched.
    #[error("cannot include {0}")]
    Include(#[source] FetchError),
    /// An `#include` chain came back to a URL it is already processing.
    #[error("include loop: '{0}' includes itself")]
    IncludeLoop(String),
    /// `#include` chains deeper than allowed.
    #[error("includes are nested deeper than {0} levels")]
    IncludeTooDeep(usize),
}

/// How often a user-data script runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptFrequency {
    /// Once per instance (`text/x-shellscript`, cloud-init's scripts_user).
    Instance,
    /// Every boot (`text/x-shellscript-per-boot`).
    Boot,
    /// Once per instance, explicitly (`text/x-shellscript-per-instance`).
    PerInstance,
    /// Once ever (`text/x-shellscript-per-once`).
    Once,
}

/// What a part is, judged by its content type as cloud-init's handlers judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// `text/cloud-config`.
    CloudConfig,
    /// A script.
    Script(ScriptFrequency),
    /// `text/cloud-boothook`.
    Boothook,
    /// `text/cloud-config-jsonp`: a JSON Patch for the configuration merged so far.
    JsonPatch,
    /// `text/part-handler` (recognised, never run).
    PartHandler,
    /// `text/jinja2` (`## template: jinja`, recognised, not supported).
    Jinja,
    /// Anything else; cloud-init ignores it with a warning.
    Unknown,
}

impl PartKind {
    /// The name used in `validate --json`.
    pub fn name(self) -> &'static str {
        match self {
            PartKind::CloudConfig => "cloud-config",
            PartKind::Script(_) => "script",
            PartKind::Boothook => "boothook",
            PartKind::JsonPatch => "cloud-config-jsonp",
            PartKind::PartHandler => "part-handler",
            PartKind::Jinja => "jinja-template",
            PartKind::Unknown => "unknown",
        }
    }
}

/// One part of processed user-data, as cloud-init's handlers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Content type after re-typing, e.g. `text/cloud-config`.
    pub content_type: String,
    /// The part's filename, or `part-NNN`.
    pub filename: String,
    /// Headers as cloud-init leaves them.
    pub headers: Vec<(String, String)>,
    /// The decoded (and decompressed) payload.
    pub payload: Vec<u8>,
    /// `Launch-Index`, if given.
    pub launch_index: Option<i64>,
    /// `user-data` or `vendor-data`.
    pub origin: &'static str,
}

impl Part {
    /// What the part is.
    pub fn kind(&self) -> PartKind {
        match self.content_type.as_str() {
            "text/cloud-config" => PartKind::CloudConfig,
            "text/x-shellscript" => PartKind::Script(ScriptFrequency::Instance),
            "text/x-shellscript-per-boot" => PartKind::Script(ScriptFrequency::Boot),
            "text/x-shellscript-per-instance" => PartKind::Script(ScriptFrequency::PerInstance),
            "text/x-shellscript-per-once" => PartKind::Script(ScriptFrequency::Once),
            "text/cloud-boothook" => PartKind::Boothook,
            "text/cloud-config-jsonp" => PartKind::JsonPatch,
            "text/part-handler" => PartKind::PartHandler,
            "text/jinja2" => PartKind::Jinja,
            _ => PartKind::Unknown,
        }
    }

    /// Lower-case hex SHA-256 of the payload.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.payload))
    }

    /// How messages name this part, e.g. `user-data part 2 (script.sh)`.
    pub fn label(&self, index: usize) -> String {
        format!("{} part {} ({})", self.origin, index + 1, self.filename)
    }
}

/// Processed user-data (and vendor-data): the parts, the merged cloud-config, and what was
/// found along the way.
#[derive(Debug, Clone)]
pub struct UserData {
    /// Every part, user-data first, then vendor-data.
    pub parts: Vec<Part>,
    /// The merged cloud-config (a mapping; empty when there was none).
    pub config: Node,
    /// Filenames of the cloud-config parts that were merged, in order.
    pub merged_from: Vec<String>,
    /// URLs fetched for `#include`.
    pub includes: Vec<String>,
    /// Problems and notes; a node's `origin.source` is an index into [`UserData::parts`].
    pub diagnostics: Diagnostics,
}

impl UserData {
    /// Whether any error was found.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.has_errors()
    }

    /// The label of the part a diagnostic's origin points into.
    pub fn source_label(&self, origin: &Origin) -> Option<String> {
        self.parts
            .get(origin.source as usize)
            .map(|p| p.label(origin.source as usize))
    }

    /// A diagnostic for people, naming the part and position:
    /// `user-data part 1 (part-001), line 2, column 11: hostname: …` (no severity).
    pub fn describe(&self, d: &egs_cloudconfig::schema::Diagnostic) -> String {
        let at = d.origin;
        describe_finding(
            at.and_then(|o| self.source_label(&o)).as_deref(),
            at.map(|o| o.line).filter(|&l| l > 0),
            at.map(|o| o.column).filter(|&c| c > 0),
            &d.path,
            &d.message,
        )
    }
}

/// The one way findings are written for people: where (part, line, column), the config
/// path, the message.
pub fn describe_finding(
    source: Option<&str>,
    line: Option<u32>,
    column: Option<u32>,
    path: &str,
    message: &str,
) -> String {
    let mut place = source.unwrap_or("user-data").to_string();
    if let (Some(line), Some(column)) = (line, column) {
        place.push_str(&format!(", line {line}, column {column}"));
    }
    if path.is_empty() {
        format!("{place}: {message}")
    } else {
        format!("{place}: {path}: {message}")
    }
}

/// Processes user-data and optional vendor-data, then merges vendor-data's configuration
/// under user-data's as cloud-init does (user-data wins, nested mappings merge) unless
/// user-data says `vendor_data: {enabled: false}`.
pub fn process(
    user_data: &[u8],
    vendor_data: Option<&[u8]>,
    fetcher: &dyn Fetcher,
    limits: &Limits,
) -> Result<UserData, UserDataError> {
    let mut walk = Walk::new(fetcher, limits, "user-data");
    walk.blob(user_data, "user-data", 0)?;
    let user_parts = walk.parts.len();
    let mut result = walk.finish(0);
    let Some(vendor_data) = vendor_data else {
        return Ok(result);
    };
    let mut walk = Walk::new(fetcher, limits, "vendor-data");
    walk.blob(vendor_data, "vendor-data", 0)?;
    let vendor = walk.finish(user_parts);
    result.parts.extend(vendor.parts);
    result.includes.extend(vendor.includes);
    result.diagnostics.items.extend(vendor.diagnostics.items);
    // cloud-init (stages.py): `vendor_data` that is not a mapping disables vendor-data;
    // `enabled` (default true) is read with is_true, so "false", "no", 0 and null are off.
    let enabled = match result.config.as_map().and_then(|m| m.get("vendor_data")) {
        None => true,
        Some(settings) => settings
            .as_map()
            .is_some_and(|m| m.get("enabled").is_none_or(Node::is_true)),
    };
    if !enabled {
        result.diagnostics.items.push(note(
            Severity::Warning,
            None,
            "vendor-data is disabled by user-data (vendor_data is not a mapping, or its \
             'enabled' is not true)",
        ));
        return Ok(result);
    }
    let strategy = Strategy::parse(merge::CONFIG_DEFAULT).expect("built-in strategy parses");
    let empty = Node::detached(Value::Map(Mapping::new()));
    let combined = strategy
        .merge(&empty, &result.config)
        .and_then(|c| strategy.merge(&c, &vendor.config))
        .expect("mapping merges with the default strategy cannot fail");
    result.config = combined;
    result.merged_from.extend(vendor.merged_from);
    Ok(result)
}

fn note(severity: Severity, origin: Option<Origin>, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity,
        path: String::new(),
        origin,
        message: message.into(),
    }
}

struct Walk<'a> {
    fetcher: &'a dyn Fetcher,
    limits: &'a Limits,
    origin: &'static str,
    parts: Vec<Part>,
    includes: Vec<String>,
    include_chain: Vec<String>,
    diagnostics: Diagnostics,
}

impl<'a> Walk<'a> {
    fn new(fetcher: &'a dyn Fetcher, limits: &'a Limits, origin: &'static str) -> Self {
        Self {
            fetcher,
            limits,
            origin,
            parts: Vec::new(),
            includes: Vec::new(),
            include_chain: Vec::new(),
            diagnostics: Diagnostics::default(),
        }
    }

    fn error(input: &str, kind: ErrorKind) -> UserDataError {
        UserDataError {
            input: input.to_string(),
            kind,
        }
    }

    /// cloud-init's `convert_string` + `_process_msg`.
    fn blob(&mut self, data: &[u8], input: &str, depth: usize) -> Result<(), UserDataError> {
        if data.len() > self.limits.max_input {
            return Err(Self::error(
                input,
                ErrorKind::TooLarge {
                    size: data.len(),
                    limit: self.limits.max_input,
                },
            ));
        }
        let decompressed;
        let data = if is_gzip(data) {
            decompressed = gunzip(data, self.limits.max_decompressed)
                .map_err(|e| Self::error(input, ErrorKind::Gzip(e)))?;
            &decompressed[..]
        } else {
            data
        };
        let message = if looks_like_mime(data) {
            mime::parse(data, &self.limits.mime).map_err(|e| Self::error(input, e.into()))?
        } else {
            Message::leaf(
                vec![
                    ("Content-Type".into(), "text/x-not-multipart".into()),
                    ("MIME-Version".into(), "1.0".into()),
                ],
                data.to_vec(),
            )
        };
        let leaves: Vec<Message> = message.leaves().into_iter().cloned().collect();
        if leaves.is_empty() {
            self.diagnostics.items.push(note(
                Severity::Warning,
                None,
                format!("{input}: multipart message has no parts"),
            ));
        }
        for leaf in leaves {
            self.part(leaf, input, depth)?;
        }
        Ok(())
    }

    fn part(&mut self, mut part: Message, input: &str, depth: usize) -> Result<(), UserDataError> {
        let mut ctype_orig = part.content_type();
        let mut payload = part.decoded_payload();
        if GZIP_TYPES.contains(&ctype_orig.as_str()) {
            let label = format!(
                "{input} part {} ({})",
                self.parts.len() + 1,
                part.filename().unwrap_or_default()
            );
            payload = gunzip(&payload, self.limits.max_decompressed)
                .map_err(|e| Self::error(&label, ErrorKind::Gzip(e)))?;
            ctype_orig = "text/plain".into();
            let mut headers = vec![
                ("Content-Type".to_string(), ctype_orig.clone()),
                ("MIME-Version".to_string(), "1.0".to_string()),
            ];
            if let Some(name) = part.filename() {
                headers.push((
                    "Content-Disposition".into(),
                    format!("attachment; filename=\"{name}\""),
                ));
            }
            if let Some(index) = part.header("launch-index") {
                headers.push(("Launch-Index".into(), index.to_string()));
            }
            part = Message::leaf(headers, payload.clone());
        }
        let ctype = match ctype_orig.as_str() {
            "text/plain" | "text/x-not-multipart" | "text/x-shellscript" => {
                type_from_starts_with(&payload)
                    .map(str::to_string)
                    .unwrap_or(ctype_orig.clone())
            }
            _ => ctype_orig.clone(),
        };
        if ctype != ctype_orig {
            part.replace_header("Content-Type", ctype.clone());
        }
        match ctype.as_str() {
            "text/x-include-url" | "text/x-include-once-url" => self.include(&payload, depth),
            "text/cloud-config-archive" => {
                self.archive(&payload, input);
                Ok(())
            }
            _ => {
                self.attach(part, ctype, payload);
                Ok(())
            }
        }
    }

    /// cloud-init's `_attach_part`: unnamed parts become `part-NNN`.
    fn attach(&mut self, mut part: Message, content_type: String, payload: Vec<u8>) {
        let filename = match part.filename() {
            Some(name) => name,
            None => {
                let name = format!("part-{:03}", self.parts.len() + 1);
                part.replace_header(
                    "Content-Disposition",
                    format!("attachment; filename=\"{name}\""),
                );
                name
            }
        };
        let launch_index = part
            .header("launch-index")
            .and_then(|v| v.trim().parse().ok());
        self.parts.push(Part {
            content_type,
            filename,
            headers: part.headers,
            payload,
            launch_index,
            origin: self.origin,
        });
    }

    /// cloud-init's `_do_include`: one URL per line, `#include`/`#include-once` markers
    /// anywhere, other `#` lines are comments; every URL must be fetched.
    fn include(&mut self, content: &[u8], depth: usize) -> Result<(), UserDataError> {
        if depth >= self.limits.max_include_depth {
            return Err(Self::error(
                "#include",
                ErrorKind::IncludeTooDeep(self.limits.max_include_depth),
            ));
        }
        let text = String::from_utf8_lossy(content);
        let mut once = false;
        for raw in text.lines() {
            let mut line = raw;
            if line
                .get(..13)
                .is_some_and(|p| p.eq_ignore_ascii_case("#include-once"))
            {
                line = line[13..].trim_start();
                once = true;
            } else if line
                .get(..8)
                .is_some_and(|p| p.eq_ignore_ascii_case("#include"))
            {
                line = line[8..].trim_start();
                once = false;
            }
            if line.starts_with('#') {
                continue;
            }
            let url = line.trim();
            if url.is_empty() {
                continue;
            }
            if self.include_chain.iter().any(|u| u == url) {
                return Err(Self::error(url, ErrorKind::IncludeLoop(url.to_string())));
            }
            self.includes.push(url.to_string());
            let data = self
                .fetcher
                .fetch(url, once)
                .map_err(|e| Self::error("#include", ErrorKind::Include(e)))?;
            self.include_chain.push(url.to_string());
            let result = self.blob(&data, url, depth + 1);
            self.include_chain.pop();
            result?;
        }
        Ok(())
    }

    /// cloud-init's `_explode_archive`: a YAML list of strings or
    /// `{content, type, filename, launch-index, <header>: …}` entries.
    fn archive(&mut self, payload: &[u8], input: &str) {
        let text = String::from_utf8_lossy(payload);
        let entries = match yaml::load(&text, 0) {
            Ok(Some(Node {
                value: Value::Seq(items),
                ..
            })) => items,
            Ok(_) => Vec::new(),
            Err(e) => {
                self.diagnostics.items.push(note(
                    Severity::Error,
                    None,
                    format!("{input}: cloud-config-archive is not valid YAML: {e}"),
                ));
                return;
            }
        };
        for entry in entries {
            let (content, fields): (Vec<u8>, Option<Mapping>) = match entry.value {
                Value::Str(s) => (s.into_bytes(), None),
                Value::Map(m) => {
                    let content = match m.get("content").map(|n| &n.value) {
                        Some(Value::Str(s)) => s.clone().into_bytes(),
                        Some(Value::Bytes(b)) => b.clone(),
                        _ => Vec::new(),
                    };
                    (content, Some(m))
                }
                _ => continue,
            };
            let get = |k: &str| {
                fields
                    .as_ref()
                    .and_then(|m| m.get(k))
                    .and_then(Node::python_str)
            };
            let binary = fields
                .as_ref()
                .and_then(|m| m.get("content"))
                .is_some_and(|n| matches!(n.value, Value::Bytes(_)));
            let ctype = get("type").filter(|t| !t.is_empty()).unwrap_or_else(|| {
                let default = if binary {
                    "application/octet-stream"
                } else {
                    "text/cloud-config"
                };
                type_from_starts_with(&content)
                    .unwrap_or(default)
                    .to_string()
            });
            let mut headers = vec![
                ("Content-Type".to_string(), ctype.clone()),
                ("MIME-Version".to_string(), "1.0".to_string()),
            ];
            if let Some(name) = get("filename") {
                headers.push((
                    "Content-Disposition".into(),
                    format!("attachment; filename=\"{name}\""),
                ));
            }
            if let Some(index) = get("launch-index") {
                headers.push(("Launch-Index".into(), index));
            }
            if let Some(m) = &fields {
                for (k, v) in m.iter() {
                    let Some(name) = k.as_str() else { continue };
                    let skip = [
                        "content",
                        "filename",
                        "type",
                        "launch-index",
                        "content-disposition",
                        "number-attachments",
                        "content-type",
                    ];
                    if !skip.contains(&name.to_ascii_lowercase().as_str()) {
                        if let Some(value) = v.python_str() {
                            headers.push((name.to_string(), value));
                        }
                    }
                }
            }
            self.attach(Message::leaf(headers, content.clone()), ctype, content);
        }
    }

    /// The cloud-config part handler: load and merge every `text/cloud-config` part, and
    /// apply every `text/cloud-config-jsonp` part, in order.
    fn finish(mut self, source_offset: usize) -> UserData {
        let mut config = Node::detached(Value::Map(Mapping::new()));
        let mut merged_from = Vec::new();
        let default = Strategy::parse(merge::PART_DEFAULT).expect("built-in strategy parses");
        for (index, part) in self.parts.iter().enumerate() {
            let source = (source_offset + index) as u32;
            let at = Some(Origin::new(source, 0, 0));
            let kind = part.kind();
            let ignored = match kind {
                PartKind::CloudConfig => None,
                PartKind::Script(_) | PartKind::Boothook => continue,
                PartKind::JsonPatch => {
                    let merged = (&mut config, &mut merged_from);
                    apply_json_patch(part, merged, at, &mut self.diagnostics);
                    continue;
                }
                PartKind::PartHandler => Some("custom part handlers are never run by EGS; part ignored".to_string()),
                PartKind::Jinja => Some("Jinja templates (## template: jinja) are not supported by EGS; part ignored".to_string()),
                PartKind::Unknown if part.content_type == "text/x-not-multipart" => Some(
                    "does not start with a recognised marker (#cloud-config, #!, #include, #cloud-boothook, MIME); ignored as cloud-init does".to_string(),
                ),
                PartKind::Unknown => Some(format!("no handler for content type '{}'; part ignored", part.content_type)),
            };
            if let Some(message) = ignored {
                self.diagnostics
                    .items
                    .push(note(Severity::Warning, at, message));
                continue;
            }
            let text = match std::str::from_utf8(&part.payload) {
                Ok(t) => t,
                Err(e) => {
                    let before = &part.payload[..e.valid_up_to()];
                    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
                    let line_start = before
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |p| p + 1);
                    let column = String::from_utf8_lossy(&before[line_start..])
                        .chars()
                        .count()
                        + 1;
                    let origin = Origin::new(source, line as u32, column as u32);
                    self.diagnostics.items.push(note(
                        Severity::Error,
                        Some(origin),
                        "cloud-config is not valid UTF-8; part ignored",
                    ));
                    continue;
                }
            };
            let mut doc = match yaml::load(text, source) {
                Ok(Some(doc)) => doc,
                Ok(None) => {
                    self.diagnostics.items.push(note(
                        Severity::Warning,
                        at,
                        "empty cloud-config; part ignored",
                    ));
                    continue;
                }
                Err(e) => {
                    let origin = Origin::new(source, e.line, e.column);
                    self.diagnostics.items.push(note(
                        Severity::Error,
                        Some(origin),
                        format!("invalid YAML: {}; part ignored", e.message),
                    ));
                    continue;
                }
            };
            if !matches!(doc.value, Value::Map(_)) {
                self.diagnostics.items.push(note(
                    Severity::Error,
                    Some(doc.origin),
                    format!(
                        "cloud-config must be a mapping, found {}; part ignored",
                        doc.type_name()
                    ),
                ));
                continue;
            }
            let directive = merge::take_directive(&mut doc);
            let header = part
                .headers
                .iter()
                .find(|(n, v)| {
                    (n.eq_ignore_ascii_case("merge-type") || n.eq_ignore_ascii_case("x-merge-type"))
                        && !v.is_empty()
                })
                .map(|(_, v)| v.clone());
            let strategy = directive
                .map(|d| Strategy::from_node(&d))
                .transpose()
                .and_then(|own| {
                    let from_header = header.map(|h| Strategy::parse(&h)).transpose()?;
                    Ok(match (own, from_header) {
                        (Some(a), Some(b)) => a.then(b),
                        (Some(a), None) => a,
                        (None, Some(b)) => b,
                        (None, None) => default.clone(),
                    })
                })
                .map(|s| if s.is_empty() { default.clone() } else { s });
            match strategy.and_then(|s| s.merge(&config, &doc)) {
                Ok(merged) => {
                    config = merged;
                    merged_from.push(
                        part.filename
                            .replace(['\n', '\r', '\t'], " ")
                            .trim()
                            .to_string(),
                    );
                }
                Err(e) => self.diagnostics.items.push(note(
                    Severity::Error,
                    at,
                    format!("cannot merge this part: {e}; part ignored"),
                )),
            }
        }
        UserData {
            parts: self.parts,
            config,
            merged_from,
            includes: self.includes,
            diagnostics: self.diagnostics,
        }
    }
}

/// cloud-init parses data as MIME when `mime-version:` appears in its first 4 KiB; the
/// original EGS also takes data whose first line is a `Content-Type:` header.
fn looks_like_mime(data: &[u8]) -> bool {
    let head = data[..data.len().min(4096)].to_ascii_lowercase();
    if head.windows(13).any(|w| w == b"mime-version:") {
        return true;
    }
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default();
    let first = if first.starts_with(b"from ") {
        lines.next().unwrap_or_default()
    } else {
        first
    };
    first
        .strip_prefix(b"\xef\xbb\xbf")
        .unwrap_or(first)
        .starts_with(b"content-type:")
}

/// A `#cloud-config-jsonp` part, as cloud-init's cloud-config handler applies it: the
/// text after the marker is a JSON Patch for the configuration merged so far, applied
/// whole or not at all (a failure leaves the configuration as it was, with an error).
fn apply_json_patch(
    part: &Part,
    (config, merged_from): (&mut Node, &mut Vec<String>),
    at: Option<Origin>,
    diagnostics: &mut Diagnostics,
) {
    let text = String::from_utf8_lossy(&part.payload);
    let text = text.trim_start();
    let patch = text.strip_prefix("#cloud-config-jsonp").unwrap_or(text);
    match egs_cloudconfig::json_patch::apply(config, patch) {
        Ok(patched) => {
            *config = patched;
            merged_from.push(
                part.filename
                    .replace(['\n', '\r', '\t'], " ")
                    .trim()
                    .to_string(),
            );
        }
        Err(e) => diagnostics.items.push(note(
            Severity::Error,
            at,
            format!("cannot apply this JSON patch: {e}; part ignored"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::UrlFetcher;

    fn run(data: &[u8]) -> UserData {
        process(data, None, &UrlFetcher::default(), &Limits::default()).unwrap()
    }

    fn mime(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut out =
            String::from("Content-Type: multipart/mixed; boundary=P\nMIME-Version: 1.0\n\n");
        for (headers, body) in parts {
            out.push_str(&format!("--P\n{headers}\n\n{body}\n"));
        }
        out.push_str("--P--\n");
        out.into_bytes()
    }

    fn warnings(u: &UserData) -> Vec<String> {
        u.diagnostics
            .items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .map(|d| d.message.clone())
            .collect()
    }

    #[test]
    fn per_frequency_scripts_and_recognised_kinds() {
        let u = run(&mime(&[
            (
                "Content-Type: text/x-shellscript-per-boot",
                "#!/bin/sh\necho boot",
            ),
            (
                "Content-Type: text/x-shellscript-per-once",
                "#!/bin/sh\necho once",
            ),
            ("Content-Type: text/plain", "#cloud-boothook\necho hook"),
            (
                "Content-Type: text/plain",
                "#part-handler\ndef list_types(): pass",
            ),
            (
                "Content-Type: text/plain",
                "## template: jinja\n#cloud-config\na: {{ v }}",
            ),
            ("Content-Type: application/x-thing", "zzz"),
        ]));
        let kinds: Vec<PartKind> = u.parts.iter().map(Part::kind).collect();
        assert_eq!(
            kinds,
            [
                PartKind::Script(ScriptFrequency::Boot),
                PartKind::Script(ScriptFrequency::Once),
                PartKind::Boothook,
                PartKind::PartHandler,
                PartKind::Jinja,
                PartKind::Unknown
            ]
        );
        let w = warnings(&u);
        assert!(w.iter().any(|m| m.contains("part handlers are never run")));
        assert!(w.iter().any(|m| m.contains("Jinja templates")));
        assert!(w.iter().any(|m| m.contains("application/x-thing")));
    }

    #[test]
    fn unmarked_data_is_ignored_with_a_warning() {
        let u = run(b"hostname: forgot-the-marker\n");
        assert_eq!(u.parts[0].content_type, "text/x-not-multipart");
        assert!(warnings(&u)[0].contains("recognised marker"));
        assert!(u.config.as_map().unwrap().is_empty());
    }

    #[test]
    fn archives_explode_into_parts() {
        let u = run(b"#cloud-config-archive\n- type: text/cloud-config\n  content: 'hostname: a'\n- '#!/bin/sh\n  echo hi'\n- filename: x.yaml\n  content: '#cloud-config\n\n    timezone: UTC'\n  X-Extra: yes\n");
        let names: Vec<&str> = u.parts.iter().map(|p| p.filename.as_str()).collect();
        assert_eq!(names, ["part-001", "part-002", "x.yaml"]);
        assert_eq!(u.parts[1].content_type, "text/x-shellscript");
        assert!(u.parts[2]
            .headers
            .iter()
            .any(|(k, v)| k == "X-Extra" && v == "True"));
        let config = u.config.as_map().unwrap();
        assert_eq!(config.get("hostname").unwrap().as_str(), Some("a"));
        assert_eq!(config.get("timezone").unwrap().as_str(), Some("UTC"));
    }

    #[test]
    fn merge_type_header_and_bad_parts() {
        let u = run(&mime(&[
            ("Content-Type: text/cloud-config", "#cloud-config\nruncmd: [a]\nhostname: one"),
            ("Content-Type: text/cloud-config\nMerge-Type: list(append)+dict(no_replace,recurse_list)", "#cloud-config\nruncmd: [b]\nhostname: two"),
            ("Content-Type: text/cloud-config", "#cloud-config\n- not a mapping"),
            ("Content-Type: text/cloud-config", "#cloud-config\na: [1"),
            ("Content-Type: text/cloud-config", "#cloud-config\nmerge_how: 'tree()'\nb: 1"),
        ]));
        let config = u.config.as_map().unwrap();
        assert_eq!(
            egs_cloudconfig::json::to_json(config.get("runcmd").unwrap()),
            r#"["a","b"]"#
        );
        assert_eq!(config.get("hostname").unwrap().as_str(), Some("one"));
        assert!(!config.contains_key("b"));
        let errors: Vec<&Diagnostic> = u
            .diagnostics
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert_eq!(errors.len(), 3);
        assert!(errors[0].message.contains("must be a mapping"));
        assert_eq!(
            errors[1].origin.map(|o| (o.source, o.line)),
            Some((3, 3)),
            "end of input"
        );
        assert!(errors[2].message.contains("unknown merger 'tree'"));
        assert_eq!(u.merged_from, ["part-001", "part-002"]);
    }

    #[test]
    fn vendor_data_can_be_refused_by_user_data() {
        let fetcher = UrlFetcher::default();
        let vendor = b"#cloud-config\ntimezone: Etc/UTC\n";
        let on = process(
            b"#cloud-config\nhostname: h\n",
            Some(vendor),
            &fetcher,
            &Limits::default(),
        )
        .unwrap();
        assert!(on.config.as_map().unwrap().contains_key("timezone"));
        let off = process(
            b"#cloud-config\nvendor_data: {enabled: false}\n",
            Some(vendor),
            &fetcher,
            &Limits::default(),
        )
        .unwrap();
        assert!(!off.config.as_map().unwrap().contains_key("timezone"));
        assert!(warnings(&off)
            .iter()
            .any(|m| m.contains("vendor-data is disabled")));
        assert_eq!(off.parts.len(), 2, "vendor parts are still listed");
    }

    /// Issue 23 (7): `#cloud-config-jsonp` patches the configuration merged so far, as a
    /// whole document or as a MIME part; a failing patch changes nothing and is an error.
    #[test]
    fn json_patch_parts_apply_to_the_merged_configuration() {
        let fetcher = UrlFetcher::default();
        let json = |u: &UserData| egs_cloudconfig::json::to_json(&u.config);
        let whole = process(
            b"#cloud-config-jsonp\n[{\"op\": \"add\", \"path\": \"/baz\", \"value\": \"qux\"}]\n",
            None,
            &fetcher,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(json(&whole), r#"{"baz":"qux"}"#);
        let mime = b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/cloud-config\n\n#cloud-config\na: b\nc: d\n--B\nContent-Type: text/cloud-config-jsonp\n\n[{\"op\":\"remove\",\"path\":\"/c\"}]\n--B--\n";
        let patched = process(mime, None, &fetcher, &Limits::default()).unwrap();
        assert_eq!(json(&patched), r#"{"a":"b"}"#);
        assert_eq!(patched.merged_from, ["part-001", "part-002"]);
        let failing_mime = String::from_utf8_lossy(mime).replace("\"/c\"", "\"/zz\"");
        let failing = process(failing_mime.as_bytes(), None, &fetcher, &Limits::default()).unwrap();
        assert_eq!(json(&failing), r#"{"a":"b","c":"d"}"#);
        assert!(failing
            .diagnostics
            .items
            .iter()
            .any(|d| d.severity == Severity::Error
                && d.message
                    .contains("cannot apply this JSON patch: operation 0: /zz does not exist")));
    }

    /// Issue 23 (8): cloud-init reads `enabled` with is_true (stages.py), and a
    /// `vendor_data` that is not a mapping turns vendor-data off.
    #[test]
    fn vendor_data_enabled_is_read_as_cloud_init_reads_it() {
        let fetcher = UrlFetcher::default();
        let vendor = b"#cloud-config\ntimezone: Etc/UTC\n";
        for (setting, merged) in [
            ("vendor_data: {enabled: 'false'}", false),
            ("vendor_data: {enabled: 'no'}", false),
            ("vendor_data: {enabled: 0}", false),
            ("vendor_data: {enabled: null}", false),
            ("vendor_data: {enabled: 'maybe'}", false),
            ("vendor_data: off", false),
            ("vendor_data: {enabled: 'yes'}", true),
            ("vendor_data: {enabled: ' TRUE '}", true),
            ("vendor_data: {enabled: 1}", true),
            ("vendor_data: {prefix: []}", true),
        ] {
            let user = format!("#cloud-config\n{setting}\n");
            let u = process(user.as_bytes(), Some(vendor), &fetcher, &Limits::default()).unwrap();
            assert_eq!(
                u.config.as_map().unwrap().contains_key("timezone"),
                merged,
                "{setting}"
            );
        }
    }
}
