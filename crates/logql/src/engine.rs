//! The query engine the server calls: validates a query's parameters as Loki's HTTP API
//! does, parses it, evaluates it over a [`Source`] and answers with Loki's response
//! types, or with a [`QueryError`] that carries Loki's message and HTTP status.
//!
//! Limits protect the server: entries per log query, series per metric query, points
//! per series, a deadline checked while reading, and a budget on the bytes a query may
//! hold (samples, entries, series), so a query that would exhaust memory fails with a
//! message saying what to change instead.

use std::time::{Duration, Instant};

use protocol::response::QueryResponse;

use crate::ast::Expr;
use crate::parser::ParseError;
use crate::source::{Direction, Source, SourceError};

pub use crate::format_query;
pub use crate::parser::parse;

/// What a single query may use. [`Limits::default`] is Loki's defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most entries a log query may return (`max_entries_limit_per_query`, 5000).
    pub max_entries: u32,
    /// Most series a metric query may return (`max_query_series`, 500).
    pub max_series: usize,
    /// Most points per series of a range query (11,000).
    pub max_points: usize,
    /// How long a query may run (Loki's `query_timeout`, 1 minute).
    pub timeout: Duration,
    /// Bytes of samples, entries and labels one query may hold (512 MiB).
    pub max_query_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_entries: 5000,
            max_series: 500,
            max_points: 11_000,
            timeout: Duration::from_secs(60),
            max_query_bytes: 512 << 20,
        }
    }
}

/// `/loki/api/v1/query_range`. Times are Unix nanoseconds.
#[derive(Debug, Clone)]
pub struct RangeQuery<'a> {
    pub query: &'a str,
    pub start: i64,
    pub end: i64,
    /// Nanoseconds; `None` for Loki's default (the range / 250, at least 1s).
    pub step: Option<i64>,
    /// Log queries only: returned entries are at least this far apart (Loki's `interval`).
    pub interval: Option<i64>,
    pub limit: u32,
    pub direction: Direction,
    /// `X-Loki-Response-Encoding-Flags: categorize-labels`.
    pub categorize_labels: bool,
}

/// `/loki/api/v1/query`.
#[derive(Debug, Clone)]
pub struct InstantQuery<'a> {
    pub query: &'a str,
    pub time: i64,
    pub limit: u32,
    pub direction: Direction,
    pub categorize_labels: bool,
}

/// Why a query failed, with the HTTP status Loki answers.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A parameter or query Loki refuses: 400.
    #[error("{0}")]
    BadRequest(String),
    /// A limit the query hit (series, entries, memory): 400, with what to change.
    #[error("{0}")]
    Limit(String),
    /// A pipeline that cannot run, or errors left in a metric query's labels: 400.
    #[error("{0}")]
    Pipeline(String),
    /// The query ran past its deadline: 504.
    #[error(
        "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"
    )]
    Timeout,
    /// Storage failed: 500.
    #[error("{0}")]
    Storage(String),
}

impl QueryError {
    /// The HTTP status Loki answers with.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::Parse(_)
            | QueryError::BadRequest(_)
            | QueryError::Limit(_)
            | QueryError::Pipeline(_) => 400,
            QueryError::Timeout => 504,
            QueryError::Storage(_) => 500,
        }
    }
}

impl From<SourceError> for QueryError {
    fn from(e: SourceError) -> QueryError {
        match e {
            SourceError::Storage(m) => QueryError::Storage(m),
            SourceError::Limit(m) => QueryError::Limit(m),
        }
    }
}

/// Loki's answers to a range that ends before it starts and to a step that is not positive
/// (the server's endpoints that step on their own give them too).
pub const ERR_END_BEFORE_START: &str = "end timestamp must not be before or equal to start time";
pub const ERR_STEP: &str =
    "zero or negative query resolution step widths are not accepted. Try a positive integer";
const ERR_INSTANT_LOG: &str = "log queries are not supported as an instant query type, please change your query to a range query type";

/// Loki's default step: the range divided by 250, whole seconds, at least one.
pub fn default_step(start: i64, end: i64) -> i64 {
    let secs = ((end - start) as f64 / 1e9 / 250.0).floor().max(1.0);
    secs as i64 * 1_000_000_000
}

/// Evaluates queries. Cheap to share; holds only the limits.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    limits: Limits,
}

impl Engine {
    pub fn new(limits: Limits) -> Engine {
        Engine { limits }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A range query: log lines between `start` (inclusive) and `end` (exclusive), or a
    /// metric evaluated at every step from `start` to `end`.
    pub fn query_range(
        &self,
        src: &dyn Source,
        q: &RangeQuery<'_>,
    ) -> Result<QueryResponse, QueryError> {
        if q.end < q.start {
            return Err(QueryError::BadRequest(ERR_END_BEFORE_START.into()));
        }
        let step = q.step.unwrap_or_else(|| default_step(q.start, q.end));
        if step <= 0 {
            return Err(QueryError::BadRequest(ERR_STEP.into()));
        }
        if (q.end - q.start) / step > self.limits.max_points as i64 {
            return Err(QueryError::BadRequest(format!(
                "exceeded maximum resolution of {} points per time series. Try increasing the value of the step parameter",
                thousands(self.limits.max_points)
            )));
        }
        let expr = parse(q.query)?;
        let ctx = crate::eval::Ctx::new(src, &self.limits, Instant::now() + self.limits.timeout);
        match expr {
            Expr::Log(log) => {
                self.check_entries_limit(q.limit)?;
                crate::eval::log_query::eval(
                    &ctx,
                    &log,
                    q.start,
                    q.end,
                    q.limit,
                    q.interval,
                    q.direction,
                    q.categorize_labels,
                )
            }
            Expr::Sample(s) => {
                // Loki's frontend aligns metric queries to the step: start down, end up.
                let start = q.start - q.start.rem_euclid(step);
                let end = match q.end.rem_euclid(step) {
                    0 => q.end,
                    r => q.end + step - r,
                };
                crate::eval::metric::eval(&ctx, &s, crate::eval::Steps::range(start, end, step))
            }
        }
    }

    /// An instant query: a metric evaluated at `time`. Log queries are refused, as Loki
    /// refuses them.
    pub fn query_instant(
        &self,
        src: &dyn Source,
        q: &InstantQuery<'_>,
    ) -> Result<QueryResponse, QueryError> {
        let expr = parse(q.query)?;
        let ctx = crate::eval::Ctx::new(src, &self.limits, Instant::now() + self.limits.timeout);
        match expr {
            Expr::Log(_) => Err(QueryError::BadRequest(ERR_INSTANT_LOG.into())),
            Expr::Sample(s) => {
                crate::eval::metric::eval(&ctx, &s, crate::eval::Steps::instant(q.time))
            }
        }
    }

    fn check_entries_limit(&self, limit: u32) -> Result<(), QueryError> {
        let max = self.limits.max_entries;
        if max != 0 && limit > max {
            return Err(QueryError::Limit(format!(
                "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
            )));
        }
        Ok(())
    }
}

/// `11000` as `11,000`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{MemoryEntry, MemorySource};
    use protocol::Labels;
    use protocol::response::QueryResult;

    const T0: i64 = 1_795_168_800_000_000_000;
    const MIN: i64 = 60_000_000_000;

    fn source(streams: usize, per: usize) -> MemorySource {
        let mut src = MemorySource::new();
        for s in 0..streams {
            let labels = Labels::from_pairs([("app", "a".to_string()), ("pod", format!("p{s}"))]);
            src.push(
                labels,
                (0..per).map(|i| MemoryEntry {
                    ts: T0 + i as i64 * 1_000_000_000,
                    line: format!("line {i}"),
                    metadata: vec![],
                }),
            );
        }
        src
    }

    fn range<'a>(query: &'a str, limit: u32) -> RangeQuery<'a> {
        RangeQuery {
            query,
            start: T0,
            end: T0 + 10 * MIN,
            step: Some(MIN),
            interval: None,
            limit,
            direction: Direction::Backward,
            categorize_labels: false,
        }
    }

    #[test]
    fn log_queries_return_the_newest_entries_up_to_the_limit() {
        let src = source(3, 100);
        let r = Engine::default()
            .query_range(&src, &range(r#"{app="a"}"#, 5))
            .unwrap();
        let QueryResult::Streams(streams) = r.result else {
            panic!("not streams");
        };
        let mut ts: Vec<i64> = streams
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.ts))
            .collect();
        ts.sort();
        assert_eq!(ts.len(), 5);
        assert_eq!(*ts.last().unwrap(), T0 + 99_000_000_000);
        assert!(ts[0] >= T0 + 98_000_000_000);
    }

    #[test]
    fn limits_fail_with_what_to_change() {
        let src = source(3, 600);
        let e = Engine::default()
            .query_range(&src, &range(r#"{app="a"}"#, 6000))
            .unwrap_err();
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains("(6000 > 5000)"), "{e}");

        let small = Engine::new(Limits {
            max_series: 2,
            ..Limits::default()
        });
        let e = small
            .query_range(&src, &range(r#"count_over_time({app="a"}[1m])"#, 100))
            .unwrap_err();
        assert!(
            e.to_string().contains("maximum number of series (2)"),
            "{e}"
        );
        assert!(
            small
                .query_range(&src, &range(r#"sum(count_over_time({app="a"}[1m]))"#, 100))
                .is_ok()
        );

        let tiny = Engine::new(Limits {
            max_query_bytes: 1024,
            ..Limits::default()
        });
        let e = tiny
            .query_range(&src, &range(r#"count_over_time({app="a"}[90s])"#, 100))
            .unwrap_err();
        assert_eq!(e.status(), 400, "{e}");

        let hurried = Engine::new(Limits {
            timeout: Duration::ZERO,
            ..Limits::default()
        });
        let e = hurried
            .query_range(&src, &range(r#"sum(count_over_time({app="a"}[1m]))"#, 100))
            .unwrap_err();
        assert_eq!(e.status(), 504, "{e}");
    }

    #[test]
    fn interval_thins_log_results() {
        let src = source(1, 100);
        let mut q = range(r#"{app="a"}"#, 5);
        q.interval = Some(10_000_000_000);
        let r = Engine::default().query_range(&src, &q).unwrap();
        let QueryResult::Streams(streams) = r.result else {
            panic!("not streams");
        };
        let ts: Vec<i64> = streams[0]
            .entries
            .iter()
            .map(|e| (e.ts - T0) / 1_000_000_000)
            .collect();
        assert_eq!(ts, vec![99, 89, 79, 69, 59]);
    }

    #[test]
    fn metric_range_queries_align_and_count() {
        let src = source(2, 600);
        let mut q = range(r#"sum(count_over_time({app="a"}[1m]))"#, 100);
        q.start += 1; // aligned down to T0, as Loki's frontend does
        let r = Engine::default().query_range(&src, &q).unwrap();
        let QueryResult::Matrix(m) = r.result else {
            panic!("not a matrix");
        };
        assert_eq!(m.len(), 1);
        // (T0-1m, T0] has the first entry of each stream; later windows 60 each.
        assert_eq!(m[0].values[0].t_ms, T0 / 1_000_000);
        assert_eq!(m[0].values[0].v, 2.0);
        assert_eq!(m[0].values[1].v, 120.0);
    }

    #[test]
    fn defaults_and_messages() {
        assert_eq!(default_step(0, 1_800_000_000_000), 7_000_000_000);
        assert_eq!(default_step(0, 1), 1_000_000_000);
        assert_eq!(thousands(11000), "11,000");
        assert_eq!(QueryError::Timeout.status(), 504);
    }
}
