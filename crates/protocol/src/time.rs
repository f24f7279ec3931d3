//! Loki's time and duration formats. Inside kiroku every instant is nanoseconds since the
//! Unix epoch in an `i64`; these functions convert at the edges.

use chrono::{DateTime, SecondsFormat, Utc};

pub const NANOS_PER_SECOND: i64 = 1_000_000_000;
pub const NANOS_PER_MILLI: i64 = 1_000_000;

/// Why a time or duration parameter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("cannot parse {0:?} to a valid timestamp")]
    Timestamp(String),
    #[error("cannot parse {0:?} to a valid duration")]
    Duration(String),
}

/// Parses a timestamp the way Loki's HTTP API does: a number with a `.` is seconds (rounded
/// to milliseconds); an integer of at most 10 digits is seconds, a longer one nanoseconds;
/// anything else must be RFC 3339.
pub fn parse_timestamp(value: &str) -> Result<i64, TimeError> {
    let err = || TimeError::Timestamp(value.to_string());
    if value.contains('.')
        && let Ok(f) = value.parse::<f64>()
        && f.is_finite()
    {
        let secs = f.trunc();
        let frac = ((f - secs) * 1000.0).round() / 1000.0;
        let ns = (secs as i64)
            .checked_mul(NANOS_PER_SECOND)
            .ok_or_else(err)?;
        return ns
            .checked_add((frac * NANOS_PER_SECOND as f64) as i64)
            .ok_or_else(err);
    }
    match value.parse::<i64>() {
        Ok(n) if value.trim_start_matches(['-', '+']).len() <= 10 => {
            n.checked_mul(NANOS_PER_SECOND).ok_or_else(err)
        }
        Ok(n) => Ok(n),
        Err(_) => parse_rfc3339(value).ok_or_else(err),
    }
}

/// Parses an RFC 3339 timestamp (with or without fractional seconds) to nanoseconds.
pub fn parse_rfc3339(value: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
}

/// Formats nanoseconds as RFC 3339 in UTC with nanoseconds, trailing zeros removed,
/// like Go's `time.RFC3339Nano`.
pub fn format_rfc3339_nano(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ns).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Parses a query step or similar: a plain number is seconds (fractions allowed), otherwise
/// a Prometheus duration such as `1m30s`. Returns nanoseconds.
pub fn parse_seconds_or_duration(value: &str) -> Result<i64, TimeError> {
    if let Ok(f) = value.parse::<f64>() {
        let ns = f * NANOS_PER_SECOND as f64;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(TimeError::Duration(value.to_string()));
        }
        return Ok(ns as i64);
    }
    parse_prometheus_duration(value).ok_or_else(|| TimeError::Duration(value.to_string()))
}

/// Parses a duration as LogQL does: Prometheus syntax first (`1d`, `2w`, `1h30m`), then
/// Go's syntax (`1.5h`, `300ms`, `10us`). Returns nanoseconds.
pub fn parse_duration(value: &str) -> Result<i64, TimeError> {
    parse_prometheus_duration(value)
        .or_else(|| parse_go_duration(value))
        .ok_or_else(|| TimeError::Duration(value.to_string()))
}

/// Prometheus' `model.ParseDuration`: integer amounts of `y w d h m s ms`, each unit at most
/// once and in that order; `0` alone is allowed.
pub fn parse_prometheus_duration(value: &str) -> Option<i64> {
    if value == "0" {
        return Some(0);
    }
    const UNITS: [(&str, i64); 7] = [
        ("y", 365 * 24 * 3600 * NANOS_PER_SECOND),
        ("w", 7 * 24 * 3600 * NANOS_PER_SECOND),
        ("d", 24 * 3600 * NANOS_PER_SECOND),
        ("h", 3600 * NANOS_PER_SECOND),
        ("m", 60 * NANOS_PER_SECOND),
        ("s", NANOS_PER_SECOND),
        ("ms", NANOS_PER_MILLI),
    ];
    let mut rest = value;
    let mut next_unit = 0;
    let mut total: i64 = 0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if idx < next_unit {
            return None;
        }
        next_unit = idx + 1;
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    Some(total)
}

/// Go's `time.ParseDuration`: a sign, then decimal amounts with units `ns us µs μs ms s m h`.
pub fn parse_go_duration(value: &str) -> Option<i64> {
    let (neg, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_digit() || *b == b'.')
            .count();
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * mult;
    }
    if total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// Formats nanoseconds as a Prometheus duration (`model.Duration`), the form LogQL prints
/// range intervals in: `1h30m`, `5m`, `1d`, `250ms`; years and weeks only when they are
/// exact (`2w`, but `30d1h` and `90d`), anything under a millisecond dropped.
pub fn format_duration(ns: i64) -> String {
    let mut ms = ns / NANOS_PER_MILLI;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    const DAY: i64 = 24 * 3600 * 1000;
    for (unit, size, exact) in [
        ("y", 365 * DAY, true),
        ("w", 7 * DAY, true),
        ("d", DAY, false),
        ("h", 3600 * 1000, false),
        ("m", 60 * 1000, false),
        ("s", 1000, false),
        ("ms", 1, false),
    ] {
        if (exact && ms % size != 0) || ms < size {
            continue;
        }
        out.push_str(&(ms / size).to_string());
        out.push_str(unit);
        ms %= size;
    }
    out
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5µs`, `0s`.
pub fn format_go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if u < 1_000_000_000 {
        let (div, unit) = if u < 1_000 {
            (1, "ns")
        } else if u < 1_000_000 {
            (1_000, "µs")
        } else {
            (1_000_000, "ms")
        };
        out.push_str(&trim_fraction(u, div));
        out.push_str(unit);
        return out;
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s_ns = u % 60_000_000_000;
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&trim_fraction(s_ns, 1_000_000_000));
    out.push('s');
    out
}

fn trim_fraction(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Formats a sample value as Go's `strconv.FormatFloat(v, 'f', -1, 64)`, which Loki uses
/// in matrix and vector results: shortest round-trip digits, never an exponent.
pub fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v == f64::INFINITY {
        "+Inf".to_string()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else if v == 0.0 {
        // Go prints negative zero as "-0"; Rust does too, keep it.
        if v.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        }
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_loki_format() {
        assert_eq!(
            parse_timestamp("1795168800000000000").unwrap(),
            1795168800000000000
        );
        assert_eq!(
            parse_timestamp("4000000000").unwrap(),
            4000000000 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_timestamp("1795170000.5").unwrap(),
            1795170000500000000
        );
        assert_eq!(
            parse_timestamp("1795170000.1234").unwrap(),
            1795170000123000000
        );
        assert_eq!(
            parse_timestamp("2026-11-20T10:20:00Z").unwrap(),
            1795170000000000000
        );
        assert_eq!(
            parse_timestamp("2026-11-20T10:20:00.5+01:00").unwrap(),
            1795166400500000000
        );
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m").unwrap(), 300 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("1d").unwrap(), 86400 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("1.5h").unwrap(), 5400 * NANOS_PER_SECOND);
        assert_eq!(parse_duration("250us").unwrap(), 250_000);
        assert!(parse_duration("5x").is_err());
        assert!(parse_prometheus_duration("1m1h").is_none());
        assert_eq!(
            parse_seconds_or_duration("60").unwrap(),
            60 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_seconds_or_duration("0.01").unwrap(),
            10 * NANOS_PER_MILLI
        );
        assert_eq!(
            parse_seconds_or_duration("60000ms").unwrap(),
            60 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_seconds_or_duration("2m").unwrap(),
            120 * NANOS_PER_SECOND
        );
        assert_eq!(
            parse_seconds_or_duration("-5").unwrap(),
            -5 * NANOS_PER_SECOND
        );
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(300 * NANOS_PER_SECOND), "5m");
        assert_eq!(format_duration(5400 * NANOS_PER_SECOND), "1h30m");
        assert_eq!(format_duration(86400 * NANOS_PER_SECOND), "1d");
        let day = 86400 * NANOS_PER_SECOND;
        assert_eq!(format_duration(14 * day), "2w");
        assert_eq!(format_duration(30 * day + 3600 * NANOS_PER_SECOND), "30d1h");
        assert_eq!(format_duration(90 * day), "90d");
        assert_eq!(format_duration(365 * day), "1y");
        assert_eq!(format_duration(366 * day), "366d");
        assert_eq!(format_duration(-300 * NANOS_PER_SECOND), "-5m");
        assert_eq!(format_duration(1_500_000), "1ms");
        assert_eq!(format_duration(250_000), "0s");
        assert_eq!(
            format_go_duration(5400 * NANOS_PER_SECOND + 500 * NANOS_PER_MILLI),
            "1h30m0.5s"
        );
        assert_eq!(format_go_duration(1500), "1.5µs");
        assert_eq!(format_sample_value(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_sample_value(2.0), "2");
        assert_eq!(format_sample_value(1e21), "1000000000000000000000");
        assert_eq!(format_sample_value(f64::NAN), "NaN");
        assert_eq!(
            format_rfc3339_nano(1795170000123000000),
            "2026-11-20T10:20:00.123Z"
        );
    }
}
