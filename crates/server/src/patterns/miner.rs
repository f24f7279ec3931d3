//! The pattern miner: a Drain-style online clustering of log lines into templates.
//!
//! Each line is cut into tokens ([`super::tokens`]). Lines are only ever compared with
//! lines of the same *group*: the same level, the same number of tokens, the same kind
//! (whole line or JSON message) and the same first [`PREFIX_TOKENS`] tokens, where a token
//! holding a digit counts as "some value". Within its group a line joins the cluster it is
//! most similar to, or starts a new one:
//!
//! - a position *agrees* when the cluster's token there is the same text with the same
//!   whitespace after it, or when both tokens hold digits (numbers are almost always
//!   values: two of them are the same *kind* of token);
//! - a line of [`SHORT_LINE`] tokens or more joins a cluster when at least [`SIMILARITY`]
//!   of its positions agree; a shorter line only when every position agrees (a two-word
//!   message like `user login` is its own pattern, `retry 3` and `retry 4` are one);
//! - joining turns every position that differs into a variable, printed `<_>`.
//!
//! Ties go to the cluster that agrees on more literal words, then to the older one, so
//! the same lines in the same order always give the same patterns.
//!
//! Memory is bounded: at most `max_clusters` clusters live at once. A new cluster past
//! that replaces the one with the fewest lines (the least recently used among equals);
//! the lines it held are no longer counted ([`Miner::evicted_lines`]): they belong to
//! the rarest shapes, which are not reported anyway. Each cluster keeps its counts as
//! `(bucket, count)` runs, at most one per mined line, so counts take at most 8 bytes per
//! mined line.

use std::collections::HashMap;

use super::template::{Gap, Slot, merge, render};
use super::tokens::{Token, Tokens, is_numeric};

/// How many leading tokens choose a line's group.
pub const PREFIX_TOKENS: usize = 2;
/// Lines with fewer tokens join a cluster only when every position agrees.
pub const SHORT_LINE: usize = 4;
/// The share of agreeing positions for a line to join a cluster.
pub const SIMILARITY: f64 = 0.5;
/// Clusters alive at once.
pub const MAX_CLUSTERS: usize = 500;

/// Loki's level names, in the order levels are numbered here.
pub const LEVELS: [&str; 8] = [
    "trace", "debug", "info", "warn", "error", "critical", "fatal", "unknown",
];
const UNKNOWN_LEVEL: u8 = 7;

/// The number of a `detected_level` value; anything unknown is `unknown`, as in Loki.
pub fn level_index(v: &str) -> u8 {
    LEVELS
        .iter()
        .position(|l| l.eq_ignore_ascii_case(v))
        .map_or(UNKNOWN_LEVEL, |i| i as u8)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GroupKey {
    level: u8,
    embedded: bool,
    len: u8,
    prefix: u64,
}

struct Cluster {
    key: GroupKey,
    slots: Vec<Slot>,
    /// Lines counted (weighted).
    total: u64,
    /// When it last took a line, for choosing what to evict.
    touched: u64,
    /// `(bucket, count)` runs in arrival order; a bucket may repeat.
    samples: Vec<(u32, u32)>,
}

/// A pattern found, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub pattern: String,
    pub level: u8,
    pub total: u64,
    /// `(bucket, count)`, sorted by bucket, each bucket once.
    pub samples: Vec<(u32, u64)>,
}

/// Clusters lines into patterns; see the module comment.
pub struct Miner {
    slots: Vec<Option<Cluster>>,
    free: Vec<usize>,
    groups: HashMap<GroupKey, Vec<usize>>,
    live: usize,
    max_clusters: usize,
    tick: u64,
    /// Lines counted (weighted), evicted ones included.
    pub lines: u64,
    /// Lines whose cluster was evicted.
    pub evicted_lines: u64,
}

impl Miner {
    pub fn new(max_clusters: usize) -> Miner {
        Miner {
            slots: Vec::new(),
            free: Vec::new(),
            groups: HashMap::new(),
            live: 0,
            max_clusters: max_clusters.max(1),
            tick: 0,
            lines: 0,
            evicted_lines: 0,
        }
    }

    /// Mines one line cut into `tokens`, counting it `weight` times in `bucket`. A line
    /// without tokens (empty or blank) is not counted.
    pub fn add(&mut self, line: &[u8], tokens: &Tokens, level: u8, bucket: u32, weight: u32) {
        let toks = &tokens.list;
        if toks.is_empty() {
            return;
        }
        self.tick += 1;
        self.lines += u64::from(weight);
        let key = GroupKey {
            level,
            embedded: tokens.embedded,
            len: toks.len() as u8,
            prefix: prefix_hash(line, toks),
        };
        let id = match self.best_match(key, line, toks) {
            Some((id, changes)) => {
                // Most lines of a settled cluster change nothing: skip the second pass.
                if changes && let Some(c) = self.slots[id].as_mut() {
                    merge(&mut c.slots, line, toks);
                }
                id
            }
            None => self.create(key, line, tokens),
        };
        let tick = self.tick;
        if let Some(c) = self.slots[id].as_mut() {
            c.total += u64::from(weight);
            c.touched = tick;
            match c.samples.last_mut() {
                Some((b, n)) if *b == bucket => *n = n.saturating_add(weight),
                _ => c.samples.push((bucket, weight)),
            }
        }
    }

    /// The cluster the line joins, and whether joining changes its template.
    fn best_match(&self, key: GroupKey, line: &[u8], toks: &[Token]) -> Option<(usize, bool)> {
        let candidates = self.groups.get(&key)?;
        let n = toks.len();
        let mut best: Option<(usize, usize, usize, bool)> = None; // (agree, equal, id, changes)
        for &id in candidates {
            let Some(c) = &self.slots[id] else { continue };
            let Some(a) = agreement(&c.slots, line, toks) else {
                continue;
            };
            if !joins(&a, n) {
                continue;
            }
            let (agree, equal) = (a.agree, a.equal);
            // Candidates are in creation order: a later one must be strictly better.
            if best.is_none_or(|(a, e, _, _)| (agree, equal) > (a, e)) {
                best = Some((agree, equal, id, a.changes));
            }
        }
        best.map(|(_, _, id, changes)| (id, changes))
    }

    fn create(&mut self, key: GroupKey, line: &[u8], tokens: &Tokens) -> usize {
        if self.live >= self.max_clusters {
            self.evict();
        }
        let last = tokens.list.len() - 1;
        let slots = tokens
            .list
            .iter()
            .enumerate()
            .map(|(i, t)| {
                if tokens.truncated && i == last {
                    Slot::Variable {
                        gap: Gap::Same(Box::from(t.gap(line))),
                    }
                } else {
                    Slot::Literal {
                        text: Box::from(t.text(line)),
                        gap: Box::from(t.gap(line)),
                    }
                }
            })
            .collect();
        let cluster = Cluster {
            key,
            slots,
            total: 0,
            touched: self.tick,
            samples: Vec::new(),
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id] = Some(cluster);
                id
            }
            None => {
                self.slots.push(Some(cluster));
                self.slots.len() - 1
            }
        };
        self.live += 1;
        self.groups.entry(key).or_default().push(id);
        id
    }

    /// Drops the cluster with the fewest lines, the least recently used among equals.
    fn evict(&mut self) {
        let victim = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(id, c)| c.as_ref().map(|c| (c.total, c.touched, id)))
            .min();
        let Some((_, _, id)) = victim else { return };
        let Some(c) = self.slots[id].take() else {
            return;
        };
        self.evicted_lines += c.total;
        if let Some(list) = self.groups.get_mut(&c.key) {
            list.retain(|&x| x != id);
            if list.is_empty() {
                self.groups.remove(&c.key);
            }
        }
        self.free.push(id);
        self.live -= 1;
    }

    /// The patterns found, one per cluster, with their counts merged per bucket.
    pub fn finish(self) -> Vec<Found> {
        self.slots
            .into_iter()
            .flatten()
            .filter(|c| c.total > 0)
            .map(|c| {
                let mut samples: Vec<(u32, u64)> =
                    c.samples.iter().map(|&(b, n)| (b, u64::from(n))).collect();
                samples.sort_unstable_by_key(|s| s.0);
                samples.dedup_by(|later, first| {
                    if later.0 == first.0 {
                        first.1 += later.1;
                        true
                    } else {
                        false
                    }
                });
                Found {
                    pattern: render(&c.slots, c.key.embedded),
                    level: c.key.level,
                    total: c.total,
                    samples,
                }
            })
            .collect()
    }
}

/// FNV-1a over the first tokens, a token with a digit standing for "some value": fixed, so
/// that grouping never depends on a random seed.
fn prefix_hash(line: &[u8], toks: &[Token]) -> u64 {
    const VALUE: u8 = 0xff; // never a byte of a token in a UTF-8 line
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for t in toks.iter().take(PREFIX_TOKENS) {
        let text = t.text(line);
        if is_numeric(text) {
            eat(VALUE);
        } else {
            text.iter().for_each(|&b| eat(b));
        }
        eat(0);
    }
    h
}

/// How a line compares with a cluster, position by position.
struct Agreement {
    /// Positions that agree.
    agree: usize,
    /// Of those, the equal literal words.
    equal: usize,
    /// Positions that agree before the first that does not.
    run: usize,
    /// Joining would change the template: a literal differs, or a variable's gap.
    changes: bool,
}

/// How a line and a cluster agree (see the module comment); `None` as soon as the line
/// cannot join (see [`joins`]), so that most clusters of a group are dismissed after a
/// few positions.
fn agreement(slots: &[Slot], line: &[u8], toks: &[Token]) -> Option<Agreement> {
    let n = toks.len();
    let short = n < SHORT_LINE;
    let mut a = Agreement {
        agree: 0,
        equal: 0,
        run: 0,
        changes: false,
    };
    // Differences allowed, known at the first one (the leading run is then fixed).
    let mut allowed: Option<usize> = None;
    for (i, (slot, t)) in slots.iter().zip(toks).enumerate() {
        let text = t.text(line);
        let agrees = match slot {
            Slot::Literal { text: lit, gap } => {
                if **lit == *text && **gap == *t.gap(line) {
                    a.equal += 1;
                    true
                } else {
                    a.changes = true;
                    is_numeric(lit) && is_numeric(text)
                }
            }
            Slot::Variable { gap } => {
                if let Gap::Same(g) = gap
                    && **g != *t.gap(line)
                {
                    a.changes = true;
                }
                is_numeric(text)
            }
        };
        if agrees {
            a.agree += 1;
            if a.run == a.agree - 1 {
                a.run += 1;
            }
        } else if short {
            return None;
        } else {
            let allowed = *allowed.get_or_insert_with(|| max_differences(n, a.run));
            if i + 1 - a.agree > allowed {
                return None;
            }
        }
    }
    Some(a)
}

/// The most positions that may differ for a line of `n` tokens whose first `run` agree.
fn max_differences(n: usize, run: usize) -> usize {
    (((n - run) as f64 * (1.0 - SIMILARITY)).floor() as usize).max(1)
}

/// Whether a line of `n` tokens joins: a short line when everything agrees; a longer one
/// when, after the leading positions that agree (a header of time, host and process is
/// the same in every line and says nothing of the message), at most half of the rest
/// differs, and at least one difference is always allowed.
fn joins(a: &Agreement, n: usize) -> bool {
    if n < SHORT_LINE {
        return a.agree == n;
    }
    n - a.agree <= max_differences(n, a.run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mine(lines: &[&str]) -> Vec<Found> {
        let mut m = Miner::new(MAX_CLUSTERS);
        let mut t = Tokens::default();
        for (i, l) in lines.iter().enumerate() {
            t.cut(l.as_bytes());
            m.add(l.as_bytes(), &t, level_index("info"), i as u32, 1);
        }
        let mut f = m.finish();
        f.sort_by(|a, b| b.total.cmp(&a.total).then(a.pattern.cmp(&b.pattern)));
        f
    }

    fn patterns(lines: &[&str]) -> Vec<(String, u64)> {
        mine(lines)
            .into_iter()
            .map(|f| (f.pattern, f.total))
            .collect()
    }

    #[test]
    fn values_become_variables() {
        let got = patterns(&[
            "Accepted password for alice from 10.0.0.1 port 22 ssh2",
            "Accepted password for bob from 10.0.0.2 port 2222 ssh2",
            "Accepted password for carol from 10.0.0.3 port 22 ssh2",
        ]);
        assert_eq!(
            got,
            [(
                "Accepted password for <_> from <_> port <_> ssh2".to_string(),
                3
            )]
        );
    }

    #[test]
    fn different_messages_stay_apart() {
        let got = patterns(&[
            "connection opened from 10.0.0.1 by client",
            "disk usage above threshold on /dev/sda1 now",
            "connection opened from 10.0.0.2 by client",
        ]);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(
            got[0],
            ("connection opened from <_> by client".to_string(), 2)
        );
    }

    #[test]
    fn short_lines_join_only_when_all_agree() {
        let got = patterns(&["user login", "user logout", "retry 3", "retry 4", "ok"]);
        assert_eq!(
            got,
            [
                ("retry <_>".to_string(), 2),
                ("ok".to_string(), 1),
                ("user login".to_string(), 1),
                ("user logout".to_string(), 1),
            ]
        );
    }

    #[test]
    fn spacing_is_kept_and_variable_runs_print_once() {
        let got = patterns(&["a  b=1 2 x", "a  b=3 4 x"]);
        assert_eq!(got, [("a  b=<_> <_> x".to_string(), 2)]);
        // Adjacent variables with no space between them print as one.
        let got = patterns(&["a=1, b c", "a=2; b c"]);
        assert_eq!(got, [("a=<_> b c".to_string(), 2)]);
    }

    #[test]
    fn json_messages_print_between_variables() {
        let lines = [
            r#"{"level":"info","msg":"cache miss for key 17","t":1}"#,
            r#"{"level":"info","msg":"cache miss for key 18","t":2}"#,
        ];
        assert_eq!(
            patterns(&lines),
            [("<_>cache miss for key <_>".to_string(), 2)]
        );
    }

    #[test]
    fn literal_angle_words_are_not_captures() {
        let got = patterns(&["value <none> set for key", "value <none> set for key"]);
        assert_eq!(got, [("value <<_>> set for key".to_string(), 2)]);
    }

    #[test]
    fn counts_go_to_their_buckets() {
        let mut m = Miner::new(MAX_CLUSTERS);
        let mut t = Tokens::default();
        for (bucket, l) in [
            (3, "job 1 done ok now"),
            (3, "job 2 done ok now"),
            (1, "job 3 done ok now"),
        ] {
            t.cut(l.as_bytes());
            m.add(l.as_bytes(), &t, 0, bucket, 5);
        }
        let f = m.finish();
        assert_eq!(f[0].samples, [(1, 5), (3, 10)]);
        assert_eq!(f[0].total, 15);
    }

    #[test]
    fn levels_never_mix() {
        let mut m = Miner::new(MAX_CLUSTERS);
        let mut t = Tokens::default();
        for (lvl, l) in [
            ("info", "job 1 done ok now"),
            ("error", "job 2 done ok now"),
        ] {
            t.cut(l.as_bytes());
            m.add(l.as_bytes(), &t, level_index(lvl), 0, 1);
        }
        assert_eq!(m.finish().len(), 2);
        assert_eq!(level_index("WARN"), 3);
        assert_eq!(level_index("notice"), UNKNOWN_LEVEL);
    }

    #[test]
    fn memory_is_bounded_and_the_rarest_go_first() {
        let mut m = Miner::new(3);
        let mut t = Tokens::default();
        let lines = [
            "alpha one two three",
            "alpha one two three",
            "beta four five six",
            "gamma seven eight nine",
            "delta ten eleven twelve",
        ];
        for l in lines {
            t.cut(l.as_bytes());
            m.add(l.as_bytes(), &t, 0, 0, 1);
        }
        assert_eq!(
            m.evicted_lines, 1,
            "beta, the least recently used single line"
        );
        assert_eq!(m.lines, 5);
        let mut got: Vec<String> = m.finish().into_iter().map(|f| f.pattern).collect();
        got.sort();
        assert_eq!(
            got,
            [
                "alpha one two three",
                "delta ten eleven twelve",
                "gamma seven eight nine"
            ]
        );
    }

    #[test]
    fn same_input_same_patterns() {
        let lines: Vec<String> = (0..200)
            .map(|i| {
                format!(
                    "worker {} finished job {} in {}ms status ok",
                    i % 7,
                    i,
                    i * 3
                )
            })
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(mine(&refs), mine(&refs));
        assert_eq!(
            patterns(&refs),
            [(
                "worker <_> finished job <_> in <_> status ok".to_string(),
                200
            )]
        );
    }
}
