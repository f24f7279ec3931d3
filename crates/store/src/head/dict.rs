//! A hash index over a batch's structured-metadata dictionary, so that finding the id of a
//! (name, value) pair costs one hash and one comparison however large the dictionary
//! grows (a `trace_id` per line makes it as large as the batch).

use logql::prehashed::PrehashedMap;

/// (name, value) → id in a `Vec<(String, String)>` dictionary kept beside it.
#[derive(Debug, Default)]
pub(crate) struct DictIndex {
    by_hash: PrehashedMap<u32>,
}

impl DictIndex {
    /// The id of `(name, value)` in `dict`, appended when new.
    pub fn id(&mut self, dict: &mut Vec<(String, String)>, name: &str, value: &str) -> u32 {
        let h = pair_hash(name, value);
        match self.by_hash.get(&h) {
            Some(&id) => {
                let (n, v) = &dict[id as usize];
                if n == name && v == value {
                    return id;
                }
                // Two pairs with one 64-bit hash: the second is found by a scan (and is
                // not indexed), which is correct and never happens in practice.
                if let Some(i) = dict.iter().position(|(n, v)| n == name && v == value) {
                    return i as u32;
                }
                dict.push((name.to_string(), value.to_string()));
                (dict.len() - 1) as u32
            }
            None => {
                dict.push((name.to_string(), value.to_string()));
                let id = (dict.len() - 1) as u32;
                self.by_hash.insert(h, id);
                id
            }
        }
    }

    pub fn clear(&mut self) {
        self.by_hash.clear();
    }
}

/// The value hashed with the name's hash as seed: two one-shot hashes of short strings
/// cost less than setting up a streaming hasher, and (`ab`, `c`) differs from (`a`, `bc`).
fn pair_hash(name: &str, value: &str) -> u64 {
    use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};
    xxh3_64_with_seed(value.as_bytes(), xxh3_64(name.as_bytes()))
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
    }
}
