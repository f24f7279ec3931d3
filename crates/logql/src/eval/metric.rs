//! Metric queries: the expression tree evaluated into series over the query's steps, then
//! Loki's answer (matrix, vector or scalar) with its series limit and pipeline-error rule.

use protocol::Labels;
use protocol::response::{Point, QueryResponse, QueryResult, Sample, Series as OutSeries};

use super::samples::{SampleGroup, collect};
use super::{Ctx, Series, SeriesSet, Steps, binary, range, vector};
use crate::ast::{Grouping, MatchOp, RangeAggregation, RangeOp, SampleExpr, VectorOp};
use crate::engine::QueryError;

enum Value {
    Series(SeriesSet),
    Scalar(f64),
}

pub(crate) fn eval(
    ctx: &Ctx<'_>,
    e: &SampleExpr,
    steps: Steps,
) -> Result<QueryResponse, QueryError> {
    let v = node(ctx, e, &steps, None, false)?;
    let result = match v {
        Value::Scalar(x) if steps.instant => QueryResult::Scalar(Point {
            t_ms: scalar_instant_time(steps.start),
            v: x,
        }),
        Value::Scalar(x) => QueryResult::Matrix(vec![OutSeries {
            metric: Labels::new(),
            values: (0..steps.n)
                .map(|i| Point {
                    t_ms: ms(steps.time(i)),
                    v: x,
                })
                .collect(),
        }]),
        Value::Series(set) => {
            check_series_limit(ctx, &set)?;
            if steps.instant {
                let mut samples: Vec<Sample> = set
                    .series
                    .into_iter()
                    .filter_map(|s| {
                        s.points.first().map(|&(_, v)| Sample {
                            metric: s.labels,
                            point: Point {
                                t_ms: ms(steps.start),
                                v,
                            },
                        })
                    })
                    .collect();
                match top_sort(e) {
                    Some(VectorOp::Sort) => samples.sort_by(|a, b| a.point.v.total_cmp(&b.point.v)),
                    Some(_) => samples.sort_by(|a, b| b.point.v.total_cmp(&a.point.v)),
                    None => samples.sort_by(|a, b| a.metric.cmp(&b.metric)),
                }
                QueryResult::Vector(samples)
            } else {
                let mut out: Vec<OutSeries> = set
                    .series
                    .into_iter()
                    .map(|s| OutSeries {
                        metric: s.labels,
                        values: s
                            .points
                            .into_iter()
                            .map(|(i, v)| Point {
                                t_ms: ms(steps.time(i as usize)),
                                v,
                            })
                            .collect(),
                    })
                    .collect();
                out.sort_by(|a, b| a.metric.cmp(&b.metric));
                QueryResult::Matrix(out)
            }
        }
    };
    Ok(QueryResponse {
        result,
        stats: None,
        encoding_flags: Vec::new(),
    })
}

fn ms(ns: i64) -> i64 {
    ns / 1_000_000
}

/// The timestamp Loki 3 stamps on a top-level number of an instant query. Its query
/// frontend carries the time in milliseconds, reads that back as seconds and converts to
/// nanoseconds in 64 bits (which wraps for any current date) before taking milliseconds
/// again, and the result is printed as seconds. `1 + 1` at 2026-11-20T10:30:00Z is
/// stamped 5836424850173. Reproduced because clients compare answers byte for byte.
fn scalar_instant_time(t_ns: i64) -> i64 {
    let ms = t_ns.div_euclid(1_000_000);
    let ns = ms.wrapping_mul(1_000_000_000);
    (ns / 1_000_000).saturating_mul(1000)
}

/// `sort`/`sort_desc` at the top of an instant query orders its vector by value.
fn top_sort(e: &SampleExpr) -> Option<VectorOp> {
    match e {
        SampleExpr::Vector(v) if matches!(v.op, VectorOp::Sort | VectorOp::SortDesc) => Some(v.op),
        SampleExpr::Paren(e) => top_sort(e),
        _ => None,
    }
}

/// Loki's `max_query_series`: a query (or a part of it that Loki runs on its own) may
/// produce at most this many series.
fn check_series_limit(ctx: &Ctx<'_>, set: &SeriesSet) -> Result<(), QueryError> {
    let max = ctx.limits.max_series;
    let n = set.series.iter().filter(|s| !s.points.is_empty()).count();
    if max > 0 && n > max {
        return Err(QueryError::Limit(format!(
            "maximum number of series ({max}) reached for a single query; consider reducing query cardinality by adding more specific stream selectors, reducing the time range, or aggregating results with functions like sum(), count() or topk()"
        )));
    }
    Ok(())
}

/// Range operations Loki pushes a surrounding `sum`'s grouping into.
fn additive(op: RangeOp) -> bool {
    matches!(
        op,
        RangeOp::CountOverTime
            | RangeOp::Rate
            | RangeOp::BytesOverTime
            | RangeOp::BytesRate
            | RangeOp::SumOverTime
    )
}

/// Range operations Loki's query frontend runs per shard as their own query when the
/// aggregation around them cannot be sharded; their result then meets the series limit.
fn shardable_range(op: RangeOp) -> bool {
    matches!(
        op,
        RangeOp::CountOverTime
            | RangeOp::Rate
            | RangeOp::BytesOverTime
            | RangeOp::BytesRate
            | RangeOp::SumOverTime
            | RangeOp::MaxOverTime
            | RangeOp::MinOverTime
            | RangeOp::AvgOverTime
            | RangeOp::FirstOverTime
            | RangeOp::LastOverTime
    )
}

fn group_of(g: Option<&Grouping>) -> SampleGroup {
    match g {
        None => SampleGroup::NoLabels,
        Some(g) if g.without => SampleGroup::Without(g.labels.clone()),
        Some(g) if g.labels.is_empty() => SampleGroup::NoLabels,
        Some(g) => SampleGroup::By(g.labels.clone()),
    }
}

fn node(
    ctx: &Ctx<'_>,
    e: &SampleExpr,
    steps: &Steps,
    pushed: Option<SampleGroup>,
    check_limit: bool,
) -> Result<Value, QueryError> {
    Ok(match e {
        SampleExpr::Range(r) if r.op == RangeOp::AvgOverTime && splits_avg(r) => {
            let set = split_avg(ctx, r, steps)?;
            if check_limit {
                check_series_limit(ctx, &set)?;
            }
            Value::Series(set)
        }
        SampleExpr::Range(r) => {
            let set = range_aggregation(ctx, r, steps, pushed)?;
            if check_limit {
                check_series_limit(ctx, &set)?;
            }
            Value::Series(set)
        }
        SampleExpr::Vector(v) => {
            let (push, check) = match &*v.expr {
                SampleExpr::Range(r) => (
                    (v.op == VectorOp::Sum && r.grouping.is_none() && additive(r.op))
                        .then(|| group_of(v.grouping.as_ref())),
                    matches!(
                        v.op,
                        VectorOp::Stddev
                            | VectorOp::Stdvar
                            | VectorOp::Topk
                            | VectorOp::Bottomk
                            | VectorOp::Sort
                            | VectorOp::SortDesc
                    ) && shardable_range(r.op),
                ),
                _ => (None, false),
            };
            let inner = series(node(ctx, &v.expr, steps, push, check)?)?;
            Value::Series(vector::aggregate(
                v.op,
                v.param,
                v.grouping.as_ref(),
                &inner,
                steps.n,
            ))
        }
        SampleExpr::Binary(b) => {
            let l = node(ctx, &b.lhs, steps, None, false)?;
            let r = node(ctx, &b.rhs, steps, None, false)?;
            match (l, r) {
                (Value::Scalar(x), Value::Scalar(y)) => {
                    Value::Scalar(super::binop::apply(b.op, x, y, false).unwrap_or(f64::NAN))
                }
                (Value::Scalar(x), Value::Series(s)) => {
                    Value::Series(binary::with_scalar(b.op, b.return_bool, x, true, s))
                }
                (Value::Series(s), Value::Scalar(y)) => {
                    Value::Series(binary::with_scalar(b.op, b.return_bool, y, false, s))
                }
                (Value::Series(l), Value::Series(r)) => {
                    Value::Series(binary::vectors(b, l, r, steps.n)?)
                }
            }
        }
        SampleExpr::LabelReplace(l) => {
            let inner = series(node(ctx, &l.expr, steps, None, false)?)?;
            Value::Series(vector::label_replace(l, inner))
        }
        SampleExpr::VectorLiteral(v) => Value::Series(SeriesSet {
            series: vec![Series {
                labels: Labels::new(),
                points: (0..steps.n as u32).map(|i| (i, *v)).collect(),
            }],
        }),
        SampleExpr::Literal(v) => Value::Scalar(*v),
        SampleExpr::Paren(e) => node(ctx, e, steps, pushed, check_limit)?,
    })
}

/// Whether Loki 3.7 evaluates this `avg_over_time` as a sum divided by a count: when it
/// has a grouping that changes labels.
fn splits_avg(r: &RangeAggregation) -> bool {
    r.grouping
        .as_ref()
        .is_some_and(|g| !(g.without && g.labels.is_empty()))
}

/// `avg_over_time(X | unwrap v [r]) by (g)` as Loki 3.7's query frontend runs it:
/// `sum by (g) (sum_over_time(X | unwrap v [r])) / sum by (g) (count_over_time(X [r]))`.
/// The count leg drops the unwrap and its filters, so it also counts lines without the
/// label (changing the average) and meets parser errors (failing the query unless they
/// are filtered out before the unwrap), exactly as Loki answers.
fn split_avg(ctx: &Ctx<'_>, r: &RangeAggregation, steps: &Steps) -> Result<SeriesSet, QueryError> {
    let Some(g) = &r.grouping else {
        return range_aggregation(ctx, r, steps, None);
    };
    let sum = RangeAggregation {
        op: RangeOp::SumOverTime,
        param: None,
        range: r.range.clone(),
        grouping: None,
    };
    let mut count_range = r.range.clone();
    let unwrap = count_range.unwrap.take();
    let count = RangeAggregation {
        op: RangeOp::CountOverTime,
        param: None,
        range: count_range,
        grouping: None,
    };
    let mut count_group = g.clone();
    if count_group.without
        && let Some(u) = &unwrap
    {
        count_group.labels.push(u.label.clone());
    }
    let lhs = range_aggregation(ctx, &sum, steps, Some(group_of(Some(g))))?;
    let lhs = vector::aggregate(VectorOp::Sum, None, Some(g), &lhs, steps.n);
    let rhs = range_aggregation(ctx, &count, steps, Some(group_of(Some(&count_group))))?;
    let rhs = vector::aggregate(VectorOp::Sum, None, Some(&count_group), &rhs, steps.n);
    let div = crate::ast::BinaryExpr {
        op: crate::ast::BinaryOp::Div,
        lhs: Box::new(SampleExpr::Literal(0.0)),
        rhs: Box::new(SampleExpr::Literal(0.0)),
        return_bool: false,
        matching: None,
    };
    binary::vectors(&div, lhs, rhs, steps.n)
}

fn series(v: Value) -> Result<SeriesSet, QueryError> {
    match v {
        Value::Series(s) => Ok(s),
        Value::Scalar(_) => Err(QueryError::BadRequest(
            "a number cannot be aggregated as a vector; use vector(<number>)".into(),
        )),
    }
}

fn range_aggregation(
    ctx: &Ctx<'_>,
    r: &RangeAggregation,
    steps: &Steps,
    pushed: Option<SampleGroup>,
) -> Result<SeriesSet, QueryError> {
    let group = match (&r.grouping, pushed) {
        (Some(g), _) => group_of(Some(g)),
        (None, Some(p)) => p,
        (None, None) => SampleGroup::All,
    };
    let samples = collect(ctx, r, &group, steps)?;
    let unwrapped = r.range.unwrap.is_some();
    let mut out = SeriesSet::default();
    let mut first_error: Option<(i64, usize)> = None;
    for (i, s) in samples.iter().enumerate() {
        let evaluated = range::evaluate(
            r.op,
            r.param,
            unwrapped,
            s,
            steps,
            r.range.interval,
            r.range.offset,
        );
        if evaluated.points.is_empty() {
            continue;
        }
        if s.error.is_some() {
            // The earliest error; between equal times the first series by labels, so the
            // answer does not depend on which worker read which stream.
            let t = s.first_ts;
            if first_error.is_none_or(|(ft, fi)| (t, &s.labels) < (ft, &samples[fi].labels)) {
                first_error = Some((t, i));
            }
            continue;
        }
        out.series.push(evaluated);
    }
    if let Some((_, i)) = first_error {
        let s = &samples[i];
        let kind = s.error.clone().unwrap_or_default();
        return Err(QueryError::Pipeline(format!(
            "pipeline error: '{kind}' for series: '{}'.\nUse a label filter to intentionally skip this error. (e.g | __error__!=\"{kind}\").\nTo skip all potential errors you can match empty errors.(e.g __error__=\"\")\nThe label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
            s.labels
        )));
    }
    if r.op == RangeOp::AbsentOverTime {
        return Ok(absent(r, out, steps));
    }
    Ok(out)
}

/// `absent_over_time`: 1 at the steps where no series has samples, labelled with the
/// selector's equality matchers.
fn absent(r: &RangeAggregation, present: SeriesSet, steps: &Steps) -> SeriesSet {
    let mut has = vec![false; steps.n];
    for s in &present.series {
        for &(i, _) in &s.points {
            has[i as usize] = true;
        }
    }
    let mut labels = Labels::new();
    let mut drop = Vec::new();
    for m in &r.range.log.selector {
        if m.op == MatchOp::Eq && labels.get(&m.name).is_none() {
            labels.set(&m.name, &m.value);
        } else {
            drop.push(m.name.clone());
        }
    }
    for d in drop {
        labels.remove(&d);
    }
    let points: Vec<(u32, f64)> = (0..steps.n)
        .filter(|&i| !has[i])
        .map(|i| (i as u32, 1.0))
        .collect();
    SeriesSet {
        series: if points.is_empty() {
            Vec::new()
        } else {
            vec![Series { labels, points }]
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_time_matches_loki() {
        assert_eq!(
            scalar_instant_time(1_795_170_600_000_000_000),
            5_836_424_850_173_000
        );
    }
}
