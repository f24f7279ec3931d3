//! The log pipeline stage by stage over real lines: the JSON API logs, logfmt worker logs
//! and nginx access logs of the conformance data set, and loghub's OpenSSH and HDFS logs.
//! Each benchmark runs one pipeline over a batch of lines; divide by the line count
//! (printed once per group) for ns/line. `detect_level` times the level-word scan of the
//! push path over every loghub sample:
//! `cargo bench -p kiroku-logql --bench pipeline`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiroku_logql::ast::{Expr, LogExpr};
use kiroku_logql::pipeline::Pipeline;
use protocol::Labels;

/// Counts allocations, to report allocations per line next to the timings.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Lines {
    labels: Labels,
    lines: Vec<String>,
    meta: Vec<Vec<(String, String)>>,
}

fn recorded(app: &str) -> Lines {
    let data = conformance::push_data().expect("the recorded data set loads");
    let mut lines = Vec::new();
    let mut meta = Vec::new();
    let mut labels = Labels::new();
    for s in data
        .iter()
        .filter(|s| s.labels.iter().any(|(n, v)| n == "app" && v == app))
    {
        labels = Labels::from_pairs(s.labels.iter().cloned());
        for e in &s.entries {
            lines.push(e.line.clone());
            meta.push(e.metadata.clone());
        }
    }
    Lines {
        labels,
        lines,
        meta,
    }
}

fn loghub(file: &str, app: &str) -> Lines {
    let path = conformance::data_dir().join("../loghub").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    Lines {
        labels: Labels::from_pairs([("app", app)]),
        meta: vec![Vec::new(); lines.len()],
        lines,
    }
}

fn log_expr(q: &str) -> LogExpr {
    match kiroku_logql::parse(q) {
        Ok(Expr::Log(l)) => l,
        other => panic!("{q}: {other:?}"),
    }
}

fn bench(c: &mut Criterion, group: &str, data: &Lines, queries: &[(&str, &str)]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(data.lines.len() as u64));
    for (name, q) in queries {
        let p = Pipeline::new(&log_expr(q).pipeline, None).expect("pipeline compiles");
        let mut sp = p.for_stream(&data.labels);
        let mut run = || {
            let mut kept = 0usize;
            for (line, meta) in data.lines.iter().zip(&data.meta) {
                let m = meta.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                if let Some(r) = sp.process(0, line.as_bytes(), m) {
                    kept += r.line.len() + r.labels.len();
                }
            }
            kept
        };
        // Warm the buffers, then count what one more pass allocates.
        run();
        let before = ALLOCS.load(Ordering::Relaxed);
        black_box(run());
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        println!(
            "{group}/{name}: {:.2} allocations/line",
            allocs as f64 / data.lines.len() as f64
        );
        g.bench_function(*name, |b| b.iter(|| black_box(run())));
    }
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let api = recorded("api");
    bench(
        c,
        "json_api",
        &api,
        &[
            ("none", r#"{app="api"}"#),
            ("contains", r#"{app="api"} |= "timeout""#),
            ("contains_or", r#"{app="api"} |= "timeout" or "refused""#),
            ("regex_ci", r#"{app="api"} |~ "(?i)TIMEOUT""#),
            ("regex", r#"{app="api"} |~ "status\": 5[0-9]{2}""#),
            ("json", r#"{app="api"} | json"#),
            (
                "json_params",
                r#"{app="api"} | json s="status", u="user.name""#,
            ),
            ("json_filter", r#"{app="api"} | json | status >= 500"#),
            (
                "json_line_format",
                r#"{app="api"} | json | line_format "{{.level}} {{.method}} {{.path}} {{.status}}""#,
            ),
            (
                "json_line_format_funcs",
                r#"{app="api"} | json | line_format "{{ .msg | ToUpper }} {{ .duration_ms | float64 | printf \"%.1f\" }}""#,
            ),
            (
                "json_label_format",
                r#"{app="api"} | json | label_format lvl=level, code="{{.status}}""#,
            ),
            ("json_keep", r#"{app="api"} | json | keep level, status"#),
            ("metadata_filter", r#"{app="api"} | pod_uid="7f1c-0003""#),
        ],
    );
    let worker = recorded("worker");
    bench(
        c,
        "logfmt_worker",
        &worker,
        &[
            ("logfmt", r#"{app="worker"} | logfmt"#),
            (
                "logfmt_duration",
                r#"{app="worker"} | logfmt | duration > 10s"#,
            ),
            ("logfmt_bytes", r#"{app="worker"} | logfmt | size > 1MB"#),
            (
                "logfmt_params",
                r#"{app="worker"} | logfmt lvl="level", d="duration""#,
            ),
        ],
    );
    let web = recorded("web");
    bench(
        c,
        "nginx",
        &web,
        &[
            (
                "pattern",
                r#"{app="web"} | pattern "<ip> - - [<_>] \"<method> <path> <_>\" <status> <size> \"<_>\" \"<agent>\" <latency>""#,
            ),
            (
                "regexp",
                r#"{app="web"} | regexp "^(?P<ip>\\S+) .* \"(?P<method>\\w+) (?P<path>\\S+) HTTP/1.1\" (?P<status>\\d{3})""#,
            ),
            (
                "pattern_filter",
                r#"{app="web"} |> "<_> \"GET <_> HTTP/1.1\" 500 <_>""#,
            ),
            ("ip_filter", r#"{app="web"} |= ip("192.168.0.0/16")"#),
        ],
    );
    let legacy = recorded("legacy");
    bench(
        c,
        "java_ansi",
        &legacy,
        &[("decolorize", r#"{app="legacy"} | decolorize"#)],
    );
    let ssh = loghub("OpenSSH_2k.log", "openssh");
    bench(
        c,
        "loghub_openssh",
        &ssh,
        &[
            (
                "contains_chain",
                r#"{app="openssh"} |= "Failed password" != "invalid user""#,
            ),
            ("regex_ip", r#"{app="openssh"} |~ "from [0-9.]+ port""#),
        ],
    );
    let hdfs = loghub("HDFS_2k.log", "hdfs");
    bench(
        c,
        "loghub_hdfs",
        &hdfs,
        &[
            ("regex", r#"{app="hdfs"} |~ "blk_-[0-9]+""#),
            (
                "line_format_regex",
                r#"{app="hdfs"} | line_format "{{ regexReplaceAll \"blk_-?[0-9]+\" __line__ \"BLK\" }}""#,
            ),
        ],
    );
}

/// The level-word scan that runs on every pushed plain-text line, over all loghub samples.
fn detect_level(c: &mut Criterion) {
    let dir = conformance::data_dir().join("../loghub");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("testdata/loghub lists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "log") {
            let text = std::fs::read_to_string(&path).expect("a loghub sample reads");
            lines.extend(text.lines().map(str::to_string));
        }
    }
    let mut g = c.benchmark_group("detect_level");
    g.throughput(Throughput::Bytes(
        lines.iter().map(|l| l.len() as u64).sum(),
    ));
    g.bench_function("keyword_level", |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| kiroku_logql::detect::keyword_level(l.as_bytes()).len())
                .sum::<usize>()
        })
    });
    g.bench_function("plain_level", |b| {
        b.iter(|| {
            lines
                .iter()
                .map(|l| kiroku_logql::detect::plain_level(l.as_bytes()).map_or(0, str::len))
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(500));
    targets = pipeline, detect_level
}
criterion_main!(benches);
