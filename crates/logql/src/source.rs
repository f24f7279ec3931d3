//! What the query engine asks of storage, and what storage hands back.
//!
//! The engine never sees files: it asks a [`Source`] for the streams that match a selector
//! over a time range and reads each stream as [`Batch`]es of entries, already in time order
//! (the query's direction) and free of exact duplicates. The request says which columns the
//! query needs ([`Columns`]) and which text a line must contain ([`RequiredText`]), so
//! storage can skip whole blocks from their summaries and leave lines compressed when a
//! metric needs only timestamps.

use protocol::Labels;

use crate::ast::Matcher;

/// Which way entries are read: `Forward` oldest first, `Backward` newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    Forward,
    #[default]
    Backward,
}

/// The columns a query reads. Timestamps and line lengths always come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub lines: bool,
    pub metadata: bool,
}

/// Text every matching line must contain, for skipping blocks with a token or n-gram
/// filter built at write time. Storage may ignore it (it is only a hint): the pipeline still
/// applies the real filter to every entry it is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredText {
    /// The line contains this substring (compared case-insensitively when asked).
    Literal {
        text: String,
        case_insensitive: bool,
    },
    /// All of these hold.
    All(Vec<RequiredText>),
    /// At least one of these holds.
    Any(Vec<RequiredText>),
}

/// A request for the entries of the streams matching `matchers` with
/// `start <= timestamp < end` (nanoseconds).
#[derive(Debug, Clone)]
pub struct Select<'a> {
    pub matchers: &'a [Matcher],
    pub start: i64,
    pub end: i64,
    pub direction: Direction,
    pub columns: Columns,
    pub required: Option<&'a RequiredText>,
    /// The label names the query takes from lines, when field columns written at ingest
    /// ([`crate::fields`]) may stand in for the lines: storage then hands out, for a block
    /// whose columns cover these names ([`crate::fields::Fields::plan`]), its
    /// [`Batch::fields`] (with lines only when [`Columns::lines`] asks), and the lines of
    /// every other source.
    pub fields: Option<&'a crate::fields::FieldNames>,
}

/// Why storage could not answer. Storage errors are the server's fault (HTTP 500), except
/// a limit the request itself hit.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Limit(String),
}

/// Storage, as the query engine sees it. `select` may be called from several threads.
pub trait Source: Sync {
    /// The streams that match `req.matchers` and have entries in the range, each as a
    /// cursor. Cursors read lazily: opening one decodes nothing.
    fn select(&self, req: &Select<'_>) -> Result<Vec<Box<dyn StreamCursor + '_>>, SourceError>;
}

/// One stream's entries, read batch by batch in the requested direction.
pub trait StreamCursor: Send {
    /// The stream's labels (its indexed identity).
    fn labels(&self) -> &Labels;

    /// A bound on the timestamp of the next entry without decoding anything: for a forward
    /// read no next entry is older than it, for a backward read none is newer. `None` when
    /// the stream has no more entries. A k-way merge across streams uses it to open only
    /// the blocks a limited query needs.
    fn peek_bound(&self) -> Option<i64>;

    /// The next batch, or `None` at the end. The batch is valid until the next call.
    fn next_batch(&mut self) -> Result<Option<&Batch>, SourceError>;
}

/// A run of one stream's entries in the requested direction. Column vectors are parallel:
/// entry `i` is `timestamps[i]`, `line_lengths[i]`, `line(i)` and `metadata(i)`.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub timestamps: Vec<i64>,
    pub line_lengths: Vec<u32>,
    /// Concatenated lines; empty unless [`Columns::lines`] was asked.
    pub line_data: Vec<u8>,
    /// `line_data[line_offsets[i]..line_offsets[i + 1]]` is line `i`; `len() + 1` items
    /// when lines were asked, else empty.
    pub line_offsets: Vec<u32>,
    /// The distinct structured-metadata pairs of this batch.
    pub metadata_dict: Vec<(String, String)>,
    /// `metadata_ids[metadata_offsets[i]..metadata_offsets[i + 1]]` index
    /// `metadata_dict` for entry `i`; `len() + 1` items when metadata was asked and the batch
    /// has any, else empty (no entry has metadata).
    pub metadata_offsets: Vec<u32>,
    pub metadata_ids: Vec<u32>,
    /// The lines' field columns, when [`Select::fields`] was asked and the entries come
    /// from one block whose columns cover the names; the lines are then not read.
    pub fields: Option<Box<crate::fields::Fields>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Line `i`; empty when lines were not read.
    pub fn line(&self, i: usize) -> &[u8] {
        if self.line_offsets.is_empty() {
            return b"";
        }
        &self.line_data[self.line_offsets[i] as usize..self.line_offsets[i + 1] as usize]
    }

    /// The metadata ids of entry `i` (indexes into `metadata_dict`).
    pub fn metadata_ids(&self, i: usize) -> &[u32] {
        if self.metadata_offsets.is_empty() {
            return &[];
        }
        &self.metadata_ids[self.metadata_offsets[i] as usize..self.metadata_offsets[i + 1] as usize]
    }

    /// The structured metadata of entry `i`.
    pub fn metadata(&self, i: usize) -> impl Iterator<Item = (&str, &str)> {
        self.metadata_ids(i).iter().map(|&id| {
            let (n, v) = &self.metadata_dict[id as usize];
            (n.as_str(), v.as_str())
        })
    }

    pub fn clear(&mut self) {
        self.timestamps.clear();
        self.line_lengths.clear();
        self.line_data.clear();
        self.line_offsets.clear();
        self.metadata_dict.clear();
        self.metadata_offsets.clear();
        self.metadata_ids.clear();
        self.fields = None;
    }
}

/// A [`Source`] over entries held in memory, for tests, the tail and small tools: every
/// stream's entries sorted by time, exact duplicates removed.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    streams: Vec<(Labels, Vec<MemoryEntry>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemoryEntry {
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

impl MemorySource {
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Adds entries to the stream with these labels.
    pub fn push(&mut self, labels: Labels, entries: impl IntoIterator<Item = MemoryEntry>) {
        let idx = match self.streams.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                self.streams.push((labels, Vec::new()));
                self.streams.len() - 1
            }
        };
        let v = &mut self.streams[idx].1;
        v.extend(entries);
        v.sort_by_key(|e| e.ts);
        v.dedup_by(|a, b| a.ts == b.ts && a.line == b.line);
    }
}

struct MemoryCursor<'a> {
    labels: &'a Labels,
    entries: Vec<&'a MemoryEntry>,
    done: bool,
    columns: Columns,
    batch: Batch,
}

impl Source for MemorySource {
    fn select(&self, req: &Select<'_>) -> Result<Vec<Box<dyn StreamCursor + '_>>, SourceError> {
        let mut out: Vec<Box<dyn StreamCursor + '_>> = Vec::new();
        for (labels, entries) in &self.streams {
            if !req
                .matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
            {
                continue;
            }
            let mut sel: Vec<&MemoryEntry> = entries
                .iter()
                .filter(|e| e.ts >= req.start && e.ts < req.end)
                .collect();
            if sel.is_empty() {
                continue;
            }
            if req.direction == Direction::Backward {
                sel.reverse();
            }
            out.push(Box::new(MemoryCursor {
                labels,
                entries: sel,
                done: false,
                // No field columns here: lines stand in for them.
                columns: Columns {
                    lines: req.columns.lines || req.fields.is_some(),
                    ..req.columns
                },
                batch: Batch::default(),
            }));
        }
        Ok(out)
    }
}

impl StreamCursor for MemoryCursor<'_> {
    fn labels(&self) -> &Labels {
        self.labels
    }

    fn peek_bound(&self) -> Option<i64> {
        if self.done {
            None
        } else {
            self.entries.first().map(|e| e.ts)
        }
    }

    fn next_batch(&mut self) -> Result<Option<&Batch>, SourceError> {
        if self.done {
            return Ok(None);
        }
        self.done = true;
        let b = &mut self.batch;
        b.clear();
        let any_meta = self.columns.metadata && self.entries.iter().any(|e| !e.metadata.is_empty());
        if self.columns.lines {
            b.line_offsets.push(0);
        }
        if any_meta {
            b.metadata_offsets.push(0);
        }
        for e in &self.entries {
            b.timestamps.push(e.ts);
            b.line_lengths.push(e.line.len() as u32);
            if self.columns.lines {
                b.line_data.extend_from_slice(e.line.as_bytes());
                b.line_offsets.push(b.line_data.len() as u32);
            }
            if any_meta {
                for (n, v) in &e.metadata {
                    let id = match b
                        .metadata_dict
                        .iter()
                        .position(|(dn, dv)| dn == n && dv == v)
                    {
                        Some(i) => i,
                        None => {
                            b.metadata_dict.push((n.clone(), v.clone()));
                            b.metadata_dict.len() - 1
                        }
                    };
                    b.metadata_ids.push(id as u32);
                }
                b.metadata_offsets.push(b.metadata_ids.len() as u32);
            }
        }
        Ok(Some(&self.batch))
    }
}
