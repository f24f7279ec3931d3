//! The push path, the hottest code in the product: one request of 1000 lines (10 streams
//! of 100, structured metadata on every line) through the real handler — snappy, protobuf
//! decoding in place, the label cache, Loki's limits, `detected_level`, and the append to
//! a real store (WAL without fsync, so the figure is CPU, not the disk).
//!
//! `cargo bench -p kiroku-server --bench push`; the per-line time times 10^6 is the
//! CPU-seconds per million lines (target: at most 1 s including the store). A second
//! function leaves the store out, to tell the server's share from the store's.

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderMap;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiroku_server::app::App;
use kiroku_server::config::{ByteSize, Config, Period};
use protocol::push::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, encode_snappy};

const STREAMS: usize = 10;
const LINES_PER_STREAM: usize = 100;

fn body(round: u64) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    let req = PushRequest {
        streams: (0..STREAMS)
            .map(|s| StreamAdapter {
                labels: format!(r#"{{namespace="shop", app="api-{s}", pod="api-{s}-7f9c", container="api"}}"#),
                entries: (0..LINES_PER_STREAM)
                    .map(|i| {
                        let mut e = EntryAdapter::new(
                            now + (round as i64) * 1_000_000 + i as i64,
                            format!(
                                r#"{{"level":"info","msg":"request done","method":"GET","path":"/api/v1/orders/{i}","status":200,"duration_ms":{}.{:03},"bytes":{}}}"#,
                                i % 97,
                                i * 7 % 1000,
                                i * 131
                            ),
                        );
                        e.structured_metadata = vec![LabelPairAdapter {
                            name: "trace_id".into(),
                            value: format!("{:016x}", round * 1000 + i as u64),
                        }];
                        e
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
    };
    encode_snappy(&req)
}

fn push(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        retention: Period(0),
        max_request_bytes: ByteSize(64 << 20),
        fsync: false,
        ..Default::default()
    };
    let mut sc = store::StoreConfig::new(dir.path());
    sc.fsync = false;
    sc.retention = None;
    let app = Arc::new(App::new(config, store::Store::open(sc).unwrap()));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let bodies: Vec<bytes::Bytes> = (0..64).map(|r| body(r).into()).collect();
    let mut g = c.benchmark_group("push");
    g.throughput(Throughput::Elements((STREAMS * LINES_PER_STREAM) as u64));
    let mut i = 0;
    g.bench_function("protobuf_1000_lines", |b| {
        b.iter(|| {
            let body = bodies[i % bodies.len()].clone();
            i += 1;
            rt.block_on(kiroku_server::push::push_body(
                &app,
                &HeaderMap::new(),
                Body::from(body),
            ))
            .unwrap();
        })
    });
    // The server's share alone: everything but the store.
    g.bench_function("protobuf_1000_lines_without_store", |b| {
        b.iter(|| {
            let body = bodies[i % bodies.len()].clone();
            i += 1;
            let n = kiroku_server::push::prepare_without_storing(&app, &HeaderMap::new(), body)
                .unwrap();
            assert_eq!(n, STREAMS * LINES_PER_STREAM);
        })
    });
    g.finish();
}

criterion_group!(benches, push);
criterion_main!(benches);
