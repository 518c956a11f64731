//! Authorized client keys in OpenSSH `authorized_keys` format (`id_egs.pub`): one key per
//! line, `#` comments, optional leading options. The only option honoured is
//! `expiry-time="YYYYMMDD[HHMM[SS]]"` (UTC), as in the original EGS; a key with any other
//! option is refused rather than accepted without the restriction it asks for.

use russh::keys::PublicKey;

/// One authorized key.
#[derive(Debug, Clone)]
pub struct AuthorizedKey {
    /// The key.
    pub key: PublicKey,
    /// Not valid after this Unix time.
    pub expires: Option<i64>,
}

/// Parses `authorized_keys` text; the second value lists the lines that were refused, with
/// why (for logs).
pub fn parse(text: &str) -> (Vec<AuthorizedKey>, Vec<String>) {
    let mut keys = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(k) => keys.push(k),
            Err(e) => problems.push(format!("line {}: {e}", n + 1)),
        }
    }
    (keys, problems)
}

/// Key-type-like, as the original decides whether a line starts with options: no `=` or
/// `"`, and a known key-type prefix.
fn is_key_type(token: &str) -> bool {
    !token.contains(['=', '"'])
        && ["ssh-", "ecdsa-", "sk-", "rsa-sha2-"]
            .iter()
            .any(|p| token.starts_with(p))
}

/// Splits `opt1,opt2="a,b" keytype base64 comment` into options and the key part.
fn split_options(line: &str) -> (Vec<String>, &str) {
    if line.split_whitespace().next().is_some_and(is_key_type) {
        return (Vec::new(), line);
    }
    let (mut options, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for (i, c) in line.char_indices() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => options.push(std::mem::take(&mut current)),
            c if c.is_whitespace() && !quoted => {
                options.push(std::mem::take(&mut current));
                return (options, line[i..].trim_start());
            }
            c => current.push(c),
        }
    }
    (options, "")
}

fn parse_line(line: &str) -> Result<AuthorizedKey, String> {
    let (options, key_part) = split_options(line);
    let mut expires = None;
    for option in options.iter().filter(|o| !o.is_empty()) {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        match name.to_ascii_lowercase().as_str() {
            "expiry-time" if !option.contains('=') => {
                return Err("expiry-time without a value counts as expired; key refused".into())
            }
            "expiry-time" => expires = Some(parse_expiry(value.trim_matches('"'))?),
            other => return Err(format!("option '{other}' is not supported; key refused")),
        }
    }
    let mut parts = key_part.split_whitespace();
    let (kind, data) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let key = PublicKey::from_openssh(&format!("{kind} {data}"))
        .map_err(|e| format!("not a public key: {e}"))?;
    Ok(AuthorizedKey { key, expires })
}

/// An `expiry-time` value → Unix seconds, as the original EGS reads it: digits with an
/// optional trailing `Z` as `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS` (always UTC), or
/// ISO-8601/RFC 3339 (`2026-06-02`, `2026-06-02T14:30[:00[.5]][Z|+02:00]`; no offset = UTC).
/// Anything else is an error, so the key is refused (fail closed).
fn parse_expiry(v: &str) -> Result<i64, String> {
    let bad =
        || format!("expiry-time '{v}' is neither YYYYMMDD[HHMM[SS]][Z] nor ISO-8601; key refused");
    let compact = v.strip_suffix('Z').unwrap_or(v);
    if compact.bytes().all(|b| b.is_ascii_digit()) {
        if ![8, 12, 14].contains(&compact.len()) {
            return Err(bad());
        }
        let n = |a: usize, b: usize| compact.get(a..b).map_or(0, |s| s.parse().unwrap_or(-1));
        return civil_seconds(n(0, 4), n(4, 6), n(6, 8), n(8, 10), n(10, 12), n(12, 14), 0)
            .ok_or_else(bad);
    }
    parse_iso8601(v).ok_or_else(bad)
}

/// `YYYY-MM-DD[THH:MM[:SS[.frac]][Z|±HH:MM|±HHMM]]`.
fn parse_iso8601(v: &str) -> Option<i64> {
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (date, time) = match v.split_once(['T', 't', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || m.len() != 2 || day.len() != 2 {
        return None;
    }
    let (y, m, day) = (num(y)?, num(m)?, num(day)?);
    let Some(time) = time else {
        return civil_seconds(y, m, day, 0, 0, 0, 0);
    };
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let o = o[1..].replace(':', "");
        if o.len() != 4 {
            return None;
        }
        let (oh, om) = (num(&o[..2])?, num(&o[2..])?);
        if oh > 23 || om > 59 {
            return None;
        }
        (c, sign * (oh * 3600 + om * 60))
    } else {
        (time, 0)
    };
    let clock = clock.split_once('.').map_or(
        clock,
        |(c, frac)| {
            if num(frac).is_some() {
                c
            } else {
                "bad"
            }
        },
    );
    let mut parts = clock.split(':');
    let (hh, mm) = (parts.next()?, parts.next()?);
    let ss = parts.next().unwrap_or("00");
    if parts.next().is_some() || hh.len() != 2 || mm.len() != 2 || ss.len() != 2 {
        return None;
    }
    civil_seconds(y, m, day, num(hh)?, num(mm)?, num(ss)?, offset)
}

/// A UTC civil time (minus `offset` seconds) → Unix seconds; `None` when out of range.
fn civil_seconds(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64, offset: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > month_days[(m - 1) as usize]
        || !(0..=23).contains(&hh)
        || !(0..=59).contains(&mm)
        || !(0..=59).contains(&ss)
    {
        return None;
    }
    // Days from civil (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

impl AuthorizedKey {
    /// Whether this entry authorizes `key` at Unix time `now`.
    pub fn allows(&self, key: &PublicKey, now: i64) -> bool {
        self.key.key_data() == key.key_data() && self.expires.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    #[test]
    fn keys_options_and_expiry() {
        let text = format!("# comment\n{ED} me@host\nexpiry-time=\"20300101\" {ED}\nexpiry-time=\"20200101\",from=\"x\" {ED}\ncommand=\"x\" {ED}\nnot a key\n");
        let (keys, problems) = parse(&text);
        assert_eq!(keys.len(), 2);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("option 'from'"));
        assert_eq!(keys[1].expires, Some(1_893_456_000));
        assert!(keys[1].allows(&keys[0].key, 1_800_000_000));
        assert!(!keys[1].allows(&keys[0].key, 1_900_000_000));
        assert_eq!(parse_expiry("20240229123045").unwrap(), 1_709_209_845);
        assert!(parse_expiry("2024").is_err());
    }

    #[test]
    fn expiry_formats_of_the_original() {
        let at = |v: &str| parse_expiry(v);
        assert_eq!(at("20240229123045Z"), Ok(1_709_209_845));
        assert_eq!(at("202402291230"), Ok(1_709_209_800));
        assert_eq!(at("2024-02-29T12:30:45Z"), Ok(1_709_209_845));
        assert_eq!(
            at("2024-02-29T12:30:45"),
            Ok(1_709_209_845),
            "no offset = UTC"
        );
        assert_eq!(at("2024-02-29T14:30:45+02:00"), Ok(1_709_209_845));
        assert_eq!(at("2024-02-29T10:30:45.250-0200"), Ok(1_709_209_845));
        assert_eq!(at("2024-02-29T12:30Z"), Ok(1_709_209_800));
        assert_eq!(at("2024-02-29"), Ok(1_709_164_800));
        for bad in [
            "20260602T143000Z",
            "2023-02-29",
            "20230229",
            "2024-02-29T24:00:00Z",
            "2024-2-29",
            "tomorrow",
            "",
            "2024-02-29T12:30:45+2",
        ] {
            assert!(at(bad).is_err(), "{bad}");
        }
        let (keys, problems) = parse(&format!("expiry-time {ED}\nexpiry-time=\"soon\" {ED}\n"));
        assert!(keys.is_empty());
        assert!(problems[0].contains("without a value"), "{problems:?}");
        assert!(problems[1].contains("'soon'"), "{problems:?}");
    }
}
