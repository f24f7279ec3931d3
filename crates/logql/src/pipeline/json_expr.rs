//! `| json name="a.b[0]", other="x[\"key with spaces\"]"`: labels from JSON paths.

use super::hints::Hints;
use super::json::{
    JSON_ERR, Kind, ScanError, get_value, next_token, object_each, push_json_string,
};
use super::labels::{DUPLICATE_SUFFIX, LabelSet};
use super::text::push_spaced;
use crate::ast::ExtractParam;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses Loki's JSON expression syntax: `a.b`, `a[0]`, `a["b c"]`, `[0].a`.
fn parse_path(expr: &str) -> Result<Vec<Step>, String> {
    let err = |m: String| format!("cannot parse expression [{expr}]: {m}");
    let b: Vec<char> = expr.chars().collect();
    let mut i = 0;
    let mut steps = Vec::new();
    // What may come next: a field only at the start or after a dot.
    let mut want_field = true;
    while i < b.len() {
        let c = b[i];
        if c == ' ' || c == '\t' || c == '\n' {
            i += 1;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            if !want_field {
                return Err(err("syntax error: unexpected FIELD".into()));
            }
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            steps.push(Step::Key(b[start..i].iter().collect()));
            want_field = false;
            continue;
        }
        match c {
            '.' => {
                if want_field {
                    return Err(err("syntax error: unexpected DOT".into()));
                }
                want_field = true;
                i += 1;
            }
            '[' => {
                if want_field && !steps.is_empty() {
                    return Err(err("syntax error: unexpected LSB".into()));
                }
                i += 1;
                while i < b.len() && b[i] == ' ' {
                    i += 1;
                }
                match b.get(i) {
                    Some('"') => {
                        i += 1;
                        let start = i;
                        while i < b.len() && b[i] != '"' && b[i] != ']' {
                            i += 1;
                        }
                        steps.push(Step::Key(b[start..i].iter().collect()));
                        if b.get(i) == Some(&'"') {
                            i += 1;
                        }
                    }
                    Some(d) if d.is_ascii_digit() => {
                        let start = i;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                        if b.get(i) == Some(&'.') {
                            return Err(err("cannot use float as array index".into()));
                        }
                        let s: String = b[start..i].iter().collect();
                        steps.push(Step::Index(
                            s.parse().map_err(|_| err(format!("invalid index {s}")))?,
                        ));
                    }
                    _ => return Err(err("syntax error: unexpected character".into())),
                }
                while i < b.len() && b[i] == ' ' {
                    i += 1;
                }
                if b.get(i) != Some(&']') {
                    return Err(err("syntax error: expecting RSB".into()));
                }
                i += 1;
                want_field = false;
            }
            _ => return Err(err(format!("unexpected char {c}"))),
        }
    }
    if steps.is_empty() || want_field {
        return Err(err("syntax error: unexpected $end".into()));
    }
    Ok(steps)
}

/// The `json` parser with parameters.
#[derive(Debug, Clone)]
pub(crate) struct JsonExpr {
    ids: Vec<String>,
    paths: Vec<Vec<Step>>,
    key_buf: Vec<u8>,
    scratch: Vec<u8>,
    name: String,
}

impl JsonExpr {
    pub(crate) fn new(params: &[ExtractParam]) -> Result<JsonExpr, String> {
        let mut ids = Vec::new();
        let mut paths = Vec::new();
        for p in params {
            if !protocol::labels::is_valid_label_name(&p.label) {
                return Err(format!("invalid extracted label name '{}'", p.label));
            }
            paths.push(parse_path(&p.expr)?);
            ids.push(p.label.clone());
        }
        Ok(JsonExpr {
            ids,
            paths,
            key_buf: Vec::new(),
            scratch: Vec::new(),
            name: String::new(),
        })
    }

    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) {
        if line.is_empty() {
            return;
        }
        if !matches!(line[0], b'"' | b'{' | b'[') {
            hints.set_parser_error(labels, JSON_ERR, "");
            return;
        }
        let mut missing = false;
        for i in 0..self.ids.len() {
            match find(line, &self.paths[i], &mut self.key_buf) {
                Found::Missing => missing = true,
                Found::Error(e) => {
                    hints.set_parser_error(labels, JSON_ERR, e.message());
                    missing = true;
                }
                Found::Value(v, kind) => {
                    self.name.clear();
                    self.name.push_str(&self.ids[i]);
                    if labels.collides(&self.name) {
                        self.name.push_str(DUPLICATE_SUFFIX);
                    }
                    let mut w = labels.value_writer();
                    match kind {
                        Kind::Null => {}
                        Kind::Object => push_spaced(w.buf(), v),
                        _ => push_json_string(w.buf(), v, &mut self.scratch),
                    }
                    let v = w.finish();
                    labels.set_parsed_value(&self.name, v);
                }
            }
        }
        // Every parameter gets a label, empty when its path was not found.
        if missing {
            for id in &self.ids {
                if labels.lookup(id).is_none() {
                    labels.set_parsed(id, "");
                }
            }
        }
    }
}

enum Found<'a> {
    Missing,
    Error(ScanError),
    Value(&'a [u8], Kind),
}

/// Follows `path` from the value at the start of `data`; the first member with a key wins.
fn find<'a>(data: &'a [u8], path: &[Step], key_buf: &mut Vec<u8>) -> Found<'a> {
    let mut cur = data;
    for (depth, step) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let Some(off) = next_token(cur) else {
            return Found::Missing;
        };
        let next: Result<Option<&[u8]>, ScanError> = match step {
            Step::Key(k) => {
                if cur[off] != b'{' {
                    return Found::Missing;
                }
                member(cur, k.as_bytes(), key_buf)
            }
            Step::Index(n) => {
                if cur[off] != b'[' {
                    return Found::Missing;
                }
                element(&cur[off..], *n)
            }
        };
        match next {
            Err(e) if last => return Found::Error(e),
            Err(_) | Ok(None) => return Found::Missing,
            Ok(Some(v)) => cur = v,
        }
    }
    match get_value(cur) {
        Ok((v, kind, _)) => Found::Value(v, kind),
        Err(e) => Found::Error(e),
    }
}

/// The raw text (from its first byte) of the first member named `key`.
fn member<'a>(
    obj: &'a [u8],
    key: &[u8],
    key_buf: &mut Vec<u8>,
) -> Result<Option<&'a [u8]>, ScanError> {
    enum Stop {
        Found(usize),
        Scan(ScanError),
    }
    impl From<ScanError> for Stop {
        fn from(e: ScanError) -> Stop {
            Stop::Scan(e)
        }
    }
    let base = obj.as_ptr() as usize;
    match object_each(obj, key_buf, |k, v, kind| {
        if k == key {
            // Strings come without quotes: step back to the opening quote.
            let start = v.as_ptr() as usize - base - usize::from(kind == Kind::String);
            return Err(Stop::Found(start));
        }
        Ok(())
    }) {
        Err(Stop::Found(start)) => Ok(Some(&obj[start..])),
        Err(Stop::Scan(e)) => Err(e),
        Ok(()) => Ok(None),
    }
}

/// The raw text of array element `n` of the array at the start of `arr`.
fn element(arr: &[u8], n: usize) -> Result<Option<&[u8]>, ScanError> {
    let mut off = 1;
    off += next_token(&arr[off..]).ok_or(ScanError::MalformedJson)?;
    if arr[off] == b']' {
        return Ok(None);
    }
    let mut i = 0;
    loop {
        let start = off + next_token(&arr[off..]).ok_or(ScanError::MalformedJson)?;
        let (_, _, end) = get_value(&arr[off..])?;
        if i == n {
            return Ok(Some(&arr[start..]));
        }
        off += end;
        off += next_token(&arr[off..]).ok_or(ScanError::MalformedArray)?;
        match arr[off] {
            b']' => return Ok(None),
            b',' => off += 1,
            _ => return Err(ScanError::MalformedArray),
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Labels;

    fn run(params: &[(&str, &str)], line: &str) -> Vec<(String, String)> {
        let params: Vec<ExtractParam> = params
            .iter()
            .map(|(l, e)| ExtractParam {
                label: l.to_string(),
                expr: e.to_string(),
            })
            .collect();
        let mut p = JsonExpr::new(&params).unwrap();
        let mut set = LabelSet::for_stream(&Labels::from_pairs([("app", "api")]));
        set.reset();
        p.process(line.as_bytes(), &mut set, &Hints::all());
        set.finish(None);
        set.iter()
            .filter(|(n, _, _)| *n != "app")
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn paths() {
        assert_eq!(
            parse_path(r#"a.b[0]["c d"]"#).unwrap(),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(0),
                Step::Key("c d".into())
            ]
        );
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a[1.5]").is_err());
        assert!(parse_path("").is_err());
        assert!(parse_path("a.").is_err());
    }

    #[test]
    fn extracts() {
        let line = r#"{"status": 404, "path": "/x", "user": {"id": 338, "roles": ["reader", "admin"]}, "o": {"k": 1}, "n": null, "app": "z"}"#;
        let got = run(
            &[
                ("status", "status"),
                ("p", "path"),
                ("uid", "user.id"),
                ("role1", "user.roles[1]"),
                ("roles", "user.roles"),
                ("o", "o"),
                ("n", "n"),
                ("missing", "nope.x"),
                ("app", "app"),
            ],
            line,
        );
        let want: Vec<(String, String)> = [
            ("app_extracted", "z"),
            ("missing", ""),
            ("n", ""),
            ("o", r#"{"k": 1}"#),
            ("p", "/x"),
            ("role1", "admin"),
            ("roles", r#"["reader", "admin"]"#),
            ("status", "404"),
            ("uid", "338"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn not_json() {
        let got = run(&[("a", "a")], "plain text");
        assert_eq!(
            got,
            vec![("__error__".to_string(), "JSONParserErr".to_string())]
        );
    }
}
