//! `GET|POST /loki/api/v1/patterns`: the shapes of the log lines of the selected streams,
//! with how many lines of each shape arrived per `step`, for Grafana's Logs Drilldown.
//!
//! Loki finds patterns in a separate "pattern ingester" that watches recent pushes. kiroku
//! computes them when asked, from the stored lines of the streams the `query` selector
//! matches over `start`..`end`, with a Drain-style miner of its own ([`miner`]): nothing
//! is kept between queries, any time range works, and the answer only depends on the
//! stored lines.
//!
//! The answer has Loki's shape: `{"status":"success","data":[{"pattern":"<_> - - [<_>]
//! \"GET <_>\" ...","level":"info","samples":[[unix_seconds, count], ...]}, ...]}`.
//! Each pattern is printed so that it can be used as a `|> "<pattern>"` line filter that
//! matches the lines it counts (Drilldown builds exactly that filter when a pattern is
//! included or excluded). As in Loki:
//! - `query` is a stream selector only; a pipeline is refused;
//! - `step` defaults to the range / 250 and is at least 10 s; more than 11,000 points is
//!   refused; counts are summed into buckets that start at multiples of the step;
//! - patterns are found per `detected_level`, a pattern of one level never counts lines
//!   of another;
//! - the 300 patterns with the most lines are returned, most lines first, and patterns
//!   with fewer than 30 lines are left out — unless they hold at least 1% of the lines
//!   (and at least two), so quiet services still show their patterns;
//! - blank lines have no pattern.
//!
//! **Sampling.** Mining costs about 1.5 µs per line (`cargo bench -p kiroku-server --bench
//! patterns`: 8,000 loghub lines in 11.5 ms on one core), so at most [`MAX_MINED_LINES`]
//! lines (0.3 s) are mined per query. When the block summaries say that the
//! selected streams hold more lines than that in the range, every k-th line (counted across
//! all selected streams, in stream and time order, so the choice is deterministic) is
//! mined and counted k times, with k the smallest stride that keeps within the budget.
//! Counts are then estimates, multiples of k; the patterns themselves rarely change.
//!
//! **Bounds.** Memory: at most [`miner::MAX_CLUSTERS`] clusters live at once, each keeping
//! at most [`tokens::MAX_CUT_BYTES`] bytes of text in at most [`tokens::MAX_TOKENS`]
//! positions, plus 8 bytes of counts per mined line (≤ 1.6 MB at the line budget). Time:
//! every line in the range is read, as a `count_over_time` query reads it; at most
//! [`MAX_MINED_LINES`] are mined, each compared with the clusters of its group only; the
//! query timeout stops the rest.

pub mod miner;
pub mod template;
pub mod tokens;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use logql::ast::{Expr, Matcher};
use logql::engine::QueryError;
use logql::{Columns, Direction, Select, Source};
use protocol::time::NANOS_PER_SECOND;
use serde::Serialize;

use crate::app::App;
use crate::error::ApiError;
use crate::metadata::storage;
use crate::params::Params;
use crate::query::{answer, now_nanos, to_json};
use crate::tenant;
use miner::{Found, LEVELS, Miner};
use tokens::Tokens;

/// Most lines mined for one query; more are sampled (see the module comment).
pub const MAX_MINED_LINES: u64 = 200_000;
/// Loki's pattern resolution: counts are never finer than this.
const MIN_STEP: i64 = 10 * NANOS_PER_SECOND;
/// Loki's `minClusterSize`: patterns with fewer lines are left out...
const MIN_PATTERN_LINES: u64 = 30;
/// ...unless they hold at least this share of the lines, in percent.
const MIN_PATTERN_PERCENT: u64 = 1;
/// Loki's `maxPatterns`.
const MAX_PATTERNS: usize = 300;
/// Most points per pattern, as for range queries.
const MAX_POINTS: i64 = 11_000;

/// `GET|POST /loki/api/v1/patterns`.
pub async fn handle(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(patterns(&app, p).await)
}

/// What to mine: the streams, the range and the bucket width (nanoseconds).
#[derive(Debug, Clone)]
pub struct Request {
    pub matchers: Vec<Matcher>,
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Request {
    /// Reads `query`, `start`, `end` (or `since`) and `step` as Loki does.
    pub fn from_params(p: &Params, now: i64) -> Result<Request, ApiError> {
        let (start, end) = p.ordered_bounds(now)?;
        let step = p.step_or_default(start, end)?;
        if (end - start) / step > MAX_POINTS {
            return Err(ApiError::bad_request(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        let query = p.get("query").unwrap_or_default();
        let matchers = match logql::parse(query) {
            Ok(Expr::Log(l)) if l.pipeline.is_empty() => l.selector,
            Ok(_) => {
                return Err(ApiError::bad_request(format!(
                    "only label matchers are supported: patterns are found for a stream selector such as {{service_name=\"api\"}}, without a pipeline; got {query:?}"
                )));
            }
            Err(e) => return Err(ApiError::bad_request(e.to_string())),
        };
        Ok(Request {
            matchers,
            start,
            end,
            step: step.max(MIN_STEP),
        })
    }

    fn first_bucket(&self) -> i64 {
        self.start.div_euclid(self.step)
    }
}

async fn patterns(app: &Arc<App>, p: Params) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let req = Request::from_params(&p, now_nanos())?;
    app.check_query_length(req.start, req.end)?;
    app.run_query(move |app| {
        let deadline = Instant::now() + app.config.query_timeout.as_std();
        let reader = app.store.reader(&tenants);
        let estimate: u64 = reader
            .stream_stats(&req.matchers, req.start, req.end)
            .map_err(storage)?
            .iter()
            .map(|s| s.entries)
            .sum();
        let mined = mine(&reader, &req, estimate, MAX_MINED_LINES, deadline)?;
        tracing::debug!(
            lines = mined.lines,
            every = mined.every,
            evicted = mined.evicted_lines,
            patterns = mined.found.len(),
            "patterns mined"
        );
        to_json(&PatternsAnswer {
            status: "success",
            data: series(&req, mined),
        })
    })
    .await
}

/// What mining found.
#[derive(Debug)]
pub struct Mined {
    pub found: Vec<Found>,
    /// Lines counted (weighted by the sampling stride).
    pub lines: u64,
    /// The sampling stride: every `every`-th line was mined.
    pub every: u64,
    pub evicted_lines: u64,
}

/// Mines the lines of `req`'s streams. `estimate` is how many lines they hold (from block
/// summaries; it only chooses the sampling stride), `budget` how many may be mined.
pub fn mine(
    source: &dyn Source,
    req: &Request,
    estimate: u64,
    budget: u64,
    deadline: Instant,
) -> Result<Mined, QueryError> {
    let every = estimate.div_ceil(budget.max(1)).max(1);
    let weight = u32::try_from(every).unwrap_or(u32::MAX);
    let mut cursors = source.select(&Select {
        matchers: &req.matchers,
        start: req.start,
        end: req.end,
        direction: Direction::Forward,
        columns: Columns {
            lines: true,
            metadata: true,
        },
        required: None,
        fields: None,
    })?;
    // The same streams in the same order every time, whatever order storage keeps them in.
    cursors.sort_by(|a, b| a.labels().cmp(b.labels()));
    let first_bucket = req.first_bucket();
    let mut miner = Miner::new(miner::MAX_CLUSTERS);
    let mut tokens = Tokens::default();
    let mut seen: u64 = 0;
    for cursor in &mut cursors {
        while let Some(batch) = cursor.next_batch()? {
            for i in 0..batch.len() {
                seen += 1;
                if seen.is_multiple_of(4096) && Instant::now() > deadline {
                    return Err(QueryError::Timeout);
                }
                if !(seen - 1).is_multiple_of(every) {
                    continue;
                }
                let ts = batch.timestamps[i];
                let bucket = u32::try_from(ts.div_euclid(req.step) - first_bucket).unwrap_or(0);
                let level = batch
                    .metadata(i)
                    .find(|(n, _)| *n == logql::detect::DETECTED_LEVEL)
                    .map_or(miner::level_index("unknown"), |(_, v)| {
                        miner::level_index(v)
                    });
                let line = batch.line(i);
                tokens.cut(line);
                miner.add(line, &tokens, level, bucket, weight);
            }
        }
    }
    let (lines, evicted_lines) = (miner.lines, miner.evicted_lines);
    Ok(Mined {
        found: miner.finish(),
        lines,
        every,
        evicted_lines,
    })
}

#[derive(Serialize)]
struct PatternsAnswer {
    status: &'static str,
    data: Vec<PatternSeries>,
}

/// One pattern of the answer, in Loki's field order.
#[derive(Debug, Serialize, PartialEq)]
pub struct PatternSeries {
    pub pattern: String,
    pub level: &'static str,
    /// `[unix_seconds, count]`, one per step from the first bucket with lines to the last.
    pub samples: Vec<[i64; 2]>,
}

/// The patterns worth showing, most lines first, as Loki answers them.
pub fn series(req: &Request, mined: Mined) -> Vec<PatternSeries> {
    let mut found = mined.found;
    // Two clusters may end up with the same template: one pattern.
    found.sort_by(|a, b| (&a.pattern, a.level).cmp(&(&b.pattern, b.level)));
    let mut merged: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        match merged.last_mut() {
            Some(m) if m.pattern == f.pattern && m.level == f.level => {
                m.total += f.total;
                m.samples.extend(f.samples);
                m.samples.sort_unstable_by_key(|s| s.0);
                m.samples.dedup_by(|later, first| {
                    let same = later.0 == first.0;
                    if same {
                        first.1 += later.1;
                    }
                    same
                });
            }
            _ => merged.push(f),
        }
    }
    let lines = mined.lines;
    merged.retain(|f| {
        f.total >= MIN_PATTERN_LINES
            || (f.total >= 2 && f.total * 100 >= lines * MIN_PATTERN_PERCENT)
    });
    merged.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| a.pattern.cmp(&b.pattern))
            .then(a.level.cmp(&b.level))
    });
    merged.truncate(MAX_PATTERNS);
    let first = req.first_bucket();
    let seconds = |bucket: u32| {
        (first + i64::from(bucket))
            .saturating_mul(req.step)
            .div_euclid(NANOS_PER_SECOND)
    };
    merged
        .into_iter()
        .map(|f| {
            let mut samples = Vec::new();
            let mut next: Option<u32> = None;
            for (bucket, count) in f.samples {
                // Steps without lines between two with lines count zero, so that a graph
                // of the counts drops to zero instead of drawing a line across the gap.
                if let Some(mut b) = next {
                    while b < bucket {
                        samples.push([seconds(b), 0]);
                        b += 1;
                    }
                }
                samples.push([seconds(bucket), i64::try_from(count).unwrap_or(i64::MAX)]);
                next = Some(bucket + 1);
            }
            PatternSeries {
                pattern: f.pattern,
                level: LEVELS[usize::from(f.level)],
                samples,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use logql::{MemoryEntry, MemorySource};

    const T0: i64 = 1_795_168_800 * NANOS_PER_SECOND; // 2026-11-20T10:00:00Z

    fn req(step_s: i64) -> Request {
        Request {
            matchers: Vec::new(),
            start: T0,
            end: T0 + 3600 * NANOS_PER_SECOND,
            step: step_s * NANOS_PER_SECOND,
        }
    }

    fn source(lines: &[(i64, &str, &str)]) -> MemorySource {
        let mut s = MemorySource::new();
        s.push(
            protocol::Labels::parse(r#"{app="web"}"#).unwrap(),
            lines.iter().map(|(secs, level, line)| MemoryEntry {
                ts: T0 + secs * NANOS_PER_SECOND,
                line: line.to_string(),
                metadata: vec![("detected_level".into(), level.to_string())],
            }),
        );
        s
    }

    fn far() -> Instant {
        Instant::now() + std::time::Duration::from_secs(60)
    }

    #[test]
    fn counts_per_step_with_zero_steps_between() {
        let lines: Vec<(i64, &str, &str)> = (0..40)
            .map(|i| {
                let secs = if i < 20 { 5 } else { 65 };
                (secs + i, "info", "GET /index.html 200 took 5ms ok")
            })
            .collect();
        let r = req(30);
        let mined = mine(&source(&lines), &r, 40, MAX_MINED_LINES, far()).unwrap();
        let s = series(&r, mined);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].level, "info");
        let t0 = T0 / NANOS_PER_SECOND;
        // Seconds 5..=24 fall in [0, 30), 85..=104 in [60, 90) and [90, 120).
        assert_eq!(
            s[0].samples,
            [[t0, 20], [t0 + 30, 0], [t0 + 60, 5], [t0 + 90, 15]]
        );
    }

    #[test]
    fn rare_patterns_are_left_out_unless_a_share_of_a_few_lines() {
        let mut lines: Vec<(i64, &str, &str)> = (0..40)
            .map(|i| (i, "info", "GET /index.html 200 took 5ms ok"))
            .collect();
        lines.push((50, "error", "disk full on /var/lib/data, giving up"));
        lines.push((51, "error", "disk full on /var/lib/data, giving up"));
        let r = req(60);
        let s = series(
            &r,
            mine(&source(&lines), &r, 42, MAX_MINED_LINES, far()).unwrap(),
        );
        assert_eq!(s.len(), 2, "2 lines of 42 is more than 1%: {s:?}");
        assert_eq!(s[1].level, "error");
        lines.extend((100..3000).map(|i| (i, "info", "GET /index.html 200 took 5ms ok")));
        let s = series(
            &r,
            mine(&source(&lines), &r, 3000, MAX_MINED_LINES, far()).unwrap(),
        );
        assert_eq!(s.len(), 1, "2 lines of 3000 is noise: {s:?}");
    }

    #[test]
    fn sampling_mines_every_kth_line_and_scales_the_counts() {
        let lines: Vec<(i64, &str, &str)> = (0..1000)
            .map(|i| (i, "info", "worker finished job in 5ms ok"))
            .collect();
        let r = req(3600);
        let mined = mine(&source(&lines), &r, 1000, 100, far()).unwrap();
        assert_eq!(mined.every, 10);
        let s = series(&r, mined);
        assert_eq!(s[0].samples, [[T0 / NANOS_PER_SECOND, 1000]]);
    }

    #[test]
    fn the_query_is_a_selector() {
        let p = |q: &str| {
            Params::from_pairs(vec![
                ("query".into(), q.into()),
                ("start".into(), "2026-11-20T10:00:00Z".into()),
                ("end".into(), "2026-11-20T11:00:00Z".into()),
            ])
        };
        let r = Request::from_params(&p(r#"{app="web"}"#), T0).unwrap();
        assert_eq!(r.matchers.len(), 1);
        assert_eq!(r.step, 14 * NANOS_PER_SECOND, "3600 s / 250, whole seconds");
        let e = Request::from_params(&p(r#"{app="web"} |= "x""#), T0).unwrap_err();
        assert!(e.message.starts_with("only label matchers"), "{e}");
        assert!(Request::from_params(&p("sum(rate({a=\"b\"}[1m]))"), T0).is_err());
        assert!(Request::from_params(&p(""), T0).is_err());
        let small = Params::from_pairs(vec![
            ("query".into(), r#"{app="web"}"#.into()),
            ("start".into(), "0".into()),
            ("end".into(), "86400".into()),
            ("step".into(), "1".into()),
        ]);
        let e = Request::from_params(&small, T0).unwrap_err();
        assert!(e.message.contains("11,000 points"), "{e}");
        let short = Params::from_pairs(vec![
            ("query".into(), r#"{app="web"}"#.into()),
            ("start".into(), "0".into()),
            ("end".into(), "60".into()),
            ("step".into(), "1s".into()),
        ]);
        assert_eq!(
            Request::from_params(&short, T0).unwrap().step,
            MIN_STEP,
            "never finer than 10 s"
        );
    }

    #[test]
    fn a_query_past_its_deadline_stops() {
        let mut src = MemorySource::new();
        src.push(
            protocol::Labels::parse(r#"{app="web"}"#).unwrap(),
            (0..10_000).map(|i| MemoryEntry {
                ts: T0 + i,
                line: "x y z w".into(),
                metadata: Vec::new(),
            }),
        );
        let r = req(60);
        let err = mine(&src, &r, 10_000, MAX_MINED_LINES, Instant::now()).unwrap_err();
        assert!(matches!(err, QueryError::Timeout));
    }
}

#[cfg(test)]
mod data_tests;
