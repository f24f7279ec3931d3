//! The commit thread: group commit of WAL records, application to the memtable, rotation.
//!
//! It drains every pending append, writes them with one `write` and one `fdatasync`, then
//! applies them to the active memtable and completes the callers: an append is visible to
//! readers exactly when it is acknowledged. Being the only writer of the WAL and of the
//! memtable, it also rotates both together, so a segment holds exactly one memtable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use protocol::{Label, Labels};

use crate::StoreError;
use crate::codec::Corrupt;
use crate::head::Memtable;
use crate::store::Shared;
use crate::wal::record::RecordDecoder;
use crate::wal::{self, Segment};

pub(crate) struct Pending {
    pub record: Vec<u8>,
    pub reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

pub(crate) enum Request {
    Append(Pending),
    /// Rotate the memtable now (when it holds anything); answers with the generation that
    /// must be flushed for everything appended so far to be in parts.
    Rotate(Sender<u64>),
    Shutdown,
}

/// Flushing memtables allowed at once: beyond, the commit thread waits (back-pressure),
/// which bounds memory to about two memtables. A second one flushing would only queue
/// behind the first on the one flusher thread, holding a memtable more (peak RSS of
/// `kiroku bench ingest` fell by that much).
const MAX_FLUSHING: usize = 1;
/// Bytes of records written in one batch at most.
const MAX_BATCH: usize = 16 << 20;

pub(crate) fn run(
    shared: Arc<Shared>,
    rx: Receiver<Request>,
    mut segment: Segment,
    flush_tx: Sender<Arc<Memtable>>,
) {
    let mut batch: Vec<Pending> = Vec::new();
    let mut last_append = Instant::now();
    let mut carry: Option<Request> = None;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            None => match rx.recv_timeout(Duration::from_millis(250)) {
                Ok(r) => r,
                Err(RecvTimeoutError::Timeout) => {
                    maybe_rotate(&shared, &mut segment, &flush_tx, last_append, false);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        match first {
            Request::Shutdown => break,
            Request::Rotate(ack) => {
                maybe_rotate(&shared, &mut segment, &flush_tx, last_append, true);
                let _ = ack.send(shared.view.read().active.generation - 1);
                continue;
            }
            Request::Append(p) => batch.push(p),
        }
        // Group commit: everything already waiting joins this batch.
        let mut size = batch[0].record.len();
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(Request::Append(p)) => {
                    size += p.record.len();
                    batch.push(p);
                }
                Ok(other) => {
                    carry = Some(other);
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&shared, &mut segment, &mut batch);
        last_append = Instant::now();
        maybe_rotate(&shared, &mut segment, &flush_tx, last_append, false);
    }
    // Shutdown: pending appends fail; the flusher stops when this sender is dropped.
    while let Ok(r) = rx.try_recv() {
        if let Request::Append(p) = r {
            let _ = p.reply.send(Err(StoreError::Closed));
        }
    }
}

/// Why appends are refused now, if they are: the memtable is twice its size because
/// parts cannot be written (a full disk, a failing bucket) or not fast enough.
fn overloaded(shared: &Shared) -> Option<StoreError> {
    let active = shared.view.read().active.clone();
    if active.bytes.load(Ordering::Relaxed) < 2 * shared.cfg.memtable_bytes {
        return None;
    }
    let last = shared.flushed.lock().last_error.clone();
    Some(match last {
        Some(e) if e.contains("storage is full") => StoreError::DiskFull(e),
        Some(e) => StoreError::Overloaded(format!("writing parts fails: {e}")),
        None => return None,
    })
}

fn commit_batch(shared: &Shared, segment: &mut Segment, batch: &mut Vec<Pending>) {
    let m = &shared.metrics;
    if let Some(err) = overloaded(shared) {
        if matches!(err, StoreError::DiskFull(_)) {
            m.appends_failed_disk_full
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
        tracing::warn!(error = %err, appends = batch.len(), "appends refused");
        for p in batch.drain(..) {
            let _ = p.reply.send(Err(clone_err(&err)));
        }
        return;
    }
    // One writev of the records where they are, rather than a copy of them all.
    let records: Vec<&[u8]> = batch.iter().map(|p| p.record.as_slice()).collect();
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    let written = match shared.fault(true) {
        Some(e) => Err(e),
        None => segment.write(&records),
    }
    .and_then(|()| {
        m.wal_writes.fetch_add(1, Ordering::Relaxed);
        m.wal_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if shared.cfg.fsync {
            m.wal_syncs.fetch_add(1, Ordering::Relaxed);
            segment.sync()
        } else {
            Ok(())
        }
    });
    if let Err(e) = written {
        let err = StoreError::io("writing the WAL", segment.path(), e);
        if matches!(err, StoreError::DiskFull(_)) {
            m.appends_failed_disk_full
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            // Free space by retention; appends succeed again once there is room.
            shared.nudge_maintenance();
        }
        tracing::error!(error = %err, appends = batch.len(), "WAL write failed: appends refused");
        for p in batch.drain(..) {
            let _ = p.reply.send(Err(clone_err(&err)));
        }
        return;
    }
    let active = shared.view.read().active.clone();
    for p in batch.drain(..) {
        // The record was encoded by us; a decode failure would be a bug, not bad input.
        let res = apply_record(shared, &active, &p.record[8..]);
        debug_assert!(res.is_ok(), "a record we encoded does not decode");
        let _ = p.reply.send(Ok(()));
        shared.give_record(p.record);
    }
}

fn clone_err(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull(s) => StoreError::DiskFull(s.clone()),
        StoreError::Overloaded(s) => StoreError::Overloaded(s.clone()),
        other => StoreError::Io {
            what: "writing the WAL",
            path: String::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// Applies one record payload to `mt` (used by the commit thread and by replay).
pub(crate) fn apply_record(shared: &Shared, mt: &Memtable, payload: &[u8]) -> Result<(), Corrupt> {
    let mut r = RecordDecoder::new(payload)?;
    let tenant = shared.tenant(r.tenant);
    let mut streams = mt.streams.write();
    let (mut entries, mut bytes) = (0u64, 0u64);
    while let Some(mut s) = r.next_stream()? {
        s.check_labels()?;
        let found = tenant.catalog.read().find(s.fingerprint, s.labels());
        let id = match found {
            Some(id) => id,
            None => {
                let labels = Labels::from_sorted(
                    s.labels()
                        .map(|(n, v)| Label {
                            name: n.to_string(),
                            value: v.to_string(),
                        })
                        .collect(),
                );
                tenant.catalog.write().intern(&labels)
            }
        };
        let head = mt.stream_mut(&mut streams, (tenant.num, id));
        while let Some((ts, line, meta)) = s.next_entry()? {
            head.push(ts, line, meta.iter().copied())?;
            entries += 1;
            bytes += line.len() as u64;
        }
    }
    mt.entries.fetch_add(entries, Ordering::Relaxed);
    mt.bytes.fetch_add(bytes, Ordering::Relaxed);
    Ok(())
}

fn maybe_rotate(
    shared: &Shared,
    segment: &mut Segment,
    flush_tx: &Sender<Arc<Memtable>>,
    last_append: Instant,
    force: bool,
) {
    let active = shared.view.read().active.clone();
    if active.is_empty() {
        return;
    }
    let cfg = &shared.cfg;
    let due = force
        || active.bytes.load(Ordering::Relaxed) >= cfg.memtable_bytes
        || active.created.elapsed() >= cfg.max_head_age
        || last_append.elapsed() >= cfg.head_idle;
    if !due {
        return;
    }
    // Back-pressure: while the flusher is behind but working, wait for it (appends queue
    // and their callers wait); while it fails, the memtable grows instead and appends are
    // refused past twice its size (see `overloaded`).
    {
        let mut f = shared.flushed.lock();
        while shared.view.read().flushing.len() >= MAX_FLUSHING
            && f.last_error.is_none()
            && !shared.closing.load(Ordering::Relaxed)
        {
            shared
                .flushed_cv
                .wait_for(&mut f, Duration::from_millis(100));
        }
        if !force && f.last_error.is_some() && shared.view.read().flushing.len() >= MAX_FLUSHING {
            return;
        }
    }
    let next = match Segment::create(&shared.wal_dir, active.generation + 1, cfg.fsync) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a new WAL segment: keeping the current one");
            return;
        }
    };
    let old_gen = segment.generation;
    debug_assert_eq!(old_gen, active.generation);
    *segment = next;
    let fresh = Arc::new(Memtable::after(&active));
    {
        let mut v = shared.view.write();
        v.flushing.push(active.clone());
        v.active = fresh;
    }
    let _ = flush_tx.send(active);
    let _ = wal::segment_path(&shared.wal_dir, old_gen);
}
