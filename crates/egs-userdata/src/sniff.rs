//! cloud-init's content-type detection from a payload's first characters
//! (`handlers.type_from_starts_with`): lower-cased, leading whitespace skipped, the longest
//! matching marker wins (so `#include-once` beats `#include`).

/// Markers and the content types they announce, longest first within a shared prefix.
const MARKERS: &[(&str, &str)] = &[
    ("#include-once", "text/x-include-once-url"),
    ("#include", "text/x-include-url"),
    ("#cloud-config-jsonp", "text/cloud-config-jsonp"),
    ("#cloud-config-archive", "text/cloud-config-archive"),
    ("#cloud-config", "text/cloud-config"),
    ("#cloud-boothook", "text/cloud-boothook"),
    ("#part-handler", "text/part-handler"),
    ("## template: jinja", "text/jinja2"),
    // PowerShell user-data (cloudbase-init and the original EGS) runs as a script.
    ("#ps1_sysnative", "text/x-shellscript"),
    ("#ps1", "text/x-shellscript"),
    ("#!", "text/x-shellscript"),
];

/// The content type a payload announces, or `None`.
///
/// Deliberate difference: cloud-init gives up on a payload with any byte that is not UTF-8
/// and ignores it as unmarked; we read the marker from the valid UTF-8 prefix, so a
/// `#cloud-config` with a bad byte further down is reported as such, with its position.
pub fn type_from_starts_with(payload: &[u8]) -> Option<&'static str> {
    let head = &payload[..payload.len().min(4096)];
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
    };
    let lower = text.trim_start().to_lowercase();
    MARKERS
        .iter()
        .find(|(marker, _)| lower.starts_with(marker))
        .map(|(_, ctype)| *ctype)
}

#[cfg(test)]
mod tests {
    use super::type_from_starts_with as sniff;

    #[test]
    fn markers() {
        assert_eq!(sniff(b"#cloud-config\na: 1"), Some("text/cloud-config"));
        assert_eq!(sniff(b"  \n#Cloud-Config"), Some("text/cloud-config"));
        assert_eq!(
            sniff(b"#cloud-config-archive\n"),
            Some("text/cloud-config-archive")
        );
        assert_eq!(
            sniff(b"#include-once\nhttp://x"),
            Some("text/x-include-once-url")
        );
        assert_eq!(sniff(b"#include http://x"), Some("text/x-include-url"));
        assert_eq!(sniff(b"#!/bin/sh"), Some("text/x-shellscript"));
        assert_eq!(sniff(b"## template: jinja\n"), Some("text/jinja2"));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(sniff(b"\xff\xfe#!"), None);
        assert_eq!(sniff(b"#cloud-config\nx: \xff"), Some("text/cloud-config"));
    }
}
