//! The `json` and `unpack` parsers.
//!
//! Loki reads JSON with a lenient scanner (grafana/jsonparser) rather than a validating
//! decoder, and its answers show it: values are found by scanning for their end, arrays
//! are skipped without being looked into, text after the closing `}` is ignored, and the
//! error messages are the scanner's (`Value looks like object, but can't find closing '}'
//! symbol`). This module scans the same way, over the line's bytes, without building a
//! tree: keys and values go straight into the label arena.

use super::hints::Hints;
use super::labels::{DUPLICATE_SUFFIX, LabelSet};
use super::text::{push_sanitized, push_spaced, trim_go_space};

pub(crate) const JSON_ERR: &str = "JSONParserErr";

/// The scanner's errors, with its exact messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanError {
    MalformedJson,
    MalformedString,
    MalformedArray,
    MalformedObject,
    UnknownValueType,
    MalformedStringEscape,
}

impl ScanError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            ScanError::MalformedJson => "Malformed JSON error",
            ScanError::MalformedString => "Value is string, but can't find closing '\"' symbol",
            ScanError::MalformedArray => "Value is array, but can't find closing ']' symbol",
            ScanError::MalformedObject => {
                "Value looks like object, but can't find closing '}' symbol"
            }
            ScanError::UnknownValueType => "Unknown value type",
            ScanError::MalformedStringEscape => {
                "Encountered an invalid escape sequence in a string"
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Number,
    Object,
    Array,
    Boolean,
    Null,
}

/// Offset of the next byte that is not JSON whitespace.
pub(crate) fn next_token(data: &[u8]) -> Option<usize> {
    data.iter()
        .position(|c| !matches!(c, b' ' | b'\n' | b'\r' | b'\t'))
}

/// The end of a string body (after the closing quote) and whether it has escapes: the
/// first quote not escaped by an odd run of backslashes.
pub(crate) fn string_end(data: &[u8]) -> Option<(usize, bool)> {
    // Most strings have no escapes: the first quote or backslash tells.
    let first = memchr::memchr2(b'"', b'\\', data)?;
    if data[first] == b'"' {
        return Some((first + 1, false));
    }
    let mut from = first;
    loop {
        let q = from + memchr::memchr(b'"', &data[from..])?;
        let run = data[..q].iter().rev().take_while(|&&c| c == b'\\').count();
        if run % 2 == 0 {
            return Some((q + 1, memchr::memchr(b'\\', &data[..q]).is_some()));
        }
        from = q + 1;
    }
}

/// The end of an array or object starting at `data[0]`, skipping strings.
pub(crate) fn block_end(data: &[u8], open: u8, close: u8) -> Option<usize> {
    let mut level = 0i32;
    let mut i = 0;
    while let Some(off) = memchr::memchr3(b'"', open, close, &data[i..]) {
        i += off;
        match data[i] {
            b'"' => {
                let (se, _) = string_end(&data[i + 1..])?;
                i += se;
            }
            c if c == open => level += 1,
            _ => {
                level -= 1;
                if level == 0 {
                    return Some(i + 1);
                }
            }
        }
        i += 1;
    }
    None
}

/// The ends of the objects in one line, each found once. Walking nested objects finds each
/// one's end with [`block_end`], which scans all of it: at every level again, so a line
/// nested thousands deep took seconds (quadratic in its length). The scan for an object
/// here also remembers the ends of the objects inside it. That scan, from the `{` of an
/// inner object on, is the scan [`block_end`] would make from there, so the ends are the
/// same, malformed lines included.
#[derive(Debug, Default)]
pub(crate) struct ObjectEnds {
    /// Line offset of a `{` → line offset just after its `}`.
    ends: std::collections::HashMap<usize, usize>,
    open: Vec<usize>,
}

impl ObjectEnds {
    fn clear(&mut self) {
        if !self.ends.is_empty() {
            self.ends.clear();
        }
    }

    /// `block_end(data, b'{', b'}')` for the object at the start of `data`, which starts at
    /// offset `at` of the line.
    fn end(&mut self, data: &[u8], at: usize) -> Option<usize> {
        if let Some(&e) = self.ends.get(&at) {
            return Some(e - at);
        }
        self.open.clear();
        let mut i = 0;
        while let Some(off) = memchr::memchr3(b'"', b'{', b'}', &data[i..]) {
            i += off;
            match data[i] {
                b'"' => {
                    let (se, _) = string_end(&data[i + 1..])?;
                    i += se;
                }
                b'{' => self.open.push(i),
                _ => {
                    let inner = self.open.pop()?;
                    if self.open.is_empty() {
                        return Some(i + 1);
                    }
                    self.ends.insert(at + inner, at + i + 1);
                }
            }
            i += 1;
        }
        None
    }
}

fn token_end(data: &[u8]) -> usize {
    data.iter()
        .position(|c| matches!(c, b' ' | b'\n' | b'\r' | b'\t' | b',' | b'}' | b']'))
        .unwrap_or(data.len())
}

/// The value at the start of `data` (after whitespace): its bytes (a string without its
/// quotes), its kind, and where it ends.
pub(crate) fn get_value(data: &[u8]) -> Result<(&[u8], Kind, usize), ScanError> {
    get_value_in(data, None)
}

/// [`get_value`], with the ends of objects taken from `ends` when given (`base`: where
/// `data` starts in the line).
fn get_value_in<'d>(
    data: &'d [u8],
    ends: Option<(&mut ObjectEnds, usize)>,
) -> Result<(&'d [u8], Kind, usize), ScanError> {
    let off = next_token(data).ok_or(ScanError::MalformedJson)?;
    let rest = &data[off..];
    match rest[0] {
        b'"' => {
            let (end, _) = string_end(&rest[1..]).ok_or(ScanError::MalformedString)?;
            Ok((&rest[1..end], Kind::String, off + end + 1))
        }
        b'[' => {
            let end = block_end(rest, b'[', b']').ok_or(ScanError::MalformedArray)?;
            Ok((&rest[..end], Kind::Array, off + end))
        }
        b'{' => {
            let end = match ends {
                Some((ends, base)) => ends.end(rest, base + off),
                None => block_end(rest, b'{', b'}'),
            }
            .ok_or(ScanError::MalformedObject)?;
            Ok((&rest[..end], Kind::Object, off + end))
        }
        c => {
            let end = token_end(rest);
            let v = &rest[..end];
            let kind = match c {
                b't' | b'f' if v == b"true" || v == b"false" => Kind::Boolean,
                b'n' | b'u' if v == b"null" => Kind::Null,
                b'0'..=b'9' | b'-' => Kind::Number,
                _ => return Err(ScanError::UnknownValueType),
            };
            Ok((v, kind, off + end))
        }
    }
}

/// Calls `f(key, value, kind)` for each member of the object at the start of `data`,
/// with jsonparser's `ObjectEach` rules. `key_buf` holds unescaped keys.
pub(crate) fn object_each<E: From<ScanError>>(
    data: &[u8],
    key_buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], &[u8], Kind) -> Result<(), E>,
) -> Result<(), E> {
    let mut m = Members::start(data)?;
    while let Some((key, value, kind)) = m.next(data, key_buf)? {
        f(key, value, kind)?;
    }
    Ok(())
}

/// A walk over the members of the object at the start of a slice, one member per
/// [`Members::next`], so that nested objects can be walked with a stack of these rather
/// than by recursion. What follows a member is checked when the next one is asked for, so
/// that, as in jsonparser, a member is seen even when the text after it is broken.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Members {
    off: usize,
    /// Where the member last returned ends, still to be stepped over.
    value_end: Option<usize>,
    done: bool,
}

impl Members {
    /// Starts at the object's `{`.
    pub(crate) fn start(data: &[u8]) -> Result<Members, ScanError> {
        let mut off = next_token(data).ok_or(ScanError::MalformedObject)?;
        if data[off] != b'{' {
            return Err(ScanError::MalformedObject);
        }
        off += 1;
        off += next_token(&data[off..]).ok_or(ScanError::MalformedJson)?;
        Ok(Members {
            off,
            value_end: None,
            done: data[off] == b'}',
        })
    }

    /// The next member of the object in `data` (the slice [`Members::start`] was given):
    /// its key (unescaped into `key_buf` when it has escapes), value and kind.
    #[allow(clippy::type_complexity)]
    pub(crate) fn next<'d>(
        &mut self,
        data: &'d [u8],
        key_buf: &'d mut Vec<u8>,
    ) -> Result<Option<(&'d [u8], &'d [u8], Kind)>, ScanError> {
        self.next_in(data, key_buf, None)
    }

    /// [`Members::next`], with the ends of objects taken from `ends` (`base`: where `data`
    /// starts in the line).
    #[allow(clippy::type_complexity)]
    fn next_in<'d>(
        &mut self,
        data: &'d [u8],
        key_buf: &'d mut Vec<u8>,
        ends: Option<(&mut ObjectEnds, usize)>,
    ) -> Result<Option<(&'d [u8], &'d [u8], Kind)>, ScanError> {
        if self.done {
            return Ok(None);
        }
        let mut off = self.off;
        if let Some(end) = self.value_end.take() {
            off += end;
            off += next_token(&data[off..]).ok_or(ScanError::MalformedArray)?;
            match data[off] {
                b'}' => {
                    self.done = true;
                    return Ok(None);
                }
                b',' => off += 1,
                _ => return Err(ScanError::MalformedObject),
            }
            off += next_token(&data[off..]).ok_or(ScanError::MalformedArray)?;
        }
        if off >= data.len() {
            return Err(ScanError::MalformedObject);
        }
        match data[off] {
            b'"' => off += 1,
            b'}' => {
                self.done = true;
                return Ok(None);
            }
            _ => return Err(ScanError::MalformedObject),
        }
        let (end, escaped) = string_end(&data[off..]).ok_or(ScanError::MalformedJson)?;
        let raw_key = &data[off..off + end - 1];
        off += end;
        let key: &[u8] = if escaped {
            key_buf.clear();
            unescape_into(raw_key, key_buf).map_err(|_| ScanError::MalformedStringEscape)?;
            key_buf
        } else {
            raw_key
        };
        off += next_token(&data[off..]).ok_or(ScanError::MalformedJson)?;
        if data[off] != b':' {
            return Err(ScanError::MalformedJson);
        }
        off += 1;
        let (value, kind, end) = get_value_in(&data[off..], ends.map(|(e, base)| (e, base + off)))?;
        self.off = off;
        self.value_end = Some(end);
        Ok(Some((key, value, kind)))
    }
}

/// jsonparser's `Unescape`: JSON escapes, surrogate pairs; appends to `out`.
pub(crate) fn unescape_into(mut s: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    while let Some(i) = memchr::memchr(b'\\', s) {
        out.extend_from_slice(&s[..i]);
        s = &s[i..];
        let e = *s.get(1).ok_or(())?;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            s = &s[2..];
            continue;
        }
        if e != b'u' {
            return Err(());
        }
        let r = hex4(s).ok_or(())?;
        let (c, used) = if !(0xD800..=0xDFFF).contains(&r) {
            (char::from_u32(r), 6)
        } else {
            let r2 = s.get(6..).and_then(hex4).ok_or(())?;
            if s.get(6..8) != Some(b"\\u") || r2 < 0xDC00 {
                return Err(());
            }
            let combined = 0x10000 + ((r.wrapping_sub(0xD800)) << 10) + r2.wrapping_sub(0xDC00);
            (char::from_u32(combined), 12)
        };
        let c = c.unwrap_or('\u{FFFD}');
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        s = &s[used..];
    }
    out.extend_from_slice(s);
    Ok(())
}

/// The code unit of a `\uXXXX` at the start of `s`.
fn hex4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 || s[0] != b'\\' || s[1] != b'u' {
        return None;
    }
    let mut v = 0u32;
    for &c in &s[2..6] {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Appends a JSON string value as Loki reads it: unescaped (an invalid escape gives the
/// empty string), invalid UTF-8 turned into spaces.
pub(crate) fn push_json_string(out: &mut String, raw: &[u8], scratch: &mut Vec<u8>) {
    if memchr::memchr(b'\\', raw).is_none() {
        push_spaced(out, raw);
        return;
    }
    scratch.clear();
    if unescape_into(raw, scratch).is_ok() {
        push_spaced(out, scratch);
    }
}

/// The `json` parser without parameters: every scalar member becomes a label, nested
/// objects flattened with `_`, arrays and nulls ignored.
#[derive(Debug, Default)]
pub(crate) struct JsonParser {
    key_buf: Vec<u8>,
    /// The flattened name of the enclosing objects' keys; a member's name while it is
    /// looked at, cut back after.
    name: String,
    scratch: Vec<u8>,
    /// The objects around the one being walked.
    outer: Vec<Outer>,
    ends: ObjectEnds,
}

/// Objects nested this deep or deeper find their ends in [`ObjectEnds`]; those above
/// scan for them, each scan costing at most a pass over the line.
const DEEP: usize = 8;

/// An object whose walk waits while a member of it is walked.
#[derive(Debug)]
struct Outer {
    /// Its range in the line.
    at: (usize, usize),
    members: Members,
    /// The length of the name before the member's key.
    name: usize,
}

/// Why scanning stopped early.
enum Stop {
    Scan(ScanError),
    /// Every hinted label is extracted.
    Done,
    /// An early label filter failed: the line is dropped.
    Drop,
}

impl From<ScanError> for Stop {
    fn from(e: ScanError) -> Stop {
        Stop::Scan(e)
    }
}

impl JsonParser {
    /// Parses `line` into `labels`; `false` when an early label filter drops the line.
    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) -> bool {
        if hints.no_labels(labels) {
            return true;
        }
        self.name.clear();
        self.ends.clear();
        match self.object(line, labels, hints) {
            Err(Stop::Scan(e)) => hints.set_parser_error(labels, JSON_ERR, e.message()),
            Err(Stop::Drop) => return false,
            Ok(()) | Err(Stop::Done) => {}
        }
        true
    }

    /// Walks the object `data` and the nested objects whose names may be extracted,
    /// depth first, with a stack rather than recursion: a line may nest as deep as it
    /// likes without exhausting the thread's stack.
    fn object(&mut self, data: &[u8], labels: &mut LabelSet, hints: &Hints) -> Result<(), Stop> {
        let mut key_buf = std::mem::take(&mut self.key_buf);
        let mut outer = std::mem::take(&mut self.outer);
        outer.clear();
        let r = self.walk(data, labels, hints, &mut key_buf, &mut outer);
        self.key_buf = key_buf;
        self.outer = outer;
        r
    }

    fn walk(
        &mut self,
        data: &[u8],
        labels: &mut LabelSet,
        hints: &Hints,
        key_buf: &mut Vec<u8>,
        outer: &mut Vec<Outer>,
    ) -> Result<(), Stop> {
        // The object being walked: its range in `data`, and where the walk is in it.
        let mut at = (0, data.len());
        let mut members = Members::start(data)?;
        loop {
            let obj = &data[at.0..at.1];
            let ends = (outer.len() >= DEEP).then_some((&mut self.ends, at.0));
            let Some((key, value, kind)) = members.next_in(obj, key_buf, ends)? else {
                // The object ends: back to the one around it.
                let Some(o) = outer.pop() else {
                    return Ok(());
                };
                self.name.truncate(o.name);
                (at, members) = (o.at, o.members);
                continue;
            };
            match kind {
                Kind::String | Kind::Number | Kind::Boolean => {
                    self.value(key, value, kind, labels, hints)?
                }
                Kind::Object => {
                    let start = self.name.len();
                    push_name_part(&mut self.name, key);
                    if hints.should_extract_prefix(&self.name) {
                        outer.push(Outer {
                            at,
                            members,
                            name: start,
                        });
                        let from = value.as_ptr() as usize - data.as_ptr() as usize;
                        at = (from, from + value.len());
                        members = Members::start(value)?;
                    } else {
                        self.name.truncate(start);
                    }
                    // As when the member's walk returns: the check below is for scalars.
                    continue;
                }
                Kind::Array | Kind::Null => {}
            }
            if hints.all_extracted(labels) {
                return Err(Stop::Done);
            }
        }
    }

    fn value(
        &mut self,
        key: &[u8],
        value: &[u8],
        kind: Kind,
        labels: &mut LabelSet,
        hints: &Hints,
    ) -> Result<(), Stop> {
        let prefix = self.name.len();
        push_name_part(&mut self.name, key);
        let r = self.set_value(value, kind, labels, hints);
        self.name.truncate(prefix);
        r
    }

    /// Sets the member named `self.name` to `value`.
    fn set_value(
        &mut self,
        value: &[u8],
        kind: Kind,
        labels: &mut LabelSet,
        hints: &Hints,
    ) -> Result<(), Stop> {
        if self.name.is_empty() {
            return Ok(());
        }
        if labels.collides(&self.name) {
            self.name.push_str(DUPLICATE_SUFFIX);
        }
        if !hints.should_extract(&self.name) || labels.extracted(&self.name) {
            return Ok(());
        }
        let mut w = labels.value_writer();
        match kind {
            Kind::String => push_json_string(w.buf(), value, &mut self.scratch),
            Kind::Number => push_spaced(w.buf(), value),
            _ => w
                .buf()
                .push_str(if value == b"true" { "true" } else { "false" }),
        }
        let v = w.finish();
        labels.set_parsed_value(&self.name, v);
        if !hints.should_continue(&self.name, labels) {
            return Err(Stop::Drop);
        }
        Ok(())
    }
}

/// Appends a key to a flattened name: sanitised, after a `_`; keys of only spaces add
/// nothing.
fn push_name_part(name: &mut String, key: &[u8]) {
    if trim_go_space(key).is_empty() {
        return;
    }
    if !name.is_empty() {
        name.push('_');
    }
    push_sanitized(name, key);
}

/// What `unpack` made of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unpacked {
    /// The line stays (not packed, or an error).
    Line,
    /// The packed `_entry` replaces the line.
    Entry,
    /// An early label filter dropped the line.
    Dropped,
}

/// `unpack`: the labels and `_entry` line that Promtail's `pack` stage wrote as JSON.
#[derive(Debug, Default)]
pub(crate) struct Unpack {
    key_buf: Vec<u8>,
    /// Pending (name, value) pairs, flushed only when the object had an `_entry`.
    pending: String,
    spans: Vec<(usize, usize, usize)>,
    scratch: Vec<u8>,
}

const PACKED_ENTRY: &[u8] = b"_entry";

impl Unpack {
    /// Unpacks `line`; when it had an `_entry`, the entry is written to `entry`.
    pub(crate) fn process(
        &mut self,
        line: &[u8],
        labels: &mut LabelSet,
        hints: &Hints,
        entry: &mut Vec<u8>,
    ) -> Unpacked {
        if line.is_empty() || hints.no_labels(labels) {
            return Unpacked::Line;
        }
        if line[0] != b'{' {
            hints.set_parser_error(labels, JSON_ERR, "expecting json object(6), but it is not");
            return Unpacked::Line;
        }
        self.pending.clear();
        self.spans.clear();
        let mut packed = false;
        let mut key_buf = std::mem::take(&mut self.key_buf);
        let pending = &mut self.pending;
        let spans = &mut self.spans;
        let scratch = &mut self.scratch;
        let r = object_each(line, &mut key_buf, |key, value, kind| {
            if kind != Kind::String {
                return Ok::<(), ScanError>(());
            }
            if key == PACKED_ENTRY {
                entry.clear();
                unescape_into(value, entry).map_err(|_| ScanError::MalformedStringEscape)?;
                packed = true;
                return Ok(());
            }
            let start = pending.len();
            // The collision check sees the raw key; the label gets the sanitised one.
            let raw = String::from_utf8_lossy(key);
            let collides = labels.collides(&raw);
            push_sanitized(pending, key);
            if collides {
                pending.push_str(DUPLICATE_SUFFIX);
            }
            let name_end = pending.len();
            let name = &pending[start..name_end];
            if name.is_empty() || !hints.should_extract(name) || labels.extracted(name) {
                pending.truncate(start);
                return Ok(());
            }
            push_json_string(pending, value, scratch);
            spans.push((start, name_end, pending.len()));
            Ok(())
        });
        self.key_buf = key_buf;
        if let Err(e) = r {
            hints.set_parser_error(labels, JSON_ERR, e.message());
            return Unpacked::Line;
        }
        if !packed {
            return Unpacked::Line;
        }
        for &(s, m, e) in &self.spans {
            let name = &self.pending[s..m];
            labels.set_parsed(name, &self.pending[m..e]);
            if !hints.should_continue(name, labels) {
                return Unpacked::Dropped;
            }
        }
        Unpacked::Entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Labels;

    fn parse(line: &str) -> Vec<(String, String)> {
        let stream = Labels::from_pairs([("app", "api"), ("level", "x")]);
        let mut set = LabelSet::for_stream(&stream);
        set.reset();
        set.add_metadata("trace_id", "t1");
        JsonParser::default().process(line.as_bytes(), &mut set, &Hints::all());
        set.finish(None);
        set.iter()
            .filter(|(n, _, _)| *n != "app" && *n != "level" && *n != "trace_id")
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn deep_nesting_is_walked_without_recursion_in_linear_time() {
        // A line of Loki's largest size (256 KiB), nested as deep as it can be: one stack
        // frame per level would exhaust a test thread's stack, and scanning each object
        // once per object around it took seconds (minutes in a debug build).
        let depth = 43_000;
        let line = format!(
            "{{\"x\": {}1{}, \"y\": 2}}",
            "{\"a\":".repeat(depth),
            "}".repeat(depth)
        );
        assert!(line.len() < 256 << 10);
        let name = format!("x_{}", vec!["a"; depth].join("_"));
        assert_eq!(parse(&line), pairs(&[(&name, "1"), ("y", "2")]));
    }

    proptest::proptest! {
        /// The end of every object found from memory is the one a scan from its `{` finds,
        /// on any text, malformed or not.
        #[test]
        fn remembered_object_ends_are_the_scanned_ones(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["{", "}", "\"", "\\", "a", ":", ",", "[", "]", " "]),
                0..80,
            )
        ) {
            let line = parts.concat().into_bytes();
            let mut ends = ObjectEnds::default();
            for at in (0..line.len()).filter(|&i| line[i] == b'{') {
                proptest::prop_assert_eq!(
                    ends.end(&line[at..], at),
                    block_end(&line[at..], b'{', b'}'),
                    "at {}", at
                );
            }
        }
    }

    #[test]
    fn flattens_and_sanitises() {
        let got = parse(
            r#"{"level": "info", "status": 503, "ok": true, "n": null, "user": {"id": 214, "name": "alice", "roles": ["reader"]}, "request": {"headers": {"user-agent": "curl"}}, "trace_id": "x", "1a": "b"}"#,
        );
        assert_eq!(
            got,
            pairs(&[
                ("_1a", "b"),
                ("level_extracted", "info"),
                ("ok", "true"),
                ("request_headers_user_agent", "curl"),
                ("status", "503"),
                ("trace_id_extracted", "x"),
                ("user_id", "214"),
                ("user_name", "alice"),
            ])
        );
    }

    #[test]
    fn escapes_and_first_wins() {
        assert_eq!(
            parse(r#"{"a": "x\"y\u00e9\ud83d\ude00", "a": "second", "b": "bad\q"}"#),
            pairs(&[("a", "x\"yé😀"), ("b", "")])
        );
    }

    #[test]
    fn errors_like_jsonparser() {
        let err = |line: &str| {
            let mut set = LabelSet::for_stream(&Labels::new());
            set.reset();
            JsonParser::default().process(line.as_bytes(), &mut set, &Hints::all());
            set.err_details().map(str::to_string)
        };
        assert_eq!(
            err("not json at all"),
            Some("Value looks like object, but can't find closing '}' symbol".into())
        );
        assert_eq!(err(r#"{"a": tru}"#), Some("Unknown value type".into()));
        assert_eq!(
            err(r#"{"a": 1"#),
            Some("Value is array, but can't find closing ']' symbol".into())
        );
        assert_eq!(
            err(r#"{"a": "x}"#),
            Some("Value is string, but can't find closing '\"' symbol".into())
        );
        assert_eq!(err(r#"  {"a": 1} trailing"#), None);
        assert_eq!(err("{}"), None);
        assert_eq!(
            err(""),
            Some("Value looks like object, but can't find closing '}' symbol".into())
        );
    }

    #[test]
    fn unpacks_entries() {
        let stream = Labels::from_pairs([("app", "api")]);
        let mut set = LabelSet::for_stream(&stream);
        set.reset();
        let mut entry = Vec::new();
        let mut u = Unpack::default();
        let packed = u.process(
            br#"{"_entry": "hello \"x\"", "app": "a", "pod": "p", "n": 1}"#,
            &mut set,
            &Hints::all(),
            &mut entry,
        );
        assert_eq!(packed, Unpacked::Entry);
        assert_eq!(entry, br#"hello "x""#);
        set.finish(None);
        assert_eq!(set.get("pod"), Some("p"));
        assert_eq!(set.get("app_extracted"), Some("a"));
        assert_eq!(set.get("n"), None);
    }
}
