//! [`Reader`]: the store as the query engine sees it ([`logql::Source`]) plus the label
//! and series lookups of the API.
//!
//! `select` resolves the selector against each tenant's label index, then gathers per stream
//! the *sources* overlapping the time range: blocks of parts (described by their index, not
//! read) and head chunks (shared by `Arc`). Each stream becomes a [`cursor::Cursor`] that
//! opens sources lazily in time order; see there for the merge.

mod cursor;

use std::collections::BTreeSet;
use std::sync::Arc;

use logql::ast::{MatchOp, Matcher};
use logql::{Select, SourceError, StreamCursor};
use protocol::{Label, Labels};

use crate::index::StreamId;
use crate::store::{LoadedPart, Shared, Tenant, View};
use crate::{StoreError, StreamStats};

pub use cursor::Cursor;

/// The label Loki adds to every stream of a query over several tenants.
pub const TENANT_LABEL: &str = "__tenant_id__";

/// A read view over one or more tenants. Cheap to create; `select` may be called from
/// several threads. Blocking (reads files): call it from a blocking context.
pub struct Reader {
    shared: Arc<Shared>,
    tenants: Vec<String>,
}

/// Where a stream's entries are: a block of a part, or a chunk of a head.
#[derive(Clone)]
pub(crate) enum SourceRef {
    Block {
        part: Arc<crate::store::LoadedPart>,
        block: u32,
    },
    Head(Arc<crate::head::HeadChunk>),
}

#[derive(Clone)]
pub(crate) struct Src {
    pub r: SourceRef,
    pub min_ts: i64,
    pub max_ts: i64,
    pub count: u64,
    pub raw_bytes: u64,
    /// Overlaps another source of the stream: must be read with lines to drop duplicates.
    pub overlaps: bool,
    /// Arrival order among the stream's sources (parts as listed, then the heads oldest
    /// first): breaks ties between equal timestamps of different sources.
    pub rank: u32,
}

impl Reader {
    pub(crate) fn new(shared: Arc<Shared>, tenants: &[String]) -> Reader {
        let mut t: Vec<String> = tenants.to_vec();
        t.sort();
        t.dedup();
        Reader { shared, tenants: t }
    }

    fn multi(&self) -> bool {
        self.tenants.len() > 1
    }

    /// The tenants that exist and pass the `__tenant_id__` matchers (multi-tenant only),
    /// with the remaining matchers.
    fn tenants_for<'m>(&self, matchers: &'m [Matcher]) -> (Vec<Arc<Tenant>>, Vec<&'m Matcher>) {
        let multi = self.multi();
        let (tm, rest): (Vec<&Matcher>, Vec<&Matcher>) = matchers
            .iter()
            .partition(|m| multi && m.name == TENANT_LABEL);
        let all = self.shared.tenants.read();
        let ts = self
            .tenants
            .iter()
            .filter(|n| tm.iter().all(|m| m.matches(n)))
            .filter_map(|n| all.by_name.get(n.as_str()).cloned())
            .collect();
        (ts, rest)
    }

    fn labels_of(&self, tenant: &Tenant, l: &Labels) -> Labels {
        if self.multi() {
            let mut l = l.clone();
            l.set(TENANT_LABEL, &tenant.name);
            l
        } else {
            l.clone()
        }
    }

    /// Streams of `tenant` matching `matchers`, with their labels.
    fn streams(&self, tenant: &Tenant, matchers: &[&Matcher]) -> Vec<(StreamId, Arc<Labels>)> {
        let owned: Vec<Matcher> = matchers.iter().map(|m| (*m).clone()).collect();
        let cat = tenant.catalog.read();
        cat.select(&owned)
            .into_iter()
            .map(|id| (id, cat.labels(id).clone()))
            .collect()
    }

    /// The sources of one stream overlapping `[start, end)`, sorted by start time.
    fn sources(view: &View, tenant: &Tenant, id: StreamId, start: i64, end: i64) -> Vec<Src> {
        let mut out = Vec::new();
        if let Some(parts) = view.parts.get(&tenant.num) {
            // Oldest first, so ranks follow arrival order (see `Src::rank`).
            let mut parts: Vec<&Arc<LoadedPart>> = parts.iter().collect();
            parts.sort_by(|a, b| a.age().cmp(b.age()));
            for p in parts {
                let idx = &p.part.index;
                if idx.max_ts < start || idx.min_ts >= end {
                    continue;
                }
                let Some(s) = p.stream(id) else { continue };
                if s.max_ts < start || s.min_ts >= end {
                    continue;
                }
                for b in s.blocks.clone() {
                    let m = &idx.blocks[b as usize];
                    if m.max_ts >= start && m.min_ts < end {
                        out.push(Src {
                            r: SourceRef::Block {
                                part: p.clone(),
                                block: b,
                            },
                            min_ts: m.min_ts,
                            max_ts: m.max_ts,
                            count: u64::from(m.count),
                            raw_bytes: m.raw_bytes,
                            overlaps: false,
                            rank: 0,
                        });
                    }
                }
            }
        }
        let mut chunks = Vec::new();
        for mt in view.memtables() {
            let streams = mt.streams.read();
            if let Some(h) = streams.get(&(tenant.num, id))
                && h.max_ts >= start
                && h.min_ts < end
            {
                h.snapshot(start, end, &mut chunks);
            }
        }
        for c in chunks {
            out.push(Src {
                min_ts: c.min_ts,
                max_ts: c.max_ts,
                count: c.batch.len() as u64,
                raw_bytes: c.raw_bytes(),
                r: SourceRef::Head(c),
                overlaps: false,
                rank: 0,
            });
        }
        for (i, s) in out.iter_mut().enumerate() {
            s.rank = i as u32;
        }
        out.sort_by_key(|s| (s.min_ts, s.max_ts));
        // Clusters of sources that overlap (transitively): their entries may interleave and
        // repeat, so they are read with lines to drop exact duplicates.
        let mut i = 0;
        while i < out.len() {
            let mut j = i + 1;
            let mut run_max = out[i].max_ts;
            while j < out.len() && out[j].min_ts <= run_max {
                run_max = run_max.max(out[j].max_ts);
                j += 1;
            }
            if j - i > 1 {
                out[i..j].iter_mut().for_each(|s| s.overlaps = true);
            }
            i = j;
        }
        out
    }

    fn has_data(view: &View, tenant: &Tenant, id: StreamId, start: i64, end: i64) -> bool {
        if let Some(parts) = view.parts.get(&tenant.num) {
            for p in parts.iter() {
                if let Some(s) = p.stream(id)
                    && s.max_ts >= start
                    && s.min_ts < end
                {
                    return true;
                }
            }
        }
        view.memtables().any(|mt| {
            mt.streams
                .read()
                .get(&(tenant.num, id))
                .is_some_and(|h| h.max_ts >= start && h.min_ts < end)
        })
    }

    /// Streams matching any of the selectors with data in `[start, end)`, sorted.
    pub fn series(
        &self,
        selectors: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Result<Vec<Labels>, StoreError> {
        let view = self.shared.view();
        let mut out = BTreeSet::new();
        for sel in selectors {
            let (tenants, rest) = self.tenants_for(sel);
            for t in &tenants {
                for (id, labels) in self.streams(t, &rest) {
                    if Self::has_data(&view, t, id, start, end) {
                        out.insert(self.labels_of(t, &labels));
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    fn matching_streams(
        &self,
        selector: Option<&[Matcher]>,
        start: i64,
        end: i64,
        mut f: impl FnMut(&Labels),
    ) {
        let view = self.shared.view();
        let sel = selector.unwrap_or(&[]);
        let (tenants, rest) = self.tenants_for(sel);
        for t in &tenants {
            for (id, labels) in self.streams(t, &rest) {
                if Self::has_data(&view, t, id, start, end) {
                    f(&self.labels_of(t, &labels));
                }
            }
        }
    }

    /// Label names of the streams (matching `selector`, when given) with data in range.
    pub fn label_names(
        &self,
        selector: Option<&[Matcher]>,
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut names = BTreeSet::new();
        self.matching_streams(selector, start, end, |l| {
            for Label { name, .. } in l {
                if !names.contains(name) {
                    names.insert(name.clone());
                }
            }
        });
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` over the streams (matching `selector`) with data in range.
    pub fn label_values(
        &self,
        name: &str,
        selector: Option<&[Matcher]>,
        start: i64,
        end: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut values = BTreeSet::new();
        let has_name = Matcher::new(name, MatchOp::Re, ".+")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut sel: Vec<Matcher> = selector.map(|s| s.to_vec()).unwrap_or_default();
        if !(self.multi() && name == TENANT_LABEL) {
            sel.push(has_name);
        }
        self.matching_streams(Some(&sel), start, end, |l| {
            if let Some(v) = l.get(name)
                && !values.contains(v)
            {
                values.insert(v.to_string());
            }
        });
        Ok(values.into_iter().collect())
    }

    /// Per-stream entries, bytes and blocks ("chunks") with data in `[start, end)`, from
    /// block summaries: whole blocks are counted, as Loki counts whole chunks.
    pub fn stream_stats(
        &self,
        selector: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<StreamStats>, StoreError> {
        let view = self.shared.view();
        let (tenants, rest) = self.tenants_for(selector);
        let mut out = Vec::new();
        for t in &tenants {
            for (id, labels) in self.streams(t, &rest) {
                let srcs = Self::sources(&view, t, id, start, end);
                if srcs.is_empty() {
                    continue;
                }
                out.push(StreamStats {
                    labels: self.labels_of(t, &labels),
                    entries: srcs.iter().map(|s| s.count).sum(),
                    bytes: srcs.iter().map(|s| s.raw_bytes).sum(),
                    chunks: srcs.len() as u64,
                });
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }
}

impl logql::Source for Reader {
    fn select(&self, req: &Select<'_>) -> Result<Vec<Box<dyn StreamCursor + '_>>, SourceError> {
        let view = self.shared.view();
        let (tenants, rest) = self.tenants_for(req.matchers);
        let mut out: Vec<Box<dyn StreamCursor + '_>> = Vec::new();
        if req.start >= req.end {
            return Ok(out);
        }
        for t in &tenants {
            for (id, labels) in self.streams(t, &rest) {
                let srcs = Self::sources(&view, t, id, req.start, req.end);
                if srcs.is_empty() {
                    continue;
                }
                out.push(Box::new(Cursor::new(self.labels_of(t, &labels), srcs, req)));
            }
        }
        Ok(out)
    }
}
