//! Running a pipeline once per distinct combination of field-column codes and metadata in
//! a batch, on a line of just those members ([`crate::fields::synthetic_line`]), instead
//! of once per line. Used by metric queries (the sample each combination gives) and log
//! queries (whether the filters drop it).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use crate::fields::{Fields, synthetic_line};
use crate::source::Batch;

/// Combinations kept in a list before a map.
const FEW: usize = 16;

/// What a combination gave, per batch (codes are per block, metadata ids per batch).
pub(crate) struct FieldMemo<T> {
    /// Combinations of up to three numbers, packed with their count: the first [`FEW`]
    /// in a list (most batches have only a handful), the rest in a map.
    few: Vec<(u128, T)>,
    small: HashMap<u128, T, BuildHasherDefault<IntHasher>>,
    seen: HashMap<Vec<u32>, T, BuildHasherDefault<IntHasher>>,
    key: Vec<u32>,
    line: Vec<u8>,
}

impl<T: Copy> FieldMemo<T> {
    pub(crate) fn new() -> FieldMemo<T> {
        FieldMemo {
            few: Vec::new(),
            small: HashMap::default(),
            seen: HashMap::default(),
            key: Vec::new(),
            line: Vec::new(),
        }
    }

    /// Forgets the previous batch.
    pub(crate) fn clear(&mut self) {
        self.few.clear();
        self.small.clear();
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
        self.get_keyed(fields, cols, cols, batch, i, run)
    }

    /// Like [`get`](Self::get), with combinations told apart by the codes of `key_cols`
    /// only, while `run` gets the line of `line_cols`: for outcomes that the other
    /// columns do not change.
    pub(crate) fn get_keyed<E>(
        &mut self,
        fields: &Fields,
        key_cols: &[usize],
        line_cols: &[usize],
        batch: &Batch,
        i: usize,
        run: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Result<T, E> {
        let ids = batch.metadata_ids(i);
        let codes = || {
            key_cols
                .iter()
                .map(|&c| u32::from(fields.columns[c].codes[i]))
        };
        let len = key_cols.len() + ids.len();
        if len <= 3 {
            let packed = codes()
                .chain(ids.iter().copied())
                .enumerate()
                .fold(len as u128, |p, (j, x)| p | u128::from(x) << (32 * (j + 1)));
            if let Some(&(_, t)) = self.few.iter().find(|(k, _)| *k == packed) {
                return Ok(t);
            }
            if self.few.len() == FEW
                && let Some(&t) = self.small.get(&packed)
            {
                return Ok(t);
            }
            synthetic_line(&mut self.line, fields, line_cols, i);
            let t = run(&self.line)?;
            if self.few.len() < FEW {
                self.few.push((packed, t));
            } else {
                self.small.insert(packed, t);
            }
            return Ok(t);
        }
        self.key.clear();
        self.key.extend(codes());
        self.key.extend_from_slice(ids);
        if let Some(&t) = self.seen.get(self.key.as_slice()) {
            return Ok(t);
        }
        synthetic_line(&mut self.line, fields, line_cols, i);
        let t = run(&self.line)?;
        self.seen.insert(self.key.clone(), t);
        Ok(t)
    }
}

/// The plain value of a field token, when a parser sets its label to exactly that: the
/// token without its quotes, if it has them, free of blanks, control bytes, quotes and
/// backslashes (so no escape), and valid UTF-8 without U+FFFD (nothing to mend).
pub(crate) fn plain_value(token: &[u8]) -> Option<&str> {
    let t = match token {
        [b'"', inner @ .., b'"'] => inner,
        t => t,
    };
    if t.is_empty() || t.iter().any(|&b| b <= b' ' || b == b'"' || b == b'\\') {
        return None;
    }
    std::str::from_utf8(t)
        .ok()
        .filter(|s| !s.contains('\u{FFFD}'))
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
    fn write_u128(&mut self, v: u128) {
        self.add(v as u64);
        self.add((v >> 64) as u64);
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{FieldColumn, Tokens};
    use std::sync::Arc;

    /// Past the list's [`FEW`] combinations the map takes over: each combination still
    /// runs once and always gives its own outcome, with keys of one to four numbers.
    #[test]
    fn each_combination_runs_once_whatever_the_count() {
        let n = 200;
        let mut tokens = Tokens::default();
        for k in 0..50 {
            tokens.push(format!("{k}").as_bytes());
        }
        let column = |step: usize| FieldColumn {
            name: format!("c{step}"),
            tokens: Arc::new(tokens.clone()),
            codes: (0..n).map(|i| ((i * step) % 51) as u16).collect(),
        };
        let fields = Fields {
            columns: vec![column(1), column(7), column(3), column(11)],
            ..Fields::default()
        };
        let batch = Batch::default();
        for cols in [&[0][..], &[0, 1], &[0, 1, 2], &[0, 1, 2, 3]] {
            let mut memo: FieldMemo<u64> = FieldMemo::new();
            let mut runs = std::collections::HashSet::new();
            for _ in 0..2 {
                for i in 0..n {
                    let got = memo
                        .get(&fields, cols, &batch, i, |line| {
                            assert!(runs.insert(line.to_vec()), "ran twice: {line:?}");
                            Ok::<_, ()>(xxhash_rust::xxh3::xxh3_64(line))
                        })
                        .unwrap();
                    let mut line = Vec::new();
                    synthetic_line(&mut line, &fields, cols, i);
                    assert_eq!(got, xxhash_rust::xxh3::xxh3_64(&line));
                }
            }
            assert!(runs.len() > FEW, "{cols:?}: {}", runs.len());
        }
    }
}
