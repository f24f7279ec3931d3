//! Heads: the entries of the current memtable, in memory, per stream, readable at once.
//!
//! A [`HeadStream`] appends entries as they come (any order) to a small *active* chunk;
//! at [`CHUNK_ENTRIES`] entries or [`CHUNK_BYTES`] of lines the chunk is sorted by
//! timestamp (entries with equal timestamps keep the order they came in, as in Loki),
//! de-duplicated and frozen into an immutable [`HeadChunk`] shared with
//! readers by `Arc`. A reader's snapshot is those `Arc`s plus a sorted copy of the active
//! chunk, so reads never hold a lock while they decode and never copy more than one
//! small chunk per stream.
//!
//! A [`Memtable`] is all heads of one WAL segment (one generation). When it is large or old
//! enough the commit thread rotates it and the flusher writes it out as parts.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use logql::Batch;
use logql::detect::{DETECTED_LEVEL, level, line_level};
use parking_lot::{Mutex, RwLock};

use dict::DictIndex;

use crate::codec::Corrupt;
pub(crate) use run::LineIndex;
use run::RunIndex;

mod dict;
mod run;

/// Entries of an active chunk before it is frozen.
pub const CHUNK_ENTRIES: usize = 2048;
/// Line bytes of an active chunk before it is frozen.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// A frozen, sorted, duplicate-free run of one stream's entries, lines and metadata.
#[derive(Debug)]
pub struct HeadChunk {
    pub batch: Batch,
    pub min_ts: i64,
    pub max_ts: i64,
    /// The metadata as reads see it, made on the first read that asks for metadata.
    metadata: OnceLock<Batch>,
}

impl HeadChunk {
    fn new(batch: Batch) -> HeadChunk {
        HeadChunk {
            min_ts: batch.timestamps.first().copied().unwrap_or(0),
            max_ts: batch.timestamps.last().copied().unwrap_or(0),
            batch,
            metadata: OnceLock::new(),
        }
    }

    pub fn raw_bytes(&self) -> u64 {
        self.batch.line_data.len() as u64
    }

    /// A chunk whose entry `j` came from entry `kept[j]` of an active chunk whose lines'
    /// levels are `levels` (see [`HeadStream::snapshot`]): its read metadata is made now.
    fn with_levels(batch: Batch, levels: &[u8], kept: &[u32]) -> HeadChunk {
        let c = HeadChunk::new(batch);
        let m = leveled_metadata(&c.batch, |j| level_of_code(levels[kept[j] as usize]));
        let _ = c.metadata.set(m);
        c
    }

    /// The entries' metadata (only `metadata_dict`, `metadata_offsets` and `metadata_ids`
    /// are set) with, for each entry without a `detected_level`, the one its line implies:
    /// what a block written from the chunk will hold (see [`crate::block`]). The push path
    /// leaves that pair out when the line alone decides it, so that the work is done per
    /// template when blocks are written, not per line; reads of the heads do it once per
    /// line (see [`HeadStream::snapshot`]).
    pub fn metadata(&self) -> &Batch {
        self.metadata
            .get_or_init(|| leveled_metadata(&self.batch, |j| line_level(self.batch.line(j))))
    }
}

/// `b`'s metadata with, for each entry without a `detected_level`, the pair of `level(i)`
/// (entry `i`'s line's level) added.
fn leveled_metadata(b: &Batch, mut level: impl FnMut(usize) -> &'static str) -> Batch {
    let mut m = Batch {
        metadata_dict: b.metadata_dict.clone(),
        ..Batch::default()
    };
    let own: Vec<bool> = m
        .metadata_dict
        .iter()
        .map(|(n, _)| n == DETECTED_LEVEL)
        .collect();
    m.metadata_offsets.reserve(b.len() + 1);
    m.metadata_offsets.push(0);
    m.metadata_ids.reserve(b.metadata_ids.len() + b.len());
    // Dictionary ids of the derived levels, by level.
    let mut derived: Vec<(&'static str, u32)> = Vec::new();
    for i in 0..b.len() {
        let ids = b.metadata_ids(i);
        m.metadata_ids.extend_from_slice(ids);
        if !ids.iter().any(|&id| own[id as usize]) {
            let level = level(i);
            let id = match derived.iter().find(|(l, _)| *l == level) {
                Some(&(_, id)) => id,
                None => {
                    let id = match m
                        .metadata_dict
                        .iter()
                        .position(|(n, v)| n == DETECTED_LEVEL && v == level)
                    {
                        Some(id) => id as u32,
                        None => {
                            m.metadata_dict
                                .push((DETECTED_LEVEL.to_string(), level.to_string()));
                            (m.metadata_dict.len() - 1) as u32
                        }
                    };
                    derived.push((level, id));
                    id
                }
            };
            m.metadata_ids.push(id);
        }
        m.metadata_offsets.push(m.metadata_ids.len() as u32);
    }
    m
}

/// A level as one byte: its index in [`level::ALL`].
fn level_code(l: &'static str) -> u8 {
    level::ALL
        .iter()
        .position(|&k| k == l)
        .unwrap_or(level::ALL.len() - 1) as u8
}

fn level_of_code(c: u8) -> &'static str {
    level::ALL[usize::from(c).min(level::ALL.len() - 1)]
}

/// One stream's entries in a memtable.
#[derive(Debug)]
pub struct HeadStream {
    frozen: Vec<Arc<HeadChunk>>,
    active: Batch,
    /// (name, value) to its id in `active.metadata_dict`.
    meta_ids: DictIndex,
    /// The levels of the lines of the active chunk's first entries ([`level_code`]s),
    /// found by reads so far: each read copies the active chunk, and would otherwise scan
    /// all its lines again (see [`HeadChunk::metadata`]).
    active_levels: Mutex<Vec<u8>>,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl Default for HeadStream {
    fn default() -> HeadStream {
        HeadStream {
            frozen: Vec::new(),
            active: Batch::default(),
            meta_ids: DictIndex::default(),
            active_levels: Mutex::new(Vec::new()),
            min_ts: i64::MAX,
            max_ts: i64::MIN,
        }
    }
}

impl HeadStream {
    /// Appends one entry. `meta` pairs are (name, value), as read from the WAL; a pair
    /// that is not UTF-8 is an error, and then nothing is appended.
    pub fn push<'m>(
        &mut self,
        ts: i64,
        line: &[u8],
        meta: impl Iterator<Item = (&'m [u8], &'m [u8])>,
    ) -> Result<(), Corrupt> {
        let b = &mut self.active;
        let first_id = b.metadata_ids.len();
        for (n, v) in meta {
            match self.meta_ids.id_of_bytes(&mut b.metadata_dict, n, v) {
                Ok(id) => b.metadata_ids.push(id),
                Err(e) => {
                    b.metadata_ids.truncate(first_id);
                    return Err(e);
                }
            }
        }
        if b.metadata_ids.len() > first_id && b.metadata_offsets.is_empty() {
            // Entries before this one had none.
            b.metadata_offsets.resize(b.timestamps.len() + 1, 0);
        }
        if b.line_offsets.is_empty() {
            b.line_offsets.push(0);
        }
        b.timestamps.push(ts);
        b.line_lengths.push(line.len() as u32);
        grow_lines(&mut b.line_data, line.len());
        b.line_data.extend_from_slice(line);
        b.line_offsets.push(b.line_data.len() as u32);
        if !b.metadata_offsets.is_empty() {
            b.metadata_offsets.push(b.metadata_ids.len() as u32);
        }
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        if b.timestamps.len() >= CHUNK_ENTRIES || b.line_data.len() >= CHUNK_BYTES {
            self.freeze();
        }
        Ok(())
    }

    /// Moves the active chunk, sorted, into the frozen list.
    fn freeze(&mut self) {
        if self.active.is_empty() {
            return;
        }
        let levels = std::mem::take(self.active_levels.get_mut());
        let all_levels = levels.len() == self.active.len();
        // In-order entries (the usual case) are moved, not copied.
        let chunk = if is_strictly_sorted(&self.active) {
            let mut batch = std::mem::take(&mut self.active);
            Room::of(&batch).reserve(&mut self.active);
            trim(&mut batch);
            if all_levels {
                let kept: Vec<u32> = (0..batch.len() as u32).collect();
                HeadChunk::with_levels(batch, &levels, &kept)
            } else {
                HeadChunk::new(batch)
            }
        } else {
            let (batch, kept) = sorted_copy(&self.active);
            self.active.clear();
            if all_levels {
                HeadChunk::with_levels(batch, &levels, &kept)
            } else {
                HeadChunk::new(batch)
            }
        };
        self.frozen.push(Arc::new(chunk));
        self.meta_ids.clear();
    }

    /// The stream's chunks overlapping `[start, end)`, the active one copied and sorted.
    pub fn snapshot(&self, start: i64, end: i64, out: &mut Vec<Arc<HeadChunk>>) {
        for c in &self.frozen {
            if c.max_ts >= start && c.min_ts < end {
                out.push(c.clone());
            }
        }
        if !self.active.is_empty() {
            // The levels of the lines no read has seen yet: a few per read, not all.
            let mut levels = self.active_levels.lock();
            let b = &self.active;
            for i in levels.len()..b.len() {
                let own = b
                    .metadata_ids(i)
                    .iter()
                    .any(|&id| b.metadata_dict[id as usize].0 == DETECTED_LEVEL);
                // An entry with its own level needs none (any code will do).
                levels.push(if own {
                    0
                } else {
                    level_code(line_level(b.line(i)))
                });
            }
            let (batch, kept) = sorted_copy(&self.active);
            let c = HeadChunk::with_levels(batch, &levels, &kept);
            drop(levels);
            if c.max_ts >= start && c.min_ts < end {
                out.push(Arc::new(c));
            }
        }
    }

    /// All entries, sorted by timestamp (equal ones in arrival order) and de-duplicated,
    /// for writing parts. A stream whose entries sit in one chunk already in order (the
    /// usual case: a memtable holds about a thousand lines of each stream) is lent as it
    /// is, not copied.
    pub fn merged(&self) -> Cow<'_, Batch> {
        match (&self.frozen[..], self.active.is_empty()) {
            ([], false) if is_strictly_sorted(&self.active) => return Cow::Borrowed(&self.active),
            ([only], true) => return Cow::Borrowed(&only.batch),
            _ => {}
        }
        let mut all: Vec<Arc<HeadChunk>> = self.frozen.clone();
        if !self.active.is_empty() {
            all.push(Arc::new(sorted_chunk(&self.active)));
        }
        Cow::Owned(merge_chunks(&all))
    }

    pub fn entries(&self) -> usize {
        self.frozen.iter().map(|c| c.batch.len()).sum::<usize>() + self.active.len()
    }

    /// The room this stream's entries would take in one chunk (capped at a chunk's size).
    fn room(&self) -> Room {
        let mut r = Room::of(&self.active);
        for c in &self.frozen {
            let o = Room::of(&c.batch);
            r.entries += o.entries;
            r.line_bytes += o.line_bytes;
            r.metadata_ids += o.metadata_ids;
        }
        if r.entries > CHUNK_ENTRIES || r.line_bytes > CHUNK_BYTES {
            // Scale to the chunk limit that comes first.
            let share = (CHUNK_ENTRIES as f64 / r.entries as f64)
                .min(CHUNK_BYTES as f64 / r.line_bytes.max(1) as f64);
            let scale = |n: usize| (n as f64 * share).ceil() as usize;
            r = Room {
                entries: scale(r.entries),
                line_bytes: scale(r.line_bytes),
                metadata_ids: scale(r.metadata_ids),
            };
        }
        r
    }
}

/// Past this many line bytes an active chunk grows by this much at a time, not by
/// doubling: a memtable's chunks then hold at most this much unused each, where doubling
/// leaves them a quarter empty on average (a memtable's worth of memory per two).
const LINES_STEP: usize = 64 * 1024;

/// Makes room for `more` bytes in a chunk's line data.
#[inline]
fn grow_lines(data: &mut Vec<u8>, more: usize) {
    if data.capacity() - data.len() < more && data.capacity() >= LINES_STEP {
        data.reserve_exact(more.max(LINES_STEP));
    }
}

/// The room to give a stream's new active chunk: what its last chunk took, or its share of
/// the last memtable (at most a chunk). A stream usually writes at the rate it wrote, and
/// room taken at once is not copied again and again as the chunk grows.
#[derive(Debug, Clone, Copy)]
struct Room {
    entries: usize,
    line_bytes: usize,
    metadata_ids: usize,
}

impl Room {
    fn of(b: &Batch) -> Room {
        Room {
            entries: b.len(),
            line_bytes: b.line_data.len(),
            metadata_ids: b.metadata_ids.len(),
        }
    }

    /// Reserves the room in `next`, plus an eighth (the spare that [`trim`] leaves alone).
    fn reserve(self, next: &mut Batch) {
        fn room<T>(v: &mut Vec<T>, n: usize) {
            v.reserve_exact(n + n / 8);
        }
        room(&mut next.timestamps, self.entries);
        room(&mut next.line_lengths, self.entries);
        room(&mut next.line_offsets, self.entries + 1);
        room(&mut next.line_data, self.line_bytes);
        if self.metadata_ids > 0 {
            room(&mut next.metadata_offsets, self.entries + 1);
            room(&mut next.metadata_ids, self.metadata_ids);
        }
    }
}

/// Frees the spare capacity of a chunk's columns when it is more than an eighth: a frozen
/// chunk never grows, and doubling can leave it half empty (in place for the allocator).
fn trim(b: &mut Batch) {
    fn fit<T>(v: &mut Vec<T>) {
        if v.capacity() > v.len() + v.len() / 8 {
            v.shrink_to_fit();
        }
    }
    fit(&mut b.timestamps);
    fit(&mut b.line_lengths);
    fit(&mut b.line_offsets);
    fit(&mut b.line_data);
    fit(&mut b.metadata_offsets);
    fit(&mut b.metadata_ids);
    fit(&mut b.metadata_dict);
}

/// Whether entries are in timestamp order without exact duplicates.
fn is_strictly_sorted(b: &Batch) -> bool {
    let mut run = RunIndex::default();
    for i in 1..b.len() {
        let (a, c) = (b.timestamps[i - 1], b.timestamps[i]);
        if a > c || (a == c && run.contains(b, i, c, b.line(i))) {
            return false;
        }
    }
    true
}

/// A sorted, de-duplicated copy of `b` (entries in any order); equal timestamps keep
/// their order in `b`.
pub fn sorted_chunk(b: &Batch) -> HeadChunk {
    HeadChunk::new(sorted_copy(b).0)
}

/// A sorted, de-duplicated copy of `b`, and per entry of the copy, its index in `b`.
fn sorted_copy(b: &Batch) -> (Batch, Vec<u32>) {
    let n = b.len();
    let sorted = is_strictly_sorted(b);
    let mut order: Vec<u32> = (0..n as u32).collect();
    if !sorted {
        // Stable: equal timestamps stay in arrival order.
        order.sort_by_key(|&x| b.timestamps[x as usize]);
    }
    let mut out = Batch::default();
    let mut kept = Vec::with_capacity(n);
    copy_entries(
        b,
        &order,
        &mut out,
        &mut DictIndex::default(),
        Some(&mut kept),
    );
    (out, kept)
}

/// Appends the entries `order` of `src` (sorted by timestamp) to `dst`, dropping exact
/// duplicates of an entry already in `dst` with the same timestamp, and the indexes in
/// `src` of those it appended to `kept`. Metadata ids are remapped into `dst`'s
/// dictionary.
fn copy_entries(
    src: &Batch,
    order: &[u32],
    dst: &mut Batch,
    dst_dict: &mut DictIndex,
    mut kept: Option<&mut Vec<u32>>,
) {
    let has_meta = !src.metadata_offsets.is_empty();
    if dst.line_offsets.is_empty() {
        dst.line_offsets.push(0);
    }
    let mut remap: Vec<u32> = Vec::new();
    if has_meta {
        remap = vec![u32::MAX; src.metadata_dict.len()];
        if dst.metadata_offsets.is_empty() {
            dst.metadata_offsets.resize(dst.timestamps.len() + 1, 0);
        }
    }
    let dst_meta = !dst.metadata_offsets.is_empty();
    let mut run = RunIndex::default();
    for &i in order {
        let i = i as usize;
        let ts = src.timestamps[i];
        let line = src.line(i);
        if run.contains(dst, dst.len(), ts, line) {
            continue;
        }
        if let Some(k) = kept.as_mut() {
            k.push(i as u32);
        }
        dst.timestamps.push(ts);
        dst.line_lengths.push(line.len() as u32);
        dst.line_data.extend_from_slice(line);
        dst.line_offsets.push(dst.line_data.len() as u32);
        if has_meta {
            for &id in src.metadata_ids(i) {
                let r = &mut remap[id as usize];
                if *r == u32::MAX {
                    let (n, v) = &src.metadata_dict[id as usize];
                    *r = dst_dict.id(&mut dst.metadata_dict, n, v);
                }
                dst.metadata_ids.push(*r);
            }
        }
        if dst_meta {
            dst.metadata_offsets.push(dst.metadata_ids.len() as u32);
        }
    }
}

/// Appends all of `src` (sorted, de-duplicated, starting after `dst`'s last entry) to
/// `dst` in bulk; metadata ids are remapped.
fn append_all(src: &Batch, dst: &mut Batch, dst_dict: &mut DictIndex) {
    if src.metadata_offsets.is_empty() {
        dst.timestamps.extend_from_slice(&src.timestamps);
        dst.line_lengths.extend_from_slice(&src.line_lengths);
        let base = dst.line_data.len() as u32;
        dst.line_data.extend_from_slice(&src.line_data);
        dst.line_offsets
            .extend(src.line_offsets[1..].iter().map(|&o| o + base));
        if !dst.metadata_offsets.is_empty() {
            let last = dst.metadata_ids.len() as u32;
            dst.metadata_offsets
                .extend(std::iter::repeat_n(last, src.len()));
        }
    } else {
        let idx: Vec<u32> = (0..src.len() as u32).collect();
        copy_entries(src, &idx, dst, dst_dict, None);
    }
}

/// Merges sorted, de-duplicated chunks, given in arrival order, into one sorted,
/// de-duplicated batch (equal timestamps in arrival order).
pub fn merge_chunks(chunks: &[Arc<HeadChunk>]) -> Batch {
    let mut out = Batch::default();
    if chunks.iter().any(|c| !c.batch.metadata_offsets.is_empty()) {
        out.metadata_offsets.push(0);
    }
    out.line_offsets.push(0);
    let mut dict = DictIndex::default();
    // Chunks mostly follow each other in time: copy runs, merge only where they overlap.
    let mut order: Vec<&HeadChunk> = chunks.iter().map(|c| &**c).collect();
    order.sort_by_key(|c| c.min_ts);
    let disjoint = order.windows(2).all(|w| w[0].max_ts < w[1].min_ts);
    if disjoint {
        let n: usize = order.iter().map(|c| c.batch.len()).sum();
        let bytes: usize = order.iter().map(|c| c.batch.line_data.len()).sum();
        out.timestamps.reserve(n);
        out.line_lengths.reserve(n);
        out.line_offsets.reserve(n);
        out.line_data.reserve(bytes);
        for c in order {
            append_all(&c.batch, &mut out, &mut dict);
        }
        return out;
    }
    // General case: gather all in arrival order, sort stably by time, dedup (rare:
    // out-of-order streams).
    let mut all = Batch::default();
    for c in chunks {
        let idx: Vec<u32> = (0..c.batch.len() as u32).collect();
        copy_entries(&c.batch, &idx, &mut all, &mut dict, None);
    }
    let n = all.len();
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.sort_by_key(|&x| all.timestamps[x as usize]);
    let mut out2 = Batch::default();
    copy_entries(&all, &idx, &mut out2, &mut DictIndex::default(), None);
    out2
}

/// Identifies a stream across tenants inside a memtable.
pub type StreamKey = (u32, u32);

/// The heads of one generation.
#[derive(Debug)]
pub struct Memtable {
    pub generation: u64,
    pub created: Instant,
    pub streams: RwLock<HashMap<StreamKey, HeadStream>>,
    /// The room each stream took in the memtable before, reserved when it first appends.
    rooms: HashMap<StreamKey, Room>,
    /// Line bytes and entries appended, for rotation and metrics.
    pub bytes: AtomicU64,
    pub entries: AtomicU64,
}

impl Memtable {
    pub fn new(generation: u64) -> Memtable {
        Memtable {
            generation,
            created: Instant::now(),
            streams: RwLock::new(HashMap::new()),
            rooms: HashMap::new(),
            bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
        }
    }

    /// The memtable after `prev`, its streams' chunks sized by what they took in `prev`.
    pub fn after(prev: &Memtable) -> Memtable {
        let rooms = prev
            .streams
            .read()
            .iter()
            .map(|(&k, h)| (k, h.room()))
            .collect();
        Memtable {
            rooms,
            ..Memtable::new(prev.generation + 1)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.load(Ordering::Relaxed) == 0
    }

    /// The head of stream `key` in `map` (this memtable's streams, locked), created when new.
    pub fn stream_mut<'a>(
        &self,
        map: &'a mut HashMap<StreamKey, HeadStream>,
        key: StreamKey,
    ) -> &'a mut HeadStream {
        map.entry(key).or_insert_with(|| {
            let mut h = HeadStream::default();
            if let Some(r) = self.rooms.get(&key) {
                r.reserve(&mut h.active);
            }
            h
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_gets_the_room_it_took_before_at_once() {
        let line = [b'x'; 150];
        let meta = [(&b"detected_level"[..], &b"info"[..])];
        let m1 = Memtable::new(1);
        {
            let mut streams = m1.streams.write();
            let h = m1.stream_mut(&mut streams, (0, 1));
            for ts in 0..1000 {
                h.push(ts, &line, meta.iter().copied()).unwrap();
            }
        }
        let m2 = Memtable::after(&m1);
        assert_eq!(m2.generation, 2);
        let mut streams = m2.streams.write();
        let busy = &m2.stream_mut(&mut streams, (0, 1)).active;
        assert!(busy.line_data.capacity() >= 150_000);
        assert!(busy.timestamps.capacity() >= 1000);
        assert!(busy.metadata_ids.capacity() >= 1000);
        let new = &m2.stream_mut(&mut streams, (0, 2)).active;
        assert_eq!(new.line_data.capacity(), 0);

        // A stream past a chunk gets a chunk's room, and so does each chunk after a freeze.
        let mut h = HeadStream::default();
        for ts in 0..3000 {
            h.push(ts, &line, std::iter::empty()).unwrap();
        }
        let r = h.room();
        assert_eq!(r.entries, CHUNK_BYTES.div_ceil(150));
        assert!((CHUNK_BYTES..CHUNK_BYTES + 2).contains(&r.line_bytes));
        assert!(h.active.line_data.capacity() >= CHUNK_BYTES);
    }

    #[test]
    fn a_large_chunk_grows_in_steps_not_by_doubling() {
        let mut h = HeadStream::default();
        let line = [b'x'; 150];
        // 150 KB: doubling would have reached 256 KiB of capacity.
        for ts in 0..1000 {
            h.push(ts, &line, std::iter::empty()).unwrap();
        }
        let data = &h.active.line_data;
        assert_eq!(data.len(), 150_000);
        assert!(
            data.capacity() - data.len() < LINES_STEP,
            "{}",
            data.capacity()
        );
    }

    #[test]
    fn out_of_order_and_duplicates_come_out_sorted_once_equal_times_in_arrival_order() {
        let mut h = HeadStream::default();
        for (ts, line) in [(5, "b"), (1, "a"), (5, "a"), (5, "b"), (3, "c")] {
            h.push(ts, line.as_bytes(), std::iter::empty()).unwrap();
        }
        h.freeze();
        h.push(2, b"x", [(&b"k"[..], &b"v"[..])].into_iter())
            .unwrap();
        h.push(5, b"b", std::iter::empty()).unwrap();
        let m = h.merged();
        let got: Vec<(i64, &[u8])> = (0..m.len()).map(|i| (m.timestamps[i], m.line(i))).collect();
        assert_eq!(
            got,
            vec![(1, &b"a"[..]), (2, b"x"), (3, b"c"), (5, b"b"), (5, b"a")]
        );
        assert_eq!(m.metadata(1).collect::<Vec<_>>(), vec![("k", "v")]);
        assert_eq!(m.metadata(0).count(), 0);
        let mut snap = Vec::new();
        h.snapshot(2, 3, &mut snap);
        assert_eq!(snap.len(), 2);
        snap.clear();
        h.snapshot(6, 9, &mut snap);
        assert!(snap.is_empty());
    }

    /// Sorted, first arrival of each (time, line) kept: what every path must produce.
    fn expected(entries: &[(i64, Vec<u8>)]) -> Vec<(i64, Vec<u8>)> {
        let mut seen = std::collections::HashSet::new();
        let mut want: Vec<(i64, Vec<u8>)> = entries
            .iter()
            .filter(|e| seen.insert((*e).clone()))
            .cloned()
            .collect();
        want.sort_by_key(|e| e.0);
        want
    }

    fn entries_of(b: &Batch) -> Vec<(i64, Vec<u8>)> {
        (0..b.len())
            .map(|i| (b.timestamps[i], b.line(i).to_vec()))
            .collect()
    }

    proptest::proptest! {
        /// Long runs of one timestamp (past the scan limit) with duplicates near and far,
        /// in and out of order, across chunks: deduplicated like a set, in arrival order.
        #[test]
        fn long_runs_of_equal_times_deduplicate_exactly(
            raw in proptest::collection::vec((0i64..3, 0u8..60, 0usize..3), 0..700),
        ) {
            let entries: Vec<(i64, Vec<u8>)> = raw
                .iter()
                .map(|&(t, l, pad)| (t, format!("l{l}{}", "x".repeat(pad)).into_bytes()))
                .collect();
            let mut h = HeadStream::default();
            for (k, (ts, line)) in entries.iter().enumerate() {
                h.push(*ts, line, std::iter::empty()).unwrap();
                if k % 97 == 96 {
                    h.freeze();
                }
            }
            proptest::prop_assert_eq!(entries_of(&h.merged()), expected(&entries));
        }
    }

    #[test]
    fn metadata_that_is_not_utf8_appends_nothing() {
        let mut h = HeadStream::default();
        h.push(1, b"a", std::iter::empty()).unwrap();
        let bad = [(&b"k"[..], &b"v"[..]), (&b"k2"[..], &b"\xff"[..])];
        assert_eq!(h.push(2, b"b", bad.into_iter()), Err(Corrupt));
        h.push(3, b"c", [(&b"k"[..], &b"v"[..])].into_iter())
            .unwrap();
        let m = h.merged();
        assert_eq!(entries_of(&m), vec![(1, b"a".to_vec()), (3, b"c".to_vec())]);
        assert!(m.metadata(0).next().is_none());
        assert_eq!(m.metadata(1).collect::<Vec<_>>(), vec![("k", "v")]);
    }

    #[test]
    fn reads_of_a_chunk_see_the_levels_blocks_will_hold() {
        let mut h = HeadStream::default();
        h.push(1, b"ERROR 7 down", std::iter::empty()).unwrap();
        h.push(2, b"info ok", [(&b"k"[..], &b"v"[..])].into_iter())
            .unwrap();
        let own = [(&b"detected_level"[..], &b"custom"[..])];
        h.push(3, b"ERROR 8 down", own.into_iter()).unwrap();
        h.push(4, b"ERROR 9 down", std::iter::empty()).unwrap();
        let mut chunks = Vec::new();
        h.snapshot(0, 10, &mut chunks);
        let m = chunks[0].metadata();
        let meta = |i: usize| m.metadata(i).collect::<Vec<_>>();
        assert_eq!(meta(0), vec![("detected_level", "error")]);
        assert_eq!(meta(1), vec![("k", "v"), ("detected_level", "info")]);
        assert_eq!(meta(2), vec![("detected_level", "custom")]);
        assert_eq!(meta(3), vec![("detected_level", "error")]);
        // One pair per level in the dictionary.
        assert_eq!(m.metadata_dict.len(), 4);
        // The chunk itself is as pushed.
        assert!(chunks[0].batch.metadata(0).next().is_none());
    }

    /// Levels found by reads of the active chunk follow its entries through sorting,
    /// duplicates and freezing.
    #[test]
    fn levels_found_by_reads_follow_entries_into_frozen_chunks() {
        let lines = ["ERROR a", "info b", "warn c", "debug d", "nothing"];
        let line = |k: usize| format!("{} {k}", lines[k % lines.len()]);
        for shuffled in [false, true] {
            let mut h = HeadStream::default();
            let mut want: Vec<(i64, String)> = Vec::new();
            for k in 0..CHUNK_ENTRIES + 300 {
                let ts = if shuffled {
                    ((k * 7919) % 5000) as i64
                } else {
                    k as i64
                };
                h.push(ts, line(k).as_bytes(), std::iter::empty()).unwrap();
                want.push((ts, line(k)));
                if shuffled && k % 3 == 0 {
                    // An exact duplicate, dropped by the copy.
                    h.push(ts, line(k).as_bytes(), std::iter::empty()).unwrap();
                }
                if k % 700 == 0 {
                    // A read between pushes: the active chunk's levels so far are kept.
                    h.snapshot(i64::MIN, i64::MAX, &mut Vec::new());
                }
            }
            let mut chunks = Vec::new();
            h.snapshot(i64::MIN, i64::MAX, &mut chunks);
            assert_eq!(chunks.len(), 2, "one frozen chunk and the active one");
            let mut got = 0;
            for c in &chunks {
                let m = c.metadata();
                for j in 0..c.batch.len() {
                    let l = std::str::from_utf8(c.batch.line(j)).unwrap();
                    let level = logql::detect::line_level(l.as_bytes());
                    assert_eq!(
                        m.metadata(j).collect::<Vec<_>>(),
                        vec![("detected_level", level)],
                        "{l} (shuffled: {shuffled})"
                    );
                    got += 1;
                }
            }
            assert_eq!(got, want.len());
        }
    }

    #[test]
    fn one_chunk_in_order_is_lent_not_copied() {
        let mut h = HeadStream::default();
        h.push(1, b"a", [(&b"k"[..], &b"v"[..])].into_iter())
            .unwrap();
        h.push(2, b"b", std::iter::empty()).unwrap();
        h.push(2, b"c", [(&b"k"[..], &b"w"[..])].into_iter())
            .unwrap();
        let m = h.merged();
        assert!(matches!(m, Cow::Borrowed(_)));
        assert_eq!(
            entries_of(&m),
            vec![(1, b"a".to_vec()), (2, b"b".to_vec()), (2, b"c".to_vec())]
        );
        let meta = |i: usize| m.metadata(i).collect::<Vec<_>>();
        assert_eq!(meta(0), vec![("k", "v")]);
        assert!(meta(1).is_empty());
        assert_eq!(meta(2), vec![("k", "w")]);
        // A duplicate makes it a copy, with the duplicate gone.
        h.push(2, b"b", std::iter::empty()).unwrap();
        let m = h.merged();
        assert!(matches!(m, Cow::Owned(_)));
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn a_burst_at_one_time_and_its_retry_are_stored_once() {
        let burst: Vec<(i64, Vec<u8>)> = (0..100_000)
            .map(|i| (7, format!("line {i}").into_bytes()))
            .collect();
        let mut h = HeadStream::default();
        for (ts, line) in burst.iter().chain(&burst) {
            h.push(*ts, line, std::iter::empty()).unwrap();
        }
        assert_eq!(entries_of(&h.merged()), burst);
    }
}
