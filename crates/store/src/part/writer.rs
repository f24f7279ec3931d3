//! Writes a part file front to back: blocks as they are encoded, then the template tables
//! (one per service), the index and the footer. Memory stays at one block and the part's
//! templates whatever the part's size.

use std::io::Write;

use logql::Batch;
use protocol::Labels;

use crate::block::{BlockEncoder, MAX_ENTRIES, MAX_RAW_BYTES};
use crate::filter::FilterBuilder;
use crate::part::index::{BlockMeta, PartIndex, StreamMeta, TableMeta};
use crate::templated::TemplateTable;

/// zstd level of template tables: a small share of the work, and read once per part and
/// service by a query.
const TABLE_LEVEL: i32 = 3;

/// Streams with the same value of this label share a template table: the streams of one
/// application write the same kinds of lines, those of others rarely, and a query that
/// reads one application's lines then decodes only its table. The server gives every
/// stream one, as Loki does.
const SERVICE_LABEL: &str = "service_name";

/// A template table of the part being written.
enum Table {
    /// Built from the blocks this writer encodes: an index into `PartWriter::own`.
    Own(usize),
    /// Copied from another part, as stored.
    Copied(TableMeta, Vec<u8>),
}

pub struct PartWriter<W: Write> {
    out: W,
    written: u64,
    buf: Vec<u8>,
    index: PartIndex,
    filter: FilterBuilder,
    /// The part's template tables, in order, written at the end.
    tables: Vec<Table>,
    /// The tables this writer builds, and per service the number and place of its own.
    own: Vec<TemplateTable>,
    by_service: std::collections::HashMap<String, (u32, usize)>,
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
            tables: Vec::new(),
            own: Vec::new(),
            by_service: std::collections::HashMap::new(),
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
        let service = labels.get(SERVICE_LABEL).unwrap_or_default();
        let (table, own) = match self.by_service.get(service) {
            Some(&t) => t,
            None => {
                let t = (self.tables.len() as u32, self.own.len());
                self.tables.push(Table::Own(self.own.len()));
                self.own.push(TemplateTable::default());
                self.by_service.insert(service.to_string(), t);
                t
            }
        };
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
            let columns = enc.encode(entries, start..end, &mut self.own[own], &mut self.buf)?;
            self.filter.clear();
            enc.add_to_filter(entries, &mut self.filter);
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
                filter_templates: true,
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
        self.tables.push(Table::Copied(meta.clone(), bytes));
        (self.tables.len() - 1) as u32
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
        for table in std::mem::take(&mut self.tables) {
            // A copied table keeps its CRC: damage stays detectable.
            let (meta, bytes) = match table {
                Table::Copied(meta, bytes) => (meta, bytes),
                Table::Own(i) => {
                    self.buf.clear();
                    self.own[i].encode(&mut self.buf);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::BlockDecoder;
    use crate::block::tests::batch;
    use crate::templated::Templates;

    #[test]
    fn streams_of_one_service_share_a_table_and_others_get_their_own() {
        let mut w = PartWriter::new(Vec::new());
        let mut enc = BlockEncoder::new(1).unwrap();
        let stream = |service: &str, pod: &str| {
            Labels::from_pairs([("pod", pod), ("service_name", service)])
        };
        let a = batch(&[
            (1, "GET /a 200 in 12ms", &[]),
            (2, "GET /b 404 in 3ms", &[]),
        ]);
        let b = batch(&[(1, "job 7 done", &[])]);
        w.add_stream(&stream("api", "api-1"), &a, &mut enc).unwrap();
        w.add_stream(&stream("worker", "w-1"), &b, &mut enc)
            .unwrap();
        w.add_stream(&stream("api", "api-2"), &a, &mut enc).unwrap();
        let (file, index, size) = w.finish().unwrap();
        assert_eq!(file.len() as u64, size);
        let tables: Vec<Option<u32>> = index.blocks.iter().map(|b| b.table).collect();
        assert_eq!(tables, vec![Some(0), Some(1), Some(0)]);
        assert_eq!(index.tables.len(), 2);
        // Each block reads back with its table; the api table holds its template once.
        let table = |i: usize| {
            let t = &index.tables[i];
            let packed = &file[t.offset as usize..(t.offset + u64::from(t.len)) as usize];
            assert_eq!(crc32fast::hash(packed), t.crc);
            let raw = zstd::bulk::decompress(packed, t.raw_len as usize).unwrap();
            assert_eq!(raw.windows(6).filter(|w| w == b"GET /a").count(), 1);
            Templates::decode(raw).unwrap()
        };
        let api = table(0);
        let mut dec = BlockDecoder::new().unwrap();
        for (block, want) in [(0, &a), (2, &a)] {
            let m = &index.blocks[block];
            let (off, len) = m.lines_range();
            let col = &file[off as usize..(off + len) as usize];
            let mut data = Vec::new();
            dec.lines(col, 2, want.line_data.len(), Some(&api), &mut data)
                .unwrap();
            assert_eq!(data, want.line_data);
        }
    }
}
