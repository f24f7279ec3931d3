//! Block filters kept in memory once read, within [`FILTER_CACHE_BYTES`].
//!
//! A query with a line filter tests the filter of every block its streams have in its
//! range before reading the block: on the bench's two million lines, about 1,900 filters
//! of some 700 bytes for a needle search over every stream. Read from the part each time,
//! that is 1,900 system calls, each copying from a page that is likely cold; together
//! they were a third of the search's time. Kept here, a filter costs a lookup, and the
//! test reads only the few words it needs.
//!
//! Filters are about a byte per stored line, so they cannot all be kept as the data
//! grows. Past the budget, filters picked at random make room (as with the template
//! tables: a scan that goes round more filters than fit still finds most of them kept).
//! A part's filters go when the part does.

use std::sync::atomic::{AtomicU64, Ordering};

use logql::prehashed::PrehashedMap;
use parking_lot::Mutex;

/// Bytes of filters kept at most: those of some 40 million lines.
pub const FILTER_CACHE_BYTES: usize = 32 << 20;
/// What keeping one filter costs besides its bytes: its allocation, list entry and index.
const ENTRY_OVERHEAD: usize = 64;

/// Numbers the loaded parts, for the cache's keys.
static NEXT_PART: AtomicU64 = AtomicU64::new(0);

/// A number no other loaded part has.
pub(crate) fn part_number() -> u64 {
    NEXT_PART.fetch_add(1, Ordering::Relaxed)
}

/// The key of block `block` of part `part`: the two numbers side by side, mixed by an odd
/// multiplier (a bijection, so no two blocks share a key) so that every bit of the key
/// depends on both, as the map's buckets need.
fn key(part: u64, block: u32) -> u64 {
    ((part << 32) | u64::from(block)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Debug, Default)]
pub(crate) struct FilterCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Key → position in `entries`.
    index: PrehashedMap<usize>,
    /// Key, part number, filter.
    entries: Vec<(u64, u64, Box<[u8]>)>,
    bytes: usize,
    /// State of the generator that picks which filter to drop.
    seed: u64,
}

impl FilterCache {
    /// `test` applied to the filter of block `block` of part `part`, when it is kept. The
    /// test runs in place, under the cache's lock: it reads a few words.
    pub fn test<R>(&self, part: u64, block: u32, test: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let c = self.inner.lock();
        let &i = c.index.get(&key(part, block))?;
        Some(test(&c.entries[i].2))
    }

    /// Keeps a copy of `filter`, dropping others picked at random past the budget.
    pub fn put(&self, part: u64, block: u32, filter: &[u8]) {
        self.put_within(part, block, filter, FILTER_CACHE_BYTES)
    }

    fn put_within(&self, part: u64, block: u32, filter: &[u8], budget: usize) {
        let k = key(part, block);
        let mut c = self.inner.lock();
        if c.index.contains_key(&k) {
            // Another query read it meanwhile.
            return;
        }
        let size = filter.len() + ENTRY_OVERHEAD;
        while c.bytes + size > budget && !c.entries.is_empty() {
            let n = c.entries.len();
            let pick = super::random_below(&mut c.seed, n);
            c.remove_at(pick);
        }
        c.bytes += size;
        let i = c.entries.len();
        c.entries.push((k, part, filter.into()));
        c.index.insert(k, i);
    }

    /// Drops the filters of a part that is gone.
    pub fn forget(&self, part: u64) {
        let mut c = self.inner.lock();
        let mut i = 0;
        while i < c.entries.len() {
            if c.entries[i].1 == part {
                c.remove_at(i);
            } else {
                i += 1;
            }
        }
    }

    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

impl Inner {
    /// Removes entry `i`; the last entry takes its place.
    fn remove_at(&mut self, i: usize) {
        let (k, _, f) = self.entries.swap_remove(i);
        self.index.remove(&k);
        self.bytes -= f.len() + ENTRY_OVERHEAD;
        if let Some(&(moved, _, _)) = self.entries.get(i) {
            self.index.insert(moved, i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_kept_within_the_budget_and_forgotten_with_their_part() {
        let c = FilterCache::default();
        let entry = 100 + ENTRY_OVERHEAD;
        let budget = 10 * entry;
        c.put_within(1, 7, &[7; 100], budget);
        c.put_within(1, 7, &[7; 100], budget);
        assert_eq!(c.bytes(), entry, "a second copy is not added");
        assert_eq!(c.test(1, 7, |f| f[0]), Some(7));
        for block in 0..200 {
            c.put_within(2, block, &[block as u8; 100], budget);
            assert!(c.test(2, block, |_| ()).is_some(), "the newest is kept");
        }
        assert_eq!(c.bytes(), budget);
        // Filters that made room are gone, and each kept one is found as it was.
        let kept: Vec<u32> = (0..200)
            .filter(|&b| c.test(2, b, |_| ()).is_some())
            .collect();
        assert_eq!(kept.len() + usize::from(c.test(1, 7, |_| ()).is_some()), 10);
        for &b in &kept {
            assert_eq!(c.test(2, b, |f| f[0]), Some(b as u8));
        }
        let before = c.bytes();
        c.forget(2);
        assert!((0..200).all(|b| c.test(2, b, |_| ()).is_none()));
        assert_eq!(c.bytes(), before - kept.len() * entry);
    }
}
