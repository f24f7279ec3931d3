//! Vector aggregations (`sum`, `avg`, `topk`, ...) and `label_replace`, applied step by
//! step as Loki's evaluator does.

use std::collections::HashMap;

use protocol::Labels;

use super::{SeriesSet, group_labels};
use crate::ast::{Grouping, LabelReplace, VectorOp};

#[derive(Clone, Copy)]
struct Group {
    value: f64,
    mean: f64,
    count: f64,
}

/// Aggregates `input` over `n` steps.
pub(crate) fn aggregate(
    op: VectorOp,
    param: Option<f64>,
    grouping: Option<&Grouping>,
    input: &SeriesSet,
    n: usize,
) -> SeriesSet {
    let (names, without): (&[String], bool) = match grouping {
        Some(g) => (&g.labels, g.without),
        None => (&[], false),
    };
    // Each input series' group, and each group's labels.
    let mut group_index: HashMap<Labels, u32> = HashMap::new();
    let mut group_labels_table: Vec<Labels> = Vec::new();
    let series_group: Vec<u32> = input
        .series
        .iter()
        .map(|s| {
            let g = group_labels(&s.labels, names, without);
            *group_index.entry(g.clone()).or_insert_with(|| {
                group_labels_table.push(g);
                (group_labels_table.len() - 1) as u32
            })
        })
        .collect();
    let by_step = input.by_step(n);
    match op {
        VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => {
            let k = match op {
                VectorOp::Topk | VectorOp::Bottomk => param.unwrap_or(0.0) as usize,
                _ => usize::MAX,
            };
            let mut steps_out: Vec<Vec<(u32, f64)>> = Vec::with_capacity(n);
            let mut per_group: Vec<Vec<(u32, f64)>> = vec![Vec::new(); group_labels_table.len()];
            for step in by_step {
                for g in per_group.iter_mut() {
                    g.clear();
                }
                for (si, v) in step {
                    per_group[series_group[si as usize] as usize].push((si, v));
                }
                let mut out = Vec::new();
                for g in per_group.iter_mut() {
                    if op == VectorOp::Topk || op == VectorOp::SortDesc {
                        // Highest first; NaN counts as lowest.
                        g.sort_by(|a, b| desc(a.1, b.1));
                    } else {
                        g.sort_by(|a, b| desc(b.1, a.1));
                    }
                    out.extend(g.iter().take(k).copied());
                }
                steps_out.push(out);
            }
            SeriesSet::from_steps(
                input.series.iter().map(|s| s.labels.clone()).collect(),
                steps_out,
            )
        }
        _ => {
            let mut steps_out: Vec<Vec<(u32, f64)>> = Vec::with_capacity(n);
            let mut state: Vec<Option<Group>> = vec![None; group_labels_table.len()];
            let mut touched: Vec<u32> = Vec::new();
            for step in by_step {
                touched.clear();
                for (si, v) in step {
                    let gi = series_group[si as usize];
                    match &mut state[gi as usize] {
                        slot @ None => {
                            *slot = Some(Group {
                                value: if matches!(op, VectorOp::Stddev | VectorOp::Stdvar) {
                                    0.0
                                } else {
                                    v
                                },
                                mean: v,
                                count: 1.0,
                            });
                            touched.push(gi);
                        }
                        Some(g) => add(op, g, v),
                    }
                }
                let mut out = Vec::with_capacity(touched.len());
                for &gi in &touched {
                    if let Some(g) = state[gi as usize].take() {
                        let v = match op {
                            VectorOp::Avg => g.mean,
                            VectorOp::Count => g.count,
                            VectorOp::Stddev => (g.value / g.count).sqrt(),
                            VectorOp::Stdvar => g.value / g.count,
                            _ => g.value,
                        };
                        out.push((gi, v));
                    }
                }
                steps_out.push(out);
            }
            SeriesSet::from_steps(group_labels_table, steps_out)
        }
    }
}

/// Descending order with NaN last.
fn desc(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
    }
}

fn add(op: VectorOp, g: &mut Group, v: f64) {
    match op {
        VectorOp::Sum => g.value += v,
        VectorOp::Avg => {
            g.count += 1.0;
            if g.mean.is_infinite() {
                if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                    return;
                }
                if !v.is_infinite() && !v.is_nan() {
                    return;
                }
            }
            g.mean += (v - g.mean) / g.count;
        }
        VectorOp::Max => {
            if g.value < v || g.value.is_nan() {
                g.value = v;
            }
        }
        VectorOp::Min => {
            if g.value > v || g.value.is_nan() {
                g.value = v;
            }
        }
        VectorOp::Count => g.count += 1.0,
        VectorOp::Stddev | VectorOp::Stdvar => {
            g.count += 1.0;
            let delta = v - g.mean;
            g.mean += delta / g.count;
            g.value += delta * (v - g.mean);
        }
        VectorOp::Topk | VectorOp::Bottomk | VectorOp::Sort | VectorOp::SortDesc => {}
    }
}

/// `label_replace`: where `src` matches the (anchored) regex, `dst` becomes the expanded
/// replacement (removed when empty). Series that end up with the same labels merge.
pub(crate) fn label_replace(l: &LabelReplace, input: SeriesSet) -> SeriesSet {
    let Ok(re) = regex::Regex::new(&format!("^(?:{})$", l.regex)) else {
        return input;
    };
    let mut out = SeriesSet::default();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for mut s in input.series {
        let src = s.labels.get(&l.src).unwrap_or("");
        if let Some(caps) = re.captures(src) {
            let mut res = String::new();
            caps.expand(&l.replacement, &mut res);
            s.labels.remove(&l.dst);
            if !res.is_empty() {
                s.labels.set(&l.dst, &res);
            }
        }
        match index.get(&s.labels) {
            Some(&i) => {
                let t = &mut out.series[i].points;
                t.extend(s.points);
                t.sort_by_key(|p| p.0);
                t.dedup_by_key(|p| p.0);
            }
            None => {
                index.insert(s.labels.clone(), out.series.len());
                out.series.push(s);
            }
        }
    }
    out
}
