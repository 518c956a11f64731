//! `write_files` entries with cloud-init's decoding rules (`cc_write_files.py`): encodings,
//! permission forms, owner, append and defer.

use std::io::Read;

use super::fields::{child, describe, Diagnostics, Fields};
use crate::value::{Mapping, Node, Value};
use crate::yaml::decode_base64_like_python;

/// Largest decompressed `gz` content accepted for one file.
pub const MAX_DECOMPRESSED_FILE: u64 = 64 * 1024 * 1024;

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFile {
    /// Absolute path.
    pub path: String,
    /// The decoded content.
    pub content: Vec<u8>,
    /// `user[:group]`, default `root:root`.
    pub owner: String,
    /// Mode bits, default 0o644.
    pub permissions: u32,
    /// Whether the entry gave `permissions` (Windows applies only given modes).
    pub permissions_given: bool,
    /// Whether the entry gave `owner` (Windows sets only a given owner).
    pub owner_given: bool,
    /// Append instead of replacing.
    pub append: bool,
    /// Write in the final stage, after users exist.
    pub defer: bool,
}

/// Parses `write_files`.
pub fn parse_write_files(node: &Node, d: &mut Diagnostics) -> Vec<WriteFile> {
    let Some(items) = node.as_seq() else {
        d.error(
            "write_files",
            Some(node),
            format!("expected a list, found {}", describe(node)),
        );
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| {
            let path = format!("write_files[{i}]");
            match item.as_map() {
                Some(m) => parse_entry(m, &path, item, d),
                None => {
                    d.error(
                        &path,
                        Some(item),
                        format!("expected a mapping, found {}", describe(item)),
                    );
                    None
                }
            }
        })
        .collect()
}

fn parse_entry(map: &Mapping, path: &str, item: &Node, d: &mut Diagnostics) -> Option<WriteFile> {
    let mut f = Fields::new(map, path);
    let file_path = f.string("path", d);
    let encoding = f.string("encoding", d).unwrap_or_default();
    let given_owner = f.string("owner", d);
    let owner_given = given_owner.is_some();
    let owner = given_owner.unwrap_or_else(|| "root:root".into());
    let append = f.boolean("append", d).unwrap_or(false);
    let defer = f.boolean("defer", d).unwrap_or(false);
    let permissions_given = f.get("permissions").is_some();
    let permissions = match f.get("permissions") {
        None => 0o644,
        Some(node) => decode_permissions(node, &f.path_of("permissions"), d),
    };
    if let Some(source) = f.get("source") {
        d.warning(
            &f.path_of("source"),
            Some(source),
            "fetching file content from 'source' is not supported by EGS; 'content' is used",
        );
    }
    let raw: Vec<u8> = match f.get("content") {
        None => Vec::new(),
        Some(node) => match &node.value {
            Value::Str(s) => s.as_bytes().to_vec(),
            Value::Bytes(b) => b.clone(),
            _ => {
                d.error(
                    &f.path_of("content"),
                    Some(node),
                    format!("expected text or !!binary, found {}", describe(node)),
                );
                Vec::new()
            }
        },
    };
    f.finish(d, "a write_files entry");

    let Some(file_path) = file_path else {
        d.error(path, Some(item), "'path' is required");
        return None;
    };
    check_path(&file_path, &child(path, "path"), map.get("path"), d);
    let content = if encoding_steps(&encoding).is_none() {
        // cloud-init's schema refuses the encoding; its module writes the content as text.
        d.error(
            &child(path, "encoding"),
            map.get("encoding"),
            format!(
                "unknown encoding '{}' (use b64, base64, gz, gzip, gz+b64 or text/plain); \
                 the content is written as text, as cloud-init does",
                encoding.trim()
            ),
        );
        raw
    } else {
        match decode_content(&raw, &encoding) {
            Ok(c) => c,
            Err(e) => {
                d.error(&child(path, "content"), map.get("content"), e);
                return None;
            }
        }
    };
    Some(WriteFile {
        path: file_path,
        content,
        owner,
        permissions,
        permissions_given,
        owner_given,
        append,
        defer,
    })
}

fn check_path(p: &str, path: &str, node: Option<&Node>, d: &mut Diagnostics) {
    if !p.starts_with('/') {
        d.error(path, node, format!("'{p}' is not an absolute path"));
    } else if p.contains('\0') {
        d.error(path, node, "path contains a NUL character");
    } else if p.split('/').any(|seg| seg == "..") {
        d.warning(path, node, format!("'{p}' contains '..'"));
    }
}

/// What an encoding name asks for, as (gunzip, base64-decode first), trimmed and
/// case-insensitive; `None` for a name neither cloud-init nor the original EGS knows.
/// `b64+gzip` and its spellings are the original's (cloud-init writes them as text).
fn encoding_steps(encoding: &str) -> Option<(bool, bool)> {
    match encoding.trim().to_lowercase().as_str() {
        "" | "text/plain" => Some((false, false)),
        "b64" | "base64" => Some((false, true)),
        "gz" | "gzip" => Some((true, false)),
        "gz+b64" | "gzip+b64" | "gz+base64" | "gzip+base64" | "b64+gzip" | "base64+gzip"
        | "b64+gz" | "base64+gz" => Some((true, true)),
        _ => None,
    }
}

/// cloud-init's `decode_perms`: integers as they are (YAML 1.1 already read `0644` as
/// octal), strings as octal (`"0644"`, `"644"`, `"0o644"`); anything else is an error here
/// (cloud-init falls back to 0644 with a warning).
pub fn decode_permissions(node: &Node, path: &str, d: &mut Diagnostics) -> u32 {
    let mode = match &node.value {
        Value::Int(i) => u32::try_from(*i).ok(),
        Value::Float(f) if *f >= 0.0 && *f < u32::MAX as f64 => Some(*f as u32),
        Value::Str(s) => {
            let t = s.trim();
            let t = t
                .strip_prefix("0o")
                .or_else(|| t.strip_prefix("0O"))
                .unwrap_or(t);
            u32::from_str_radix(&t.replace('_', ""), 8).ok()
        }
        _ => None,
    };
    match mode {
        Some(m) if m <= 0o7777 => m,
        _ => {
            d.error(
                path,
                Some(node),
                format!(
                    "{} is not an octal file mode such as '0644'",
                    describe(node)
                ),
            );
            0o644
        }
    }
}

/// Decodes content per `encoding` (case-insensitive): `b64`/`base64`, `gz`/`gzip`, or a
/// combination (`gz+b64` …); empty and `text/plain` mean as-is.
pub fn decode_content(raw: &[u8], encoding: &str) -> Result<Vec<u8>, String> {
    let Some((gzip, base64)) = encoding_steps(encoding) else {
        return Err(format!(
            "unknown encoding '{}' (use b64, base64, gz, gzip, gz+b64 or text/plain)",
            encoding.trim()
        ));
    };
    let mut data = raw.to_vec();
    if base64 {
        data = decode_base64_like_python(&data)
            .map_err(|e| format!("content is not valid base64: {e}"))?;
    }
    // Python's gzip reads no bytes as no content: an entry without `content` is an empty
    // file in cloud-init, whatever its encoding.
    if gzip && !data.is_empty() {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .take(MAX_DECOMPRESSED_FILE + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("content is not valid gzip: {e}"))?;
        if out.len() as u64 > MAX_DECOMPRESSED_FILE {
            return Err(format!(
                "gzip content expands beyond {MAX_DECOMPRESSED_FILE} bytes"
            ));
        }
        data = out;
    }
    Ok(data)
}
