//! Background upkeep on its own thread: retention by age, retention by disk budget, and
//! compaction (see [`crate::compact`]), run every [`INTERVAL`] and after each flush.
//!
//! Deleting a part first removes it from the view, then from the part store: a query that
//! took its snapshot earlier and finds the part gone skips it (see `StoreError::PartGone`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::DiskBudget;
use crate::part::PartKey;
use crate::store::{LoadedPart, Shared, now_ns};

pub(crate) const INTERVAL: Duration = Duration::from_secs(30);

pub(crate) enum Nudge {
    Run,
    Stop,
}

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Nudge>) {
    loop {
        match rx.recv_timeout(INTERVAL) {
            Ok(Nudge::Run) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Nudge::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
        while let Ok(n) = rx.try_recv() {
            if matches!(n, Nudge::Stop) {
                return;
            }
        }
        pass(&shared);
    }
}

/// One round of upkeep; errors are logged and counted, the next round retries.
pub(crate) fn pass(shared: &Shared) {
    let _one_at_a_time = shared.maintain_lock.lock();
    if !shared.parts.is_local()
        && let Err(e) = crate::store::flush::sync_parts(shared)
    {
        tracing::warn!(error = %e, "listing the bucket failed; retrying later");
    }
    enforce_retention(shared);
    enforce_disk_budget(shared);
    if shared.cfg.compaction
        && !shared.closing.load(Ordering::Relaxed)
        && let Err(e) = crate::compact::compact(shared)
    {
        tracing::warn!(error = %e, "compaction failed; retrying later");
    }
}

/// Deletes parts whose newest entry is older than the retention period.
///
/// A compacted part takes the parts it replaced with it, should they still be in the part
/// store (in a bucket, until their grace period is over): their entries are among its own,
/// so they are past the period too, and no later listing has to find them again.
pub(crate) fn enforce_retention(shared: &Shared) {
    let Some(r) = shared.cfg.retention.filter(|r| *r > 0) else {
        return;
    };
    let cutoff = now_ns().saturating_sub(r);
    let expired: Vec<Arc<LoadedPart>> = all_parts(shared)
        .into_iter()
        .filter(|p| p.part.index.max_ts < cutoff)
        .collect();
    for p in expired {
        tracing::info!(part = %p.part.key, "deleting a part past the retention period");
        delete_part(shared, &p);
        for name in &p.part.index.supersedes {
            let key = PartKey {
                tenant: p.part.key.tenant.clone(),
                day: p.part.key.day,
                name: name.clone(),
            };
            if let Err(e) = shared.parts.delete(&key) {
                tracing::warn!(part = %key, error = %e, "deleting a replaced part failed; retrying later");
            }
        }
    }
}

/// Bytes over the disk budget now (0 when within it).
pub(crate) fn over_budget(shared: &Shared) -> u64 {
    match shared.cfg.retention_max_disk {
        DiskBudget::Unlimited => 0,
        DiskBudget::Bytes(limit) => {
            let used = part_bytes(shared) + wal_bytes(shared);
            used.saturating_sub(limit)
        }
        DiskBudget::FreePercent(pct) => {
            let Ok(st) = rustix::fs::statvfs(&shared.cfg.data_dir) else {
                return 0;
            };
            let total = st.f_blocks.saturating_mul(st.f_frsize);
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let want = (total as f64 * pct / 100.0) as u64;
            want.saturating_sub(free)
        }
    }
}

/// Deletes the oldest parts (by newest entry, across tenants) until the store is within
/// its disk budget. Only parts are deleted: the WAL and heads hold the newest data, and
/// each tenant's newest part is kept too, so a volume filled by something else never
/// costs the newest data (that case is logged with what to do instead).
pub(crate) fn enforce_disk_budget(shared: &Shared) {
    if !shared.parts.is_local() {
        // Parts in a bucket take no local disk; the cache has a budget of its own.
        return;
    }
    let mut over = over_budget(shared);
    if over == 0 {
        return;
    }
    let mut parts = deletable_by_budget(shared);
    parts.sort_by_key(|p| (p.part.index.max_ts, p.part.index.min_ts));
    for p in parts {
        if over == 0 {
            break;
        }
        tracing::warn!(part = %p.part.key, bytes = p.part.size, "disk budget exceeded: deleting the oldest part");
        delete_part(shared, &p);
        over = over.saturating_sub(p.part.size);
    }
    if over > 0 && !shared.budget_unmet.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            short_bytes = over,
            "disk budget still exceeded with only the newest data left: free space on the \
             volume or raise --retention-max-disk (writes go on meanwhile)"
        );
    } else if over == 0 {
        shared.budget_unmet.store(false, Ordering::Relaxed);
    }
}

/// Every part except each tenant's newest one.
fn deletable_by_budget(shared: &Shared) -> Vec<Arc<LoadedPart>> {
    let v = shared.view.read();
    let mut out = Vec::new();
    for list in v.parts.values() {
        let newest = list
            .iter()
            .max_by_key(|p| (p.part.index.max_ts, p.part.index.min_ts))
            .map(|p| p.part.key.clone());
        out.extend(
            list.iter()
                .filter(|p| Some(&p.part.key) != newest.as_ref())
                .cloned(),
        );
    }
    out
}

fn all_parts(shared: &Shared) -> Vec<Arc<LoadedPart>> {
    let v = shared.view.read();
    v.parts.values().flat_map(|l| l.iter().cloned()).collect()
}

pub(crate) fn part_bytes(shared: &Shared) -> u64 {
    let v = shared.view.read();
    v.parts
        .values()
        .flat_map(|l| l.iter())
        .map(|p| p.part.size)
        .sum()
}

pub(crate) fn wal_bytes(shared: &Shared) -> u64 {
    std::fs::read_dir(&shared.wal_dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Removes `p` from the view, then deletes it.
pub(crate) fn delete_part(shared: &Shared, p: &Arc<LoadedPart>) {
    // Deleted when the last reference goes: the view's below, or a query's snapshot.
    p.retired.store(true, Ordering::SeqCst);
    {
        let mut v = shared.view.write();
        for list in v.parts.values_mut() {
            if list.iter().any(|x| Arc::ptr_eq(x, p)) {
                let next: Vec<Arc<LoadedPart>> = list
                    .iter()
                    .filter(|x| !Arc::ptr_eq(x, p))
                    .cloned()
                    .collect();
                *list = Arc::new(next);
            }
        }
    }
    shared
        .metrics
        .parts_deleted_retention
        .fetch_add(1, Ordering::Relaxed);
}
