//! Binary operators between two vectors (with `on`/`ignoring` and `group_left`/
//! `group_right` matching, and the set operators) or between a vector and a number, with
//! Loki's rules for labels and errors.

use std::collections::{HashMap, HashSet};

use protocol::Labels;

use super::binop::apply;
use super::{SeriesSet, group_labels};
use crate::ast::{BinaryExpr, BinaryOp, Cardinality, VectorMatching};
use crate::engine::QueryError;

fn is_comparison(op: BinaryOp) -> bool {
    matches!(
        op,
        BinaryOp::Eq | BinaryOp::Neq | BinaryOp::Gt | BinaryOp::Gte | BinaryOp::Lt | BinaryOp::Lte
    )
}

/// The labels two samples are matched on.
fn signature(labels: &Labels, m: Option<&VectorMatching>) -> Labels {
    match m {
        None => labels.clone(),
        Some(m) if m.on => group_labels(labels, &m.labels, false),
        Some(m) => group_labels(labels, &m.labels, true),
    }
}

/// `vector op number` or `number op vector`: every sample against the number; a
/// comparison without `bool` keeps the samples for which it holds, with their values.
pub(crate) fn with_scalar(
    op: BinaryOp,
    return_bool: bool,
    lit: f64,
    lit_left: bool,
    input: SeriesSet,
) -> SeriesSet {
    let filter = !return_bool;
    let cmp = is_comparison(op);
    let mut out = input;
    for s in &mut out.series {
        s.points.retain_mut(|(_, v)| {
            let (a, b) = if lit_left { (lit, *v) } else { (*v, lit) };
            match apply(op, a, b, filter && cmp) {
                Some(r) => {
                    if !(cmp && filter) {
                        *v = r;
                    }
                    true
                }
                None => false,
            }
        });
    }
    out.series.retain(|s| !s.points.is_empty());
    out
}

/// `lhs op rhs` between two vectors, step by step.
pub(crate) fn vectors(
    b: &BinaryExpr,
    lhs: SeriesSet,
    rhs: SeriesSet,
    n: usize,
) -> Result<SeriesSet, QueryError> {
    let m = b.matching.as_ref();
    let lsig: Vec<Labels> = lhs.series.iter().map(|s| signature(&s.labels, m)).collect();
    let rsig: Vec<Labels> = rhs.series.iter().map(|s| signature(&s.labels, m)).collect();
    let lsteps = lhs.by_step(n);
    let rsteps = rhs.by_step(n);
    let mut table: Vec<Labels> = Vec::new();
    let mut index: HashMap<Labels, u32> = HashMap::new();
    let mut intern = |l: Labels| -> u32 {
        if let Some(&i) = index.get(&l) {
            return i;
        }
        table.push(l.clone());
        index.insert(l, (table.len() - 1) as u32);
        (table.len() - 1) as u32
    };
    let mut out_steps = Vec::with_capacity(n);
    for (ls, rs) in lsteps.into_iter().zip(rsteps) {
        let mut out: Vec<(u32, f64)> = Vec::new();
        match b.op {
            BinaryOp::And | BinaryOp::Or | BinaryOp::Unless => {
                let rset: HashSet<&Labels> = rs.iter().map(|(i, _)| &rsig[*i as usize]).collect();
                let keep_left = |i: u32| match b.op {
                    BinaryOp::And => !rs.is_empty() && rset.contains(&lsig[i as usize]),
                    BinaryOp::Unless => rs.is_empty() || !rset.contains(&lsig[i as usize]),
                    _ => true,
                };
                for &(i, v) in &ls {
                    if keep_left(i) {
                        out.push((intern(lhs.series[i as usize].labels.clone()), v));
                    }
                }
                if b.op == BinaryOp::Or {
                    let lset: HashSet<&Labels> =
                        ls.iter().map(|(i, _)| &lsig[*i as usize]).collect();
                    for &(i, v) in &rs {
                        if ls.is_empty() || !lset.contains(&rsig[i as usize]) {
                            out.push((intern(rhs.series[i as usize].labels.clone()), v));
                        }
                    }
                }
            }
            _ => {
                for (labels, v) in arith_step(b, &lhs, &rhs, &lsig, &rsig, &ls, &rs)? {
                    out.push((intern(labels), v));
                }
            }
        }
        out_steps.push(out);
    }
    Ok(SeriesSet::from_steps(table, out_steps))
}

/// One step of an arithmetic or comparison operator between vectors.
fn arith_step(
    b: &BinaryExpr,
    lhs: &SeriesSet,
    rhs: &SeriesSet,
    lsig: &[Labels],
    rsig: &[Labels],
    ls: &[(u32, f64)],
    rs: &[(u32, f64)],
) -> Result<Vec<(Labels, f64)>, QueryError> {
    let card = b.matching.as_ref().map(|m| &m.card);
    let one_to_many = matches!(card, Some(Cardinality::OneToMany(_)));
    // For one-to-many the "many" side is the right: swap, and swap back to compute.
    let (many, many_sig, many_set, one, one_sig, one_set) = if one_to_many {
        (rs, rsig, rhs, ls, lsig, lhs)
    } else {
        (ls, lsig, lhs, rs, rsig, rhs)
    };
    let mut one_by_sig: HashMap<&Labels, (u32, f64)> = HashMap::new();
    for &(i, v) in one {
        if one_by_sig.insert(&one_sig[i as usize], (i, v)).is_some() {
            let side = if one_to_many { "left" } else { "right" };
            return Err(QueryError::BadRequest(format!(
                "found duplicate series on the {side} hand-side;many-to-many matching not allowed: matching labels must be unique on one side"
            )));
        }
    }
    let include: &[String] = match card {
        Some(Cardinality::ManyToOne(i)) | Some(Cardinality::OneToMany(i)) => i,
        _ => &[],
    };
    let one_to_one = !matches!(
        card,
        Some(Cardinality::ManyToOne(_)) | Some(Cardinality::OneToMany(_))
    );
    let filter = !b.return_bool;
    let cmp = is_comparison(b.op);
    let mut matched: HashMap<&Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for &(i, v) in many {
        let sig = &many_sig[i as usize];
        let Some(&(oi, ov)) = one_by_sig.get(sig) else {
            continue;
        };
        let mut metric = many_set.series[i as usize].labels.clone();
        if let Some(m) = &b.matching
            && one_to_one
        {
            metric = if m.on {
                group_labels(&metric, &m.labels, false)
            } else {
                group_labels(&metric, &m.labels, true)
            };
        }
        for name in include {
            match one_set.series[oi as usize].labels.get(name) {
                Some(val) if !val.is_empty() => {
                    let val = val.to_string();
                    metric.set(name, &val)
                }
                _ => {
                    metric.remove(name);
                }
            }
        }
        let seen = matched.entry(sig).or_default();
        if one_to_one {
            if !seen.is_empty() {
                return Err(QueryError::BadRequest(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            seen.insert(Labels::new());
        } else if !seen.insert(metric.clone()) {
            return Err(QueryError::BadRequest(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        let (lv, rv) = if one_to_many { (ov, v) } else { (v, ov) };
        if let Some(r) = apply(b.op, lv, rv, filter && cmp) {
            let value = if cmp && filter { lv } else { r };
            out.push((metric, value));
        }
    }
    Ok(out)
}
