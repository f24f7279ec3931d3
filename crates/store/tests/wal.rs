//! The WAL seen from outside: what survives a torn tail, a corrupt record, and `kill -9`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kiroku_store::Store;
use logql::Direction;

fn wal_segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    v.sort();
    v
}

fn write_unflushed(dir: &std::path::Path, n: i64) {
    let rt = rt();
    let store = Store::open(config(dir)).unwrap();
    for i in 0..n {
        append(
            &rt,
            &store,
            "fake",
            &[(
                labels(r#"{app="a"}"#),
                vec![(i, format!("line {i}"), vec![])],
            )],
        );
    }
    // Dropped without close(): the entries are only in the WAL.
}

fn count(dir: &std::path::Path) -> (usize, kiroku_store::StoreMetrics) {
    let store = Store::open(config(dir)).unwrap();
    let got = read(
        &store.reader(&["fake".to_string()]),
        &all(),
        0,
        i64::MAX,
        Direction::Forward,
        ALL_COLUMNS,
    );
    let n = got.iter().map(|s| s.1.len()).sum();
    let m = store.metrics();
    (n, m)
}

#[test]
fn a_torn_tail_loses_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    write_unflushed(dir.path(), 10);
    let seg = wal_segments(dir.path())
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let (n, m) = count(dir.path());
    assert_eq!(n, 9);
    assert_eq!(m.wal_corrupt_records, 1);
    assert_eq!(m.wal_replayed_records, 9);
    // The segment was truncated at the torn record: the next open sees no corruption.
    let (n, m) = count(dir.path());
    assert_eq!((n, m.wal_corrupt_records), (9, 0));
}

#[test]
fn a_corrupt_record_ends_replay_of_its_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_unflushed(dir.path(), 10);
    let seg = wal_segments(dir.path())
        .into_iter()
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip a byte in the middle of the file: a record there fails its CRC.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&seg, &bytes).unwrap();
    let (n, m) = count(dir.path());
    assert!((3..10).contains(&n), "{n}");
    assert_eq!(m.wal_corrupt_records, 1);
}

/// The child side of the crash test: appends until killed, printing each acknowledged
/// entry's number after `append` returned Ok.
#[test]
#[ignore = "run by crash_after_acknowledged_appends_loses_nothing"]
fn crash_child() {
    let Ok(dir) = std::env::var("KIROKU_CRASH_DIR") else {
        return;
    };
    let mut cfg = config(std::path::Path::new(&dir));
    cfg.fsync = true;
    cfg.memtable_bytes = 64 << 10; // rotate and flush often while we are killed
    let store = Store::open(cfg).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let store = std::sync::Arc::new(store);
    let (tx, rx) = std::sync::mpsc::channel::<i64>();
    for w in 0..4i64 {
        let store = store.clone();
        let tx = tx.clone();
        rt.spawn(async move {
            for i in 0.. {
                let n = w * 1_000_000_000 + i;
                let line = format!("worker {w} entry {i} {}", "x".repeat((i % 200) as usize));
                let l = labels(&format!(r#"{{app="crash", worker="{w}"}}"#));
                let entries = [kiroku_store::WriteEntry {
                    ts: n,
                    line: line.as_bytes(),
                    metadata: &[],
                }];
                let ws = [kiroku_store::WriteStream {
                    labels: &l,
                    entries: &entries,
                }];
                if store.append("fake", &ws).await.is_ok() {
                    let _ = tx.send(n);
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    for n in rx {
        writeln!(out, "acked {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn crash_after_acknowledged_appends_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KIROKU_CRASH_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("acked ") {
                acked.push(n.parse::<i64>().unwrap());
            }
            if acked.len() >= 3000 || Instant::now() > deadline {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            acked.len() >= 3000,
            "round {round}: the child acknowledged only {}",
            acked.len()
        );
        let store = Store::open(config(dir.path())).unwrap();
        let got = read(
            &store.reader(&["fake".to_string()]),
            &all(),
            0,
            i64::MAX,
            Direction::Forward,
            ALL_COLUMNS,
        );
        let have: std::collections::HashSet<i64> =
            got.iter().flat_map(|s| s.1.iter().map(|e| e.0)).collect();
        let lost: Vec<i64> = acked
            .iter()
            .copied()
            .filter(|n| !have.contains(n))
            .collect();
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged entries lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        store.close(Duration::from_secs(10)).unwrap();
    }
}
