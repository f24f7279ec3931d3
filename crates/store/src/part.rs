//! Parts: the immutable files of the store, one per tenant, per day (UTC) and per flush or
//! compaction, named so that several writers can share one bucket.
//!
//! A part's key is `<tenant>/<yyyy-mm-dd>/<name>.kpart`, where `<name>` is
//! `<created ms>-<instance id>-<sequence>`: unique per writing instance, sortable by age.
//! The tenant is escaped (`%xx` for anything outside `[A-Za-z0-9_-]`) so that any tenant
//! name is one safe path segment. See [`index`] for the layout inside the file.

pub mod index;
pub mod writer;

use std::fmt;

use crate::part::index::PartIndex;

pub const EXTENSION: &str = "kpart";
pub const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Which day (days since the Unix epoch, UTC) a timestamp falls in.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(DAY_NS)
}

/// The identity of a part in the part store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartKey {
    pub tenant: String,
    pub day: i64,
    pub name: String,
}

impl PartKey {
    /// The object key or relative path.
    pub fn path(&self) -> String {
        format!(
            "{}/{}/{}.{EXTENSION}",
            escape_tenant(&self.tenant),
            day_name(self.day),
            self.name
        )
    }

    /// Reads a key back from its path; `None` for anything that is not a part.
    pub fn parse(path: &str) -> Option<PartKey> {
        let mut it = path.split('/');
        let (t, d, f) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let name = f.strip_suffix(&format!(".{EXTENSION}"))?;
        if name.is_empty() || name.contains('.') {
            return None;
        }
        Some(PartKey {
            tenant: unescape_tenant(t)?,
            day: parse_day(d)?,
            name: name.to_string(),
        })
    }
}

impl fmt::Display for PartKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

pub fn escape_tenant(t: &str) -> String {
    let mut s = String::with_capacity(t.len());
    for b in t.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02x}"));
        }
    }
    s
}

pub fn unescape_tenant(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `yyyy-mm-dd` of a day number (days since 1970-01-01), proleptic Gregorian.
pub fn day_name(day: i64) -> String {
    // Howard Hinnant's civil_from_days.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.rsplitn(3, '-');
    let d: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let y: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // days_from_civil
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = era * 146_097 + doe - 719_468;
    (day_name(day) == s).then_some(day)
}

/// A part the store has loaded: its key, size and index. The bytes are read through the
/// part store.
#[derive(Debug)]
pub struct Part {
    pub key: PartKey,
    pub size: u64,
    pub index: PartIndex,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for t in ["fake", "team-a", "a.b/c", "%", "é", ".."] {
            let k = PartKey {
                tenant: t.to_string(),
                day: day_of(1_700_000_000_000_000_000),
                name: "0001700000000000-abc-00000001".to_string(),
            };
            let p = k.path();
            assert_eq!(p.split('/').count(), 3, "{p}");
            assert!(!p.starts_with('.'));
            assert_eq!(PartKey::parse(&p), Some(k));
        }
        assert_eq!(day_name(day_of(1_700_000_000_000_000_000)), "2023-11-14");
        assert_eq!(day_name(-1), "1969-12-31");
        assert_eq!(parse_day("1969-12-31"), Some(-1));
        assert_eq!(parse_day("2023-02-30"), None);
        assert_eq!(PartKey::parse("fake/2023-11-14/x.tmp"), None);
    }
}
