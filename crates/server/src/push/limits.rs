//! Loki's ingest limits and the messages it rejects entries with, word for word, so that
//! clients and people who know Loki's errors recognise ours.

use chrono::{SecondsFormat, TimeZone, Utc};

use crate::config::Config;

/// Loki's `reason` label values for discarded data.
pub mod reason {
    pub const INVALID_LABELS: &str = "invalid_labels";
    pub const MISSING_LABELS: &str = "missing_labels";
    pub const DUPLICATE_LABEL_NAMES: &str = "duplicate_label_names";
    pub const MAX_LABEL_NAMES_PER_SERIES: &str = "max_label_names_per_series";
    pub const LABEL_NAME_TOO_LONG: &str = "label_name_too_long";
    pub const LABEL_VALUE_TOO_LONG: &str = "label_value_too_long";
    pub const LINE_TOO_LONG: &str = "line_too_long";
    pub const TOO_OLD: &str = "greater_than_max_sample_age";
    pub const TOO_NEW: &str = "too_far_in_future";
    pub const METADATA_TOO_LARGE: &str = "structured_metadata_too_large";
    pub const METADATA_TOO_MANY: &str = "structured_metadata_too_many";
    pub const REQUEST_BODY_TOO_LARGE: &str = "request_body_too_large";
    pub const INVALID_BODY: &str = "invalid_body";
}

/// Why a stream or an entry was not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            message: message.into(),
        }
    }
}

/// The limits a push is checked against.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_line_size: usize,
    pub max_label_names_per_series: usize,
    pub max_label_name_length: usize,
    pub max_label_value_length: usize,
    pub max_structured_metadata_size: usize,
    pub max_structured_metadata_entries_count: usize,
    /// Entries older than this long ago are refused; `None` accepts any age.
    pub retention: Option<i64>,
    pub creation_grace_period: i64,
}

impl IngestLimits {
    pub fn from_config(c: &Config) -> IngestLimits {
        IngestLimits {
            max_line_size: usize::try_from(c.max_line_size.0).unwrap_or(usize::MAX),
            max_label_names_per_series: c.max_label_names_per_series,
            max_label_name_length: c.max_label_name_length,
            max_label_value_length: c.max_label_value_length,
            max_structured_metadata_size: usize::try_from(c.max_structured_metadata_size.0)
                .unwrap_or(usize::MAX),
            max_structured_metadata_entries_count: c.max_structured_metadata_entries_count,
            retention: c.retention_nanos(),
            creation_grace_period: c.creation_grace_period.nanos(),
        }
    }

    #[cfg(test)]
    pub fn for_tests() -> IngestLimits {
        IngestLimits::from_config(&Config::default())
    }

    /// The time window entries must fall in, for a request received at `now`.
    pub fn window(&self, now: i64) -> Window {
        Window {
            oldest: self.retention.map(|r| now.saturating_sub(r)),
            newest: now.saturating_add(self.creation_grace_period),
        }
    }

    /// Checks one entry, in Loki's order: age, future, line size, structured metadata.
    /// `stream` is the stream's printed labels; `metadata_size` the summed length of the
    /// entry's structured-metadata names and values.
    pub fn check_entry(
        &self,
        w: &Window,
        stream: &str,
        ts: i64,
        line_len: usize,
        metadata_count: usize,
        metadata_size: usize,
    ) -> Result<(), Rejection> {
        if let Some(oldest) = w.oldest
            && ts < oldest
        {
            return Err(Rejection::new(
                reason::TOO_OLD,
                format!(
                    "entry for stream '{stream}' has timestamp too old: {}, oldest acceptable timestamp is: {}",
                    rfc3339(ts),
                    rfc3339(oldest)
                ),
            ));
        }
        if ts > w.newest {
            return Err(Rejection::new(
                reason::TOO_NEW,
                format!(
                    "entry for stream '{stream}' has timestamp too new: {}",
                    rfc3339(ts)
                ),
            ));
        }
        if self.max_line_size != 0 && line_len > self.max_line_size {
            return Err(Rejection::new(
                reason::LINE_TOO_LONG,
                format!(
                    "max entry size '{}' bytes exceeded for stream '{stream}' while adding an entry with length '{line_len}' bytes",
                    self.max_line_size
                ),
            ));
        }
        if metadata_count > 0 {
            let max = self.max_structured_metadata_size;
            if max != 0 && metadata_size > max {
                return Err(Rejection::new(
                    reason::METADATA_TOO_LARGE,
                    format!(
                        "stream '{stream}' has structured metadata too large: '{metadata_size}' bytes, limit: '{max}' bytes. Please see `max_structured_metadata_size` to increase it"
                    ),
                ));
            }
            let max = self.max_structured_metadata_entries_count;
            if max != 0 && metadata_count > max {
                return Err(Rejection::new(
                    reason::METADATA_TOO_MANY,
                    format!(
                        "stream '{stream}' has too many structured metadata labels: '{metadata_count}', limit: '{max}'. Please see `max_structured_metadata_entries_count` to increase it"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The oldest and newest acceptable timestamps of one request.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub oldest: Option<i64>,
    pub newest: i64,
}

/// Go's `time.RFC3339` in UTC, as Loki prints timestamps in its messages.
fn rfc3339(ns: i64) -> String {
    Utc.timestamp_nanos(ns)
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The rejections of one request, grouped as Loki groups them: one message per stream and
/// reason with the number of entries it stands for.
#[derive(Debug, Default)]
pub struct Rejections {
    groups: Vec<(Rejection, u64)>,
    pub lines: u64,
}

/// Distinct messages kept in one answer; the rest are counted.
const MAX_MESSAGES: usize = 20;

impl Rejections {
    /// Records `lines` entries rejected for `r`. Messages of the same reason for the same
    /// stream in a row are counted under the first one.
    pub fn add(&mut self, r: Rejection, lines: u64, same_group_as_last: bool) {
        self.lines += lines;
        if same_group_as_last
            && let Some(last) = self.groups.last_mut()
            && last.0.reason == r.reason
        {
            last.1 += lines;
            return;
        }
        self.groups.push((r, lines));
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &(Rejection, u64)> {
        self.groups.iter()
    }

    /// The answer's body: Loki's `N errors like: <message>` joined with `; `.
    pub fn message(&self) -> String {
        let several = self.groups.len() > 1;
        let mut out = String::new();
        for (i, (r, n)) in self.groups.iter().take(MAX_MESSAGES).enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            if several || *n > 1 {
                out.push_str(&format!("{n} errors like: "));
            }
            out.push_str(&r.message);
        }
        if self.groups.len() > MAX_MESSAGES {
            let rest: u64 = self.groups[MAX_MESSAGES..].iter().map(|g| g.1).sum();
            out.push_str(&format!("; and {rest} more rejected entries"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = r#"{app="api"}"#;

    #[test]
    fn loki_messages() {
        let mut l = IngestLimits::for_tests();
        let now = 1_795_168_800_000_000_000;
        l.retention = Some(3600 * 1_000_000_000);
        let w = l.window(now);
        let e = l
            .check_entry(&w, S, now - 7200 * 1_000_000_000, 1, 0, 0)
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"entry for stream '{app="api"}' has timestamp too old: 2026-11-20T08:00:00Z, oldest acceptable timestamp is: 2026-11-20T09:00:00Z"#
        );
        let e = l
            .check_entry(&w, S, now + 3600 * 1_000_000_000, 1, 0, 0)
            .unwrap_err();
        assert_eq!(
            e.message,
            r#"entry for stream '{app="api"}' has timestamp too new: 2026-11-20T11:00:00Z"#
        );
        let e = l.check_entry(&w, S, now, 262145, 0, 0).unwrap_err();
        assert_eq!(
            e.message,
            r#"max entry size '262144' bytes exceeded for stream '{app="api"}' while adding an entry with length '262145' bytes"#
        );
        assert_eq!(e.reason, reason::LINE_TOO_LONG);
        assert!(l.check_entry(&w, S, now, 262144, 128, 65536).is_ok());
        assert_eq!(
            l.check_entry(&w, S, now, 1, 129, 10).unwrap_err().reason,
            reason::METADATA_TOO_MANY
        );
        assert_eq!(
            l.check_entry(&w, S, now, 1, 1, 65537).unwrap_err().reason,
            reason::METADATA_TOO_LARGE
        );
    }

    #[test]
    fn no_retention_accepts_any_age() {
        let mut l = IngestLimits::for_tests();
        l.retention = None;
        let w = l.window(1_795_168_800_000_000_000);
        assert!(l.check_entry(&w, S, 0, 1, 0, 0).is_ok());
    }

    #[test]
    fn grouped_like_loki() {
        let mut r = Rejections::default();
        r.add(Rejection::new(reason::TOO_OLD, "old 1"), 1, false);
        assert_eq!(r.message(), "old 1");
        r.add(Rejection::new(reason::TOO_OLD, "old 2"), 1, true);
        assert_eq!(r.message(), "2 errors like: old 1");
        r.add(Rejection::new(reason::LINE_TOO_LONG, "long"), 1, true);
        assert_eq!(r.message(), "2 errors like: old 1; 1 errors like: long");
        assert_eq!(r.lines, 3);
    }
}
