//! The store end to end through its public API: append, read, flush, reopen.

mod common;

use common::*;
use kiroku_store::Store;
use logql::{Columns, Direction};

fn e(ts: i64, line: &str) -> Entry {
    (ts, line.to_string(), Vec::new())
}

#[test]
fn appended_entries_read_back_from_heads_parts_and_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let a = labels(r#"{app="api", env="prod"}"#);
    let b = labels(r#"{app="db", env="prod"}"#);
    let want_a = vec![e(1_000, "one"), e(2_000, "two"), e(3_000, "three")];
    let want_b = vec![(
        1_500,
        "x".to_string(),
        vec![("trace_id".to_string(), "t1".to_string())],
    )];
    {
        let store = Store::open(config(dir.path())).unwrap();
        append(
            &rt,
            &store,
            "fake",
            &[(a.clone(), vec![want_a[2].clone(), want_a[0].clone()])],
        );
        append(
            &rt,
            &store,
            "fake",
            &[
                (a.clone(), vec![want_a[1].clone(), want_a[0].clone()]),
                (b.clone(), want_b.clone()),
            ],
        );
        let r = store.reader(&["fake".to_string()]);
        let got = read(&r, &all(), 0, i64::MAX, Direction::Forward, ALL_COLUMNS);
        assert_eq!(
            got,
            vec![(a.clone(), leveled(&want_a)), (b.clone(), leveled(&want_b))],
            "from heads"
        );
        store.flush().unwrap();
        assert_eq!(store.metrics().head_entries, 0);
        assert!(store.metrics().parts >= 1);
        let got = read(
            &r,
            &[eq("app", "api")],
            0,
            i64::MAX,
            Direction::Backward,
            ALL_COLUMNS,
        );
        let mut rev = leveled(&want_a);
        rev.reverse();
        assert_eq!(got, vec![(a.clone(), rev)], "from parts, backward");
        // One more entry in the heads, not flushed: the WAL has it at reopen.
        append(
            &rt,
            &store,
            "fake",
            &[(a.clone(), vec![e(4_000, "four"), e(2_000, "two")])],
        );
        store.close(std::time::Duration::ZERO).ok();
    }
    let store = Store::open(config(dir.path())).unwrap();
    let r = store.reader(&["fake".to_string()]);
    let got = read(
        &r,
        &[eq("app", "api")],
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    let mut want = want_a.clone();
    want.push(e(4_000, "four"));
    assert_eq!(got, vec![(a.clone(), leveled(&want))]);
    // Timestamps only: lines stay compressed, lengths still come.
    let got = read(
        &r,
        &[eq("env", "prod")],
        1_500,
        3_001,
        Direction::Forward,
        Columns {
            lines: false,
            metadata: false,
        },
    );
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].1.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![2_000, 3_000]
    );
    assert_eq!(
        store
            .reader(&["other".to_string()])
            .series(&[all()], 0, i64::MAX)
            .unwrap(),
        vec![]
    );
    assert_eq!(
        r.series(&[all()], 0, i64::MAX).unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        r.label_values("app", None, 0, i64::MAX).unwrap(),
        vec!["api", "db"]
    );
    assert_eq!(
        r.label_names(Some(&[eq("app", "db")]), 0, i64::MAX)
            .unwrap(),
        vec!["app", "env"]
    );
}
