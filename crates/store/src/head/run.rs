//! Exact duplicates among the entries of one timestamp.
//!
//! Runs of equal timestamps are short in practice and are scanned. A long one (an agent
//! that stamps a burst of lines with one time, or a retry of such a push) switches to an
//! index of line hashes, so that neither a push, a flush nor a read over overlapping
//! sources turns quadratic in the run.

use logql::Batch;
use logql::prehashed::PrehashedMap;
use xxhash_rust::xxh3::xxh3_64;

/// Lines up to this many are scanned.
const SCAN: usize = 32;

/// A growing list of lines (entries `0..n`, each maybe without its line) in which a new
/// line is looked up: scanned while short, then through an index of line hashes.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    /// Entries `0..indexed` are in `by_hash`.
    indexed: usize,
    /// Line hash to an entry with that line.
    by_hash: PrehashedMap<u32>,
}

impl LineIndex {
    /// Whether one of entries `0..n` holds `line`; `line_at(k)` is entry `k`'s line, `None`
    /// when it has none. The list only grows between calls, until [`LineIndex::clear`].
    pub fn contains<'a>(
        &mut self,
        n: usize,
        line_at: impl Fn(usize) -> Option<&'a [u8]>,
        line: &[u8],
    ) -> bool {
        let same = |k: usize| line_at(k) == Some(line);
        if n <= SCAN {
            return (0..n).any(same);
        }
        for k in self.indexed..n {
            if let Some(l) = line_at(k) {
                self.by_hash.entry(xxh3_64(l)).or_insert(k as u32);
            }
        }
        self.indexed = n;
        match self.by_hash.get(&xxh3_64(line)) {
            None => false,
            Some(&k) if same(k as usize) => true,
            // Two lines with one hash: look at them all.
            Some(_) => (0..n).any(same),
        }
    }

    pub fn clear(&mut self) {
        self.indexed = 0;
        self.by_hash.clear();
    }
}

/// The run of entries at one timestamp at the end of a growing batch. Every entry added to
/// the batch must first be checked with [`RunIndex::contains`].
#[derive(Debug, Default)]
pub(crate) struct RunIndex {
    primed: bool,
    ts: i64,
    /// Where the run starts in the batch.
    start: usize,
    lines: LineIndex,
}

impl RunIndex {
    /// Whether the entries of `b[..end]` at its end with time `ts` include `line`.
    pub fn contains(&mut self, b: &Batch, end: usize, ts: i64, line: &[u8]) -> bool {
        if end == 0 || b.timestamps[end - 1] != ts {
            self.restart(ts, end);
            return false;
        }
        if !self.primed || self.ts != ts || self.start > end {
            let k = b.timestamps[..end]
                .iter()
                .rev()
                .take_while(|&&t| t == ts)
                .count();
            self.restart(ts, end - k);
        }
        let start = self.start;
        self.lines
            .contains(end - start, |k| Some(b.line(start + k)), line)
    }

    fn restart(&mut self, ts: i64, start: usize) {
        self.primed = true;
        self.ts = ts;
        self.start = start;
        self.lines.clear();
    }
}
