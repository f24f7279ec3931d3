//! What sources hand to the batcher: a line with its stream, and the read position that
//! becomes durable once the batch holding the line is acknowledged.

use std::sync::Arc;

use protocol::push::LabelPairAdapter;
use serde::{Deserialize, Serialize};

/// A stream as sources build it once and share between lines: the label string Loki
/// indexes and the structured metadata every line of it carries.
#[derive(Debug, PartialEq)]
pub struct Stream {
    /// `{name="value", ...}`, sorted.
    pub labels: String,
    pub metadata: Vec<LabelPairAdapter>,
    /// Bytes the metadata adds to each line, for batch sizes.
    pub metadata_bytes: usize,
}

impl Stream {
    pub fn new(labels: &protocol::Labels, metadata: Vec<(String, String)>) -> Arc<Stream> {
        let metadata_bytes = metadata.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
        Arc::new(Stream {
            labels: labels.to_string(),
            metadata: metadata
                .into_iter()
                .map(|(name, value)| LabelPairAdapter { name, value })
                .collect(),
            metadata_bytes,
        })
    }
}

/// One log line on its way to the server.
#[derive(Debug)]
pub struct Entry {
    pub stream: Arc<Stream>,
    /// Unix nanoseconds.
    pub ts: i64,
    pub line: String,
    /// Where the source stands once this line is stored.
    pub mark: Option<Mark>,
}

/// A source's read position after a line. The last mark of each source in a batch is
/// saved with the batch in the disk buffer and applied to the positions file when the
/// server acknowledges the batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Mark {
    /// A file read up to `offset` (the start of the next unread line).
    File {
        path: SharedPath,
        dev: u64,
        ino: u64,
        offset: u64,
    },
    /// Kubernetes events seen up to this resource version and event time.
    Events { resource_version: String, ts: i64 },
    /// The cluster's events (those no node reports) seen up to here by the leader of
    /// `term` (see [`crate::kube::lease`]).
    ClusterEvents {
        resource_version: String,
        ts: i64,
        term: i64,
    },
    /// A container's log read through the API up to this line timestamp.
    ApiLog { container: String, ts: i64 },
    /// A container termination already reported.
    Terminated { key: String },
}

impl Mark {
    /// Marks with the same key replace each other: only the newest matters.
    pub fn key(&self) -> MarkKey {
        match self {
            Mark::File { path, .. } => MarkKey::File(path.clone()),
            Mark::Events { .. } => MarkKey::Events,
            Mark::ClusterEvents { .. } => MarkKey::ClusterEvents,
            Mark::ApiLog { container, .. } => MarkKey::ApiLog(container.clone()),
            Mark::Terminated { key } => MarkKey::Terminated(key.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MarkKey {
    File(SharedPath),
    Events,
    ClusterEvents,
    ApiLog(String),
    Terminated(String),
}

/// A file path shared by every line of the file: a mark per line costs a reference count,
/// not an allocation. Serialized as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharedPath(pub Arc<str>);

impl From<&str> for SharedPath {
    fn from(s: &str) -> SharedPath {
        SharedPath(Arc::from(s))
    }
}

impl std::fmt::Display for SharedPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for SharedPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SharedPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SharedPath, D::Error> {
        let s = String::deserialize(d)?;
        Ok(SharedPath(Arc::from(s)))
    }
}

/// Turns bytes read from a source into a line: valid UTF-8 is copied once; anything else
/// has its invalid sequences replaced with U+FFFD (a push must carry UTF-8) and is counted.
pub fn line_from_bytes(b: &[u8], metrics: &crate::metrics::Metrics) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            metrics.invalid_utf8.inc();
            String::from_utf8_lossy(b).into_owned()
        }
    }
}
