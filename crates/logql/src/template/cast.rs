//! spf13/cast's conversions, which sprig's arithmetic applies to its arguments: strings
//! are parsed, anything that does not convert is 0.

use std::borrow::Cow;

use super::value::Value;
use crate::pipeline::convert::parse_float;

/// spf13/cast's `ToInt64`: strings are parsed (base prefixes allowed, a fraction
/// dropped), floats truncated, anything unconvertible is 0.
pub(crate) fn to_int64(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::Str(s) => parse_int_base0(&trim_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

fn trim_decimal(s: &str) -> Cow<'_, str> {
    if !s.contains('.') {
        return Cow::Borrowed(s);
    }
    // `^([-+]?\d*)(\.\d*)?$`: keep the integer part.
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = int.trim_start_matches(['-', '+']);
    let sign_len = int.len() - digits.len();
    if sign_len > 1
        || !digits.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return Cow::Borrowed(s);
    }
    match int {
        "" => Cow::Borrowed("0"),
        "-" | "+" => Cow::Owned(format!("{int}0")),
        _ => Cow::Owned(int.to_string()),
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(h) = lower.strip_prefix("0x") {
        (16, h.to_string())
    } else if let Some(o) = lower.strip_prefix("0o") {
        (8, o.to_string())
    } else if let Some(b) = lower.strip_prefix("0b") {
        (2, b.to_string())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower[1..].to_string())
    } else {
        (10, lower.clone())
    };
    // Underscores are allowed only with a base prefix.
    let digits = if radix != 10 || lower.starts_with('0') {
        digits.replace('_', "")
    } else {
        digits
    };
    if digits.is_empty() {
        return None;
    }
    let v = i64::from_str_radix(&digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// spf13/cast's `ToFloat64`.
pub(crate) fn to_float64(v: &Value<'_>) -> f64 {
    match v {
        Value::Int(i, _) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Str(s) => parse_float(s).unwrap_or(0.0),
        _ => 0.0,
    }
}
