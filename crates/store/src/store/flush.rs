//! The flusher: writes rotated memtables out as parts, one per tenant and day, publishes
//! them, swaps them into the view in place of the memtable, then deletes the WAL segment.
//! Also loads the parts at open.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufWriter;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use crate::block::BlockEncoder;
use crate::head::Memtable;
use crate::index::StreamId;
use crate::part::index::{FOOTER_LEN, Footer};
use crate::part::writer::PartWriter;
use crate::part::{DAY_NS, Part, PartKey, day_of};
use crate::store::{LoadedPart, Shared, now_ms};
use crate::{StoreError, wal};

pub(crate) fn run(shared: Arc<Shared>, rx: Receiver<Arc<Memtable>>) {
    let mut encoder = None;
    while let Ok(mt) = rx.recv() {
        let mut backoff = Duration::from_millis(100);
        loop {
            let enc = match &mut encoder {
                Some(e) => e,
                None => match BlockEncoder::new(shared.cfg.compression_level) {
                    Ok(e) => encoder.insert(e),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot create a zstd context");
                        std::thread::sleep(backoff);
                        continue;
                    }
                },
            };
            match flush_memtable(&shared, &mt, enc) {
                Ok(()) => {
                    shared.metrics.flushes.fetch_add(1, Ordering::Relaxed);
                    let mut f = shared.flushed.lock();
                    f.flushed_gen = f.flushed_gen.max(mt.generation);
                    f.last_error = None;
                    shared.flushed_cv.notify_all();
                    drop(f);
                    shared.nudge_maintenance();
                    break;
                }
                Err(e) => {
                    shared
                        .metrics
                        .flush_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, generation = mt.generation, "writing parts failed: retrying; the entries stay in the WAL");
                    {
                        let mut f = shared.flushed.lock();
                        f.last_error = Some(e.to_string());
                        shared.flushed_cv.notify_all();
                    }
                    if shared.closing.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

/// Writes `mt` as parts, swaps them in, deletes its WAL segment.
fn flush_memtable(
    shared: &Shared,
    mt: &Arc<Memtable>,
    enc: &mut BlockEncoder,
) -> Result<(), StoreError> {
    let mut new_parts: Vec<(u32, Arc<LoadedPart>)> = Vec::new();
    {
        let streams = mt.streams.read();
        let mut by_tenant: BTreeMap<u32, Vec<StreamId>> = BTreeMap::new();
        for &(t, s) in streams.keys() {
            by_tenant.entry(t).or_default().push(s);
        }
        let tenants = shared.tenants.read().by_num.clone();
        for (tnum, mut ids) in by_tenant {
            ids.sort_unstable();
            let tenant = &tenants[tnum as usize];
            let mut writers: BTreeMap<
                i64,
                (
                    PartKey,
                    std::path::PathBuf,
                    PartWriter<BufWriter<std::fs::File>>,
                ),
            > = BTreeMap::new();
            let mut ids_in: HashMap<i64, Vec<StreamId>> = HashMap::new();
            for id in ids {
                let Some(head) = streams.get(&(tnum, id)) else {
                    continue;
                };
                let labels = tenant.catalog.read().labels(id).clone();
                let merged = head.merged();
                // Cut the stream's entries by day.
                let mut start = 0;
                while start < merged.len() {
                    let day = day_of(merged.timestamps[start]);
                    let day_end = (day + 1).saturating_mul(DAY_NS);
                    let end = start + merged.timestamps[start..].partition_point(|&t| t < day_end);
                    if let std::collections::btree_map::Entry::Vacant(slot) = writers.entry(day) {
                        let key = PartKey {
                            tenant: tenant.name.clone(),
                            day,
                            name: shared.next_part_name(),
                        };
                        let tmp = shared.tmp_dir.join(format!("{}.tmp", key.name));
                        let f = std::fs::File::create(&tmp)
                            .map_err(|e| StoreError::io("creating a part", &tmp, e))?;
                        slot.insert((
                            key,
                            tmp,
                            PartWriter::new(BufWriter::with_capacity(1 << 20, f)),
                        ));
                    }
                    let Some((_, tmp, w)) = writers.get_mut(&day) else {
                        break;
                    };
                    if let Some(e) = shared.fault(false) {
                        return Err(StoreError::io("writing a part", tmp, e));
                    }
                    w.add_stream_range(&labels, &merged, start..end, enc)
                        .map_err(|e| StoreError::io("writing a part", tmp, e))?;
                    ids_in.entry(day).or_default().push(id);
                    start = end;
                }
            }
            for (day, (key, tmp, w)) in writers {
                let (out, index, size) = w
                    .finish()
                    .map_err(|e| StoreError::io("writing a part", &tmp, e))?;
                let file = out
                    .into_inner()
                    .map_err(|e| StoreError::io("writing a part", &tmp, e.into_error()))?;
                if shared.cfg.fsync {
                    file.sync_all()
                        .map_err(|e| StoreError::io("syncing a part", &tmp, e))?;
                }
                drop(file);
                shared.parts.publish(&key, &tmp)?;
                shared.metrics.parts_written.fetch_add(1, Ordering::Relaxed);
                shared
                    .metrics
                    .part_bytes_written
                    .fetch_add(size, Ordering::Relaxed);
                let ids = ids_in.remove(&day).unwrap_or_default();
                let by_id = sorted_pairs(&ids);
                new_parts.push((
                    tnum,
                    Arc::new(LoadedPart::new(Part { key, size, index }, by_id, shared)),
                ));
            }
        }
    }
    {
        let mut v = shared.view.write();
        for (tnum, p) in new_parts {
            v.add_part(tnum, p);
        }
        v.flushing.retain(|m| !Arc::ptr_eq(m, mt));
    }
    let seg = wal::segment_path(&shared.wal_dir, mt.generation);
    std::fs::remove_file(&seg)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| StoreError::io("deleting a WAL segment", &seg, e))?;
    Ok(())
}

/// `(stream id, position)` pairs sorted by id, for ids in part order.
fn sorted_pairs(ids: &[StreamId]) -> Vec<(StreamId, u32)> {
    let mut v: Vec<(StreamId, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    v.sort_unstable();
    v
}

/// Reads a part's footer and index.
pub(crate) fn read_index(
    shared: &Shared,
    key: &PartKey,
    size: u64,
) -> Result<crate::part::index::PartIndex, StoreError> {
    let corrupt = || {
        StoreError::Corrupt(format!(
            "part {key} is damaged: its index does not decode; move it away to start"
        ))
    };
    if size < FOOTER_LEN as u64 {
        return Err(corrupt());
    }
    let mut buf = Vec::new();
    shared.parts.read_at(
        key,
        size,
        size - FOOTER_LEN as u64,
        FOOTER_LEN as u64,
        &mut buf,
    )?;
    let footer = Footer::decode(&buf, size).map_err(|_| corrupt())?;
    shared.parts.read_at(
        key,
        size,
        footer.index_offset,
        u64::from(footer.index_len),
        &mut buf,
    )?;
    footer.decode_index(&buf).map_err(|_| corrupt())
}

/// Notes the parts `p` replaced (compaction), each with the name of the part that replaced
/// it: the earliest such name, whose creation starts its grace period.
fn note_replaced(p: &Part, into: &mut HashMap<(String, String), String>) {
    for s in &p.index.supersedes {
        into.entry((p.key.tenant.clone(), s.clone()))
            .and_modify(|by| {
                if p.key.name < *by {
                    by.clone_from(&p.key.name);
                }
            })
            .or_insert_with(|| p.key.name.clone());
    }
}

/// Loads every part's index into the view and the tenants' catalogs. Parts superseded by a
/// compacted part are deleted (on local disk: the compaction finished but did not get to
/// delete them; in a bucket, once their grace period is over).
pub(crate) fn load_parts(shared: &Shared) -> Result<(), StoreError> {
    sync_parts(shared)
}

/// Brings the view in line with the part store's listing: parts written by other
/// instances sharing the bucket are added, parts deleted by them removed, parts replaced by
/// a compacted part dropped (and deleted, in a bucket only after
/// [`crate::StoreConfig::replaced_part_grace`]). Cost: one listing, plus one index read per
/// new part.
pub(crate) fn sync_parts(shared: &Shared) -> Result<(), StoreError> {
    // The view before the listing: a part published to the view after it may or may not be
    // in the listing; it must not be taken for one deleted by another instance, and one
    // that is listed is added once (`View::add_part`).
    let known: HashMap<PartKey, Arc<LoadedPart>> = {
        let v = shared.view.read();
        v.parts
            .values()
            .flat_map(|l| l.iter())
            .map(|p| (p.part.key.clone(), p.clone()))
            .collect()
    };
    let listed = shared.parts.list()?;
    // Our sequence numbers continue after the highest one in our part names, so a part
    // written right after a restart (same millisecond) never takes an existing name.
    let ours = format!("-{}-", shared.instance);
    let max_seq = listed
        .iter()
        .filter_map(|(k, _)| {
            let at = k.name.find(&ours)?;
            k.name[at + ours.len()..].parse::<u64>().ok()
        })
        .max();
    if let Some(m) = max_seq {
        shared
            .part_seq
            .fetch_max(m + 1, std::sync::atomic::Ordering::Relaxed);
    }
    // Parts replaced by compaction, with the name of a part that replaced them: those
    // replaced by a known part are not even read.
    let mut replaced_by: HashMap<(String, String), String> = HashMap::new();
    for p in known.values() {
        note_replaced(&p.part, &mut replaced_by);
    }
    let mut fresh = Vec::new();
    for (key, size) in &listed {
        if known.contains_key(key)
            || replaced_by.contains_key(&(key.tenant.clone(), key.name.clone()))
        {
            continue;
        }
        match read_index(shared, key, *size) {
            Ok(index) => fresh.push(Part {
                key: key.clone(),
                size: *size,
                index,
            }),
            // Deleted by another instance between the listing and now.
            Err(StoreError::PartGone(_)) => {}
            Err(e) => return Err(e),
        }
    }
    for p in &fresh {
        note_replaced(p, &mut replaced_by);
    }
    let listed_keys: HashSet<&PartKey> = listed.iter().map(|(k, _)| k).collect();
    let is_superseded = |k: &PartKey| replaced_by.contains_key(&(k.tenant.clone(), k.name.clone()));
    // Replaced parts still listed: on local disk deleted now; in a bucket once their
    // grace period is over (other instances may still read them).
    for (key, _) in &listed {
        let Some(by) = replaced_by.get(&(key.tenant.clone(), key.name.clone())) else {
            continue;
        };
        if shared.parts.is_local() || shared.replaced_until(by) <= now_ms() {
            tracing::info!(part = %key, "deleting a part replaced by compaction");
            shared.parts.delete(key)?;
        }
    }
    let mut add: Vec<(u32, Arc<LoadedPart>)> = Vec::new();
    for part in fresh {
        if is_superseded(&part.key) {
            continue;
        }
        let tenant = shared.tenant(&part.key.tenant);
        let ids: Vec<StreamId> = {
            let mut c = tenant.catalog.write();
            part.index
                .streams
                .iter()
                .map(|s| c.intern(&s.labels))
                .collect()
        };
        let by_id = sorted_pairs(&ids);
        add.push((tenant.num, Arc::new(LoadedPart::new(part, by_id, shared))));
    }
    let mut v = shared.view.write();
    for list in v.parts.values_mut() {
        if list
            .iter()
            .any(|p| is_superseded(&p.part.key) || !listed_keys.contains(&p.part.key))
        {
            // Parts published after our listing are still in the view: keep them.
            let next: Vec<Arc<LoadedPart>> = list
                .iter()
                .filter(|p| {
                    !is_superseded(&p.part.key)
                        && (listed_keys.contains(&p.part.key) || !known.contains_key(&p.part.key))
                })
                .cloned()
                .collect();
            *list = Arc::new(next);
        }
    }
    for (tnum, p) in add {
        v.add_part(tnum, p);
    }
    Ok(())
}
