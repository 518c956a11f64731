//! The one way provisioning runs programs: argv only (no shell unless asked for), secrets
//! only on standard input, and a description for logs that never contains the input.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command as Process, Stdio};

/// A program to run.
#[derive(Clone, Default)]
pub struct Command {
    /// Program and arguments. Never put a secret here: argv is visible to every user.
    pub argv: Vec<String>,
    /// Standard input (may hold secrets; never logged).
    pub stdin: Option<Vec<u8>>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// What a program did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

impl Output {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// A short account of a failure for messages: status and the end of stderr.
    pub fn failure_text(&self) -> String {
        let err = String::from_utf8_lossy(&self.stderr);
        let tail: String = err
            .trim()
            .chars()
            .rev()
            .take(300)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        match self.code {
            Some(c) => format!("exit status {c}: {tail}"),
            None => format!("killed by a signal: {tail}"),
        }
    }
}

impl Command {
    /// A command from program and arguments.
    pub fn new<I, S>(argv: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Command::default()
        }
    }

    /// With secret or other input on standard input.
    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(data.into());
        self
    }

    /// With an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Command {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command line for logs: argv, and only the size of any standard input.
    pub fn describe(&self) -> String {
        let mut s = self.argv.join(" ");
        if let Some(input) = &self.stdin {
            s.push_str(&format!(" <{} bytes on stdin>", input.len()));
        }
        s
    }

    /// Runs it to completion, capturing output.
    pub fn run(&self) -> std::io::Result<Output> {
        let (program, args) = self.argv.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command")
        })?;
        let mut process = Process::new(program);
        process
            .args(args)
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            process.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            process.current_dir(dir);
        }
        let mut child = process.spawn()?;
        if let (Some(input), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // Write from a thread so a child that fills its output pipes cannot deadlock us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            code: out.status.code(),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(not(unix), ignore = "runs sh (a Linux peer)")]
    fn stdin_is_passed_but_never_described() {
        let c = Command::new(["sh", "-c", "cat; echo err >&2; exit 3"]).stdin("s3cret");
        assert_eq!(
            c.describe(),
            "sh -c cat; echo err >&2; exit 3 <6 bytes on stdin>"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        let out = c.run().unwrap();
        assert_eq!((out.code, out.stdout.as_slice()), (Some(3), &b"s3cret"[..]));
        assert_eq!(out.failure_text(), "exit status 3: err");
        assert!(Command::new(["/nonexistent/egs"]).run().is_err());
    }
}
