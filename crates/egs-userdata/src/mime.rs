//! A MIME parser with the leniency of Python's `email` package, which cloud-init uses:
//! headers end at the first line that is not a header (so a missing blank line is fine),
//! a leading `From ` line is skipped, a missing close delimiter ends the last part at the
//! end of the data, delimiter lines may carry trailing blanks, parts need no filename, and
//! `base64` / `quoted-printable` bodies are decoded (a broken base64 body is kept raw).
//! Bodies are bytes throughout: nothing is lost to a text decoding.
//!
//! Bounded by nesting depth and part count. This module does no I/O.

use egs_cloudconfig::yaml::decode_base64_like_python;

/// A parsed message or part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Headers in order, names as written, folded values kept as Python keeps them.
    pub headers: Vec<(String, String)>,
    /// The content.
    pub body: Body,
}

/// A message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A single part's body, still transfer-encoded.
    Leaf(Vec<u8>),
    /// The parts of a `multipart/*` message (empty when no delimiter was found).
    Multipart(Vec<Message>),
}

/// Why a message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MimeError {
    /// `multipart/*` inside `multipart/*` deeper than allowed.
    #[error("multipart nesting is deeper than {0} levels")]
    TooDeep(usize),
    /// More parts than allowed.
    #[error("more than {0} MIME parts")]
    TooManyParts(usize),
}

/// Bounds for parsing.
#[derive(Debug, Clone, Copy)]
pub struct MimeLimits {
    /// Deepest multipart nesting.
    pub max_depth: usize,
    /// Most parts in the whole message.
    pub max_parts: usize,
}

impl Default for MimeLimits {
    fn default() -> Self {
        Self {
            max_depth: 10,
            max_parts: 1000,
        }
    }
}

/// Parses a message from bytes.
pub fn parse(data: &[u8], limits: &MimeLimits) -> Result<Message, MimeError> {
    let data = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    let mut parts = 0;
    parse_message(data, 0, limits, &mut parts)
}

fn parse_message(
    data: &[u8],
    depth: usize,
    limits: &MimeLimits,
    parts: &mut usize,
) -> Result<Message, MimeError> {
    let (headers, body) = split_headers(data);
    let mut message = Message {
        headers,
        body: Body::Leaf(Vec::new()),
    };
    if message.content_maintype() != "multipart" {
        *parts += 1;
        if *parts > limits.max_parts {
            return Err(MimeError::TooManyParts(limits.max_parts));
        }
        message.body = Body::Leaf(body.to_vec());
        return Ok(message);
    }
    if depth >= limits.max_depth {
        return Err(MimeError::TooDeep(limits.max_depth));
    }
    let Some(boundary) = message.param("content-type", "boundary") else {
        message.body = Body::Multipart(Vec::new());
        return Ok(message);
    };
    let mut subparts = Vec::new();
    for chunk in split_multipart(body, boundary.as_bytes()) {
        subparts.push(parse_message(chunk, depth + 1, limits, parts)?);
    }
    message.body = Body::Multipart(subparts);
    Ok(message)
}

/// Lines with their line endings.
fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split_inclusive(|&b| b == b'\n')
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Whether a line is a header line by Python's rule: a name of printable ASCII other than
/// `:` followed by `:`.
fn header_name(line: &[u8]) -> Option<usize> {
    let colon = line.iter().position(|&b| b == b':')?;
    (colon > 0 && line[..colon].iter().all(|&b| (0x21..=0x7e).contains(&b))).then_some(colon)
}

fn split_headers(data: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut offset = 0;
    for (index, line) in lines(data).enumerate() {
        let content = trim_eol(line);
        if content.is_empty() {
            offset += line.len();
            break;
        }
        if index == 0 && content.starts_with(b"From ") {
            offset += line.len();
            continue;
        }
        if content.starts_with(b" ") || content.starts_with(b"\t") {
            if let Some((_, value)) = headers.last_mut() {
                value.push('\n');
                value.push_str(&String::from_utf8_lossy(content));
                offset += line.len();
                continue;
            }
        }
        let Some(colon) = header_name(content) else {
            break; // not a header: the body starts here (no blank line was written)
        };
        let name = String::from_utf8_lossy(&content[..colon]).into_owned();
        let value = String::from_utf8_lossy(&content[colon + 1..])
            .trim_start_matches([' ', '\t'])
            .to_string();
        headers.push((name, value));
        offset += line.len();
    }
    (headers, &data[offset.min(data.len())..])
}

/// The bodies between delimiter lines; the line break before a delimiter belongs to it.
/// Without a close delimiter the last part runs to the end of the data, less one line
/// break (as Python's `email` parser reads it: `b"x\r\n\r\n"` ends as `b"x\r\n"`).
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let is_delimiter = |line: &[u8]| -> Option<bool> {
        let rest = trim_eol(line).strip_prefix(delimiter.as_slice())?;
        let (close, rest) = match rest.strip_prefix(b"--") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        rest.iter()
            .all(|&b| b == b' ' || b == b'\t')
            .then_some(close)
    };
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut offset = 0;
    for line in lines(body) {
        if let Some(close) = is_delimiter(line) {
            if let Some(s) = start {
                parts.push(strip_last_eol(&body[s..offset]));
            }
            if close {
                return parts;
            }
            start = Some(offset + line.len());
        }
        offset += line.len();
    }
    if let Some(s) = start {
        // Python's parser drops one line break at the end of the data as it drops the
        // one before a delimiter.
        parts.push(strip_last_eol(&body[s.min(body.len())..]));
    }
    parts
}

fn strip_last_eol(part: &[u8]) -> &[u8] {
    let part = part.strip_suffix(b"\n").unwrap_or(part);
    part.strip_suffix(b"\r").unwrap_or(part)
}

impl Message {
    /// A message with these headers and a leaf body.
    pub fn leaf(headers: Vec<(String, String)>, payload: Vec<u8>) -> Message {
        Message {
            headers,
            body: Body::Leaf(payload),
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Removes every header with this name and appends a new one (Python's
    /// `del msg[name]; msg[name] = value`, as cloud-init's `_replace_header` does).
    pub fn replace_header(&mut self, name: &str, value: String) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value));
    }

    /// `main/sub` in lower case; `text/plain` when missing or malformed (Python's rule).
    pub fn content_type(&self) -> String {
        let value = self.header("content-type").unwrap_or("");
        let ctype = value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ctype.matches('/').count() == 1 && !ctype.starts_with('/') && !ctype.ends_with('/') {
            ctype
        } else {
            "text/plain".to_string()
        }
    }

    /// The part before the `/` of [`Message::content_type`].
    pub fn content_maintype(&self) -> String {
        let ctype = self.content_type();
        ctype.split('/').next().unwrap_or("text").to_string()
    }

    /// A parameter of a header, e.g. `boundary` of `Content-Type` (quotes removed).
    pub fn param(&self, header: &str, name: &str) -> Option<String> {
        let value = self.header(header)?;
        split_params(value).into_iter().skip(1).find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| unquote(v.trim()))
        })
    }

    /// `filename` of `Content-Disposition`, else `name` of `Content-Type`.
    pub fn filename(&self) -> Option<String> {
        self.param("content-disposition", "filename")
            .or_else(|| self.param("content-type", "name"))
    }

    /// The body with its `Content-Transfer-Encoding` undone.
    pub fn decoded_payload(&self) -> Vec<u8> {
        let Body::Leaf(raw) = &self.body else {
            return Vec::new();
        };
        let cte = self
            .header("content-transfer-encoding")
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match cte.as_str() {
            "base64" => {
                let joined: Vec<u8> = raw
                    .iter()
                    .copied()
                    .filter(|b| !matches!(b, b'\r' | b'\n'))
                    .collect();
                decode_base64_like_python(&joined)
                    .or_else(|_| decode_base64_like_python(&[joined.as_slice(), b"=="].concat()))
                    .unwrap_or_else(|_| raw.clone())
            }
            "quoted-printable" => decode_quoted_printable(raw),
            _ => raw.clone(),
        }
    }

    /// The leaf parts in document order (multipart containers are not listed).
    pub fn leaves(&self) -> Vec<&Message> {
        let mut out = Vec::new();
        self.collect_leaves(&mut out);
        out
    }

    fn collect_leaves<'a>(&'a self, out: &mut Vec<&'a Message>) {
        match &self.body {
            Body::Leaf(_) => out.push(self),
            Body::Multipart(parts) => parts.iter().for_each(|p| p.collect_leaves(out)),
        }
    }
}

/// Splits `a; b="x;y"; c` on semicolons outside quotes.
fn split_params(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut escaped = false;
    for c in value.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("never empty").push(c);
    }
    out
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_string(),
    }
}

fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'=' {
            if raw[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if raw[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(data: &[u8]) -> Message {
        parse(data, &MimeLimits::default()).unwrap()
    }

    #[test]
    fn multipart_with_base64_and_filenames() {
        let m = p(b"Content-Type: multipart/mixed; boundary=\"XX\"\nMIME-Version: 1.0\n\npreamble\n--XX\nContent-Type: text/cloud-config\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"a.yaml\"\n\nI2Nsb3VkLWNvbmZpZwo=\n--XX\nContent-Type: text/x-shellscript; name=\"s.sh\"\n\n#!/bin/sh\necho hi\n--XX--\nepilogue\n");
        let leaves = m.leaves();
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0].content_type(), "text/cloud-config");
        assert_eq!(leaves[0].filename().as_deref(), Some("a.yaml"));
        assert_eq!(leaves[0].decoded_payload(), b"#cloud-config\n");
        assert_eq!(leaves[1].filename().as_deref(), Some("s.sh"));
        assert_eq!(leaves[1].decoded_payload(), b"#!/bin/sh\necho hi");
    }

    #[test]
    fn eryph_zero_shape_no_blank_lines_and_no_close() {
        let m = p(b"From nobody Fri Jan  11 07:00:00 1980\r\nContent-Type: multipart/mixed; boundary=\"==BOUNDARY==\"\r\nMIME-Version: 1.0\r\n--==BOUNDARY==\r\nContent-Type: text/cloud-config; charset=\"us-ascii\"\r\n#cloud-config\r\nhostname: x\r\n");
        let leaves = m.leaves();
        assert_eq!(leaves.len(), 1);
        assert_eq!(leaves[0].content_type(), "text/cloud-config");
        // Python's email parser (cloud-init's) drops the final line break.
        assert_eq!(leaves[0].decoded_payload(), b"#cloud-config\r\nhostname: x");
    }

    /// Issue 23 (1): every shape checked against Python 3's `email.message_from_bytes`.
    #[test]
    fn without_a_close_delimiter_the_last_part_loses_one_line_break() {
        for (input, expected) in [
            (&b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho last\n"[..], vec![&b"#!/bin/sh\necho last"[..]]),
            (b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\n\n--B\n\nlast\n\n", vec![b"x\n", b"last\n"]),
            (b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\n--B\n\n", vec![b"x", b""]),
            (b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\r\n\r\n", vec![b"x\r\n"]),
            (b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nno break", vec![b"no break"]),
        ] {
            let m = p(input);
            let payloads: Vec<Vec<u8>> = m.leaves().iter().map(|l| l.decoded_payload()).collect();
            let expected: Vec<Vec<u8>> = expected.iter().map(|e| e.to_vec()).collect();
            assert_eq!(payloads, expected, "{}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn delimiters_with_trailing_blanks_crlf_and_nesting() {
        let m = p(b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a \r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\r\ninner\r\n--b--\r\n--a\t\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--a--\r\n");
        let leaves = m.leaves();
        assert_eq!(leaves.len(), 2);
        assert_eq!(leaves[0].decoded_payload(), b"inner");
        assert_eq!(leaves[1].decoded_payload(), b"second");
    }

    #[test]
    fn quoted_printable_broken_base64_and_limits() {
        let m = p(b"Content-Transfer-Encoding: quoted-printable\n\na=3Db=\nc");
        assert_eq!(m.decoded_payload(), b"a=bc");
        let m = p(b"Content-Transfer-Encoding: base64\n\n!!!!a");
        assert_eq!(m.decoded_payload(), b"!!!!a");
        let nested: String = (0..20)
            .map(|i| format!("Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n"))
            .collect();
        assert_eq!(
            parse(nested.as_bytes(), &MimeLimits::default()),
            Err(MimeError::TooDeep(10))
        );
        let many = format!(
            "Content-Type: multipart/mixed; boundary=z\n\n{}",
            "--z\n\nx\n".repeat(1001)
        );
        assert_eq!(
            parse(many.as_bytes(), &MimeLimits::default()),
            Err(MimeError::TooManyParts(1000))
        );
    }

    #[test]
    fn replace_header_moves_it_last() {
        let mut m = p(b"Content-Type: text/plain\nA: 1\n\nx");
        m.replace_header("Content-Type", "text/cloud-config".into());
        assert_eq!(m.headers.last().unwrap().1, "text/cloud-config");
        assert_eq!(m.headers.len(), 2);
    }
}
