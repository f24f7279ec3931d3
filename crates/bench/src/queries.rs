//! The benchmark's queries, run over HTTP against the data set, each several times.
//!
//! | name | query | over |
//! | --- | --- | --- |
//! | `needle` | `{namespace=~".+"} \|= "<NEEDLE>"` (log, limit 1000) | all 100 streams |
//! | `stream-filter` | `{pod="<an openssh pod>"} \|= "Failed password"` (log, limit 1000) | 1 stream |
//! | `rate-all` | `sum(rate({namespace=~".+"}[1m]))` | all streams |
//! | `json-level-count` | `sum by (level) (count_over_time({namespace="shop"} \| json [1m]))` | 20 JSON streams |
//! | `json-status-filter` | `{namespace="shop"} \| json \| status >= 500` (log, limit 1000) | 20 JSON streams |
//! | `logfmt-p99` | `quantile_over_time(0.99, {namespace="infra"} \| logfmt \| unwrap duration(duration) [1m]) by (app)` | 20 logfmt streams |
//! | `topk-bytes` | `topk(5, sum by (pod) (bytes_over_time({namespace=~".+"}[1m])))` | all streams |
//! | `regex-ci-count` | `sum by (app) (count_over_time({namespace="edge"} \|~ "(?i)fail" [1m]))` | 20 text streams |
//!
//! Metric queries cover the data set's whole span at a 60 s step; log queries read it
//! backwards, as Grafana does. Each query runs once untimed (a warm-up: the page cache
//! and the server's caches as a dashboard refresh finds them), then `--runs` times. A
//! query that answers nothing fails the bench: a fast empty answer measures nothing. The
//! log queries whose answer is known from the data set are checked exactly.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::dataset::{DataSet, NEEDLE};

/// One query of the benchmark.
#[derive(Debug, Clone)]
pub struct Query {
    pub name: &'static str,
    pub logql: String,
    /// A log query (entries, limit 1000) rather than a metric one.
    pub log: bool,
    /// What the query reads, for the report.
    pub over: &'static str,
    /// Entries (log queries) the answer must hold; every answer must hold at least one
    /// entry or series.
    pub expect: Option<usize>,
}

/// The queries, with selectors resolved against `ds` (its pods).
pub fn all(ds: &DataSet) -> Vec<Query> {
    // The OpenSSH stream with the most failed logins, and how many it has.
    let (ssh_pod, failed) = ds
        .streams
        .iter()
        .enumerate()
        .filter(|(_, s)| s.app == "openssh")
        .map(|(i, s)| {
            let e = ds.stream(i);
            let n = (0..e.len())
                .filter(|&k| e.line(k).contains("Failed password"))
                .count();
            (s.pod.as_str(), n)
        })
        .max_by_key(|&(_, n)| n)
        .unwrap_or_default();
    let q = |name, logql: String, log, over, expect| Query {
        name,
        logql,
        log,
        over,
        expect,
    };
    vec![
        q(
            "needle",
            format!(r#"{{namespace=~".+"}} |= "{NEEDLE}""#),
            true,
            "100 streams",
            Some(1),
        ),
        q(
            "stream-filter",
            format!(r#"{{pod="{ssh_pod}"}} |= "Failed password""#),
            true,
            "1 stream",
            Some(failed.min(LIMIT)),
        ),
        q(
            "rate-all",
            r#"sum(rate({namespace=~".+"}[1m]))"#.into(),
            false,
            "100 streams",
            None,
        ),
        q(
            "json-level-count",
            r#"sum by (level) (count_over_time({namespace="shop"} | json [1m]))"#.into(),
            false,
            "20 JSON streams",
            None,
        ),
        q(
            "json-status-filter",
            r#"{namespace="shop"} | json | status >= 500"#.into(),
            true,
            "20 JSON streams",
            None,
        ),
        q(
            "logfmt-p99",
            r#"quantile_over_time(0.99, {namespace="infra"} | logfmt | unwrap duration(duration) [1m]) by (app)"#.into(),
            false,
            "20 logfmt streams",
            None,
        ),
        q(
            "topk-bytes",
            r#"topk(5, sum by (pod) (bytes_over_time({namespace=~".+"}[1m])))"#.into(),
            false,
            "100 streams",
            None,
        ),
        q(
            "regex-ci-count",
            r#"sum by (app) (count_over_time({namespace="edge"} |~ "(?i)fail" [1m]))"#.into(),
            false,
            "20 text streams",
            None,
        ),
    ]
}

/// Entries a log query asks for.
const LIMIT: usize = 1000;

/// Timings of one query.
#[derive(Debug, Clone)]
pub struct Timing {
    pub query: Query,
    pub runs: Vec<Duration>,
    /// Entries (log queries) or series (metric queries) in the answer.
    pub results: usize,
}

impl Timing {
    pub fn median(&self) -> Duration {
        let mut v = self.runs.clone();
        v.sort();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
    pub fn min(&self) -> Duration {
        self.runs.iter().min().copied().unwrap_or_default()
    }
    pub fn max(&self) -> Duration {
        self.runs.iter().max().copied().unwrap_or_default()
    }
}

/// Runs `q` `runs` times against `base` (`http://host:port`) over `[start, end]`.
pub fn time(base: &str, ds: &DataSet, q: &Query, runs: usize) -> anyhow::Result<Timing> {
    let agent = crate::http::agent();
    let url = format!("{base}/loki/api/v1/query_range");
    // Loki's `end` is inclusive for log queries; one nanosecond past the last entry.
    let (start, end) = (ds.start.to_string(), (ds.end + 1).to_string());
    let mut timing = Timing {
        query: q.clone(),
        runs: Vec::with_capacity(runs),
        results: 0,
    };
    let limit = LIMIT.to_string();
    // Run 0 is the warm-up.
    for run in 0..=runs.max(1) {
        let mut req = agent
            .get(&url)
            .query("query", &q.logql)
            .query("start", &start)
            .query("end", &end);
        req = if q.log {
            req.query("limit", &limit).query("direction", "backward")
        } else {
            req.query("step", "60s")
        };
        let began = Instant::now();
        let resp = req.call().with_context(|| format!("query {}", q.name))?;
        let status = resp.status().as_u16();
        let body = crate::http::text(resp)?;
        let took = began.elapsed();
        anyhow::ensure!(status == 200, "query {} answered {status}: {body}", q.name);
        let results = count_results(&body, q.log)
            .with_context(|| format!("query {}: unexpected answer {body:.300}", q.name))?;
        anyhow::ensure!(
            results > 0,
            "query {} answered nothing: it must match the data set to measure anything",
            q.name
        );
        if let Some(n) = q.expect {
            anyhow::ensure!(
                results == n,
                "query {} answered {results} entries where the data set has {n}",
                q.name
            );
        }
        timing.results = results;
        if run > 0 {
            timing.runs.push(took);
        }
    }
    Ok(timing)
}

/// Entries of a streams answer, or series of a matrix answer.
fn count_results(body: &str, log: bool) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let result = v.get("data")?.get("result")?.as_array()?;
    if log {
        Some(
            result
                .iter()
                .map(|s| {
                    s.get("values")
                        .and_then(|v| v.as_array())
                        .map_or(0, Vec::len)
                })
                .sum(),
        )
    } else {
        Some(result.len())
    }
}
