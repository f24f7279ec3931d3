//! Helpers shared by the store's integration tests.
#![allow(dead_code)]

use kiroku_store::{DiskBudget, Reader, Store, StoreConfig, WriteEntry, WriteStream};
use logql::ast::{MatchOp, Matcher};
use logql::{Columns, Direction, Select, Source};
use protocol::Labels;

pub fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.retention = None;
    c.fsync = false;
    // Independent of how full the machine's disk is; budget tests set their own.
    c.retention_max_disk = DiskBudget::Unlimited;
    c
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

pub fn labels(s: &str) -> Labels {
    Labels::parse(s).unwrap()
}

/// One owned entry: (ts, line, metadata).
pub type Entry = (i64, String, Vec<(String, String)>);

/// `entries` as the store reads them back: each without a `detected_level` gets its
/// line's.
pub fn leveled(entries: &[Entry]) -> Vec<Entry> {
    entries
        .iter()
        .map(|(ts, line, meta)| {
            let mut meta = meta.clone();
            if !meta.iter().any(|(n, _)| n == "detected_level") {
                let level = logql::detect::line_level(line.as_bytes());
                meta.push(("detected_level".to_string(), level.to_string()));
            }
            (*ts, line.clone(), meta)
        })
        .collect()
}

pub fn append(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    tenant: &str,
    streams: &[(Labels, Vec<Entry>)],
) {
    let metas: Vec<Vec<Vec<(&str, &str)>>> = streams
        .iter()
        .map(|(_, es)| {
            es.iter()
                .map(|e| e.2.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
                .collect()
        })
        .collect();
    let entries: Vec<Vec<WriteEntry<'_>>> = streams
        .iter()
        .zip(&metas)
        .map(|((_, es), ms)| {
            es.iter()
                .zip(ms)
                .map(|(e, m)| WriteEntry {
                    ts: e.0,
                    line: e.1.as_bytes(),
                    metadata: m,
                })
                .collect()
        })
        .collect();
    let ws: Vec<WriteStream<'_>> = streams
        .iter()
        .zip(&entries)
        .map(|((l, _), e)| WriteStream {
            labels: l,
            entries: e,
        })
        .collect();
    let report = rt.block_on(store.append(tenant, &ws)).unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
}

pub fn all() -> Vec<Matcher> {
    vec![Matcher::new("__name__", MatchOp::Nre, "x^").unwrap()]
}

pub fn eq(n: &str, v: &str) -> Matcher {
    Matcher::new(n, MatchOp::Eq, v).unwrap()
}

/// Reads every stream matching `matchers` fully: labels → entries in read order.
pub fn read(
    reader: &Reader,
    matchers: &[Matcher],
    start: i64,
    end: i64,
    dir: Direction,
    columns: Columns,
) -> Vec<(Labels, Vec<Entry>)> {
    let sel = Select {
        matchers,
        start,
        end,
        direction: dir,
        columns,
        required: None,
        fields: None,
    };
    read_select(reader, &sel)
}

pub fn read_select(reader: &Reader, sel: &Select<'_>) -> Vec<(Labels, Vec<Entry>)> {
    let mut out = Vec::new();
    for mut c in reader.select(sel).unwrap() {
        let labels = c.labels().clone();
        let mut es = Vec::new();
        let mut bound = c.peek_bound();
        while let Some(b) = c.next_batch().unwrap() {
            for i in 0..b.len() {
                let ts = b.timestamps[i];
                let bnd = bound.expect("a bound while entries remain");
                match sel.direction {
                    Direction::Forward => assert!(ts >= bnd, "peek_bound {bnd} above entry {ts}"),
                    Direction::Backward => assert!(ts <= bnd, "peek_bound {bnd} below entry {ts}"),
                }
                assert_eq!(
                    b.line_lengths[i] as usize,
                    b.line(i).len().max(if sel.columns.lines {
                        0
                    } else {
                        b.line_lengths[i] as usize
                    })
                );
                let meta = b
                    .metadata(i)
                    .map(|(a, v)| (a.to_string(), v.to_string()))
                    .collect();
                es.push((ts, String::from_utf8_lossy(b.line(i)).into_owned(), meta));
            }
            bound = c.peek_bound();
        }
        assert_eq!(c.peek_bound(), None);
        if !es.is_empty() {
            out.push((labels, es));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

pub const ALL_COLUMNS: Columns = Columns {
    lines: true,
    metadata: true,
};
