//! The conversions Loki applies to label values — Go's `strconv.ParseFloat`,
//! `time.ParseDuration` and go-humanize's `ParseBytes` — with the same accepted forms and
//! the same error texts, because those texts end up in `__error_details__`.

use protocol::quote::quote;

/// Go's `strconv.ParseFloat(s, 64)`: decimal floats with an optional exponent, `inf`,
/// `infinity` and `nan` in any case. The error reads as Go's does.
pub(crate) fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {}: invalid syntax", quote(s));
    let b = s.as_bytes();
    let body = match b.first() {
        Some(b'+' | b'-') => &s[1..],
        _ => s,
    };
    if body.is_empty() {
        return Err(syntax());
    }
    let lower_special =
        |t: &str| t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity");
    if lower_special(body) {
        return Ok(if b[0] == b'-' {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if body.eq_ignore_ascii_case("nan") {
        // Go accepts NaN only without a sign.
        if body.len() != s.len() {
            return Err(syntax());
        }
        return Ok(f64::NAN);
    }
    // Digits, one optional point, an optional exponent: what both Go and Rust read the same.
    let mut i = 0;
    let bb = body.as_bytes();
    let mut digits = 0;
    while i < bb.len() && bb[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < bb.len() && bb[i] == b'.' {
        i += 1;
        while i < bb.len() && bb[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return Err(syntax());
    }
    if i < bb.len() && (bb[i] == b'e' || bb[i] == b'E') {
        i += 1;
        if i < bb.len() && (bb[i] == b'+' || bb[i] == b'-') {
            i += 1;
        }
        let start = i;
        while i < bb.len() && bb[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(syntax());
        }
    }
    if i != bb.len() {
        return Err(syntax());
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(format!(
            "strconv.ParseFloat: parsing {}: value out of range",
            quote(s)
        )),
        Ok(v) => Ok(v),
        Err(_) => Err(syntax()),
    }
}

const NANOS: [(&str, u64); 8] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration`: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with units
/// `ns us µs ms s m h`, in nanoseconds.
pub(crate) fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.bytes().next()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        let c = s.as_bytes()[0];
        if !(c == b'.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let mut v: u64 = 0;
        let mut i = 0;
        let b = s.as_bytes();
        while i < b.len() && b[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(b[i] - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            i += 1;
        }
        let pre = i > 0;
        s = &s[i..];
        // Fraction.
        let mut f: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut post = false;
        if s.as_bytes().first() == Some(&b'.') {
            s = &s[1..];
            let b = s.as_bytes();
            let mut i = 0;
            let mut overflow = false;
            while i < b.len() && b[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(b[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            post = i > 0;
            s = &s[i..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .position(|c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let u = &s[..unit_len];
        s = &s[unit_len..];
        let Some(&(_, unit)) = NANOS.iter().find(|(n, _)| *n == u) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(u),
                quote(orig)
            ));
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's `Duration.Seconds()`.
pub(crate) fn duration_seconds(ns: i64) -> f64 {
    let sec = ns / 1_000_000_000;
    let nsec = ns % 1_000_000_000;
    sec as f64 + nsec as f64 / 1e9
}

/// go-humanize's `ParseBytes`: a number (commas allowed) and an optional unit, SI (`kB`,
/// `MB`) or IEC (`KiB`, `MiB`), case-insensitive, spaces allowed between.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let num_len = s
        .bytes()
        .position(|c| !(c.is_ascii_digit() || c == b'.' || c == b','))
        .unwrap_or(s.len());
    let num = &s[..num_len];
    let f = if num.contains(',') {
        parse_float(&num.replace(',', ""))?
    } else {
        parse_float(num)?
    };
    let extra = s[num_len..].trim();
    // Units are at most three letters: lowercase them on the stack.
    let mut lower = [0u8; 3];
    let unit = if extra.len() <= 3 {
        for (d, c) in lower.iter_mut().zip(extra.bytes()) {
            *d = c.to_ascii_lowercase();
        }
        std::str::from_utf8(&lower[..extra.len()]).unwrap_or("?")
    } else {
        "?"
    };
    const K: u64 = 1000;
    const KI: u64 = 1024;
    let mult: u64 = match unit {
        "" | "b" => 1,
        "kib" | "ki" => KI,
        "kb" | "k" => K,
        "mib" | "mi" => KI.pow(2),
        "mb" | "m" => K.pow(2),
        "gib" | "gi" => KI.pow(3),
        "gb" | "g" => K.pow(3),
        "tib" | "ti" => KI.pow(4),
        "tb" | "t" => K.pow(4),
        "pib" | "pi" => KI.pow(5),
        "pb" | "p" => K.pow(5),
        "eib" | "ei" => KI.pow(6),
        "eb" | "e" => K.pow(6),
        _ => {
            return Err(format!(
                "unhandled size name: {}",
                extra.to_ascii_lowercase()
            ));
        }
    };
    let v = f * mult as f64;
    if v >= u64::MAX as f64 {
        return Err(format!("too large: {s}"));
    }
    Ok(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(parse_float("638.935"), Ok(638.935));
        assert_eq!(parse_float("-1e3"), Ok(-1000.0));
        assert_eq!(parse_float("+.5"), Ok(0.5));
        assert_eq!(parse_float("5."), Ok(5.0));
        assert_eq!(parse_float("Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_float("-infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(
            parse_float("96KB"),
            Err("strconv.ParseFloat: parsing \"96KB\": invalid syntax".into())
        );
        assert!(parse_float("").is_err());
        assert!(parse_float("+nan").is_err());
        assert!(parse_float("1_000").is_err());
        assert!(parse_float(" 1").is_err());
        assert_eq!(
            parse_float("1e400"),
            Err("strconv.ParseFloat: parsing \"1e400\": value out of range".into())
        );
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_go_duration("1m52s"), Ok(112_000_000_000));
        assert_eq!(parse_go_duration("8.9s"), Ok(8_900_000_000));
        assert_eq!(parse_go_duration("250us"), Ok(250_000));
        assert_eq!(parse_go_duration("250µs"), Ok(250_000));
        assert_eq!(parse_go_duration("-1.5h"), Ok(-5_400_000_000_000));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration(".5s"), Ok(500_000_000));
        assert_eq!(
            parse_go_duration("10"),
            Err("time: missing unit in duration \"10\"".into())
        );
        assert_eq!(
            parse_go_duration("1d"),
            Err("time: unknown unit \"d\" in duration \"1d\"".into())
        );
        assert_eq!(
            parse_go_duration("abc"),
            Err("time: invalid duration \"abc\"".into())
        );
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("9999999999999h").is_err());
        assert_eq!(duration_seconds(112_000_000_000), 112.0);
    }

    #[test]
    fn bytes_like_humanize() {
        assert_eq!(parse_bytes("96KB"), Ok(96_000));
        assert_eq!(parse_bytes("397KiB"), Ok(397 * 1024));
        assert_eq!(parse_bytes("19.8MB"), Ok(19_800_000));
        assert_eq!(parse_bytes("0.4MB"), Ok(400_000));
        assert_eq!(parse_bytes("229B"), Ok(229));
        assert_eq!(parse_bytes("1,024 k"), Ok(1_024_000));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert_eq!(parse_bytes("5 gib"), Ok(5 << 30));
        assert_eq!(
            parse_bytes("12 parsecs"),
            Err("unhandled size name: parsecs".into())
        );
        assert_eq!(
            parse_bytes("MB"),
            Err("strconv.ParseFloat: parsing \"\": invalid syntax".into())
        );
    }
}
