//! The Windows Event Log, where a Windows service's events belong (Event Viewer,
//! Application log, source `egs-service`). [`register_source`] tells Windows how to show
//! the source's events (the generic message file `EventCreate.exe`, whose event 1 shows
//! its one string as is); [`EventSource`] writes them. Linux has the journal instead: there
//! both are errors that say so.

pub use imp::{register_source, unregister_source, EventSource};

/// The source's name, as `install-service` registers it.
pub const SOURCE: &str = "egs-service";

/// How bad an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Something failed.
    Error,
    /// A refusal or a problem.
    Warning,
    /// What happened.
    Information,
}

/// The registry key (below `HKLM`) of an Application-log source.
pub fn source_key(source: &str) -> String {
    format!(r"SYSTEM\CurrentControlSet\Services\EventLog\Application\{source}")
}

#[cfg(windows)]
mod imp {
    use super::*;
    use std::io;

    use windows_sys::Win32::Foundation::HANDLE;
    use windows_sys::Win32::System::EventLog::{
        DeregisterEventSource, RegisterEventSourceW, ReportEventW, EVENTLOG_ERROR_TYPE,
        EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
    };

    fn wide(text: &str) -> Vec<u16> {
        text.encode_utf16().chain(std::iter::once(0)).collect()
    }

    /// Registers `source` in the Application log with the generic message file.
    pub fn register_source(source: &str) -> io::Result<()> {
        let windows = std::env::var("SystemRoot").unwrap_or_else(|_| r"C:\Windows".into());
        let messages = format!(r"{windows}\System32\EventCreate.exe");
        crate::registry::set_string(&source_key(source), "EventMessageFile", &messages)
    }

    /// Removes the registration of `source`.
    pub fn unregister_source(source: &str) -> io::Result<()> {
        crate::registry::delete_tree(&source_key(source))
    }

    /// A handle for writing events as a source.
    pub struct EventSource(HANDLE);

    // SAFETY: an event-log handle may be used from any thread (ReportEvent is thread-safe).
    unsafe impl Send for EventSource {}
    // SAFETY: as above.
    unsafe impl Sync for EventSource {}

    impl EventSource {
        /// Opens `source` on this computer.
        pub fn open(source: &str) -> io::Result<EventSource> {
            let name = wide(source);
            // SAFETY: `name` is NUL-terminated; null means the local computer.
            let handle = unsafe { RegisterEventSourceW(std::ptr::null(), name.as_ptr()) };
            if handle.is_null() {
                return Err(io::Error::last_os_error());
            }
            Ok(EventSource(handle))
        }

        /// Writes one event: `text` as event 1 of the generic message file.
        pub fn report(&self, severity: Severity, text: &str) -> io::Result<()> {
            let kind = match severity {
                Severity::Error => EVENTLOG_ERROR_TYPE,
                Severity::Warning => EVENTLOG_WARNING_TYPE,
                Severity::Information => EVENTLOG_INFORMATION_TYPE,
            };
            // The Event Log takes at most 31,839 characters per string.
            let text: String = text.chars().take(31_000).collect();
            let text = wide(&text);
            let strings = [text.as_ptr()];
            // SAFETY: one NUL-terminated string, its pointer in `strings`; no raw data.
            let reported = unsafe {
                ReportEventW(
                    self.0,
                    kind,
                    0,
                    1,
                    std::ptr::null_mut(),
                    1,
                    0,
                    strings.as_ptr(),
                    std::ptr::null(),
                )
            };
            if reported == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    impl Drop for EventSource {
        fn drop(&mut self) {
            // SAFETY: the handle came from RegisterEventSourceW and is closed once.
            unsafe { DeregisterEventSource(self.0) };
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_source_is_registered_written_to_and_removed() {
            let source = "egs-service-test";
            register_source(source).unwrap();
            let values = crate::registry::read_strings(&source_key(source)).unwrap();
            assert!(
                values
                    .iter()
                    .any(|(k, v)| k == "EventMessageFile"
                        && v.ends_with(r"\System32\EventCreate.exe"))
            );
            let log = EventSource::open(source).unwrap();
            log.report(Severity::Information, "egs-service: a test event")
                .unwrap();
            log.report(Severity::Warning, &"x".repeat(40_000)).unwrap();
            unregister_source(source).unwrap();
            // (Reading opens the key with create rights: it comes back empty.)
            let left = crate::registry::read_strings(&source_key(source)).unwrap();
            assert!(left.is_empty(), "{left:?}");
            unregister_source(source).unwrap();
        }
    }
}

#[cfg(not(windows))]
mod imp {
    use super::*;
    use std::io;

    fn not_here() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the Event Log is Windows'; on Linux the daemon logs to the journal",
        )
    }

    /// Windows only.
    pub fn register_source(_source: &str) -> io::Result<()> {
        Err(not_here())
    }

    /// Windows only.
    pub fn unregister_source(_source: &str) -> io::Result<()> {
        Err(not_here())
    }

    /// No Event Log here.
    pub struct EventSource(());

    impl EventSource {
        /// Always an error on Linux.
        pub fn open(_source: &str) -> io::Result<EventSource> {
            Err(not_here())
        }

        /// Never reached.
        pub fn report(&self, _severity: Severity, _text: &str) -> io::Result<()> {
            Err(not_here())
        }
    }
}

#[cfg(test)]
#[test]
fn the_source_key_is_in_the_application_log() {
    assert_eq!(
        source_key(SOURCE),
        r"SYSTEM\CurrentControlSet\Services\EventLog\Application\egs-service"
    );
}
