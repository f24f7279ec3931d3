//! How `kiroku query` prints log lines: `default` is logcli's `time {labels} line` with the
//! labels every stream shares printed once on stderr; `raw` is the line alone; `jsonl` one
//! JSON object per line for scripts. Samples of metric queries are printed by [`crate::table`].

use std::io::{self, Write};

use chrono::{DateTime, Local, SecondsFormat, Utc};
use protocol::Labels;
use serde::Serialize;

use crate::colour::{self, DIM, RESET};
use crate::paging::LogLine;

/// `--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable: time, labels and line; a table for samples
    #[default]
    Default,
    /// The log line alone; for samples, the server's JSON answer unchanged
    Raw,
    /// One JSON object per line or sample
    Jsonl,
}

/// `--timezone`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Timezone {
    #[default]
    Local,
    Utc,
}

/// How many fractional digits a printed time has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Three digits, always: columns stay aligned.
    Millis,
    /// Nine digits, always (`kubectl logs --timestamps`).
    Nanos,
    /// As many as needed (Go's RFC3339Nano), for machines.
    Exact,
}

/// Formats Unix nanoseconds as RFC 3339.
pub fn format_time(ns: i64, tz: Timezone, p: Precision) -> String {
    let t = DateTime::<Utc>::from_timestamp_nanos(ns);
    let f = match p {
        Precision::Millis => SecondsFormat::Millis,
        Precision::Nanos => SecondsFormat::Nanos,
        Precision::Exact => SecondsFormat::AutoSi,
    };
    match tz {
        Timezone::Utc => t.to_rfc3339_opts(f, true),
        Timezone::Local => t.with_timezone(&Local).to_rfc3339_opts(f, true),
    }
}

/// One line of `--output jsonl`.
#[derive(Serialize)]
struct JsonLine<'a> {
    timestamp: String,
    labels: &'a Labels,
    line: &'a str,
}

pub fn write_jsonl(out: &mut impl Write, l: &LogLine, tz: Timezone) -> io::Result<()> {
    let j = JsonLine {
        timestamp: format_time(l.ts, tz, Precision::Exact),
        labels: &l.labels,
        line: &l.line,
    };
    serde_json::to_writer(&mut *out, &j).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Prints the lines of `kiroku query`, page after page.
pub struct QueryPrinter {
    pub format: Format,
    pub colour: bool,
    pub tz: Timezone,
    /// `--no-labels`: only time and line.
    pub no_labels: bool,
    /// The labels every stream of the first page shares; each line shows only the rest.
    common: Option<Labels>,
    width: usize,
}

impl QueryPrinter {
    pub fn new(format: Format, colour: bool, tz: Timezone, no_labels: bool) -> QueryPrinter {
        QueryPrinter {
            format,
            colour,
            tz,
            no_labels,
            common: None,
            width: 0,
        }
    }

    /// The labels shared by all streams printed so far, once known (for `Common labels:`).
    pub fn common(&self) -> Option<&Labels> {
        self.common.as_ref().filter(|c| !c.is_empty())
    }

    /// Sets the common labels from the first non-empty page (so they can be announced
    /// before its lines), then narrows them to those later pages share too: streams that
    /// lack one can arrive later, as while following. Returns whether they changed, with
    /// whether that was a narrowing (then even none left is news).
    pub fn update_common(&mut self, lines: &[LogLine]) -> Option<Change> {
        if lines.is_empty() || self.format != Format::Default {
            return None;
        }
        let page = common_labels(lines);
        let Some(c) = &self.common else {
            self.common = Some(page);
            return Some(Change::Set);
        };
        let kept: Vec<_> = c
            .iter()
            .filter(|l| page.get(&l.name) == Some(l.value.as_str()))
            .cloned()
            .collect();
        if kept.len() == c.len() {
            return None;
        }
        self.common = Some(Labels::from_sorted(kept));
        Some(Change::Narrowed)
    }

    /// Prints one page, after updating the common labels with it.
    pub fn page(&mut self, out: &mut impl Write, lines: &[LogLine]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        match self.format {
            Format::Raw => {
                for l in lines {
                    out.write_all(l.line.as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
            Format::Jsonl => {
                for l in lines {
                    write_jsonl(out, l, self.tz)?;
                }
            }
            Format::Default => {
                self.update_common(lines);
                let mut shown: Vec<(String, &LogLine)> = Vec::with_capacity(lines.len());
                let mut last: Option<(&Labels, String)> = None;
                for l in lines {
                    // Lines of one stream come in runs: render its labels once per run.
                    let s = match &last {
                        Some((labels, s)) if *labels == &*l.labels => s.clone(),
                        _ => {
                            let s = if self.no_labels {
                                String::new()
                            } else {
                                self.unique_labels(&l.labels)
                            };
                            last = Some((&l.labels, s.clone()));
                            s
                        }
                    };
                    self.width = self.width.max(s.chars().count());
                    shown.push((s, l));
                }
                for (labels, l) in shown {
                    self.write_default(out, l, &labels)?;
                }
            }
        }
        Ok(())
    }

    fn unique_labels(&self, labels: &Labels) -> String {
        let common = self.common.as_ref();
        let rest = Labels::from_sorted(
            labels
                .iter()
                .filter(|l| common.is_none_or(|c| c.get(&l.name) != Some(l.value.as_str())))
                .cloned()
                .collect(),
        );
        if rest.is_empty() {
            String::new()
        } else {
            rest.to_string()
        }
    }

    fn write_default(&self, out: &mut impl Write, l: &LogLine, labels: &str) -> io::Result<()> {
        let ts = format_time(l.ts, self.tz, Precision::Millis);
        let pad = self.width.saturating_sub(labels.chars().count());
        if self.colour {
            write!(out, "{DIM}{ts}{RESET} ")?;
            if self.width > 0 {
                let (c, _) = colour::pick(labels);
                write!(out, "{c}{labels}{RESET}{:pad$} ", "")?;
            }
        } else {
            write!(out, "{ts} ")?;
            if self.width > 0 {
                write!(out, "{labels}{:pad$} ", "")?;
            }
        }
        out.write_all(l.line.as_bytes())?;
        out.write_all(b"\n")
    }
}

/// How [`QueryPrinter::update_common`] changed the common labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Set,
    Narrowed,
}

/// The `name="value"` pairs that every line's stream has. With a single stream that is all
/// of its labels, and lines show none.
pub fn common_labels(lines: &[LogLine]) -> Labels {
    let Some(first) = lines.first() else {
        return Labels::new();
    };
    let mut common: Vec<_> = first.labels.iter().cloned().collect();
    let mut prev = &first.labels;
    for l in &lines[1..] {
        if std::sync::Arc::ptr_eq(prev, &l.labels) {
            continue;
        }
        prev = &l.labels;
        common.retain(|c| l.labels.get(&c.name) == Some(c.value.as_str()));
    }
    Labels::from_sorted(common)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn line(ts: i64, labels: &Arc<Labels>, text: &str) -> LogLine {
        LogLine {
            ts,
            labels: Arc::clone(labels),
            line: text.to_string(),
        }
    }

    const T: i64 = 1_795_170_000_123_000_000; // 2026-11-20T10:20:00.123Z

    #[test]
    fn default_shows_time_unique_labels_and_line_aligned() {
        let a = Arc::new(Labels::from_pairs([("app", "api"), ("pod", "api-1")]));
        let b = Arc::new(Labels::from_pairs([("app", "api"), ("pod", "api-22")]));
        let mut p = QueryPrinter::new(Format::Default, false, Timezone::Utc, false);
        let mut out = Vec::new();
        p.page(
            &mut out,
            &[line(T, &a, "one"), line(T - 1_000_000, &b, "two")],
        )
        .unwrap();
        assert_eq!(p.common().unwrap().to_string(), r#"{app="api"}"#);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-20T10:20:00.123Z {pod=\"api-1\"}  one\n2026-11-20T10:20:00.122Z {pod=\"api-22\"} two\n"
        );
    }

    #[test]
    fn later_streams_narrow_the_common_labels() {
        let a = Arc::new(Labels::from_pairs([("app", "api"), ("pod", "api-1")]));
        let b = Arc::new(Labels::from_pairs([("app", "api"), ("pod", "api-2")]));
        let c = Arc::new(Labels::from_pairs([("job", "cron")]));
        let mut p = QueryPrinter::new(Format::Default, false, Timezone::Utc, false);
        assert_eq!(p.update_common(&[line(T, &a, "one")]), Some(Change::Set));
        assert_eq!(
            p.common().unwrap().to_string(),
            r#"{app="api", pod="api-1"}"#
        );
        assert_eq!(p.update_common(&[line(T, &a, "again")]), None);
        let mut out = Vec::new();
        p.page(&mut out, &[line(T, &a, "one")]).unwrap();
        assert_eq!(
            p.update_common(&[line(T, &b, "two")]),
            Some(Change::Narrowed)
        );
        assert_eq!(p.common().unwrap().to_string(), r#"{app="api"}"#);
        p.page(&mut out, &[line(T, &b, "two"), line(T, &a, "three")])
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.ends_with("{pod=\"api-2\"} two\n2026-11-20T10:20:00.123Z {pod=\"api-1\"} three\n")
        );
        assert_eq!(
            p.update_common(&[line(T, &c, "four")]),
            Some(Change::Narrowed)
        );
        assert!(p.common().is_none());
    }

    #[test]
    fn one_stream_prints_no_labels_column() {
        let a = Arc::new(Labels::from_pairs([("app", "api")]));
        let mut p = QueryPrinter::new(Format::Default, false, Timezone::Utc, false);
        let mut out = Vec::new();
        p.page(&mut out, &[line(T, &a, "x")]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "2026-11-20T10:20:00.123Z x\n"
        );
    }

    #[test]
    fn raw_and_jsonl() {
        let a = Arc::new(Labels::from_pairs([("app", "api")]));
        let lines = [line(T, &a, "say \"hi\"")];
        let mut out = Vec::new();
        QueryPrinter::new(Format::Raw, true, Timezone::Utc, false)
            .page(&mut out, &lines)
            .unwrap();
        assert_eq!(out, b"say \"hi\"\n");
        let mut out = Vec::new();
        QueryPrinter::new(Format::Jsonl, true, Timezone::Utc, false)
            .page(&mut out, &lines)
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"timestamp\":\"2026-11-20T10:20:00.123Z\",\"labels\":{\"app\":\"api\"},\"line\":\"say \\\"hi\\\"\"}\n"
        );
    }

    #[test]
    fn colour_wraps_labels_only_when_asked() {
        let a = Arc::new(Labels::from_pairs([("pod", "a")]));
        let b = Arc::new(Labels::from_pairs([("pod", "b")]));
        let mut out = Vec::new();
        QueryPrinter::new(Format::Default, true, Timezone::Utc, false)
            .page(&mut out, &[line(T, &a, "x"), line(T, &b, "y")])
            .unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains(colour::pick("{pod=\"a\"}").0), "{s:?}");
        assert!(s.contains(RESET));
    }

    #[test]
    fn times() {
        assert_eq!(
            format_time(T, Timezone::Utc, Precision::Nanos),
            "2026-11-20T10:20:00.123000000Z"
        );
        assert_eq!(
            format_time(T, Timezone::Utc, Precision::Exact),
            "2026-11-20T10:20:00.123Z"
        );
    }
}
