//! kiroku's storage engine: it takes log entries from the push path, makes them durable, and
//! hands them back to LogQL queries as streams of [`logql::Batch`]es. No embedded database:
//! a write-ahead log, in-memory heads and immutable part files of our own format.
//!
//! ```text
//! append ──► WAL segment (group commit: one write + one fdatasync per batch) ──► Ok
//!               │ after it is durable
//!               ▼
//!            memtable: per-stream heads, readable at once ──(size or age)──► flusher
//!                                                                              │
//!   parts: <tenant>/<yyyy-mm-dd>/<name>.kpart, immutable, columnar, zstd  ◄────┘
//!          (local directory or object storage), the WAL segment then deleted
//! ```
//!
//! What it does not do: HTTP, validation of labels and lines (the server does that before
//! calling [`Store::append`]), LogQL evaluation (the `logql` crate reads a [`Reader`]).
//!
//! Start reading from [`Store`] (open, append, flush, close, reader), [`Reader`] (the
//! [`logql::Source`] over heads and parts), then [`wal`], [`head`], [`part`] and [`block`]
//! for the formats. The design, and why:
//!
//! - **Durability**: [`Store::append`] encodes its record on the caller's task and hands
//!   it to one commit thread, which writes every pending record with one `write` and one
//!   `fdatasync` (group commit), applies them to the heads, then completes the callers.
//!   `append` awaits that completion without blocking the runtime.
//! - **Heads** ([`head`]): per-stream chunks in memory, out-of-order entries accepted;
//!   frozen chunks are shared with readers by `Arc`. The memtable rotates at
//!   [`StoreConfig::memtable_bytes`] or [`StoreConfig::max_head_age`] (or idle time), with a
//!   new WAL segment; the old one is written out as parts and its segment deleted.
//! - **Parts** ([`part`]): per stream, blocks of up to 8192 entries / 1 MiB with columns
//!   stored apart (timestamps, lengths, lines, metadata: [`block`]) and a trigram filter
//!   ([`filter`]); an index section at the end gives everything to plan a query in one
//!   ranged read. A metric query without a line filter reads timestamps and lengths only.
//! - **Index** ([`index`]): per tenant, label name → value → stream ids, in memory, rebuilt
//!   at open from the parts' index sections.
//! - **Exact duplicates** (same stream, timestamp and line) are dropped when a chunk is
//!   frozen, when parts are written, and when a cursor merges overlapping sources.
//! - **Object storage** ([`backend`]): parts are immutable and named
//!   `<tenant>/<day>/<ms>-<instance>-<seq>.kpart`, so they live as well in a bucket
//!   ([`StoreConfig::object_store`], through `object_store`) as under `<data>/parts`; only
//!   the WAL and a bounded cache stay local. Instances sharing a bucket list it at open and
//!   at every maintenance pass; no coordination beyond that.
//! - **Retention** (maintenance thread, every 30 s and after flushes): parts whose newest
//!   entry is past [`StoreConfig::retention`] are deleted, appends older than it refused
//!   per entry ([`AppendReport`]); over [`StoreConfig::retention_max_disk`] the oldest parts
//!   go first. A full disk makes appends fail with the retryable [`StoreError::DiskFull`]
//!   until space returns; nothing acknowledged is lost.
//! - **Compaction** ([`compact`]) merges a day's parts by copying blocks, never
//!   decompressing them.
//! - **Tenants** are stored apart (one key prefix each); [`Store::reader`] over several
//!   tenants adds `__tenant_id__` to every stream, as Loki does.
//!
//! Threads: appends are `async` and never block the runtime; everything else
//! ([`Store::open`], [`Store::flush`], [`Store::close`], [`Reader`]'s methods and cursors)
//! reads or writes files and blocks: call it from `spawn_blocking` or a thread of its own.

pub mod backend;
pub mod block;
pub mod codec;
pub mod compact;
pub mod filter;
pub mod head;
pub mod index;
pub mod part;
mod read;
mod store;
pub mod templated;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use protocol::Labels;

pub use read::Reader;
pub use store::{Store, StoreMetrics};

/// The tenant of single-tenant mode, as Loki names it.
pub const DEFAULT_TENANT: &str = "fake";

/// How the store is set up. Build it with [`StoreConfig::new`] and change what differs.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// fsync the WAL before acknowledging a write (default true).
    pub fsync: bool,
    /// Entries older than this (nanoseconds) are refused and deleted; `None` keeps all.
    pub retention: Option<i64>,
    /// How much disk the store may use before it deletes the oldest parts.
    pub retention_max_disk: DiskBudget,
    /// Line bytes in the memtable before it is written out as parts (default 16 MiB).
    pub memtable_bytes: u64,
    /// The oldest a memtable may get before it is written out (default 10 minutes).
    pub max_head_age: Duration,
    /// A memtable with no append for this long is written out (default 1 minute), so an
    /// idle server holds no heads in memory.
    pub head_idle: Duration,
    /// zstd level of the lines column (default 1: on loghub data it compresses as well as 3
    /// at 15% less ingest CPU; see the store benches).
    pub compression_level: i32,
    /// Keep parts in object storage instead of `<data>/parts` (the WAL and a cache stay
    /// local).
    pub object_store: Option<backend::ObjectStoreConfig>,
    /// Merge small parts in the background (default true). With several instances on one
    /// bucket, turn it on for one of them only: two compacting the same parts at once
    /// waste space (their outputs hold the same entries; readers still answer correctly).
    pub compaction: bool,
    /// With parts in a bucket, how long the parts a compaction replaced stay there after
    /// the merged part was written (default 10 minutes): other instances still read them
    /// until they list the bucket again, and one that has not would otherwise find them
    /// gone. Parts on local disk are deleted at once (no other instance reads them).
    pub replaced_part_grace: Duration,
    /// Names this instance in part names, so that several instances can share one bucket.
    /// Default: a random id kept in `<data>/instance`.
    pub instance_id: Option<String>,
    /// Test hooks that make writes fail as a full disk would.
    #[doc(hidden)]
    pub faults: Option<Arc<Faults>>,
}

impl StoreConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            data_dir: data_dir.into(),
            fsync: true,
            retention: Some(7 * 86_400 * 1_000_000_000),
            retention_max_disk: DiskBudget::FreePercent(10.0),
            memtable_bytes: 16 << 20,
            max_head_age: Duration::from_secs(600),
            head_idle: Duration::from_secs(60),
            compression_level: 1,
            object_store: None,
            compaction: true,
            replaced_part_grace: Duration::from_secs(600),
            instance_id: None,
            faults: None,
        }
    }
}

/// `--retention-max-disk`: a byte budget for parts and WAL, or a share of the volume to
/// keep free.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskBudget {
    Bytes(u64),
    FreePercent(f64),
    Unlimited,
}

/// Switches that make the store's writes fail with "no space left on device".
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Faults {
    pub wal_full: AtomicBool,
    pub parts_full: AtomicBool,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Corrupt(String),
    /// Retryable: the disk (or the disk budget) is full; the store frees space by deleting
    /// the oldest data and accepts writes again by itself.
    #[error("storage is full: {0}; retry later")]
    DiskFull(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("invalid tenant {0:?}: a tenant is 1 to 150 characters, not \".\" or \"..\"")]
    InvalidTenant(String),
    #[error("append of {0} bytes is larger than the limit of 1 GiB: split it")]
    TooLarge(usize),
    #[error("object storage {0}")]
    Backend(String),
    /// A part deleted (retention, compaction) after a query planned to read it.
    #[error("part {0} was deleted while being read")]
    PartGone(String),
    /// Retryable: entries arrive faster than parts can be written.
    #[error("writes are arriving faster than they can be stored: {0}; retry later")]
    Overloaded(String),
}

impl StoreError {
    pub fn io(what: &'static str, path: &Path, source: std::io::Error) -> StoreError {
        if source.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::DiskFull(format!("{what} {}: {source}", path.display()));
        }
        StoreError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }

    /// Whether the client should retry later (HTTP 429/503 rather than 500).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::DiskFull(_) | StoreError::Closed | StoreError::Overloaded(_)
        )
    }
}

/// One stream's entries to append, labels already validated and normalised.
pub struct WriteStream<'a> {
    pub labels: &'a Labels,
    pub entries: &'a [WriteEntry<'a>],
}

pub struct WriteEntry<'a> {
    pub ts: i64,
    pub line: &'a [u8],
    pub metadata: &'a [(&'a str, &'a str)],
}

/// What an append did: entries it refused are listed (the rest are durable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReport {
    pub accepted: u64,
    pub rejected: Vec<Rejection>,
}

/// An entry refused by [`Store::append`]: `streams[stream].entries[entry]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub stream: usize,
    pub entry: usize,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    /// Older than the retention period: Loki's "timestamp too old" (HTTP 400).
    TooOld { oldest_acceptable: i64 },
}

/// Per-stream figures over a time range, from block summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    pub labels: Labels,
    pub entries: u64,
    pub bytes: u64,
    pub chunks: u64,
}
