//! The metric query shapes the issue sets targets for, over a synthetic in-memory data
//! set of about a million entries (JSON API logs and logfmt worker logs, 24 streams, one
//! hour), so changes to the evaluator can be measured and profiled:
//! `cargo bench -p kiroku-logql --bench engine`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kiroku_logql::{Direction, Engine, Limits, MemoryEntry, MemorySource, RangeQuery};
use protocol::Labels;

const START: i64 = 1_795_168_800_000_000_000;
const HOUR: i64 = 3_600_000_000_000;
const ENTRIES: usize = 1_000_000;

/// A small deterministic generator (xorshift), so runs compare.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

fn data() -> MemorySource {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut src = MemorySource::new();
    let streams = 24;
    let per = ENTRIES / streams;
    let levels = ["info", "info", "info", "debug", "warn", "error"];
    let paths = [
        "/login",
        "/api/v1/users",
        "/api/v1/search",
        "/healthz",
        "/static/app.js",
    ];
    for s in 0..streams {
        let json = s % 2 == 0;
        let app = if json { "api" } else { "worker" };
        let labels = Labels::from_pairs([
            ("app", app.to_string()),
            ("namespace", "shop".to_string()),
            ("pod", format!("{app}-{s}")),
            ("service_name", app.to_string()),
        ]);
        let mut entries = Vec::with_capacity(per);
        for i in 0..per {
            let ts = START + (i as i64) * (HOUR / per as i64) + (rng.next() % 1000) as i64;
            let level = rng.pick(&levels);
            let line = if json {
                format!(
                    r#"{{"level": "{level}", "msg": "request handled", "method": "GET", "path": "{}", "status": {}, "duration_ms": {}.{}, "bytes": {}}}"#,
                    rng.pick(&paths),
                    [200, 200, 200, 301, 404, 500, 503][(rng.next() % 7) as usize],
                    rng.next() % 3000,
                    rng.next() % 1000,
                    rng.next() % 200_000
                )
            } else {
                format!(
                    "ts={ts} level={level} msg=\"job done\" queue={} attempt={} duration={}ms size={}KB",
                    rng.pick(&["emails", "reports", "thumbnails"]),
                    rng.next() % 5,
                    rng.next() % 90_000,
                    rng.next() % 5000
                )
            };
            let metadata = vec![("detected_level".to_string(), level.to_string())];
            entries.push(MemoryEntry { ts, line, metadata });
        }
        src.push(labels, entries);
    }
    src
}

fn bench(c: &mut Criterion) {
    let src = data();
    let engine = Engine::new(Limits::default());
    let queries = [
        (
            "sum_rate_all_streams",
            r#"sum(rate({namespace="shop"}[1m]))"#,
        ),
        (
            "sum_by_level_json_count",
            r#"sum by (level) (count_over_time({app="api"} | json [1m]))"#,
        ),
        (
            "json_status_filter_count",
            r#"sum(count_over_time({app="api"} | json | status >= 500 [1m]))"#,
        ),
        (
            "quantile_unwrap_duration",
            r#"quantile_over_time(0.99, {app="worker"} | logfmt | unwrap duration(duration) [1m]) by (queue)"#,
        ),
        (
            "topk_bytes_by_pod",
            r#"topk(5, sum by (pod) (bytes_over_time({namespace="shop"}[1m])))"#,
        ),
        (
            "case_insensitive_regex_count",
            r#"sum(count_over_time({namespace="shop"} |~ "(?i)ERROR" [1m]))"#,
        ),
    ];
    let mut group = c.benchmark_group("metric");
    group.sample_size(10);
    for (name, query) in queries {
        let q = RangeQuery {
            query,
            start: START,
            end: START + HOUR,
            step: Some(60_000_000_000),
            interval: None,
            limit: 100,
            direction: Direction::Backward,
            categorize_labels: false,
        };
        if let Err(e) = engine.query_range(&src, &q) {
            eprintln!("skipping {name}: {e}");
            continue;
        }
        group.bench_function(name, |b| {
            b.iter(|| black_box(engine.query_range(&src, &q).ok()));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
