//! `index/volume` and `index/volume_range`: bytes per group of streams, as Loki's index
//! answers them for Grafana's Explore and Drilldown.
//!
//! Grouping follows Loki: by default (`aggregateBy=series`) a stream counts under its
//! values of the labels the selector names (or of `targetLabels`); with
//! `aggregateBy=labels` the volume of every stream counts under each of its label names.
//! A range query splits `[start, end]` into steps aligned to the step, each ending 1 ms
//! before the next begins; each step is its own top-`limit`. The answer is a vector when
//! every group has one point, else a matrix.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use logql::ast::{MatchOp, Matcher};
use logql::engine::QueryError;
use logql::{Columns, Direction, Select, Source};
use protocol::Labels;
use protocol::response::{DataResponse, Point, QueryResult, Sample, Series};
use protocol::time::{NANOS_PER_MILLI, NANOS_PER_SECOND};
use serde::Serialize;

use crate::app::App;
use crate::error::ApiError;
use crate::metadata::{selector, storage};
use crate::params::Params;
use crate::query::{answer, now_nanos, to_json};
use crate::tenant;

const DEFAULT_LIMIT: u32 = 100;
/// The label a multi-tenant read adds; never a volume group.
const TENANT_LABEL: &str = "__tenant_id__";

/// `GET|POST /loki/api/v1/index/volume`.
pub async fn instant(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(volume(&app, p, false).await)
}

/// `GET|POST /loki/api/v1/index/volume_range`.
pub async fn range(State(app): State<Arc<App>>, p: Params) -> Response {
    answer(volume(&app, p, true).await)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AggregateBy {
    Series,
    Labels,
}

/// A parsed volume request.
#[derive(Debug, Clone)]
struct Request {
    matchers: Vec<Matcher>,
    /// Names whose values make a group (series mode) or the names counted (labels mode);
    /// `None` in labels mode without targets: every name.
    group_by: Option<BTreeSet<String>>,
    aggregate_by: AggregateBy,
    limit: usize,
    /// `(from, through)` of each step, nanoseconds, through inclusive at ms precision.
    buckets: Vec<(i64, i64)>,
}

async fn volume(app: &Arc<App>, p: Params, is_range: bool) -> Result<Bytes, ApiError> {
    let tenants = tenant::read_tenants(app.config.auth, &p.headers)?;
    let (start, end) = p.ordered_bounds(now_nanos())?;
    let limit = match p.get("limit") {
        Some("0") => DEFAULT_LIMIT,
        _ => p.positive("limit", DEFAULT_LIMIT)?,
    } as usize;
    let aggregate_by = match p.get("aggregateBy") {
        None | Some("series") => AggregateBy::Series,
        Some("labels") => AggregateBy::Labels,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid aggregation option: aggregateBy is series or labels",
            ));
        }
    };
    let targets: Vec<String> = p
        .get("targetLabels")
        .map(|t| {
            t.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let mut matchers = selector(p.get("query").unwrap_or_default())?;
    let group_by = if targets.is_empty() {
        match aggregate_by {
            AggregateBy::Series => Some(
                matchers
                    .iter()
                    .filter(|m| m.name != TENANT_LABEL)
                    .map(|m| m.name.clone())
                    .collect(),
            ),
            AggregateBy::Labels => None,
        }
    } else {
        // Only streams that have every target label count.
        for t in &targets {
            if !matchers.iter().any(|m| &m.name == t) {
                let m = Matcher::new(t.clone(), MatchOp::Re, ".+").map_err(|e| {
                    ApiError::bad_request(format!("invalid target label {t:?}: {e}"))
                })?;
                matchers.push(m);
            }
        }
        Some(targets.into_iter().collect())
    };
    let buckets = if is_range {
        let step = p.step_or_default(start, end)?;
        if (end - start) / step > 11_000 {
            return Err(ApiError::bad_request(
                "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of the step parameter",
            ));
        }
        steps(start, end, step)
    } else {
        vec![(start, end)]
    };
    let req = Request {
        matchers,
        group_by,
        aggregate_by,
        limit,
        buckets,
    };
    app.run_query(move |app| {
        let reader = app.store.reader(&tenants);
        let per_bucket = if is_range {
            bucket_bytes(&reader, &req)?
        } else {
            let (from, through) = req.buckets[0];
            let stats = reader
                .stream_stats(&req.matchers, from, through.saturating_add(1))
                .map_err(storage)?;
            vec![stats.into_iter().map(|s| (s.labels, s.bytes)).collect()]
        };
        to_json(&Answer(DataResponse::success(evaluate(&req, per_bucket))))
    })
    .await
}

/// Each stream's bytes in each step, counted the way Loki's index answers a volume query,
/// so the figures match Loki's: every batch the store hands back (a block) stands for one
/// of Loki's chunks, whose size the index keeps in whole KiB (`round(uncompressed / 1024)`,
/// the uncompressed size being the lines plus 8 bytes per structured-metadata pair plus the
/// distinct metadata strings); each step is asked separately with its bounds cut to whole
/// seconds, and takes `floor(KiB × overlap)` of every chunk it overlaps (`GetFactorOfTime`
/// over millisecond bounds). Only timestamps, line lengths and metadata are read, no line
/// is decompressed.
fn bucket_bytes(src: &dyn Source, req: &Request) -> Result<Vec<Vec<(Labels, u64)>>, QueryError> {
    let (Some(first), Some(last)) = (req.buckets.first(), req.buckets.last()) else {
        return Ok(Vec::new());
    };
    let select = Select {
        matchers: &req.matchers,
        start: first.0,
        end: last.1.saturating_add(1),
        direction: Direction::Forward,
        columns: Columns {
            lines: false,
            metadata: true,
        },
        required: None,
        fields: None,
    };
    // Each step as Loki asks its index: whole seconds, in milliseconds.
    let steps_ms: Vec<(i64, i64)> = req
        .buckets
        .iter()
        .map(|&(from, through)| {
            let sec = |ns: i64| ns.div_euclid(NANOS_PER_SECOND) * 1000;
            (sec(from), sec(through))
        })
        .collect();
    let mut out: Vec<Vec<(Labels, u64)>> = vec![Vec::new(); req.buckets.len()];
    let mut per_stream = vec![0u64; req.buckets.len()];
    for mut cursor in src.select(&select)? {
        per_stream.iter_mut().for_each(|b| *b = 0);
        while let Some(batch) = cursor.next_batch()? {
            let (Some(&lo), Some(&hi)) = (batch.timestamps.first(), batch.timestamps.last()) else {
                continue;
            };
            let mut symbols: HashSet<&str> = HashSet::new();
            for (name, value) in &batch.metadata_dict {
                symbols.insert(name);
                symbols.insert(value);
            }
            let uncompressed: u64 = batch
                .line_lengths
                .iter()
                .map(|l| u64::from(*l))
                .sum::<u64>()
                + 8 * batch.metadata_ids.len() as u64
                + symbols.iter().map(|s| s.len() as u64).sum::<u64>();
            let kib = (uncompressed as f64 / 1024.0).round();
            let (lo_ms, hi_ms) = (
                lo.div_euclid(NANOS_PER_MILLI),
                hi.div_euclid(NANOS_PER_MILLI),
            );
            let first = steps_ms.partition_point(|b| b.1 < lo_ms);
            for (i, b) in steps_ms.iter().enumerate().skip(first) {
                if b.0 > hi_ms {
                    break;
                }
                per_stream[i] += ((kib * overlap(b.0, b.1, lo_ms, hi_ms)) as u64) << 10;
            }
        }
        for (i, bytes) in per_stream.iter().enumerate() {
            if *bytes > 0 {
                out[i].push((cursor.labels().clone(), *bytes));
            }
        }
    }
    Ok(out)
}

/// Loki's buckets: the first starts at `start`, the others at multiples of `step`; each
/// ends 1 ms before the next starts, the last at `end`.
fn steps(start: i64, end: i64, step: i64) -> Vec<(i64, i64)> {
    let mut out = Vec::new();
    let mut s = start - start.rem_euclid(step);
    let mut first = true;
    while s < end {
        let next = s.saturating_add(step);
        let through = if next >= end {
            end
        } else {
            next - NANOS_PER_MILLI
        };
        out.push((if first { start } else { s }, through));
        first = false;
        s = next;
    }
    if out.is_empty() {
        out.push((start, end));
    }
    out
}

/// The share of `[lo, hi]` that `[from, through]` covers (1 for a single instant), as
/// Loki's `GetFactorOfTime`.
fn overlap(from: i64, through: i64, lo: i64, hi: i64) -> f64 {
    if from > hi || through < lo {
        return 0.0;
    }
    if lo == hi {
        return 1.0;
    }
    let total = (hi - lo) as f64;
    let lead = (from - lo).max(0) as f64;
    let trail = (hi - through).max(0) as f64;
    (total - lead - trail) / total
}

/// Groups the streams of every bucket and builds Loki's answer. `per_bucket[i]` holds
/// each matching stream's labels and bytes in bucket `i`.
fn evaluate(req: &Request, per_bucket: Vec<Vec<(Labels, u64)>>) -> QueryResult {
    let mut series: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for (&(_, through), streams) in req.buckets.iter().zip(per_bucket) {
        let mut groups: BTreeMap<Labels, u64> = BTreeMap::new();
        for (labels, bytes) in streams {
            match req.aggregate_by {
                AggregateBy::Series => {
                    let key = Labels::from_pairs(
                        labels
                            .iter()
                            .filter(|l| req.group_by.as_ref().is_some_and(|g| g.contains(&l.name)))
                            .map(|l| (l.name.clone(), l.value.clone())),
                    );
                    *groups.entry(key).or_default() += bytes;
                }
                AggregateBy::Labels => {
                    for l in &labels {
                        if l.name == TENANT_LABEL
                            || req.group_by.as_ref().is_some_and(|g| !g.contains(&l.name))
                        {
                            continue;
                        }
                        let key = Labels::from_pairs([(l.name.clone(), String::new())]);
                        *groups.entry(key).or_default() += bytes;
                    }
                }
            }
        }
        let mut top: Vec<(Labels, u64)> = groups.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(req.limit);
        let t_ms = through.div_euclid(NANOS_PER_MILLI);
        for (labels, bytes) in top {
            series.entry(labels).or_default().push(Point {
                t_ms,
                v: bytes as f64,
            });
        }
    }
    let mut list: Vec<(Labels, Vec<Point>)> = series.into_iter().collect();
    list.sort_by(|a, b| {
        b.1[0]
            .v
            .total_cmp(&a.1[0].v)
            .then_with(|| a.0.to_string().cmp(&b.0.to_string()))
    });
    if list.iter().all(|(_, pts)| pts.len() <= 1) {
        return QueryResult::Vector(
            list.into_iter()
                .map(|(metric, pts)| Sample {
                    metric,
                    point: pts[0],
                })
                .collect(),
        );
    }
    QueryResult::Matrix(
        list.into_iter()
            .map(|(metric, values)| Series { metric, values })
            .collect(),
    )
}

/// `{"status":"success","data":{"resultType":...,"result":[...]}}`.
struct Answer(DataResponse<QueryResult>);

impl Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // The query response writer knows the result shapes; reuse it and drop `stats`.
        let resp = protocol::response::QueryResponse {
            result: self.0.data.clone(),
            stats: None,
            encoding_flags: Vec::new(),
        };
        let v = serde_json::to_value(&resp).map_err(serde::ser::Error::custom)?;
        let data = &v["data"];
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("status", "success")?;
        m.serialize_entry(
            "data",
            &serde_json::json!({"resultType": data["resultType"], "result": data["result"]}),
        )?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;
    const T0: i64 = 1_795_168_800 * S;

    fn req(group: Option<&[&str]>, by: AggregateBy, buckets: Vec<(i64, i64)>) -> Request {
        Request {
            matchers: vec![],
            group_by: group.map(|g| g.iter().map(|s| s.to_string()).collect()),
            aggregate_by: by,
            limit: 100,
            buckets,
        }
    }

    fn data() -> Vec<(Labels, u64)> {
        vec![
            (
                Labels::from_pairs([("namespace", "shop"), ("app", "api")]),
                300,
            ),
            (
                Labels::from_pairs([("namespace", "shop"), ("app", "web")]),
                200,
            ),
            (Labels::from_pairs([("namespace", "db"), ("app", "pg")]), 50),
            (Labels::from_pairs([("namespace", "db")]), 10),
        ]
    }

    #[test]
    fn overlap_like_loki() {
        assert_eq!(overlap(0, 10, 0, 10), 1.0);
        assert_eq!(overlap(0, 5, 0, 10), 0.5);
        assert_eq!(overlap(20, 30, 0, 10), 0.0);
        assert_eq!(overlap(0, 10, 5, 5), 1.0);
    }

    #[test]
    fn steps_like_loki() {
        let b = steps(T0, T0 + 1800 * S, 300 * S);
        assert_eq!(b.len(), 6);
        assert_eq!(b[0], (T0, T0 + 300 * S - NANOS_PER_MILLI));
        assert_eq!(b[5], (T0 + 1500 * S, T0 + 1800 * S));
        let b = steps(T0 + 10 * S, T0 + 600 * S, 300 * S);
        assert_eq!(b[0].0, T0 + 10 * S);
        assert_eq!(b[1].0, T0 + 300 * S);
    }

    #[test]
    fn groups_by_selector_labels() {
        let r = req(
            Some(&["namespace"]),
            AggregateBy::Series,
            vec![(T0, T0 + 10 * S)],
        );
        let QueryResult::Vector(v) = evaluate(&r, vec![data(); r.buckets.len()]) else {
            panic!("want a vector")
        };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].metric, Labels::from_pairs([("namespace", "shop")]));
        assert_eq!(v[0].point.v, 500.0);
        assert_eq!(v[0].point.t_ms, (T0 + 10 * S) / NANOS_PER_MILLI);
        assert_eq!(v[1].point.v, 60.0);
    }

    #[test]
    fn groups_by_label_names() {
        let r = req(Some(&["app"]), AggregateBy::Labels, vec![(T0, T0 + S)]);
        let QueryResult::Vector(v) = evaluate(&r, vec![data(); r.buckets.len()]) else {
            panic!("want a vector")
        };
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].metric, Labels::from_pairs([("app", "")]));
        assert_eq!(v[0].point.v, 550.0);
        let r = req(None, AggregateBy::Labels, vec![(T0, T0 + S)]);
        let QueryResult::Vector(v) = evaluate(&r, vec![data(); r.buckets.len()]) else {
            panic!("want a vector")
        };
        assert_eq!(v[0].metric, Labels::from_pairs([("namespace", "")]));
        assert_eq!(v[0].point.v, 560.0);
    }

    #[test]
    fn ranges_are_matrices_and_limits_apply_per_step() {
        let mut r = req(
            Some(&["app"]),
            AggregateBy::Series,
            steps(T0, T0 + 600 * S, 300 * S),
        );
        r.limit = 1;
        let QueryResult::Matrix(m) = evaluate(&r, vec![data(); r.buckets.len()]) else {
            panic!("want a matrix")
        };
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].metric, Labels::from_pairs([("app", "api")]));
        assert_eq!(m[0].values.len(), 2);
        let body =
            serde_json::to_string(&Answer(DataResponse::success(QueryResult::Matrix(m)))).unwrap();
        assert!(
            body.starts_with(r#"{"status":"success","data":{"result":"#)
                || body.contains(r#""resultType":"matrix""#),
            "{body}"
        );
        assert!(!body.contains("stats"), "{body}");
    }

    #[test]
    fn step_bytes_follow_lokis_index_arithmetic() {
        use logql::{MemoryEntry, MemorySource};
        // 100 lines of 100 bytes, each with one metadata pair: 10,000 + 8 × 100 + 18
        // ("detected_level", "info") = 10,818 bytes, kept as 11 KiB; each half of the
        // window takes floor(11 × ~0.5) = 5 KiB.
        let mut src = MemorySource::new();
        src.push(
            Labels::from_pairs([("app".to_string(), "a".to_string())]),
            (0..100).map(|i| MemoryEntry {
                ts: T0 + i * 18 * S,
                line: "x".repeat(100),
                metadata: vec![("detected_level".into(), "info".into())],
            }),
        );
        let mut r = req(None, AggregateBy::Series, steps(T0, T0 + 1800 * S, 900 * S));
        r.matchers = vec![Matcher::new("app", MatchOp::Re, ".+").unwrap()];
        let got = bucket_bytes(&src, &r).unwrap();
        let per_step: Vec<u64> = got.iter().map(|s| s.iter().map(|x| x.1).sum()).collect();
        assert_eq!(per_step, vec![5 * 1024, 5 * 1024]);
    }
}
