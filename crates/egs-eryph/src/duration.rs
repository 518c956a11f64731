//! `--ttl` durations as the original reads them (`original-remote-access.md` §5.5):
//! `<n>d`, `<n>h`, `<n>m`, `<n>s` in that order, each optional, case-insensitive, at least
//! one and more than zero in total; and the forms the API gets (an ISO 8601 duration as
//! .NET's `XmlConvert` writes it, a round-trip UTC timestamp).

/// The message for a duration that cannot be read.
fn invalid(text: &str) -> String {
    format!("Invalid --ttl '{text}'. Use a duration such as 8h, 30m or 1d12h.")
}

/// Seconds in `text`.
pub fn parse(text: &str) -> Result<u64, String> {
    let mut rest = text.trim().to_ascii_lowercase();
    let mut total: u64 = 0;
    let mut seen_any = false;
    for (unit, seconds) in [('d', 86_400u64), ('h', 3_600), ('m', 60), ('s', 1)] {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 || !rest[digits..].starts_with(unit) {
            continue;
        }
        let n: u64 = rest[..digits].parse().map_err(|_| invalid(text))?;
        total = n
            .checked_mul(seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| invalid(text))?;
        rest = rest[digits + 1..].to_string();
        seen_any = true;
    }
    if !seen_any || !rest.is_empty() || total == 0 {
        return Err(invalid(text));
    }
    Ok(total)
}

/// `XmlConvert.ToString(TimeSpan)`: `PT8H`, `P1DT12H`, `PT30M`, `P1D`.
pub fn iso8601(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    let mut out = String::from("P");
    if d > 0 {
        out.push_str(&format!("{d}D"));
    }
    if h > 0 || m > 0 || s > 0 {
        out.push('T');
        for (n, unit) in [(h, 'H'), (m, 'M'), (s, 'S')] {
            if n > 0 {
                out.push_str(&format!("{n}{unit}"));
            }
        }
    }
    out
}

/// (year, month, day, hour, minute, second) of a Unix time, UTC.
fn civil(unix: u64) -> (i64, u32, u32, u64, u64, u64) {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// .NET's round-trip form of a UTC time: `2026-12-02T18:00:00.0000000Z`.
pub fn round_trip(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.0000000Z")
}

/// What `add-key` prints: `2026-12-02 18:00:00Z`.
pub fn display(unix: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(unix);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_the_original_reads_them() {
        for (text, seconds) in [
            ("8h", 28_800),
            ("30m", 1_800),
            ("1d12h", 129_600),
            (" 1D2H3M4S ", 93_784),
            ("1s", 1),
        ] {
            assert_eq!(parse(text), Ok(seconds), "{text}");
        }
        for bad in [
            "",
            "8",
            "8h30",
            "30m8h",
            "0h",
            "h",
            "1x",
            "99999999999999999999d",
            "1d 2h",
        ] {
            assert_eq!(
                parse(bad),
                Err(format!(
                    "Invalid --ttl '{bad}'. Use a duration such as 8h, 30m or 1d12h."
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn api_forms() {
        assert_eq!(iso8601(28_800), "PT8H");
        assert_eq!(iso8601(129_600), "P1DT12H");
        assert_eq!(iso8601(86_400), "P1D");
        assert_eq!(iso8601(93_784), "P1DT2H3M4S");
        // 2026-12-02 18:00:00 UTC
        assert_eq!(round_trip(1_796_234_400), "2026-12-02T18:00:00.0000000Z");
        assert_eq!(display(1_796_234_400), "2026-12-02 18:00:00Z");
        assert_eq!(display(951_782_400), "2000-02-29 00:00:00Z");
    }
}
