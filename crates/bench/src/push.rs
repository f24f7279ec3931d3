//! Pushing the data set as Promtail does: each client owns a share of the streams, sends
//! its entries in time order in snappy-compressed protobuf batches of about
//! `batch_bytes` of lines, one request in flight per client, several clients at once.
//!
//! Requests are built before the clock starts, so the figures are the server's work,
//! not the generator's.

use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::push::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};

use crate::dataset::{DataSet, Entries};

/// One encoded request.
pub struct Request {
    pub body: Vec<u8>,
    pub lines: usize,
    /// Sum of the line lengths.
    pub raw_bytes: usize,
}

/// What was sent: the requests of each client.
pub struct Plan {
    pub clients: Vec<Vec<Request>>,
    pub lines: usize,
    /// Sum of the line lengths.
    pub raw_bytes: u64,
    /// Bytes of request bodies (snappy protobuf).
    pub body_bytes: u64,
}

/// Builds every client's requests (uses both cores: streams are generated in parallel).
pub fn plan(ds: &DataSet, clients: usize, batch_bytes: usize) -> Plan {
    let clients = clients.clamp(1, ds.streams.len());
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_client: Vec<Vec<Request>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..clients)
                        .step_by(threads)
                        .map(|c| (c, client_requests(ds, c, clients, batch_bytes)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Vec<Request>)> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|(c, _)| *c);
        all.into_iter().map(|(_, r)| r).collect()
    });
    let lines = per_client.iter().flatten().map(|r| r.lines).sum();
    let raw_bytes = per_client
        .iter()
        .flatten()
        .map(|r| r.raw_bytes as u64)
        .sum();
    let body_bytes = per_client
        .iter()
        .flatten()
        .map(|r| r.body.len() as u64)
        .sum();
    Plan {
        clients: per_client,
        lines,
        raw_bytes,
        body_bytes,
    }
}

/// The requests of client `c`: streams `c, c + clients, ...`, merged in time order.
fn client_requests(ds: &DataSet, c: usize, clients: usize, batch_bytes: usize) -> Vec<Request> {
    let ids: Vec<usize> = (c..ds.streams.len()).step_by(clients).collect();
    let streams: Vec<Entries> = ids.iter().map(|&i| ds.stream(i)).collect();
    let labels: Vec<String> = ids.iter().map(|&i| ds.streams[i].labels()).collect();
    // Every entry as (ts, stream, index), in time order as an agent reads them.
    let mut order: Vec<(i64, u32, u32)> = streams
        .iter()
        .enumerate()
        .flat_map(|(s, e)| {
            e.timestamps
                .iter()
                .enumerate()
                .map(move |(k, &t)| (t, s as u32, k as u32))
        })
        .collect();
    order.sort_unstable();
    let mut out = Vec::new();
    let mut batch: Vec<Vec<EntryAdapter>> = vec![Vec::new(); streams.len()];
    let (mut bytes, mut lines) = (0usize, 0usize);
    let mut flush = |batch: &mut Vec<Vec<EntryAdapter>>, lines: &mut usize, bytes: &mut usize| {
        let req = PushRequest {
            streams: batch
                .iter_mut()
                .enumerate()
                .filter(|(_, e)| !e.is_empty())
                .map(|(s, e)| StreamAdapter {
                    labels: labels[s].clone(),
                    entries: std::mem::take(e),
                    hash: 0,
                })
                .collect(),
        };
        out.push(Request {
            body: protocol::push::encode_snappy(&req),
            lines: *lines,
            raw_bytes: *bytes,
        });
        *lines = 0;
        *bytes = 0;
    };
    for (ts, s, k) in order {
        let line = streams[s as usize].line(k as usize);
        batch[s as usize].push(EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(ts)),
            line: line.to_string(),
            structured_metadata: Vec::new(),
        });
        bytes += line.len();
        lines += 1;
        if bytes >= batch_bytes {
            flush(&mut batch, &mut lines, &mut bytes);
        }
    }
    if lines > 0 {
        flush(&mut batch, &mut lines, &mut bytes);
    }
    out
}

/// How the push went.
#[derive(Debug, Clone, Copy)]
pub struct Pushed {
    pub elapsed: Duration,
    pub requests: usize,
    /// Requests answered 429 or 503 and sent again.
    pub retries: usize,
}

/// Sends every client's requests, clients in parallel; fails on any answer but 204
/// (429 and 503 are retried after a pause, as agents do).
pub fn send(url: &str, plan: &Plan) -> anyhow::Result<Pushed> {
    let start = Instant::now();
    let results: Vec<anyhow::Result<(usize, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = plan
            .clients
            .iter()
            .map(|reqs| s.spawn(move || send_all(url, reqs)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a push thread panicked")))
            })
            .collect()
    });
    let (mut requests, mut retries) = (0, 0);
    for r in results {
        let (n, rt) = r?;
        requests += n;
        retries += rt;
    }
    Ok(Pushed {
        elapsed: start.elapsed(),
        requests,
        retries,
    })
}

fn send_all(url: &str, reqs: &[Request]) -> anyhow::Result<(usize, usize)> {
    let agent = crate::http::agent();
    let mut retries = 0;
    for r in reqs {
        let mut pause = Duration::from_millis(50);
        loop {
            let resp = agent
                .post(url)
                .header("Content-Type", "application/x-protobuf")
                .send(&r.body[..])
                .with_context(|| format!("pushing to {url}"))?;
            let status = resp.status().as_u16();
            if status == 204 {
                break;
            }
            let text = crate::http::text(resp).unwrap_or_default();
            anyhow::ensure!(
                (status == 429 || status == 503) && retries < 1000,
                "push answered {status}: {text}"
            );
            retries += 1;
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
    Ok((reqs.len(), retries))
}
