//! The index section and footer of a part file: everything a reader needs to plan a query
//! (streams with their label sets, blocks with their time ranges, counts, sizes), read with
//! one ranged read from the end of the file.
//!
//! ```text
//! [block 0: ts | lengths | lines | metadata | fields | filter] [block 1 ...] ...
//! [template table 0: zstd] [template table 1 ...] ...
//! [index: zstd of  version, min_ts, max_ts, superseded parts, streams, blocks, tables]
//! [footer, 32 bytes: index_offset u64 | index_len u32 | index_raw_len u32 | crc32 u32 |
//!                    format u32 | magic "KIROKUP1"]
//! ```
//!
//! Block offsets are not stored: blocks are laid out in order, each as long as the sum of
//! its column and filter sizes; the template tables ([`crate::templated`]) follow them, in
//! order. A part written by a flush has one table per service, shared by the blocks of its
//! streams; compaction copies blocks as they are, so a merged part keeps the tables of the
//! parts it merged, and each block names its own.

use protocol::{Label, Labels};

use crate::block::ColumnSizes;
use crate::codec::{Corrupt, Decoder, put_bytes, put_ivarint, put_u32, put_u64, put_uvarint};

pub const FOOTER_LEN: usize = 32;
const MAGIC: &[u8; 8] = b"KIROKUP1";
/// 2 added the fields column to blocks; 3 stores timestamps and lengths in byte planes; 4
/// gives fields columns a kind (JSON or logfmt) and many-valued codes in byte planes; 5
/// stores lines as templates and variables ([`crate::templated`]); 6 moves the templates
/// into tables shared by the part's blocks; 7 builds filters from templates (a flag per
/// block). Each column says which layout it has, so a compacted part may hold several;
/// parts of every earlier format are still read.
const FORMAT: u32 = 7;

/// A block as the index describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    pub min_ts: i64,
    pub max_ts: i64,
    pub count: u32,
    /// Sum of the line lengths.
    pub raw_bytes: u64,
    /// Where the block starts in the file (derived at load).
    pub offset: u64,
    pub columns: ColumnSizes,
    pub filter_len: u32,
    /// Its filter holds the trigrams of its templates and runs of digits, not of its lines
    /// (see [`crate::filter`]).
    pub filter_templates: bool,
    /// The template table its lines need, if they need one.
    pub table: Option<u32>,
}

/// A template table as the index describes it: where it is, and how to check and unpack it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMeta {
    /// Where it starts in the file (derived at load).
    pub offset: u64,
    /// Stored (zstd) and unpacked sizes.
    pub len: u32,
    pub raw_len: u32,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
}

impl BlockMeta {
    pub fn ts_range(&self) -> (u64, u64) {
        (self.offset, u64::from(self.columns.ts))
    }
    /// Timestamps and lengths, adjacent: one read.
    pub fn ts_and_lengths_range(&self) -> (u64, u64) {
        (
            self.offset,
            u64::from(self.columns.ts) + u64::from(self.columns.lengths),
        )
    }
    pub fn lines_range(&self) -> (u64, u64) {
        let c = &self.columns;
        (
            self.offset + u64::from(c.ts) + u64::from(c.lengths),
            u64::from(c.lines),
        )
    }
    pub fn meta_range(&self) -> (u64, u64) {
        let c = &self.columns;
        (
            self.offset + u64::from(c.ts) + u64::from(c.lengths) + u64::from(c.lines),
            u64::from(c.meta),
        )
    }
    pub fn fields_range(&self) -> (u64, u64) {
        let c = &self.columns;
        (
            self.offset
                + u64::from(c.ts)
                + u64::from(c.lengths)
                + u64::from(c.lines)
                + u64::from(c.meta),
            u64::from(c.fields),
        )
    }
    pub fn filter_range(&self) -> (u64, u64) {
        (self.offset + self.columns_len(), u64::from(self.filter_len))
    }
    pub fn columns_len(&self) -> u64 {
        let c = &self.columns;
        u64::from(c.ts)
            + u64::from(c.lengths)
            + u64::from(c.lines)
            + u64::from(c.meta)
            + u64::from(c.fields)
    }
    /// Bytes of the block in the file: columns and filter.
    pub fn stored_len(&self) -> u64 {
        self.columns_len() + u64::from(self.filter_len)
    }
}

/// A stream as the index describes it: its labels and its blocks, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamMeta {
    /// As stored; empty in a part of the view, whose streams are known by id (see
    /// `LoadedPart::new`).
    pub labels: Labels,
    pub fingerprint: u64,
    pub blocks: std::ops::Range<u32>,
    pub min_ts: i64,
    pub max_ts: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartIndex {
    pub min_ts: i64,
    pub max_ts: i64,
    /// Names of parts this one replaces (compaction): a reader that finds them ignores them.
    pub supersedes: Vec<String>,
    pub streams: Vec<StreamMeta>,
    pub blocks: Vec<BlockMeta>,
    pub tables: Vec<TableMeta>,
}

impl PartIndex {
    pub fn entries(&self) -> u64 {
        self.blocks.iter().map(|b| u64::from(b.count)).sum()
    }

    /// The index section and footer, appended to `out`, for a part whose blocks end at
    /// `index_offset`.
    pub fn encode(&self, index_offset: u64, out: &mut Vec<u8>) -> std::io::Result<()> {
        let mut raw = Vec::with_capacity(64 * self.blocks.len() + 128 * self.streams.len());
        put_uvarint(&mut raw, u64::from(FORMAT));
        put_ivarint(&mut raw, self.min_ts);
        put_ivarint(&mut raw, self.max_ts);
        put_uvarint(&mut raw, self.supersedes.len() as u64);
        for s in &self.supersedes {
            put_bytes(&mut raw, s.as_bytes());
        }
        put_uvarint(&mut raw, self.streams.len() as u64);
        for s in &self.streams {
            put_u64(&mut raw, s.fingerprint);
            put_uvarint(&mut raw, s.labels.len() as u64);
            for l in &s.labels {
                put_bytes(&mut raw, l.name.as_bytes());
                put_bytes(&mut raw, l.value.as_bytes());
            }
            put_uvarint(&mut raw, u64::from(s.blocks.start));
            put_uvarint(&mut raw, u64::from(s.blocks.end - s.blocks.start));
        }
        put_uvarint(&mut raw, self.blocks.len() as u64);
        for b in &self.blocks {
            put_ivarint(&mut raw, b.min_ts);
            put_uvarint(&mut raw, b.max_ts.wrapping_sub(b.min_ts) as u64);
            put_uvarint(&mut raw, u64::from(b.count));
            put_uvarint(&mut raw, b.raw_bytes);
            put_uvarint(&mut raw, u64::from(b.columns.ts));
            put_uvarint(&mut raw, u64::from(b.columns.lengths));
            put_uvarint(&mut raw, u64::from(b.columns.lines));
            put_uvarint(&mut raw, u64::from(b.columns.meta));
            put_uvarint(&mut raw, u64::from(b.columns.fields));
            put_uvarint(&mut raw, u64::from(b.filter_len));
            put_uvarint(&mut raw, b.table.map_or(0, |t| u64::from(t) + 1));
            put_uvarint(&mut raw, u64::from(b.filter_templates));
        }
        put_uvarint(&mut raw, self.tables.len() as u64);
        for t in &self.tables {
            put_uvarint(&mut raw, u64::from(t.len));
            put_uvarint(&mut raw, u64::from(t.raw_len));
            put_u32(&mut raw, t.crc);
        }
        let packed = zstd::bulk::compress(&raw, 3)?;
        let too_big = || std::io::Error::other("part index larger than 4 GiB");
        out.extend_from_slice(&packed);
        put_u64(out, index_offset);
        put_u32(out, u32::try_from(packed.len()).map_err(|_| too_big())?);
        put_u32(out, u32::try_from(raw.len()).map_err(|_| too_big())?);
        put_u32(out, crc32fast::hash(&packed));
        put_u32(out, FORMAT);
        out.extend_from_slice(MAGIC);
        Ok(())
    }
}

/// Where the index is, read from the last [`FOOTER_LEN`] bytes of a part.
#[derive(Debug, Clone, Copy)]
pub struct Footer {
    pub index_offset: u64,
    pub index_len: u32,
    index_raw_len: u32,
    crc: u32,
    format: u32,
}

impl Footer {
    pub fn decode(b: &[u8], file_len: u64) -> Result<Footer, Corrupt> {
        if b.len() != FOOTER_LEN || &b[24..32] != MAGIC {
            return Err(Corrupt);
        }
        let mut d = Decoder::new(b);
        let f = Footer {
            index_offset: d.u64()?,
            index_len: d.u32()?,
            index_raw_len: d.u32()?,
            crc: d.u32()?,
            format: d.u32()?,
        };
        if !(1..=FORMAT).contains(&f.format)
            || f.index_offset + u64::from(f.index_len) + FOOTER_LEN as u64 != file_len
        {
            return Err(Corrupt);
        }
        Ok(f)
    }

    pub fn decode_index(&self, packed: &[u8]) -> Result<PartIndex, Corrupt> {
        if crc32fast::hash(packed) != self.crc || packed.len() != self.index_len as usize {
            return Err(Corrupt);
        }
        // The footer is not under the checksum; the size in the zstd frame's header is. A
        // damaged footer is caught here, before its size is allocated.
        let declared = zstd::zstd_safe::get_frame_content_size(packed).map_err(|_| Corrupt)?;
        if declared != Some(u64::from(self.index_raw_len)) {
            return Err(Corrupt);
        }
        let raw =
            zstd::bulk::decompress(packed, self.index_raw_len as usize).map_err(|_| Corrupt)?;
        let mut d = Decoder::new(&raw);
        if d.uvarint()? != u64::from(self.format) {
            return Err(Corrupt);
        }
        let mut idx = PartIndex {
            min_ts: d.ivarint()?,
            max_ts: d.ivarint()?,
            ..PartIndex::default()
        };
        let n = d.count(1)?;
        for _ in 0..n {
            idx.supersedes.push(d.str()?.to_string());
        }
        let n = d.count(11)?;
        for _ in 0..n {
            let fingerprint = d.u64()?;
            let nl = d.count(2)?;
            let mut labels = Vec::with_capacity(nl);
            for _ in 0..nl {
                let name = d.str()?.to_string();
                let value = d.str()?.to_string();
                labels.push(Label { name, value });
            }
            if !labels.windows(2).all(|w| w[0].name < w[1].name) {
                return Err(Corrupt);
            }
            let start = u32::try_from(d.uvarint()?).map_err(|_| Corrupt)?;
            let len = u32::try_from(d.uvarint()?).map_err(|_| Corrupt)?;
            idx.streams.push(StreamMeta {
                labels: Labels::from_sorted(labels),
                fingerprint,
                blocks: start..start.checked_add(len).ok_or(Corrupt)?,
                min_ts: 0,
                max_ts: 0,
            });
        }
        let n = d.count(9)?;
        let mut offset = 0u64;
        let u32v = |d: &mut Decoder<'_>| u32::try_from(d.uvarint()?).map_err(|_| Corrupt);
        for _ in 0..n {
            let min_ts = d.ivarint()?;
            let max_ts = min_ts.wrapping_add(d.uvarint()? as i64);
            let count = u32v(&mut d)?;
            let raw_bytes = d.uvarint()?;
            let columns = ColumnSizes {
                ts: u32v(&mut d)?,
                lengths: u32v(&mut d)?,
                lines: u32v(&mut d)?,
                meta: u32v(&mut d)?,
                fields: if self.format >= 2 { u32v(&mut d)? } else { 0 },
            };
            let filter_len = u32v(&mut d)?;
            let table = match self.format {
                6.. => u32v(&mut d)?.checked_sub(1),
                _ => None,
            };
            let filter_templates = match self.format {
                7.. => match d.uvarint()? {
                    0 => false,
                    1 => true,
                    _ => return Err(Corrupt),
                },
                _ => false,
            };
            let b = BlockMeta {
                min_ts,
                max_ts,
                count,
                raw_bytes,
                offset,
                columns,
                filter_len,
                filter_templates,
                table,
            };
            offset += b.stored_len();
            idx.blocks.push(b);
        }
        if self.format >= 6 {
            let n = d.count(6)?;
            for _ in 0..n {
                let t = TableMeta {
                    offset,
                    len: u32v(&mut d)?,
                    raw_len: u32v(&mut d)?,
                    crc: d.u32()?,
                };
                offset += u64::from(t.len);
                idx.tables.push(t);
            }
        }
        if idx
            .blocks
            .iter()
            .any(|b| b.table.is_some_and(|t| t as usize >= idx.tables.len()))
        {
            return Err(Corrupt);
        }
        if offset != self.index_offset {
            return Err(Corrupt);
        }
        for s in &mut idx.streams {
            let blocks = idx
                .blocks
                .get(s.blocks.start as usize..s.blocks.end as usize)
                .ok_or(Corrupt)?;
            s.min_ts = blocks.iter().map(|b| b.min_ts).min().unwrap_or(0);
            s.max_ts = blocks.iter().map(|b| b.max_ts).max().unwrap_or(0);
        }
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::any;

    fn index() -> PartIndex {
        let block = |min_ts: i64, count: u32, offset: u64| BlockMeta {
            min_ts,
            max_ts: min_ts + 100,
            count,
            raw_bytes: 1000,
            offset,
            columns: ColumnSizes {
                ts: 10,
                lengths: 5,
                lines: 200,
                meta: 0,
                fields: 7,
            },
            filter_len: 64,
            filter_templates: true,
            table: Some(0),
        };
        let len = block(0, 0, 0).stored_len();
        PartIndex {
            min_ts: 5,
            max_ts: 305,
            supersedes: vec!["p1".into()],
            streams: vec![StreamMeta {
                labels: Labels::from_pairs([("app", "a"), ("pod", "p")]),
                fingerprint: 42,
                blocks: 0..2,
                min_ts: 5,
                max_ts: 305,
            }],
            blocks: vec![
                block(5, 3, 0),
                BlockMeta {
                    table: None,
                    filter_templates: false,
                    ..block(205, 9, len)
                },
            ],
            tables: vec![TableMeta {
                offset: 2 * len,
                len: 300,
                raw_len: 1000,
                crc: 7,
            }],
        }
    }

    /// Where the index starts: after the blocks and the tables.
    fn index_offset(idx: &PartIndex) -> u64 {
        idx.blocks.iter().map(BlockMeta::stored_len).sum::<u64>()
            + idx.tables.iter().map(|t| u64::from(t.len)).sum::<u64>()
    }

    /// The index and footer of `idx` as a part ends with them, and where they start.
    fn encoded(idx: &PartIndex) -> (Vec<u8>, u64) {
        let at = index_offset(idx);
        let mut out = Vec::new();
        idx.encode(at, &mut out).unwrap();
        (out, at)
    }

    #[test]
    fn round_trips() {
        let idx = index();
        let (out, at) = encoded(&idx);
        let f = Footer::decode(&out[out.len() - FOOTER_LEN..], at + out.len() as u64).unwrap();
        assert_eq!(f.decode_index(&out[..f.index_len as usize]).unwrap(), idx);
        // A block naming a table the part does not have is damage.
        let mut bad = index();
        bad.blocks[1].table = Some(1);
        let (out, at) = encoded(&bad);
        let f = Footer::decode(&out[out.len() - FOOTER_LEN..], at + out.len() as u64).unwrap();
        assert_eq!(f.decode_index(&out[..f.index_len as usize]), Err(Corrupt));
    }

    /// The footer's raw index length (bytes 12..16) is outside the checksum: any other
    /// value than the one written is damage, found before it is allocated.
    #[test]
    fn a_damaged_raw_length_in_the_footer_is_damage() {
        let (mut out, at) = encoded(&index());
        let file_len = at + out.len() as u64;
        let footer = out.len() - FOOTER_LEN;
        let written = u32::from_le_bytes(out[footer + 12..footer + 16].try_into().unwrap());
        for raw_len in [0, written - 1, written + 1, u32::MAX] {
            out[footer + 12..footer + 16].copy_from_slice(&raw_len.to_le_bytes());
            let f = Footer::decode(&out[footer..], file_len).unwrap();
            assert_eq!(
                f.decode_index(&out[..f.index_len as usize]),
                Err(Corrupt),
                "{raw_len}"
            );
        }
    }

    proptest::proptest! {
        /// A damaged index or footer is `Corrupt`, never a panic.
        #[test]
        fn damaged_indexes_never_panic(
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<proptest::sample::Index>(),
        ) {
            let (mut out, at) = encoded(&index());
            for (i, v) in &flips {
                let i = i.index(out.len());
                out[i] ^= v;
            }
            let out = &out[cut.index(out.len() + 1)..];
            let file_len = at + out.len() as u64;
            if out.len() >= FOOTER_LEN
                && let Ok(f) = Footer::decode(&out[out.len() - FOOTER_LEN..], file_len)
            {
                let _ = f.decode_index(&out[..(f.index_len as usize).min(out.len())]);
            }
        }
    }
}
