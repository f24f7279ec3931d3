//! From lines to acknowledged pushes: the batcher groups entries by stream into push
//! requests (flushed by size or age) and appends them to the disk buffer; the sender
//! pushes the buffer's head, one batch at a time so each stream stays in order, and on
//! acknowledgement advances the positions file with the batch's marks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use protocol::push::{EntryAdapter, PushRequest, StreamAdapter, Timestamp, encode_snappy};
use tokio::sync::{Notify, mpsc, watch};

use crate::buffer::{Batch, Buffer};
use crate::entry::{Entry, Mark, MarkKey};
use crate::metrics::{ErrorKind, Metrics};
use crate::positions::{ClusterEventsPos, Positions};
use crate::push::{Outcome, Pusher};

/// How often acknowledged positions are written to disk at most.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The buffer shared by the batcher (appends) and the sender (reads and acknowledges).
pub struct Shared {
    pub buffer: Mutex<Buffer>,
    appended: Notify,
    metrics: Arc<Metrics>,
}

impl Shared {
    pub fn new(buffer: Buffer, metrics: Arc<Metrics>) -> Arc<Shared> {
        metrics.buffer_bytes.set(buffer.pending_bytes());
        Arc::new(Shared {
            buffer: Mutex::new(buffer),
            appended: Notify::new(),
            metrics,
        })
    }
}

/// A push request being filled.
struct Pending {
    req: PushRequest,
    index: HashMap<Arc<str>, usize>,
    marks: HashMap<MarkKey, Mark>,
    bytes: u64,
    lines: u32,
    first_at: Option<Instant>,
}

impl Pending {
    fn new() -> Pending {
        Pending {
            req: PushRequest {
                streams: Vec::new(),
            },
            index: HashMap::new(),
            marks: HashMap::new(),
            bytes: 0,
            lines: 0,
            first_at: None,
        }
    }

    fn add(&mut self, e: Entry) {
        self.first_at.get_or_insert_with(Instant::now);
        if let Some(m) = e.mark {
            self.marks.insert(m.key(), m);
        }
        let Entry {
            stream, ts, line, ..
        } = e;
        if ts == MARK_ONLY {
            return;
        }
        self.bytes += (line.len() + stream.metadata_bytes) as u64 + 16;
        self.lines += 1;
        let key: &str = &stream.labels;
        let i = match self.index.get(key) {
            Some(i) => *i,
            None => {
                self.req.streams.push(StreamAdapter {
                    labels: stream.labels.clone(),
                    entries: Vec::new(),
                    hash: 0,
                });
                let i = self.req.streams.len() - 1;
                self.index.insert(Arc::from(key), i);
                i
            }
        };
        self.req.streams[i].entries.push(EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(ts)),
            line,
            structured_metadata: stream.metadata.clone(),
        });
    }

    fn is_empty(&self) -> bool {
        self.first_at.is_none()
    }

    fn take(&mut self) -> Batch {
        let p = std::mem::replace(self, Pending::new());
        Batch {
            marks: p.marks.into_values().collect(),
            lines: p.lines,
            body: if p.lines == 0 {
                Vec::new()
            } else {
                encode_snappy(&p.req)
            },
        }
    }
}

/// Entries with this timestamp carry only a mark (a source moved on without a line, e.g.
/// skipping an unreadable line): nothing is sent for them.
pub const MARK_ONLY: i64 = i64::MIN;

/// Groups entries into batches until `rx` closes, then writes out the last batch.
pub async fn batcher(
    mut rx: mpsc::Receiver<Entry>,
    shared: Arc<Shared>,
    batch_size: u64,
    batch_wait: Duration,
) {
    let mut pending = Pending::new();
    loop {
        let deadline = pending
            .first_at
            .map(|t| t + batch_wait)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            e = rx.recv() => match e {
                Some(e) => {
                    pending.add(e);
                    if pending.bytes >= batch_size {
                        store(&shared, pending.take()).await;
                    }
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()), if !pending.is_empty() => {
                store(&shared, pending.take()).await;
            }
        }
    }
    if !pending.is_empty() {
        store(&shared, pending.take()).await;
    }
}

/// Appends a batch, waiting while the buffer is full (reading pauses meanwhile, because
/// the sources' channel fills up).
async fn store(shared: &Shared, batch: Batch) {
    let mut warned = false;
    loop {
        {
            let mut b = shared.buffer.lock();
            if b.has_room(batch.body.len() + 256) {
                match b.append(&batch) {
                    Ok(()) => {
                        shared.metrics.buffer_bytes.set(b.pending_bytes());
                        drop(b);
                        shared.appended.notify_one();
                        return;
                    }
                    Err(e) => {
                        shared.metrics.error(ErrorKind::Buffer);
                        tracing::error!(error = %e, "cannot write to the disk buffer; retrying in 1s");
                    }
                }
            } else if !warned {
                warned = true;
                tracing::warn!(
                    bytes = b.pending_bytes(),
                    "disk buffer is full; reading pauses until the server catches up"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Pushes the buffer's batches in order until `stop` is set, saving acknowledged
/// positions; the acknowledged position of the cluster's events is also published on
/// `cluster_acked`, for the Lease.
pub async fn sender(
    shared: Arc<Shared>,
    pusher: Pusher,
    mut positions: Positions,
    positions_path: PathBuf,
    mut stop: watch::Receiver<bool>,
    cluster_acked: watch::Sender<Option<ClusterEventsPos>>,
) -> Positions {
    let metrics = shared.metrics.clone();
    let mut last_save = Instant::now();
    let mut dirty = false;
    let mut saves = 0u64;
    loop {
        let (head, corrupt) = {
            let mut b = shared.buffer.lock();
            (b.head(), b.take_corrupt())
        };
        for _ in 0..corrupt {
            metrics.error(ErrorKind::Buffer);
        }
        let (batch, len) = match head {
            Ok(Some(h)) => h,
            Ok(None) => {
                if dirty && last_save.elapsed() >= SAVE_EVERY {
                    save(&mut positions, &positions_path, &metrics, &mut saves);
                    dirty = false;
                    last_save = Instant::now();
                }
                if *stop.borrow() {
                    break;
                }
                tokio::select! {
                    _ = shared.appended.notified() => {}
                    _ = tokio::time::sleep(SAVE_EVERY) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            Err(e) => {
                metrics.error(ErrorKind::Buffer);
                tracing::error!(error = %e, "cannot read the disk buffer; retrying in 1s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => {}
                }
                if *stop.borrow() {
                    break;
                }
                continue;
            }
        };
        let outcome = if batch.lines == 0 {
            Outcome::Sent
        } else {
            let size = batch.body.len() as u64;
            let o = pusher
                .push(bytes::Bytes::from(batch.body), batch.lines, &mut stop)
                .await;
            if o == Outcome::Sent {
                metrics.lines_sent.add(u64::from(batch.lines));
                metrics.bytes_sent.add(size);
                metrics.batches_sent.inc();
            }
            o
        };
        if outcome == Outcome::Stopped {
            break;
        }
        {
            let mut b = shared.buffer.lock();
            if let Err(e) = b.ack(len) {
                metrics.error(ErrorKind::Buffer);
                tracing::error!(error = %e, "cannot advance the disk buffer's head");
            }
            metrics.buffer_bytes.set(b.pending_bytes());
        }
        for m in &batch.marks {
            positions.apply(m);
        }
        cluster_acked.send_if_modified(|p| {
            let changed = *p != positions.cluster_events;
            if changed {
                p.clone_from(&positions.cluster_events);
            }
            changed
        });
        dirty = true;
        if last_save.elapsed() >= SAVE_EVERY {
            save(&mut positions, &positions_path, &metrics, &mut saves);
            dirty = false;
            last_save = Instant::now();
        }
    }
    save(&mut positions, &positions_path, &metrics, &mut saves);
    positions
}

fn save(positions: &mut Positions, path: &std::path::Path, metrics: &Metrics, saves: &mut u64) {
    *saves += 1;
    if (*saves).is_multiple_of(60) {
        positions.forget_missing_files();
    }
    if let Err(e) = positions.save(path) {
        metrics.error(ErrorKind::Positions);
        tracing::error!(error = %e, "cannot save positions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::push::PushConfig;
    use crate::testkit::{PushReceiver, TempDir};

    fn entry(stream: &Arc<crate::entry::Stream>, i: u64) -> Entry {
        Entry {
            stream: stream.clone(),
            ts: i as i64,
            line: format!("line {i}"),
            mark: Some(Mark::File {
                path: "/logs/a.log".into(),
                dev: 1,
                ino: 2,
                offset: i,
            }),
        }
    }

    #[test]
    fn positions_advance_only_when_the_server_acknowledges() {
        let dir = TempDir::new("deliver");
        let recv = PushReceiver::start().unwrap();
        recv.fail_with(Some(503));
        let metrics = Metrics::new();
        let (buffer, _) = Buffer::open(&dir.path().join("buf"), 1 << 20).unwrap();
        let shared = Shared::new(buffer, metrics.clone());
        let pusher = Pusher::new(
            PushConfig {
                url: recv.url(),
                ..PushConfig::default()
            },
            metrics.clone(),
        )
        .unwrap();
        let pos_path = dir.path().join("positions.json");
        let stream =
            crate::entry::Stream::new(&protocol::Labels::from_pairs([("job", "t")]), vec![]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (tx, rx) = mpsc::channel(16);
            let (stop_tx, stop_rx) = watch::channel(false);
            let batcher = tokio::spawn(batcher(
                rx,
                shared.clone(),
                1 << 20,
                Duration::from_millis(20),
            ));
            let sender = tokio::spawn(sender(
                shared.clone(),
                pusher,
                Positions::default(),
                pos_path.clone(),
                stop_rx,
                watch::channel(None).0,
            ));
            for i in 1..=3 {
                tx.send(entry(&stream, i)).await.unwrap();
            }
            // Retrying: buffered, but no position saved.
            while metrics.push_retries.get() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert!(shared.buffer.lock().pending_bytes() > 0);
            let saved = Positions::load(&pos_path).unwrap();
            assert!(saved.files.is_empty(), "{saved:?}");
            recv.fail_with(None);
            while metrics.lines_sent.get() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(tx);
            batcher.await.unwrap();
            stop_tx.send(true).unwrap();
            let final_positions = sender.await.unwrap();
            assert_eq!(final_positions.files["/logs/a.log"].offset, 3);
        });
        assert_eq!(
            Positions::load(&pos_path).unwrap().files["/logs/a.log"].offset,
            3
        );
        let lines: Vec<String> = recv.lines().into_iter().map(|l| l.line).collect();
        assert_eq!(lines, ["line 1", "line 2", "line 3"]);
        assert!(shared.buffer.lock().is_empty());
    }
}
