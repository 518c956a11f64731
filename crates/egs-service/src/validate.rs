//! `egs-service validate`: runs the user-data pipeline and the cloud-config checks and
//! reports the result for people (one problem per line, with where it is) or as JSON.

use std::path::Path;
use std::process::ExitCode;

use egs_cloudconfig::json::to_json;
use egs_cloudconfig::schema::{portability, CloudConfig, Diagnostic, Severity, Target};
use egs_userdata::fetch::UrlFetcher;
use egs_userdata::pipeline::{process, Limits, UserData};
use serde_json::json;
use serde_json::value::RawValue;

const VALID: u8 = 0;
const REJECTED: u8 = 1;
const UNREADABLE: u8 = 2;

/// Runs the command and returns its exit status.
pub fn run(
    user_data: &Path,
    vendor_data: Option<&Path>,
    target: Target,
    as_json: bool,
) -> ExitCode {
    let limits = Limits::default();
    let read = |path: &Path| -> Result<Vec<u8>, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if meta.len() > limits.max_input as u64 {
            return Err(format!(
                "{}: {} bytes is more than the limit of {} bytes",
                path.display(),
                meta.len(),
                limits.max_input
            ));
        }
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let inputs = read(user_data).and_then(|u| vendor_data.map(read).transpose().map(|v| (u, v)));
    let (user, vendor) = match inputs {
        Ok(x) => x,
        Err(e) => {
            eprintln!("egs-service validate: {e}");
            return ExitCode::from(UNREADABLE);
        }
    };
    let report = match process(&user, vendor.as_deref(), &UrlFetcher::default(), &limits) {
        Ok(resolved) => Report::from_resolved(resolved, target),
        Err(e) => Report::failed(e.to_string()),
    };
    if as_json {
        println!("{}", report.to_json());
    } else {
        report.print();
    }
    ExitCode::from(if report.valid() { VALID } else { REJECTED })
}

struct Finding {
    severity: Severity,
    path: String,
    source: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    message: String,
}

struct Report {
    resolved: Option<UserData>,
    findings: Vec<Finding>,
}

impl Report {
    fn failed(message: String) -> Report {
        Report {
            resolved: None,
            findings: vec![Finding {
                severity: Severity::Error,
                path: String::new(),
                source: None,
                line: None,
                column: None,
                message,
            }],
        }
    }

    fn from_resolved(resolved: UserData, target: Target) -> Report {
        let (_, schema) = CloudConfig::from_node(&resolved.config);
        let portable = resolved
            .config
            .as_map()
            .map(|m| portability(m, target).items)
            .unwrap_or_default();
        let findings = resolved
            .diagnostics
            .items
            .iter()
            .chain(&schema.items)
            .chain(&portable)
            .map(|d| Self::finding(&resolved, d))
            .collect();
        Report {
            resolved: Some(resolved),
            findings,
        }
    }

    fn finding(resolved: &UserData, d: &Diagnostic) -> Finding {
        let at = d.origin;
        Finding {
            severity: d.severity,
            path: d.path.clone(),
            source: at.and_then(|o| resolved.source_label(&o)),
            line: at.map(|o| o.line).filter(|&l| l > 0),
            column: at.map(|o| o.column).filter(|&c| c > 0),
            message: d.message.clone(),
        }
    }

    fn valid(&self) -> bool {
        !self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    fn print(&self) {
        for f in &self.findings {
            let level = if f.severity == Severity::Error {
                "error"
            } else {
                "warning"
            };
            let text = egs_userdata::pipeline::describe_finding(
                f.source.as_deref(),
                f.line,
                f.column,
                &f.path,
                &f.message,
            );
            println!("{level}: {text}");
        }
        match (&self.resolved, self.valid()) {
            (Some(r), true) => println!(
                "valid: {} part(s); cloud-config merged from {}",
                r.parts.len(),
                if r.merged_from.is_empty() {
                    "nothing".to_string()
                } else {
                    r.merged_from.join(", ")
                }
            ),
            _ => println!("rejected"),
        }
    }

    fn to_json(&self) -> String {
        let list = |severity: Severity| -> Vec<serde_json::Value> {
            self.findings
                .iter()
                .filter(|f| f.severity == severity)
                .map(|f| {
                    json!({
                        "path": f.path,
                        "source": f.source,
                        "line": f.line,
                        "column": f.column,
                        "message": f.message,
                    })
                })
                .collect()
        };
        let config = self.resolved.as_ref().map(|r| {
            RawValue::from_string(to_json(&r.config)).expect("our JSON writer emits valid JSON")
        });
        let parts: Vec<serde_json::Value> = self
            .resolved
            .iter()
            .flat_map(|r| &r.parts)
            .map(|p| {
                json!({
                    "content_type": p.content_type,
                    "filename": p.filename,
                    "kind": p.kind().name(),
                    "sha256": p.sha256(),
                    "source": p.origin,
                })
            })
            .collect();
        json!({
            "valid": self.valid(),
            "errors": list(Severity::Error),
            "warnings": list(Severity::Warning),
            "config": config,
            "parts": parts,
            "includes": self.resolved.as_ref().map(|r| r.includes.clone()).unwrap_or_default(),
        })
        .to_string()
    }
}
