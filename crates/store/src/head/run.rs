//! Exact duplicates among the entries of one timestamp.
//!
//! Runs of equal timestamps are short in practice and are scanned. A long one (an agent
//! that stamps a burst of lines with one time, or a retry of such a push) switches to an
//! index of line hashes, so that neither a push nor a flush turns quadratic in the run.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use logql::Batch;
use xxhash_rust::xxh3::xxh3_64;

use super::dict::Prehashed;

/// Runs up to this long are scanned.
const SCAN: usize = 32;

/// The run of entries at one timestamp at the end of a growing batch. Every entry added to
/// the batch must first be checked with [`RunIndex::contains`].
#[derive(Debug, Default)]
pub(crate) struct RunIndex {
    primed: bool,
    ts: i64,
    /// Where the run starts in the batch.
    start: usize,
    /// Entries `start..indexed` are in `by_hash`.
    indexed: usize,
    /// Line hash to an entry with that line.
    by_hash: HashMap<u64, u32, BuildHasherDefault<Prehashed>>,
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
        let same = |j: usize| b.line_lengths[j] as usize == line.len() && b.line(j) == line;
        if end - self.start <= SCAN {
            return (self.start..end).any(same);
        }
        for j in self.indexed..end {
            self.by_hash.entry(xxh3_64(b.line(j))).or_insert(j as u32);
        }
        self.indexed = end;
        match self.by_hash.get(&xxh3_64(line)) {
            None => false,
            Some(&j) if same(j as usize) => true,
            // Two lines with one hash: look at them all.
            Some(_) => (self.start..end).any(same),
        }
    }

    fn restart(&mut self, ts: i64, start: usize) {
        self.primed = true;
        self.ts = ts;
        self.start = start;
        self.indexed = start;
        self.by_hash.clear();
    }
}
