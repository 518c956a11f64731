//! Which boot this is: when it started, which names the boot in KVP event keys
//! (cloud-init's "incarnation": `int(time.time() - uptime)`), and the kernel's boot id,
//! which per-boot semaphores are keyed by.

use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch at which the machine booted.
pub fn boot_epoch_seconds() -> io::Result<i64> {
    let uptime = imp::uptime_seconds()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| io::Error::other(e.to_string()))?
        .as_secs_f64();
    Ok((now - uptime) as i64)
}

/// An id that differs for every boot (Linux: `/proc/sys/kernel/random/boot_id`; Windows:
/// the last boot time from WMI, as the original).
pub fn boot_id() -> io::Result<String> {
    imp::boot_id()
}

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

    pub fn boot_id() -> io::Result<String> {
        Ok(std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
            .trim()
            .to_string())
    }

    pub fn uptime_seconds() -> io::Result<f64> {
        let text = std::fs::read_to_string("/proc/uptime")?;
        text.split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("/proc/uptime: unexpected content '{}'", text.trim()),
                )
            })
    }
}

#[cfg(windows)]
mod imp {
    use std::io;

    pub fn uptime_seconds() -> io::Result<f64> {
        // SAFETY: GetTickCount64 has no preconditions.
        let millis = unsafe { windows_sys::Win32::System::SystemInformation::GetTickCount64() };
        Ok(millis as f64 / 1000.0)
    }

    /// `Win32_OperatingSystem.LastBootUpTime` as WMI gives it (a CIM datetime), as the
    /// original identifies a boot: the same for the whole boot, new with the next.
    pub fn boot_id() -> io::Result<String> {
        crate::wmi::system_text("Win32_OperatingSystem", "LastBootUpTime")?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "Win32_OperatingSystem has no LastBootUpTime",
            )
        })
    }
}

#[cfg(not(any(target_os = "linux", windows)))]
mod imp {
    use std::io;

    fn unsupported() -> io::Error {
        io::Error::new(
            io::ErrorKind::Unsupported,
            "the boot time is not implemented on this platform yet",
        )
    }

    pub fn uptime_seconds() -> io::Result<f64> {
        Err(unsupported())
    }

    pub fn boot_id() -> io::Result<String> {
        Err(unsupported())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn boot_time_is_in_the_past_and_stable() {
        let a = super::boot_epoch_seconds().unwrap();
        let b = super::boot_epoch_seconds().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert!(a > 1_500_000_000 && a <= now);
        assert!((a - b).abs() <= 1);
    }

    #[test]
    fn boot_id_is_stable_within_a_boot() {
        let id = super::boot_id().unwrap();
        assert!(!id.is_empty());
        assert_eq!(super::boot_id().unwrap(), id);
    }
}
