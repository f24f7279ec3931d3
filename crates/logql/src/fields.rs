//! Field columns: the fields of JSON or logfmt lines, kept beside the lines when a block is
//! written, so that a `| json` or `| logfmt` metric query whose labels come from a few
//! fields reads those fields instead of decompressing and parsing every line.
//!
//! The writer ([`FieldsWriter`]) keeps, for each field name of a block, the raw token of
//! each line's first field with that name (both parsers keep the first), but only when
//! every line of the block scans without error as the parser scans it: then no line of
//! the block can give a parser error to a query that extracts only named fields (for
//! JSON, top-level members). A block is JSON when its first line starts with `{`, else
//! it is tried as logfmt, whose lines must each have a `key=value` pair. Names with long
//! values or too many distinct values for their column to stay small get no column and
//! are listed as *uncovered*; JSON names whose value is an object in some line are listed
//! as *nested*.
//!
//! The reader ([`Fields`], in a [`crate::Batch`]) hands the engine, for each distinct
//! combination of the tokens a query needs, a line of just those fields
//! ([`synthetic_line`]), which the real pipeline runs on: the parsers with hints extract
//! only the named fields, so the answer is the one the whole line gives.

use std::sync::Arc;

use crate::pipeline::json::{Kind, ScanError, object_each};
use crate::pipeline::logfmt::pairs_each;
use crate::pipeline::text::push_sanitized;
use crate::prehashed::PrehashedMap;

/// Field names a block may have and still get columns.
const MAX_NAMES: usize = 64;
/// Longest token a column keeps.
const MAX_TOKEN: usize = 64;
/// A column's distinct tokens may take this many bytes per entry of the block (plus
/// [`TOKEN_SLACK`]): a request duration fits, a timestamp unique to each line does not.
const TOKEN_BYTES_PER_ENTRY: usize = 8;
const TOKEN_SLACK: usize = 512;

/// Which parser a block's columns stand for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldKind {
    #[default]
    Json,
    Logfmt,
}

/// What a query would read from field columns: the parser the columns must stand for and
/// the label names it takes from lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldNames {
    pub kind: FieldKind,
    pub names: Vec<String>,
}

/// The field columns of a batch: every entry has a code in every column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub kind: FieldKind,
    pub columns: Vec<FieldColumn>,
    /// Label names some line sets that have no column: a query needing one must parse.
    pub uncovered: Vec<String>,
    /// Label names whose value is an object in some line (a query needing a name that
    /// starts with one must parse: `| json` would look inside).
    pub nested: Vec<String>,
}

/// One field name's tokens: `codes[i]` is 0 when entry `i` has no such field, else
/// `k + 1` for `tokens[k]` (as it stands in the line: a JSON string or a quoted logfmt
/// value with its quotes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldColumn {
    pub name: String,
    pub tokens: Arc<Tokens>,
    pub codes: Vec<u16>,
}

/// A column's distinct tokens, in one buffer (a block may have thousands).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl Tokens {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn push(&mut self, token: &[u8]) {
        self.data.extend_from_slice(token);
        self.ends.push(self.data.len() as u32);
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|k| &self[k])
    }
}

impl std::ops::Index<usize> for Tokens {
    type Output = [u8];

    fn index(&self, k: usize) -> &[u8] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        &self.data[start..self.ends[k] as usize]
    }
}

impl Fields {
    /// The columns a query needing `want` reads, by index, or `None` when the columns
    /// stand for another parser, when a required name is uncovered or may come from a
    /// nested object, or when both `x` and `x_extracted` have columns (which one a
    /// colliding `x` fills depends on the order of the fields in the line): then the
    /// lines must be parsed. A required name with neither a column nor a listing is in
    /// no line.
    pub fn plan(&self, want: &FieldNames) -> Option<Vec<usize>> {
        if self.kind != want.kind {
            return None;
        }
        let mut cols = Vec::new();
        for r in &want.names {
            if self.uncovered.iter().any(|u| u == r)
                || self.nested.iter().any(|n| r.starts_with(n.as_str()))
            {
                return None;
            }
            if let Some(i) = self.columns.iter().position(|c| &c.name == r) {
                cols.push(i);
            }
        }
        let named = |i: usize| self.columns[i].name.as_str();
        for &i in &cols {
            if let Some(base) = named(i).strip_suffix(crate::pipeline::labels::DUPLICATE_SUFFIX)
                && cols.iter().any(|&j| named(j) == base)
            {
                return None;
            }
        }
        Some(cols)
    }
}

/// Writes into `out` (cleared first) the line of entry `i`'s fields in `cols`: a JSON
/// object of those members, or logfmt pairs.
pub fn synthetic_line(out: &mut Vec<u8>, fields: &Fields, cols: &[usize], i: usize) {
    out.clear();
    let json = fields.kind == FieldKind::Json;
    if json {
        out.push(b'{');
    }
    let mut first = true;
    for &c in cols {
        let col = &fields.columns[c];
        let code = col.codes[i];
        if code == 0 {
            continue;
        }
        if !first {
            out.push(if json { b',' } else { b' ' });
        }
        first = false;
        if json {
            out.push(b'"');
            out.extend_from_slice(col.name.as_bytes());
            out.extend_from_slice(b"\":");
        } else {
            out.extend_from_slice(col.name.as_bytes());
            out.push(b'=');
        }
        out.extend_from_slice(&col.tokens[usize::from(code) - 1]);
    }
    if json {
        out.push(b'}');
    }
}

/// Why a block gets no columns.
struct Stop;

impl From<ScanError> for Stop {
    fn from(_: ScanError) -> Stop {
        Stop
    }
}

#[derive(Default)]
struct Column {
    name: String,
    /// A token's 64-bit hash → its code (a second token with the same hash kills the
    /// column: rare, and never wrong).
    dict: PrehashedMap<u16>,
    tokens: Tokens,
    codes: Vec<u16>,
    /// Too many distinct or too long tokens: no column, the name is uncovered.
    dead: bool,
    /// The last entry that set it (first field wins).
    last: usize,
    /// That entry's logfmt value is empty: `| logfmt` passes over it (unless
    /// `--keep-empty`), so a later field of the name would win, depending on the query.
    last_empty: bool,
}

/// Builds the field columns of one block's lines; reused across blocks.
#[derive(Default)]
pub struct FieldsWriter {
    kind: FieldKind,
    key_buf: Vec<u8>,
    name: String,
    /// Raw key → column (`None`: the key gives no label name).
    keys: Vec<(Vec<u8>, Option<usize>)>,
    /// Where in `keys` the next key is looked for first: after the last one found, since
    /// the lines of a block mostly name their fields in the same order.
    next_key: usize,
    columns: Vec<Column>,
    nested: Vec<String>,
    /// Entries added.
    n: usize,
    ok: bool,
}

impl FieldsWriter {
    pub fn new() -> FieldsWriter {
        FieldsWriter::default()
    }

    /// Starts a block whose first line is `first`: JSON when it starts with `{`, else
    /// logfmt.
    pub fn reset(&mut self, first: &[u8]) {
        self.kind = if first.trim_ascii_start().first() == Some(&b'{') {
            FieldKind::Json
        } else {
            FieldKind::Logfmt
        };
        self.keys.clear();
        self.next_key = 0;
        self.columns.clear();
        self.nested.clear();
        self.n = 0;
        self.ok = true;
    }

    /// Adds the next line; `false` once the block cannot have field columns (a line that
    /// does not scan, too many names), after which adding is pointless.
    pub fn add(&mut self, line: &[u8]) -> bool {
        if !self.ok {
            return false;
        }
        self.n += 1;
        self.ok = match self.kind {
            FieldKind::Json => self.add_json(line).is_ok(),
            FieldKind::Logfmt => pairs_each(line, |key, token| self.put(key, token).is_ok()),
        };
        self.ok
    }

    fn add_json(&mut self, line: &[u8]) -> Result<(), Stop> {
        let mut key_buf = std::mem::take(&mut self.key_buf);
        let r = object_each::<Stop>(line, &mut key_buf, |key, value, kind| {
            match kind {
                Kind::String | Kind::Number | Kind::Boolean => {}
                Kind::Object => {
                    self.name.clear();
                    push_sanitized(&mut self.name, key);
                    // A blank key adds no prefix: its members surface under their own
                    // names, and "" (a prefix of every name) says so.
                    if !self.nested.contains(&self.name) {
                        self.nested.push(self.name.clone());
                    }
                    return Ok(());
                }
                Kind::Array | Kind::Null => return Ok(()),
            }
            // The token as it stands in the line: strings with their quotes.
            let token: &[u8] = if kind == Kind::String {
                // `value` is the string's body inside `line`: widen by one on each side.
                let start = value.as_ptr() as usize - line.as_ptr() as usize - 1;
                &line[start..start + value.len() + 2]
            } else {
                value
            };
            self.put(key, token)
        });
        self.key_buf = key_buf;
        r
    }

    /// Records `token` as the current entry's value of raw key `key`, unless an earlier
    /// field of the line had its name.
    fn put(&mut self, key: &[u8], token: &[u8]) -> Result<(), Stop> {
        let entry = self.n;
        let Some(c) = self.column_of(key)? else {
            return Ok(());
        };
        let logfmt = self.kind == FieldKind::Logfmt;
        let col = &mut self.columns[c];
        if col.last == entry {
            if col.last_empty && !col.dead {
                col.kill();
            }
            return Ok(());
        }
        col.last = entry;
        col.last_empty = logfmt && (token.is_empty() || token == b"\"\"");
        if col.dead {
            return Ok(());
        }
        if token.len() > MAX_TOKEN {
            col.kill();
            return Ok(());
        }
        let h = xxhash_rust::xxh3::xxh3_64(token);
        let code = match col.dict.get(&h) {
            Some(&k) if &col.tokens[usize::from(k) - 1] == token => k,
            Some(_) => {
                col.kill();
                return Ok(());
            }
            None => {
                if col.tokens.len() == usize::from(u16::MAX - 1)
                    || col.tokens.data.len() + token.len()
                        > TOKEN_BYTES_PER_ENTRY * entry + TOKEN_SLACK
                {
                    col.kill();
                    return Ok(());
                }
                col.tokens.push(token);
                let k = col.tokens.len() as u16;
                col.dict.insert(h, k);
                k
            }
        };
        col.codes.resize(entry - 1, 0);
        col.codes.push(code);
        Ok(())
    }

    /// The column of raw key `key`, created on first sight; `Err` past [`MAX_NAMES`].
    fn column_of(&mut self, key: &[u8]) -> Result<Option<usize>, Stop> {
        let guess = self.next_key.min(self.keys.len());
        let (earlier, from_guess) = self.keys.split_at(guess);
        if let Some(i) = from_guess
            .iter()
            .position(|(k, _)| k == key)
            .map(|i| guess + i)
            .or_else(|| earlier.iter().position(|(k, _)| k == key))
        {
            self.next_key = i + 1;
            return Ok(self.keys[i].1);
        }
        self.next_key = self.keys.len() + 1;
        if self.keys.len() == MAX_NAMES {
            return Err(Stop);
        }
        self.name.clear();
        push_sanitized(&mut self.name, key);
        let c = if self.name.is_empty() {
            None
        } else if let Some(i) = self.columns.iter().position(|c| c.name == self.name) {
            Some(i)
        } else {
            // The reader writes the name as the key: it must read back as itself.
            let mut again = String::new();
            push_sanitized(&mut again, self.name.as_bytes());
            self.columns.push(Column {
                name: self.name.clone(),
                dead: again != self.name || self.name.contains('"'),
                ..Column::default()
            });
            Some(self.columns.len() - 1)
        };
        self.keys.push((key.to_vec(), c));
        Ok(c)
    }

    /// The block's columns, or `None` when it cannot have any.
    pub fn finish(&mut self) -> Option<Fields> {
        if !self.ok || self.n == 0 {
            return None;
        }
        let mut f = Fields {
            kind: self.kind,
            nested: std::mem::take(&mut self.nested),
            ..Fields::default()
        };
        for mut c in self.columns.drain(..) {
            if c.dead {
                f.uncovered.push(c.name);
                continue;
            }
            c.codes.resize(self.n, 0);
            f.columns.push(FieldColumn {
                name: c.name,
                tokens: Arc::new(c.tokens),
                codes: c.codes,
            });
        }
        Some(f)
    }
}

impl Column {
    fn kill(&mut self) {
        self.dead = true;
        self.dict = PrehashedMap::default();
        self.tokens = Tokens::default();
        self.codes = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(lines: &[&str]) -> Option<Fields> {
        let mut w = FieldsWriter::new();
        w.reset(lines.first().map_or(&b""[..], |l| l.as_bytes()));
        for l in lines {
            w.add(l.as_bytes());
        }
        w.finish()
    }

    #[test]
    fn columns_hold_first_tokens_and_list_what_they_cannot_hold() {
        let long = "x".repeat(100);
        let l1 = format!(r#"{{"level":"info","status":200,"ok":true,"msg":"{long}","a-b":1}}"#);
        let f = fields_of(&[
            &l1,
            r#" {"status":500,"level":"error","level":"warn","http":{"x":1},"arr":[1],"n":null}"#,
        ])
        .unwrap();
        let col = |n: &str| f.columns.iter().find(|c| c.name == n).unwrap();
        assert_eq!(tokens(col("level")), [&b"\"info\""[..], b"\"error\""]);
        assert_eq!(col("level").codes, vec![1, 2]);
        assert_eq!(col("status").codes, vec![1, 2]);
        assert_eq!(col("ok").codes, vec![1, 0]);
        assert_eq!(tokens(col("a_b")), [b"1"]);
        assert_eq!(f.uncovered, vec!["msg".to_string()]);
        assert_eq!(f.nested, vec!["http".to_string()]);
        let mut out = Vec::new();
        let plan = f.plan(&json(&["status", "level"])).unwrap();
        synthetic_line(&mut out, &f, &plan, 1);
        assert_eq!(out, br#"{"status":500,"level":"error"}"#);
        assert!(f.plan(&json(&["msg"])).is_none());
        assert!(f.plan(&json(&["http_x"])).is_none());
        assert_eq!(f.plan(&json(&["absent"])), Some(vec![]));
        // Columns of JSON lines do not stand for logfmt.
        assert!(f.plan(&logfmt(&["status"])).is_none());
    }

    #[test]
    fn fields_in_any_order_land_in_their_columns() {
        let f = fields_of(&[
            "a=1 b=2 c=3",
            "a=4 b=5 c=6",
            "c=7 a=8",
            "b=9 d=10 a=11",
            "a=12 b=13 c=14",
        ])
        .unwrap();
        let col = |n: &str| {
            let c = f.columns.iter().find(|c| c.name == n).unwrap();
            c.codes
                .iter()
                .map(|&k| match k {
                    0 => String::new(),
                    k => String::from_utf8(c.tokens[usize::from(k) - 1].to_vec()).unwrap(),
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(col("a"), ["1", "4", "8", "11", "12"]);
        assert_eq!(col("b"), ["2", "5", "", "9", "13"]);
        assert_eq!(col("c"), ["3", "6", "7", "", "14"]);
        assert_eq!(col("d"), ["", "", "", "10", ""]);
    }

    fn tokens(c: &FieldColumn) -> Vec<&[u8]> {
        c.tokens.iter().collect()
    }

    fn json(names: &[&str]) -> FieldNames {
        FieldNames {
            kind: FieldKind::Json,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    fn logfmt(names: &[&str]) -> FieldNames {
        FieldNames {
            kind: FieldKind::Logfmt,
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn logfmt_columns_keep_tokens_as_they_stand() {
        let long = "x".repeat(100);
        let f = fields_of(&[
            &format!(r#"level=info msg="a \"b\"" d=1.5ms empty= flag a.b=1 long={long}"#),
            "  d=2s level=warn level=error msg=plain  ",
        ])
        .unwrap();
        assert_eq!(f.kind, FieldKind::Logfmt);
        let col = |n: &str| f.columns.iter().find(|c| c.name == n).unwrap();
        assert_eq!(tokens(col("level")), [b"info", b"warn"]);
        assert_eq!(col("level").codes, vec![1, 2]);
        assert_eq!(tokens(col("msg")), [&br#""a \"b\"""#[..], b"plain"]);
        assert_eq!(tokens(col("empty")), [b""]);
        assert_eq!(tokens(col("flag")), [b""]);
        assert_eq!(col("a_b").codes, vec![1, 0]);
        assert_eq!(f.uncovered, vec!["long".to_string()]);
        let mut out = Vec::new();
        let plan = f.plan(&logfmt(&["msg", "d", "empty", "nope"])).unwrap();
        synthetic_line(&mut out, &f, &plan, 0);
        assert_eq!(out, br#"msg="a \"b\"" d=1.5ms empty="#);
        synthetic_line(&mut out, &f, &plan, 1);
        assert_eq!(out, b"msg=plain d=2s");
        assert!(f.plan(&json(&["msg"])).is_none());
        assert!(f.plan(&logfmt(&["long"])).is_none());
    }

    #[test]
    fn logfmt_blocks_need_clean_pairs_in_every_line() {
        assert!(fields_of(&["a=1", "plain words only"]).is_none());
        assert!(fields_of(&["a=1", r#"b="unterminated"#]).is_none());
        assert!(fields_of(&["a=1", "b=x=y"]).is_none());
        assert!(fields_of(&["a=1", "=1"]).is_none());
        assert!(fields_of(&["a=1", "b=1 x"]).is_some());
    }

    #[test]
    fn a_column_of_unique_long_tokens_dies_and_short_ones_stay() {
        let lines: Vec<String> = (0..2000)
            .map(|i| format!("ts=2026-11-21T10:00:{i:06}.000Z d={}us", i % 700))
            .collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let f = fields_of(&refs).unwrap();
        assert_eq!(f.uncovered, vec!["ts".to_string()]);
        let d = f.columns.iter().find(|c| c.name == "d").unwrap();
        assert_eq!(d.tokens.len(), 700);
        assert_eq!(d.codes[1999], 1999 % 700 + 1);
    }

    /// `| logfmt` passes over `a=` (without `--keep-empty`) and takes a later `a`: which
    /// one wins depends on the query, so the column cannot say.
    #[test]
    fn an_empty_logfmt_value_before_another_of_its_name_leaves_no_column() {
        for first in ["a=", "a=\"\"", "a"] {
            let f = fields_of(&["a=1 b=2", &format!("{first} a=3 b=4")]).unwrap();
            assert_eq!(f.uncovered, vec!["a".to_string()], "{first}");
        }
        let f = fields_of(&["a= b=2", "a=1 a=3"]).unwrap();
        assert!(f.uncovered.is_empty());
    }

    #[test]
    fn a_name_and_its_extracted_form_are_not_planned_together() {
        let f = fields_of(&["a=1 a_extracted=2"]).unwrap();
        assert!(f.plan(&logfmt(&["a_extracted", "a"])).is_none());
        assert!(f.plan(&logfmt(&["a"])).is_some());
    }

    #[test]
    fn a_line_that_does_not_scan_leaves_the_block_without_columns() {
        assert!(fields_of(&[r#"{"a":1}"#, "plain text"]).is_none());
        assert!(fields_of(&[r#"{"a":1"#]).is_none());
        assert!(fields_of(&[]).is_none());
    }
}
