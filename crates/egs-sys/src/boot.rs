//! When this boot started, which names the boot in KVP event keys (cloud-init's
//! "incarnation": `int(time.time() - uptime)`).

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

#[cfg(target_os = "linux")]
mod imp {
    use std::io;

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

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::io;

    pub fn uptime_seconds() -> io::Result<f64> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "uptime is not implemented on this platform yet",
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg_attr(not(unix), ignore = "the boot time on Windows is not built yet")]
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
}
