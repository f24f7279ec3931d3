//! Reading back: order, duplicates, tenants, text filters and concurrency, against heads,
//! parts and their mix; and a model test over random appends, flushes, compactions and
//! reopens.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use kiroku_store::Store;
use logql::{Columns, Direction, RequiredText, Select};
use proptest::prelude::*;
use protocol::Labels;

fn e(ts: i64, line: &str) -> Entry {
    (ts, line.to_string(), Vec::new())
}

#[test]
fn out_of_order_and_duplicate_entries_read_once_in_order_across_heads_and_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let rt = rt();
    let l = labels(r#"{app="a"}"#);
    append(
        &rt,
        &store,
        "fake",
        &[(l.clone(), vec![e(30, "c"), e(10, "a"), e(20, "b")])],
    );
    store.flush().unwrap();
    // The same entries again (a client retry), interleaved with new ones: part 2 overlaps part 1.
    append(
        &rt,
        &store,
        "fake",
        &[(
            l.clone(),
            vec![e(20, "b"), e(15, "x"), e(30, "c"), e(30, "b")],
        )],
    );
    store.flush().unwrap();
    // And in the heads.
    append(
        &rt,
        &store,
        "fake",
        &[(l.clone(), vec![e(10, "a"), e(25, "y")])],
    );
    let want = vec![
        e(10, "a"),
        e(15, "x"),
        e(20, "b"),
        e(25, "y"),
        // Equal timestamps in the order they came: "c" first, then "b".
        e(30, "c"),
        e(30, "b"),
    ];
    let r = store.reader(&["fake".to_string()]);
    for cols in [
        ALL_COLUMNS,
        Columns {
            lines: false,
            metadata: false,
        },
    ] {
        let got = read(&r, &all(), 0, 100, Direction::Forward, cols);
        let ts: Vec<i64> = got[0].1.iter().map(|e| e.0).collect();
        assert_eq!(ts, want.iter().map(|e| e.0).collect::<Vec<_>>(), "{cols:?}");
        if cols.lines {
            assert_eq!(got[0].1, leveled(&want));
        }
    }
    let want = leveled(&want);
    let mut rev = want.clone();
    rev.reverse();
    assert_eq!(
        read(&r, &all(), 0, 100, Direction::Backward, ALL_COLUMNS)[0].1,
        rev
    );
    assert_eq!(
        read(&r, &all(), 15, 30, Direction::Backward, ALL_COLUMNS)[0].1,
        rev[2..5].to_vec()
    );
    let stats = r.stream_stats(&all(), 0, 100).unwrap();
    assert_eq!(stats.len(), 1);
    assert!(stats[0].entries >= 6);
    // Compaction keeps every entry exactly once.
    store.flush().unwrap();
    store.maintain();
    assert_eq!(
        read(&r, &all(), 0, 100, Direction::Forward, ALL_COLUMNS)[0].1,
        want
    );
}

#[test]
fn tenants_are_stored_apart_and_read_together_with_tenant_labels() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let rt = rt();
    let l = labels(r#"{app="a"}"#);
    append(&rt, &store, "team-a", &[(l.clone(), vec![e(1, "from a")])]);
    append(&rt, &store, "team/b", &[(l.clone(), vec![e(2, "from b")])]);
    store.flush().unwrap();
    let only_a = read(
        &store.reader(&["team-a".into()]),
        &all(),
        0,
        10,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(only_a, vec![(l.clone(), leveled(&[e(1, "from a")]))]);
    let both = store.reader(&["team-a".into(), "team/b".into()]);
    let got = read(&both, &all(), 0, 10, Direction::Forward, ALL_COLUMNS);
    assert_eq!(
        got,
        vec![
            (
                labels(r#"{__tenant_id__="team-a", app="a"}"#),
                leveled(&[e(1, "from a")])
            ),
            (
                labels(r#"{__tenant_id__="team/b", app="a"}"#),
                leveled(&[e(2, "from b")])
            ),
        ]
    );
    let just_b = read(
        &both,
        &[eq("__tenant_id__", "team/b"), eq("app", "a")],
        0,
        10,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(just_b.len(), 1);
    assert_eq!(
        both.label_values("__tenant_id__", None, 0, 10).unwrap(),
        vec!["team-a", "team/b"]
    );
    assert!(
        read(
            &store.reader(&["nobody".into()]),
            &all(),
            0,
            10,
            Direction::Forward,
            ALL_COLUMNS
        )
        .is_empty()
    );
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(
        read(
            &store.reader(&["team/b".into()]),
            &all(),
            0,
            10,
            Direction::Forward,
            ALL_COLUMNS
        ),
        vec![(l.clone(), leveled(&[e(2, "from b")]))]
    );
}

#[test]
fn metadata_round_trips_through_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let m = |v: &str| {
        vec![
            ("trace_id".to_string(), v.to_string()),
            ("user".to_string(), "u".to_string()),
        ]
    };
    let es = vec![
        (1, "a".to_string(), m("t1")),
        (2, "b".to_string(), vec![]),
        (3, "c".to_string(), m("t2")),
    ];
    append(
        &rt(),
        &store,
        "fake",
        &[(labels(r#"{app="a"}"#), es.clone())],
    );
    store.flush().unwrap();
    let got = read(
        &store.reader(&["fake".into()]),
        &all(),
        0,
        10,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(got[0].1, leveled(&es));
    let no_meta = read(
        &store.reader(&["fake".into()]),
        &all(),
        0,
        10,
        Direction::Forward,
        Columns {
            lines: true,
            metadata: false,
        },
    );
    assert!(no_meta[0].1.iter().all(|e| e.2.is_empty()));
}

/// All entries of all streams, forward, every column.
fn select_all<'a>(m: &'a [logql::ast::Matcher], required: Option<&'a RequiredText>) -> Select<'a> {
    Select {
        matchers: m,
        start: 0,
        end: i64::MAX,
        direction: Direction::Forward,
        columns: ALL_COLUMNS,
        required,
        fields: None,
    }
}

/// Counts the entries a select hands out, for block skipping.
fn count_with(store: &Store, required: Option<&RequiredText>) -> usize {
    let r = store.reader(&["fake".into()]);
    let m = all();
    read_select(&r, &select_all(&m, required))
        .iter()
        .map(|s| s.1.len())
        .sum()
}

#[test]
fn blocks_are_skipped_by_time_and_by_required_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let rt = rt();
    // 3 streams × 3 flushes; only one block holds the needle.
    for round in 0..3i64 {
        for s in 0..3 {
            let es: Vec<Entry> = (0..500)
                .map(|i| {
                    let ts = round * 1_000_000 + i;
                    let line = if round == 1 && s == 2 && i == 250 {
                        "request 7f3a9c2e-needle done".to_string()
                    } else {
                        format!(
                            "GET /api/v1/items/{} status=200 took={}ms",
                            (i * 7919) % 10007,
                            i % 97
                        )
                    };
                    (ts, line, vec![])
                })
                .collect();
            append(
                &rt,
                &store,
                "fake",
                &[(labels(&format!(r#"{{app="s{s}"}}"#)), es)],
            );
        }
        store.flush().unwrap();
    }
    let needle = RequiredText::Literal {
        text: "7f3a9c2e-NEEDLE".into(),
        case_insensitive: true,
    };
    assert_eq!(count_with(&store, None), 4500);
    assert_eq!(
        count_with(&store, Some(&needle)),
        500,
        "only the needle's block is read"
    );
    // The filters read are kept, and the same answer comes from them.
    let kept = store.metrics().filter_cache_bytes;
    assert!(kept > 0);
    assert_eq!(count_with(&store, Some(&needle)), 500);
    assert_eq!(store.metrics().filter_cache_bytes, kept, "each read once");
    let exact = RequiredText::Literal {
        text: "7f3a9c2e-needle".into(),
        case_insensitive: false,
    };
    assert_eq!(count_with(&store, Some(&exact)), 500);
    let absent = RequiredText::Literal {
        text: "no such thing here".into(),
        case_insensitive: false,
    };
    assert_eq!(count_with(&store, Some(&absent)), 0);
    let r = store.reader(&["fake".into()]);
    let got = read(
        &r,
        &all(),
        1_000_100,
        1_000_200,
        Direction::Backward,
        ALL_COLUMNS,
    );
    assert_eq!(got.iter().map(|s| s.1.len()).sum::<usize>(), 300);
}

#[test]
fn flushes_under_concurrent_appends_and_reads_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.memtable_bytes = 32 << 10;
    let store = Arc::new(Store::open(cfg).unwrap());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            rt.spawn(async move {
                let l = labels(&format!(r#"{{app="w{w}"}}"#));
                for i in 0..500i64 {
                    let line = format!("writer {w} entry {i}");
                    let es = [kiroku_store::WriteEntry {
                        ts: i,
                        line: line.as_bytes(),
                        metadata: &[],
                    }];
                    store
                        .append(
                            "fake",
                            &[kiroku_store::WriteStream {
                                labels: &l,
                                entries: &es,
                            }],
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    let reader_store = store.clone();
    let reads = std::thread::spawn(move || {
        let mut last = 0;
        for _ in 0..200 {
            let got = read(
                &reader_store.reader(&["fake".into()]),
                &all(),
                0,
                i64::MAX,
                Direction::Forward,
                ALL_COLUMNS,
            );
            for (_, es) in &got {
                assert!(
                    es.windows(2).all(|w| w[0].0 < w[1].0),
                    "entries out of order or repeated"
                );
            }
            let n: usize = got.iter().map(|s| s.1.len()).sum();
            assert!(n >= last, "entries disappeared: {n} < {last}");
            last = n;
        }
    });
    let flusher_store = store.clone();
    let flushes = std::thread::spawn(move || {
        for _ in 0..10 {
            flusher_store.flush().unwrap();
            flusher_store.maintain();
        }
    });
    for w in writers {
        rt.block_on(w).unwrap();
    }
    reads.join().unwrap();
    flushes.join().unwrap();
    let got = read(
        &store.reader(&["fake".into()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(got.iter().map(|s| s.1.len()).sum::<usize>(), 2000);
    store.close(Duration::from_secs(10)).unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(usize, i64, u8)>),
    Flush,
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((0usize..3, 0i64..40, 0u8..4), 1..20).prop_map(Op::Append),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

/// A stream's entries in arrival order, exact duplicates (same ts and line) left out.
type Model = Vec<Entry>;

fn line_of(ts: i64, v: u8) -> String {
    format!("line {v} at {ts}")
}

fn meta_of(ts: i64, v: u8) -> Vec<(String, String)> {
    if v.is_multiple_of(2) {
        vec![("k".to_string(), format!("{ts}"))]
    } else {
        vec![]
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the sequence, reading back equals a model sorted by time (equal times in
    /// arrival order, reversed backward) without exact duplicates.
    #[test]
    fn reads_match_a_model(ops in proptest::collection::vec(op(), 1..25), start in 0i64..20, len in 1i64..40) {
        let dir = tempfile::tempdir().unwrap();
        let rt = rt();
        let names: Vec<Labels> = (0..3).map(|i| labels(&format!(r#"{{app="s{i}"}}"#))).collect();
        let mut model: BTreeMap<Labels, Model> = BTreeMap::new();
        let mut store = Store::open(config(dir.path())).unwrap();
        for op in ops {
            match op {
                Op::Append(es) => {
                    let mut by: BTreeMap<usize, Vec<Entry>> = BTreeMap::new();
                    for (s, ts, v) in es {
                        by.entry(s).or_default().push((ts, line_of(ts, v), meta_of(ts, v)));
                        let m = model.entry(names[s].clone()).or_default();
                        if !m.iter().any(|e| e.0 == ts && e.1 == line_of(ts, v)) {
                            m.push((ts, line_of(ts, v), meta_of(ts, v)));
                        }
                    }
                    let streams: Vec<(Labels, Vec<Entry>)> = by.into_iter().map(|(s, e)| (names[s].clone(), e)).collect();
                    append(&rt, &store, "fake", &streams);
                }
                Op::Flush => store.flush().unwrap(),
                Op::Compact => store.maintain(),
                Op::Reopen => {
                    drop(store);
                    store = Store::open(config(dir.path())).unwrap();
                }
            }
        }
        let end = start + len;
        for dir in [Direction::Forward, Direction::Backward] {
            let got = read(&store.reader(&["fake".into()]), &all(), start, end, dir, ALL_COLUMNS);
            let mut want: Vec<(Labels, Vec<Entry>)> = model
                .iter()
                .map(|(l, es)| {
                    let mut v: Vec<Entry> = es
                        .iter()
                        .filter(|e| e.0 >= start && e.0 < end)
                        .cloned()
                        .collect();
                    // Stable: equal timestamps keep their arrival order.
                    v.sort_by_key(|e| e.0);
                    if dir == Direction::Backward {
                        v.reverse();
                    }
                    (l.clone(), leveled(&v))
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got, want);
        }
    }
}

#[test]
fn a_damaged_template_table_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let rt = rt();
    let es: Vec<Entry> = (0..50)
        .map(|i| e(i, &format!("request {i} took {}ms", i * 3)))
        .collect();
    append(&rt, &store, "fake", &[(labels(r#"{app="a"}"#), es)]);
    store.flush().unwrap();
    assert_eq!(count_with(&store, None), 50);
    drop(store);
    // The tables end where the index starts (the footer's first 8 bytes say where).
    let part = walkdir(dir.path())
        .into_iter()
        .find(|p| p.extension().is_some_and(|x| x == "kpart"))
        .unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    let footer = bytes.len() - 32;
    let index_at = u64::from_le_bytes(bytes[footer..footer + 8].try_into().unwrap()) as usize;
    bytes[index_at - 2] ^= 0x55;
    std::fs::write(&part, &bytes).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    let r = store.reader(&["fake".into()]);
    let m = all();
    let mut cursors = logql::Source::select(&r, &select_all(&m, None)).unwrap();
    let err = cursors[0].next_batch().unwrap_err().to_string();
    assert!(
        err.contains("template table") && err.contains("damaged"),
        "{err}"
    );
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
