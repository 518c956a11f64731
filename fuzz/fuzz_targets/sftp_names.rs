//! SFTP names as a client sends them, mapped to local paths in both styles: never a panic;
//! on Windows a name maps to the drive list or to a plain path on a drive (`X:\…`) with no
//! `.`/`..` component and no second colon, and back to a name that maps to
//! the same path. Also the client identification reader on arbitrary bytes.
#![no_main]

use std::path::Path;

use egs_ssh::quirks::Identification;
use egs_ssh::sftp::paths::{to_local, to_name, Local, Style};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut identification = Identification::default();
    for chunk in data.chunks(7) {
        identification.observe(chunk);
    }
    let _ = identification.is_paramiko();

    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let _ = to_local(Style::Unix, Path::new("/root"), name);
    let home = Path::new(r"C:\Windows\system32\config\systemprofile");
    let Ok(Local::Path(path)) = to_local(Style::Windows, home, name) else {
        return;
    };
    let text = path.to_string_lossy();
    let bytes = text.as_bytes();
    assert!(
        bytes.len() >= 3 && bytes[0].is_ascii_uppercase() && &bytes[1..3] == br":\",
        "{text}"
    );
    let rest = &text[3..];
    assert!(!rest.contains(':') && !rest.contains('/'), "{text}");
    for part in rest.split('\\').filter(|p| !p.is_empty()) {
        assert!(part != "." && part != "..", "{text}");
    }
    let again = to_local(Style::Windows, home, &to_name(Style::Windows, &path));
    assert_eq!(again, Ok(Local::Path(path.clone())), "{text}");
});
