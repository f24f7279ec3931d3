//! Log queries: the newest (or oldest) `limit` entries of the selected streams after the
//! pipeline, grouped by their final label set.
//!
//! Streams are read in parallel. Each worker keeps the best `limit` entries it has seen
//! in a heap; a stream whose next entry (from [`StreamCursor::peek_bound`], before any
//! block is opened) or current entry is already worse than the worker's `limit`-th best
//! is abandoned, so a limited query reads little beyond what it returns and memory stays
//! bounded by the limit. Equal timestamps order by label set, as Loki's merge does.

use super::by_fields::FieldMemo;
use crate::fields::FieldNames;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Arc, Mutex};

use protocol::Labels;
use protocol::response::{Categories, Entry, QueryResponse, QueryResult, Stream};

use super::Ctx;
use crate::ast::LogExpr;
use crate::engine::QueryError;
use crate::pipeline::Pipeline;
use crate::source::{Columns, Direction, Select, StreamCursor};

/// One entry that may be returned.
struct Candidate {
    ts: i64,
    labels: Arc<Labels>,
    /// Stream and position, for a stable order among equals.
    seq: (u32, u32),
    line: String,
    categories: Option<Arc<Categories>>,
    forward: bool,
}

impl Candidate {
    /// Less is better: earlier for forward reads, later for backward.
    fn key_cmp(&self, o: &Candidate) -> Ordering {
        let t = if self.forward {
            self.ts.cmp(&o.ts)
        } else {
            o.ts.cmp(&self.ts)
        };
        t.then_with(|| self.labels.cmp(&o.labels))
            .then_with(|| self.seq.cmp(&o.seq))
    }

    fn size(&self) -> usize {
        self.line.len() + 64
    }
}

impl PartialEq for Candidate {
    fn eq(&self, o: &Self) -> bool {
        self.key_cmp(o) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Candidate {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key_cmp(o)
    }
}

/// Whether `ts` is strictly worse than `bound` in the read direction.
fn worse(forward: bool, ts: i64, bound: i64) -> bool {
    if forward { ts > bound } else { ts < bound }
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn eval(
    ctx: &Ctx<'_>,
    log: &LogExpr,
    start: i64,
    end: i64,
    limit: u32,
    interval: Option<i64>,
    direction: Direction,
    categorize: bool,
) -> Result<QueryResponse, QueryError> {
    let pipeline =
        Pipeline::new(&log.pipeline, None).map_err(|e| QueryError::Pipeline(e.to_string()))?;
    let required = pipeline.required_text();
    let filter_names = pipeline.filter_names();
    let select = Select {
        matchers: &log.selector,
        start,
        end,
        direction,
        columns: Columns {
            lines: true,
            metadata: true,
        },
        required: required.as_ref(),
        fields: filter_names.as_ref(),
    };
    let forward = direction == Direction::Forward;
    let mut cursors = ctx.src.select(&select)?;
    // The streams whose first entry is best go first: they fill the heap soonest.
    cursors.sort_by_key(|c| {
        let b = c
            .peek_bound()
            .unwrap_or(if forward { i64::MAX } else { i64::MIN });
        if forward { b } else { -b.max(i64::MIN + 1) }
    });
    let limit = limit as usize;
    // With `interval`, returned entries are at least that far apart, so the first `limit`
    // of them lie within `limit * interval` of the first entry: read everything up to
    // there (the cutoff), thin, then cut.
    let interval = interval.filter(|&i| i > 0);
    let cutoff = interval.and_then(|iv| {
        let first = cursors.first()?.peek_bound()?;
        let span = iv.saturating_mul(limit as i64);
        Some(if forward {
            first.saturating_add(span)
        } else {
            first.saturating_sub(span)
        })
    });
    let heap_limit = if interval.is_some() {
        usize::MAX
    } else {
        limit
    };
    let queue = Mutex::new(
        cursors
            .into_iter()
            .enumerate()
            .rev()
            .collect::<Vec<(usize, Box<dyn StreamCursor + '_>)>>(),
    );
    let workers = ctx.workers();
    let results: Vec<Result<BinaryHeap<Candidate>, QueryError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut w = Worker {
                        ctx,
                        pipeline: &pipeline,
                        filter_names: filter_names.as_ref(),
                        forward,
                        limit: heap_limit,
                        cutoff,
                        categorize,
                        heap: BinaryHeap::new(),
                        label_cache: HashMap::new(),
                        held: 0,
                    };
                    let r = loop {
                        let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                        let Some((idx, mut cursor)) = next else {
                            break Ok(());
                        };
                        if let Err(e) = w.read_stream(idx as u32, cursor.as_mut()) {
                            break Err(e);
                        }
                    };
                    ctx.release(w.held);
                    r.map(|_| w.heap)
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
    let mut all = Vec::new();
    for r in results {
        all.extend(r?.into_vec());
    }
    all.sort();
    dedup(&mut all);
    if let Some(iv) = interval {
        thin(&mut all, iv, forward);
    }
    all.truncate(limit);
    Ok(assemble(all, categorize))
}

/// A processed label set as returned: the stream's labels, and with categorize-labels the
/// entry's categories.
type CachedLabels = (Arc<Labels>, Option<Arc<Categories>>);

struct Worker<'c, 'p> {
    ctx: &'c Ctx<'c>,
    pipeline: &'p Pipeline,
    /// The labels the filters read, when field columns may decide which lines they drop.
    filter_names: Option<&'p FieldNames>,
    forward: bool,
    limit: usize,
    /// No entry beyond this time can be returned.
    cutoff: Option<i64>,
    categorize: bool,
    heap: BinaryHeap<Candidate>,
    label_cache: HashMap<u64, CachedLabels>,
    held: usize,
}

impl Worker<'_, '_> {
    /// The timestamp an entry must not be worse than to enter a full heap.
    fn bound(&self) -> Option<i64> {
        if self.heap.len() < self.limit {
            self.cutoff
        } else {
            self.heap.peek().map(|c| c.ts)
        }
    }

    fn read_stream(&mut self, idx: u32, cursor: &mut dyn StreamCursor) -> Result<(), QueryError> {
        if self.limit == 0 {
            return Ok(());
        }
        let stream_labels = cursor.labels().clone();
        let mut sp = self.pipeline.for_stream(&stream_labels);
        let mut pos = 0u32;
        // Entries of this stream at the current timestamp, to drop exact duplicates (same
        // time, labels and line after the pipeline), as Loki's merge does.
        let mut same_ts: Vec<(Arc<Labels>, String)> = Vec::new();
        let mut cur_ts = i64::MIN;
        // With field columns: whether the filters drop a combination of member tokens
        // and metadata (decided on a line of just those members), per batch.
        let mut drops: FieldMemo<bool> = FieldMemo::new();
        loop {
            if let (Some(b), Some(next)) = (self.bound(), cursor.peek_bound())
                && worse(self.forward, next, b)
            {
                return Ok(());
            }
            self.ctx.check_time()?;
            let Some(batch) = cursor.next_batch()? else {
                return Ok(());
            };
            drops.clear();
            let plan = match (&self.filter_names, &batch.fields) {
                (Some(names), Some(f)) if f.nested.is_empty() => f.plan(names).map(|p| (f, p)),
                _ => None,
            };
            for i in 0..batch.len() {
                pos += 1;
                let ts = batch.timestamps[i];
                if let Some(b) = self.bound()
                    && worse(self.forward, ts, b)
                {
                    return Ok(());
                }
                if let Some((f, cols)) = &plan {
                    let drop = drops.get(f, cols, batch, i, |line| {
                        Ok::<_, QueryError>(sp.process(ts, line, batch.metadata(i)).is_none())
                    })?;
                    if drop {
                        continue;
                    }
                }
                let Some(p) = sp.process(ts, batch.line(i), batch.metadata(i)) else {
                    continue;
                };
                let key = p.labels.hash();
                let (labels, categories) = match self.label_cache.get(&key) {
                    Some(v) => v.clone(),
                    None => {
                        let (labels, categories) = p.labels.answer_labels(self.categorize);
                        let v = (Arc::new(labels), categories.map(Arc::new));
                        self.label_cache.insert(key, v.clone());
                        v
                    }
                };
                let line = String::from_utf8_lossy(p.line).into_owned();
                if ts != cur_ts {
                    cur_ts = ts;
                    same_ts.clear();
                }
                if same_ts.iter().any(|(l, s)| *l == labels && *s == line) {
                    continue;
                }
                same_ts.push((labels.clone(), line.clone()));
                let c = Candidate {
                    ts,
                    labels,
                    seq: (idx, pos),
                    line,
                    categories,
                    forward: self.forward,
                };
                if self.heap.len() >= self.limit {
                    if let Some(top) = self.heap.peek()
                        && c.cmp(top) != Ordering::Less
                    {
                        continue;
                    }
                    if let Some(old) = self.heap.pop() {
                        self.ctx.release(old.size());
                        self.held -= old.size();
                    }
                }
                self.ctx.charge(c.size())?;
                self.held += c.size();
                self.heap.push(c);
            }
        }
    }
}

/// Loki's `interval`: after the first entry, only entries at least `interval` past the
/// last one returned (in the read direction), across all streams.
fn thin(all: &mut Vec<Candidate>, interval: i64, forward: bool) {
    let mut last: Option<i64> = None;
    all.retain(|c| {
        let keep = match last {
            None => true,
            Some(l) if forward => c.ts >= l.saturating_add(interval),
            Some(l) => c.ts <= l.saturating_sub(interval),
        };
        if keep {
            last = Some(c.ts);
        }
        keep
    });
}

/// Drops entries equal in time, labels and line to an earlier one (from another stream).
fn dedup(all: &mut Vec<Candidate>) {
    let mut out: Vec<Candidate> = Vec::with_capacity(all.len());
    let mut run_start = 0;
    for c in all.drain(..) {
        if out
            .last()
            .is_none_or(|l| l.ts != c.ts || l.labels != c.labels)
        {
            run_start = out.len();
        }
        if out[run_start..].iter().any(|o| o.line == c.line) {
            continue;
        }
        out.push(c);
    }
    *all = out;
}

/// Groups the chosen entries (best first) into result streams.
fn assemble(entries: Vec<Candidate>, categorize: bool) -> QueryResponse {
    let mut streams: Vec<Stream> = Vec::new();
    let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
    for c in entries {
        let i = *index.entry(c.labels.clone()).or_insert_with(|| {
            streams.push(Stream {
                labels: (*c.labels).clone(),
                entries: Vec::new(),
            });
            streams.len() - 1
        });
        streams[i].entries.push(Entry {
            ts: c.ts,
            line: c.line,
            categories: c.categories.map(|c| (*c).clone()),
        });
    }
    streams.sort_by(|a, b| a.labels.cmp(&b.labels));
    QueryResponse {
        result: QueryResult::Streams(streams),
        stats: None,
        encoding_flags: if categorize {
            vec!["categorize-labels".to_string()]
        } else {
            Vec::new()
        },
    }
}
