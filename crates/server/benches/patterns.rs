//! Pattern mining, the cost of a `/loki/api/v1/patterns` query per line: loghub's OpenSSH,
//! HDFS, Linux and Apache samples (8,000 real lines, four streams) from memory through
//! the tokenizer, the miner and the answer's series, nothing sampled.
//!
//! `cargo bench -p kiroku-server --bench patterns`; the per-line time times 200,000 (the
//! per-query mining budget) is the mining part of the slowest patterns query.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiroku_server::patterns::{MAX_MINED_LINES, Request, mine, series};
use logql::{MemoryEntry, MemorySource};
use protocol::Labels;

const NS: i64 = 1_000_000_000;

fn source() -> (MemorySource, u64) {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/loghub");
    let mut src = MemorySource::new();
    let mut lines = 0;
    for name in ["OpenSSH", "HDFS", "Linux", "Apache"] {
        let text = std::fs::read_to_string(format!("{root}/{name}_2k.log")).unwrap();
        let labels = Labels::from_pairs([("app", name)]);
        let entries: Vec<MemoryEntry> = text
            .lines()
            .enumerate()
            .map(|(i, l)| MemoryEntry {
                ts: i as i64 * NS,
                line: l.to_string(),
                metadata: vec![(
                    "detected_level".into(),
                    logql::detect::detected_level(&labels, &[], l).into_owned(),
                )],
            })
            .collect();
        lines += entries.len() as u64;
        src.push(labels, entries);
    }
    (src, lines)
}

fn patterns(c: &mut Criterion) {
    let (src, lines) = source();
    let req = Request {
        matchers: Vec::new(),
        start: 0,
        end: 3600 * NS,
        step: 60 * NS,
    };
    let mut g = c.benchmark_group("patterns");
    g.throughput(Throughput::Elements(lines));
    g.bench_function("mine_loghub_8k_lines", |b| {
        b.iter(|| {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mined = mine(&src, &req, lines, MAX_MINED_LINES, deadline).unwrap();
            series(&req, mined)
        })
    });
    g.finish();
}

criterion_group!(benches, patterns);
criterion_main!(benches);
