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

fn is_key_type(token: &str) -> bool {
    token.starts_with("ssh-") || token.starts_with("ecdsa-sha2-") || token.starts_with("sk-")
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

/// `YYYYMMDD[HHMM[SS]]` in UTC → Unix seconds.
fn parse_expiry(v: &str) -> Result<i64, String> {
    let bad = || format!("expiry-time '{v}' is not YYYYMMDD[HHMM[SS]]");
    if !(v.len() == 8 || v.len() == 12 || v.len() == 14) || !v.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |a: usize, b: usize| v[a..b].parse::<i64>().map_err(|_| bad());
    let (y, m, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (hh, mm, ss) = (
        if v.len() >= 12 { n(8, 10)? } else { 0 },
        if v.len() >= 12 { n(10, 12)? } else { 0 },
        if v.len() == 14 { n(12, 14)? } else { 0 },
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return Err(bad());
    }
    // Days from civil (proleptic Gregorian).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Ok(days * 86_400 + hh * 3600 + mm * 60 + ss)
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
}
