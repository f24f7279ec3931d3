//! The value types of the configuration that are more than a number: byte sizes, periods
//! and the disk budget. Each reads the same text from a flag, an environment variable and
//! the YAML file, and prints back in the form it reads, so `GET /config` can be pasted into
//! a config file.

use std::fmt;
use std::str::FromStr;

use protocol::time::{self, NANOS_PER_SECOND};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A value that could not be read; the message says what form is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// A number of bytes: `262144`, `256KiB`, `50GiB`, `1MB` (SI units are powers of 1000,
/// `KiB`/`MiB`/... powers of 1024, as in Loki's configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const SIZE_UNITS: [(&str, u64); 13] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
    ("T", 1 << 40),
];

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<ByteSize, UnitError> {
        let err = || {
            UnitError(format!(
                "{s:?} is not a byte size: write a number of bytes or one with a unit, like 262144, 256KiB, 64MiB or 50GiB"
            ))
        };
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = (&t[..split], t[split..].trim());
        if num.is_empty() {
            return Err(err());
        }
        let mult = if unit.is_empty() {
            1
        } else {
            SIZE_UNITS
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                .map(|(_, m)| *m)
                .ok_or_else(err)?
        };
        if let Ok(n) = num.parse::<u64>() {
            return n.checked_mul(mult).map(ByteSize).ok_or_else(err);
        }
        let f: f64 = num.parse().map_err(|_| err())?;
        let v = f * mult as f64;
        if !v.is_finite() || v < 0.0 || v > u64::MAX as f64 {
            return Err(err());
        }
        Ok(ByteSize(v.round() as u64))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the value exactly, else plain bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        for (unit, size) in [
            ("TiB", 1u64 << 40),
            ("GiB", 1 << 30),
            ("MiB", 1 << 20),
            ("KiB", 1 << 10),
        ] {
            if n >= size && n.is_multiple_of(size) {
                return write!(f, "{}{unit}", n / size);
            }
        }
        write!(f, "{n}")
    }
}

/// A span of time: Prometheus (`7d`, `1h30m`) or Go (`1.5h`, `300ms`) syntax; `0` means
/// "none" where the option says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Period(pub i64);

impl Period {
    pub fn from_secs(s: i64) -> Period {
        Period(s * NANOS_PER_SECOND)
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.0.max(0) as u64)
    }
}

impl FromStr for Period {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Period, UnitError> {
        let t = s.trim();
        match time::parse_duration(t) {
            Ok(ns) if ns >= 0 => Ok(Period(ns)),
            _ => Err(UnitError(format!(
                "{s:?} is not a duration: write it like 7d, 12h, 90m, 30s or 0"
            ))),
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Days rather than weeks or years: `7d` and `30d` are how people write retention.
        if self.0 == 0 {
            return f.write_str("0");
        }
        let ms_total = self.0 / time::NANOS_PER_MILLI;
        if self.0 % time::NANOS_PER_MILLI != 0 {
            return f.write_str(&time::format_go_duration(self.0));
        }
        let mut ms = ms_total;
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// How much disk the store may fill: at most so many bytes (`50GiB`), or as much as leaves
/// a share of the volume free (`10%`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskLimit {
    Bytes(ByteSize),
    KeepFreePercent(f64),
}

impl FromStr for DiskLimit {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<DiskLimit, UnitError> {
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            return match p.trim().parse::<f64>() {
                Ok(v) if (0.0..100.0).contains(&v) => Ok(DiskLimit::KeepFreePercent(v)),
                _ => Err(UnitError(format!(
                    "{s:?} is not a share of the volume to keep free: write a percentage from 0% to 99%, like 10%"
                ))),
            };
        }
        t.parse::<ByteSize>().map(DiskLimit::Bytes).map_err(|_| {
            UnitError(format!(
                "{s:?} is not a disk budget: write a size the store may use, like 50GiB, or a percentage of the volume to keep free, like 10%"
            ))
        })
    }
}

impl fmt::Display for DiskLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiskLimit::Bytes(b) => b.fmt(f),
            DiskLimit::KeepFreePercent(p) => write!(f, "{p}%"),
        }
    }
}

/// Serde glue: these types are written as strings (sizes may also be plain integers).
macro_rules! text_serde {
    ($t:ty, $expect:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str($expect)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        v.parse().map_err(|e: UnitError| E::custom(e))
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$t, E> {
                        self.visit_str(&v.to_string())
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

text_serde!(ByteSize, "a byte size such as 256KiB");
text_serde!(Period, "a duration such as 7d or 30s");
text_serde!(
    DiskLimit,
    "a size such as 50GiB or a percentage such as 10%"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!("262144".parse::<ByteSize>().unwrap().0, 262144);
        assert_eq!("256KiB".parse::<ByteSize>().unwrap().0, 262144);
        assert_eq!("50GiB".parse::<ByteSize>().unwrap().0, 50 << 30);
        assert_eq!("1MB".parse::<ByteSize>().unwrap().0, 1_000_000);
        assert_eq!("1.5KiB".parse::<ByteSize>().unwrap().0, 1536);
        assert_eq!("64mib".parse::<ByteSize>().unwrap().0, 64 << 20);
        for bad in ["", "KiB", "12 parsecs", "-1", "99999999999999999999"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad}");
        }
        assert_eq!(ByteSize(262144).to_string(), "256KiB");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn periods() {
        assert_eq!(
            "7d".parse::<Period>().unwrap(),
            Period::from_secs(7 * 86400)
        );
        assert_eq!("0".parse::<Period>().unwrap(), Period(0));
        assert_eq!("1.5h".parse::<Period>().unwrap(), Period::from_secs(5400));
        assert!("soon".parse::<Period>().is_err());
        assert!("-5m".parse::<Period>().is_err());
        assert_eq!(Period::from_secs(7 * 86400).to_string(), "7d");
        assert_eq!(Period::from_secs(5400).to_string(), "1h30m");
        assert_eq!(Period(0).to_string(), "0");
    }

    #[test]
    fn disk_limits() {
        assert_eq!(
            "10%".parse::<DiskLimit>().unwrap(),
            DiskLimit::KeepFreePercent(10.0)
        );
        assert_eq!(
            "50GiB".parse::<DiskLimit>().unwrap(),
            DiskLimit::Bytes(ByteSize(50 << 30))
        );
        assert!("150%".parse::<DiskLimit>().is_err());
        assert!("lots".parse::<DiskLimit>().is_err());
        assert_eq!(DiskLimit::KeepFreePercent(10.0).to_string(), "10%");
    }
}
