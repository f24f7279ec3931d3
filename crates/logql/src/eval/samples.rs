//! The samples of a range aggregation: every entry the pipeline keeps becomes a value (1
//! for counting, the line's length for bytes, the unwrapped label's number) in the series
//! of its labels, grouped as Loki's sample extractor groups them.
//!
//! Streams are read in parallel; storage is asked for lines and structured metadata only
//! when the query needs them, so `sum(rate({app="x"}[1m]))` reads timestamps alone.
//! Additive functions (`count_over_time`, `rate`, `bytes_*`, `sum_over_time`) over a range
//! that is a whole number of steps keep only a sum and a count per step interval instead
//! of the samples, so their memory does not grow with the data. Without a pipeline the
//! labels come straight from the stream and its structured metadata, computed once per
//! distinct metadata combination of a batch.

use std::collections::HashMap;
use std::sync::Mutex;

use protocol::{Label, Labels};

use super::by_fields::{FieldMemo, plain_value};
use super::{Ctx, Steps, group_labels};
use crate::ast::{Grouping, RangeAggregation, RangeOp};
use crate::engine::QueryError;
use crate::fields::FieldNames;
use crate::pipeline::LabelSet;
use crate::pipeline::Pipeline;
use crate::source::{Batch, Columns, Direction, Select, StreamCursor};

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

impl SampleGroup {
    /// The grouping as Loki's sample extractor receives it (`None` when there is none).
    fn grouping(&self) -> Option<Grouping> {
        let (labels, without) = match self {
            SampleGroup::All => return None,
            SampleGroup::NoLabels => (Vec::new(), false),
            SampleGroup::By(n) => (n.clone(), false),
            SampleGroup::Without(n) => (n.clone(), true),
        };
        Some(Grouping { without, labels })
    }

    fn apply(&self, all: Labels) -> Labels {
        match self {
            SampleGroup::All => all,
            SampleGroup::By(n) => group_labels(&all, n, false),
            SampleGroup::Without(n) => group_labels(&all, n, true),
            SampleGroup::NoLabels => Labels::new(),
        }
    }
}

/// Per-interval sums and counts of an additive function's samples. Bucket `j` holds the
/// samples of `(t_{j-k} - offset, t_{j-k+1} - offset]`, so step `i`'s window is buckets
/// `i ..= i + k - 1`.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    pub sum: Vec<f64>,
    pub count: Vec<u32>,
}

/// One series of samples (in time order) or, for additive functions, of buckets.
#[derive(Debug, Clone)]
pub(crate) struct SampleSeries {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
    pub buckets: Option<Buckets>,
    /// The `__error__` value when the series carries one that the query must report.
    pub error: Option<String>,
    /// The first sample's time, to report the earliest error.
    pub first_ts: i64,
}

/// Where a sample goes when buckets are used.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BucketGeometry {
    /// Buckets per window.
    pub k: usize,
    pub len: usize,
    start: i64,
    step: i64,
    offset: i64,
    instant: bool,
}

impl BucketGeometry {
    /// Buckets for `r` over `steps`, when its function is additive and its range a whole
    /// number of steps (or the query is instant: one window).
    pub fn for_range(r: &RangeAggregation, steps: &Steps) -> Option<BucketGeometry> {
        let additive = matches!(
            r.op,
            RangeOp::CountOverTime
                | RangeOp::Rate
                | RangeOp::BytesOverTime
                | RangeOp::BytesRate
                | RangeOp::SumOverTime
        );
        if !additive {
            return None;
        }
        let range = r.range.interval;
        if steps.n == 1 {
            return Some(BucketGeometry {
                k: 1,
                len: 1,
                start: steps.start,
                step: steps.step,
                offset: r.range.offset,
                instant: true,
            });
        }
        if range <= 0 || range % steps.step != 0 {
            return None;
        }
        let k = (range / steps.step) as usize;
        Some(BucketGeometry {
            k,
            len: steps.n + k - 1,
            start: steps.start,
            step: steps.step,
            offset: r.range.offset,
            instant: false,
        })
    }

    fn index(&self, ts: i64) -> Option<usize> {
        if self.instant {
            return Some(0);
        }
        // The first step i with ts <= t_i - offset.
        let d = ts + self.offset - self.start;
        let i = -((-d).div_euclid(self.step));
        let j = i + self.k as i64 - 1;
        (0..self.len as i64).contains(&j).then_some(j as usize)
    }

    /// Adds entries at times `ts` (in ascending order; each counts 1, or its line length
    /// with `lengths`) to `b`: one binary search per bucket instead of a lookup per entry.
    fn add_sorted(&self, b: &mut Buckets, ts: &[i64], lengths: Option<&[u32]>) {
        debug_assert!(ts.is_sorted());
        let mut add = |j: usize, from: usize, to: usize| {
            b.count[j] += (to - from) as u32;
            // Whole numbers: the sum is exact in any order.
            b.sum[j] += match lengths {
                Some(l) => l[from..to].iter().map(|&x| u64::from(x)).sum::<u64>() as f64,
                None => (to - from) as f64,
            };
        };
        if self.instant {
            add(0, 0, ts.len());
            return;
        }
        let mut i = 0;
        while i < ts.len() {
            // As in `index`: step `si` is the first with ts <= t_si - offset, its bucket
            // ends there.
            let d = ts[i] + self.offset - self.start;
            let si = -((-d).div_euclid(self.step));
            let hi = self.start + si * self.step - self.offset;
            let n = ts[i..].partition_point(|&t| t <= hi);
            let j = si + self.k as i64 - 1;
            if (0..self.len as i64).contains(&j) {
                add(j as usize, i, i + n);
            }
            i += n;
        }
    }

    /// [`index`](Self::index), remembering the last bucket's bounds in `hint` so runs
    /// of samples in one interval cost a comparison, not a division.
    fn index_cached(&self, ts: i64, hint: &mut (i64, i64, usize)) -> Option<usize> {
        if ts > hint.0 && ts <= hint.1 {
            return Some(hint.2);
        }
        let j = self.index(ts)?;
        if !self.instant {
            // Bucket j holds (t_{j-k} - offset, t_{j-k+1} - offset].
            let hi = self.start + (j as i64 - self.k as i64 + 1) * self.step - self.offset;
            *hint = (hi - self.step, hi, j);
        }
        Some(j)
    }
}

const ERROR_LABEL: &str = "__error__";
/// Set next to a parser error that the query asked for by name: the error is not fatal.
const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// The samples of range aggregation `r`, grouped by `group` (its own grouping or the one
/// a `sum` around it pushed down). The pipeline gets Loki's parser hints for that
/// grouping.
pub(crate) fn collect(
    ctx: &Ctx<'_>,
    r: &RangeAggregation,
    group: &SampleGroup,
    steps: &Steps,
) -> Result<Vec<SampleSeries>, QueryError> {
    let range = &r.range;
    let pipeline = Pipeline::new(&range.log.pipeline, range.unwrap.as_ref())
        .map_err(|e| QueryError::Pipeline(e.to_string()))?
        .hint_grouping(group.grouping().as_ref(), r.op == RangeOp::AbsentOverTime);
    let bytes = matches!(r.op, RangeOp::BytesOverTime | RangeOp::BytesRate);
    let has_stages = !range.log.pipeline.is_empty() || range.unwrap.is_some();
    let required = pipeline.required_text();
    let field_names = pipeline.field_names();
    let select = Select {
        matchers: &range.log.selector,
        start: steps.start - range.offset - range.interval + 1,
        end: steps.end() - range.offset + 1,
        direction: Direction::Forward,
        columns: Columns {
            lines: (pipeline.needs_lines() || (bytes && has_stages)) && field_names.is_none(),
            metadata: has_stages || *group != SampleGroup::NoLabels,
        },
        required: required.as_ref(),
        fields: field_names.as_ref(),
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
        bytes,
        has_stages,
        unwrap: range.unwrap.is_some(),
        buckets: BucketGeometry::for_range(r, steps),
        field_names,
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
        for s in r?.series {
            match merged.index.get(&s.labels) {
                Some(&i) => merge_into(&mut merged.series[i], s),
                None => {
                    merged.index.insert(s.labels.clone(), merged.series.len());
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

fn merge_into(into: &mut SampleSeries, s: SampleSeries) {
    into.samples.extend(s.samples);
    into.first_ts = into.first_ts.min(s.first_ts);
    if let (Some(a), Some(b)) = (&mut into.buckets, s.buckets) {
        for (x, y) in a.sum.iter_mut().zip(b.sum) {
            *x += y;
        }
        for (x, y) in a.count.iter_mut().zip(b.count) {
            *x += y;
        }
    }
}

#[derive(Default)]
struct Acc {
    series: Vec<SampleSeries>,
    index: HashMap<Labels, usize>,
}

struct Job<'a> {
    ctx: &'a Ctx<'a>,
    pipeline: &'a Pipeline,
    group: &'a SampleGroup,
    bytes: bool,
    has_stages: bool,
    unwrap: bool,
    buckets: Option<BucketGeometry>,
    /// The labels the pipeline takes from lines, when field columns can stand in for them.
    field_names: Option<FieldNames>,
}

/// What the pipeline made of one combination of field tokens and metadata: the series and
/// value of the sample, or no sample.
type FieldOutcome = Option<(usize, f64)>;

/// What the pipeline made of a combination of the tokens other than the unwrapped field's
/// (see [`Pipeline::value_only_unwrap`]), for lines whose unwrapped token is plain and
/// converts: their series, or that they are dropped, or that the first such line did not
/// take its value from its own token (a collision) and each line must run.
#[derive(Clone, Copy)]
enum Split {
    Series(usize),
    Dropped,
    Unsure,
}

impl Job<'_> {
    /// The series index for `labels`, created if new.
    fn series(
        &self,
        acc: &mut Acc,
        labels: Labels,
        error: Option<String>,
    ) -> Result<usize, QueryError> {
        if let Some(&i) = acc.index.get(&labels) {
            return Ok(i);
        }
        let mut size = 64
            + labels
                .iter()
                .map(|l| l.name.len() + l.value.len() + 48)
                .sum::<usize>();
        let buckets = self.buckets.map(|g| {
            size += g.len * 12;
            Buckets {
                sum: vec![0.0; g.len],
                count: vec![0; g.len],
            }
        });
        self.ctx.charge(size)?;
        acc.index.insert(labels.clone(), acc.series.len());
        acc.series.push(SampleSeries {
            labels,
            samples: Vec::new(),
            buckets,
            error,
            first_ts: i64::MAX,
        });
        Ok(acc.series.len() - 1)
    }

    fn add(&self, s: &mut SampleSeries, ts: i64, v: f64, hint: &mut (i64, i64, usize)) -> usize {
        s.first_ts = s.first_ts.min(ts);
        match (&mut s.buckets, self.buckets) {
            (Some(b), Some(g)) => {
                if let Some(j) = g.index_cached(ts, hint) {
                    b.sum[j] += v;
                    b.count[j] += 1;
                }
                0
            }
            _ => {
                s.samples.push((ts, v));
                16
            }
        }
    }

    fn read_stream(&self, cursor: &mut dyn StreamCursor, acc: &mut Acc) -> Result<(), QueryError> {
        let stream_labels = cursor.labels().clone();
        if self.has_stages {
            return self.read_with_pipeline(&stream_labels, cursor, acc);
        }
        // Labels from the stream and its metadata, computed once per distinct metadata
        // combination of a batch.
        let mut cache: HashMap<Vec<u32>, usize> = HashMap::new();
        let no_meta = self.series(acc, self.group.apply(stream_labels.clone()), None)?;
        let mut hint = (0, 0, 0);
        while let Some(batch) = cursor.next_batch()? {
            self.ctx.check_time()?;
            cache.clear();
            let mut held = 0;
            // When the grouping keeps no metadata name of this batch, metadata does not
            // change the series.
            let constant = match self.group {
                SampleGroup::NoLabels => true,
                SampleGroup::By(names) => !batch.metadata_dict.iter().any(|(n, _)| {
                    names.contains(n)
                        || names
                            .iter()
                            .any(|g| g.strip_suffix("_extracted") == Some(n.as_str()))
                }),
                _ => batch.metadata_dict.is_empty(),
            };
            if constant {
                let s = &mut acc.series[no_meta];
                if let (Some(b), Some(g), Some(&first)) =
                    (&mut s.buckets, self.buckets, batch.timestamps.first())
                {
                    s.first_ts = s.first_ts.min(first);
                    let lengths = self.bytes.then_some(&batch.line_lengths[..]);
                    g.add_sorted(b, &batch.timestamps, lengths);
                    continue;
                }
                for i in 0..batch.len() {
                    let v = if self.bytes {
                        batch.line_lengths[i] as f64
                    } else {
                        1.0
                    };
                    held += self.add(s, batch.timestamps[i], v, &mut hint);
                }
                self.ctx.charge(held)?;
                continue;
            }
            for i in 0..batch.len() {
                let ids = batch.metadata_ids(i);
                let idx = if ids.is_empty() {
                    no_meta
                } else if let Some(&idx) = cache.get(ids) {
                    idx
                } else {
                    let labels = self.group.apply(merge_metadata(&stream_labels, batch, ids));
                    let idx = self.series(acc, labels, None)?;
                    cache.insert(ids.to_vec(), idx);
                    idx
                };
                let v = if self.bytes {
                    batch.line_lengths[i] as f64
                } else {
                    1.0
                };
                held += self.add(&mut acc.series[idx], batch.timestamps[i], v, &mut hint);
            }
            self.ctx.charge(held)?;
        }
        Ok(())
    }

    fn read_with_pipeline(
        &self,
        stream_labels: &Labels,
        cursor: &mut dyn StreamCursor,
        acc: &mut Acc,
    ) -> Result<(), QueryError> {
        let mut sp = self.pipeline.for_stream(stream_labels);
        // Label-set hash to series, for this stream.
        let mut cache: HashMap<u64, usize> = HashMap::new();
        let mut by_fields: FieldMemo<FieldOutcome> = FieldMemo::new();
        let mut by_others: FieldMemo<Split> = FieldMemo::new();
        let value_only = self.pipeline.value_only_unwrap();
        // The sample value of each token of the unwrapped field's column, once computed.
        let mut values: Vec<Option<Option<f64>>> = Vec::new();
        let mut hint = (0, 0, 0);
        while let Some(batch) = cursor.next_batch()? {
            self.ctx.check_time()?;
            let mut held = 0;
            if let (Some(names), Some(fields)) = (&self.field_names, &batch.fields)
                && let Some(plan) = fields.plan(names)
            {
                // The pipeline runs once per distinct combination of the tokens it reads
                // (and the metadata), on a line of just those members.
                by_fields.clear();
                by_others.clear();
                // An unwrapped field whose value decides only the sample value: the
                // pipeline runs once per combination of the other tokens, and each token
                // is converted once.
                let split = value_only.and_then(|u| {
                    let pos = plan.iter().position(|&c| fields.columns[c].name == u)?;
                    let mut others = plan.clone();
                    let col = others.remove(pos);
                    values.clear();
                    values.resize(fields.columns[col].tokens.len() + 1, None);
                    Some((u, col, others))
                });
                for i in 0..batch.len() {
                    let ts = batch.timestamps[i];
                    let mut outcome = None;
                    let mut decided = false;
                    if let Some((u, col, others)) = &split {
                        let column = &fields.columns[*col];
                        let code = usize::from(column.codes[i]);
                        let token = (code > 0).then(|| &column.tokens[code - 1][..]);
                        let v = *values[code].get_or_insert_with(|| {
                            token
                                .and_then(plain_value)
                                .and_then(|t| self.pipeline.convert_unwrapped(t))
                        });
                        // A value means a plain token, read again only by the first
                        // line of each combination.
                        if let Some(v) = v {
                            let split =
                                by_others.get_keyed(fields, others, &plan, batch, i, |line| {
                                    Ok::<_, QueryError>(
                                        match sp.process(ts, line, batch.metadata(i)) {
                                            None => Split::Dropped,
                                            Some(p)
                                                if p.value.is_some()
                                                    && !p.labels.has_err()
                                                    && p.labels.lookup_parsed(u)
                                                        == token.and_then(plain_value) =>
                                            {
                                                Split::Series(
                                                    self.series_of(p.labels, acc, &mut cache)?,
                                                )
                                            }
                                            Some(_) => Split::Unsure,
                                        },
                                    )
                                })?;
                            match split {
                                Split::Series(idx) => {
                                    outcome = Some((idx, v));
                                    decided = true;
                                }
                                Split::Dropped => decided = true,
                                Split::Unsure => {}
                            }
                        }
                    }
                    if !decided {
                        outcome = by_fields.get(fields, &plan, batch, i, |line| {
                            Ok::<_, QueryError>(match sp.process(ts, line, batch.metadata(i)) {
                                None => None,
                                Some(p) => match (self.unwrap, p.value) {
                                    (true, None) => None,
                                    (_, v) => Some((
                                        self.series_of(p.labels, acc, &mut cache)?,
                                        v.unwrap_or(1.0),
                                    )),
                                },
                            })
                        })?;
                    }
                    let Some((idx, v)) = outcome else { continue };
                    let value = if self.unwrap {
                        v
                    } else if self.bytes {
                        batch.line_lengths[i] as f64
                    } else {
                        1.0
                    };
                    held += self.add(&mut acc.series[idx], ts, value, &mut hint);
                }
                self.ctx.charge(held)?;
                continue;
            }
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
                    p.line.len() as f64
                } else {
                    1.0
                };
                let idx = self.series_of(p.labels, acc, &mut cache)?;
                held += self.add(&mut acc.series[idx], ts, value, &mut hint);
            }
            self.ctx.charge(held)?;
        }
        Ok(())
    }

    /// The series of a sample with these pipeline labels; `cache` maps label-set hashes
    /// to series for the stream.
    fn series_of(
        &self,
        labels: &LabelSet,
        acc: &mut Acc,
        cache: &mut HashMap<u64, usize>,
    ) -> Result<usize, QueryError> {
        // A line with an error keeps all its labels (Loki groups only clean samples); the
        // error fails the query unless a parser preserved it.
        let error = labels.get(ERROR_LABEL);
        let report = error.filter(|_| labels.get(PRESERVE_ERROR_LABEL) != Some("true"));
        let key = if error.is_some() {
            labels.hash()
        } else {
            match self.group {
                SampleGroup::All => labels.hash(),
                SampleGroup::By(n) => labels.hash_grouped(n, false),
                SampleGroup::Without(n) => labels.hash_grouped(n, true),
                SampleGroup::NoLabels => 0,
            }
        };
        if let Some(&i) = cache.get(&key) {
            return Ok(i);
        }
        let all = labels.to_labels();
        let grouped = if error.is_some() {
            all
        } else {
            self.group.apply(all)
        };
        let idx = self.series(acc, grouped, report.map(str::to_string))?;
        cache.insert(key, idx);
        Ok(idx)
    }
}

/// A stream's labels with an entry's structured metadata. A metadata name that is also a
/// stream label becomes `name_extracted`, as in Loki.
fn merge_metadata(stream: &Labels, b: &Batch, ids: &[u32]) -> Labels {
    let mut all: Vec<Label> = stream.iter().cloned().collect();
    for &id in ids {
        let Some((n, v)) = b.metadata_dict.get(id as usize) else {
            continue;
        };
        let name = if stream.get(n).is_some() {
            format!("{n}_extracted")
        } else {
            n.clone()
        };
        all.push(Label {
            name,
            value: v.clone(),
        });
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all.dedup_by(|a, b| a.name == b.name);
    Labels::from_sorted(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Bucketing a sorted batch a run at a time lands every entry where `index` puts it.
        #[test]
        fn add_sorted_agrees_with_index(
            mut ts in proptest::collection::vec(-2_000i64..2_000, 0..200),
            lens in proptest::collection::vec(0u32..100_000, 200),
            start in -1_000i64..1_000,
            step in 1i64..300,
            k in 1usize..5,
            n in 1usize..20,
            offset in -500i64..500,
            instant: bool,
            bytes: bool,
        ) {
            ts.sort_unstable();
            let g = BucketGeometry {
                k: if instant { 1 } else { k },
                len: if instant { 1 } else { n + k - 1 },
                start,
                step,
                offset,
                instant,
            };
            let empty = || Buckets { sum: vec![0.0; g.len], count: vec![0; g.len] };
            let mut want = empty();
            for (i, &t) in ts.iter().enumerate() {
                if let Some(j) = g.index(t) {
                    want.count[j] += 1;
                    want.sum[j] += if bytes { f64::from(lens[i]) } else { 1.0 };
                }
            }
            let mut got = empty();
            g.add_sorted(&mut got, &ts, bytes.then_some(&lens[..ts.len()]));
            prop_assert_eq!(got.count, want.count);
            prop_assert_eq!(got.sum, want.sum);
        }
    }
}
