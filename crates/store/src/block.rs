//! A block: up to [`MAX_ENTRIES`] entries of one stream, sorted by (timestamp, line) and
//! free of exact duplicates, stored as separately compressed columns so that a query reads
//! only the columns it needs:
//!
//! ```text
//! timestamps   first ts (i64), then deltas in byte planes           ─┐ read by every query
//! lengths      line lengths in byte planes                          ─┘ (one ranged read)
//! lines        templates and variables (crate::templated)           ── only with Columns::lines
//! metadata     per-block dictionary of (name, value), per entry ids ── only with Columns::metadata
//!              (every entry has a detected_level; see MetadataEncoder)
//! fields       JSON or logfmt fields' tokens, per name a dictionary and codes ── on request
//! ```
//!
//! The fields column is there only when every line of the block is a JSON object or
//! clean logfmt ([`logql::fields`]); it is small (only names whose distinct values in the
//! block are short and few enough).
//!
//! Each column is `codec u8, raw length varint, payload`; the codec is zstd or raw,
//! whichever is smaller (raw wins for short columns, where zstd's frame costs more than it
//! saves). In memory a decoded block is a [`logql::Batch`], the type cursors hand out.
//!
//! Integers are stored in *byte planes*: a width `w` (1 to 8 bytes, enough for the largest
//! value), then the lowest byte of every value, then the next byte of every value, and so
//! on. Decoding is a few passes of plain byte loads that the compiler vectorises (varints
//! took a branch per byte and were most of a `rate()` query), and zstd finds the mostly
//! constant high planes. Blocks written before planes (format 2 parts, also copied as they
//! are into compacted parts) hold varints instead; the codec byte's [`LAYOUT_PLANES`] bit
//! tells them apart.

use logql::Batch;
use logql::detect::DETECTED_LEVEL;
use logql::fields::{FieldColumn, FieldKind, Fields, FieldsWriter, Tokens};

use crate::codec::{Corrupt, Decoder, put_bytes, put_uvarint};
use crate::templated::{TemplateDecoder, TemplateEncoder, TemplateTable, Templates};

/// Entries per block at most; a block is also cut at [`MAX_RAW_BYTES`] of lines.
pub const MAX_ENTRIES: usize = 8192;
pub const MAX_RAW_BYTES: usize = 1 << 20;

const CODEC_RAW: u8 = 0;
const CODEC_ZSTD: u8 = 1;
/// Set in the codec byte of timestamps and lengths stored in byte planes.
const LAYOUT_PLANES: u8 = 0x10;
/// Set in the codec byte of lines split into templates and variables
/// ([`crate::templated`]) with the templates in the block (format-5 parts).
const LAYOUT_TEMPLATED: u8 = 0x20;
/// Set in the codec byte of lines split into templates and variables whose templates are
/// in the part's template table.
const LAYOUT_TABLE: u8 = 0x40;

/// Compression contexts and scratch space, reused across blocks.
pub struct BlockEncoder {
    lines_level: i32,
    zstd_lines: zstd::bulk::Compressor<'static>,
    zstd_small: zstd::bulk::Compressor<'static>,
    scratch: Vec<u8>,
    packed: Vec<u8>,
    values: Vec<u64>,
    fields: FieldsWriter,
    templates: TemplateEncoder,
    levels: MetadataEncoder,
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
            values: Vec::new(),
            fields: FieldsWriter::new(),
            templates: TemplateEncoder::default(),
            levels: MetadataEncoder::default(),
        })
    }

    pub fn lines_level(&self) -> i32 {
        self.lines_level
    }

    /// Adds the block last encoded from `b` to a text filter (see [`crate::filter`]).
    pub fn add_to_filter(&self, b: &Batch, filter: &mut crate::filter::FilterBuilder) {
        self.templates.add_to_filter(&b.line_data, filter);
    }

    /// Appends entries `range` of `b` (sorted, deduplicated, with lines) as a block to `out`,
    /// adding the templates of its lines to the part's `table`.
    pub fn encode(
        &mut self,
        b: &Batch,
        range: std::ops::Range<usize>,
        table: &mut TemplateTable,
        out: &mut Vec<u8>,
    ) -> std::io::Result<ColumnSizes> {
        let mut sizes = ColumnSizes::default();
        // timestamps
        self.scratch.clear();
        let ts = &b.timestamps[range.clone()];
        self.scratch
            .extend_from_slice(&ts.first().copied().unwrap_or(0).to_le_bytes());
        self.values.clear();
        self.values
            .extend(ts.windows(2).map(|w| w[1].wrapping_sub(w[0]) as u64));
        put_planes(&mut self.scratch, &self.values);
        sizes.ts = self.planes_column(out)?;
        // lengths
        self.scratch.clear();
        self.values.clear();
        self.values
            .extend(b.line_lengths[range.clone()].iter().map(|&l| u64::from(l)));
        put_planes(&mut self.scratch, &self.values);
        sizes.lengths = self.planes_column(out)?;
        // lines, as templates and variables
        self.scratch.clear();
        self.templates.encode(
            &b.line_data,
            &b.line_offsets[range.start..=range.end],
            table,
            &mut self.scratch,
        );
        let start = out.len();
        sizes.lines = encode_column(&mut self.zstd_lines, &mut self.packed, &self.scratch, out)?;
        out[start] |= LAYOUT_TABLE;
        // metadata
        self.scratch.clear();
        self.levels
            .encode(b, range.clone(), &self.templates, &mut self.scratch);
        sizes.meta = self.column(out)?;
        // fields, when the lines are JSON objects or logfmt pairs
        self.fields.reset(b.line(range.start));
        for i in range.clone() {
            if !self.fields.add(b.line(i)) {
                break;
            }
        }
        if let Some(f) = self.fields.finish() {
            self.scratch.clear();
            encode_fields(&f, &mut self.values, &mut self.scratch);
            sizes.fields = self.planes_column(out)?;
        }
        Ok(sizes)
    }

    /// Encodes `scratch` as a small column (metadata, fields).
    fn column(&mut self, out: &mut Vec<u8>) -> std::io::Result<u32> {
        encode_column(&mut self.zstd_small, &mut self.packed, &self.scratch, out)
    }

    /// Encodes `scratch`, which holds byte planes, as a small column.
    fn planes_column(&mut self, out: &mut Vec<u8>) -> std::io::Result<u32> {
        let start = out.len();
        let size = self.column(out)?;
        out[start] |= LAYOUT_PLANES;
        Ok(size)
    }
}

/// Writes a block's metadata column: a block-local dictionary of (name, value) pairs, then
/// per entry its pairs' ids. An entry without a `detected_level` pair (its stream labels
/// and metadata named no level, so its line decides) gets the one its line implies,
/// found once per template of the block rather than once per line
/// ([`logql::detect::line_level`]).
#[derive(Default)]
struct MetadataEncoder {
    /// Batch dictionary id → block dictionary id, or `u32::MAX`.
    remap: Vec<u32>,
    /// The batch dictionary ids the block uses, by block id.
    used: Vec<u32>,
    /// The derived levels the block uses; block ids follow those of `used`.
    derived: Vec<&'static str>,
    /// Per block template, the block id of its level, or `u32::MAX` before it is needed.
    by_template: Vec<u32>,
    /// Per entry, the block id of its derived level, or [`OWN_LEVEL`].
    entry_level: Vec<u32>,
}

/// In [`MetadataEncoder::entry_level`]: the entry has its own `detected_level`.
const OWN_LEVEL: u32 = u32::MAX;
/// In [`MetadataEncoder::by_template`]: not yet known.
const UNKNOWN: u32 = u32::MAX;

impl MetadataEncoder {
    fn encode(
        &mut self,
        b: &Batch,
        range: std::ops::Range<usize>,
        templates: &TemplateEncoder,
        out: &mut Vec<u8>,
    ) {
        self.remap.clear();
        self.remap.resize(b.metadata_dict.len(), u32::MAX);
        self.used.clear();
        self.derived.clear();
        self.entry_level.clear();
        let mut explicit_levels: Vec<(u32, &str)> = Vec::new();
        for i in range.clone() {
            let mut own = false;
            for &id in b.metadata_ids(i) {
                let slot = &mut self.remap[id as usize];
                let (name, value) = &b.metadata_dict[id as usize];
                if *slot == u32::MAX {
                    *slot = self.used.len() as u32;
                    self.used.push(id);
                    if name == DETECTED_LEVEL {
                        explicit_levels.push((*slot, value));
                    }
                }
                own |= name == DETECTED_LEVEL;
            }
            // Any value but OWN_LEVEL until the loop below sets it.
            self.entry_level.push(if own { OWN_LEVEL } else { 0 });
        }
        self.by_template.clear();
        self.by_template
            .resize(templates.block_template_count(), UNKNOWN);
        let lines = templates.line_templates();
        for (j, slot) in self.entry_level.iter_mut().enumerate() {
            if *slot == OWN_LEVEL {
                continue;
            }
            let t = lines[j] as usize;
            if self.by_template[t] == UNKNOWN {
                let level = logql::detect::line_level(templates.block_template(t as u32));
                let id = match explicit_levels.iter().find(|(_, v)| *v == level) {
                    Some(&(id, _)) => id,
                    None => match self.derived.iter().position(|&l| l == level) {
                        Some(k) => (self.used.len() + k) as u32,
                        None => {
                            self.derived.push(level);
                            (self.used.len() + self.derived.len() - 1) as u32
                        }
                    },
                };
                self.by_template[t] = id;
            }
            *slot = self.by_template[t];
        }
        put_uvarint(out, (self.used.len() + self.derived.len()) as u64);
        for &id in &self.used {
            let (n, v) = &b.metadata_dict[id as usize];
            put_bytes(out, n.as_bytes());
            put_bytes(out, v.as_bytes());
        }
        for level in &self.derived {
            put_bytes(out, DETECTED_LEVEL.as_bytes());
            put_bytes(out, level.as_bytes());
        }
        for (i, &level) in range.zip(&self.entry_level) {
            let ids = b.metadata_ids(i);
            let n = ids.len() + usize::from(level != OWN_LEVEL);
            put_uvarint(out, n as u64);
            for &id in ids {
                put_uvarint(out, u64::from(self.remap[id as usize]));
            }
            if level != OWN_LEVEL {
                put_uvarint(out, u64::from(level));
            }
        }
    }
}

/// Appends `values` as byte planes: the width, then byte 0 of each value, byte 1 of each...
fn put_planes(out: &mut Vec<u8>, values: &[u64]) {
    let max = values.iter().fold(0, |m, &v| m | v);
    let width = (8 - max.leading_zeros() as usize / 8).max(1);
    out.push(width as u8);
    out.reserve(width * values.len());
    for b in 0..width {
        out.extend(values.iter().map(|&v| (v >> (8 * b)) as u8));
    }
}

/// Reads `n` values stored by [`put_planes`] from `raw` (which must hold exactly them) into
/// `out`. A width over `max_width` is damage.
fn get_planes<T>(raw: &[u8], n: usize, max_width: usize, out: &mut [T]) -> Result<(), Corrupt>
where
    T: Copy + Default + std::ops::BitOrAssign + std::ops::Shl<u32, Output = T> + From<u8>,
{
    let (&width, planes) = raw.split_first().ok_or(Corrupt)?;
    let width = usize::from(width);
    if !(1..=max_width).contains(&width) || planes.len() != width * n || out.len() != n {
        return Err(Corrupt);
    }
    match width {
        1 => gather::<1, T>(planes, out),
        2 => gather::<2, T>(planes, out),
        3 => gather::<3, T>(planes, out),
        4 => gather::<4, T>(planes, out),
        5 => gather::<5, T>(planes, out),
        6 => gather::<6, T>(planes, out),
        7 => gather::<7, T>(planes, out),
        _ => gather::<8, T>(planes, out),
    }
    Ok(())
}

/// Puts together each value from its `W` bytes, one from each plane, in a single pass
/// (the width is a constant, so the loop over planes unrolls). `planes` holds `W` planes
/// of `out.len()` bytes.
fn gather<const W: usize, T>(planes: &[u8], out: &mut [T])
where
    T: Copy + Default + std::ops::BitOrAssign + std::ops::Shl<u32, Output = T> + From<u8>,
{
    let n = out.len();
    let p: [&[u8]; W] = std::array::from_fn(|b| &planes[b * n..(b + 1) * n]);
    for (i, v) in out.iter_mut().enumerate() {
        let mut x = T::default();
        for (b, plane) in p.iter().enumerate() {
            x |= T::from(plane[i]) << (8 * b as u32);
        }
        *v = x;
    }
}

fn encode_fields(f: &Fields, values: &mut Vec<u64>, out: &mut Vec<u8>) {
    out.push(match f.kind {
        FieldKind::Json => 0,
        FieldKind::Logfmt => 1,
    });
    put_uvarint(out, f.columns.len() as u64);
    for c in &f.columns {
        put_bytes(out, c.name.as_bytes());
        put_uvarint(out, c.tokens.len() as u64);
        for t in c.tokens.iter() {
            put_bytes(out, t);
        }
    }
    for c in &f.columns {
        // A token's code is the next new one at its first entry (codes are given in order
        // of first sight): that is stored as 1, any other code `k` as `k + 1`, so a
        // column of mostly distinct tokens is mostly ones.
        values.clear();
        let mut next = 1;
        values.extend(c.codes.iter().map(|&k| match k {
            0 => 0,
            k if k == next => {
                next += 1;
                1
            }
            k => u64::from(k) + 1,
        }));
        put_planes(out, values);
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
    templates: TemplateDecoder,
}

impl BlockDecoder {
    pub fn new() -> std::io::Result<BlockDecoder> {
        Ok(BlockDecoder {
            zstd: zstd::bulk::Decompressor::new()?,
            scratch: Vec::new(),
            templates: TemplateDecoder::default(),
        })
    }

    /// The raw bytes of a column, decompressed into `out` (cleared first).
    fn column_into(&mut self, col: &[u8], out: &mut Vec<u8>) -> Result<(), Corrupt> {
        match self.raw_into(col, out)? {
            0 => Ok(()),
            _ => Err(Corrupt),
        }
    }

    /// Like [`Self::column_into`] for a column of integers, also saying whether they are
    /// in byte planes (else varints).
    fn integers_into(&mut self, col: &[u8], out: &mut Vec<u8>) -> Result<bool, Corrupt> {
        match self.raw_into(col, out)? {
            0 => Ok(false),
            LAYOUT_PLANES => Ok(true),
            _ => Err(Corrupt),
        }
    }

    /// Decompresses a column into `out` (cleared first) and returns its layout bits.
    fn raw_into(&mut self, col: &[u8], out: &mut Vec<u8>) -> Result<u8, Corrupt> {
        let mut d = Decoder::new(col);
        let codec = d.u8()?;
        let layout = codec & (LAYOUT_PLANES | LAYOUT_TEMPLATED | LAYOUT_TABLE);
        let codec = codec & !layout;
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
        Ok(layout)
    }

    /// Appends `count` timestamps to `out`.
    pub fn timestamps(
        &mut self,
        col: &[u8],
        count: usize,
        out: &mut Vec<i64>,
    ) -> Result<(), Corrupt> {
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.integers_into(col, &mut raw).and_then(|planes| {
            if planes {
                return timestamps_from_planes(&raw, count, out);
            }
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
        let r = self.integers_into(col, &mut raw).and_then(|planes| {
            if planes {
                let start = out.len();
                out.resize(start + count, 0);
                return get_planes(&raw, count, 4, &mut out[start..]).inspect_err(|_| {
                    out.truncate(start);
                });
            }
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

    /// Decompresses the lines column of a block of `count` lines of `len` bytes in all
    /// into `data` (cleared first), the lines concatenated. `table` is the part's template
    /// table, which a block of lines split into templates needs (format 6 on).
    pub fn lines(
        &mut self,
        col: &[u8],
        count: usize,
        len: usize,
        table: Option<&Templates>,
        data: &mut Vec<u8>,
    ) -> Result<(), Corrupt> {
        let table = match self.raw_into(col, data)? {
            0 => None,
            LAYOUT_TEMPLATED => Some(None),
            LAYOUT_TABLE => Some(Some(table.ok_or(Corrupt)?)),
            _ => return Err(Corrupt),
        };
        if let Some(table) = table {
            std::mem::swap(data, &mut self.scratch);
            let encoded = self.scratch.len();
            self.scratch.resize(encoded + 16, 0);
            data.clear();
            let lines = self
                .templates
                .decode(&self.scratch, encoded, len, table, data)?;
            if lines != count {
                return Err(Corrupt);
            }
        }
        if data.len() != len {
            return Err(Corrupt);
        }
        Ok(())
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

/// Appends `count` timestamps stored as the first one and byte planes of deltas.
fn timestamps_from_planes(raw: &[u8], count: usize, out: &mut Vec<i64>) -> Result<(), Corrupt> {
    if count == 0 {
        return if raw.len() == 9 { Ok(()) } else { Err(Corrupt) };
    }
    let (first, planes) = raw.split_at_checked(8).ok_or(Corrupt)?;
    let first = i64::from_le_bytes(first.try_into().map_err(|_| Corrupt)?);
    let start = out.len();
    out.resize(start + count, 0);
    let ts = &mut out[start..];
    let r = get_planes(planes, count - 1, 8, &mut ts[1..]).and_then(|()| {
        // Deltas to times, in place.
        let mut t = first;
        ts[0] = t;
        for v in &mut ts[1..] {
            t = t.checked_add(*v).ok_or(Corrupt)?;
            *v = t;
        }
        Ok(())
    });
    if r.is_err() {
        out.truncate(start);
    }
    r
}

impl BlockDecoder {
    /// Decodes the fields column of a block of `count` entries: the columns named in
    /// `names` (all with `None`) and the uncovered and nested names.
    pub fn fields(
        &mut self,
        col: &[u8],
        count: usize,
        names: Option<&[String]>,
    ) -> Result<Fields, Corrupt> {
        let mut raw = std::mem::take(&mut self.scratch);
        let r = self.integers_into(col, &mut raw).and_then(|planes| {
            let mut d = Decoder::new(&raw);
            let mut f = Fields::default();
            if planes {
                f.kind = match d.u8()? {
                    0 => FieldKind::Json,
                    1 => FieldKind::Logfmt,
                    _ => return Err(Corrupt),
                };
            }
            let n = d.count(2)?;
            // Per column: kept, and its token count.
            let mut kept = Vec::with_capacity(n);
            for _ in 0..n {
                let name = d.str()?;
                let keep = names.is_none_or(|w| w.iter().any(|x| x == name));
                let k = d.count(1)?;
                let mut tokens = Tokens::default();
                for _ in 0..k {
                    let t = d.bytes()?;
                    if keep {
                        tokens.push(t);
                    }
                }
                kept.push((keep, k));
                if keep {
                    f.columns.push(FieldColumn {
                        name: name.to_string(),
                        tokens: std::sync::Arc::new(tokens),
                        codes: Vec::new(),
                    });
                }
            }
            let mut out = f.columns.iter_mut();
            for (keep, k) in kept {
                let codes: Vec<u16> = if planes {
                    let at = d.position();
                    let width = usize::from(d.u8()?);
                    if !(1..=2).contains(&width) {
                        return Err(Corrupt);
                    }
                    d.take(width * count)?;
                    if !keep {
                        continue;
                    }
                    let mut codes = vec![0; count];
                    get_planes(&raw[at..d.position()], count, 2, &mut codes)?;
                    // Undo `encode_fields`' numbering: 1 is the next new token.
                    let mut next: u16 = 1;
                    for c in &mut codes {
                        match *c {
                            0 => {}
                            1 => {
                                *c = next;
                                next = next.checked_add(1).ok_or(Corrupt)?;
                            }
                            s => *c = s - 1,
                        }
                    }
                    codes
                } else {
                    let p = d.take(count)?;
                    if !keep {
                        continue;
                    }
                    p.iter().map(|&b| u16::from(b)).collect()
                };
                if codes.iter().any(|&c| usize::from(c) > k) {
                    return Err(Corrupt);
                }
                out.next().ok_or(Corrupt)?.codes = codes;
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
pub(crate) mod tests {
    use super::*;
    use crate::templated::tests::stored;
    use proptest::prelude::any;

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
        let sizes = enc
            .encode(&b, 0..2, &mut TemplateTable::default(), &mut out)
            .unwrap();
        assert!(sizes.fields > 0);
        let start = (sizes.ts + sizes.lengths + sizes.lines + sizes.meta) as usize;
        let col = &out[start..start + sizes.fields as usize];
        let mut dec = BlockDecoder::new().unwrap();
        let f = dec.fields(col, 2, None).unwrap();
        assert_eq!(f.columns[0].name, "level");
        assert_eq!(f.columns[0].codes, vec![1, 2]);
        assert_eq!(f.columns[1].codes, vec![1, 0]);
        // A wrong entry count, or a code past the tokens, is damage.
        assert!(dec.fields(col, 3, None).is_err());
        let mut raw = Vec::new();
        encode_fields(&f, &mut Vec::new(), &mut raw);
        let last = raw.len() - 3; // the second column's last code, before two empty lists
        raw[last] = 9;
        let mut bad = vec![CODEC_RAW | LAYOUT_PLANES];
        put_uvarint(&mut bad, raw.len() as u64);
        bad.extend_from_slice(&raw);
        assert!(dec.fields(&bad, 2, None).is_err());
        // Text lines get no fields column.
        let t = batch(&[(1, "plain", &[]), (2, r#"{"a":1}"#, &[])]);
        let mut out = Vec::new();
        assert_eq!(
            enc.encode(&t, 0..2, &mut TemplateTable::default(), &mut out)
                .unwrap()
                .fields,
            0
        );
    }

    #[test]
    fn logfmt_fields_round_trip_with_wide_codes() {
        let lines: Vec<String> = (0..600)
            .map(|i| format!("level=info d={i}ms msg=\"x y\""))
            .collect();
        let entries: Vec<TestEntry<'_>> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i as i64, l.as_str(), &[][..]))
            .collect();
        let b = batch(&entries);
        let mut enc = BlockEncoder::new(1).unwrap();
        let mut out = Vec::new();
        let sizes = enc
            .encode(&b, 0..600, &mut TemplateTable::default(), &mut out)
            .unwrap();
        let start = (sizes.ts + sizes.lengths + sizes.lines + sizes.meta) as usize;
        let col = &out[start..start + sizes.fields as usize];
        let f = BlockDecoder::new().unwrap().fields(col, 600, None).unwrap();
        assert_eq!(f.kind, FieldKind::Logfmt);
        let d = f.columns.iter().find(|c| c.name == "d").unwrap();
        assert_eq!(d.codes[599], 600);
        assert_eq!(&d.tokens[599], b"599ms");
        let msg = f.columns.iter().find(|c| c.name == "msg").unwrap();
        assert_eq!(msg.tokens.iter().collect::<Vec<_>>(), [b"\"x y\""]);
    }

    /// Fields columns written before logfmt columns (no kind, a byte per code, no planes
    /// bit) read as JSON columns.
    #[test]
    fn fields_of_the_first_layout_still_decode() {
        let mut raw = Vec::new();
        put_uvarint(&mut raw, 1);
        put_bytes(&mut raw, b"level");
        put_uvarint(&mut raw, 2);
        put_bytes(&mut raw, b"\"info\"");
        put_bytes(&mut raw, b"\"warn\"");
        raw.extend_from_slice(&[2, 0, 1]);
        put_uvarint(&mut raw, 0);
        put_uvarint(&mut raw, 0);
        let mut col = vec![CODEC_RAW];
        put_uvarint(&mut col, raw.len() as u64);
        col.extend_from_slice(&raw);
        let f = BlockDecoder::new().unwrap().fields(&col, 3, None).unwrap();
        assert_eq!(f.kind, FieldKind::Json);
        assert_eq!(f.columns[0].codes, vec![2, 0, 1]);
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
        let mut table = TemplateTable::default();
        let sizes = enc.encode(&b, 1..4, &mut table, &mut out).unwrap();
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
        let templates = stored(&table);
        dec.lines(ln, 3, 307, Some(&templates), &mut data).unwrap();
        assert_eq!(data, format!("{long}same ts").into_bytes());
        // Its templates are in the part's table: without it, the lines do not decode.
        assert_eq!(dec.lines(ln, 3, 307, None, &mut data), Err(Corrupt));
        let (mut dict, mut offs, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        dec.metadata(m, 3, &mut dict, &mut offs, &mut ids).unwrap();
        // Each entry also gets the detected_level its line implies.
        assert_eq!(offs, vec![0, 3, 5, 6]);
        let pairs: Vec<_> = ids.iter().map(|&i| dict[i as usize].clone()).collect();
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        assert_eq!(pairs[0], pair("trace_id", "abc"));
        assert_eq!(pairs[1], pair("user", "u1"));
        assert_eq!(pairs[2], pair("detected_level", "unknown"));
        assert_eq!(pairs[3], pair("user", "u1"));
        assert_eq!(pairs[5], pair("detected_level", "unknown"));
        assert!(dec.timestamps(&out[..2], 3, &mut ts).is_err());
    }

    /// The metadata of entries `range` of `b` as a block holds them, per entry.
    fn stored_metadata(b: &Batch, range: std::ops::Range<usize>) -> Vec<Vec<(String, String)>> {
        let mut enc = BlockEncoder::new(1).unwrap();
        let mut out = Vec::new();
        let sizes = enc
            .encode(b, range.clone(), &mut TemplateTable::default(), &mut out)
            .unwrap();
        let at = (sizes.ts + sizes.lengths + sizes.lines) as usize;
        let col = &out[at..at + sizes.meta as usize];
        let (mut dict, mut offs, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        let mut dec = BlockDecoder::new().unwrap();
        dec.metadata(col, range.len(), &mut dict, &mut offs, &mut ids)
            .unwrap();
        offs.windows(2)
            .map(|w| {
                ids[w[0] as usize..w[1] as usize]
                    .iter()
                    .map(|&i| dict[i as usize].clone())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn entries_without_a_level_get_their_lines() {
        let own: &[(&str, &str)] = &[("detected_level", "debug")];
        let b = batch(&[
            (1, "ERROR 1 disk full", &[]),
            (2, "ERROR 22 disk full", &[("k", "v")]),
            (3, "level=warn n=3", &[]),
            (4, "ERROR 333 disk full", own),
            (5, "debug here", &[]),
            (6, "{\"severity\":\"fatal\",\"n\":12}", &[]),
        ]);
        let m = stored_metadata(&b, 0..6);
        let level = |v: &str| ("detected_level".to_string(), v.to_string());
        assert_eq!(m[0], vec![level("error")]);
        assert_eq!(m[1], vec![("k".into(), "v".into()), level("error")]);
        assert_eq!(m[2], vec![level("warn")]);
        // Its own level stays, and is not doubled.
        assert_eq!(m[3], vec![level("debug")]);
        assert_eq!(m[4], vec![level("debug")]);
        assert_eq!(m[5], vec![level("fatal")]);
        // A range of the batch: only its entries.
        assert_eq!(
            stored_metadata(&b, 2..4),
            vec![vec![level("warn")], vec![level("debug")]]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        /// Whatever the lines, each entry's stored level is its line's.
        #[test]
        fn stored_levels_are_the_lines(
            lines in proptest::collection::vec(
                "([0-9]{1,4}|error|Info|WARN|level=|severity|\\{|\"|=| |x|:|\\\\){0,8}",
                1..40,
            ),
        ) {
            let entries: Vec<TestEntry<'_>> =
                lines.iter().enumerate().map(|(i, l)| (i as i64, l.as_str(), &[][..])).collect();
            let m = stored_metadata(&batch(&entries), 0..lines.len());
            for (l, pairs) in lines.iter().zip(&m) {
                let want = logql::detect::line_level(l.as_bytes());
                proptest::prop_assert_eq!(
                    pairs,
                    &vec![("detected_level".to_string(), want.to_string())],
                    "line {:?}", l
                );
            }
        }
    }

    /// A raw (uncompressed) column of `raw` with the given layout bit.
    fn raw_column(raw: &[u8], layout: u8) -> Vec<u8> {
        let mut col = vec![CODEC_RAW | layout];
        put_uvarint(&mut col, raw.len() as u64);
        col.extend_from_slice(raw);
        col
    }

    #[test]
    fn byte_planes_round_trip_at_every_width() {
        let mut dec = BlockDecoder::new().unwrap();
        let mut enc = BlockEncoder::new(1).unwrap();
        for top in [0u32, 7, 8, 15, 16, 23, 24, 31, 32, 40, 48, 56, 62] {
            let ts: Vec<i64> = (0..300i64)
                .map(|i| i * ((1i64 << top) / 300).max(1) - (1 << 40))
                .collect();
            let lens: Vec<u32> = (0..300u32)
                .map(|i| i.wrapping_mul(2_654_435_761) >> (31 - top.min(31)))
                .collect();
            let mut b = Batch::default();
            b.line_offsets.push(0);
            for (&t, &l) in ts.iter().zip(&lens) {
                b.timestamps.push(t);
                b.line_lengths.push(l);
                b.line_offsets.push(0);
            }
            let mut out = Vec::new();
            let sizes = enc
                .encode(&b, 0..300, &mut TemplateTable::default(), &mut out)
                .unwrap();
            assert_ne!(out[0] & LAYOUT_PLANES, 0);
            let (a, rest) = out.split_at(sizes.ts as usize);
            let mut got = vec![7];
            dec.timestamps(a, 300, &mut got).unwrap();
            assert_eq!(got[1..], ts[..], "2^{top}");
            let mut got = vec![7];
            dec.lengths(&rest[..sizes.lengths as usize], 300, &mut got)
                .unwrap();
            assert_eq!(got[1..], lens[..], "2^{top}");
            // The wrong count is damage, and leaves `out` as it was.
            let mut got = vec![7];
            assert!(dec.timestamps(a, 299, &mut got).is_err());
            assert_eq!(got, vec![7]);
        }
        // A width past 4 bytes cannot be a length; a width of 0 is nothing.
        let mut raw = vec![5u8];
        raw.extend_from_slice(&[0; 5]);
        assert!(
            dec.lengths(&raw_column(&raw, LAYOUT_PLANES), 1, &mut Vec::new())
                .is_err()
        );
        assert!(
            dec.lengths(&raw_column(&[0], LAYOUT_PLANES), 0, &mut Vec::new())
                .is_err()
        );
        // Deltas that overflow a time are damage.
        let mut raw = i64::MAX.to_le_bytes().to_vec();
        raw.extend_from_slice(&[1, 1]);
        let mut ts = Vec::new();
        assert!(
            dec.timestamps(&raw_column(&raw, LAYOUT_PLANES), 2, &mut ts)
                .is_err()
        );
        assert!(ts.is_empty());
    }

    proptest::proptest! {
        /// A damaged block (bytes changed, cut short) is an error or some entries, never a
        /// panic: blocks come from disks and buckets.
        #[test]
        fn damaged_blocks_never_panic(
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 0..6),
            cut in any::<proptest::sample::Index>(),
            count in 0usize..6,
        ) {
            let b = batch(&[
                (-5, r#"{"level":"info","n":1}"#, &[("trace_id", "abc")]),
                (10, r#"{"level":"error"}"#, &[]),
                (10, r#"{"level":"warn","x":{"y":1}}"#, &[("user", "u1")]),
                (1_700_000_000_000_000_000, r#"{"n":2}"#, &[]),
            ]);
            let mut enc = BlockEncoder::new(1).unwrap();
            let mut out = Vec::new();
            let mut table = TemplateTable::default();
            let sizes = enc.encode(&b, 0..4, &mut table, &mut out).unwrap();
            let templates = stored(&table);
            for (at, v) in &flips {
                let i = at.index(out.len());
                out[i] ^= v;
            }
            out.truncate(cut.index(out.len() + 1));
            let mut dec = BlockDecoder::new().unwrap();
            let mut at = 0usize;
            let mut col = |len: u32| {
                let s = at.min(out.len());
                at += len as usize;
                &out[s..at.min(out.len())]
            };
            let (ts, lens, lines, meta, fields) = (
                col(sizes.ts),
                col(sizes.lengths),
                col(sizes.lines),
                col(sizes.meta),
                col(sizes.fields),
            );
            let _ = dec.timestamps(ts, count, &mut Vec::new());
            let _ = dec.lengths(lens, count, &mut Vec::new());
            let _ = dec.lines(lines, count, 1 << 16, Some(&templates), &mut Vec::new());
            let (mut d, mut o, mut i) = (Vec::new(), Vec::new(), Vec::new());
            let _ = dec.metadata(meta, count, &mut d, &mut o, &mut i);
            let _ = dec.fields(fields, count, None);
        }
    }

    #[test]
    fn varint_columns_of_older_parts_still_decode() {
        let mut raw = Vec::new();
        crate::codec::put_ivarint(&mut raw, -5);
        put_uvarint(&mut raw, 15);
        put_uvarint(&mut raw, 1 << 40);
        let mut dec = BlockDecoder::new().unwrap();
        let mut ts = Vec::new();
        dec.timestamps(&raw_column(&raw, 0), 3, &mut ts).unwrap();
        assert_eq!(ts, vec![-5, 10, 10 + (1 << 40)]);
        let mut raw = Vec::new();
        for l in [0u64, 300, 70_000] {
            put_uvarint(&mut raw, l);
        }
        let mut lens = Vec::new();
        dec.lengths(&raw_column(&raw, 0), 3, &mut lens).unwrap();
        assert_eq!(lens, vec![0, 300, 70_000]);
        // Lines of older parts are stored as they are.
        let mut data = Vec::new();
        dec.lines(&raw_column(b"abc", 0), 2, 3, None, &mut data)
            .unwrap();
        assert_eq!(data, b"abc");
        assert!(
            dec.lines(&raw_column(b"abc", 0), 2, 4, None, &mut data)
                .is_err()
        );
        // Lines have no planes.
        assert!(
            dec.lines(
                &raw_column(b"x", LAYOUT_PLANES),
                1,
                1,
                None,
                &mut Vec::new()
            )
            .is_err()
        );
    }
}
