//! Writes a part file front to back: blocks as they are encoded, then the template tables,
//! the index and the footer. Memory stays at one block and the part's templates whatever
//! the part's size.

use std::io::Write;

use logql::Batch;
use protocol::Labels;

use crate::block::{BlockEncoder, MAX_ENTRIES, MAX_RAW_BYTES};
use crate::filter::FilterBuilder;
use crate::part::index::{BlockMeta, PartIndex, StreamMeta, TableMeta};
use crate::templated::TemplateTable;

/// zstd level of template tables: one per part, a small share of the work, read once per
/// part by a query.
const TABLE_LEVEL: i32 = 3;

pub struct PartWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
    index: PartIndex,
    filter: FilterBuilder,
    /// The templates of the blocks this writer encodes, and that table's number.
    templates: TemplateTable,
    own_table: Option<u32>,
    /// Per table, in order: its stored bytes, when copied from another part (else it is
    /// the writer's own, written at the end).
    copied: Vec<Option<(TableMeta, Vec<u8>)>>,
}

impl<W: Write> PartWriter<W> {
    pub fn new(out: W) -> PartWriter<W> {
        PartWriter {
            out,
            written: 0,
            buf: Vec::new(),
            index: PartIndex {
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                ..PartIndex::default()
            },
            filter: FilterBuilder::new(),
            templates: TemplateTable::default(),
            own_table: None,
            copied: Vec::new(),
        }
    }

    /// Records that this part replaces `name` (see [`PartIndex::supersedes`]).
    pub fn supersede(&mut self, name: String) {
        self.index.supersedes.push(name);
    }

    /// Adds one stream's entries, sorted by (timestamp, line), deduplicated, with lines,
    /// cut into blocks. Each stream is added once.
    pub fn add_stream(
        &mut self,
        labels: &Labels,
        entries: &Batch,
        enc: &mut BlockEncoder,
    ) -> std::io::Result<()> {
        self.add_stream_range(labels, entries, 0..entries.len(), enc)
    }

    /// Adds entries `range` of `entries` as one stream (see [`PartWriter::add_stream`]).
    pub fn add_stream_range(
        &mut self,
        labels: &Labels,
        entries: &Batch,
        range: std::ops::Range<usize>,
        enc: &mut BlockEncoder,
    ) -> std::io::Result<()> {
        let n = range.end;
        if range.is_empty() {
            return Ok(());
        }
        let first_block = self.index.blocks.len() as u32;
        let mut start = range.start;
        while start < n {
            // Cut at MAX_ENTRIES or MAX_RAW_BYTES, whichever comes first; at least one entry.
            let base = entries.line_offsets[start];
            let mut end = (start + MAX_ENTRIES).min(n);
            if (entries.line_offsets[end] - base) as usize > MAX_RAW_BYTES {
                let limit = base as usize + MAX_RAW_BYTES;
                end = start
                    + 1
                    + entries.line_offsets[start + 1..=end]
                        .partition_point(|&o| (o as usize) <= limit)
                        .saturating_sub(1);
                end = end.clamp(start + 1, n);
            }
            self.buf.clear();
            let columns = enc.encode(entries, start..end, &mut self.templates, &mut self.buf)?;
            let table = *self.own_table.get_or_insert_with(|| {
                self.copied.push(None);
                (self.copied.len() - 1) as u32
            });
            self.filter.clear();
            for i in start..end {
                self.filter.add_line(entries.line(i));
            }
            let before = self.buf.len();
            self.filter.finish_into(&mut self.buf);
            let filter_len = (self.buf.len() - before) as u32;
            let meta = BlockMeta {
                min_ts: entries.timestamps[start],
                max_ts: entries.timestamps[end - 1],
                count: (end - start) as u32,
                raw_bytes: u64::from(entries.line_offsets[end] - base),
                offset: self.written,
                columns,
                filter_len,
                table: Some(table),
            };
            self.out.write_all(&self.buf)?;
            self.written += self.buf.len() as u64;
            self.index.min_ts = self.index.min_ts.min(meta.min_ts);
            self.index.max_ts = self.index.max_ts.max(meta.max_ts);
            self.index.blocks.push(meta);
            start = end;
        }
        self.push_stream(labels, first_block);
        Ok(())
    }

    /// The number of blocks written so far: pass it to [`PartWriter::end_encoded_stream`].
    pub fn block_count(&self) -> u32 {
        self.index.blocks.len() as u32
    }

    /// Adds a template table of another part (see [`PartWriter::add_encoded_block`]) and
    /// returns its number in this one.
    pub fn add_encoded_table(&mut self, meta: &TableMeta, bytes: Vec<u8>) -> u32 {
        debug_assert_eq!(bytes.len() as u64, u64::from(meta.len));
        self.copied.push(Some((meta.clone(), bytes)));
        (self.copied.len() - 1) as u32
    }

    /// Adds a block encoded elsewhere (compaction copies blocks without decompressing):
    /// its description, with its template table's number in this part (see
    /// [`PartWriter::add_encoded_table`]), and its bytes (columns and filter). Close the
    /// stream with [`PartWriter::end_encoded_stream`].
    pub fn add_encoded_block(&mut self, meta: &BlockMeta, bytes: &[u8]) -> std::io::Result<()> {
        debug_assert_eq!(bytes.len() as u64, meta.stored_len());
        self.out.write_all(bytes)?;
        let mut m = meta.clone();
        m.offset = self.written;
        self.written += bytes.len() as u64;
        self.index.min_ts = self.index.min_ts.min(m.min_ts);
        self.index.max_ts = self.index.max_ts.max(m.max_ts);
        self.index.blocks.push(m);
        Ok(())
    }

    /// Ends a stream whose blocks were added with [`PartWriter::add_encoded_block`] since
    /// `first_block`.
    pub fn end_encoded_stream(&mut self, labels: &Labels, first_block: u32) {
        if self.index.blocks.len() as u32 > first_block {
            self.push_stream(labels, first_block);
        }
    }

    fn push_stream(&mut self, labels: &Labels, first_block: u32) {
        let blocks = &self.index.blocks[first_block as usize..];
        self.index.streams.push(StreamMeta {
            labels: labels.clone(),
            fingerprint: labels.fingerprint(),
            min_ts: blocks.iter().map(|b| b.min_ts).min().unwrap_or(0),
            max_ts: blocks.iter().map(|b| b.max_ts).max().unwrap_or(0),
            blocks: first_block..self.index.blocks.len() as u32,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.index.blocks.is_empty()
    }

    /// Writes the template tables, the index and the footer; returns the sink, the index
    /// and the file's size.
    pub fn finish(mut self) -> std::io::Result<(W, PartIndex, u64)> {
        for copied in std::mem::take(&mut self.copied) {
            // A copied table keeps its CRC: damage stays detectable.
            let (meta, bytes) = match copied {
                Some(copied) => copied,
                None => {
                    self.buf.clear();
                    self.templates.encode(&mut self.buf);
                    let bytes = zstd::bulk::compress(&self.buf, TABLE_LEVEL)?;
                    let too_big = || std::io::Error::other("template table larger than 4 GiB");
                    let meta = TableMeta {
                        offset: 0,
                        len: u32::try_from(bytes.len()).map_err(|_| too_big())?,
                        raw_len: u32::try_from(self.buf.len()).map_err(|_| too_big())?,
                        crc: crc32fast::hash(&bytes),
                    };
                    (meta, bytes)
                }
            };
            self.index.tables.push(TableMeta {
                offset: self.written,
                ..meta
            });
            self.out.write_all(&bytes)?;
            self.written += bytes.len() as u64;
        }
        self.buf.clear();
        self.index.encode(self.written, &mut self.buf)?;
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        let size = self.written + self.buf.len() as u64;
        Ok((self.out, self.index, size))
    }
}
