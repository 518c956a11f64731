//! Windows command lines and environment blocks, built as `CreateProcessW` and the
//! programs it starts read them. Starting a process on a pseudo console (ConPTY) needs
//! `CreateProcessW` itself, so the quoting std does for `Command` has to be done here.
//! Plain string work: tested on every OS.

use std::ffi::OsString;

/// The command line of `argv`: the program as `CreateProcessW` splits it (quotes, no
/// escapes), each argument as `CommandLineToArgvW` and the C runtime read it (quoted when
/// empty or when it holds whitespace or quotes; backslashes doubled only before a quote).
/// Err: a program name with a quote, which no quoting can carry.
pub fn command_line(argv: &[String]) -> Result<String, String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| "no program to start".to_string())?;
    if program.contains('"') || program.is_empty() {
        return Err(format!("{program:?}: not a program name"));
    }
    let mut line = if program.contains([' ', '\t']) {
        format!("\"{program}\"")
    } else {
        program.clone()
    };
    for arg in args {
        line.push(' ');
        quote_into(&mut line, arg);
    }
    Ok(line)
}

fn quote_into(line: &mut String, arg: &str) {
    if !arg.is_empty() && !arg.contains([' ', '\t', '\n', '\u{b}', '"']) {
        line.push_str(arg);
        return;
    }
    line.push('"');
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                // Backslashes before a quote are doubled, and the quote escaped.
                line.extend(std::iter::repeat_n('\\', backslashes * 2 + 1));
                line.push('"');
                backslashes = 0;
            }
            c => {
                line.extend(std::iter::repeat_n('\\', backslashes));
                line.push(c);
                backslashes = 0;
            }
        }
    }
    // Backslashes before the closing quote are doubled too.
    line.extend(std::iter::repeat_n('\\', backslashes * 2));
    line.push('"');
}

/// The environment block `CreateProcessW` takes with `CREATE_UNICODE_ENVIRONMENT`: `base`
/// with `extra` set over it (names compared without case, as Windows does), sorted by
/// name without case, each `NAME=value` ending in a NUL and the block in another.
/// Entries whose name is empty or holds `=` (other than the drive entries like `=C:`
/// that cmd.exe keeps) or whose value holds a NUL are left out.
pub fn environment_block(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[(String, String)],
) -> Vec<u16> {
    let mut vars: Vec<(String, String)> = base
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect();
    for (name, value) in extra {
        vars.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        vars.push((name.clone(), value.clone()));
    }
    vars.retain(|(k, v)| {
        let name_ok = !k.is_empty() && !k.chars().skip(1).any(|c| c == '=');
        name_ok && !k.contains('\0') && !v.contains('\0')
    });
    vars.sort_by_key(|(k, _)| k.to_uppercase());
    let mut block: Vec<u16> = Vec::new();
    for (k, v) in &vars {
        block.extend(format!("{k}={v}").encode_utf16());
        block.push(0);
    }
    if vars.is_empty() {
        block.push(0);
    }
    block.push(0);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(argv: &[&str]) -> String {
        command_line(&argv.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn arguments_are_quoted_as_the_c_runtime_splits_them() {
        assert_eq!(
            line(&["powershell.exe", "-NoLogo"]),
            "powershell.exe -NoLogo"
        );
        assert_eq!(
            line(&[
                r"C:\Program Files\PowerShell\7\pwsh.exe",
                "-Command",
                "Get-Date -Format o"
            ]),
            r#""C:\Program Files\PowerShell\7\pwsh.exe" -Command "Get-Date -Format o""#
        );
        assert_eq!(line(&["cmd.exe", ""]), r#"cmd.exe """#);
        assert_eq!(line(&["x", r#"say "hi""#]), r#"x "say \"hi\"""#);
        assert_eq!(line(&["x", r"C:\dir\"]), r"x C:\dir\");
        assert_eq!(line(&["x", r"C:\my dir\"]), r#"x "C:\my dir\\""#);
        assert_eq!(line(&["x", r#"a\"b c"#]), r#"x "a\\\"b c""#);
        assert_eq!(line(&["x", r"a\\b c"]), r#"x "a\\b c""#);
        assert!(command_line(&[r#"bad"name"#.to_string()]).is_err());
        assert!(command_line(&[]).is_err());
    }

    #[test]
    fn environment_blocks_merge_sort_and_terminate() {
        let base = [
            ("Path".into(), r"C:\Windows".into()),
            ("TERM".into(), "dumb".into()),
            ("=C:".into(), r"C:\".into()),
            ("bad=name".into(), "x".into()),
            ("É=x".into(), "dropped, not a panic".into()),
        ];
        let block = environment_block(base, &[("term".into(), "xterm".into())]);
        let text = String::from_utf16(&block).unwrap();
        assert_eq!(text, "=C:=C:\\\0Path=C:\\Windows\0term=xterm\0\0");
        assert_eq!(environment_block(Vec::new(), &[]), vec![0, 0]);
    }
}
