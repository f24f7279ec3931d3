//! The store's benchmarks, on loghub lines with fresh timestamps and varied numbers:
//!
//! - `ingest/append_flush`: CPU per million lines through append (WAL, fsync on) and flush
//!   to parts; also prints CPU-s per million lines and bytes on disk per line.
//! - `query/needle`: `|= "<unique token>"` over all streams of 2M lines in 100 streams.
//! - `query/count_per_minute`: timestamps only, every entry (`sum(rate(...[1m]))`'s input).
//! - `query/bytes_per_minute`: timestamps and lengths, no lines (`bytes_over_time`).
//! - `lines/split` and `lines/join`: lines into templates and variables and back (before
//!   and after zstd), 1,000 varied lines of each loghub system as one block each.
//!
//! `KIROKU_BENCH_LINES` changes the query data set's size (default 2,000,000),
//! `KIROKU_BENCH_LEVEL` the zstd level of lines.

mod data;

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use kiroku_store::{Store, StoreConfig, WriteEntry, WriteStream};
use logql::ast::{MatchOp, Matcher};
use logql::{Columns, Direction, RequiredText, Select, Source};

const NEEDLE: &str = "q7xk2vz9wm";
const MINUTE: i64 = 60_000_000_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// User + system CPU time of this process (all threads), from /proc (10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Pushes `streams` as an agent would: requests of `per_push` entries from each stream.
fn ingest(store: &Store, rt: &tokio::runtime::Runtime, streams: &[data::Stream], per_push: usize) {
    let n = streams[0].entries.len();
    let mut at = 0;
    while at < n {
        let end = (at + per_push).min(n);
        let entries: Vec<Vec<WriteEntry<'_>>> = streams
            .iter()
            .map(|s| {
                s.entries[at..end]
                    .iter()
                    .map(|(ts, line)| WriteEntry {
                        ts: *ts,
                        line: line.as_bytes(),
                        metadata: &[],
                    })
                    .collect()
            })
            .collect();
        let ws: Vec<WriteStream<'_>> = streams
            .iter()
            .zip(&entries)
            .map(|(s, e)| WriteStream {
                labels: &s.labels,
                entries: e,
            })
            .collect();
        let report = rt.block_on(store.append("fake", &ws)).unwrap();
        assert!(
            report.rejected.is_empty(),
            "{} entries refused, the first: {:?}",
            report.rejected.len(),
            report.rejected[0]
        );
        at = end;
    }
}

fn config(dir: &std::path::Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.retention = None;
    // Measure the store, not the machine's free space.
    c.retention_max_disk = kiroku_store::DiskBudget::Unlimited;
    if let Some(l) = std::env::var("KIROKU_BENCH_LEVEL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.compression_level = l;
    }
    c
}

fn bench_ingest(c: &mut Criterion) {
    let lines = 200_000;
    let streams = data::generate(lines, 100, now() - 3_600_000_000_000, 18_000_000_000 / 1000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let raw: usize = streams
        .iter()
        .flat_map(|s| s.entries.iter().map(|e| e.1.len()))
        .sum();
    {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(config(dir.path())).unwrap();
        let cpu = cpu_seconds();
        let t = Instant::now();
        ingest(&store, &rt, &streams, 10);
        store.flush().unwrap();
        let (cpu, wall) = (cpu_seconds() - cpu, t.elapsed());
        let disk = store.disk_usage();
        eprintln!(
            "ingest: {lines} lines, {:.0} raw bytes/line: {:.3} CPU-s per million lines ({:.2} s wall), {:.1} bytes/line on disk after flush",
            raw as f64 / lines as f64,
            cpu * 1e6 / lines as f64,
            wall.as_secs_f64(),
            disk as f64 / lines as f64
        );
        let mut cols = [0u64; 5];
        for p in part_files(&dir.path().join("parts")) {
            for (i, v) in column_sizes(&p).into_iter().enumerate() {
                cols[i] += v;
            }
        }
        eprintln!(
            "ingest: bytes/line by column: timestamps {:.2}, lengths {:.2}, lines {:.2}, metadata {:.2}, filters {:.2}",
            cols[0] as f64 / lines as f64,
            cols[1] as f64 / lines as f64,
            cols[2] as f64 / lines as f64,
            cols[3] as f64 / lines as f64,
            cols[4] as f64 / lines as f64
        );
        store.close(Duration::from_secs(60)).unwrap();
    }
    if std::env::var_os("KIROKU_BENCH_ONESHOT").is_some() {
        return;
    }
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10);
    g.throughput(criterion::Throughput::Elements(lines as u64));
    g.bench_function("append_flush", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = Store::open(config(dir.path())).unwrap();
                let t = Instant::now();
                ingest(&store, &rt, &streams, 10);
                store.flush().unwrap();
                total += t.elapsed();
                store.close(Duration::from_secs(60)).unwrap();
            }
            total
        })
    });
    g.finish();
}

fn part_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(part_files(&p));
            } else if p.extension().is_some_and(|x| x == "kpart") {
                out.push(p);
            }
        }
    }
    out
}

/// Bytes of each column (timestamps, lengths, lines, metadata, filters) in a part file.
fn column_sizes(path: &std::path::Path) -> [u64; 5] {
    use kiroku_store::part::index::{FOOTER_LEN, Footer};
    let bytes = std::fs::read(path).unwrap();
    let footer = Footer::decode(&bytes[bytes.len() - FOOTER_LEN..], bytes.len() as u64).unwrap();
    let start = footer.index_offset as usize;
    let index = footer
        .decode_index(&bytes[start..start + footer.index_len as usize])
        .unwrap();
    let mut s = [0u64; 5];
    for b in &index.blocks {
        s[0] += u64::from(b.columns.ts);
        s[1] += u64::from(b.columns.lengths);
        s[2] += u64::from(b.columns.lines);
        s[3] += u64::from(b.columns.meta);
        s[4] += u64::from(b.filter_len);
    }
    s
}

fn all() -> Vec<Matcher> {
    vec![Matcher::new("app", MatchOp::Re, ".+").unwrap()]
}

/// Reads every entry of the selection; `f` sees each batch.
fn scan(store: &Store, sel: &Select<'_>, mut f: impl FnMut(&logql::Batch)) {
    let r = store.reader(&["fake".to_string()]);
    for mut c in r.select(sel).unwrap() {
        while let Some(b) = c.next_batch().unwrap() {
            f(b);
        }
    }
}

fn bench_queries(c: &mut Criterion) {
    let lines: usize = std::env::var("KIROKU_BENCH_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let start = now() - 6 * 3_600_000_000_000;
    let mut streams = data::generate(
        lines,
        100,
        start,
        6 * 3_600_000_000_000 / (lines as i64 / 100),
    );
    let victim = &mut streams[57].entries[lines / 100 / 3].1;
    victim.push_str(&format!(" request_id={NEEDLE}"));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    {
        let store = Store::open(config(dir.path())).unwrap();
        let cpu = cpu_seconds();
        ingest(&store, &rt, &streams, 100);
        store.flush().unwrap();
        store.maintain();
        let cpu = cpu_seconds() - cpu;
        let m = store.metrics();
        eprintln!(
            "query data: {lines} lines in {} parts, {:.1} bytes/line on disk, ingest {:.3} CPU-s per million lines",
            m.parts,
            store.disk_usage() as f64 / lines as f64,
            cpu * 1e6 / lines as f64
        );
        let mut cols = [0u64; 5];
        for p in part_files(&dir.path().join("parts")) {
            for (i, v) in column_sizes(&p).into_iter().enumerate() {
                cols[i] += v;
            }
        }
        let per = |i: usize| cols[i] as f64 / lines as f64;
        eprintln!(
            "query data: bytes/line by column: timestamps {:.2}, lengths {:.2}, lines {:.2}, metadata {:.2}, filters {:.2}",
            per(0),
            per(1),
            per(2),
            per(3),
            per(4)
        );
        store.close(Duration::from_secs(60)).unwrap();
    }
    drop(streams);
    if std::env::var_os("KIROKU_BENCH_ONESHOT").is_some() {
        return;
    }
    let t = Instant::now();
    let store = Store::open(config(dir.path())).unwrap();
    eprintln!("open with {lines} lines in parts: {:?}", t.elapsed());
    let matchers = all();
    let end = now() + 3 * 3_600_000_000_000;
    let mut g = c.benchmark_group("query");
    let needle = RequiredText::Literal {
        text: NEEDLE.into(),
        case_insensitive: false,
    };
    let finder = memchr::memmem::Finder::new(NEEDLE);
    let sel = Select {
        matchers: &matchers,
        start,
        end,
        direction: Direction::Backward,
        columns: Columns {
            lines: true,
            metadata: false,
        },
        required: Some(&needle),
        fields: None,
    };
    let mut found = 0;
    scan(&store, &sel, |b| {
        found += (0..b.len())
            .filter(|&i| finder.find(b.line(i)).is_some())
            .count()
    });
    assert_eq!(found, 1, "the needle is in exactly one line");
    g.bench_function("needle", |b| {
        b.iter(|| {
            let mut n = 0;
            scan(&store, &sel, |b| {
                n += (0..b.len())
                    .filter(|&i| finder.find(b.line(i)).is_some())
                    .count()
            });
            n
        })
    });
    let ts_only = Select {
        matchers: &matchers,
        start,
        end,
        direction: Direction::Forward,
        columns: Columns {
            lines: false,
            metadata: false,
        },
        required: None,
        fields: None,
    };
    let minutes = ((end - start) / MINUTE + 1) as usize;
    let mut counts = vec![0u64; minutes];
    g.bench_function("count_per_minute", |b| {
        b.iter(|| {
            counts.iter_mut().for_each(|c| *c = 0);
            scan(&store, &ts_only, |b| {
                // Sorted: one division per minute, not per entry.
                let mut i = 0;
                while i < b.len() {
                    let m = (b.timestamps[i] - start) / MINUTE;
                    let next = start + (m + 1) * MINUTE;
                    let j = i + b.timestamps[i..].partition_point(|&t| t < next);
                    counts[m as usize] += (j - i) as u64;
                    i = j;
                }
            });
            counts.iter().sum::<u64>()
        })
    });
    // (All zero when a filter left `count_per_minute` out.)
    let counted = counts.iter().sum::<u64>();
    assert!(
        counted == 0 || counted == lines as u64 / 100 * 100,
        "{counted} entries counted"
    );
    g.bench_function("bytes_per_minute", |b| {
        b.iter(|| {
            counts.iter_mut().for_each(|c| *c = 0);
            scan(&store, &ts_only, |b| {
                let mut i = 0;
                while i < b.len() {
                    let m = (b.timestamps[i] - start) / MINUTE;
                    let next = start + (m + 1) * MINUTE;
                    let j = i + b.timestamps[i..].partition_point(|&t| t < next);
                    counts[m as usize] += b.line_lengths[i..j]
                        .iter()
                        .map(|&l| u64::from(l))
                        .sum::<u64>();
                    i = j;
                }
            });
            counts.iter().sum::<u64>()
        })
    });
    g.finish();
}

/// Reads of entries still in the heads (not yet written out), with their lines and
/// metadata, as Grafana's log and volume queries over the last minutes make them: each
/// read copies the streams' active chunks and finds the `detected_level` of their lines.
fn bench_heads(c: &mut Criterion) {
    let lines = 100_000;
    let start = now() - 3_600_000_000_000;
    let streams = data::generate(lines, 100, start, 3_600_000_000_000 / (lines as i64 / 100));
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = Store::open(config(dir.path())).unwrap();
    ingest(&store, &rt, &streams, 100);
    assert_eq!(store.metrics().parts, 0, "the entries are in the heads");
    let matchers = all();
    let sel = Select {
        matchers: &matchers,
        start,
        end: now() + 3_600_000_000_000,
        direction: Direction::Backward,
        columns: Columns {
            lines: true,
            metadata: true,
        },
        required: None,
        fields: None,
    };
    let mut g = c.benchmark_group("heads");
    g.bench_function("all_columns", |b| {
        b.iter(|| {
            let mut n = 0;
            scan(&store, &sel, |b| n += b.metadata_ids.len());
            assert_eq!(n, lines);
            n
        })
    });
    g.finish();
}

fn bench_lines(c: &mut Criterion) {
    use kiroku_store::templated::{TemplateDecoder, TemplateEncoder, TemplateTable, Templates};
    let mut rng = data::Rng::new(7);
    let mut line = String::new();
    // Per system: the lines concatenated, their offsets.
    let blocks: Vec<(Vec<u8>, Vec<u32>)> = data::loghub()
        .iter()
        .map(|lines| {
            let (mut buf, mut offsets) = (Vec::new(), vec![0u32]);
            for l in lines.iter().cycle().take(1000) {
                data::vary(l, &mut rng, &mut line);
                buf.extend_from_slice(line.as_bytes());
                offsets.push(buf.len() as u32);
            }
            (buf, offsets)
        })
        .collect();
    let mut enc = TemplateEncoder::default();
    // One table for all, as one part's blocks share one.
    let mut table = TemplateTable::default();
    let encoded: Vec<Vec<u8>> = blocks
        .iter()
        .map(|(buf, offsets)| {
            let mut out = Vec::new();
            enc.encode(buf, offsets, &mut table, &mut out);
            out.extend_from_slice(&[0; 16]);
            out
        })
        .collect();
    let mut raw = Vec::new();
    table.encode(&mut raw);
    let templates = Templates::decode(raw).unwrap();
    let mut g = c.benchmark_group("lines");
    g.bench_function("split", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for (buf, offsets) in &blocks {
                out.clear();
                enc.encode(buf, offsets, &mut table, &mut out);
            }
            out.len()
        })
    });
    // The text filter of each block, from its templates and runs of digits (each block's
    // split kept in an encoder of its own).
    let split: Vec<TemplateEncoder> = blocks
        .iter()
        .map(|(buf, offsets)| {
            let mut e = TemplateEncoder::default();
            e.encode(buf, offsets, &mut table, &mut Vec::new());
            e
        })
        .collect();
    g.bench_function("filter", |b| {
        let mut filter = kiroku_store::filter::FilterBuilder::new();
        let mut out = Vec::new();
        b.iter(|| {
            for (e, (buf, _)) in split.iter().zip(&blocks) {
                out.clear();
                filter.clear();
                e.add_to_filter(buf, &mut filter);
                filter.finish_into(&mut out);
            }
            out.len()
        })
    });
    let mut dec = TemplateDecoder::default();
    g.bench_function("join", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for (e, (buf, _)) in encoded.iter().zip(&blocks) {
                out.clear();
                dec.decode(e, e.len() - 16, buf.len(), Some(&templates), &mut out)
                    .unwrap();
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_lines,
    bench_ingest,
    bench_heads,
    bench_queries
);
criterion_main!(benches);
