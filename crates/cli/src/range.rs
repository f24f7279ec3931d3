//! The time window of a command: `--since` back from `--to` (or now), or `--from`/`--to`,
//! in Loki's forms (RFC 3339, Unix seconds or nanoseconds). Inside, nanoseconds; the end is
//! exclusive, as Loki's `query_range` treats it.

use protocol::time::{format_rfc3339_nano, parse_duration, parse_timestamp};

use crate::error::ClientError;

/// `--from` and `--to`; each command adds its own `--since` with its own default.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Bounds {
    /// Start of the window: RFC 3339 (2024-05-01T10:00:00Z) or Unix seconds or
    /// nanoseconds; wins over --since
    #[arg(long, alias = "since-time", value_name = "TIME")]
    pub from: Option<String>,
    /// End of the window (exclusive), in the same forms [default: now]
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

/// A window `[start, end)` in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start: i64,
    pub end: i64,
}

impl Bounds {
    /// Resolves the window: `--from` if given, else `--since` back from the end.
    pub fn resolve(&self, since: &str, now: i64) -> Result<TimeRange, ClientError> {
        let ts = |flag: &str, v: &str| {
            parse_timestamp(v.trim()).map_err(|_| {
                ClientError::Usage(format!(
                    "{flag} {v:?} is not a time: use RFC 3339 like 2024-05-01T10:00:00Z, or Unix seconds or nanoseconds"
                ))
            })
        };
        let end = match &self.to {
            Some(v) => ts("--to", v)?,
            None => now,
        };
        let start = match &self.from {
            Some(v) => ts("--from", v)?,
            None => end.saturating_sub(parse_since(since)?),
        };
        if start >= end {
            return Err(ClientError::Usage(format!(
                "the time window is empty: it starts at {} and ends at {}; check --from, --to and --since",
                format_rfc3339_nano(start),
                format_rfc3339_nano(end)
            )));
        }
        Ok(TimeRange { start, end })
    }
}

/// Reads `--since`: a positive duration (`1h`, `30m`, `2d`, `1h30m`, `90s`).
pub fn parse_since(v: &str) -> Result<i64, ClientError> {
    match parse_duration(v.trim()) {
        Ok(ns) if ns > 0 => Ok(ns),
        _ => Err(ClientError::Usage(format!(
            "--since {v:?} is not a positive duration: use a form like 30m, 1h, 2d or 1h30m"
        ))),
    }
}

/// The current time in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_170_000_000_000_000; // 2026-11-20T10:20:00Z
    const S: i64 = 1_000_000_000;

    #[test]
    fn since_counts_back_from_the_end() {
        let b = Bounds::default();
        assert_eq!(
            b.resolve("1h", NOW).unwrap(),
            TimeRange {
                start: NOW - 3600 * S,
                end: NOW
            }
        );
        let b = Bounds {
            from: None,
            to: Some("2026-11-20T10:00:00Z".into()),
        };
        let r = b.resolve("90s", NOW).unwrap();
        assert_eq!(r.end, NOW - 1200 * S);
        assert_eq!(r.start, r.end - 90 * S);
    }

    #[test]
    fn from_wins_and_takes_every_loki_form() {
        for from in ["2026-11-20T10:00:00Z", "1795168800", "1795168800000000000"] {
            let b = Bounds {
                from: Some(from.into()),
                to: None,
            };
            assert_eq!(
                b.resolve("5m", NOW).unwrap().start,
                NOW - 1200 * S,
                "{from}"
            );
        }
    }

    #[test]
    fn bad_windows_say_which_flag() {
        let b = Bounds {
            from: Some("yesterday".into()),
            to: None,
        };
        assert!(
            b.resolve("1h", NOW)
                .unwrap_err()
                .to_string()
                .contains("--from")
        );
        let b = Bounds {
            from: Some("2026-11-20T11:00:00Z".into()),
            to: None,
        };
        assert!(
            b.resolve("1h", NOW)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        assert!(parse_since("-5m").is_err());
        assert!(parse_since("0").is_err());
        assert!(parse_since("soon").is_err());
    }
}
