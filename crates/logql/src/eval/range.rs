//! Range functions: a series' samples in each step's window `(t - range, t]` (shifted back
//! by `offset`) reduced to one value, with Loki's arithmetic.

use super::samples::{Buckets, SampleSeries};
use super::{Series, Steps};
use crate::ast::RangeOp;

/// The points of one series: at each step whose window holds samples, the function's
/// value (stamped at the step).
pub(crate) fn evaluate(
    op: RangeOp,
    param: Option<f64>,
    unwrapped: bool,
    s: &SampleSeries,
    steps: &Steps,
    range: i64,
    offset: i64,
) -> Series {
    if let Some(b) = &s.buckets {
        return Series {
            labels: s.labels.clone(),
            points: from_buckets(op, unwrapped, b, steps.n, range),
        };
    }
    let samples = &s.samples;
    let mut points = Vec::new();
    let (mut lo, mut hi) = (0usize, 0usize);
    let mut scratch: Vec<f64> = Vec::new();
    for i in 0..steps.n {
        let end = steps.time(i) - offset;
        let start = end - range;
        while hi < samples.len() && samples[hi].0 <= end {
            hi += 1;
        }
        while lo < hi && samples[lo].0 <= start {
            lo += 1;
        }
        if lo >= hi {
            continue;
        }
        let w = &samples[lo..hi];
        let v = apply(op, param, unwrapped, w, range, end, &mut scratch);
        points.push((i as u32, v));
    }
    Series {
        labels: s.labels.clone(),
        points,
    }
}

/// Additive functions from per-interval sums and counts: step `i`'s window is buckets
/// `i ..= i + k - 1` where `k = buckets - steps + 1`.
fn from_buckets(
    op: RangeOp,
    unwrapped: bool,
    b: &Buckets,
    n: usize,
    range: i64,
) -> Vec<(u32, f64)> {
    let k = b.sum.len() + 1 - n;
    let secs = range as f64 / 1e9;
    let mut points = Vec::new();
    let (mut sum, mut count) = (0.0f64, 0u64);
    for j in 0..b.sum.len() {
        sum += b.sum[j];
        count += u64::from(b.count[j]);
        if j >= k {
            sum -= b.sum[j - k];
            count -= u64::from(b.count[j - k]);
        }
        if j + 1 < k || count == 0 {
            continue;
        }
        let i = j + 1 - k;
        // A window's sum recomputed when the sliding sum may have drifted.
        let window_sum = if k > 1 && b.sum[j + 1 - k..=j].iter().any(|x| x.fract() != 0.0) {
            b.sum[j + 1 - k..=j].iter().sum()
        } else {
            sum
        };
        let v = match op {
            RangeOp::CountOverTime => count as f64,
            RangeOp::Rate if unwrapped => window_sum / secs,
            RangeOp::Rate => count as f64 / secs,
            RangeOp::BytesRate => window_sum / secs,
            _ => window_sum,
        };
        points.push((i as u32, v));
    }
    points
}

fn apply(
    op: RangeOp,
    param: Option<f64>,
    unwrapped: bool,
    w: &[(i64, f64)],
    range: i64,
    end: i64,
    scratch: &mut Vec<f64>,
) -> f64 {
    let secs = range as f64 / 1e9;
    let sum = || w.iter().map(|x| x.1).sum::<f64>();
    match op {
        RangeOp::CountOverTime => w.len() as f64,
        RangeOp::Rate if unwrapped => sum() / secs,
        RangeOp::Rate => w.len() as f64 / secs,
        RangeOp::RateCounter => extrapolated_rate(w, range, end),
        RangeOp::BytesOverTime | RangeOp::SumOverTime => sum(),
        RangeOp::BytesRate => sum() / secs,
        RangeOp::AvgOverTime => avg(w),
        RangeOp::MaxOverTime => {
            let mut m = w[0].1;
            for x in w {
                if x.1 > m || m.is_nan() {
                    m = x.1;
                }
            }
            m
        }
        RangeOp::MinOverTime => {
            let mut m = w[0].1;
            for x in w {
                if x.1 < m || m.is_nan() {
                    m = x.1;
                }
            }
            m
        }
        RangeOp::StdvarOverTime => welford(w),
        RangeOp::StddevOverTime => welford(w).sqrt(),
        RangeOp::QuantileOverTime => {
            scratch.clear();
            scratch.extend(w.iter().map(|x| x.1));
            quantile(param.unwrap_or(0.0), scratch)
        }
        RangeOp::FirstOverTime => w[0].1,
        RangeOp::LastOverTime => w[w.len() - 1].1,
        RangeOp::AbsentOverTime => 1.0,
    }
}

/// Loki's `avg_over_time`: an incremental mean that keeps an infinite mean infinite.
fn avg(w: &[(i64, f64)]) -> f64 {
    let (mut mean, mut count) = (0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// Population variance by Welford's method.
fn welford(w: &[(i64, f64)]) -> f64 {
    let (mut aux, mut count, mut mean) = (0.0f64, 0.0f64, 0.0f64);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// Prometheus' quantile: linear interpolation between the closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// `rate_counter`: Prometheus' extrapolated counter rate over the query's window.
fn extrapolated_rate(w: &[(i64, f64)], range: i64, end: i64) -> f64 {
    if w.len() < 2 {
        return 0.0;
    }
    let start = end - range;
    let (first, last) = (w[0], w[w.len() - 1]);
    let mut result = last.1 - first.1;
    let mut prev = 0.0;
    for &(_, v) in w {
        if v < prev {
            result += prev;
        }
        prev = v;
    }
    let mut to_start = (first.0 - start) as f64 / 1e9;
    let mut to_end = (end - last.0) as f64 / 1e9;
    let sampled = (last.0 - first.0) as f64 / 1e9;
    let avg_between = sampled / (w.len() - 1) as f64;
    let threshold = avg_between * 1.1;
    if to_start >= threshold {
        to_start = avg_between / 2.0;
    }
    let mut to_zero = to_start;
    if result > 0.0 && first.1 >= 0.0 {
        to_zero = sampled * (first.1 / result);
    }
    if to_zero < to_start {
        to_start = to_zero;
    }
    if to_end >= threshold {
        to_end = avg_between / 2.0;
    }
    let extrapolate_to = sampled + to_start + to_end;
    result *= extrapolate_to / sampled;
    result / (range as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        assert_eq!(quantile(0.5, &mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quantile(0.25, &mut [1.0, 2.0]), 1.25);
        assert!(quantile(0.5, &mut []).is_nan());
    }

    #[test]
    fn windows_are_left_open() {
        let s = SampleSeries {
            labels: protocol::Labels::new(),
            samples: vec![(10, 1.0), (20, 1.0), (30, 1.0)],
            buckets: None,
            error: None,
            first_ts: 10,
        };
        let steps = Steps::range(20, 40, 10);
        let out = evaluate(RangeOp::CountOverTime, None, false, &s, &steps, 10, 0);
        assert_eq!(out.points, vec![(0, 1.0), (1, 1.0)]);
    }
}
