//! Time zone names on Windows: cloud-config gives IANA names (`Europe/Berlin`), Windows
//! sets Windows ids (`W. Europe Standard Time`, with `tzutil /s`). The mapping is the one
//! Windows itself ships, ICU's `ucal_getWindowsTimeZoneID` in `icu.dll` (Windows 10 1903
//! and later), loaded when needed so older systems still start. Elsewhere: `Unsupported`.

use std::io;

/// Whether `zone` is an IANA name (`Area/City`, `UTC`, `Etc/…`) rather than a Windows id.
pub fn is_iana(zone: &str) -> bool {
    zone.contains('/') || matches!(zone, "UTC" | "GMT" | "Zulu" | "UCT" | "Universal")
}

/// The Windows id of the IANA zone `iana`.
pub fn windows_id(iana: &str) -> io::Result<String> {
    imp::windows_id(iana)
}

#[cfg(not(windows))]
mod imp {
    use std::io;

    pub fn windows_id(_iana: &str) -> io::Result<String> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "Windows time zone ids exist only on Windows",
        ))
    }
}

#[cfg(windows)]
mod imp {
    use std::io;
    use windows_sys::Win32::System::LibraryLoader::{GetProcAddress, LoadLibraryW};

    type GetWindowsId = unsafe extern "C" fn(*const u16, i32, *mut u16, i32, *mut i32) -> i32;

    pub fn windows_id(iana: &str) -> io::Result<String> {
        let library: Vec<u16> = "icu.dll".encode_utf16().chain(std::iter::once(0)).collect();
        // SAFETY: a NUL-terminated name; the module stays loaded for the process.
        let module = unsafe { LoadLibraryW(library.as_ptr()) };
        if module.is_null() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "icu.dll is missing (Windows 10 1903 or later maps IANA time zones): give a Windows time zone id",
            ));
        }
        // SAFETY: a NUL-terminated ASCII name in a loaded module.
        let Some(function) =
            (unsafe { GetProcAddress(module, c"ucal_getWindowsTimeZoneID".as_ptr() as *const u8) })
        else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "icu.dll has no ucal_getWindowsTimeZoneID",
            ));
        };
        // SAFETY: the documented signature of ucal_getWindowsTimeZoneID.
        let function: GetWindowsId = unsafe { std::mem::transmute(function) };
        let id: Vec<u16> = iana.encode_utf16().collect();
        let mut out = [0u16; 128];
        let mut status = 0i32;
        // SAFETY: lengths passed with both buffers.
        let len = unsafe {
            function(
                id.as_ptr(),
                id.len() as i32,
                out.as_mut_ptr(),
                out.len() as i32,
                &mut status,
            )
        };
        if status > 0 || len <= 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("unknown time zone '{iana}'"),
            ));
        }
        Ok(String::from_utf16_lossy(&out[..len as usize]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iana_names_and_windows_ids_are_told_apart() {
        assert!(is_iana("Europe/Berlin"));
        assert!(is_iana("America/Argentina/Buenos_Aires"));
        assert!(is_iana("UTC"));
        assert!(!is_iana("W. Europe Standard Time"));
        assert!(!is_iana("UTC-11"));
        match windows_id("Europe/Berlin") {
            Ok(id) => assert_eq!(id, "W. Europe Standard Time"),
            // Off Windows, and on Windows without ICU (before 10 1903; Wine 8).
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
        }
    }
}
