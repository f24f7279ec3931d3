//! Evaluation of log and metric queries over a [`Source`](crate::Source).
//!
//! Log queries (`log_query`) read streams in parallel, run the pipeline on each entry and
//! keep only the best `limit` entries by time, so memory is bounded by the limit.
//! Metric queries (`metric`) turn each range aggregation into samples grouped into
//! series (`samples`), evaluate the range function over each step's window (`range`),
//! then apply vector aggregations, binary operators and `label_replace` step by step
//! (`vector`, `binary`).

pub(crate) mod binary;
pub(crate) mod binop;
pub(crate) mod by_fields;
pub(crate) mod log_query;
pub(crate) mod metric;
pub(crate) mod range;
pub(crate) mod samples;
pub(crate) mod vector;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use protocol::{Label, Labels};

use crate::engine::{Limits, QueryError};
use crate::source::Source;

/// What every part of one query's evaluation shares.
pub(crate) struct Ctx<'a> {
    pub src: &'a dyn Source,
    pub limits: &'a Limits,
    pub deadline: Instant,
    used: AtomicUsize,
}

impl<'a> Ctx<'a> {
    pub fn new(src: &'a dyn Source, limits: &'a Limits, deadline: Instant) -> Ctx<'a> {
        Ctx {
            src,
            limits,
            deadline,
            used: AtomicUsize::new(0),
        }
    }

    /// Fails once the query is past its deadline.
    pub fn check_time(&self) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// Counts `bytes` more held by the query; fails past the budget.
    pub fn charge(&self, bytes: usize) -> Result<(), QueryError> {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let max = self.limits.max_query_bytes;
        if max != 0 && used > max {
            return Err(QueryError::Limit(format!(
                "query needs more than its memory budget of {} MiB: select fewer streams, shorten the time range, add filters, or aggregate with sum by (...); the server's query memory limit can be raised",
                max >> 20
            )));
        }
        Ok(())
    }

    pub fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Worker threads for reading streams.
    pub fn workers(&self) -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .clamp(1, 8)
    }
}

/// The evaluation times of a query: `n` steps from `start`, `step` apart (ns). An
/// instant query is one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Steps {
    pub start: i64,
    pub step: i64,
    pub n: usize,
    pub instant: bool,
}

impl Steps {
    pub fn range(start: i64, end: i64, step: i64) -> Steps {
        Steps {
            start,
            step,
            n: ((end - start) / step) as usize + 1,
            instant: false,
        }
    }

    pub fn instant(t: i64) -> Steps {
        Steps {
            start: t,
            step: 1,
            n: 1,
            instant: true,
        }
    }

    pub fn time(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        self.time(self.n - 1)
    }
}

/// A metric's series, each with its points at step indexes, ascending.
#[derive(Debug, Clone, Default)]
pub(crate) struct SeriesSet {
    pub series: Vec<Series>,
}

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub labels: Labels,
    pub points: Vec<(u32, f64)>,
}

impl SeriesSet {
    /// The series present at each step: `(series index, value)`.
    pub fn by_step(&self, n: usize) -> Vec<Vec<(u32, f64)>> {
        let mut out: Vec<Vec<(u32, f64)>> = vec![Vec::new(); n];
        for (si, s) in self.series.iter().enumerate() {
            for &(i, v) in &s.points {
                if let Some(step) = out.get_mut(i as usize) {
                    step.push((si as u32, v));
                }
            }
        }
        out
    }

    /// Builds a set from step vectors over a label table; series without points are
    /// dropped.
    pub fn from_steps(labels: Vec<Labels>, steps: Vec<Vec<(u32, f64)>>) -> SeriesSet {
        let mut series: Vec<Series> = labels
            .into_iter()
            .map(|labels| Series {
                labels,
                points: Vec::new(),
            })
            .collect();
        for (i, step) in steps.into_iter().enumerate() {
            for (si, v) in step {
                series[si as usize].points.push((i as u32, v));
            }
        }
        series.retain(|s| !s.points.is_empty());
        SeriesSet { series }
    }
}

/// How a grouping keeps labels: `by` keeps the listed ones that are present, `without`
/// drops the listed ones.
pub(crate) fn group_labels(labels: &Labels, names: &[String], without: bool) -> Labels {
    Labels::from_sorted(
        labels
            .iter()
            .filter(|l| names.contains(&l.name) != without)
            .cloned()
            .collect::<Vec<Label>>(),
    )
}
