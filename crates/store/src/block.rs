//! A block: up to [`MAX_ENTRIES`] entries of one stream, sorted by (timestamp, line) and
//! free of exact duplicates, stored as separately compressed columns so that a query reads
//! only the columns it needs:
//!
//! ```text
//! timestamps   first ts (zigzag varint), then deltas (varint)       ─┐ read by every query
//! lengths      line lengths (varint)                                ─┘ (one ranged read)
//! lines        the lines concatenated                               ── only with Columns::lines
//! metadata     per-block dictionary of (name, value), per entry ids ── only with Columns::metadata
//! fields       JSON members' tokens, per name a dictionary and codes ── only with Columns::fields
//! ```
//!
//! The fields column is there only when every line of the block is a JSON object
//! ([`logql::fields`]); it is small (names with few distinct values in a block only).
//!
//! Each column is `codec u8, raw length varint, payload`; the codec is zstd or raw,
//! whichever is smaller (raw wins for short columns, where zstd's frame costs more than it
//! saves). In memory a decoded block is a [`logql::Batch`], the type cursors hand out.

use logql::Batch;
use logql::fields::{FieldColumn, Fields, FieldsWriter};

use crate::codec::{Corrupt, Decoder, put_bytes, put_ivarint, put_uvarint};

/// Entries per block at most; a block is also cut at [`MAX_RAW_BYTES`] of lines.
pub const MAX_ENTRIES: usize = 8192;
pub const MAX_RAW_BYTES: usize = 1 << 20;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;

/// Compression contexts and scratch space, reused across blocks.
pub struct BlockEncoder {
    lines_level: i32,
    zstd_lines: zstd::bulk::Compressor<'static>,
    zstd_small: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
    packed: Vec<u8>,
    fields: FieldsWriter,
}

/// Where each encoded column of a block ended up, relative to the block start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColumnSizes {
    pub ts: u32,
    pub lengths: u32,
    pub lines: u32,
    pub meta: u32,
    pub fields: u32,
}

impl BlockEncoder {
    pub fn new(lines_level: i32) -> std::io::Result<BlockEncoder> {
        Ok(BlockEncoder {
            lines_level,
            zstd_lines: zstd::bulk::Compressor::new(lines_level)?,
            zstd_small: zstd::bulk::Compressor::new(1)?,
            scratch: Vec::new(),
            packed: Vec::new(),
            fields: FieldsWriter::new(),
        })
    }

    pub fn lines_level(&self) -> i32 {
        self.lines_level
    }

    /// Appends entries `range` of `b` (sorted, deduplicated, with lines) as a block to `out`.
    pub fn encode(
        &mut self,
        b: &Batch,
        range: std::ops::Range<usize>,
        out: &mut Vec<u8>,
    ) -> std::io::Result<ColumnSizes> {
        let mut sizes = ColumnSizes::default();
        // timestamps
        self.scratch.clear();
        let ts = &b.timestamps[range.clone()];
        let mut prev = ts.first().copied().unwrap_or(0);
        put_ivarint(&mut self.scratch, prev);
        for &t in &ts[1..] {
            put_uvarint(&mut self.scratch, (t - prev) as u64);
            prev = t;
        }
        sizes.ts = self.column(out)?;
        // lengths
        self.scratch.clear();
        for &l in &b.line_lengths[range.clone()] {
            put_uvarint(&mut self.scratch, u64::from(l));
        }
        sizes.lengths = self.column(out)?;
        // lines, compressed from where they are (no copy)
        let from = b.line_offsets[range.start] as usize;
        let to = b.line_offsets[range.end] as usize;
        sizes.lines = encode_column(
            &mut self.zstd_lines,
            &mut self.packed,
            &b.line_data[from..to],
            out,
        )?;
        // metadata
        if !b.metadata_offsets.is_empty() {
            let ids_from = b.metadata_offsets[range.start] as usize;
            let ids_to = b.metadata_offsets[range.end] as usize;
            if ids_to > ids_from {
                // A block-local dictionary: only the pairs this range uses.
                let mut remap = vec![u32::MAX; b.metadata_dict.len()];
                let mut used: Vec<u32> = Vec::new();
                for &id in &b.metadata_ids[ids_from..ids_to] {
                    if remap[id as usize] == u32::MAX {
                        remap[id as usize] = used.len() as u32;
                        used.push(id);
                    }
                }
                self.scratch.clear();
                put_uvarint(&mut self.scratch, used.len() as u64);
                for &id in &used {
                    let (n, v) = &b.metadata_dict[id as usize];
                    put_bytes(&mut self.scratch, n.as_bytes());
                    put_bytes(&mut self.scratch, v.as_bytes());
                }
                for i in range.clone() {
                    let s = b.metadata_offsets[i] as usize;
                    let e = b.metadata_offsets[i + 1] as usize;
                    put_uvarint(&mut self.scratch, (e - s) as u64);
                    for &id in &b.metadata_ids[s..e] {
                        put_uvarint(&mut self.scratch, u64::from(remap[id as usize]));
                    }
                }
                sizes.meta = self.column(out)?;
            }
        }
        // fields, when the lines are JSON objects
        self.fields.reset();
        if b.line(range.start).trim_ascii_start().first() == Some(&b'{') {
            for i in range.clone() {
                if !self.fields.add(b.line(i)) {
                    break;
                }
            }
        }
        if let Some(f) = self.fields.finish() {
            self.scratch.clear();
            encode_fields(&f, &mut self.scratch);
            sizes.fields = self.column(out)?;
        }
        Ok(sizes)
    }

    /// Encodes `scratch` as a small column (timestamps, lengths, metadata).
    fn column(&mut self, out: &mut Vec<u8>) -> std::io::Result<u32> {
        encode_column(&mut self.zstd_small, &mut self.packed, &self.scratch, out)
    }
}

fn encode_fields(f: &Fields, out: &mut Vec<u8>) {
    put_uvarint(out, f.columns.len() as u64);
    for c in &f.columns {
        put_bytes(out, c.name.as_bytes());
        put_uvarint(out, c.tokens.len() as u64);
        for t in c.tokens.iter() {
            put_bytes(out, t);
        }
    }
    for c in &f.columns {
        out.extend_from_slice(&c.codes);
    }
    for names in [&f.uncovered, &f.nested] {
        put_uvarint(out, names.len() as u64);
        for n in names {
            put_bytes(out, n.as_bytes());
        }
    }
}

/// Appends `raw` as a column to `out`: zstd-compressed with `z` when that saves at least
/// a ninth, else as it is. Returns the column's encoded size.
fn encode_column(
    z: &mut zstd::bulk::Compressor<'static>,
    packed: &mut Vec<u8>,
    raw: &[u8],
    out: &mut Vec<u8>,
) -> std::io::Result<u32> {
    let start = out.len();
    let mut codec = CODEC_RAW;
    if raw.len() >= 64 {
        packed.clear();
        packed.reserve(zstd::zstd_safe::compress_bound(raw.len()));
        z.compress_to_buffer(raw, packed)?;
        if packed.len() + packed.len() / 8 < raw.len() {
            codec = CODEC_ZSTD;
        }
    }
    out.push(codec);
    put_uvarint(out, raw.len() as u64);
    if codec == CODEC_ZSTD {
        out.extend_from_slice(packed);
    } else {
        out.extend_from_slice(raw);
    }
    u32::try_from(out.len() - start)
        .map_err(|_| std::io::Error::other("block column larger than 4 GiB"))
}

/// Decompression context and scratch space, reused across blocks.
pub struct BlockDecoder {
    zstd: zstd::bulk::Decompressor<'static>,
    scratch: Vec<u8>,
}

impl BlockDecoder {
    pub fn new() -> std::io::Result<BlockDecoder> {
        Ok(BlockDecoder {
            zstd: zstd::bulk::Decompressor::new()?,
            scratch: Vec::new(),
        })
    }

    /// The raw bytes of a column, decompressed into `out` (cleared first).
    fn column_into(&mut self, col: &[u8], out: &mut Vec<u8>) -> Result<(), Corrupt> {
        let mut d = Decoder::new(col);
        let codec = d.u8()?;
        let raw_len = usize::try_from(d.uvarint()?).map_err(|_| Corrupt)?;
        let payload = &col[d.position()..];
        out.clear();
        match codec {
            CODEC_RAW => {
                if payload.len() != raw_len {
                    return Err(Corrupt);
                }
                out.extend_from_slice(payload);
            }
            CODEC_ZSTD => {
                // A column never expands beyond what a block can hold.
                if raw_len > 64 * MAX_RAW_BYTES {
                    return Err(Corrupt);
                }
                out.reserve(raw_len);
                let n = self
                    .zstd
                    .decompress_to_buffer(payload, out)
                    .map_err(|_| Corrupt)?;
                if n != raw_len {
                    return Err(Corrupt);
                }
            }
            _ => return Err(Corrupt),
        }
        Ok(())
    }

    /// Appends `count` timestamps to `out`.
    pub fn timestamps(
        &mut self,
        col: &[u8],
        count: usize,
        out: &mut Vec<i64>,
    ) -> Result<(), Corrupt> {
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.column_into(col, &mut raw).and_then(|()| {
            let mut d = Decoder::new(&raw);
            out.reserve(count);
            if count == 0 {
                return Ok(());
            }
            let mut t = d.ivarint()?;
            out.push(t);
            for _ in 1..count {
                t = t.checked_add(d.uvarint()? as i64).ok_or(Corrupt)?;
                out.push(t);
            }
            Ok(())
        });
        self.scratch = raw;
        r
    }

    /// Appends `count` line lengths to `out`.
    pub fn lengths(&mut self, col: &[u8], count: usize, out: &mut Vec<u32>) -> Result<(), Corrupt> {
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.column_into(col, &mut raw).and_then(|()| {
            let mut d = Decoder::new(&raw);
            out.reserve(count);
            for _ in 0..count {
                out.push(u32::try_from(d.uvarint()?).map_err(|_| Corrupt)?);
            }
            Ok(())
        });
        self.scratch = raw;
        r
    }

    /// Decompresses the lines column into `data` (cleared first).
    pub fn lines(&mut self, col: &[u8], data: &mut Vec<u8>) -> Result<(), Corrupt> {
        self.column_into(col, data)
    }

    /// Decodes the metadata column of a block of `count` entries into `dict`, `offsets`
    /// (`count + 1` items) and `ids` (all cleared first).
    pub fn metadata(
        &mut self,
        col: &[u8],
        count: usize,
        dict: &mut Vec<(String, String)>,
        offsets: &mut Vec<u32>,
        ids: &mut Vec<u32>,
    ) -> Result<(), Corrupt> {
        dict.clear();
        offsets.clear();
        ids.clear();
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.column_into(col, &mut raw).and_then(|()| {
            let mut d = Decoder::new(&raw);
            let n = d.count(2)?;
            for _ in 0..n {
                let name = d.str()?.to_string();
                let value = d.str()?.to_string();
                dict.push((name, value));
            }
            offsets.push(0);
            for _ in 0..count {
                let k = d.count(1)?;
                for _ in 0..k {
                    let id = d.uvarint()?;
                    if id >= n as u64 {
                        return Err(Corrupt);
                    }
                    ids.push(id as u32);
                }
                offsets.push(ids.len() as u32);
            }
            Ok(())
        });
        self.scratch = raw;
        r
    }
}

impl BlockDecoder {
    /// Decodes the fields column of a block of `count` entries.
    pub fn fields(&mut self, col: &[u8], count: usize) -> Result<Fields, Corrupt> {
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.column_into(col, &mut raw).and_then(|()| {
            let mut d = Decoder::new(&raw);
            let mut f = Fields::default();
            let n = d.count(2)?;
            for _ in 0..n {
                let name = d.str()?.to_string();
                let k = d.count(1)?;
                let mut tokens = Vec::with_capacity(k);
                for _ in 0..k {
                    tokens.push(d.bytes()?.to_vec());
                }
                f.columns.push(FieldColumn {
                    name,
                    tokens: std::sync::Arc::new(tokens),
                    codes: Vec::new(),
                });
            }
            for c in &mut f.columns {
                let codes = d.take(count)?;
                if codes.iter().any(|&k| usize::from(k) > c.tokens.len()) {
                    return Err(Corrupt);
                }
                c.codes = codes.to_vec();
            }
            for names in [&mut f.uncovered, &mut f.nested] {
                let n = d.count(1)?;
                for _ in 0..n {
                    names.push(d.str()?.to_string());
                }
            }
            Ok(f)
        });
        self.scratch = raw;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestEntry<'a> = (i64, &'a str, &'a [(&'a str, &'a str)]);

    pub(crate) fn batch(entries: &[TestEntry<'_>]) -> Batch {
        let mut b = Batch::default();
        b.line_offsets.push(0);
        let any_meta = entries.iter().any(|e| !e.2.is_empty());
        if any_meta {
            b.metadata_offsets.push(0);
        }
        for (ts, line, meta) in entries {
            b.timestamps.push(*ts);
            b.line_lengths.push(line.len() as u32);
            b.line_data.extend_from_slice(line.as_bytes());
            b.line_offsets.push(b.line_data.len() as u32);
            if any_meta {
                for (n, v) in *meta {
                    let id = match b.metadata_dict.iter().position(|(a, c)| a == n && c == v) {
                        Some(i) => i,
                        None => {
                            b.metadata_dict.push((n.to_string(), v.to_string()));
                            b.metadata_dict.len() - 1
                        }
                    };
                    b.metadata_ids.push(id as u32);
                }
                b.metadata_offsets.push(b.metadata_ids.len() as u32);
            }
        }
        b
    }

    #[test]
    fn fields_round_trip_and_bad_codes_are_refused() {
        let b = batch(&[
            (1, r#"{"level":"info","n":1}"#, &[]),
            (2, r#" {"level":"error"}"#, &[]),
        ]);
        let mut enc = BlockEncoder::new(1).unwrap();
        let mut out = Vec::new();
        let sizes = enc.encode(&b, 0..2, &mut out).unwrap();
        assert!(sizes.fields > 0);
        let start = (sizes.ts + sizes.lengths + sizes.lines + sizes.meta) as usize;
        let col = &out[start..start + sizes.fields as usize];
        let mut dec = BlockDecoder::new().unwrap();
        let f = dec.fields(col, 2).unwrap();
        assert_eq!(f.columns[0].name, "level");
        assert_eq!(f.columns[0].codes, vec![1, 2]);
        assert_eq!(f.columns[1].codes, vec![1, 0]);
        // A wrong entry count, or a code past the tokens, is damage.
        assert!(dec.fields(col, 3).is_err());
        let mut raw = Vec::new();
        encode_fields(&f, &mut raw);
        let last = raw.len() - 3; // the second column's last code, before two empty lists
        raw[last] = 9;
        let mut bad = vec![CODEC_RAW];
        put_uvarint(&mut bad, raw.len() as u64);
        bad.extend_from_slice(&raw);
        assert!(dec.fields(&bad, 2).is_err());
        // Text lines get no fields column.
        let t = batch(&[(1, "plain", &[]), (2, r#"{"a":1}"#, &[])]);
        let mut out = Vec::new();
        assert_eq!(enc.encode(&t, 0..2, &mut out).unwrap().fields, 0);
    }

    #[test]
    fn columns_round_trip() {
        let long = "x".repeat(300);
        let b = batch(&[
            (-5, "first", &[]),
            (10, &long, &[("trace_id", "abc"), ("user", "u1")]),
            (10, "same ts", &[("user", "u1")]),
            (1_700_000_000_000_000_000, "", &[]),
        ]);
        let mut enc = BlockEncoder::new(3).unwrap();
        let mut out = Vec::new();
        let sizes = enc.encode(&b, 1..4, &mut out).unwrap();
        assert!(sizes.meta > 0);
        let total = (sizes.ts + sizes.lengths + sizes.lines + sizes.meta) as usize;
        assert_eq!(out.len(), total);
        let mut dec = BlockDecoder::new().unwrap();
        let (a, rest) = out.split_at(sizes.ts as usize);
        let (l, rest) = rest.split_at(sizes.lengths as usize);
        let (ln, m) = rest.split_at(sizes.lines as usize);
        let mut ts = Vec::new();
        dec.timestamps(a, 3, &mut ts).unwrap();
        assert_eq!(ts, vec![10, 10, 1_700_000_000_000_000_000]);
        let mut lens = Vec::new();
        dec.lengths(l, 3, &mut lens).unwrap();
        assert_eq!(lens, vec![300, 7, 0]);
        let mut data = Vec::new();
        dec.lines(ln, &mut data).unwrap();
        assert_eq!(data, format!("{long}same ts").into_bytes());
        let (mut dict, mut offs, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        dec.metadata(m, 3, &mut dict, &mut offs, &mut ids).unwrap();
        assert_eq!(offs, vec![0, 2, 3, 3]);
        let pairs: Vec<_> = ids.iter().map(|&i| dict[i as usize].clone()).collect();
        assert_eq!(pairs[2], ("user".to_string(), "u1".to_string()));
        assert_eq!(pairs[0], ("trace_id".to_string(), "abc".to_string()));
        assert!(dec.timestamps(&out[..2], 3, &mut ts).is_err());
    }
}
