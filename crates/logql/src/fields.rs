//! Field columns: the top-level members of JSON lines, kept beside the lines when a block
//! is written, so that a `| json` metric query whose labels come from a few members reads
//! those members instead of decompressing and parsing every line.
//!
//! The writer ([`FieldsWriter`]) keeps, for each member name of a block, the raw JSON
//! token of each line's first member with that name (`| json` keeps the first too), but
//! only when every line of the block scans as `| json` scans it: then no line of the block
//! can give a parser error to a query that extracts only named top-level members. Names
//! with too many distinct values in a block or long values get no column and are listed
//! as *uncovered*; names whose value is an object in some line are listed as *nested*.
//!
//! The reader ([`Fields`], in a [`crate::Batch`]) hands the engine, for each distinct
//! combination of the tokens a query needs, a one-object line of just those members
//! ([`synthetic_line`]), which the real pipeline runs on: `| json` with hints extracts only
//! the named members, so the answer is the one the whole line gives.

use std::collections::HashMap;
use std::sync::Arc;

use crate::pipeline::json::{Kind, ScanError, object_each};
use crate::pipeline::text::push_sanitized;

/// Member names a block may have and still get columns.
const MAX_NAMES: usize = 64;
/// Distinct tokens of a name in a block, at most, for it to get a column (codes are bytes).
const MAX_DISTINCT: usize = 255;
/// Longest token a column keeps.
const MAX_TOKEN: usize = 64;

/// The field columns of a batch: every entry has a code in every column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    pub columns: Vec<FieldColumn>,
    /// Label names some line sets that have no column: a query needing one must parse.
    pub uncovered: Vec<String>,
    /// Label names whose value is an object in some line (a query needing a name that
    /// starts with one must parse: `| json` would look inside).
    pub nested: Vec<String>,
}

/// One member name's tokens: `codes[i]` is 0 when entry `i` has no such member, else
/// `k + 1` for `tokens[k]` (a raw JSON string with its quotes, number or boolean).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldColumn {
    pub name: String,
    pub tokens: Arc<Vec<Vec<u8>>>,
    pub codes: Vec<u8>,
}

impl Fields {
    /// The columns a query needing labels `required` reads, by index, or `None` when a
    /// required name is uncovered or may come from a nested object (the lines must be
    /// parsed). A required name with neither a column nor a listing is in no line.
    pub fn plan(&self, required: &[String]) -> Option<Vec<usize>> {
        let mut cols = Vec::new();
        for r in required {
            if self.uncovered.iter().any(|u| u == r)
                || self.nested.iter().any(|n| r.starts_with(n.as_str()))
            {
                return None;
            }
            if let Some(i) = self.columns.iter().position(|c| &c.name == r) {
                cols.push(i);
            }
        }
        Some(cols)
    }
}

/// Writes into `out` (cleared first) the JSON object of entry `i`'s members in `cols`.
pub fn synthetic_line(out: &mut Vec<u8>, fields: &Fields, cols: &[usize], i: usize) {
    out.clear();
    out.push(b'{');
    for &c in cols {
        let col = &fields.columns[c];
        let code = col.codes[i];
        if code == 0 {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(col.name.as_bytes());
        out.extend_from_slice(b"\":");
        out.extend_from_slice(&col.tokens[code as usize - 1]);
    }
    out.push(b'}');
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
    dict: HashMap<Vec<u8>, u8>,
    tokens: Vec<Vec<u8>>,
    codes: Vec<u8>,
    /// Too many distinct or too long tokens: no column, the name is uncovered.
    dead: bool,
    /// The last entry that set it (first member wins).
    last: usize,
}

/// Builds the field columns of one block's lines; reused across blocks.
#[derive(Default)]
pub struct FieldsWriter {
    key_buf: Vec<u8>,
    name: String,
    /// Raw key → column (`None`: the key gives no label name).
    keys: Vec<(Vec<u8>, Option<usize>)>,
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

    /// Starts a block.
    pub fn reset(&mut self) {
        self.keys.clear();
        self.columns.clear();
        self.nested.clear();
        self.n = 0;
        self.ok = true;
    }

    /// Adds the next line; `false` once the block cannot have field columns (a line that
    /// does not scan as a JSON object, too many names), after which adding is pointless.
    pub fn add(&mut self, line: &[u8]) -> bool {
        if !self.ok {
            return false;
        }
        let entry = self.n + 1;
        self.n = entry;
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
            let Some(c) = self.column_of(key)? else {
                return Ok(());
            };
            let col = &mut self.columns[c];
            if col.last == entry {
                return Ok(());
            }
            col.last = entry;
            if col.dead {
                return Ok(());
            }
            // The token as it stands in the line: strings with their quotes.
            let token: &[u8] = if kind == Kind::String {
                // `value` is the string's body inside `line`: widen by one on each side.
                let start = value.as_ptr() as usize - line.as_ptr() as usize - 1;
                &line[start..start + value.len() + 2]
            } else {
                value
            };
            if token.len() > MAX_TOKEN {
                col.kill();
                return Ok(());
            }
            let code = match col.dict.get(token) {
                Some(&k) => k,
                None => {
                    if col.tokens.len() == MAX_DISTINCT {
                        col.kill();
                        return Ok(());
                    }
                    col.tokens.push(token.to_vec());
                    let k = col.tokens.len() as u8;
                    col.dict.insert(token.to_vec(), k);
                    k
                }
            };
            col.codes.resize(entry - 1, 0);
            col.codes.push(code);
            Ok(())
        });
        self.key_buf = key_buf;
        if r.is_err() {
            self.ok = false;
        }
        self.ok
    }

    /// The column of raw key `key`, created on first sight; `Err` past [`MAX_NAMES`].
    fn column_of(&mut self, key: &[u8]) -> Result<Option<usize>, Stop> {
        if let Some((_, c)) = self.keys.iter().find(|(k, _)| k == key) {
            return Ok(*c);
        }
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
        self.dict = HashMap::new();
        self.tokens = Vec::new();
        self.codes = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of(lines: &[&str]) -> Option<Fields> {
        let mut w = FieldsWriter::new();
        w.reset();
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
        assert_eq!(
            *col("level").tokens,
            vec![b"\"info\"".to_vec(), b"\"error\"".to_vec()]
        );
        assert_eq!(col("level").codes, vec![1, 2]);
        assert_eq!(col("status").codes, vec![1, 2]);
        assert_eq!(col("ok").codes, vec![1, 0]);
        assert_eq!(*col("a_b").tokens, vec![b"1".to_vec()]);
        assert_eq!(f.uncovered, vec!["msg".to_string()]);
        assert_eq!(f.nested, vec!["http".to_string()]);
        let mut out = Vec::new();
        let plan = f.plan(&["status".into(), "level".into()]).unwrap();
        synthetic_line(&mut out, &f, &plan, 1);
        assert_eq!(out, br#"{"status":500,"level":"error"}"#);
        assert!(f.plan(&["msg".into()]).is_none());
        assert!(f.plan(&["http_x".into()]).is_none());
        assert_eq!(f.plan(&["absent".into()]), Some(vec![]));
    }

    #[test]
    fn a_line_that_does_not_scan_leaves_the_block_without_columns() {
        assert!(fields_of(&[r#"{"a":1}"#, "plain text"]).is_none());
        assert!(fields_of(&[r#"{"a":1"#]).is_none());
        assert!(fields_of(&[]).is_none());
    }
}
