//! A hash index over a batch's structured-metadata dictionary, so that finding the id of a
//! (name, value) pair costs one hash and one comparison however large the dictionary
//! grows (a `trace_id` per line makes it as large as the batch).

use logql::prehashed::PrehashedMap;

use crate::codec::Corrupt;

/// (name, value) → id in a `Vec<(String, String)>` dictionary kept beside it.
#[derive(Debug, Default)]
pub(crate) struct DictIndex {
    by_hash: PrehashedMap<u32>,
}

impl DictIndex {
    /// The id of `(name, value)` in `dict`, appended when new.
    pub fn id(&mut self, dict: &mut Vec<(String, String)>, name: &str, value: &str) -> u32 {
        match self.find(dict, name.as_bytes(), value.as_bytes()) {
            Found::Id(id) => id,
            Found::New(hash) => self.insert(dict, hash, name.to_string(), value.to_string()),
        }
    }

    /// [`DictIndex::id`] of a pair read from the WAL as bytes: only a pair new to the
    /// dictionary is checked to be UTF-8 (a batch repeats few pairs many times).
    pub fn id_of_bytes(
        &mut self,
        dict: &mut Vec<(String, String)>,
        name: &[u8],
        value: &[u8],
    ) -> Result<u32, Corrupt> {
        Ok(match self.find(dict, name, value) {
            Found::Id(id) => id,
            Found::New(hash) => {
                let text = |b| {
                    std::str::from_utf8(b)
                        .map(str::to_string)
                        .map_err(|_| Corrupt)
                };
                let (name, value) = (text(name)?, text(value)?);
                self.insert(dict, hash, name, value)
            }
        })
    }

    fn find(&self, dict: &[(String, String)], name: &[u8], value: &[u8]) -> Found {
        let h = pair_hash(name, value);
        let is = |(n, v): &(String, String)| n.as_bytes() == name && v.as_bytes() == value;
        match self.by_hash.get(&h) {
            Some(&id) if is(&dict[id as usize]) => Found::Id(id),
            // Two pairs with one 64-bit hash: the second is found by a scan (and is not
            // indexed), which is correct and never happens in practice.
            Some(_) => match dict.iter().position(is) {
                Some(i) => Found::Id(i as u32),
                None => Found::New(None),
            },
            None => Found::New(Some(h)),
        }
    }

    /// Appends a pair [`DictIndex::find`] did not find, indexed under `hash` when given.
    fn insert(
        &mut self,
        dict: &mut Vec<(String, String)>,
        hash: Option<u64>,
        name: String,
        value: String,
    ) -> u32 {
        dict.push((name, value));
        let id = (dict.len() - 1) as u32;
        if let Some(h) = hash {
            self.by_hash.insert(h, id);
        }
        id
    }

    pub fn clear(&mut self) {
        self.by_hash.clear();
    }
}

/// What [`DictIndex::find`] found: the pair's id, or that it is new (with the hash to
/// index it under, unless that hash belongs to another pair).
enum Found {
    Id(u32),
    New(Option<u64>),
}

/// The value hashed with the name's hash as seed: two one-shot hashes of short strings
/// cost less than setting up a streaming hasher, and (`ab`, `c`) differs from (`a`, `bc`).
fn pair_hash(name: &[u8], value: &[u8]) -> u64 {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
    xxh3_64_with_seed(value, xxh3_64(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_pairs_share_an_id_and_distinct_pairs_do_not() {
        let mut dict = Vec::new();
        let mut ix = DictIndex::default();
        let a = ix.id(&mut dict, "trace_id", "1");
        let b = ix.id(&mut dict, "trace_id", "2");
        let c = ix.id(&mut dict, "trace_id", "1");
        // Name and value are kept apart: ("ab", "c") is not ("a", "bc").
        let d = ix.id(&mut dict, "ab", "c");
        let e = ix.id(&mut dict, "a", "bc");
        assert_eq!(a, c);
        assert_ne!(a, b);
        assert_ne!(d, e);
        assert_eq!(dict.len(), 4);
        assert_eq!(dict[e as usize], ("a".to_string(), "bc".to_string()));
        // Pairs read as bytes find the same ids; a new one must be UTF-8.
        assert_eq!(ix.id_of_bytes(&mut dict, b"trace_id", b"2"), Ok(b));
        assert_eq!(ix.id_of_bytes(&mut dict, b"k", b"\xff"), Err(Corrupt));
        assert_eq!(ix.id_of_bytes(&mut dict, b"k", b"v"), Ok(4));
        assert_eq!(dict.len(), 5);
    }
}
