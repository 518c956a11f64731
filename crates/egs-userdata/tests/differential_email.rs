//! Our MIME parser against Python's `email.message_from_bytes` — the parser cloud-init
//! reads user-data with — on shapes where a lenient parser has to choose: a missing close
//! delimiter (issue 23: the last part loses one line break), CRLF and LF, blank lines before
//! and after delimiters, delimiters with trailing blanks, text after the close delimiter,
//! an empty last part, nesting, and a part without headers. Each case's leaf payloads
//! (decoded) and content types must be Python's.
//!
//! Linux only: the system's `python3` is the oracle (Debian's, which cloud-init uses).
#![cfg(unix)]

use std::io::Write;
use std::process::{Command, Stdio};

use egs_userdata::mime::{parse, MimeLimits};

const CASES: &[&[u8]] = &[
    b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho last\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\n\n--B\n\nlast\n\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\n--B\n\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nx\r\n\r\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\nno break",
    b"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\none\r\n--B\r\nContent-Type: text/cloud-config\r\n\r\n#cloud-config\r\na: 1\r\n--B--\r\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\n\none\n--B--\ntrailing text\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\npreamble\n--B \t\n\none\n\n--B--",
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n--b--\n--a\nContent-Type: text/plain\n\nsecond\n",
    b"Content-Type: multipart/mixed; boundary=a\n\n--a\nContent-Type: multipart/alternative; boundary=b\n\n--b\n\ninner\n",
    b"Content-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Transfer-Encoding: base64\n\nIyEvYmluL3NoCmVjaG8gaGkK\n",
    b"From nobody Fri Jan  11 07:00:00 1980\r\nContent-Type: multipart/mixed; boundary=\"==B==\"\r\nMIME-Version: 1.0\r\n--==B==\r\nContent-Type: text/cloud-config\r\n#cloud-config\r\nhostname: x\r\n",
];

const ORACLE: &str = r#"
import email, json, sys
out = []
for raw in json.load(sys.stdin):
    m = email.message_from_bytes(bytes.fromhex(raw))
    out.append([[p.get_content_type(), (p.get_payload(decode=True) or b"").hex()]
                for p in m.walk() if not p.is_multipart()])
print(json.dumps(out))
"#;

#[test]
fn leaves_are_what_pythons_email_parser_finds() {
    let input: Vec<String> = CASES.iter().map(|c| hex(c)).collect();
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (cloud-init's Python) is the oracle");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let expected: Vec<Vec<(String, String)>> = serde_json::from_slice(&output.stdout).unwrap();
    for (case, python) in CASES.iter().zip(expected) {
        let ours: Vec<(String, String)> = parse(case, &MimeLimits::default())
            .unwrap()
            .leaves()
            .iter()
            .map(|leaf| (leaf.content_type(), hex(&leaf.decoded_payload())))
            .collect();
        assert_eq!(ours, python, "{}", String::from_utf8_lossy(case));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
