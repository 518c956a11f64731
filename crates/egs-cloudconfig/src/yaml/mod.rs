//! A YAML loader that returns what PyYAML's `yaml.safe_load` returns.
//!
//! cloud-init reads user-data with PyYAML (YAML 1.1), so `0644` is 420, `yes` is true,
//! `1:30` is 90, `<<` merges mappings, `!!binary` is bytes and a repeated key keeps the
//! last value. Parsing is `saphyr-parser`'s event stream; composing (anchors, aliases) and
//! constructing (tags, implicit resolution) follow PyYAML's composer and SafeConstructor.
//!
//! Deliberate differences, each refused with an error rather than read another way:
//! NEL/LS/PS characters (line breaks in YAML 1.1 only), a plain scalar containing `?` inside
//! a flow collection (PyYAML reads `[?a]` as `[{a: null}]`), and recursive aliases (which
//! PyYAML builds but cloud-init cannot use).
//!
//! Bounded: document size, nesting depth and the number of nodes aliases may expand to,
//! so hostile documents end in an error instead of exhausting memory. This module does no I/O.
//!
//! ```
//! use egs_cloudconfig::yaml::load;
//! use egs_cloudconfig::value::Value;
//! let doc = load("mode: 0644\nenabled: yes\n", 0).unwrap().unwrap();
//! let map = doc.as_map().unwrap();
//! assert!(matches!(map.get("mode").unwrap().value, Value::Int(420)));
//! assert!(matches!(map.get("enabled").unwrap().value, Value::Bool(true)));
//! ```

mod resolve;

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

pub use resolve::decode_base64_like_python;
use resolve::{construct_scalar, resolve_plain, CoreTag};

use crate::value::{Mapping, Node, Origin, Value};

/// A YAML document that could not be loaded, with the place (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct YamlError {
    /// 1-based line (0 when the error is about the whole document).
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// What is wrong.
    pub message: String,
}

impl YamlError {
    fn at(origin: Origin, message: impl Into<String>) -> Self {
        Self {
            line: origin.line,
            column: origin.column,
            message: message.into(),
        }
    }
}

/// Bounds that keep hostile documents cheap to reject.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest document accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings (and of merge chains).
    pub max_depth: usize,
    /// How many nodes aliases and merge keys may add beyond the document's own nodes.
    pub max_alias_expansion: usize,
    /// How many nodes (scalars, sequences, mappings) the document itself may have: what
    /// bounds the memory of a document of many tiny items (each costs a few hundred bytes
    /// once loaded and checked, far more than its two or three characters of text).
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_depth: 200,
            max_alias_expansion: 100_000,
            max_nodes: 200_000,
        }
    }
}

/// Whether `text`, written unquoted, loads back as the same string under PyYAML's
/// YAML 1.1 rules (and not as a boolean, number, null or timestamp). Emitters use it to
/// decide when a string needs quotes.
pub fn plain_scalar_stays_string(text: &str) -> bool {
    resolve_plain(text) == CoreTag::Str
}

/// Loads one YAML document with the default [`Limits`]; `Ok(None)` for an empty stream.
///
/// `source` is recorded in every node's [`Origin`] (the pipeline numbers its parts).
pub fn load(text: &str, source: u32) -> Result<Option<Node>, YamlError> {
    load_with_limits(text, source, &Limits::default())
}

/// Loads one YAML document with explicit limits.
pub fn load_with_limits(
    text: &str,
    source: u32,
    limits: &Limits,
) -> Result<Option<Node>, YamlError> {
    if text.len() > limits.max_bytes {
        return Err(YamlError {
            line: 0,
            column: 0,
            message: format!(
                "document is {} bytes, more than the limit of {} bytes",
                text.len(),
                limits.max_bytes
            ),
        });
    }
    check_characters(text)?;
    // PyYAML skips one byte-order mark at the very start.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let graph = Composer::new(text, source, limits).compose()?;
    let Some(root) = graph.root else {
        return Ok(None);
    };
    let mut constructor = Constructor {
        graph: &graph,
        budget: graph.nodes.len() + limits.max_alias_expansion,
        max_depth: limits.max_depth,
    };
    constructor.construct(root, 0).map(Some)
}

/// PyYAML's reader refuses control characters; YAML 1.1 also makes NEL, LS and PS line
/// breaks, which a YAML 1.2 parser does not, so those are refused rather than misread.
fn check_characters(text: &str) -> Result<(), YamlError> {
    let bad = |c: char| !matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
    let Some((offset, c)) = text.char_indices().find(|&(_, c)| bad(c)) else {
        return Ok(());
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let message = if matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}') {
        format!(
            "character #x{:04x} is a line break in YAML 1.1; write a plain newline instead",
            c as u32
        )
    } else {
        format!(
            "unacceptable character #x{:04x}: special characters are not allowed",
            c as u32
        )
    };
    Err(YamlError {
        line: line as u32,
        column: column as u32,
        message,
    })
}

/// A composed node: PyYAML's node graph before construction.
struct RawNode {
    origin: Origin,
    tag: Option<String>,
    kind: RawKind,
}

enum RawKind {
    Scalar { text: String, plain: bool },
    Seq(Vec<usize>),
    Map(Vec<(usize, usize)>),
}

struct Graph {
    nodes: Vec<RawNode>,
    root: Option<usize>,
}

/// Turns parser events into a node graph, resolving aliases to shared nodes.
struct Composer<'a> {
    text: &'a str,
    source: u32,
    limits: &'a Limits,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
    nodes: Vec<RawNode>,
    /// saphyr anchor id → (node, still open)
    anchors: HashMap<usize, usize>,
    open: Vec<bool>,
    anchor_names: HashMap<String, Origin>,
    /// (char index, byte offset) of the last position looked up in `text`.
    cursor: (usize, usize),
}

enum Frame {
    Seq {
        node: usize,
        flow: bool,
    },
    Map {
        node: usize,
        key: Option<usize>,
        flow: bool,
    },
}

impl Frame {
    fn is_flow(&self) -> bool {
        match self {
            Frame::Seq { flow, .. } | Frame::Map { flow, .. } => *flow,
        }
    }
}

impl<'a> Composer<'a> {
    fn new(text: &'a str, source: u32, limits: &'a Limits) -> Self {
        Self {
            text,
            source,
            limits,
            parser: Parser::new_from_str(text),
            nodes: Vec::new(),
            anchors: HashMap::new(),
            open: Vec::new(),
            anchor_names: HashMap::new(),
            cursor: (0, 0),
        }
    }

    fn origin(&self, span: &Span) -> Origin {
        Origin::new(
            self.source,
            span.start.line() as u32,
            span.start.col() as u32 + 1,
        )
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => {
                let message = match e.info() {
                    "recursion limit exceeded" => {
                        "nesting is deeper than the parser's limit".to_string()
                    }
                    "while parsing node, found unknown anchor" => {
                        "found undefined alias".to_string()
                    }
                    other => other.to_string(),
                };
                Err(YamlError {
                    line: e.marker().line() as u32,
                    column: e.marker().col() as u32 + 1,
                    message,
                })
            }
            None => Err(YamlError {
                line: 0,
                column: 0,
                message: "unexpected end of the event stream".into(),
            }),
        }
    }

    fn compose(mut self) -> Result<Graph, YamlError> {
        let mut root = None;
        let mut documents = 0;
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(YamlError::at(
                            self.origin(&span),
                            "expected a single document in the stream, but found another document",
                        ));
                    }
                    root = Some(self.compose_document()?);
                }
                _ => {}
            }
        }
        Ok(Graph {
            nodes: self.nodes,
            root,
        })
    }

    fn compose_document(&mut self) -> Result<usize, YamlError> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            let origin = self.origin(&span);
            let finished = match event {
                Event::DocumentEnd => {
                    return Err(YamlError::at(origin, "document has no content"));
                }
                Event::Scalar(text, style, anchor, tag) => {
                    if style == ScalarStyle::Plain
                        && text.contains('?')
                        && stack.last().is_some_and(Frame::is_flow)
                    {
                        return Err(YamlError::at(
                            origin,
                            format!("'?' in the plain scalar '{text}' inside a flow collection is an indicator in YAML 1.1 (PyYAML); quote the scalar"),
                        ));
                    }
                    let id = self.push(
                        origin,
                        tag.map(|t| full_tag(&t)),
                        RawKind::Scalar {
                            text: text.into_owned(),
                            plain: style == ScalarStyle::Plain,
                        },
                    )?;
                    self.register_anchor(anchor, id, &span)?;
                    self.open[id] = false;
                    Some(id)
                }
                Event::SequenceStart(..) | Event::MappingStart(..) => {
                    let (is_seq, anchor, tag) = match event {
                        Event::SequenceStart(anchor, tag) => (true, anchor, tag),
                        Event::MappingStart(anchor, tag) => (false, anchor, tag),
                        _ => unreachable!(),
                    };
                    if stack.len() >= self.limits.max_depth {
                        return Err(YamlError::at(
                            origin,
                            format!(
                                "nesting is deeper than the limit of {} levels",
                                self.limits.max_depth
                            ),
                        ));
                    }
                    let kind = if is_seq {
                        RawKind::Seq(Vec::new())
                    } else {
                        RawKind::Map(Vec::new())
                    };
                    let id = self.push(origin, tag.map(|t| full_tag(&t)), kind)?;
                    self.register_anchor(anchor, id, &span)?;
                    let flow = stack.last().is_some_and(Frame::is_flow) || self.opens_flow(&span);
                    stack.push(if is_seq {
                        Frame::Seq { node: id, flow }
                    } else {
                        Frame::Map {
                            node: id,
                            key: None,
                            flow,
                        }
                    });
                    None
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let id = match stack.pop() {
                        Some(Frame::Seq { node: id, .. }) | Some(Frame::Map { node: id, .. }) => id,
                        None => unreachable!("parser balances collection events"),
                    };
                    self.open[id] = false;
                    Some(id)
                }
                Event::Alias(anchor) => {
                    let name = self.name_at(&span, '*');
                    let id = *self.anchors.get(&anchor).ok_or_else(|| {
                        YamlError::at(origin, format!("found undefined alias '{name}'"))
                    })?;
                    if self.open[id] {
                        return Err(YamlError::at(
                            origin,
                            format!("alias '{name}' refers to a node that contains it (recursive structures are not supported)"),
                        ));
                    }
                    Some(id)
                }
                _ => None,
            };
            let Some(id) = finished else { continue };
            match stack.last_mut() {
                None => {
                    let (event, span) = self.next()?;
                    if event != Event::DocumentEnd {
                        return Err(YamlError::at(
                            self.origin(&span),
                            "expected the end of the document",
                        ));
                    }
                    return Ok(id);
                }
                Some(Frame::Seq { node: parent, .. }) => {
                    let parent = *parent;
                    if let RawKind::Seq(items) = &mut self.nodes[parent].kind {
                        items.push(id);
                    }
                }
                Some(Frame::Map { node, key, .. }) => match key.take() {
                    None => *key = Some(id),
                    Some(k) => {
                        let parent = *node;
                        if let RawKind::Map(pairs) = &mut self.nodes[parent].kind {
                            pairs.push((k, id));
                        }
                    }
                },
            }
        }
    }

    fn push(
        &mut self,
        origin: Origin,
        tag: Option<String>,
        kind: RawKind,
    ) -> Result<usize, YamlError> {
        if self.nodes.len() >= self.limits.max_nodes {
            return Err(YamlError::at(
                origin,
                format!(
                    "the document has more than {} nodes (scalars, sequences and mappings)",
                    self.limits.max_nodes
                ),
            ));
        }
        self.nodes.push(RawNode { origin, tag, kind });
        self.open.push(true);
        Ok(self.nodes.len() - 1)
    }

    /// Records an anchor; PyYAML refuses a second anchor with the same name.
    fn register_anchor(&mut self, anchor: usize, id: usize, span: &Span) -> Result<(), YamlError> {
        if anchor == 0 {
            return Ok(());
        }
        let name = self.name_at(span, '&');
        let origin = self.origin(span);
        if let Some(first) = self.anchor_names.insert(name.clone(), origin) {
            return Err(YamlError::at(
                origin,
                format!(
                    "found duplicate anchor '{name}'; first occurrence at line {}, column {}",
                    first.line, first.column
                ),
            ));
        }
        self.anchors.insert(anchor, id);
        Ok(())
    }

    /// The source text from a node's span start (an anchor, tag, indicator or the content).
    fn text_from(&mut self, span: &Span) -> &'a str {
        let target = span.start.index();
        let (mut chars, mut bytes) = if target >= self.cursor.0 {
            self.cursor
        } else {
            (0, 0)
        };
        for c in self.text[bytes..].chars() {
            if chars == target {
                break;
            }
            chars += 1;
            bytes += c.len_utf8();
        }
        self.cursor = (chars, bytes);
        &self.text[bytes..]
    }

    /// Whether a collection starting at `span` is written in flow style (`[`/`{`), looking
    /// past its anchor and tag.
    fn opens_flow(&mut self, span: &Span) -> bool {
        let mut rest = self.text_from(span);
        loop {
            rest = rest.trim_start();
            if rest.starts_with(['&', '!']) {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                rest = &rest[end..];
            } else {
                return rest.starts_with(['[', '{']);
            }
        }
    }

    /// Reads the anchor or alias name (after `marker`) at the start of a node's span.
    fn name_at(&mut self, span: &Span, marker: char) -> String {
        let rest = self.text_from(span);
        let Some(pos) = rest.find(marker) else {
            return String::new();
        };
        rest[pos + 1..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
            .collect()
    }
}

fn full_tag(tag: &saphyr_parser::Tag) -> String {
    if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Builds values from the node graph as PyYAML's SafeConstructor does.
struct Constructor<'g> {
    graph: &'g Graph,
    budget: usize,
    max_depth: usize,
}

impl Constructor<'_> {
    fn charge(&mut self, origin: Origin, n: usize) -> Result<(), YamlError> {
        if self.budget < n {
            return Err(YamlError::at(
                origin,
                "aliases and merge keys expand to too many nodes (possible alias bomb)",
            ));
        }
        self.budget -= n;
        Ok(())
    }

    fn construct(&mut self, id: usize, depth: usize) -> Result<Node, YamlError> {
        let node = &self.graph.nodes[id];
        let origin = node.origin;
        self.charge(origin, 1)?;
        if depth > self.max_depth {
            return Err(YamlError::at(origin, "nesting is too deep"));
        }
        let err = |m: String| YamlError::at(origin, m);
        let explicit = match node.tag.as_deref() {
            None | Some("!") => None,
            Some(t) => Some(CoreTag::from_full(t).ok_or_else(|| {
                err(format!(
                    "could not determine a constructor for the tag '{t}'"
                ))
            })?),
        };
        let value = match &node.kind {
            RawKind::Scalar { text, plain } => {
                let tag = match explicit {
                    Some(tag) => tag,
                    // PyYAML's parser marks a `!`-tagged scalar "implicit" like a plain one,
                    // so `! "yes"` is a boolean there, quoted or not.
                    None if *plain || node.tag.is_some() => resolve_plain(text),
                    None => CoreTag::Str,
                };
                match tag {
                    CoreTag::Seq | CoreTag::Omap | CoreTag::Pairs => {
                        return Err(err("expected a sequence node, but found scalar".into()))
                    }
                    CoreTag::Map | CoreTag::Set => {
                        return Err(err("expected a mapping node, but found scalar".into()))
                    }
                    tag => construct_scalar(tag, text).map_err(err)?,
                }
            }
            RawKind::Seq(items) => match explicit.unwrap_or(CoreTag::Seq) {
                CoreTag::Seq => {
                    let mut out = Vec::with_capacity(items.len());
                    for &item in items {
                        out.push(self.construct(item, depth + 1)?);
                    }
                    Value::Seq(out)
                }
                tag @ (CoreTag::Omap | CoreTag::Pairs) => {
                    self.construct_pairs(tag, items, depth)?
                }
                CoreTag::Map | CoreTag::Set => {
                    return Err(err("expected a mapping node, but found sequence".into()))
                }
                _ => return Err(err("expected a scalar node, but found sequence".into())),
            },
            RawKind::Map(_) => match explicit.unwrap_or(CoreTag::Map) {
                CoreTag::Map => Value::Map(self.construct_mapping(id, depth)?),
                CoreTag::Set => {
                    let map = self.construct_mapping(id, depth)?;
                    Value::Set(map.into_iter().map(|(k, _)| k).collect())
                }
                CoreTag::Seq | CoreTag::Omap | CoreTag::Pairs => {
                    return Err(err("expected a sequence node, but found mapping".into()))
                }
                _ => return Err(err("expected a scalar node, but found mapping".into())),
            },
        };
        Ok(Node::new(value, origin))
    }

    fn construct_pairs(
        &mut self,
        tag: CoreTag,
        items: &[usize],
        depth: usize,
    ) -> Result<Value, YamlError> {
        let what = if tag == CoreTag::Omap {
            "an ordered map"
        } else {
            "pairs"
        };
        let mut pairs = Vec::with_capacity(items.len());
        for &item in items {
            let sub = &self.graph.nodes[item];
            let RawKind::Map(entries) = &sub.kind else {
                return Err(YamlError::at(
                    sub.origin,
                    format!("while constructing {what}: expected a mapping of length 1"),
                ));
            };
            if entries.len() != 1 {
                return Err(YamlError::at(
                    sub.origin,
                    format!(
                        "while constructing {what}: expected a single mapping item, but found {} items",
                        entries.len()
                    ),
                ));
            }
            let (k, v) = entries[0];
            pairs.push((self.construct(k, depth + 1)?, self.construct(v, depth + 1)?));
        }
        Ok(Value::Pairs(pairs))
    }

    fn key_tag(&self, key: usize) -> Option<CoreTag> {
        let node = &self.graph.nodes[key];
        match (&node.kind, node.tag.as_deref()) {
            (RawKind::Scalar { text, plain: true }, None) => Some(resolve_plain(text)),
            (_, Some(t)) => CoreTag::from_full(t),
            _ => None,
        }
    }

    /// PyYAML's `flatten_mapping`: merge keys are replaced by the merged mappings' pairs,
    /// placed before the mapping's own pairs (so local keys win).
    fn flatten(&mut self, id: usize, depth: usize) -> Result<Vec<(usize, usize)>, YamlError> {
        let node = &self.graph.nodes[id];
        if depth > self.max_depth {
            return Err(YamlError::at(
                node.origin,
                "merge keys are nested too deeply",
            ));
        }
        let RawKind::Map(pairs) = &node.kind else {
            return Ok(Vec::new());
        };
        let mut merged = Vec::new();
        let mut own = Vec::with_capacity(pairs.len());
        for &(k, v) in pairs {
            if self.key_tag(k) != Some(CoreTag::Merge) {
                own.push((k, v));
                continue;
            }
            let value = &self.graph.nodes[v];
            match &value.kind {
                RawKind::Map(_) => merged.extend(self.flatten(v, depth + 1)?),
                RawKind::Seq(items) => {
                    let mut groups = Vec::with_capacity(items.len());
                    for &item in items {
                        let sub = &self.graph.nodes[item];
                        if !matches!(sub.kind, RawKind::Map(_)) {
                            return Err(YamlError::at(
                                sub.origin,
                                "while constructing a mapping: expected a mapping for merging",
                            ));
                        }
                        groups.push(self.flatten(item, depth + 1)?);
                    }
                    for group in groups.into_iter().rev() {
                        merged.extend(group);
                    }
                }
                RawKind::Scalar { .. } => {
                    return Err(YamlError::at(
                        value.origin,
                        "while constructing a mapping: expected a mapping or list of mappings for merging, but found scalar",
                    ))
                }
            }
        }
        self.charge(node.origin, merged.len())?;
        merged.extend(own);
        Ok(merged)
    }

    fn construct_mapping(&mut self, id: usize, depth: usize) -> Result<Mapping, YamlError> {
        let pairs = self.flatten(id, depth)?;
        let mut map = Mapping::new();
        for (k, v) in pairs {
            let key = if self.key_tag(k) == Some(CoreTag::Value) {
                // PyYAML turns a `=` key into the string "=".
                let n = &self.graph.nodes[k];
                self.charge(n.origin, 1)?;
                Node::new(Value::Str("=".into()), n.origin)
            } else {
                self.construct(k, depth + 1)?
            };
            let key_origin = key.origin;
            let value = self.construct(v, depth + 1)?;
            map.insert(key, value).map_err(|_| {
                YamlError::at(
                    key_origin,
                    "while constructing a mapping: found unhashable key",
                )
            })?;
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_ok(text: &str) -> Node {
        load(text, 0).unwrap().unwrap()
    }

    fn load_err(text: &str) -> YamlError {
        load(text, 0).unwrap_err()
    }

    #[test]
    fn duplicate_keys_keep_last_value_at_first_position() {
        let doc = load_ok("a: 1\nb: 2\na: 3\n");
        let map = doc.as_map().unwrap();
        let keys: Vec<_> = map.iter().map(|(k, _)| k.as_str().unwrap()).collect();
        assert_eq!(keys, ["a", "b"]);
        assert!(matches!(map.get("a").unwrap().value, Value::Int(3)));
    }

    #[test]
    fn merge_keys_and_aliases() {
        let doc = load_ok("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n");
        let other = doc
            .as_map()
            .unwrap()
            .get("other")
            .unwrap()
            .as_map()
            .unwrap();
        assert!(matches!(other.get("x").unwrap().value, Value::Int(1)));
        assert!(matches!(other.get("y").unwrap().value, Value::Int(3)));
        let doc = load_ok("a: &a {k: 1}\nb: &b {k: 2}\nc: {<<: [*a, *b]}\n");
        let c = doc.as_map().unwrap().get("c").unwrap().as_map().unwrap();
        assert!(matches!(c.get("k").unwrap().value, Value::Int(1)));
    }

    #[test]
    fn tags_and_quoting() {
        let doc = load_ok("a: !!str 0644\nb: '0644'\nc: !!binary aGk=\nd: ! 12\ne: !!int '0x10'\n");
        let m = doc.as_map().unwrap();
        assert_eq!(m.get("a").unwrap().as_str(), Some("0644"));
        assert_eq!(m.get("b").unwrap().as_str(), Some("0644"));
        assert!(matches!(&m.get("c").unwrap().value, Value::Bytes(b) if b == b"hi"));
        // PyYAML resolves `!`-tagged scalars like plain ones.
        assert!(matches!(m.get("d").unwrap().value, Value::Int(12)));
        assert!(matches!(m.get("e").unwrap().value, Value::Int(16)));
        assert!(load_err("a: !foo x\n")
            .message
            .contains("could not determine a constructor"));
    }

    #[test]
    fn errors_carry_positions() {
        let e = load_err("a: 1\nb: [1, 2\n");
        assert!(e.line >= 2, "{e}");
        let e = load_err("x: &a 1\ny: &a 2\n");
        assert_eq!((e.line, e.column), (2, 4));
        assert!(e.message.contains("duplicate anchor"));
        assert!(load_err("a: *nope\n").message.contains("undefined alias"));
        assert!(load_err("a\u{1b}: 1\n").message.contains("#x001b"));
        assert!(load_err("a: 1\n---\nb: 2\n")
            .message
            .contains("single document"));
        assert!(load_err("? [a]\n: 1\n").message.contains("unhashable"));
        assert!(load_err("a: <<\n").message.contains("merge"));
    }

    #[test]
    fn hostile_documents_are_bounded() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(load_err(&deep).message.contains("nesting"));
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = (b'a' + i - 1) as char;
            let c = (b'a' + i) as char;
            bomb.push_str(&format!(
                "{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            ));
        }
        assert!(load_err(&bomb).message.contains("alias bomb"));
        assert!(load_err("&a [*a]\n").message.contains("recursive"));
    }

    #[test]
    fn documents_of_too_many_nodes_are_refused_where_the_limit_is_crossed() {
        let limits = Limits {
            max_nodes: 1_000,
            ..Limits::default()
        };
        // A mapping, its key, the sequence and its items: 3 + items nodes.
        let doc = |items: usize| format!("runcmd: [{}]\n", vec!["a"; items].join(", "));
        let at_limit = load_with_limits(&doc(997), 0, &limits).unwrap().unwrap();
        assert_eq!(at_limit.as_map().unwrap().len(), 1);
        let err = load_with_limits(&doc(998), 0, &limits).unwrap_err();
        assert_eq!((err.line, err.column), (1, 9 + 997 * 3 + 1), "{err}");
        assert!(err.message.contains("more than 1000 nodes"), "{err}");
        // The default bound: the figure the README gives for `validate`'s memory.
        let many = format!("runcmd:\n{}", "- a\n".repeat(200_000));
        let err = load(&many, 0).unwrap_err();
        assert!(err.message.contains("more than 200000 nodes"), "{err}");
    }

    #[test]
    fn empty_streams_are_none_and_bare_document_is_null() {
        assert!(load("", 0).unwrap().is_none());
        assert!(load("# just a comment\n", 0).unwrap().is_none());
        assert!(matches!(load_ok("---\n").value, Value::Null));
    }
}
