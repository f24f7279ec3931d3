//! The durability promise: a push answered 204 survives `kill -9`. Several clients push
//! concurrently; the server is killed mid-load, restarted on the same data, and every
//! acknowledged entry must be there.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Server, eventually, now_ns, request};
use serde_json::json;

const S: i64 = 1_000_000_000;
const WORKERS: usize = 4;
const LINES_PER_PUSH: usize = 20;
/// Kill once this many pushes are acknowledged (bounded, so each worker stays under the
/// query limit when reading back).
const ACKS_BEFORE_KILL: usize = 120;
/// A worker stops by itself after this many pushes.
const MAX_PUSHES_PER_WORKER: usize = 200;

#[test]
fn every_acknowledged_entry_survives_kill_9() {
    let mut srv = Server::start(&[]);
    let addr = srv.addr.clone();
    let t0 = now_ns() - 600 * S;
    let acked: Arc<Mutex<Vec<BTreeSet<String>>>> =
        Arc::new(Mutex::new(vec![BTreeSet::new(); WORKERS]));
    let acks = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let (addr, acked, acks, stop) = (addr.clone(), acked.clone(), acks.clone(), stop.clone());
            std::thread::spawn(move || {
                for p in 0..MAX_PUSHES_PER_WORKER {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let lines: Vec<String> = (0..LINES_PER_PUSH).map(|i| format!("w{w} p{p} i{i}")).collect();
                    let values: Vec<_> = lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| json!([(t0 + (p * LINES_PER_PUSH + i) as i64).to_string(), l]))
                        .collect();
                    let body = json!({"streams": [{"stream": {"app": "crash", "worker": w.to_string()}, "values": values}]});
                    match request(
                        &addr,
                        "POST",
                        "/loki/api/v1/push",
                        &[("Content-Type", "application/json")],
                        body.to_string().as_bytes(),
                    ) {
                        Ok(r) if r.status == 204 => {
                            acked.lock().unwrap()[w].extend(lines);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        // Killed mid-request, or refused after the kill: not acknowledged.
                        _ => break,
                    }
                }
            })
        })
        .collect();

    eventually(Duration::from_secs(60), "pushes to be acknowledged", || {
        (acks.load(Ordering::Relaxed) >= ACKS_BEFORE_KILL).then_some(())
    });
    srv.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let total: usize = acked.iter().map(BTreeSet::len).sum();
    assert!(total >= ACKS_BEFORE_KILL * LINES_PER_PUSH);

    srv.restart();
    let end = t0 + (MAX_PUSHES_PER_WORKER * LINES_PER_PUSH) as i64 + S;
    for (w, want) in acked.iter().enumerate() {
        let r = srv.get_query(
            "/loki/api/v1/query_range",
            &[
                ("query", &format!(r#"{{app="crash", worker="{w}"}}"#)),
                ("start", &t0.to_string()),
                ("end", &end.to_string()),
                ("limit", "5000"),
            ],
            &[],
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let got: BTreeSet<String> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["values"].as_array().unwrap().iter())
            .map(|e| e[1].as_str().unwrap().to_string())
            .collect();
        let missing: Vec<&String> = want.difference(&got).collect();
        assert!(
            missing.is_empty(),
            "worker {w}: {} of {} acknowledged entries lost after kill -9, e.g. {:?}",
            missing.len(),
            want.len(),
            &missing[..missing.len().min(5)]
        );
    }
}
