//! Where `egs-service` logs: `tracing` events (the SSH audit trail, daemon and provisioning
//! events) and `log` records of the libraries (russh, ureq, fatfs) as lines on standard
//! error — which systemd puts into the journal (`journalctl -u eryph-guest-services`). Under
//! systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colours: the journal has its
//! own. A Windows service has no console: its lines go to
//! `%ProgramData%\eryph\guest-services\logs\egs-service.log` and, one event each, to the
//! Windows Event Log (Application, source `egs-service`). Messages never carry secrets: keys
//! are logged by fingerprint, commands not at all.

use std::io::Write;
use std::sync::Arc;

use egs_sys::eventlog::{EventSource, Severity};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use tracing_subscriber::filter::LevelFilter;

/// `--log-level`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Level {
    /// Errors only.
    Error,
    /// Refusals and problems.
    Warn,
    /// Connections, logins, sessions, forwarding, provisioning stages and modules.
    Info,
    /// More detail (key offers, library internals).
    Debug,
    /// Everything.
    Trace,
}

impl From<Level> for LevelFilter {
    fn from(level: Level) -> LevelFilter {
        match level {
            Level::Error => LevelFilter::ERROR,
            Level::Warn => LevelFilter::WARN,
            Level::Info => LevelFilter::INFO,
            Level::Debug => LevelFilter::DEBUG,
            Level::Trace => LevelFilter::TRACE,
        }
    }
}

/// Installs the subscriber (and the bridge for `log` records) once, at `level`, writing
/// to standard error.
pub fn init(level: Level) {
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::from(level))
        .with_writer(std::io::stderr)
        .with_ansi(!under_journal && std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if under_journal {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// Installs the subscriber of a Windows service once, at `level`: lines appended to
/// `egs-service.log` in `dir` (created; standard error if it cannot be opened) and events
/// in the Event Log (when the source can be opened).
pub fn init_service(level: Level, dir: &std::path::Path) {
    let file = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("egs-service.log"))
    });
    let Ok(file) = file else {
        return init(level);
    };
    let file_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false);
    let event_layer = EventSource::open(egs_sys::eventlog::SOURCE)
        .ok()
        .map(|source| {
            tracing_subscriber::fmt::layer()
                .with_writer(EventLog(Arc::new(source)))
                .with_ansi(false)
                .without_time()
        });
    let _ = tracing_subscriber::registry()
        .with(LevelFilter::from(level))
        .with(file_layer)
        .with(event_layer)
        .try_init();
}

/// Writes each formatted line as one Event Log event, its severity from the level.
struct EventLog(Arc<EventSource>);

/// One event's text, reported when the formatter is done with it.
struct EventLine {
    source: Arc<EventSource>,
    severity: Severity,
    text: Vec<u8>,
}

impl<'a> MakeWriter<'a> for EventLog {
    type Writer = EventLine;

    fn make_writer(&'a self) -> EventLine {
        EventLine {
            source: self.0.clone(),
            severity: Severity::Information,
            text: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> EventLine {
        let severity = match *meta.level() {
            tracing::Level::ERROR => Severity::Error,
            tracing::Level::WARN => Severity::Warning,
            _ => Severity::Information,
        };
        let mut line = self.make_writer();
        line.severity = severity;
        line
    }
}

impl Write for EventLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        if !text.trim().is_empty() {
            let _ = self.source.report(self.severity, text.trim_end());
        }
    }
}
