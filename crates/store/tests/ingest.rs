//! The write path seen from outside: entries with their own structured metadata over many
//! head chunks, client retries of whole pushes, and equal timestamps, read back the same
//! from the heads, from parts, and after a restart replays the WAL.

mod common;

use std::time::Duration;

use common::*;
use kiroku_store::Store;
use kiroku_store::head::CHUNK_ENTRIES;
use logql::Direction;

/// `n` entries, one `trace_id` each (so the metadata dictionary is as large as the
/// stream), every tenth with a second pair shared by many.
fn traced(n: usize, from: i64) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let mut meta = vec![("trace_id".to_string(), format!("{i:016x}"))];
            if i % 10 == 0 {
                meta.push(("user".to_string(), format!("u{}", i % 3)));
            }
            (from + i as i64, format!("request {i} done"), meta)
        })
        .collect()
}

fn read_all(store: &Store) -> Vec<Entry> {
    let r = store.reader(&["fake".to_string()]);
    let mut got = read(&r, &all(), 0, i64::MAX, Direction::Forward, ALL_COLUMNS);
    assert!(got.len() <= 1);
    got.pop().map(|s| s.1).unwrap_or_default()
}

#[test]
fn per_entry_metadata_over_many_chunks_reads_back_from_heads_parts_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = labels(r#"{app="api"}"#);
    let n = 3 * CHUNK_ENTRIES + 17;
    let want = traced(n, 1_000);
    let store = Store::open(config(dir.path())).unwrap();
    // In pushes of 500, as an agent sends them; the last push a retry of the one before.
    for c in want.chunks(500) {
        append(&rt, &store, "fake", &[(l.clone(), c.to_vec())]);
    }
    append(&rt, &store, "fake", &[(l.clone(), want[n - 17..].to_vec())]);
    let want = leveled(&want);
    assert_eq!(read_all(&store), want, "from the heads");
    // Restart without a flush: the WAL is replayed into the heads.
    store.close(Duration::from_secs(30)).unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    assert_eq!(read_all(&store), want, "after replaying the WAL");
    store.flush().unwrap();
    assert_eq!(read_all(&store), want, "from parts");
    store.close(Duration::from_secs(30)).unwrap();
}

#[test]
fn retried_pushes_across_a_flush_are_stored_once_and_equal_timestamps_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = labels(r#"{app="api"}"#);
    let store = Store::open(config(dir.path())).unwrap();
    // Three different lines at one timestamp, then a run of ordinary entries.
    let mut first: Vec<Entry> = ["b", "a", "c"]
        .iter()
        .map(|s| (500, s.to_string(), Vec::new()))
        .collect();
    first.extend(traced(CHUNK_ENTRIES + 5, 1_000));
    append(&rt, &store, "fake", &[(l.clone(), first.clone())]);
    store.flush().unwrap();
    // The client did not see the 204 and sends it all again, with one entry new at 500.
    let mut again = first.clone();
    again.insert(1, (500, "d".to_string(), Vec::new()));
    append(&rt, &store, "fake", &[(l.clone(), again.clone())]);
    // (The order of equal timestamps is the read path's business: compared sorted here.)
    let sorted = |mut v: Vec<Entry>| {
        v.sort();
        v
    };
    let want = sorted(leveled(&again));
    assert_eq!(sorted(read_all(&store)), want, "heads over a part");
    store.flush().unwrap();
    assert_eq!(sorted(read_all(&store)), want, "two parts");
    let at_500: Vec<String> = want
        .iter()
        .filter(|e| e.0 == 500)
        .map(|e| e.1.clone())
        .collect();
    assert_eq!(at_500, ["a", "b", "c", "d"]);
    store.close(Duration::from_secs(30)).unwrap();
}

/// A burst of many lines at one time, pushed again after a flush: the head and the part
/// overlap over the whole run, and each line is still read once, in arrival order.
#[test]
fn a_long_run_at_one_time_retried_across_a_flush_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let l = labels(r#"{app="api"}"#);
    let store = Store::open(config(dir.path())).unwrap();
    let burst: Vec<Entry> = (0..5_000)
        .map(|i| (700, format!("burst line {i}"), Vec::new()))
        .collect();
    append(&rt, &store, "fake", &[(l.clone(), burst.clone())]);
    store.flush().unwrap();
    let mut again = burst.clone();
    again.push((700, "one more".to_string(), Vec::new()));
    append(&rt, &store, "fake", &[(l.clone(), again.clone())]);
    let want = leveled(&again);
    assert_eq!(read_all(&store), want, "heads over a part");
    store.flush().unwrap();
    assert_eq!(read_all(&store), want, "two parts");
    store.close(Duration::from_secs(30)).unwrap();
}
