//! Where `egs-service` logs: `tracing` events (the SSH audit trail, daemon and provisioning
//! events) and `log` records of the libraries (russh, ureq, fatfs) as lines on standard
//! error — which systemd puts into the journal (`journalctl -u eryph-guest-services`). Under
//! systemd (`JOURNAL_STREAM` set) lines carry no timestamp or colours: the journal has its
//! own. A Windows service has no console: its lines go to
//! `%ProgramData%\eryph\guest-services\logs\egs-service.log` instead. Messages never carry
//! secrets: keys are logged by fingerprint, commands not at all.

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

/// Installs the subscriber once, at `level`, appending to `egs-service.log` in `dir`
/// (created); standard error if the file cannot be opened.
pub fn init_file(level: Level, dir: &std::path::Path) {
    let file = std::fs::create_dir_all(dir).and_then(|()| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("egs-service.log"))
    });
    let Ok(file) = file else {
        return init(level);
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::from(level))
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .try_init();
}
