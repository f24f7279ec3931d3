//! kiroku's storage engine. (Skeleton: the interface the server programs against; the
//! engine itself is being built.)

use std::path::PathBuf;

use logql::ast::Matcher;
use protocol::Labels;

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// fsync the WAL before acknowledging a write (default true).
    pub fsync: bool,
    /// Entries older than this (nanoseconds) are refused and deleted; `None` keeps all.
    pub retention: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Io(String),
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

/// Per-stream figures over a time range, from block summaries.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStats {
    pub labels: Labels,
    pub entries: u64,
    pub bytes: u64,
    pub chunks: u64,
}

pub struct Store {}

impl Store {
    pub fn open(_cfg: StoreConfig) -> Result<Store, StoreError> {
        Ok(Store {})
    }

    /// Appends entries; when this returns `Ok` they are durable in the WAL.
    pub async fn append(
        &self,
        _tenant: &str,
        _streams: &[WriteStream<'_>],
    ) -> Result<(), StoreError> {
        Err(StoreError::Io("not built yet".into()))
    }

    /// A read view over the given tenants' data (heads and parts).
    pub fn reader(&self, _tenants: &[String]) -> Reader {
        Reader {}
    }
}

pub struct Reader {}

impl logql::Source for Reader {
    fn select(
        &self,
        _req: &logql::Select<'_>,
    ) -> Result<Vec<Box<dyn logql::StreamCursor + '_>>, logql::SourceError> {
        Ok(Vec::new())
    }
}

impl Reader {
    /// Streams matching any of the selectors with data in `[start, end)`.
    pub fn series(
        &self,
        _selectors: &[Vec<Matcher>],
        _start: i64,
        _end: i64,
    ) -> Result<Vec<Labels>, StoreError> {
        Ok(Vec::new())
    }

    pub fn label_names(
        &self,
        _selector: Option<&[Matcher]>,
        _start: i64,
        _end: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    pub fn label_values(
        &self,
        _name: &str,
        _selector: Option<&[Matcher]>,
        _start: i64,
        _end: i64,
    ) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    pub fn stream_stats(
        &self,
        _selector: &[Matcher],
        _start: i64,
        _end: i64,
    ) -> Result<Vec<StreamStats>, StoreError> {
        Ok(Vec::new())
    }
}
