//! Go's `time.Time` as templates see it: `Format` and `Parse` with Go's reference-time
//! layouts (`2006-01-02T15:04:05Z07:00`), and `String()`.
//!
//! Kiroku runs templates in UTC, as Loki does in its container images (Go's `Local` is UTC
//! there). Named zones other than `UTC`/`Local` are not loaded: `toDateInZone` falls back to
//! UTC for them, as Loki does for a zone it cannot load.

/// An instant with the offset and zone name it is shown in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GoTime {
    /// Seconds since the Unix epoch.
    pub(crate) secs: i64,
    pub(crate) nanos: u32,
    pub(crate) offset: i32,
    pub(crate) zone: String,
}

const SECS_ZERO_TIME: i64 = -62_135_596_800;

impl GoTime {
    pub(crate) fn from_unix_nanos(ns: i64) -> GoTime {
        GoTime {
            secs: ns.div_euclid(1_000_000_000),
            nanos: ns.rem_euclid(1_000_000_000) as u32,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    pub(crate) fn from_unix(secs: i64, nanos: i64) -> GoTime {
        let total = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        GoTime {
            secs: total.div_euclid(1_000_000_000) as i64,
            nanos: total.rem_euclid(1_000_000_000) as u32,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    /// Go's zero `time.Time`: January 1, year 1, 00:00:00 UTC.
    pub(crate) fn zero() -> GoTime {
        GoTime {
            secs: SECS_ZERO_TIME,
            nanos: 0,
            offset: 0,
            zone: "UTC".into(),
        }
    }

    pub(crate) fn unix_nanos(&self) -> i64 {
        (i128::from(self.secs) * 1_000_000_000 + i128::from(self.nanos)) as i64
    }

    pub(crate) fn unix_millis(&self) -> i64 {
        self.secs * 1000 + i64::from(self.nanos / 1_000_000)
    }

    fn civil(&self) -> Civil {
        let local = self.secs + i64::from(self.offset);
        let days = local.div_euclid(86_400);
        let sod = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        Civil {
            year: y,
            month: m,
            day: d,
            hour: (sod / 3600) as u32,
            min: ((sod % 3600) / 60) as u32,
            sec: (sod % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday: (days - days_from_civil(y, 1, 1) + 1) as u32,
        }
    }

    /// (year, month, day, hour, minute, second) in the time's own offset.
    pub(crate) fn parts(&self) -> (i64, u32, u32, u32, u32, u32) {
        let c = self.civil();
        (c.year, c.month, c.day, c.hour, c.min, c.sec)
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    pub(crate) fn to_go_string(&self) -> String {
        self.format("2006-01-02 15:04:05.999999999 -0700 MST")
    }

    pub(crate) fn format(&self, layout: &str) -> String {
        let c = self.civil();
        let mut out = String::with_capacity(layout.len() + 10);
        let mut rest = layout;
        while !rest.is_empty() {
            let Some((prefix, tok, after)) = next_std(rest) else {
                out.push_str(rest);
                break;
            };
            out.push_str(prefix);
            rest = after;
            match tok {
                Std::Year => out.push_str(&pad(c.year.rem_euclid(10_000), 4)),
                Std::Year2 => out.push_str(&pad(c.year.rem_euclid(100), 2)),
                Std::Month => out.push_str(&MONTHS[c.month as usize - 1][..3]),
                Std::LongMonth => out.push_str(MONTHS[c.month as usize - 1]),
                Std::NumMonth => out.push_str(&c.month.to_string()),
                Std::ZeroMonth => out.push_str(&pad(i64::from(c.month), 2)),
                Std::Weekday => out.push_str(&DAYS[c.weekday as usize][..3]),
                Std::LongWeekday => out.push_str(DAYS[c.weekday as usize]),
                Std::Day => out.push_str(&c.day.to_string()),
                Std::UnderDay => out.push_str(&format!("{:>2}", c.day)),
                Std::ZeroDay => out.push_str(&pad(i64::from(c.day), 2)),
                Std::UnderYearDay => out.push_str(&format!("{:>3}", c.yday)),
                Std::ZeroYearDay => out.push_str(&pad(i64::from(c.yday), 3)),
                Std::Hour => out.push_str(&pad(i64::from(c.hour), 2)),
                Std::Hour12 | Std::ZeroHour12 => {
                    let h = match c.hour % 12 {
                        0 => 12,
                        h => h,
                    };
                    if tok == Std::ZeroHour12 {
                        out.push_str(&pad(i64::from(h), 2));
                    } else {
                        out.push_str(&h.to_string());
                    }
                }
                Std::Minute => out.push_str(&c.min.to_string()),
                Std::ZeroMinute => out.push_str(&pad(i64::from(c.min), 2)),
                Std::Second => out.push_str(&c.sec.to_string()),
                Std::ZeroSecond => out.push_str(&pad(i64::from(c.sec), 2)),
                Std::PM => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
                Std::Pm => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
                Std::TZ => {
                    if self.zone.is_empty() {
                        out.push_str(&offset_str(self.offset, false, false, false));
                    } else {
                        out.push_str(&self.zone);
                    }
                }
                Std::Iso8601(..) if self.offset == 0 => out.push('Z'),
                Std::Iso8601(colon, secs, short) | Std::NumTZ(colon, secs, short) => {
                    out.push_str(&offset_str(self.offset, colon, secs, short));
                }
                Std::Frac(sep, digits, trim) => {
                    let f = format!("{:09}", self.nanos);
                    let mut f = &f[..digits];
                    if trim {
                        f = f.trim_end_matches('0');
                        if f.is_empty() {
                            continue;
                        }
                    }
                    out.push(sep);
                    out.push_str(f);
                }
            }
        }
        out
    }

    /// Go's `time.Parse` (or `ParseInLocation` with UTC) for the layouts above.
    pub(crate) fn parse(layout: &str, value: &str) -> Result<GoTime, String> {
        let err = || {
            format!(
                "parsing time {} as {}: cannot parse",
                protocol::quote::quote(value),
                protocol::quote::quote(layout)
            )
        };
        let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
        let (mut hour, mut min, mut sec, mut nanos) = (0u32, 0u32, 0u32, 0u32);
        let mut pm: Option<bool> = None;
        let mut offset: Option<i32> = None;
        let mut zone = String::from("UTC");
        let mut yday: Option<u32> = None;
        let mut l = layout;
        let mut v = value;
        while !l.is_empty() {
            let Some((prefix, tok, after)) = next_std(l) else {
                v = v.strip_prefix(l).ok_or_else(err)?;
                l = "";
                break;
            };
            v = v.strip_prefix(prefix).ok_or_else(err)?;
            l = after;
            match tok {
                Std::Year => {
                    year = take_digits(&mut v, 4, 4).ok_or_else(err)? as i64;
                }
                Std::Year2 => {
                    let y = take_digits(&mut v, 2, 2).ok_or_else(err)? as i64;
                    year = if y >= 69 { 1900 + y } else { 2000 + y };
                }
                Std::Month | Std::LongMonth => {
                    let long = tok == Std::LongMonth;
                    let idx = MONTHS.iter().position(|m| {
                        let name = if long { *m } else { &m[..3] };
                        v.get(..name.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(name))
                    });
                    let i = idx.ok_or_else(err)?;
                    let len = if long { MONTHS[i].len() } else { 3 };
                    v = &v[len..];
                    month = i as u32 + 1;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let min_len = if tok == Std::ZeroMonth { 2 } else { 1 };
                    month = take_digits(&mut v, min_len, 2).ok_or_else(err)?;
                    if !(1..=12).contains(&month) {
                        return Err(format!("parsing time {value:?}: month out of range"));
                    }
                }
                Std::Weekday | Std::LongWeekday => {
                    let long = tok == Std::LongWeekday;
                    let idx = DAYS.iter().position(|d| {
                        let name = if long { *d } else { &d[..3] };
                        v.get(..name.len())
                            .is_some_and(|p| p.eq_ignore_ascii_case(name))
                    });
                    let i = idx.ok_or_else(err)?;
                    v = &v[if long { DAYS[i].len() } else { 3 }..];
                }
                Std::Day | Std::ZeroDay | Std::UnderDay => {
                    if tok == Std::UnderDay {
                        v = v.strip_prefix(' ').unwrap_or(v);
                    }
                    let min_len = if tok == Std::ZeroDay { 2 } else { 1 };
                    day = take_digits(&mut v, min_len, 2).ok_or_else(err)?;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    v = v.trim_start_matches(' ');
                    yday = Some(take_digits(&mut v, 1, 3).ok_or_else(err)?);
                }
                Std::Hour => hour = take_digits(&mut v, 2, 2).ok_or_else(err)?,
                Std::Hour12 | Std::ZeroHour12 => {
                    let min_len = if tok == Std::ZeroHour12 { 2 } else { 1 };
                    hour = take_digits(&mut v, min_len, 2).ok_or_else(err)?;
                    if hour > 12 {
                        return Err(format!("parsing time {value:?}: hour out of range"));
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    let min_len = if tok == Std::ZeroMinute { 2 } else { 1 };
                    min = take_digits(&mut v, min_len, 2).ok_or_else(err)?;
                }
                Std::Second | Std::ZeroSecond => {
                    let min_len = if tok == Std::ZeroSecond { 2 } else { 1 };
                    sec = take_digits(&mut v, min_len, 2).ok_or_else(err)?;
                    // A fractional second may follow even if the layout has none.
                    if (v.starts_with('.') || v.starts_with(','))
                        && v[1..].starts_with(|c: char| c.is_ascii_digit())
                        && !matches!(next_std(l), Some(("", Std::Frac(..), _)))
                    {
                        let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                        nanos = frac_nanos(&v[1..1 + n]);
                        v = &v[1 + n..];
                    }
                }
                Std::PM | Std::Pm => {
                    let p = v.get(..2).ok_or_else(err)?;
                    pm = Some(match p.to_ascii_uppercase().as_str() {
                        "PM" => true,
                        "AM" => false,
                        _ => return Err(err()),
                    });
                    v = &v[2..];
                }
                Std::TZ => {
                    let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                    if n < 3 {
                        return Err(err());
                    }
                    zone = v[..n].to_string();
                    v = &v[n..];
                }
                Std::Iso8601(colon, secs, short) | Std::NumTZ(colon, secs, short) => {
                    if matches!(tok, Std::Iso8601(..)) && v.starts_with('Z') {
                        v = &v[1..];
                        offset = Some(0);
                        continue;
                    }
                    let sign = match v.as_bytes().first() {
                        Some(b'+') => 1,
                        Some(b'-') => -1,
                        _ => return Err(err()),
                    };
                    v = &v[1..];
                    let h = take_digits(&mut v, 2, 2).ok_or_else(err)? as i32;
                    let mut m = 0;
                    let mut s = 0;
                    if !short {
                        if colon {
                            v = v.strip_prefix(':').ok_or_else(err)?;
                        }
                        m = take_digits(&mut v, 2, 2).ok_or_else(err)? as i32;
                        if secs {
                            if colon {
                                v = v.strip_prefix(':').ok_or_else(err)?;
                            }
                            s = take_digits(&mut v, 2, 2).ok_or_else(err)? as i32;
                        }
                    }
                    offset = Some(sign * (h * 3600 + m * 60 + s));
                }
                Std::Frac(sep, digits, trim) => {
                    if trim {
                        if v.starts_with(sep) {
                            let n = v[1..].bytes().take_while(u8::is_ascii_digit).count();
                            nanos = frac_nanos(&v[1..1 + n]);
                            v = &v[1 + n..];
                        }
                    } else {
                        v = v.strip_prefix(sep).ok_or_else(err)?;
                        let d = v.get(..digits).ok_or_else(err)?;
                        if !d.bytes().all(|c| c.is_ascii_digit()) {
                            return Err(err());
                        }
                        nanos = frac_nanos(d);
                        v = &v[digits..];
                    }
                }
            }
        }
        if !v.is_empty() || !l.is_empty() {
            return Err(format!(
                "parsing time {}: extra text: {}",
                protocol::quote::quote(value),
                protocol::quote::quote(v)
            ));
        }
        if let Some(pm) = pm {
            if pm && hour < 12 {
                hour += 12;
            } else if !pm && hour == 12 {
                hour = 0;
            }
        }
        if hour > 23 || min > 59 || sec > 59 {
            return Err(format!(
                "parsing time {value:?}: hour, minute or second out of range"
            ));
        }
        let days = if let Some(yd) = yday {
            days_from_civil(year, 1, 1) + i64::from(yd) - 1
        } else {
            if day < 1 || day > days_in_month(year, month) {
                return Err(format!("parsing time {value:?}: day out of range"));
            }
            days_from_civil(year, month, day)
        };
        let off = offset.unwrap_or(0);
        let mut secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
        secs -= i64::from(off);
        // With a numeric offset Go names no zone (UTC for a zero offset); an abbreviation
        // it does not know keeps its name with a zero offset.
        if offset.is_some() {
            zone = if off == 0 {
                "UTC".into()
            } else {
                String::new()
            };
        }
        Ok(GoTime {
            secs,
            nanos,
            offset: off,
            zone,
        })
    }
}

fn frac_nanos(d: &str) -> u32 {
    let mut n: u32 = 0;
    for (i, c) in d.bytes().take(9).enumerate() {
        n += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
    }
    n
}

fn take_digits(v: &mut &str, min: usize, max: usize) -> Option<u32> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    let d = v[..n].parse().ok()?;
    *v = &v[n..];
    Some(d)
}

fn pad(v: i64, width: usize) -> String {
    format!("{v:0width$}")
}

fn offset_str(offset: i32, colon: bool, secs: bool, short: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let o = offset.abs();
    let (h, m, s) = (o / 3600, (o % 3600) / 60, o % 60);
    let mut out = format!("{sign}{h:02}");
    if short {
        return out;
    }
    if colon {
        out.push(':');
    }
    out.push_str(&format!("{m:02}"));
    if secs {
        if colon {
            out.push(':');
        }
        out.push_str(&format!("{s:02}"));
    }
    out
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    weekday: u32,
    yday: u32,
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Std {
    Year,
    Year2,
    Month,
    LongMonth,
    NumMonth,
    ZeroMonth,
    Weekday,
    LongWeekday,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    PM,
    Pm,
    TZ,
    /// `Z07:00` and friends: (colon, seconds, hours only).
    Iso8601(bool, bool, bool),
    NumTZ(bool, bool, bool),
    /// `.000` / `.999`: separator, digits, trailing zeros trimmed.
    Frac(char, usize, bool),
}

/// Finds the first layout element in `l`: (text before, element, text after).
fn next_std(l: &str) -> Option<(&str, Std, &str)> {
    let b = l.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let rest = &l[i..];
        let hit: Option<(Std, usize)> = match b[i] {
            b'J' if rest.starts_with("January") => Some((Std::LongMonth, 7)),
            b'J' if rest.starts_with("Jan") => Some((Std::Month, 3)),
            b'M' if rest.starts_with("Monday") => Some((Std::LongWeekday, 6)),
            b'M' if rest.starts_with("Mon") => Some((Std::Weekday, 3)),
            b'M' if rest.starts_with("MST") => Some((Std::TZ, 3)),
            b'0' => match b.get(i + 1) {
                Some(b'1') => Some((Std::ZeroMonth, 2)),
                Some(b'2') => Some((Std::ZeroDay, 2)),
                Some(b'3') => Some((Std::ZeroHour12, 2)),
                Some(b'4') => Some((Std::ZeroMinute, 2)),
                Some(b'5') => Some((Std::ZeroSecond, 2)),
                Some(b'6') => Some((Std::Year2, 2)),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' if rest.starts_with("15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if rest.starts_with("2006") => Some((Std::Year, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if rest.starts_with("_2") => {
                if rest.starts_with("_2006") {
                    // `_` then the year, as Go reads it.
                    None
                } else if rest.starts_with("__2") {
                    Some((Std::UnderYearDay, 3))
                } else {
                    Some((Std::UnderDay, 2))
                }
            }
            b'_' if rest.starts_with("__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if rest.starts_with("PM") => Some((Std::PM, 2)),
            b'p' if rest.starts_with("pm") => Some((Std::Pm, 2)),
            b'-' if rest.starts_with("-07:00:00") => Some((Std::NumTZ(true, true, false), 9)),
            b'-' if rest.starts_with("-0700") && rest[5..].starts_with("00") => {
                Some((Std::NumTZ(false, true, false), 7))
            }
            b'-' if rest.starts_with("-07:00") => Some((Std::NumTZ(true, false, false), 6)),
            b'-' if rest.starts_with("-0700") => Some((Std::NumTZ(false, false, false), 5)),
            b'-' if rest.starts_with("-07") => Some((Std::NumTZ(false, false, true), 3)),
            b'Z' if rest.starts_with("Z07:00:00") => Some((Std::Iso8601(true, true, false), 9)),
            b'Z' if rest.starts_with("Z070000") => Some((Std::Iso8601(false, true, false), 7)),
            b'Z' if rest.starts_with("Z07:00") => Some((Std::Iso8601(true, false, false), 6)),
            b'Z' if rest.starts_with("Z0700") => Some((Std::Iso8601(false, false, false), 5)),
            b'Z' if rest.starts_with("Z07") => Some((Std::Iso8601(false, false, true), 3)),
            b'.' | b',' if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let d = b[i + 1];
                let n = b[i + 1..].iter().take_while(|&&c| c == d).count();
                // Only a fraction when not followed by another digit.
                if b.get(i + 1 + n).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    Some((Std::Frac(b[i] as char, n.min(9), d == b'9'), n + 1))
                }
            }
            _ => None,
        };
        if let Some((s, len)) = hit {
            return Some((&l[..i], s, &l[i + len..]));
        }
        i += l[i..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let t = GoTime::from_unix_nanos(1_795_170_558_123_456_789);
        assert_eq!(t.to_go_string(), "2026-11-20 10:29:18.123456789 +0000 UTC");
        assert_eq!(
            t.format("2006-01-02T15:04:05Z07:00"),
            "2026-11-20T10:29:18Z"
        );
        assert_eq!(t.format("Jan _2 3:04PM .000"), "Nov 20 10:29AM .123");
        assert_eq!(t.format("Monday 002 06"), "Friday 324 26");
        assert_eq!(
            GoTime::zero().to_go_string(),
            "0001-01-01 00:00:00 +0000 UTC"
        );
    }

    #[test]
    fn parses() {
        let t = GoTime::parse("2006-01-02 15:04:05", "2026-11-20 10:00:45").unwrap();
        assert_eq!(t.secs, 1_795_168_845);
        let t = GoTime::parse(
            "2006-01-02T15:04:05.999Z07:00",
            "2026-11-20T10:00:45.5+01:00",
        )
        .unwrap();
        assert_eq!(t.secs, 1_795_168_845 - 3600);
        assert_eq!(t.nanos, 500_000_000);
        let t = GoTime::parse("02/Jan/2006:15:04:05 -0700", "20/Nov/2026:10:00:45 +0000").unwrap();
        assert_eq!(t.secs, 1_795_168_845);
        assert!(GoTime::parse("2006-01-02", "2026-13-01").is_err());
        assert!(GoTime::parse("2006-01-02", "nope").is_err());
    }
}
