//! A tenant's catalog of streams and its label index (label name → value → streams).
//!
//! Stream ids are small integers, dense per tenant, assigned as streams are first seen
//! (in the WAL or in a part's index at open). Selectors are answered from the index:
//! matchers that cannot match an absent label pick streams from their posting lists
//! (regexes are run over the distinct values of one label, not over streams), the others
//! then filter those candidates by their labels.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use logql::ast::Matcher;
use protocol::Labels;

pub type StreamId = u32;

#[derive(Debug, Default)]
pub struct Catalog {
    streams: Vec<Arc<Labels>>,
    by_fingerprint: HashMap<u64, Vec<StreamId>>,
    /// name → value → stream ids, ascending.
    postings: BTreeMap<String, BTreeMap<String, Vec<StreamId>>>,
}

impl Catalog {
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    pub fn labels(&self, id: StreamId) -> &Arc<Labels> {
        &self.streams[id as usize]
    }

    /// The id of the stream with these labels, given as sorted pairs, if known.
    pub fn find<'a>(
        &self,
        fingerprint: u64,
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<StreamId> {
        let ids = self.by_fingerprint.get(&fingerprint)?;
        ids.iter().copied().find(|&id| {
            let l = &self.streams[id as usize];
            l.len() == pairs.clone().count()
                && l.iter()
                    .zip(pairs.clone())
                    .all(|(a, (n, v))| a.name == n && a.value == v)
        })
    }

    /// The id of `labels`, adding the stream when new.
    pub fn intern(&mut self, labels: &Labels) -> StreamId {
        let fp = labels.fingerprint();
        let pairs = labels
            .as_slice()
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()));
        if let Some(id) = self.find(fp, pairs) {
            return id;
        }
        let id = self.streams.len() as StreamId;
        self.streams.push(Arc::new(labels.clone()));
        self.by_fingerprint.entry(fp).or_default().push(id);
        for l in labels {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(id);
        }
        id
    }

    /// The streams matching every matcher, ascending. With no matcher that excludes the
    /// empty value every stream is a candidate.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<StreamId> {
        let mut candidates: Option<Vec<StreamId>> = None;
        for m in matchers.iter().filter(|m| !m.matches_empty()) {
            let mut ids: Vec<StreamId> = Vec::new();
            if let Some(values) = self.postings.get(&m.name) {
                match m.op {
                    logql::ast::MatchOp::Eq => {
                        if let Some(p) = values.get(&m.value) {
                            ids.extend_from_slice(p);
                        }
                    }
                    _ => {
                        for (v, p) in values {
                            if m.matches(v) {
                                ids.extend_from_slice(p);
                            }
                        }
                        ids.sort_unstable();
                        ids.dedup();
                    }
                }
            }
            candidates = Some(match candidates {
                None => ids,
                Some(c) => intersect(&c, &ids),
            });
            if candidates.as_ref().is_some_and(|c| c.is_empty()) {
                return Vec::new();
            }
        }
        let candidates =
            candidates.unwrap_or_else(|| (0..self.streams.len() as StreamId).collect());
        candidates
            .into_iter()
            .filter(|&id| {
                let l = &self.streams[id as usize];
                matchers
                    .iter()
                    .filter(|m| m.matches_empty())
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
            .collect()
    }
}

fn intersect(a: &[StreamId], b: &[StreamId]) -> Vec<StreamId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use logql::ast::MatchOp;

    #[test]
    fn selects_with_every_kind_of_matcher() {
        let mut c = Catalog::default();
        let a = c.intern(&Labels::from_pairs([("app", "api"), ("env", "prod")]));
        let b = c.intern(&Labels::from_pairs([("app", "db"), ("env", "dev")]));
        let d = c.intern(&Labels::from_pairs([("app", "web")]));
        assert_eq!(
            c.intern(&Labels::from_pairs([("env", "prod"), ("app", "api")])),
            a
        );
        let m = |n: &str, op, v: &str| Matcher::new(n, op, v).unwrap();
        assert_eq!(c.select(&[m("app", MatchOp::Eq, "api")]), vec![a]);
        assert_eq!(c.select(&[m("app", MatchOp::Re, "a.*|d.")]), vec![a, b]);
        assert_eq!(
            c.select(&[m("app", MatchOp::Re, ".+"), m("env", MatchOp::Neq, "prod")]),
            vec![b, d]
        );
        assert_eq!(
            c.select(&[m("app", MatchOp::Re, ".+"), m("env", MatchOp::Nre, "")]),
            vec![a, b]
        );
        assert_eq!(c.select(&[m("env", MatchOp::Eq, "")]), vec![d]);
        assert!(
            c.select(&[m("app", MatchOp::Eq, "api"), m("env", MatchOp::Eq, "dev")])
                .is_empty()
        );
        assert!(c.select(&[m("nope", MatchOp::Eq, "x")]).is_empty());
    }
}
