//! Lines split into templates and variables before compression: the lines column's
//! [`crate::block`] layout.
//!
//! A line's *variables* are its runs of decimal digits; its *template* is what is left,
//! the text around them. Lines of one kind share a template, so each template is stored
//! once, one template id per line, and then the variables column by column: per
//! template, per variable slot, the values of that slot in line order, as numbers
//! (differences from the value before when those are smaller: a clock's seconds, a counter
//! or a port barely change). zstd then compresses the whole.
//!
//! Without this, zstd encodes each line as a series of matches against earlier lines around
//! literal digits, a few bytes per match; here the repeated text is gone before zstd sees
//! it, and what is left is mostly the numbers, grouped so that similar values sit together.
//!
//! The templates themselves live in a *template table* ([`TemplateTable`]) of the part,
//! one per service, shared by the blocks of its streams: the streams of one application
//! write the same kinds of lines, and a block of a thousand lines would otherwise spend
//! about three bytes per line on its own copy of them. A block lists the table entries it
//! uses. Blocks of format-5 parts (before the tables) hold their templates themselves;
//! they still decode.
//!
//! ```text
//! lines      uvarint
//! templates  uvarint, then per template its index in the part's table, ascending, each
//!            as the difference from the one before (uvarint); in format-5 blocks, its
//!            text instead (uvarint length, then the text)
//! ids        per line, its template's position in that list (uvarint)
//! columns    per template in order, per variable slot: mode u8, then one value per line
//!            of that template:
//!              0       bytes (numbers of over 19 digits, or written in several ways)
//!              1       numbers without leading zeros, as zigzag varint differences
//!              2 + w   numbers of exactly w digits (zero-padded), likewise
//!              | 0x80  on 1 or 2 + w: the numbers themselves as varints, not differences
//!
//! table      uvarint count, then per template its text (uvarint length, then the text);
//!            a template is the line with each run of digits replaced by one `0`
//! ```

use logql::prehashed::PrehashedMap;

use crate::codec::{Corrupt, Decoder, put_bytes, put_ivarint, put_uvarint, zigzag};
use crate::filter::FilterBuilder;

const MODE_BYTES: u8 = 0;
const MODE_NUMBER: u8 = 1;
/// Mode of numbers written with exactly `w` digits: `MODE_FIXED + w`.
const MODE_FIXED: u8 = 2;
/// Set on a number mode when the values are stored as they are, not as differences.
const MODE_PLAIN: u8 = 0x80;
/// Decimal numbers of up to 19 digits fit a `u64`.
const MAX_DIGITS: usize = 19;

/// Scratch space for splitting lines, reused across blocks.
#[derive(Default)]
pub struct TemplateEncoder {
    /// The block's templates: each the line with every run of digits replaced by one
    /// `0`; and per template, its variable count and hash.
    block: TemplateTable,
    templates: Vec<Template>,
    key: Vec<u8>,
    /// Per line, its template.
    ids: Vec<u32>,
    /// Every variable of the block, in line order.
    vars: Vec<Var>,
    /// The variables again, grouped into columns: per template, per slot, in line order;
    /// and per template, where its columns start and how many lines it has.
    columns: Vec<Var>,
    column_start: Vec<u32>,
    count: Vec<u32>,
    /// Per template of the block: its index in the part's table; the templates in the
    /// order of those; and each template's position in that order.
    global: Vec<u32>,
    order: Vec<u32>,
    rank: Vec<u32>,
}

#[derive(Clone, Copy)]
struct Template {
    vars: u32,
    hash: u64,
}

/// A run of digits: where it starts in the block's data, its length (with
/// [`LEADING_ZERO`] set when it has more than one digit and starts with `0`), and its
/// value ([`TOO_LONG`] past [`MAX_DIGITS`] digits).
#[derive(Clone, Copy, Default)]
struct Var {
    value: u64,
    start: u32,
    len: u32,
}

const LEADING_ZERO: u32 = 1 << 31;

impl Var {
    fn digits(self) -> u32 {
        self.len & !LEADING_ZERO
    }

    fn text(self, data: &[u8]) -> &[u8] {
        &data[self.start as usize..(self.start + self.digits()) as usize]
    }
}

/// Templates, each stored once and numbered in the order they came: those of one part's
/// blocks, stored in the part, and (in [`TemplateEncoder`]) those of one block.
#[derive(Default)]
pub struct TemplateTable {
    /// Hash of a template → its index (on a collision, the hash plus one is tried).
    map: PrehashedMap<u32>,
    keys: Vec<u8>,
    /// Where each template ends in `keys` (it starts where the one before ends).
    ends: Vec<u32>,
}

impl TemplateTable {
    fn clear(&mut self) {
        self.map.clear();
        self.keys.clear();
        self.ends.clear();
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Template `id`.
    fn key(&self, id: u32) -> &[u8] {
        let start = match id {
            0 => 0,
            _ => self.ends[id as usize - 1] as usize,
        };
        &self.keys[start..self.ends[id as usize] as usize]
    }

    /// The table as stored in a part (before compression), appended to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.len() as u64);
        for id in 0..self.len() as u32 {
            put_bytes(out, self.key(id));
        }
    }

    /// The index of template `key` (whose hash is `hash`), and whether it was added now.
    fn id(&mut self, key: &[u8], mut hash: u64) -> (u32, bool) {
        loop {
            match self.map.get(&hash) {
                Some(&id) if self.key(id) == key => return (id, false),
                Some(_) => hash = hash.wrapping_add(1),
                None => {
                    let id = self.len() as u32;
                    self.keys.extend_from_slice(key);
                    self.ends.push(self.keys.len() as u32);
                    self.map.insert(hash, id);
                    return (id, true);
                }
            }
        }
    }
}

/// A part's template table, decoded for reading its blocks.
pub struct Templates {
    /// The stored table, with 16 bytes more (see [`copy_over`]).
    text: Vec<u8>,
    /// Per template: where its text starts in `text`, and its length.
    bounds: Vec<(usize, usize)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Templates({})", self.bounds.len())
    }
}

impl Templates {
    /// Reads a table that [`TemplateTable::encode`] wrote.
    pub fn decode(mut text: Vec<u8>) -> Result<Templates, Corrupt> {
        let mut bounds = Vec::new();
        let mut d = Decoder::new(&text);
        let n = d.count(1)?;
        bounds.reserve(n);
        for _ in 0..n {
            let t = d.bytes()?;
            bounds.push((d.position() - t.len(), t.len()));
        }
        if !d.is_empty() {
            return Err(Corrupt);
        }
        text.reserve_exact(16);
        text.extend_from_slice(&[0; 16]);
        Ok(Templates { text, bounds })
    }

    /// Bytes of memory it holds.
    pub fn size(&self) -> usize {
        self.text.capacity() + std::mem::size_of::<(usize, usize)>() * self.bounds.capacity()
    }
}

impl TemplateEncoder {
    /// Appends the encoding of the lines `data[offsets[i]..offsets[i + 1]]` to `out`, adding
    /// their templates to `table`.
    pub fn encode(
        &mut self,
        data: &[u8],
        offsets: &[u32],
        table: &mut TemplateTable,
        out: &mut Vec<u8>,
    ) {
        self.block.clear();
        self.templates.clear();
        self.ids.clear();
        self.vars.clear();
        let lines = offsets.len().saturating_sub(1);
        for w in offsets.windows(2) {
            let id = self.split(data, w[0] as usize, w[1] as usize);
            self.ids.push(id);
        }
        // The block's templates in the order of their indices in the table.
        self.global.clear();
        for (id, t) in self.templates.iter().enumerate() {
            self.global
                .push(table.id(self.block.key(id as u32), t.hash).0);
        }
        self.order.clear();
        self.order.extend(0..self.templates.len() as u32);
        self.order
            .sort_unstable_by_key(|&t| self.global[t as usize]);
        self.rank.clear();
        self.rank.resize(self.templates.len(), 0);
        for (i, &t) in self.order.iter().enumerate() {
            self.rank[t as usize] = i as u32;
        }
        put_uvarint(out, lines as u64);
        put_uvarint(out, self.templates.len() as u64);
        let mut prev = 0;
        for &t in &self.order {
            let g = self.global[t as usize];
            put_uvarint(out, u64::from(g - prev));
            prev = g;
        }
        for &id in &self.ids {
            put_uvarint(out, u64::from(self.rank[id as usize]));
        }
        // The variables moved into their columns in one pass over the lines: a template
        // of `c` lines and `v` slots has `v` columns of `c` values each, one after another.
        self.count.clear();
        self.count.resize(self.templates.len(), 0);
        for &id in &self.ids {
            self.count[id as usize] += 1;
        }
        self.column_start.clear();
        let mut at = 0;
        for (t, &c) in self.templates.iter().zip(&self.count) {
            self.column_start.push(at);
            at += c * t.vars;
        }
        self.columns.clear();
        self.columns.resize(at as usize, Var::default());
        // `column_start` now serves as each template's next free row.
        let mut vars = self.vars.iter();
        for &id in &self.ids {
            let (t, c) = (id as usize, self.count[id as usize] as usize);
            let row = self.column_start[t] as usize;
            for (slot, v) in vars
                .by_ref()
                .take(self.templates[t].vars as usize)
                .enumerate()
            {
                self.columns[row + slot * c] = *v;
            }
            self.column_start[t] += 1;
        }
        for &t in &self.order {
            let t = t as usize;
            let c = self.count[t] as usize;
            // Back from the row past the last to the template's first column.
            let first = self.column_start[t] as usize - c;
            for slot in 0..self.templates[t].vars as usize {
                let at = first + slot * c;
                put_column(&self.columns[at..at + c], data, out);
            }
        }
    }

    /// Per line last encoded, its template's position among the block's templates.
    pub fn line_templates(&self) -> &[u32] {
        &self.ids
    }

    /// How many templates the lines last encoded have.
    pub fn block_template_count(&self) -> usize {
        self.block.len()
    }

    /// The template at position `t` among those of the lines last encoded.
    pub fn block_template(&self, t: u32) -> &[u8] {
        self.block.key(t)
    }

    /// Adds the lines last encoded, `data` as given to [`TemplateEncoder::encode`], to a
    /// text filter: each of their templates once, and their runs of three or more digits
    /// (see [`crate::filter`]).
    pub fn add_to_filter(&self, data: &[u8], filter: &mut FilterBuilder) {
        for id in 0..self.block.len() as u32 {
            filter.add_line(self.block.key(id));
        }
        for v in &self.vars {
            if v.digits() >= 3 {
                filter.add_line(v.text(data));
            }
        }
    }

    /// Finds the variables of the line `data[from..to]` (appended to `vars`) and returns
    /// its template's index, adding the template when it is new.
    /// The line is read 8 bytes at a time; the bytes where a run of digits starts or ends
    /// are found from a bit mask.
    fn split(&mut self, data: &[u8], from: usize, to: usize) -> u32 {
        let line = &data[from..to];
        let n = line.len();
        // The template is written at `k`, 16 bytes at a time where `data` has them.
        if self.key.len() < n + 32 {
            self.key.resize(n + 32, 0);
        }
        let mut k = 0;
        let (mut seg, mut run_start, mut in_run) = (0, 0, false);
        let mut vars = 0u32;
        let mut pos = 0;
        while pos < n {
            // Eight bytes from `data` (past the line's end, those of the next line, masked
            // out below) where it has them; a copy only at the very end of `data`.
            let at = from + pos;
            let word = match data.get(at..at + 8) {
                Some(w) => u64::from_le_bytes(w.try_into().unwrap_or_default()),
                None => {
                    let mut w = [0u8; 8];
                    w[..data.len() - at].copy_from_slice(&data[at..]);
                    u64::from_le_bytes(w)
                }
            };
            let mut digits = digit_bits(word);
            if n - pos < 8 {
                digits &= (1 << (n - pos)) - 1;
            }
            // Bit i: byte `pos + i` starts a run (digit after non-digit) or ends one.
            let mut edges = (digits ^ (digits << 1 | u32::from(in_run))) & 0xff;
            while edges != 0 {
                let bit = edges.trailing_zeros() as usize;
                edges &= edges - 1;
                let p = pos + bit;
                if digits >> bit & 1 == 1 {
                    copy_text(&mut self.key, &mut k, data, from + seg, from + p);
                    self.key[k] = b'0';
                    k += 1;
                    run_start = p;
                    in_run = true;
                } else {
                    self.push_var(data, from + run_start, from + p);
                    vars += 1;
                    seg = p;
                    in_run = false;
                }
            }
            pos += 8;
        }
        if in_run {
            self.push_var(data, from + run_start, to);
            vars += 1;
            seg = n;
        }
        copy_text(&mut self.key, &mut k, data, from + seg, to);
        let key = &self.key[..k];
        let hash = xxhash_rust::xxh3::xxh3_64(key);
        let (id, new) = self.block.id(key, hash);
        if new {
            self.templates.push(Template { vars, hash });
        }
        id
    }

    /// Records the run of digits `data[start..end]`.
    #[inline(always)]
    fn push_var(&mut self, data: &[u8], start: usize, end: usize) {
        let mut len = (end - start) as u32;
        if data[start] == b'0' && len > 1 {
            len |= LEADING_ZERO;
        }
        self.vars.push(Var {
            value: run_value(data, start, end),
            start: start as u32,
            len,
        });
    }
}

/// The value of a variable with too many digits to be a number (a number of at most
/// [`MAX_DIGITS`] digits stays below it).
const TOO_LONG: u64 = u64::MAX;

/// Appends `data[from..to]` to `key` at `*k` (which has 16 bytes of room past it), in
/// 16-byte copies when `data` has 16 bytes after `to`.
#[inline(always)]
fn copy_text(key: &mut [u8], k: &mut usize, data: &[u8], from: usize, to: usize) {
    let n = to - from;
    if to + 16 <= data.len() {
        copy_over(&mut key[*k..*k + n + 16], &data[from..to + 16]);
    } else {
        key[*k..*k + n].copy_from_slice(&data[from..to]);
    }
    *k += n;
}

/// One bit per byte of `word` (bit i for byte i, little-endian): set where the byte is an
/// ASCII digit. Each byte is tested with additions that cannot carry into the next.
#[inline]
fn digit_bits(word: u64) -> u32 {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let low7 = word & !HI;
    let at_least_0 = low7 + 0x50 * LO;
    let above_9 = low7 + 0x46 * LO;
    let digits = at_least_0 & !above_9 & !word & HI;
    // Gather the eight high bits into the top byte.
    ((digits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// Appends one slot's values (runs of digits in `data`): as numbers when they are all
/// written the same way (without leading zeros, or all with one width) and fit a `u64`,
/// else as bytes.
fn put_column(values: &[Var], data: &[u8], out: &mut Vec<u8>) {
    let mut numbers = true;
    let mut canonical = true;
    let width = values.first().map_or(0, |v| v.digits());
    let mut one_width = true;
    // Bytes taken by the values as differences and as they are.
    let (mut deltas, mut plain) = (0, 0);
    let mut prev = 0;
    for v in values {
        if v.value == TOO_LONG {
            numbers = false;
            break;
        }
        canonical &= v.len & LEADING_ZERO == 0;
        one_width &= v.digits() == width;
        deltas += uvarint_len(zigzag(v.value.wrapping_sub(prev) as i64));
        plain += uvarint_len(v.value);
        prev = v.value;
    }
    let mode = match (numbers, canonical, one_width) {
        (true, true, _) => MODE_NUMBER,
        (true, false, true) => MODE_FIXED + width as u8,
        _ => {
            out.push(MODE_BYTES);
            for v in values {
                put_bytes(out, v.text(data));
            }
            return;
        }
    };
    if plain <= deltas {
        out.push(mode | MODE_PLAIN);
        for v in values {
            put_uvarint(out, v.value);
        }
    } else {
        out.push(mode);
        let mut prev = 0;
        for v in values {
            put_ivarint(out, v.value.wrapping_sub(prev) as i64);
            prev = v.value;
        }
    }
}

/// The value of the run of digits `data[start..end]`: [`TOO_LONG`] past [`MAX_DIGITS`].
#[inline]
fn run_value(data: &[u8], start: usize, end: usize) -> u64 {
    match end - start {
        0..=8 => eight_digits(data, start, end),
        9..=16 => {
            eight_digits(data, start, end - 8) * 100_000_000 + eight_digits(data, end - 8, end)
        }
        17..=MAX_DIGITS => {
            (eight_digits(data, start, end - 16) * 100_000_000
                + eight_digits(data, end - 16, end - 8))
                * 100_000_000
                + eight_digits(data, end - 8, end)
        }
        _ => TOO_LONG,
    }
}

/// The value of the run of one to eight digits `data[start..end]`, from one 8-byte load:
/// the bytes before the run are shifted out (they become leading zeros), then neighbouring
/// digits are combined in pairs, pairs in fours and fours in one, each step with one
/// multiplication over all lanes, so no step depends on the run's length.
#[inline]
fn eight_digits(data: &[u8], start: usize, end: usize) -> u64 {
    let n = end - start;
    debug_assert!((1..=8).contains(&n));
    let word = match end.checked_sub(8) {
        Some(at) => u64::from_le_bytes(data[at..end].try_into().unwrap_or_default()),
        None => {
            let mut w = [0u8; 8];
            w[8 - n..].copy_from_slice(&data[start..end]);
            u64::from_le_bytes(w)
        }
    };
    // Little-endian: the first byte in memory, the most significant digit, is the lowest.
    let x = word >> (8 * (8 - n)) << (8 * (8 - n));
    let x = ((x & 0x0f00_0f00_0f00_0f00) >> 8) + (x & 0x000f_000f_000f_000f) * 10;
    let x = ((x & 0x00ff_0000_00ff_0000) >> 16) + (x & 0x0000_00ff_0000_00ff) * 100;
    ((x & 0x0000_ffff_0000_0000) >> 32) + (x & 0x0000_0000_0000_ffff) * 10_000
}

/// Bytes of `v` as a varint: its significant bits over 7, rounded up (`(b * 9 + 64) / 64`
/// equals that for every `b` from 1 to 64, with a shift in place of a division).
fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    (bits * 9 + 64) >> 6
}

/// Bytes written past the lines' end while they are put together: segments are copied 16
/// bytes at a time and numbers take up to 20 digits, then the excess is overwritten or cut.
const SLACK: usize = 32;

/// Scratch space for putting lines back together, reused across blocks.
#[derive(Default)]
pub struct TemplateDecoder {
    /// Per template: its first segment in `segments` and its variable count.
    templates: Vec<(usize, usize)>,
    /// (position in the input, length).
    segments: Vec<(usize, usize)>,
    ids: Vec<usize>,
    counts: Vec<usize>,
    /// Every column's values, one after the other: a number, or for bytes their position
    /// in the input (high half) and length (low half).
    values: Vec<u64>,
    /// Per column: its mode, and the index of its next value.
    columns: Vec<(u8, usize)>,
    first_column: Vec<usize>,
}

impl TemplateDecoder {
    /// Appends the `len` bytes of lines that [`TemplateEncoder::encode`] wrote to
    /// `input[..encoded]` to `out`, concatenated, and returns how many lines there were.
    /// `table` is the part's template table, `None` for a block of a format-5 part, which
    /// holds its templates. `input` must hold 16 bytes more, of any value. Fails on damage,
    /// including lines that do not add up to `len` bytes.
    pub fn decode(
        &mut self,
        input: &[u8],
        encoded: usize,
        len: usize,
        table: Option<&Templates>,
        out: &mut Vec<u8>,
    ) -> Result<usize, Corrupt> {
        if input.len() < encoded + 16 {
            return Err(Corrupt);
        }
        let raw = &input[..encoded];
        let mut d = Decoder::new(raw);
        let lines = d.count(1)?;
        let n_templates = d.count(1)?;
        let templates = &mut self.templates;
        let segments = &mut self.segments;
        templates.clear();
        segments.clear();
        // Where the templates' text is: in the table, or in the block itself.
        let text = table.map_or(input, |t| &t.text[..]);
        let mut g = 0usize;
        for _ in 0..n_templates {
            let (mut at, t) = match table {
                Some(table) => {
                    g = g
                        .checked_add(usize::try_from(d.uvarint()?).map_err(|_| Corrupt)?)
                        .ok_or(Corrupt)?;
                    let (start, n) = *table.bounds.get(g).ok_or(Corrupt)?;
                    (start, &text[start..start + n])
                }
                None => {
                    let t = d.bytes()?;
                    (d.position() - t.len(), t)
                }
            };
            let first = segments.len();
            for piece in t.split(|&b| b == b'0') {
                segments.push((at, piece.len()));
                at += piece.len() + 1;
            }
            templates.push((first, segments.len() - first - 1));
        }
        let (ids, counts) = (&mut self.ids, &mut self.counts);
        ids.clear();
        counts.clear();
        counts.resize(n_templates, 0);
        for _ in 0..lines {
            let id = usize::try_from(d.uvarint()?).map_err(|_| Corrupt)?;
            *counts.get_mut(id).ok_or(Corrupt)? += 1;
            ids.push(id);
        }
        let (values, columns) = (&mut self.values, &mut self.columns);
        let first_column = &mut self.first_column;
        values.clear();
        columns.clear();
        first_column.clear();
        for (t, &(_, vars)) in templates.iter().enumerate() {
            first_column.push(columns.len());
            for _ in 0..vars {
                let mode = d.u8()?;
                let number = mode & !MODE_PLAIN;
                if number > MODE_FIXED + MAX_DIGITS as u8
                    || number == MODE_FIXED
                    || mode == MODE_BYTES | MODE_PLAIN
                {
                    return Err(Corrupt);
                }
                columns.push((mode, values.len()));
                values.reserve(counts[t]);
                let mut prev = 0u64;
                for _ in 0..counts[t] {
                    let v = match mode {
                        MODE_BYTES => {
                            let b = d.bytes()?;
                            ((d.position() - b.len()) as u64) << 32 | b.len() as u64
                        }
                        m if m & MODE_PLAIN != 0 => d.uvarint()?,
                        _ => {
                            prev = prev.wrapping_add(d.ivarint()? as u64);
                            prev
                        }
                    };
                    values.push(v);
                }
            }
        }
        if !d.is_empty() {
            return Err(Corrupt);
        }
        // Put the lines together in a buffer with room to write past the end.
        let start = out.len();
        let end = start.checked_add(len).ok_or(Corrupt)?;
        out.resize(end + SLACK, 0);
        let mut o = start;
        for &id in ids.iter() {
            let (seg, vars) = templates[id];
            copy_segment(out, &mut o, end, text, segments[seg])?;
            for slot in 0..vars {
                let (mode, next) = &mut columns[first_column[id] + slot];
                let v = values[*next];
                *next += 1;
                match *mode & !MODE_PLAIN {
                    MODE_BYTES => {
                        let bytes = ((v >> 32) as usize, v as u32 as usize);
                        copy_segment(out, &mut o, end, input, bytes)?;
                    }
                    m => {
                        let width = match m {
                            MODE_NUMBER => 0,
                            m => usize::from(m - MODE_FIXED),
                        };
                        let room: &mut [u8; 20] =
                            (&mut out[o..o + 20]).try_into().map_err(|_| Corrupt)?;
                        o += put_decimal(v, width, room)?;
                    }
                }
                copy_segment(out, &mut o, end, text, segments[seg + slot + 1])?;
            }
        }
        if o != end {
            return Err(Corrupt);
        }
        out.truncate(end);
        Ok(lines)
    }
}

/// Copies `input[pos..pos + n]` to `out` at `*o` and moves `*o` past it, unless that would
/// go past `end`. Both have room for 16 bytes more (see [`copy_over`]).
#[inline(always)]
fn copy_segment(
    out: &mut [u8],
    o: &mut usize,
    end: usize,
    input: &[u8],
    (pos, n): (usize, usize),
) -> Result<(), Corrupt> {
    if *o + n > end {
        return Err(Corrupt);
    }
    copy_over(&mut out[*o..*o + n + 16], &input[pos..pos + n + 16]);
    *o += n;
    Ok(())
}

/// Copies `src` to `dst` (as long) 16 bytes at a time, the last 16 ending where they end:
/// both hold 16 bytes more than are copied, so the last copy may reach into those.
#[inline]
fn copy_over(dst: &mut [u8], src: &[u8]) {
    let n = src.len() - 16;
    let mut i = 0;
    while i < n {
        dst[i..i + 16].copy_from_slice(&src[i..i + 16]);
        i += 16;
    }
}

/// Writes `n` in decimal, zero-padded to `width` digits, at the start of `out`, and
/// returns how many digits that took; a number wider than a non-zero `width` is damage.
/// The digits go straight to their places, right to left, two at a time: building them in
/// a buffer and copying that would read back bytes just stored one or two at a time, which
/// stalls the processor on every number.
#[inline(always)]
fn put_decimal(mut n: u64, width: usize, out: &mut [u8; 20]) -> Result<usize, Corrupt> {
    let digits = decimal_digits(n);
    let w = match width {
        0 => digits,
        w if w >= digits => w,
        _ => return Err(Corrupt),
    };
    if w > digits {
        // Whole, so that it is two stores rather than a call.
        *out = [b'0'; 20];
    }
    let mut i = w;
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        out[i - 2] = PAIRS[pair];
        out[i - 1] = PAIRS[pair + 1];
        i -= 2;
    }
    if n >= 10 {
        let pair = n as usize * 2;
        out[i - 2] = PAIRS[pair];
        out[i - 1] = PAIRS[pair + 1];
    } else {
        out[i - 1] = b'0' + n as u8;
    }
    Ok(w)
}

/// How many decimal digits `n` takes (1 for 0).
#[inline(always)]
fn decimal_digits(n: u64) -> usize {
    // log10 from log2 (1233 / 4096 is just above log10(2)), then one correction.
    let bits = 64 - (n | 1).leading_zeros() as usize;
    let guess = (bits * 1233) >> 12;
    guess + usize::from(n | 1 >= POWERS[guess])
}

/// 10^i.
const POWERS: [u64; 20] = {
    let mut p = [1u64; 20];
    let mut i = 1;
    while i < 20 {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// "00" to "99", for writing numbers two digits at a time.
const PAIRS: &[u8; 200] = b"\
0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(
        enc: &[u8],
        table: Option<&Templates>,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<usize, Corrupt> {
        let mut input = enc.to_vec();
        input.extend_from_slice(&[0xaa; 16]);
        TemplateDecoder::default().decode(&input, enc.len(), len, table, out)
    }

    /// The lines concatenated, and their offsets, as a block holds them.
    pub(crate) fn concat(lines: &[&[u8]]) -> (Vec<u8>, Vec<u32>) {
        let mut data = Vec::new();
        let mut offsets = vec![0u32];
        for l in lines {
            data.extend_from_slice(l);
            offsets.push(data.len() as u32);
        }
        (data, offsets)
    }

    /// A table as a reader finds it once stored.
    pub(crate) fn stored(table: &TemplateTable) -> Templates {
        let mut raw = Vec::new();
        table.encode(&mut raw);
        Templates::decode(raw).unwrap()
    }

    /// Encodes `lines` with `table`, checks they decode, returns the encoding.
    fn roundtrip_with(lines: &[&[u8]], table: &mut TemplateTable) -> Vec<u8> {
        let (data, offsets) = concat(lines);
        let mut enc = Vec::new();
        TemplateEncoder::default().encode(&data, &offsets, table, &mut enc);
        // Appended to what is there.
        let mut out = b"pre".to_vec();
        let t = stored(table);
        assert_eq!(
            decode(&enc, Some(&t), data.len(), &mut out),
            Ok(lines.len())
        );
        assert_eq!(out[..3], b"pre"[..]);
        assert_eq!(out[3..], data[..]);
        enc
    }

    fn roundtrip(lines: &[&[u8]]) -> Vec<u8> {
        roundtrip_with(lines, &mut TemplateTable::default())
    }

    #[test]
    fn lines_come_back_as_they_were() {
        roundtrip(&[]);
        roundtrip(&[b""]);
        roundtrip(&[b"", b"x", b"", b"7"]);
        roundtrip(&[
            b"2026-11-21 17:07:28,961 WARN [LeaseRenewer:msrabi@msra-sa-61:9791] renew",
            b"2026-11-21 17:07:29,167 WARN [LeaseRenewer:msrabi@msra-sa-03:9791] renew",
            b"2026-11-21 17:07:29,170 INFO Block rdd_73_17 stored, 0x1f 4xb00000439 007",
            b"2026-11-21 17:07:30,001 INFO Block rdd_74_9 stored, 0x20 4xbz 12",
        ]);
        // Numbers too long for a u64, zero-padded numbers of one width and of several,
        // canonical numbers followed by zero-padded ones of the same width.
        roundtrip(&[b"a 99999999999999999999 007 10", b"a 1 0012 01"]);
        roundtrip(&[b"n 10", b"n 05", b"n 99", b"n 0"]);
        roundtrip(&[b"n 5", b"n 05"]);
        roundtrip(&[b"n 18446744073709551615 0", b"n 0 9999999999999999999"]);
        roundtrip(&["caf\u{e9} 12 \u{1f600}".as_bytes(), b"\xff\xfe 3"]);
        // Runs of digits at a line's end before a line that starts with digits, where the
        // split reads eight bytes across the two lines.
        roundtrip(&[b"ab12345", b"678 x", b"1234567", b"89", b"12345678", b"9"]);
    }

    #[test]
    fn numbers_are_written_with_their_digits() {
        // Around every power of ten and of two, and zero-padded.
        let mut ns = vec![0, u64::MAX];
        for i in 0..20 {
            let p = 10u64.pow(i);
            ns.extend([p - 1, p, p + 1]);
        }
        ns.extend((0..64).flat_map(|i| [(1u64 << i) - 1, 1 << i, (1 << i) + 1]));
        for n in ns {
            let mut out = [b'x'; 20];
            let text = n.to_string();
            assert_eq!(decimal_digits(n), text.len(), "{n}");
            assert_eq!(put_decimal(n, 0, &mut out), Ok(text.len()));
            assert_eq!(&out[..text.len()], text.as_bytes());
            if text.len() < 20 {
                assert_eq!(put_decimal(n, 20, &mut out), Ok(20));
                assert_eq!(out[..], format!("{n:020}").as_bytes()[..]);
            }
            if text.len() > 1 {
                assert_eq!(put_decimal(n, text.len() - 1, &mut out), Err(Corrupt));
            }
        }
    }

    #[test]
    fn runs_of_digits_are_read_as_their_values_wherever_they_sit() {
        // Every length up to MAX_DIGITS (and one past), at every offset from the start of
        // the data (where fewer than 8 bytes stand before the run's end), after bytes that
        // are digits too and bytes that are not.
        let digits = b"9876543210123456789012";
        for len in 1..=MAX_DIGITS + 1 {
            for lead in 0..10 {
                for filler in [b'a', b'7', b'\xff'] {
                    let mut data = vec![filler; lead];
                    data.extend_from_slice(&digits[..len]);
                    data.push(b' ');
                    let text = std::str::from_utf8(&digits[..len]).unwrap();
                    let want = if len > MAX_DIGITS {
                        TOO_LONG
                    } else {
                        text.parse::<u64>().unwrap()
                    };
                    assert_eq!(run_value(&data, lead, lead + len), want, "{text} at {lead}");
                }
            }
        }
        // Leading zeros and nines at full width.
        let data = b"x0000000000000000001 9999999999999999999";
        assert_eq!(run_value(data, 1, 20), 1);
        assert_eq!(run_value(data, 21, 40), 9_999_999_999_999_999_999);
    }

    #[test]
    fn uvarint_len_is_the_length_put_uvarint_writes() {
        for bits in 0..64 {
            for v in [1u64 << bits, (1u64 << bits) - 1, (1u64 << bits) | 1] {
                let mut out = Vec::new();
                put_uvarint(&mut out, v);
                assert_eq!(uvarint_len(v), out.len(), "{v}");
            }
        }
        assert_eq!(uvarint_len(u64::MAX), 10);
    }

    #[test]
    fn digit_bits_finds_exactly_the_digits() {
        for b in 0..=255u8 {
            for i in 0..8 {
                for fill in [b'x', b'5', 0x80, 0xff] {
                    let mut word = [fill; 8];
                    word[i] = b;
                    let want = word
                        .iter()
                        .enumerate()
                        .fold(0, |m, (k, c)| m | u32::from(c.is_ascii_digit()) << k);
                    assert_eq!(digit_bits(u64::from_le_bytes(word)), want, "{word:?}");
                }
            }
        }
    }

    #[test]
    fn a_repeated_template_is_stored_once() {
        let line = |i: u32| format!("request {i} served in {}ms by worker-{}", i * 3, i % 4);
        let lines: Vec<String> = (0..100).map(line).collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let mut table = TemplateTable::default();
        let enc = roundtrip_with(&refs, &mut table);
        // Per line: a template id and three small deltas.
        assert!(enc.len() < 100 * 5, "{}", enc.len());
        assert!(!enc.windows(6).any(|w| w == b"served"));
        // Blocks of one part share the table.
        let other = [&b"request 7 served in 21ms by worker-3"[..], b"new kind 5"];
        roundtrip_with(&other, &mut table);
        let mut raw = Vec::new();
        table.encode(&mut raw);
        assert_eq!(raw.windows(6).filter(|w| w == b"served").count(), 1);
        assert_eq!(stored(&table).bounds.len(), 2);
    }

    #[test]
    fn blocks_of_format_5_parts_still_decode() {
        // Written by the encoder of format 5, which kept the templates in the block.
        const ENC: &[u8] = &[
            4, 4, 15, 71, 69, 84, 32, 47, 97, 47, 48, 32, 48, 32, 48, 46, 48, 115, 15, 71, 69, 84,
            32, 47, 98, 47, 48, 32, 48, 32, 48, 46, 48, 115, 9, 110, 111, 32, 100, 105, 103, 105,
            116, 115, 7, 105, 100, 32, 48, 32, 118, 48, 0, 1, 2, 3, 129, 12, 129, 200, 1, 129, 0,
            133, 31, 129, 7, 129, 148, 3, 129, 0, 133, 2, 0, 20, 57, 57, 57, 57, 57, 57, 57, 57,
            57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 57, 133, 7,
        ];
        let want = b"GET /a/12 200 0.031sGET /b/7 404 0.002sno digitsid 99999999999999999999 v007";
        let mut out = Vec::new();
        assert_eq!(decode(ENC, None, want.len(), &mut out), Ok(4));
        assert_eq!(out, want);
    }

    #[test]
    fn damage_is_an_error_not_a_panic() {
        let lines: &[&[u8]] = &[b"a 1 b 22 c", b"a 2 b 23 c", b"x y"];
        let mut table = TemplateTable::default();
        let enc = roundtrip_with(lines, &mut table);
        let t = stored(&table);
        for cut in 0..enc.len() {
            let _ = decode(&enc[..cut], Some(&t), 14 + 14 + 3, &mut Vec::new());
        }
        for i in 0..enc.len() {
            for b in [0u8, 1, 2, 0x7f, 0x80, 0xff] {
                let mut bad = enc.clone();
                bad[i] = b;
                let _ = decode(&bad, Some(&t), 14 + 14 + 3, &mut Vec::new());
                let _ = decode(&bad, None, 14 + 14 + 3, &mut Vec::new());
            }
        }
        // A damaged table.
        let mut raw = Vec::new();
        table.encode(&mut raw);
        for cut in 0..raw.len() {
            if let Ok(t) = Templates::decode(raw[..cut].to_vec()) {
                let _ = decode(&enc, Some(&t), 14 + 14 + 3, &mut Vec::new());
            }
        }
        // Lines of another length in all are damage.
        assert_eq!(decode(&enc, Some(&t), 5, &mut Vec::new()), Err(Corrupt));
        assert_eq!(decode(&enc, Some(&t), 32, &mut Vec::new()), Err(Corrupt));
    }

    proptest! {
        #[test]
        fn any_lines_round_trip(lines in proptest::collection::vec(
            proptest::collection::vec(
                prop_oneof![
                    Just(b'0'), Just(b'1'), Just(b'9'), Just(b'a'), Just(b'Z'),
                    Just(b' '), Just(b'-'), Just(b':'), any::<u8>(),
                ],
                0..40,
            ),
            0..30,
        )) {
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            roundtrip(&refs);
        }

        #[test]
        fn any_bytes_decode_without_panic(raw in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut table = TemplateTable::default();
            roundtrip_with(&[b"a 1 b", b"c 22 d 3"], &mut table);
            let _ = decode(&raw, None, 100, &mut Vec::new());
            let _ = decode(&raw, Some(&stored(&table)), 100, &mut Vec::new());
            let _ = Templates::decode(raw);
        }
    }
}
