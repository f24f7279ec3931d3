//! The samples of a range aggregation: every entry the pipeline keeps becomes a value (1
//! for counting, the line's length for bytes, the unwrapped label's number) in the series
//! of its labels, grouped as Loki's sample extractor groups them.
//!
//! Streams are read in parallel; storage is asked for lines and structured metadata only
//! when the query needs them, so `sum(rate({app="x"}[1m]))` reads timestamps alone.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::Labels;

use super::{Ctx, Steps, group_labels};
use crate::ast::{RangeAggregation, RangeOp};
use crate::engine::QueryError;
use crate::pipeline::Pipeline;
use crate::source::{Columns, Direction, Select, StreamCursor};

/// How samples' labels are reduced before they form series.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SampleGroup {
    /// All labels.
    All,
    /// Only these, when present.
    By(Vec<String>),
    /// All but these.
    Without(Vec<String>),
    /// No labels: one series.
    NoLabels,
}

/// One series of samples, in time order.
#[derive(Debug, Clone)]
pub(crate) struct SampleSeries {
    pub key: u64,
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
    /// The `__error__` value when the series carries one that the query must report.
    pub error: Option<String>,
}

const ERROR_LABEL: &str = "__error__";

/// Parser errors Loki lets through when the query groups by `__error__`.
fn is_parser_error(e: &str) -> bool {
    matches!(e, "JSONParserErr" | "LogfmtParserErr")
}

pub(crate) fn collect(
    ctx: &Ctx<'_>,
    r: &RangeAggregation,
    group: &SampleGroup,
    preserve_errors: bool,
    steps: &Steps,
) -> Result<Vec<SampleSeries>, QueryError> {
    let range = &r.range;
    let pipeline = Pipeline::new(&range.log.pipeline, range.unwrap.as_ref())
        .map_err(|e| QueryError::Pipeline(e.to_string()))?;
    let bytes = matches!(r.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
    let has_stages = !range.log.pipeline.is_empty() || range.unwrap.is_some();
    // Without stages and labels, a stream is one series: no lines, no metadata.
    let constant = !has_stages && *group == SampleGroup::NoLabels;
    let required = pipeline.required_text();
    let select = Select {
        matchers: &range.log.selector,
        start: steps.start - range.offset - range.interval + 1,
        end: steps.end() - range.offset + 1,
        direction: Direction::Forward,
        columns: Columns {
            lines: pipeline.needs_lines() || (bytes && has_stages),
            metadata: !constant,
        },
        required: required.as_ref(),
    };
    // The unwrapped label is not part of the series, unless grouping keeps it.
    let group = match (group, &range.unwrap) {
        (SampleGroup::All, Some(u)) => SampleGroup::Without(vec![u.label.clone()]),
        (SampleGroup::Without(names), Some(u)) => {
            let mut n = names.clone();
            n.push(u.label.clone());
            SampleGroup::Without(n)
        }
        (g, _) => g.clone(),
    };
    let cursors = ctx.src.select(&select)?;
    let queue = Mutex::new(cursors);
    let job = Job {
        ctx,
        pipeline: &pipeline,
        group: &group,
        preserve_errors,
        bytes,
        has_stages,
        constant,
        unwrap: range.unwrap.is_some(),
    };
    let results: Vec<Result<Acc, QueryError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ctx.workers())
            .map(|_| {
                s.spawn(|| {
                    let mut acc = Acc::default();
                    loop {
                        let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                        let Some(mut cursor) = next else {
                            return Ok(acc);
                        };
                        job.read_stream(cursor.as_mut(), &mut acc)?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(QueryError::Storage("a query worker failed".into())))
            })
            .collect()
    });
    let mut merged = Acc::default();
    for r in results {
        let acc = r?;
        for s in acc.series {
            match merged.index.get(&s.key) {
                Some(&i) => merged.series[i].samples.extend(s.samples),
                None => {
                    merged.index.insert(s.key, merged.series.len());
                    merged.series.push(s);
                }
            }
        }
    }
    for s in &mut merged.series {
        if !s.samples.is_sorted_by_key(|x| x.0) {
            s.samples.sort_by_key(|x| x.0);
        }
    }
    Ok(merged.series)
}

#[derive(Default)]
struct Acc {
    series: Vec<SampleSeries>,
    index: HashMap<u64, usize>,
}

struct Job<'a> {
    ctx: &'a Ctx<'a>,
    pipeline: &'a Pipeline,
    group: &'a SampleGroup,
    preserve_errors: bool,
    bytes: bool,
    has_stages: bool,
    constant: bool,
    unwrap: bool,
}

impl Job<'_> {
    fn read_stream(&self, cursor: &mut dyn StreamCursor, acc: &mut Acc) -> Result<(), QueryError> {
        let stream_labels = cursor.labels().clone();
        if self.constant {
            return self.read_constant(cursor, acc);
        }
        let mut sp = self.pipeline.for_stream(&stream_labels);
        // The series index of the last key seen, to skip the map for runs of one series.
        let mut last: Option<(u64, usize)> = None;
        while let Some(batch) = cursor.next_batch()? {
            self.ctx.check_time()?;
            let mut added = 0usize;
            for i in 0..batch.len() {
                let ts = batch.timestamps[i];
                let Some(p) = sp.process(ts, batch.line(i), batch.metadata(i)) else {
                    continue;
                };
                let value = if self.unwrap {
                    match p.value {
                        Some(v) => v,
                        None => continue,
                    }
                } else if self.bytes {
                    if self.has_stages {
                        p.line.len() as f64
                    } else {
                        batch.line_lengths[i] as f64
                    }
                } else {
                    1.0
                };
                let error = p.labels.get(ERROR_LABEL);
                let report = error.filter(|e| !(self.preserve_errors && is_parser_error(e)));
                let key = if report.is_some() {
                    p.labels.hash()
                } else {
                    match self.group {
                        SampleGroup::All => p.labels.hash(),
                        SampleGroup::By(n) => p.labels.hash_grouped(n, false),
                        SampleGroup::Without(n) => p.labels.hash_grouped(n, true),
                        SampleGroup::NoLabels => 0,
                    }
                };
                let idx = match last {
                    Some((k, i)) if k == key => i,
                    _ => {
                        let idx = match acc.index.get(&key) {
                            Some(&i) => i,
                            None => {
                                let all = p.labels.to_labels();
                                let labels = if report.is_some() {
                                    all
                                } else {
                                    match self.group {
                                        SampleGroup::All => all,
                                        SampleGroup::By(n) => group_labels(&all, n, false),
                                        SampleGroup::Without(n) => group_labels(&all, n, true),
                                        SampleGroup::NoLabels => Labels::new(),
                                    }
                                };
                                self.ctx.charge(
                                    labels
                                        .iter()
                                        .map(|l| l.name.len() + l.value.len() + 48)
                                        .sum::<usize>()
                                        + 64,
                                )?;
                                acc.index.insert(key, acc.series.len());
                                acc.series.push(SampleSeries {
                                    key,
                                    labels,
                                    samples: Vec::new(),
                                    error: report.map(str::to_string),
                                });
                                acc.series.len() - 1
                            }
                        };
                        last = Some((key, idx));
                        idx
                    }
                };
                acc.series[idx].samples.push((ts, value));
                added += 1;
            }
            self.ctx.charge(added * 16)?;
        }
        Ok(())
    }

    /// A stream without pipeline into a single unlabelled series.
    fn read_constant(
        &self,
        cursor: &mut dyn StreamCursor,
        acc: &mut Acc,
    ) -> Result<(), QueryError> {
        let idx = match acc.index.get(&0) {
            Some(&i) => i,
            None => {
                acc.index.insert(0, acc.series.len());
                acc.series.push(SampleSeries {
                    key: 0,
                    labels: Labels::new(),
                    samples: Vec::new(),
                    error: None,
                });
                acc.series.len() - 1
            }
        };
        while let Some(batch) = cursor.next_batch()? {
            self.ctx.check_time()?;
            self.ctx.charge(batch.len() * 16)?;
            let s = &mut acc.series[idx].samples;
            if self.bytes {
                s.extend(
                    batch
                        .timestamps
                        .iter()
                        .zip(&batch.line_lengths)
                        .map(|(&t, &l)| (t, l as f64)),
                );
            } else {
                s.extend(batch.timestamps.iter().map(|&t| (t, 1.0)));
            }
        }
        Ok(())
    }
}
