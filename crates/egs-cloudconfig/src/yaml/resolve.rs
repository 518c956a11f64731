//! PyYAML's YAML 1.1 implicit resolvers and SafeConstructor scalar constructors.
//!
//! The patterns are PyYAML's own (`resolver.py`), so that `0644` is 420, `yes` is true,
//! `1:30` is 90 and `1e5` stays a string, exactly as cloud-init sees them.

use std::sync::LazyLock;

use num_bigint::BigInt;
use num_traits::{Num, ToPrimitive};
use regex::Regex;

use crate::value::{Date, DateTime, Value};

/// The tags of PyYAML's SafeConstructor (plus `merge` and `value`, which only resolve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CoreTag {
    Null,
    Bool,
    Int,
    Float,
    Binary,
    Timestamp,
    Omap,
    Pairs,
    Set,
    Str,
    Seq,
    Map,
    /// `<<`: only meaningful as a mapping key.
    Merge,
    /// `=`: PyYAML resolves it but has no constructor for it.
    Value,
}

const CORE_PREFIX: &str = "tag:yaml.org,2002:";

impl CoreTag {
    /// The core tag for a full tag name, if it is one.
    pub(crate) fn from_full(tag: &str) -> Option<CoreTag> {
        Some(match tag.strip_prefix(CORE_PREFIX)? {
            "null" => CoreTag::Null,
            "bool" => CoreTag::Bool,
            "int" => CoreTag::Int,
            "float" => CoreTag::Float,
            "binary" => CoreTag::Binary,
            "timestamp" => CoreTag::Timestamp,
            "omap" => CoreTag::Omap,
            "pairs" => CoreTag::Pairs,
            "set" => CoreTag::Set,
            "str" => CoreTag::Str,
            "seq" => CoreTag::Seq,
            "map" => CoreTag::Map,
            "merge" => CoreTag::Merge,
            "value" => CoreTag::Value,
            _ => return None,
        })
    }

    /// The full tag name, as PyYAML prints it in errors.
    pub(crate) fn full_name(self) -> String {
        let suffix = match self {
            CoreTag::Null => "null",
            CoreTag::Bool => "bool",
            CoreTag::Int => "int",
            CoreTag::Float => "float",
            CoreTag::Binary => "binary",
            CoreTag::Timestamp => "timestamp",
            CoreTag::Omap => "omap",
            CoreTag::Pairs => "pairs",
            CoreTag::Set => "set",
            CoreTag::Str => "str",
            CoreTag::Seq => "seq",
            CoreTag::Map => "map",
            CoreTag::Merge => "merge",
            CoreTag::Value => "value",
        };
        format!("{CORE_PREFIX}{suffix}")
    }
}

fn pattern(re: &str) -> Regex {
    Regex::new(re).expect("built-in pattern compiles")
}

/// PyYAML's bool words (`yes|Yes|YES|no|…|off|Off|OFF`): a fixed set, no pattern needed.
fn is_bool_word(text: &str) -> bool {
    matches!(
        text,
        "yes"
            | "Yes"
            | "YES"
            | "no"
            | "No"
            | "NO"
            | "true"
            | "True"
            | "TRUE"
            | "false"
            | "False"
            | "FALSE"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"\A(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\z",
    )
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"\A(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)\z",
    )
});
static TIMESTAMP_IMPLICIT: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"\A(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)\z",
    )
});
static TIMESTAMP_PARTS: LazyLock<Regex> = LazyLock::new(|| {
    pattern(
        r"\A(?P<year>[0-9][0-9][0-9][0-9])-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)(?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])(?:\.(?P<fraction>[0-9]*))?(?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)(?::(?P<tz_minute>[0-9][0-9]))?))?)?\z",
    )
});

/// The tag PyYAML's resolver gives a plain (unquoted, untagged) scalar.
pub(crate) fn resolve_plain(text: &str) -> CoreTag {
    // PyYAML picks candidate resolvers by first character; trying them in registration
    // order (bool, float, int, merge, null, timestamp, value) gives the same answer.
    // The numeric patterns are compiled only for text that can match them (most plain
    // scalars are words: compiling PyYAML's patterns was most of a small `validate`).
    let numeric = |first: &[u8]| text.as_bytes().first().is_some_and(|b| first.contains(b));
    if text.is_empty() {
        CoreTag::Null
    } else if is_bool_word(text) {
        CoreTag::Bool
    } else if numeric(b"-+0123456789.") && FLOAT.is_match(text) {
        CoreTag::Float
    } else if numeric(b"-+0123456789") && INT.is_match(text) {
        CoreTag::Int
    } else if text == "<<" {
        CoreTag::Merge
    } else if matches!(text, "~" | "null" | "Null" | "NULL") {
        CoreTag::Null
    } else if numeric(b"0123456789") && TIMESTAMP_IMPLICIT.is_match(text) {
        CoreTag::Timestamp
    } else if text == "=" {
        CoreTag::Value
    } else {
        CoreTag::Str
    }
}

/// Builds the value of a scalar with the given core tag, as SafeConstructor does.
pub(crate) fn construct_scalar(tag: CoreTag, text: &str) -> Result<Value, String> {
    match tag {
        CoreTag::Null => Ok(Value::Null),
        CoreTag::Str => Ok(Value::Str(text.to_string())),
        CoreTag::Bool => construct_bool(text),
        CoreTag::Int => construct_int(text),
        CoreTag::Float => construct_float(text).map(Value::Float),
        CoreTag::Binary => construct_binary(text),
        CoreTag::Timestamp => construct_timestamp(text),
        CoreTag::Merge | CoreTag::Value => Err(format!(
            "could not determine a constructor for the tag '{}'",
            tag.full_name()
        )),
        CoreTag::Omap | CoreTag::Pairs | CoreTag::Set | CoreTag::Seq | CoreTag::Map => {
            unreachable!("collection tags are constructed by the loader")
        }
    }
}

fn construct_bool(text: &str) -> Result<Value, String> {
    match text.to_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(Value::Bool(true)),
        "no" | "false" | "off" => Ok(Value::Bool(false)),
        _ => Err(format!("'{text}' is not a YAML 1.1 boolean")),
    }
}

/// Python refuses to convert decimal strings longer than this (`sys.int_info`).
const PYTHON_MAX_DECIMAL_DIGITS: usize = 4300;

fn construct_int(text: &str) -> Result<Value, String> {
    let cleaned = text.replace('_', "");
    let invalid = || format!("'{text}' is not an integer");
    let (negative, digits) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        Some(_) => (false, cleaned.as_str()),
        None => return Err(invalid()),
    };
    let magnitude: BigInt = if digits == "0" {
        BigInt::from(0)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        parse_radix(bin, 2).ok_or_else(invalid)?
    } else if let Some(hex) = digits.strip_prefix("0x") {
        parse_radix(hex, 16).ok_or_else(invalid)?
    } else if digits.starts_with('0') {
        // Python's int(s, 8) also takes an `0o` prefix.
        let oct = digits
            .strip_prefix("0o")
            .or_else(|| digits.strip_prefix("0O"))
            .unwrap_or(digits);
        parse_radix(oct, 8).ok_or_else(invalid)?
    } else if digits.contains(':') {
        let mut total = BigInt::from(0);
        for part in digits.split(':') {
            total = total * 60 + parse_decimal(part).ok_or_else(invalid)?;
        }
        total
    } else {
        parse_decimal(digits).ok_or_else(invalid)?
    };
    let value = if negative { -magnitude } else { magnitude };
    Ok(match value.to_i64() {
        Some(small) => Value::Int(small),
        None => Value::BigInt(value),
    })
}

fn parse_radix(digits: &str, radix: u32) -> Option<BigInt> {
    let digits = digits.trim_matches(|c: char| c.is_ascii_whitespace());
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    BigInt::from_str_radix(digits, radix).ok()
}

fn parse_decimal(digits: &str) -> Option<BigInt> {
    let digits = digits.trim_matches(|c: char| c.is_ascii_whitespace());
    if digits.len() > PYTHON_MAX_DECIMAL_DIGITS {
        return None;
    }
    parse_radix(digits, 10)
}

fn construct_float(text: &str) -> Result<f64, String> {
    let cleaned = text.replace('_', "").to_lowercase();
    let invalid = || format!("'{text}' is not a float");
    let (sign, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (-1.0, &cleaned[1..]),
        Some(b'+') => (1.0, &cleaned[1..]),
        Some(_) => (1.0, cleaned.as_str()),
        None => return Err(invalid()),
    };
    if body == ".inf" {
        return Ok(sign * f64::INFINITY);
    }
    if body == ".nan" {
        return Ok(f64::NAN);
    }
    if body.contains(':') {
        let mut value = 0.0;
        let mut base = 1.0;
        for part in body.rsplit(':') {
            value += python_float(part).ok_or_else(invalid)? * base;
            base *= 60.0;
        }
        return Ok(sign * value);
    }
    Ok(sign * python_float(body).ok_or_else(invalid)?)
}

/// Python's `float(str)` for the ASCII forms it accepts.
fn python_float(text: &str) -> Option<f64> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let unsigned = text.trim_start_matches(['+', '-']);
    // Rust's parser accepts the same grammar (digits, '.', exponent, inf, infinity, nan)
    // except for more than one sign, which Python also rejects.
    if unsigned.len() + 1 < text.len() {
        return None;
    }
    text.parse::<f64>().ok()
}

fn construct_binary(text: &str) -> Result<Value, String> {
    if !text.is_ascii() {
        return Err("failed to convert base64 data into ascii".to_string());
    }
    decode_base64_like_python(text.as_bytes())
        .map(Value::Bytes)
        .map_err(|e| format!("failed to decode base64 data: {e}"))
}

/// Python's `base64.decodebytes` (binascii's non-strict `a2b_base64`): characters outside
/// the alphabet are skipped, decoding stops at complete padding, and a dangling group is an
/// error.
pub fn decode_base64_like_python(input: &[u8]) -> Result<Vec<u8>, String> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let (mut quad_pos, mut left, mut pads, mut data_chars) = (0u8, 0u8, 0u8, 0usize);
    for &c in input {
        if c == b'=' {
            pads += 1;
            if quad_pos >= 2 && quad_pos + pads >= 4 {
                return Ok(out);
            }
            continue;
        }
        let Some(v) = sextet(c) else { continue };
        pads = 0;
        data_chars += 1;
        match quad_pos {
            0 => {
                left = v;
                quad_pos = 1;
            }
            1 => {
                out.push((left << 2) | (v >> 4));
                left = v & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push((left << 4) | (v >> 2));
                left = v & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push((left << 6) | v);
                quad_pos = 0;
            }
        }
    }
    match quad_pos {
        0 => Ok(out),
        1 => Err(format!(
            "Invalid base64-encoded string: number of data characters ({data_chars}) cannot be 1 more than a multiple of 4"
        )),
        _ => Err("Incorrect padding".to_string()),
    }
}

fn construct_timestamp(text: &str) -> Result<Value, String> {
    let caps = TIMESTAMP_PARTS
        .captures(text)
        .ok_or_else(|| format!("'{text}' is not a timestamp"))?;
    let num = |name: &str| -> u32 {
        caps.name(name)
            .map_or(0, |m| m.as_str().parse().unwrap_or(0))
    };
    let (year, month, day) = (num("year"), num("month"), num("day"));
    if year == 0 {
        return Err(format!("year 0 is out of range in '{text}'"));
    }
    if !(1..=12).contains(&month) {
        return Err(format!("month must be in 1..12 in '{text}'"));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(format!("day is out of range for month in '{text}'"));
    }
    let date = Date {
        year: year as u16,
        month: month as u8,
        day: day as u8,
    };
    if caps.name("hour").is_none() {
        return Ok(Value::Date(date));
    }
    let (hour, minute, second) = (num("hour"), num("minute"), num("second"));
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("time is out of range in '{text}'"));
    }
    let microsecond = match caps.name("fraction").map(|m| m.as_str()) {
        Some(f) if !f.is_empty() => {
            let mut digits: String = f.chars().take(6).collect();
            while digits.len() < 6 {
                digits.push('0');
            }
            digits.parse().unwrap_or(0)
        }
        _ => 0,
    };
    let utc_offset_minutes = if let Some(sign) = caps.name("tz_sign") {
        let minutes = (num("tz_hour") * 60 + num("tz_minute")) as i32;
        if minutes >= 24 * 60 {
            return Err(format!(
                "offset must be strictly between -24 and 24 hours in '{text}'"
            ));
        }
        Some(if sign.as_str() == "-" {
            -minutes
        } else {
            minutes
        })
    } else if caps.name("tz").is_some() {
        Some(0)
    } else {
        None
    };
    Ok(Value::DateTime(DateTime {
        date,
        hour: hour as u8,
        minute: minute as u8,
        second: second as u8,
        microsecond,
        utc_offset_minutes,
    }))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(text: &str) -> Value {
        construct_scalar(resolve_plain(text), text).unwrap()
    }

    #[test]
    fn yaml11_integers() {
        assert!(matches!(plain("0644"), Value::Int(420)));
        assert!(matches!(plain("0x1F"), Value::Int(31)));
        assert!(matches!(plain("0b101"), Value::Int(5)));
        assert!(matches!(plain("1_000"), Value::Int(1000)));
        assert!(matches!(plain("1:30"), Value::Int(90)));
        assert!(matches!(plain("-1:30"), Value::Int(-90)));
        assert!(matches!(plain("08"), Value::Str(_)));
        assert!(matches!(plain("0o600"), Value::Str(_)));
        assert!(matches!(plain("99999999999999999999"), Value::BigInt(_)));
        assert!(construct_scalar(resolve_plain("0b_"), "0b_").is_err());
    }

    #[test]
    fn yaml11_floats_and_bools() {
        assert!(matches!(plain("1.5"), Value::Float(f) if f == 1.5));
        assert!(matches!(plain("1."), Value::Float(f) if f == 1.0));
        assert!(matches!(plain("1.0e+3"), Value::Float(f) if f == 1000.0));
        assert!(matches!(plain("1e3"), Value::Str(_)));
        assert!(matches!(plain("-.inf"), Value::Float(f) if f == f64::NEG_INFINITY));
        assert!(matches!(plain(".NaN"), Value::Float(f) if f.is_nan()));
        assert!(matches!(plain("190:20:30.15"), Value::Float(f) if f == 685230.15));
        assert!(matches!(plain("yes"), Value::Bool(true)));
        assert!(matches!(plain("OFF"), Value::Bool(false)));
        assert!(matches!(plain("y"), Value::Str(_)));
        assert!(matches!(plain("~"), Value::Null));
    }

    #[test]
    fn timestamps_and_specials() {
        assert!(matches!(plain("2001-12-14"), Value::Date(_)));
        assert!(matches!(plain("2001-1-14"), Value::Str(_)));
        let Value::DateTime(dt) = plain("2001-12-14t21:59:43.10-05:00") else {
            panic!()
        };
        assert_eq!(
            (dt.microsecond, dt.utc_offset_minutes),
            (100_000, Some(-300))
        );
        assert!(construct_scalar(resolve_plain("2001-02-30"), "2001-02-30").is_err());
        assert_eq!(resolve_plain("<<"), CoreTag::Merge);
        assert!(construct_scalar(resolve_plain("="), "=").is_err());
    }

    #[test]
    fn base64_is_lenient_like_python() {
        assert_eq!(decode_base64_like_python(b"aGk=\n").unwrap(), b"hi");
        assert_eq!(decode_base64_like_python(b"a G\tk =").unwrap(), b"hi");
        assert_eq!(decode_base64_like_python(b"aGk=ignored").unwrap(), b"hi");
        assert!(decode_base64_like_python(b"aGk").is_err());
        assert!(decode_base64_like_python(b"a").is_err());
    }
}
