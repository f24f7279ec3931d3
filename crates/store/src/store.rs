//! [`Store`]: opening (WAL replay, part indexes), appending, flushing, closing.
//!
//! Threads: the caller's task encodes a record and awaits; the *commit* thread
//! ([`commit`]) writes and syncs batches of records, applies them to the memtable and rotates
//! it; the *flusher* ([`flush`]) writes rotated memtables as parts and deletes their WAL
//! segments. Readers take a [`View`] (an `Arc` snapshot of memtables and parts) and never
//! wait for either thread's I/O.

mod commit;
pub(crate) mod filters;
pub(crate) mod flush;
pub(crate) mod maintain;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::backend::{LocalParts, PartStore, RemoteParts};
use crate::head::Memtable;
use crate::index::{Catalog, StreamId};
use crate::part::Part;
use crate::templated::Templates;
use crate::wal::{self, record};
use crate::{
    AppendReport, RejectReason, Rejection, StoreConfig, StoreError, WriteEntry, WriteStream,
};

/// The storage engine. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    commit_tx: Mutex<Option<std::sync::mpsc::Sender<commit::Request>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// A tenant: its stream catalog. Its parts are in the [`View`].
#[derive(Debug)]
pub(crate) struct Tenant {
    pub name: String,
    pub num: u32,
    pub catalog: RwLock<Catalog>,
}

/// A part with its streams mapped to the tenant's stream ids.
#[derive(Debug)]
pub(crate) struct LoadedPart {
    pub part: Part,
    /// `(stream id, index into part.index.streams)`, sorted by stream id.
    pub by_id: Vec<(StreamId, u32)>,
    /// Where to delete it from once nobody reads it any more.
    pub store: Arc<dyn PartStore>,
    /// Set by retention and compaction: the part is out of the view and is deleted when the
    /// last reader's snapshot lets go of it (a query never finds its parts gone).
    pub retired: AtomicBool,
    /// Where its template tables are kept once read.
    tables: Arc<TableCache>,
    /// Where its block filters are kept once read, under its number.
    filters: Arc<filters::FilterCache>,
    number: u64,
}

/// Decoded template tables of all parts, read when a query first needs them and kept
/// within [`TABLE_CACHE_BYTES`]. A flush's tables hold about a megabyte of templates on
/// the bench's data: kept for every part, they would grow with the data.
#[derive(Debug, Default)]
pub(crate) struct TableCache {
    inner: Mutex<TableCacheInner>,
}

#[derive(Debug, Default)]
struct TableCacheInner {
    /// A few hundred at most, searched once per block read: a list is enough.
    tables: Vec<(crate::part::PartKey, u32, Arc<Templates>)>,
    bytes: usize,
    /// State of the generator that picks which table to drop.
    seed: u64,
}

/// Bytes of decoded template tables kept at most.
const TABLE_CACHE_BYTES: usize = 16 << 20;

impl TableCacheInner {
    /// Drops the tables `drop` picks.
    fn drop_where(&mut self, drop: impl Fn(&crate::part::PartKey, u32) -> bool) {
        let mut freed = 0;
        self.tables.retain(|(k, j, t)| {
            let keep = !drop(k, *j);
            if !keep {
                freed += t.size();
            }
            keep
        });
        self.bytes -= freed;
    }
}

impl TableCache {
    fn get(&self, key: &crate::part::PartKey, i: u32) -> Option<Arc<Templates>> {
        let c = self.inner.lock();
        c.tables
            .iter()
            .find(|(k, j, _)| *j == i && k == key)
            .map(|(_, _, t)| t.clone())
    }

    /// Drops the tables of a deleted part.
    fn forget(&self, key: &crate::part::PartKey) {
        self.inner.lock().drop_where(|k, _| k == key);
    }

    /// Keeps `t`, dropping others picked at random past the budget: a scan that goes
    /// round more tables than fit still finds most of them (dropping the least recently
    /// used, it would find none).
    fn put(&self, key: &crate::part::PartKey, i: u32, t: Arc<Templates>) {
        let mut c = self.inner.lock();
        c.drop_where(|k, j| j == i && k == key);
        let size = t.size();
        while c.bytes + size > TABLE_CACHE_BYTES && !c.tables.is_empty() {
            let n = c.tables.len();
            let pick = random_below(&mut c.seed, n);
            let (_, _, old) = c.tables.swap_remove(pick);
            c.bytes -= old.size();
        }
        c.bytes += size;
        c.tables.push((key.clone(), i, t));
    }
}

/// A number below `n` from the generator state `seed` (a linear congruential generator:
/// the caches only need their picks spread out, not unpredictable).
pub(crate) fn random_below(seed: &mut u64, n: usize) -> usize {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*seed >> 33) as usize % n
}

impl std::fmt::Debug for dyn PartStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Drop for LoadedPart {
    fn drop(&mut self) {
        // Out of the view and of every query: its tables will not be read again.
        self.tables.forget(&self.part.key);
        self.filters.forget(self.number);
        if self.retired.load(Ordering::SeqCst)
            && let Err(e) = self.store.delete(&self.part.key)
        {
            tracing::error!(part = %self.part.key, error = %e, "deleting a part failed");
        }
    }
}

impl LoadedPart {
    pub fn new(mut part: Part, by_id: Vec<(StreamId, u32)>, shared: &Shared) -> LoadedPart {
        // From here on a stream is known by its id (`by_id`), and the tenant's catalog has
        // its labels: the part's own copy would only cost memory, per stream and part.
        for s in &mut part.index.streams {
            s.labels = protocol::Labels::new();
        }
        LoadedPart {
            part,
            by_id,
            store: shared.parts.clone(),
            retired: AtomicBool::new(false),
            tables: shared.tables.clone(),
            filters: shared.filters.clone(),
            number: filters::part_number(),
        }
    }

    /// `test` applied to the filter of block `block`, which is read (through `io`) on
    /// first use.
    pub fn test_filter(
        &self,
        block: u32,
        io: &mut Vec<u8>,
        test: impl Fn(&[u8]) -> bool,
    ) -> Result<bool, StoreError> {
        if let Some(r) = self.filters.test(self.number, block, &test) {
            return Ok(r);
        }
        let (off, len) = self.part.index.blocks[block as usize].filter_range();
        self.store
            .read_at(&self.part.key, self.part.size, off, len, io)?;
        self.filters.put(self.number, block, io);
        Ok(test(io))
    }

    /// Template table `i`, read on first use.
    pub fn table(&self, i: u32) -> Result<Arc<Templates>, StoreError> {
        if let Some(t) = self.tables.get(&self.part.key, i) {
            return Ok(t);
        }
        let corrupt = || {
            StoreError::Corrupt(format!(
                "part {} is damaged: template table {i} does not decode",
                self.part.key
            ))
        };
        let meta = self.part.index.tables.get(i as usize).ok_or_else(corrupt)?;
        let mut packed = Vec::new();
        self.store.read_at(
            &self.part.key,
            self.part.size,
            meta.offset,
            u64::from(meta.len),
            &mut packed,
        )?;
        // A table holds the templates of at most a memtable's lines.
        if crc32fast::hash(&packed) != meta.crc || meta.raw_len > 1 << 30 {
            return Err(corrupt());
        }
        let raw = zstd::bulk::decompress(&packed, meta.raw_len as usize).map_err(|_| corrupt())?;
        if raw.len() != meta.raw_len as usize {
            return Err(corrupt());
        }
        let t = Arc::new(Templates::decode(raw).map_err(|_| corrupt())?);
        self.tables.put(&self.part.key, i, t.clone());
        Ok(t)
    }

    pub fn stream(&self, id: StreamId) -> Option<&crate::part::index::StreamMeta> {
        let i = self.by_id.binary_search_by_key(&id, |p| p.0).ok()?;
        self.part.index.streams.get(self.by_id[i].1 as usize)
    }

    /// Orders parts by the arrival of their data: part names start with their creation
    /// time, and a merged part is as old as the oldest part of its lineage (compaction
    /// lists that name among the parts it replaces).
    pub fn age(&self) -> &str {
        self.part
            .index
            .supersedes
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.part.key.name.as_str()))
            .min()
            .unwrap_or("")
    }
}

/// What readers see: memtables and parts at one moment.
#[derive(Debug, Clone)]
pub(crate) struct View {
    pub active: Arc<Memtable>,
    pub flushing: Vec<Arc<Memtable>>,
    /// Parts per tenant number.
    pub parts: HashMap<u32, Arc<Vec<Arc<LoadedPart>>>>,
}

impl View {
    pub fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        self.flushing.iter().chain(std::iter::once(&self.active))
    }

    /// Adds a part unless one of that key is there already: a flush publishes its part to
    /// the bucket before the view, so a bucket listing in between finds it too, and both
    /// the flush and the listing then add it (twice in the view, it would be merged twice
    /// and counted in a tier twice).
    pub fn add_part(&mut self, tnum: u32, part: Arc<LoadedPart>) {
        let list = self.parts.entry(tnum).or_default();
        if list.iter().any(|p| p.part.key == part.part.key) {
            return;
        }
        let mut next: Vec<Arc<LoadedPart>> = list.as_ref().clone();
        next.push(part);
        *list = Arc::new(next);
    }
}

#[derive(Debug, Default)]
pub(crate) struct Tenants {
    pub by_name: HashMap<String, Arc<Tenant>>,
    pub by_num: Vec<Arc<Tenant>>,
}

pub(crate) struct Shared {
    pub cfg: StoreConfig,
    pub parts: Arc<dyn PartStore>,
    pub wal_dir: PathBuf,
    pub tmp_dir: PathBuf,
    pub instance: String,
    pub part_seq: AtomicU64,
    pub tenants: RwLock<Tenants>,
    pub view: RwLock<View>,
    pub flushed: Mutex<FlushState>,
    pub flushed_cv: Condvar,
    pub closing: AtomicBool,
    pub metrics: Metrics,
    pub maintain_tx: Mutex<Option<std::sync::mpsc::Sender<maintain::Nudge>>>,
    /// Serialises maintenance passes (background thread and [`Store::maintain`]).
    pub maintain_lock: Mutex<()>,
    /// Set once the disk budget could not be met with only the newest data left (logged once).
    pub budget_unmet: std::sync::atomic::AtomicBool,
    /// WAL record buffers handed back by the commit thread, for the next appends: a push
    /// of 1 MiB would otherwise map, fault in and unmap a fresh megabyte every time.
    pub record_pool: Mutex<Vec<Vec<u8>>>,
    pub tables: Arc<TableCache>,
    pub filters: Arc<filters::FilterCache>,
}

/// Record buffers kept for reuse at most, and the largest kept (bigger ones are freed).
const RECORD_POOL: usize = 8;
const RECORD_POOL_MAX_BYTES: usize = 2 << 20;

impl Shared {
    /// When a part replaced by the part named `by` may be deleted from the bucket: part
    /// names start with their creation time in milliseconds.
    pub fn replaced_until(&self, by: &str) -> u64 {
        let created = by
            .get(..13)
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        let grace = u64::try_from(self.cfg.replaced_part_grace.as_millis()).unwrap_or(u64::MAX);
        created.saturating_add(grace)
    }

    /// An empty record buffer with room for `bytes`, reused when one is free.
    pub fn take_record(&self, bytes: usize) -> Vec<u8> {
        let mut b = self.record_pool.lock().pop().unwrap_or_default();
        b.clear();
        b.reserve(bytes);
        b
    }

    /// Hands a record buffer back once the commit thread is done with it.
    pub fn give_record(&self, b: Vec<u8>) {
        if b.capacity() <= RECORD_POOL_MAX_BYTES {
            let mut pool = self.record_pool.lock();
            if pool.len() < RECORD_POOL {
                pool.push(b);
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct FlushState {
    /// Every memtable of a generation up to this one is in parts.
    pub flushed_gen: u64,
    pub last_error: Option<String>,
}

impl Shared {
    /// The tenant named `name`, created when new.
    pub fn tenant(&self, name: &str) -> Arc<Tenant> {
        if let Some(t) = self.tenants.read().by_name.get(name) {
            return t.clone();
        }
        let mut ts = self.tenants.write();
        if let Some(t) = ts.by_name.get(name) {
            return t.clone();
        }
        let t = Arc::new(Tenant {
            name: name.to_string(),
            num: ts.by_num.len() as u32,
            catalog: RwLock::new(Catalog::default()),
        });
        ts.by_name.insert(name.to_string(), t.clone());
        ts.by_num.push(t.clone());
        t
    }

    pub fn nudge_maintenance(&self) {
        if let Some(tx) = self.maintain_tx.lock().as_ref() {
            let _ = tx.send(maintain::Nudge::Run);
        }
    }

    pub fn view(&self) -> View {
        self.view.read().clone()
    }

    pub fn fault(&self, wal: bool) -> Option<std::io::Error> {
        let f = self.cfg.faults.as_ref()?;
        let on = if wal { &f.wal_full } else { &f.parts_full };
        on.load(Ordering::Relaxed)
            .then(|| std::io::Error::from(std::io::ErrorKind::StorageFull))
    }

    pub fn next_part_name(&self) -> String {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let seq = self.part_seq.fetch_add(1, Ordering::Relaxed);
        format!("{ms:013}-{}-{seq:06}", self.instance)
    }
}

/// Counters for `/metrics`, read with [`Store::metrics`].
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub appends: AtomicU64,
    pub entries_appended: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub entries_rejected_too_old: AtomicU64,
    pub appends_failed_disk_full: AtomicU64,
    pub wal_writes: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_corrupt_records: AtomicU64,
    pub wal_replayed_records: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_failures: AtomicU64,
    pub parts_written: AtomicU64,
    pub part_bytes_written: AtomicU64,
    pub parts_deleted_retention: AtomicU64,
    pub compactions: AtomicU64,
}

/// A snapshot of the store's counters and gauges, for the server's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreMetrics {
    pub appends: u64,
    pub entries_appended: u64,
    pub bytes_appended: u64,
    pub entries_rejected_too_old: u64,
    pub appends_failed_disk_full: u64,
    pub wal_writes: u64,
    pub wal_syncs: u64,
    pub wal_bytes: u64,
    pub wal_corrupt_records: u64,
    pub wal_replayed_records: u64,
    pub flushes: u64,
    pub flush_failures: u64,
    pub parts_written: u64,
    pub part_bytes_written: u64,
    pub parts_deleted_retention: u64,
    pub compactions: u64,
    /// Gauges.
    pub head_entries: u64,
    pub head_bytes: u64,
    pub parts: u64,
    pub part_bytes: u64,
    pub filter_cache_bytes: u64,
    pub streams: u64,
    pub tenants: u64,
}

impl Store {
    /// Opens (or creates) the store in `cfg.data_dir`: loads the part indexes, replays the
    /// WAL into the heads, and starts the commit and flush threads.
    pub fn open(cfg: StoreConfig) -> Result<Store, StoreError> {
        let data = cfg.data_dir.clone();
        let wal_dir = data.join("wal");
        let tmp_dir = data.join("tmp");
        for d in [&data, &wal_dir, &tmp_dir] {
            std::fs::create_dir_all(d)
                .map_err(|e| StoreError::io("creating the data directory", d, e))?;
        }
        // Leftovers of parts being written when the process stopped.
        if let Ok(rd) = std::fs::read_dir(&tmp_dir) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let instance = match &cfg.instance_id {
            Some(i) => i.clone(),
            None => instance_id(&data)?,
        };
        let parts: Arc<dyn PartStore> = match &cfg.object_store {
            None => Arc::new(LocalParts::new(data.join("parts"), cfg.fsync)?),
            Some(o) => Arc::new(RemoteParts::open(o, data.join("cache"))?),
        };
        tracing::info!(parts = %parts.describe(), "opening the store");
        let shared = Arc::new(Shared {
            parts,
            wal_dir: wal_dir.clone(),
            tmp_dir,
            instance,
            part_seq: AtomicU64::new(0),
            tenants: RwLock::new(Tenants::default()),
            view: RwLock::new(View {
                active: Arc::new(Memtable::new(0)),
                flushing: Vec::new(),
                parts: HashMap::new(),
            }),
            flushed: Mutex::new(FlushState::default()),
            flushed_cv: Condvar::new(),
            closing: AtomicBool::new(false),
            metrics: Metrics::default(),
            maintain_tx: Mutex::new(None),
            maintain_lock: Mutex::new(()),
            budget_unmet: std::sync::atomic::AtomicBool::new(false),
            record_pool: Mutex::new(Vec::new()),
            tables: Arc::default(),
            filters: Arc::default(),
            cfg,
        });
        flush::load_parts(&shared)?;
        // Replay: each segment becomes a memtable of its generation, queued for flushing.
        let generations = wal::list_segments(&wal_dir)?;
        let mut replayed = Vec::new();
        for &generation in &generations {
            let mt = Memtable::new(generation);
            let stats = wal::replay_segment(&wal_dir, generation, |payload| {
                commit::apply_record(&shared, &mt, payload).map_err(|_| {
                    StoreError::Corrupt(format!("WAL segment {generation}: undecodable record"))
                })
            })?;
            shared
                .metrics
                .wal_replayed_records
                .fetch_add(stats.records, Ordering::Relaxed);
            shared
                .metrics
                .wal_corrupt_records
                .fetch_add(stats.corrupt, Ordering::Relaxed);
            if mt.is_empty() {
                let _ = std::fs::remove_file(wal::segment_path(&wal_dir, generation));
            } else {
                replayed.push(Arc::new(mt));
            }
        }
        let next_gen = generations.last().map_or(1, |g| g + 1);
        {
            let mut f = shared.flushed.lock();
            f.flushed_gen = next_gen - 1;
            if let Some(first) = replayed.first() {
                f.flushed_gen = first.generation - 1;
            }
        }
        let segment = wal::Segment::create(&wal_dir, next_gen, shared.cfg.fsync)?;
        {
            let mut v = shared.view.write();
            v.active = Arc::new(Memtable::new(next_gen));
            v.flushing = replayed.clone();
        }
        let (flush_tx, flush_rx) = std::sync::mpsc::channel::<Arc<Memtable>>();
        for mt in replayed {
            let _ = flush_tx.send(mt);
        }
        let (commit_tx, commit_rx) = std::sync::mpsc::channel();
        let s1 = shared.clone();
        let commit = std::thread::Builder::new()
            .name("kiroku-wal".into())
            .spawn(move || commit::run(s1, commit_rx, segment, flush_tx))
            .map_err(|e| StoreError::io("starting the WAL thread", &wal_dir, e))?;
        let s2 = shared.clone();
        let flusher = std::thread::Builder::new()
            .name("kiroku-flush".into())
            .spawn(move || flush::run(s2, flush_rx))
            .map_err(|e| StoreError::io("starting the flush thread", &wal_dir, e))?;
        let (maint_tx, maint_rx) = std::sync::mpsc::channel();
        *shared.maintain_tx.lock() = Some(maint_tx);
        let s3 = shared.clone();
        let maintainer = std::thread::Builder::new()
            .name("kiroku-maintain".into())
            .spawn(move || maintain::run(s3, maint_rx))
            .map_err(|e| StoreError::io("starting the maintenance thread", &wal_dir, e))?;
        // Retention right away: parts may have expired while the server was down.
        shared.nudge_maintenance();
        Ok(Store {
            shared,
            commit_tx: Mutex::new(Some(commit_tx)),
            threads: Mutex::new(vec![commit, flusher, maintainer]),
        })
    }

    /// The oldest timestamp an append accepts now (`None`: any).
    pub fn oldest_acceptable(&self) -> Option<i64> {
        let r = self.shared.cfg.retention?;
        if r <= 0 {
            return None;
        }
        Some(now_ns().saturating_sub(r))
    }

    /// Appends entries. When this returns `Ok` the accepted entries are durable in the WAL
    /// (synced when [`StoreConfig::fsync`]) and visible to readers; entries older than the
    /// retention period are refused and listed in the report, the others still written.
    /// Errors: [`StoreError::DiskFull`] (retryable) when the disk or its budget is full,
    /// [`StoreError::Closed`] after [`Store::close`].
    ///
    /// Every entry reads back with a `detected_level` metadata pair: an entry stored
    /// without one gets the one its line implies ([`logql::detect::line_level`]), derived
    /// once per template when its block is written (and per line by reads of the heads).
    /// A writer whose stream labels or metadata decide the level stores the pair itself.
    pub async fn append(
        &self,
        tenant: &str,
        streams: &[WriteStream<'_>],
    ) -> Result<AppendReport, StoreError> {
        check_tenant(tenant)?;
        let oldest = self.oldest_acceptable();
        let mut report = AppendReport::default();
        let mut record = self.shared.take_record(
            64 + streams
                .iter()
                .map(|s| 64 + s.entries.iter().map(record_size).sum::<usize>())
                .sum::<usize>(),
        );
        let (entries, bytes) = record::encode_append(
            tenant,
            streams,
            |ts| oldest.is_none_or(|o| ts >= o),
            |stream, entry| {
                report.rejected.push(Rejection {
                    stream,
                    entry,
                    reason: RejectReason::TooOld {
                        oldest_acceptable: oldest.unwrap_or(i64::MIN),
                    },
                })
            },
            &mut record,
        );
        let m = &self.shared.metrics;
        m.entries_rejected_too_old
            .fetch_add(report.rejected.len() as u64, Ordering::Relaxed);
        if entries == 0 {
            self.shared.give_record(record);
            return Ok(report);
        }
        if record.len() > wal::MAX_RECORD {
            return Err(StoreError::TooLarge(record.len()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let guard = self.commit_tx.lock();
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(commit::Request::Append(commit::Pending {
                    record,
                    reply: tx,
                }))
                .map_err(|_| StoreError::Closed)?;
        }
        rx.await.map_err(|_| StoreError::Closed)??;
        m.appends.fetch_add(1, Ordering::Relaxed);
        m.entries_appended.fetch_add(entries, Ordering::Relaxed);
        m.bytes_appended.fetch_add(bytes, Ordering::Relaxed);
        report.accepted = entries;
        Ok(report)
    }

    /// Writes everything in memory as parts and deletes the WAL it came from; returns when
    /// done. Blocking: call it from a blocking context (`spawn_blocking`).
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let guard = self.commit_tx.lock();
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(commit::Request::Rotate(tx))
                .map_err(|_| StoreError::Closed)?;
        }
        let generation = rx.recv().map_err(|_| StoreError::Closed)?;
        self.wait_flushed(generation, None)
    }

    fn wait_flushed(
        &self,
        generation: u64,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), StoreError> {
        let mut f = self.shared.flushed.lock();
        while f.flushed_gen < generation {
            if let Some(e) = f.last_error.clone() {
                return Err(StoreError::Io {
                    what: "writing parts",
                    path: self.shared.cfg.data_dir.display().to_string(),
                    source: std::io::Error::other(e),
                });
            }
            let wait = Duration::from_millis(200);
            self.shared.flushed_cv.wait_for(&mut f, wait);
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(StoreError::Closed);
            }
        }
        Ok(())
    }

    /// Stops accepting appends, writes the heads out as parts (waiting at most `timeout`;
    /// what is not written stays in the WAL and is replayed at the next open) and stops the
    /// threads. Blocking. Appends after this fail with [`StoreError::Closed`].
    pub fn close(&self, timeout: Duration) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + timeout;
        let result = match self.flush_before(deadline) {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "heads not written at shutdown: they stay in the WAL");
                Err(e)
            }
        };
        self.stop_threads();
        result
    }

    fn stop_threads(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        if let Some(tx) = self.commit_tx.lock().take() {
            let _ = tx.send(commit::Request::Shutdown);
        }
        if let Some(tx) = self.shared.maintain_tx.lock().take() {
            let _ = tx.send(maintain::Nudge::Stop);
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }

    /// Runs retention and compaction now and returns when done (they also run in the
    /// background every 30 s). Blocking.
    pub fn maintain(&self) {
        maintain::pass(&self.shared);
    }

    fn flush_before(&self, deadline: std::time::Instant) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let guard = self.commit_tx.lock();
            let sender = guard.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(commit::Request::Rotate(tx))
                .map_err(|_| StoreError::Closed)?;
        }
        let generation = rx.recv().map_err(|_| StoreError::Closed)?;
        self.wait_flushed(generation, Some(deadline))
    }

    /// A read view over the given tenants' data (heads and parts). With several tenants,
    /// every stream gets a `__tenant_id__` label, as Loki's multi-tenant queries do, and a
    /// selector may match on it.
    pub fn reader(&self, tenants: &[String]) -> crate::Reader {
        crate::Reader::new(self.shared.clone(), tenants)
    }

    /// The counters and gauges for `/metrics`.
    pub fn metrics(&self) -> StoreMetrics {
        let m = &self.shared.metrics;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let view = self.shared.view();
        let (mut head_entries, mut head_bytes) = (0, 0);
        for mt in view.memtables() {
            head_entries += mt.entries.load(Ordering::Relaxed);
            head_bytes += mt.bytes.load(Ordering::Relaxed);
        }
        let (mut parts, mut part_bytes) = (0, 0);
        for p in view.parts.values() {
            parts += p.len() as u64;
            part_bytes += p.iter().map(|p| p.part.size).sum::<u64>();
        }
        let tenants = self.shared.tenants.read();
        StoreMetrics {
            appends: l(&m.appends),
            entries_appended: l(&m.entries_appended),
            bytes_appended: l(&m.bytes_appended),
            entries_rejected_too_old: l(&m.entries_rejected_too_old),
            appends_failed_disk_full: l(&m.appends_failed_disk_full),
            wal_writes: l(&m.wal_writes),
            wal_syncs: l(&m.wal_syncs),
            wal_bytes: l(&m.wal_bytes),
            wal_corrupt_records: l(&m.wal_corrupt_records),
            wal_replayed_records: l(&m.wal_replayed_records),
            flushes: l(&m.flushes),
            flush_failures: l(&m.flush_failures),
            parts_written: l(&m.parts_written),
            part_bytes_written: l(&m.part_bytes_written),
            parts_deleted_retention: l(&m.parts_deleted_retention),
            compactions: l(&m.compactions),
            head_entries,
            head_bytes,
            parts,
            part_bytes,
            filter_cache_bytes: self.shared.filters.bytes() as u64,
            streams: tenants
                .by_num
                .iter()
                .map(|t| t.catalog.read().len() as u64)
                .sum(),
            tenants: tenants.by_num.len() as u64,
        }
    }

    /// Bytes the store holds on local disk: WAL segments, and parts when they are local.
    pub fn disk_usage(&self) -> u64 {
        maintain::wal_bytes(&self.shared) + maintain::part_bytes(&self.shared)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Without close(): stop the threads, leave the heads in the WAL.
        self.stop_threads();
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// About the bytes `e` takes in a WAL record, its metadata included (the timestamp delta
/// and the lengths are varints of a few bytes each), so that a request's record is
/// allocated once: growing it copies everything written so far.
fn record_size(e: &WriteEntry<'_>) -> usize {
    let meta: usize = e.metadata.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    e.line.len() + 16 + meta
}

fn check_tenant(t: &str) -> Result<(), StoreError> {
    if t.is_empty() || t.len() > 150 || t == "." || t == ".." {
        return Err(StoreError::InvalidTenant(t.to_string()));
    }
    Ok(())
}

/// This instance's id, made once and kept in `<data>/instance`.
fn instance_id(data: &std::path::Path) -> Result<String, StoreError> {
    let path = data.join("instance");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(s.to_string());
        }
    }
    let seed = format!(
        "{}-{}-{:?}",
        now_ns(),
        std::process::id(),
        std::thread::current().id()
    );
    let id = format!(
        "{:012x}",
        xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) & 0xffff_ffff_ffff
    );
    std::fs::write(&path, &id).map_err(|e| StoreError::io("writing the instance id", &path, e))?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::part::PartKey;

    /// A decoded table of about `kib` KiB.
    fn table(kib: usize) -> Arc<Templates> {
        let mut raw = Vec::new();
        crate::codec::put_uvarint(&mut raw, 1);
        crate::codec::put_bytes(&mut raw, &vec![b'x'; kib << 10]);
        Arc::new(Templates::decode(raw).unwrap())
    }

    #[test]
    fn the_table_cache_keeps_its_budget_and_the_table_just_read() {
        let cache = TableCache::default();
        let key = |n: u32| PartKey {
            tenant: "fake".into(),
            day: 0,
            name: format!("p{n}"),
        };
        let per = TABLE_CACHE_BYTES / 4 / 1024;
        for n in 0..4 {
            cache.put(&key(n), 0, table(per - 1));
        }
        // Each further table makes room by dropping another, never itself.
        for n in 4..12 {
            cache.put(&key(n), 0, table(per - 1));
            assert!(cache.inner.lock().bytes <= TABLE_CACHE_BYTES);
            assert!(cache.get(&key(n), 0).is_some(), "p{n}");
            assert_eq!(cache.inner.lock().tables.len(), 4);
        }
        assert!(cache.get(&key(11), 1).is_none());
        // One table larger than the budget is kept alone.
        cache.put(&key(12), 0, table(2 * per * 4));
        assert_eq!(cache.inner.lock().tables.len(), 1);
        assert!(cache.get(&key(12), 0).is_some());
        cache.forget(&key(12));
        assert!(cache.inner.lock().tables.is_empty());
        assert_eq!(cache.inner.lock().bytes, 0);
    }
}
