//! Retention by age and by disk budget, and a full disk: oldest data goes first, writes
//! fail with a retryable error while the disk is full and work again by themselves.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use kiroku_store::{DiskBudget, Faults, RejectReason, Store, StoreError, WriteEntry, WriteStream};
use logql::Direction;

const HOUR: i64 = 3_600_000_000_000;
const DAY: i64 = 24 * HOUR;

fn days_present(store: &Store) -> Vec<i64> {
    let got = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    let mut d: Vec<i64> = got
        .iter()
        .flat_map(|s| s.1.iter().map(|e| e.0.div_euclid(DAY)))
        .collect();
    d.dedup();
    d.sort();
    d.dedup();
    d
}

#[test]
fn too_old_entries_are_refused_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = Some(HOUR);
    let store = Store::open(cfg).unwrap();
    let l = labels(r#"{app="a"}"#);
    let t = now_ns();
    let entries = [
        WriteEntry {
            ts: t - 2 * HOUR,
            line: b"old",
            metadata: &[],
        },
        WriteEntry {
            ts: t - HOUR / 2,
            line: b"recent",
            metadata: &[],
        },
    ];
    let report = rt()
        .block_on(store.append(
            "fake",
            &[WriteStream {
                labels: &l,
                entries: &entries,
            }],
        ))
        .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(
        (report.rejected[0].stream, report.rejected[0].entry),
        (0, 0)
    );
    let RejectReason::TooOld { oldest_acceptable } = report.rejected[0].reason;
    assert!(oldest_acceptable > t - 2 * HOUR && oldest_acceptable <= now_ns() - HOUR);
    let got = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(
        got[0].1.iter().map(|e| e.1.as_str()).collect::<Vec<_>>(),
        vec!["recent"]
    );
    assert_eq!(store.metrics().entries_rejected_too_old, 1);
}

#[test]
fn retention_zero_accepts_any_age() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = Some(0);
    let store = Store::open(cfg).unwrap();
    append(
        &rt(),
        &store,
        "fake",
        &[(labels(r#"{app="a"}"#), vec![(1, "1970".into(), vec![])])],
    );
    store.flush().unwrap();
    store.maintain();
    assert_eq!(days_present(&store), vec![0]);
}

/// Writes one part per day for `days` days ending today, each at this time of day (so
/// that the part of `d` days ago is exactly that old, whatever the hour).
fn write_days(dir: &std::path::Path, days: i64) -> i64 {
    let store = Store::open(config(dir)).unwrap();
    let rt = rt();
    let now = now_ns() - 1_000;
    let today = now.div_euclid(DAY);
    for d in (0..days).rev() {
        let ts = now - d * DAY;
        let es: Vec<Entry> = (0..200)
            .map(|i| {
                (
                    ts + i,
                    format!("day {d} line {i} {}", "x".repeat(100)),
                    vec![],
                )
            })
            .collect();
        append(&rt, &store, "fake", &[(labels(r#"{app="a"}"#), es)]);
        store.flush().unwrap();
    }
    store.close(Duration::from_secs(10)).unwrap();
    today
}

#[test]
fn parts_past_the_retention_period_are_deleted_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let today = write_days(dir.path(), 5);
    let mut cfg = config(dir.path());
    cfg.retention = Some(2 * DAY);
    let store = Store::open(cfg).unwrap();
    store.maintain();
    let d = days_present(&store);
    assert_eq!(
        d,
        vec![today - 1, today],
        "parts whose newest entry is older than 2 days are gone"
    );
    assert!(store.metrics().parts_deleted_retention >= 3);
}

#[test]
fn the_disk_budget_deletes_the_oldest_parts_first() {
    let dir = tempfile::tempdir().unwrap();
    let today = write_days(dir.path(), 6);
    let store = Store::open(config(dir.path())).unwrap();
    let usage = store.disk_usage();
    let per_part = usage / 6;
    drop(store);
    let mut cfg = config(dir.path());
    cfg.retention_max_disk = DiskBudget::Bytes(per_part * 3 + per_part / 2);
    let store = Store::open(cfg).unwrap();
    store.maintain();
    assert_eq!(days_present(&store), vec![today - 2, today - 1, today]);
    assert!(store.disk_usage() <= per_part * 3 + per_part / 2);
}

#[test]
fn a_budget_that_cannot_be_met_still_keeps_the_newest_part() {
    let dir = tempfile::tempdir().unwrap();
    let today = write_days(dir.path(), 3);
    let mut cfg = config(dir.path());
    cfg.retention_max_disk = DiskBudget::Bytes(1);
    let store = Store::open(cfg).unwrap();
    store.maintain();
    assert_eq!(days_present(&store), vec![today]);
}

#[test]
fn a_full_disk_refuses_appends_with_a_retryable_error_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(Faults::default());
    let mut cfg = config(dir.path());
    cfg.faults = Some(faults.clone());
    cfg.memtable_bytes = 4096;
    let store = Store::open(cfg).unwrap();
    let rt = rt();
    let l = labels(r#"{app="a"}"#);
    let line = "y".repeat(1000);
    let try_append = |ts: i64| {
        let e = [WriteEntry {
            ts,
            line: line.as_bytes(),
            metadata: &[],
        }];
        rt.block_on(store.append(
            "fake",
            &[WriteStream {
                labels: &l,
                entries: &e,
            }],
        ))
    };
    try_append(1).unwrap();
    faults.wal_full.store(true, Ordering::SeqCst);
    let err = try_append(2).unwrap_err();
    assert!(matches!(err, StoreError::DiskFull(_)), "{err}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains("retry later"), "{err}");
    faults.wal_full.store(false, Ordering::SeqCst);
    try_append(3).unwrap();

    // Parts cannot be written: entries stay readable from the heads and the WAL; appends
    // are refused once the memtable is twice its size, and all resumes when space returns.
    faults.parts_full.store(true, Ordering::SeqCst);
    assert!(store.flush().is_err());
    let mut refused = None;
    for ts in 10..100 {
        if let Err(e) = try_append(ts) {
            refused = Some(e);
            break;
        }
    }
    let refused = refused.expect("appends are refused while parts cannot be written");
    assert!(matches!(refused, StoreError::DiskFull(_)), "{refused}");
    let before = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert!(before[0].1.len() >= 3);
    faults.parts_full.store(false, Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while store.flush().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not recover"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    try_append(1000).unwrap();
    store.flush().unwrap();
    let after = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(after[0].1.len(), before[0].1.len() + 1);
    drop(store);
    let store = Store::open(config(dir.path())).unwrap();
    let reopened = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    assert_eq!(reopened, after);
}
