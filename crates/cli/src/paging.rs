//! Reading more log lines than one request may return (Loki refuses a `limit` above its
//! `max_entries_limit_per_query`, 5,000 by default): repeated `query_range` requests, each
//! window moved to the last timestamp seen.
//!
//! Loki's window is `[start, end)`. Moving it *past* the last timestamp would lose the other
//! lines that share it and did not fit in the page; moving it *to* that timestamp returns
//! some lines again. So the window is moved to it (forward: `start = last`; backward:
//! `end = last + 1`) and the lines already printed at exactly that timestamp are dropped
//! from the next page, counted per stream and line so that two identical lines are both
//! kept. Only when a whole page holds nothing but already-printed lines of one timestamp
//! (more lines share it than a page holds) does the window step past it, with a warning.

use std::collections::HashMap;
use std::sync::Arc;

use protocol::Labels;
use protocol::response::Stream;
use protocol::time::format_rfc3339_nano;

use crate::client::Direction;
use crate::range::TimeRange;

/// One log line of an answer, with its stream's labels.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub ts: i64,
    pub labels: Arc<Labels>,
    pub line: String,
}

/// Merges an answer's streams into one list in the query's direction (ties in the order of
/// the streams' label sets, then as the server sent them).
pub fn flatten(streams: Vec<Stream>, direction: Direction) -> Vec<LogLine> {
    let mut lines: Vec<LogLine> = Vec::with_capacity(streams.iter().map(|s| s.entries.len()).sum());
    for s in streams {
        let labels = Arc::new(s.labels);
        lines.extend(s.entries.into_iter().map(|e| LogLine {
            ts: e.ts,
            labels: Arc::clone(&labels),
            line: e.line,
        }));
    }
    match direction {
        Direction::Forward => {
            lines.sort_by(|a, b| a.ts.cmp(&b.ts).then_with(|| a.labels.cmp(&b.labels)))
        }
        Direction::Backward => {
            lines.sort_by(|a, b| b.ts.cmp(&a.ts).then_with(|| a.labels.cmp(&b.labels)))
        }
    }
    lines
}

/// The lines already printed from a timestamp on, to drop when a later answer repeats
/// them: the lines of a page's last timestamp, which the next page asks for again, or the
/// last seconds of lines a tail may send twice.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    from: i64,
    counts: HashMap<(i64, Arc<Labels>, String), usize>,
    len: usize,
}

impl Seen {
    pub fn new(from: i64) -> Seen {
        Seen {
            from,
            ..Seen::default()
        }
    }

    /// The oldest timestamp remembered.
    pub fn from(&self) -> i64 {
        self.from
    }

    /// Notes a printed line; lines older than [`Seen::from`] are not remembered.
    pub fn add(&mut self, l: &LogLine) {
        if l.ts >= self.from {
            *self
                .counts
                .entry((l.ts, Arc::clone(&l.labels), l.line.clone()))
                .or_default() += 1;
            self.len += 1;
        }
    }

    /// Forgets the lines older than `from`.
    pub fn advance(&mut self, from: i64) {
        if from <= self.from {
            return;
        }
        self.from = from;
        self.counts.retain(|(ts, _, _), _| *ts >= from);
        self.len = self.counts.values().sum();
    }

    /// How many lines are remembered.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Drops from `lines` (one answer) the lines already printed, each as many times as
    /// it was printed.
    pub fn drop_seen(&self, lines: &mut Vec<LogLine>) {
        if self.counts.is_empty() {
            return;
        }
        let mut left = self.counts.clone();
        lines.retain(|l| {
            if l.ts < self.from {
                return true;
            }
            match left.get_mut(&(l.ts, Arc::clone(&l.labels), l.line.clone())) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            }
        });
    }
}

/// The requests of one paged log query and the bookkeeping between them.
#[derive(Debug)]
pub struct Pager {
    direction: Direction,
    window: TimeRange,
    /// Lines still to print; `None` prints all.
    remaining: Option<usize>,
    batch: usize,
    boundary: Option<Seen>,
    done: bool,
}

/// The next request's window and limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub range: TimeRange,
    pub limit: usize,
}

/// The new lines of one answer, in the query's direction.
#[derive(Debug, Default)]
pub struct Page {
    pub lines: Vec<LogLine>,
    /// Set when lines had to be skipped (more lines at one timestamp than a page holds).
    pub warning: Option<String>,
}

impl Pager {
    /// `limit`: lines to print in all (`None`: every line in the window); `batch`: the
    /// most lines one request asks for.
    pub fn new(
        range: TimeRange,
        direction: Direction,
        limit: Option<usize>,
        batch: usize,
    ) -> Pager {
        Pager {
            direction,
            window: range,
            remaining: limit,
            batch: batch.max(1),
            boundary: None,
            done: limit == Some(0),
        }
    }

    /// What to ask for next, or `None` when the query is complete.
    pub fn next_request(&self) -> Option<PageRequest> {
        if self.done {
            return None;
        }
        Some(PageRequest {
            range: self.window,
            limit: self.request_limit(),
        })
    }

    fn request_limit(&self) -> usize {
        // Ask for the repeats too, so a page still brings `remaining` new lines, but never
        // for more than --batch: the server refuses limits above its own maximum.
        let repeats = self.boundary.as_ref().map_or(0, Seen::len);
        match self.remaining {
            Some(r) => self.batch.min(r.saturating_add(repeats)),
            None => self.batch,
        }
    }

    /// Takes the answer to [`Pager::next_request`] and returns its new lines.
    pub fn accept(&mut self, streams: Vec<Stream>) -> Page {
        let requested = self.request_limit();
        let mut lines = flatten(streams, self.direction);
        let received = lines.len();
        let last_ts = lines.last().map(|l| l.ts);
        if let Some(b) = &self.boundary {
            b.drop_seen(&mut lines);
        }
        if let Some(r) = &mut self.remaining {
            lines.truncate(*r);
            *r -= lines.len();
        }
        let mut page = Page {
            lines,
            warning: None,
        };
        let Some(last) = last_ts else {
            self.done = true;
            return page;
        };
        if received < requested || self.remaining == Some(0) {
            self.done = true;
            return page;
        }
        if page.lines.is_empty() {
            page.warning = Some(format!(
                "at least {received} lines share the timestamp {}: one page (--batch) cannot hold them all, so some may be missing; raise --batch to see them all",
                format_rfc3339_nano(last)
            ));
            self.boundary = None;
            match self.direction {
                Direction::Forward => self.window.start = last.saturating_add(1),
                Direction::Backward => self.window.end = last,
            }
        } else {
            match self.direction {
                Direction::Forward => self.window.start = last,
                Direction::Backward => self.window.end = last.saturating_add(1),
            }
            let b = match &mut self.boundary {
                Some(b) if b.from() == last => b,
                b => b.insert(Seen::new(last)),
            };
            // Only the last timestamp comes back (a backward page's newer lines are all
            // at or after it, but the next window ends just past it).
            for l in page.lines.iter().filter(|l| l.ts == last) {
                b.add(l);
            }
        }
        if self.window.start >= self.window.end {
            self.done = true;
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use protocol::response::Entry;

    /// A stand-in for Loki's `query_range` over fixed data: the window `[start, end)`, the
    /// newest or oldest `limit` lines, grouped in streams.
    fn answer(data: &[(Labels, i64, String)], req: PageRequest, dir: Direction) -> Vec<Stream> {
        let mut hits: Vec<&(Labels, i64, String)> = data
            .iter()
            .filter(|(_, ts, _)| *ts >= req.range.start && *ts < req.range.end)
            .collect();
        match dir {
            Direction::Forward => hits.sort_by_key(|(l, ts, line)| (*ts, l.clone(), line.clone())),
            Direction::Backward => {
                hits.sort_by_key(|(l, ts, line)| (std::cmp::Reverse(*ts), l.clone(), line.clone()))
            }
        }
        hits.truncate(req.limit);
        let mut streams: Vec<Stream> = Vec::new();
        for (l, ts, line) in hits {
            let e = Entry {
                ts: *ts,
                line: line.clone(),
                categories: None,
            };
            match streams.iter_mut().find(|s| &s.labels == l) {
                Some(s) => s.entries.push(e),
                None => streams.push(Stream {
                    labels: l.clone(),
                    entries: vec![e],
                }),
            }
        }
        streams
    }

    fn run(
        data: &[(Labels, i64, String)],
        dir: Direction,
        limit: Option<usize>,
        batch: usize,
    ) -> (Vec<LogLine>, usize, Vec<String>) {
        let mut p = Pager::new(
            TimeRange {
                start: 0,
                end: 1000,
            },
            dir,
            limit,
            batch,
        );
        let mut out = Vec::new();
        let mut requests = 0;
        let mut warnings = Vec::new();
        while let Some(req) = p.next_request() {
            requests += 1;
            assert!(requests < 10_000, "paging does not end");
            let page = p.accept(answer(data, req, dir));
            out.extend(page.lines);
            warnings.extend(page.warning);
        }
        (out, requests, warnings)
    }

    fn key(l: &LogLine) -> (i64, Labels, String) {
        (l.ts, (*l.labels).clone(), l.line.clone())
    }

    fn data_strategy() -> impl Strategy<Value = Vec<(Labels, i64, String)>> {
        // Few streams, few timestamps, few distinct lines: many ties and repeats at the
        // page boundaries. Unique per (stream, ts, line), as Loki's answers are; at most
        // 12 lines share a timestamp, fewer than a page of the batch sizes tried.
        proptest::collection::btree_set((0u8..3, 0i64..40, 0u8..4), 0..120).prop_map(|set| {
            set.into_iter()
                .map(|(s, ts, line)| {
                    (
                        Labels::from_pairs([("pod", format!("p{s}"))]),
                        ts * 25,
                        format!("line {line}"),
                    )
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn paging_returns_exactly_what_one_big_query_would(
            data in data_strategy(),
            batch in 13usize..40,
            forward in any::<bool>(),
            limit in proptest::option::of(0usize..150),
        ) {
            let dir = if forward { Direction::Forward } else { Direction::Backward };
            let (paged, _, warnings) = run(&data, dir, limit, batch);
            let (whole, _, _) = run(&data, dir, limit, 100_000);
            prop_assert!(warnings.is_empty(), "{warnings:?}");
            // Same lines (ties may come in another order)...
            let mut a: Vec<_> = paged.iter().map(key).collect();
            let mut b: Vec<_> = whole.iter().map(key).collect();
            a.sort();
            b.sort();
            prop_assert_eq!(a, b);
            // ...in the query's direction.
            for w in paged.windows(2) {
                match dir {
                    Direction::Forward => prop_assert!(w[0].ts <= w[1].ts),
                    Direction::Backward => prop_assert!(w[0].ts >= w[1].ts),
                }
            }
        }
    }

    #[test]
    fn a_limit_beyond_one_page_takes_several_requests() {
        let data: Vec<_> = (0..25)
            .map(|i| (Labels::from_pairs([("app", "a")]), i * 10, format!("l{i}")))
            .collect();
        let (lines, requests, _) = run(&data, Direction::Backward, Some(22), 5);
        assert_eq!(lines.len(), 22);
        assert_eq!(lines[0].line, "l24");
        assert_eq!(lines[21].line, "l3");
        assert!(requests >= 5, "{requests}");
        let (lines, _, _) = run(&data, Direction::Forward, None, 4);
        let got: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        let want: Vec<String> = (0..25).map(|i| format!("l{i}")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_last_page_asks_only_for_what_is_left_and_the_repeats() {
        let data: Vec<_> = (0..40)
            .map(|i| (Labels::from_pairs([("app", "a")]), i * 10, format!("l{i}")))
            .collect();
        let mut p = Pager::new(
            TimeRange {
                start: 0,
                end: 1000,
            },
            Direction::Backward,
            Some(25),
            10,
        );
        let mut limits = Vec::new();
        let mut printed = 0;
        while let Some(req) = p.next_request() {
            limits.push(req.limit);
            printed += p
                .accept(answer(&data, req, Direction::Backward))
                .lines
                .len();
        }
        // 10 new; 9 new and the repeated line; the 6 left and the repeated line.
        assert_eq!(printed, 25);
        assert_eq!(limits, [10, 10, 7]);
    }

    #[test]
    fn identical_lines_of_two_streams_at_the_boundary_are_both_kept() {
        let l = Labels::from_pairs([("app", "a")]);
        let l2 = Labels::from_pairs([("app", "b")]);
        let data = vec![
            (l.clone(), 5, "p".to_string()),
            (l.clone(), 10, "same".to_string()),
            (l2.clone(), 10, "same".to_string()),
            (l.clone(), 20, "x".to_string()),
        ];
        let (lines, requests, warnings) = run(&data, Direction::Forward, None, 3);
        let got: Vec<_> = lines.iter().map(|l| (l.ts, l.line.as_str())).collect();
        assert_eq!(got, [(5, "p"), (10, "same"), (10, "same"), (20, "x")]);
        assert_eq!(requests, 3);
        assert!(warnings.is_empty());
    }

    #[test]
    fn too_many_lines_at_one_timestamp_warn_and_move_on() {
        let data: Vec<_> = (0..10)
            .map(|i| (Labels::from_pairs([("app", "a")]), 50, format!("l{i}")))
            .chain([(Labels::from_pairs([("app", "a")]), 10, "older".to_string())])
            .collect();
        let (lines, _, warnings) = run(&data, Direction::Backward, None, 4);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("--batch"));
        assert_eq!(lines.last().unwrap().line, "older");
        assert_eq!(lines.len(), 5);
    }
}
