//! One stream's entries in time order, merged from its sources (part blocks and head
//! chunks), exact duplicates dropped.
//!
//! Sources are sorted by the time they start in the read's direction (earliest `min_ts`
//! forward, latest `max_ts` backward) and opened only when the merge reaches them: a source
//! is opened when its bound is at or before the best entry of the sources already open.
//! With time-ordered data that means one open block at a time, and a limited query reads
//! only the blocks it returns. A block is skipped unread when its trigram filter rules out
//! the query's required text. Sources that overlap another are decoded with their lines so
//! equal `(timestamp, line)` pairs can be recognised.
//!
//! Entries with equal timestamps come in the order they arrived, as in Loki (reversed for
//! backward reads): within a source they are stored that way, and between sources the
//! older source (its [`Src::rank`]) goes first.

use std::sync::Arc;

use logql::{Batch, Columns, Direction, RequiredText, Select, SourceError, StreamCursor};
use protocol::Labels;

use crate::block::BlockDecoder;
use crate::head::{HeadChunk, LineIndex};
use crate::read::{SourceRef, Src};

/// Why a source could not be opened.
enum Gone {
    /// Its part was deleted after the snapshot: skip it.
    Gone,
    Err(SourceError),
}

thread_local! {
    static DECODER: std::cell::Cell<Option<BlockDecoder>> = const { std::cell::Cell::new(None) };
}

/// Entries per batch at most.
const BATCH: usize = 8192;

pub struct Cursor {
    labels: Labels,
    srcs: Vec<Src>,
    next: usize,
    open: Vec<Open>,
    start: i64,
    end: i64,
    dir: Direction,
    columns: Columns,
    required: Option<RequiredText>,
    /// Names the query would take from field columns instead of lines.
    fields: Option<logql::fields::FieldNames>,
    out: Batch,
    io: Vec<u8>,
    /// The entries at one timestamp across open sources, as (open source, entry index).
    group: Vec<(usize, usize)>,
    /// The output batch gets lines: always when the query asked for lines; when it asked
    /// for fields, for batches from sources without them.
    copy_lines: bool,
}

enum Data {
    Owned(Batch),
    Head(Arc<HeadChunk>),
}

struct Open {
    data: Data,
    /// Entries `lo..hi` are in range; `k` of them were consumed.
    lo: usize,
    hi: usize,
    k: usize,
    /// Arrival order of the source among the stream's sources (lower is older).
    rank: u32,
    /// Source metadata id → output batch id, for the current output batch.
    remap: Vec<u32>,
}

impl Data {
    /// The entries, and the batch to take their metadata from when `cols` asks for it.
    fn batches(&self, cols: Columns) -> (&Batch, &Batch) {
        match self {
            Data::Owned(b) => (b, b),
            Data::Head(c) if cols.metadata => (&c.batch, c.metadata()),
            Data::Head(c) => (&c.batch, &c.batch),
        }
    }
}

impl Open {
    fn batch(&self) -> &Batch {
        match &self.data {
            Data::Owned(b) => b,
            Data::Head(c) => &c.batch,
        }
    }
    /// Whether its lines are at hand (always for heads; for blocks, when decoded).
    fn has_lines(&self) -> bool {
        !self.batch().line_offsets.is_empty()
    }
    fn left(&self) -> usize {
        self.hi - self.lo - self.k
    }
    /// Index of the current entry.
    fn cur(&self, dir: Direction) -> usize {
        match dir {
            Direction::Forward => self.lo + self.k,
            Direction::Backward => self.hi - 1 - self.k,
        }
    }
    fn ts(&self, dir: Direction) -> i64 {
        self.batch().timestamps[self.cur(dir)]
    }
}

impl Cursor {
    pub(crate) fn new(labels: Labels, mut srcs: Vec<Src>, req: &Select<'_>) -> Cursor {
        if req.direction == Direction::Backward {
            srcs.sort_by(|a, b| b.max_ts.cmp(&a.max_ts).then(b.min_ts.cmp(&a.min_ts)));
        }
        Cursor {
            labels,
            srcs,
            next: 0,
            open: Vec::new(),
            start: req.start,
            end: req.end,
            dir: req.direction,
            columns: req.columns,
            required: req.required.cloned(),
            fields: req.fields.cloned(),
            out: Batch::default(),
            io: Vec::new(),
            group: Vec::new(),
            copy_lines: req.columns.lines,
        }
    }

    fn bound(&self, s: &Src) -> i64 {
        match self.dir {
            Direction::Forward => s.min_ts,
            Direction::Backward => s.max_ts,
        }
    }

    /// `a` comes before `b` in the read's direction.
    fn before(&self, a: i64, b: i64) -> bool {
        match self.dir {
            Direction::Forward => a < b,
            Direction::Backward => a > b,
        }
    }

    /// The best current timestamp among open sources.
    fn open_best(&self) -> Option<i64> {
        self.open
            .iter()
            .map(|o| o.ts(self.dir))
            .reduce(|a, b| if self.before(b, a) { b } else { a })
    }

    /// Opens sources until the next unopened one starts after the best open entry.
    fn fill(&mut self) -> Result<(), SourceError> {
        while self.next < self.srcs.len() {
            let b = self.bound(&self.srcs[self.next]);
            if let Some(best) = self.open_best()
                && self.before(best, b)
            {
                break;
            }
            let src = self.srcs[self.next].clone();
            self.next += 1;
            match self.open_source(&src) {
                Ok(Some(o)) => self.open.push(o),
                Ok(None) => {}
                // Deleted by another instance sharing the bucket (our own deletions wait for
                // the last snapshot holding the part): its entries are expired or in the part
                // that replaced it.
                Err(Gone::Gone) => {}
                Err(Gone::Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    fn open_source(&mut self, src: &Src) -> Result<Option<Open>, Gone> {
        // With fields asked, a block whose fields cover the names and that overlaps
        // nothing is read without its lines; every other source with them.
        let fields = self.fields.as_ref().filter(|_| {
            !src.overlaps
                && matches!(&src.r, SourceRef::Block { part, block }
                    if part.part.index.blocks[*block as usize].columns.fields > 0)
        });
        let lines = self.columns.lines || src.overlaps || self.fields.is_some();
        let data = match &src.r {
            SourceRef::Head(c) => Data::Head(c.clone()),
            SourceRef::Block { part, block } => {
                let meta = &part.part.index.blocks[*block as usize];
                let err = |e: crate::StoreError| match e {
                    crate::StoreError::PartGone(_) => Gone::Gone,
                    e => Gone::Err(SourceError::Storage(e.to_string())),
                };
                if let Some(req) = &self.required
                    && meta.filter_len > 0
                {
                    let may_match =
                        |f: &[u8]| crate::filter::may_match(f, req, meta.filter_templates);
                    if !part
                        .test_filter(*block, &mut self.io, may_match)
                        .map_err(err)?
                    {
                        return Ok(None);
                    }
                }
                // A zstd context costs more to create than a small block to decode: one per
                // thread, shared by all cursors.
                let dec_cell = DECODER.with(|d| d.take());
                let mut dec = match dec_cell {
                    Some(d) => d,
                    None => BlockDecoder::new()
                        .map_err(|e| Gone::Err(SourceError::Storage(e.to_string())))?,
                };
                let r = Self::decode_block(
                    &mut dec,
                    part,
                    *block,
                    meta,
                    lines,
                    fields,
                    self.columns,
                    &mut self.io,
                );
                DECODER.with(|d| d.set(Some(dec)));
                Data::Owned(r?)
            }
        };
        let ts = match &data {
            Data::Owned(b) => &b.timestamps,
            Data::Head(c) => &c.batch.timestamps,
        };
        let lo = ts.partition_point(|&t| t < self.start);
        let hi = ts.partition_point(|&t| t < self.end);
        if lo >= hi {
            return Ok(None);
        }
        Ok(Some(Open {
            data,
            lo,
            hi,
            k: 0,
            rank: src.rank,
            remap: Vec::new(),
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn decode_block(
        dec: &mut BlockDecoder,
        part: &crate::store::LoadedPart,
        block: u32,
        meta: &crate::part::index::BlockMeta,
        mut lines: bool,
        fields: Option<&logql::fields::FieldNames>,
        columns: Columns,
        io: &mut Vec<u8>,
    ) -> Result<Batch, Gone> {
        let (store, key, size) = (&part.store, &part.part.key, part.part.size);
        let err = |e: crate::StoreError| match e {
            crate::StoreError::PartGone(_) => Gone::Gone,
            e => Gone::Err(SourceError::Storage(e.to_string())),
        };
        let corrupt = || {
            Gone::Err(SourceError::Storage(format!(
                "part {key} is damaged: block {block} does not decode"
            )))
        };
        let mut b = Batch::default();
        let n = meta.count as usize;
        let (off, len) = meta.ts_and_lengths_range();
        store.read_at(key, size, off, len, io).map_err(err)?;
        let (ts_col, len_col) = io.split_at(meta.columns.ts as usize);
        dec.timestamps(ts_col, n, &mut b.timestamps)
            .map_err(|_| corrupt())?;
        dec.lengths(len_col, n, &mut b.line_lengths)
            .map_err(|_| corrupt())?;
        if let Some(names) = fields {
            let (off, len) = meta.fields_range();
            store.read_at(key, size, off, len, io).map_err(err)?;
            let f = dec
                .fields(io, n, Some(&names.names))
                .map_err(|_| corrupt())?;
            if f.plan(names).is_some() {
                b.fields = Some(Box::new(f));
                lines = columns.lines;
            }
        }
        if lines {
            let (off, len) = meta.lines_range();
            store.read_at(key, size, off, len, io).map_err(err)?;
            b.line_offsets.reserve(n + 1);
            b.line_offsets.push(0);
            let mut o = 0u32;
            for &l in &b.line_lengths {
                o = o.checked_add(l).ok_or_else(corrupt)?;
                b.line_offsets.push(o);
            }
            let table = match meta.table {
                Some(t) => Some(part.table(t).map_err(err)?),
                None => None,
            };
            dec.lines(io, n, o as usize, table.as_deref(), &mut b.line_data)
                .map_err(|_| corrupt())?;
        }
        if columns.metadata && meta.columns.meta > 0 {
            let (off, len) = meta.meta_range();
            store.read_at(key, size, off, len, io).map_err(err)?;
            dec.metadata(
                &*io,
                n,
                &mut b.metadata_dict,
                &mut b.metadata_offsets,
                &mut b.metadata_ids,
            )
            .map_err(|_| corrupt())?;
        }
        Ok(b)
    }

    /// Copies the current entry of open source `i` to the output and advances it.
    /// Copies entry `idx` of open source `i` to the output.
    fn emit_at(&mut self, i: usize, idx: usize) {
        let cols = self.columns;
        let copy_lines = self.copy_lines;
        let o = &mut self.open[i];
        let (b, m) = o.data.batches(cols);
        let out = &mut self.out;
        out.timestamps.push(b.timestamps[idx]);
        out.line_lengths.push(b.line_lengths[idx]);
        if copy_lines {
            out.line_data.extend_from_slice(b.line(idx));
            out.line_offsets.push(out.line_data.len() as u32);
        }
        if cols.metadata {
            let ids = m.metadata_ids(idx);
            if !ids.is_empty() {
                if out.metadata_offsets.is_empty() {
                    out.metadata_offsets.resize(out.timestamps.len(), 0);
                }
                if o.remap.len() < m.metadata_dict.len() {
                    o.remap.resize(m.metadata_dict.len(), u32::MAX);
                }
                for &id in ids {
                    let r = &mut o.remap[id as usize];
                    if *r == u32::MAX {
                        out.metadata_dict.push(m.metadata_dict[id as usize].clone());
                        *r = (out.metadata_dict.len() - 1) as u32;
                    }
                    out.metadata_ids.push(*r);
                }
            }
        }
        if !out.metadata_offsets.is_empty() {
            out.metadata_offsets.push(out.metadata_ids.len() as u32);
        }
    }

    /// Copies entries of the only open source, in bulk, up to (not including) `limit` and at
    /// most to a full batch.
    fn emit_run(&mut self, limit: Option<i64>) {
        let dir = self.dir;
        let cols = self.columns;
        let copy_lines = self.copy_lines;
        let room = BATCH - self.out.len();
        let o = &mut self.open[0];
        let (b, m) = o.data.batches(cols);
        // The entries still to read, as an index range in ascending order.
        let (from, to) = (
            o.lo + if dir == Direction::Forward { o.k } else { 0 },
            o.hi - if dir == Direction::Backward { o.k } else { 0 },
        );
        let ts = &b.timestamps[from..to];
        let (from, to) = match dir {
            Direction::Forward => {
                let n = limit
                    .map_or(ts.len(), |l| ts.partition_point(|&t| t < l))
                    .min(room);
                (from, from + n)
            }
            Direction::Backward => {
                let n = ts.len() - limit.map_or(0, |l| ts.partition_point(|&t| t <= l));
                let n = n.min(room);
                (to - n, to)
            }
        };
        if from == to {
            return;
        }
        o.k += to - from;
        let out = &mut self.out;
        let has_meta = cols.metadata && !m.metadata_offsets.is_empty();
        match dir {
            Direction::Forward => {
                out.timestamps.extend_from_slice(&b.timestamps[from..to]);
                out.line_lengths
                    .extend_from_slice(&b.line_lengths[from..to]);
                if copy_lines {
                    let base = out.line_data.len() as u32;
                    let (s, e) = (b.line_offsets[from], b.line_offsets[to]);
                    out.line_data
                        .extend_from_slice(&b.line_data[s as usize..e as usize]);
                    out.line_offsets
                        .extend(b.line_offsets[from + 1..=to].iter().map(|&x| x - s + base));
                }
            }
            Direction::Backward => {
                out.timestamps.extend(b.timestamps[from..to].iter().rev());
                out.line_lengths
                    .extend(b.line_lengths[from..to].iter().rev());
                if copy_lines {
                    for i in (from..to).rev() {
                        out.line_data.extend_from_slice(b.line(i));
                        out.line_offsets.push(out.line_data.len() as u32);
                    }
                }
            }
        }
        if let Some(f) = &b.fields {
            // The only source of this batch (see `next_batch`).
            let columns = f
                .columns
                .iter()
                .map(|c| {
                    let codes = &c.codes[from..to];
                    logql::fields::FieldColumn {
                        name: c.name.clone(),
                        tokens: c.tokens.clone(),
                        codes: match dir {
                            Direction::Forward => codes.to_vec(),
                            Direction::Backward => codes.iter().rev().copied().collect(),
                        },
                    }
                })
                .collect();
            out.fields = Some(Box::new(logql::fields::Fields {
                kind: f.kind,
                columns,
                uncovered: f.uncovered.clone(),
                nested: f.nested.clone(),
            }));
        }
        if has_meta || !out.metadata_offsets.is_empty() {
            // Per entry (rare: metadata asked and present).
            let n = to - from;
            let first_new = out.timestamps.len() - n;
            let mut idx: Vec<usize> = (from..to).collect();
            if dir == Direction::Backward {
                idx.reverse();
            }
            for (j, i) in idx.into_iter().enumerate() {
                let ids = if has_meta { m.metadata_ids(i) } else { &[] };
                if !ids.is_empty() && out.metadata_offsets.is_empty() {
                    out.metadata_offsets.resize(first_new + j + 1, 0);
                }
                if o.remap.len() < m.metadata_dict.len() {
                    o.remap.resize(m.metadata_dict.len(), u32::MAX);
                }
                for &id in ids {
                    let r = &mut o.remap[id as usize];
                    if *r == u32::MAX {
                        out.metadata_dict.push(m.metadata_dict[id as usize].clone());
                        *r = (out.metadata_dict.len() - 1) as u32;
                    }
                    out.metadata_ids.push(*r);
                }
                if !out.metadata_offsets.is_empty() {
                    out.metadata_offsets.push(out.metadata_ids.len() as u32);
                }
            }
        }
    }

    /// Emits every entry at the earliest timestamp (in the read's direction) of the open
    /// sources: in arrival order (older sources first, each source's entries as stored),
    /// exact duplicates after their first arrival dropped, reversed for backward reads.
    fn emit_group(&mut self) {
        let dir = self.dir;
        let Some(t) = self.open_best() else { return };
        let mut order: Vec<usize> = (0..self.open.len())
            .filter(|&i| self.open[i].ts(dir) == t)
            .collect();
        order.sort_by_key(|&i| self.open[i].rank);
        let mut group = std::mem::take(&mut self.group);
        group.clear();
        let mut seen = LineIndex::default();
        for &i in &order {
            let o = &self.open[i];
            let cur = o.cur(dir);
            let ts = &o.batch().timestamps;
            let n = match dir {
                Direction::Forward => ts[cur..o.hi].iter().take_while(|&&x| x == t).count(),
                Direction::Backward => ts[o.lo..=cur].iter().rev().take_while(|&&x| x == t).count(),
            };
            let first = match dir {
                Direction::Forward => cur,
                Direction::Backward => cur + 1 - n,
            };
            for idx in first..first + n {
                let dup = o.has_lines()
                    && seen.contains(
                        group.len(),
                        |k| {
                            let (j, jdx) = group[k];
                            let p = &self.open[j];
                            p.has_lines().then(|| p.batch().line(jdx))
                        },
                        o.batch().line(idx),
                    );
                if !dup {
                    group.push((i, idx));
                }
            }
            self.open[i].k += n;
        }
        if dir == Direction::Backward {
            group.reverse();
        }
        for &(i, idx) in &group {
            self.emit_at(i, idx);
        }
        self.group = group;
    }
}

impl StreamCursor for Cursor {
    fn labels(&self) -> &Labels {
        &self.labels
    }

    fn peek_bound(&self) -> Option<i64> {
        let open = self.open_best();
        let next = self.srcs.get(self.next).map(|s| self.bound(s));
        match (open, next) {
            (Some(a), Some(b)) => Some(if self.before(b, a) { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    fn next_batch(&mut self) -> Result<Option<&Batch>, SourceError> {
        self.out.clear();
        for o in &mut self.open {
            o.remap.clear();
        }
        if self.columns.lines {
            self.out.line_offsets.push(0);
        }
        // With fields asked, a batch holds either one block's entries with their fields
        // (and lines only when asked) or entries of sources without fields, with lines.
        let mut with_fields: Option<bool> = None;
        while self.out.len() < BATCH {
            self.fill()?;
            if self.open.is_empty() {
                break;
            }
            if self.fields.is_some() {
                let has = self.open.len() == 1 && self.open[0].batch().fields.is_some();
                match with_fields {
                    None => {
                        with_fields = Some(has);
                        self.copy_lines = self.columns.lines || !has;
                        if self.copy_lines && !self.columns.lines {
                            self.out.line_offsets.push(0);
                        }
                    }
                    Some(w) if w != has => break,
                    Some(true) => break,
                    Some(false) => {}
                }
            }
            if self.open.len() == 1 {
                // Fast path: one open source; copy up to the next source's bound.
                let limit = self.srcs.get(self.next).map(|s| self.bound(s));
                self.emit_run(limit);
            } else {
                self.emit_group();
            }
            self.open.retain(|o| o.left() > 0);
        }
        if self.out.is_empty() {
            return Ok(None);
        }
        Ok(Some(&self.out))
    }
}
