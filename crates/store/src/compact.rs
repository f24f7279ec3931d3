//! Compaction: merges the parts of one tenant and day into one, so that a query opens few
//! files and reads few indexes.
//!
//! Blocks are copied as they are, compressed, never decoded: compaction costs I/O, not the
//! CPU that ingest needs. Parts are grouped in size tiers (×4 apart); a tier with
//! [`MIN_MERGE`] parts or more is merged, so each entry is rewritten about log₄(day size)
//! times. The merged part lists the parts it replaces; it is published before they are
//! deleted, and a reader that finds both (a crash in between, or another instance sharing
//! the bucket) ignores the replaced ones. In a bucket they are deleted only after
//! [`crate::StoreConfig::replaced_part_grace`], so that an instance that has not listed the
//! bucket since the merge still finds the parts it knows.

use std::collections::{BTreeMap, HashMap};
use std::io::BufWriter;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::StoreError;
use crate::index::StreamId;
use crate::part::index::BlockMeta;
use crate::part::writer::PartWriter;
use crate::part::{Part, PartKey};
use crate::store::{LoadedPart, Shared};

/// Parts in one tier that trigger a merge.
pub const MIN_MERGE: usize = 4;
/// Parts merged at once at most.
const MAX_MERGE: usize = 16;
/// Parts at least this large are left alone.
const MAX_PART: u64 = 1 << 30;

fn tier(size: u64) -> u32 {
    let mb = (size >> 20).max(1);
    (63 - mb.leading_zeros()) / 2
}

/// Runs merges until no tier of any (tenant, day) has enough parts.
pub(crate) fn compact(shared: &Shared) -> Result<(), StoreError> {
    loop {
        let Some((tnum, group)) = pick(shared) else {
            return Ok(());
        };
        merge(shared, tnum, &group)?;
        if shared.closing.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

fn pick(shared: &Shared) -> Option<(u32, Vec<Arc<LoadedPart>>)> {
    let v = shared.view.read();
    for (&tnum, parts) in &v.parts {
        let mut groups: BTreeMap<(i64, u32), Vec<Arc<LoadedPart>>> = BTreeMap::new();
        for p in parts.iter().filter(|p| p.part.size < MAX_PART) {
            groups
                .entry((p.part.key.day, tier(p.part.size)))
                .or_default()
                .push(p.clone());
        }
        for (_, mut g) in groups {
            if g.len() >= MIN_MERGE {
                g.sort_by(|a, b| a.age().cmp(b.age()));
                g.truncate(MAX_MERGE);
                return Some((tnum, g));
            }
        }
    }
    None
}

fn merge(shared: &Shared, tnum: u32, group: &[Arc<LoadedPart>]) -> Result<(), StoreError> {
    let tenant = shared.tenants.read().by_num[tnum as usize].clone();
    let key = PartKey {
        tenant: tenant.name.clone(),
        day: group[0].part.key.day,
        name: shared.next_part_name(),
    };
    let tmp = shared.tmp_dir.join(format!("{}.tmp", key.name));
    let file =
        std::fs::File::create(&tmp).map_err(|e| StoreError::io("creating a part", &tmp, e))?;
    let mut w = PartWriter::new(BufWriter::with_capacity(1 << 20, file));
    for p in group {
        w.supersede(p.part.key.name.clone());
        // The oldest name of its lineage too, so the merged part's age stays that of its
        // oldest data through merges of merges (see `LoadedPart::age`).
        if p.age() != p.part.key.name {
            w.supersede(p.age().to_string());
        }
    }
    // Every stream of the group, with its blocks from every part, in time order.
    let mut streams: BTreeMap<StreamId, Vec<(usize, u32)>> = BTreeMap::new();
    for (pi, p) in group.iter().enumerate() {
        for &(id, si) in &p.by_id {
            let s = &p.part.index.streams[si as usize];
            streams
                .entry(id)
                .or_default()
                .extend(s.blocks.clone().map(|b| (pi, b)));
        }
    }
    let mut ids = Vec::with_capacity(streams.len());
    let mut buf = Vec::new();
    let werr = |e| StoreError::io("writing a part", &tmp, e);
    // The template tables of every part, copied; per part, its tables' numbers in the new one.
    let mut tables: Vec<Vec<u32>> = Vec::with_capacity(group.len());
    for p in group {
        let p = &p.part;
        let mut numbers = Vec::with_capacity(p.index.tables.len());
        for t in &p.index.tables {
            shared
                .parts
                .read_at(&p.key, p.size, t.offset, u64::from(t.len), &mut buf)?;
            numbers.push(w.add_encoded_table(t, std::mem::take(&mut buf)));
        }
        tables.push(numbers);
    }
    // Blocks stay in arrival order (the group is oldest first): readers order them by time
    // and break ties between equal timestamps by that order.
    for (id, blocks) in streams {
        if let Some(e) = shared.fault(false) {
            return Err(werr(e));
        }
        let first = w.block_count();
        for &(pi, b) in &blocks {
            let p = &group[pi].part;
            let m: &BlockMeta = &p.index.blocks[b as usize];
            shared
                .parts
                .read_at(&p.key, p.size, m.offset, m.stored_len(), &mut buf)?;
            let m = BlockMeta {
                table: m.table.map(|t| tables[pi][t as usize]),
                ..m.clone()
            };
            w.add_encoded_block(&m, &buf).map_err(werr)?;
        }
        let labels = tenant.catalog.read().labels(id).clone();
        w.end_encoded_stream(&labels, first);
        ids.push(id);
    }
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
    let mut by_id: Vec<(StreamId, u32)> = ids
        .iter()
        .enumerate()
        .map(|(i, &id)| (id, i as u32))
        .collect();
    by_id.sort_unstable();
    let merged = Arc::new(LoadedPart::new(Part { key, size, index }, by_id, shared));
    // On local disk the merged parts are deleted once the view and the last query reading
    // them let go. In a bucket other instances read them until they list it again: they
    // stay for the grace period (see `flush::sync_parts`).
    if shared.parts.is_local() {
        for p in group {
            p.retired.store(true, Ordering::SeqCst);
        }
    }
    {
        let mut v = shared.view.write();
        let list = v.parts.entry(tnum).or_default();
        let gone: HashMap<&str, ()> = group
            .iter()
            .map(|p| (p.part.key.name.as_str(), ()))
            .collect();
        let mut next: Vec<Arc<LoadedPart>> = list
            .iter()
            .filter(|p| !gone.contains_key(p.part.key.name.as_str()))
            .cloned()
            .collect();
        next.push(merged.clone());
        *list = Arc::new(next);
    }
    shared.metrics.compactions.fetch_add(1, Ordering::Relaxed);
    shared.metrics.parts_written.fetch_add(1, Ordering::Relaxed);
    shared
        .metrics
        .part_bytes_written
        .fetch_add(size, Ordering::Relaxed);
    tracing::info!(part = %merged.part.key, merged = group.len(), bytes = size, "compacted parts");

    Ok(())
}
