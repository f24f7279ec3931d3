//! Running a pipeline once per distinct combination of field-column codes and metadata in
//! a batch, on a line of just those members ([`crate::fields::synthetic_line`]), instead
//! of once per line. Used by metric queries (the sample each combination gives) and log
//! queries (whether the filters drop it).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::fields::{Fields, synthetic_line};
use crate::source::Batch;

/// What a combination gave, per batch (codes are per block, metadata ids per batch).
pub(crate) struct FieldMemo<T> {
    seen: HashMap<Vec<u32>, T, BuildHasherDefault<IntHasher>>,
    key: Vec<u32>,
    line: Vec<u8>,
}

impl<T: Copy> FieldMemo<T> {
    pub(crate) fn new() -> FieldMemo<T> {
        FieldMemo {
            seen: HashMap::default(),
            key: Vec::new(),
            line: Vec::new(),
        }
    }

    /// Forgets the previous batch.
    pub(crate) fn clear(&mut self) {
        self.seen.clear();
    }

    /// What entry `i` of `batch` gives: `run` on the line of its members in columns
    /// `cols` of `fields`, the first time its combination (with its metadata) is seen.
    pub(crate) fn get<E>(
        &mut self,
        fields: &Fields,
        cols: &[usize],
        batch: &Batch,
        i: usize,
        run: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, E> {
        self.key.clear();
        self.key
            .extend(cols.iter().map(|&c| u32::from(fields.columns[c].codes[i])));
        self.key.extend_from_slice(batch.metadata_ids(i));
        if let Some(&t) = self.seen.get(self.key.as_slice()) {
            return Ok(t);
        }
        synthetic_line(&mut self.line, fields, cols, i);
        let t = run(&self.line)?;
        self.seen.insert(self.key.clone(), t);
        Ok(t)
    }
}

/// Hashes the small integer keys of combinations (Fx-style: SipHash was an eighth of
/// such a query's time). The keys are codes storage wrote, not request input.
#[derive(Default, Clone, Copy)]
pub(crate) struct IntHasher(u64);

impl IntHasher {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for c in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}
