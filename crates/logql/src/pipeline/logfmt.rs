//! The `logfmt` parser: `key=value key2="quoted value" flag`, with `--strict` (stop and
//! report at the first malformed pair), `--keep-empty` (keep `key=` as an empty label)
//! and extraction parameters (`| logfmt lvl="level"`).
//!
//! The decoder follows go-logfmt as Loki vendors it: bytes up to a space are garbage,
//! `"` or `=` inside an unquoted value is an error, escapes are Go-JSON escapes plus `\'`.

use super::hints::Hints;
use super::labels::{DUPLICATE_SUFFIX, ERROR_LABEL, LabelSet};
use super::text::{is_plain_name, push_sanitized, push_spaced};
use crate::ast::ExtractParam;

pub(crate) const LOGFMT_ERR: &str = "LogfmtParserErr";

/// A value found by the decoder.
#[derive(Debug, Clone, Copy)]
enum Val {
    Raw(usize, usize),
    /// Unquoted into the decoder's buffer.
    Buf,
}

#[derive(Debug, Default, Clone)]
struct Decoder {
    pos: usize,
    key: Option<(usize, usize)>,
    value: Option<Val>,
    /// Where the value of the pair just scanned starts (after its `=`), when it has one.
    eq: Option<usize>,
    buf: Vec<u8>,
    err: Option<String>,
}

impl Decoder {
    fn reset(&mut self) {
        self.pos = 0;
        self.err = None;
    }

    fn eol(&self, line: &[u8]) -> bool {
        self.pos >= line.len()
    }

    fn key<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        self.key.map_or(&[][..], |(s, e)| &line[s..e])
    }

    fn value<'a>(&'a self, line: &'a [u8]) -> &'a [u8] {
        match self.value {
            Some(Val::Raw(s, e)) => &line[s..e],
            Some(Val::Buf) => &self.buf,
            None => &[],
        }
    }

    fn syntax_error(&mut self, msg: &str) {
        self.err = Some(format!(
            "logfmt syntax error at pos {} : {msg}",
            self.pos + 1
        ));
    }

    fn unexpected(&mut self, c: u8) {
        self.err = Some(format!(
            "logfmt syntax error at pos {} : unexpected '{}'",
            self.pos + 1,
            c as char
        ));
    }

    fn invalid_key(line: &[u8], s: usize, e: usize, multibyte: bool) -> bool {
        multibyte
            && match std::str::from_utf8(&line[s..e]) {
                Ok(k) => k.contains('\u{FFFD}'),
                Err(_) => true,
            }
    }

    /// Advances to the next pair; `false` at the end of the line or on an error.
    fn scan(&mut self, line: &[u8]) -> bool {
        self.key = None;
        self.value = None;
        self.eq = None;
        // Garbage before the key.
        match line[self.pos..].iter().position(|&c| c > b' ') {
            Some(p) => self.pos += p,
            None => {
                self.pos = line.len();
                return false;
            }
        }
        // Key.
        let start = self.pos;
        let mut multibyte = false;
        let mut i = self.pos;
        loop {
            if i >= line.len() {
                self.pos = line.len();
                if self.pos > start {
                    if Self::invalid_key(line, start, self.pos, multibyte) {
                        self.syntax_error("invalid key");
                        return false;
                    }
                    self.key = Some((start, self.pos));
                }
                return true;
            }
            let c = line[i];
            if c == b'=' {
                self.pos = i;
                if self.pos > start {
                    if Self::invalid_key(line, start, self.pos, multibyte) {
                        self.key = Some((start, self.pos));
                        self.syntax_error("invalid key");
                        return self.skip_value(line);
                    }
                    self.key = Some((start, self.pos));
                }
                if self.key.is_none() {
                    self.unexpected(c);
                    return self.skip_value(line);
                }
                break;
            } else if c == b'"' {
                self.pos = i;
                self.unexpected(c);
                return self.skip_value(line);
            } else if c <= b' ' {
                self.pos = i;
                if self.pos > start {
                    if Self::invalid_key(line, start, self.pos, multibyte) {
                        self.syntax_error("invalid key");
                        return false;
                    }
                    self.key = Some((start, self.pos));
                }
                return true;
            } else if c >= 0x80 {
                multibyte = true;
            }
            i += 1;
        }
        // `=`, then the value.
        self.pos += 1;
        self.eq = Some(self.pos);
        if self.pos >= line.len() {
            return true;
        }
        match line[self.pos] {
            c if c <= b' ' => return true,
            b'"' => return self.quoted(line),
            _ => {}
        }
        let start = self.pos;
        let mut i = self.pos;
        while i < line.len() {
            let c = line[i];
            if c == b'=' || c == b'"' {
                self.pos = i;
                self.unexpected(c);
                return self.skip_value(line);
            }
            if c <= b' ' {
                self.pos = i;
                if self.pos > start {
                    self.value = Some(Val::Raw(start, self.pos));
                }
                return true;
            }
            i += 1;
        }
        self.pos = line.len();
        if self.pos > start {
            self.value = Some(Val::Raw(start, self.pos));
        }
        true
    }

    fn skip_value(&mut self, line: &[u8]) -> bool {
        match line[self.pos..].iter().position(|&c| c <= b' ') {
            Some(p) => self.pos += p,
            None => self.pos = line.len(),
        }
        false
    }

    fn quoted(&mut self, line: &[u8]) -> bool {
        let start = self.pos;
        let body = &line[start + 1..];
        let mut has_esc = false;
        let mut p = 0;
        while let Some(q) = body.get(p..).and_then(|b| memchr::memchr2(b'"', b'\\', b)) {
            let at = p + q;
            if body[at] == b'\\' {
                // The escaped byte is skipped, whatever it is.
                has_esc = true;
                p = at + 2;
            } else {
                self.pos = start + at + 2;
                if has_esc {
                    self.buf.clear();
                    if !unquote(&line[start + 1..self.pos - 1], &mut self.buf) {
                        self.syntax_error("invalid quoted value");
                        return false;
                    }
                    self.value = Some(Val::Buf);
                } else if self.pos - 1 > start + 1 {
                    self.value = Some(Val::Raw(start + 1, self.pos - 1));
                }
                return true;
            }
        }
        self.pos = line.len();
        self.syntax_error("unterminated quoted value");
        false
    }
}

/// Calls `f(key, token)` for each pair of `line`, `token` being the value as it stands in
/// the line (a quoted value with its quotes, empty for `key` and `key=`); stops when `f`
/// says `false`. `false` when it stopped, when the line has a syntax error (even one that
/// `| logfmt` without `--strict` passes over) or when no pair has a `=`: then the line is
/// not one whose pairs stand for it ([`crate::fields`]).
pub(crate) fn pairs_each(line: &[u8], mut f: impl FnMut(&[u8], &[u8]) -> bool) -> bool {
    let mut dec = Decoder::default();
    let mut any_eq = false;
    while !dec.eol(line) {
        let ok = dec.scan(line);
        if dec.err.is_some() {
            return false;
        }
        let key = dec.key(line);
        if !ok || key.is_empty() {
            continue;
        }
        let token = match dec.eq {
            Some(s) => {
                any_eq = true;
                &line[s..dec.pos]
            }
            None => &[][..],
        };
        if !f(key, token) {
            return false;
        }
    }
    any_eq
}

/// Unquotes the body of a quoted logfmt value (Go's JSON unquoting plus `\'`). Invalid
/// UTF-8 becomes U+FFFD, which the parser later turns into a space.
fn unquote(s: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    let push = |out: &mut Vec<u8>, c: char| {
        let mut b = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
    };
    while i < s.len() {
        let c = s[i];
        if c == b'\\' {
            i += 1;
            let Some(&e) = s.get(i) else { return false };
            match e {
                b'"' | b'\\' | b'/' | b'\'' => out.push(e),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let Some(r) = u4(&s[i - 1..]) else {
                        return false;
                    };
                    i += 5;
                    if (0xD800..0xE000).contains(&r) {
                        if let Some(r2) = s.get(i..).and_then(u4)
                            && (0xD800..0xDC00).contains(&r)
                            && (0xDC00..0xE000).contains(&r2)
                        {
                            let c = 0x10000 + ((r - 0xD800) << 10) + (r2 - 0xDC00);
                            push(out, char::from_u32(c).unwrap_or('\u{FFFD}'));
                            i += 6;
                        } else {
                            push(out, '\u{FFFD}');
                        }
                    } else {
                        push(out, char::from_u32(r).unwrap_or('\u{FFFD}'));
                    }
                    continue;
                }
                _ => return false,
            }
            i += 1;
        } else if c == b'"' {
            return false;
        } else if c < 0x80 {
            out.push(c);
            i += 1;
        } else {
            let end = (i + 4).min(s.len());
            let (ch, len) = match std::str::from_utf8(&s[i..end]) {
                Ok(t) => t
                    .chars()
                    .next()
                    .map_or(('\u{FFFD}', 1), |c| (c, c.len_utf8())),
                Err(e) if e.valid_up_to() > 0 => {
                    let t = std::str::from_utf8(&s[i..i + e.valid_up_to()]).unwrap_or("\u{FFFD}");
                    t.chars()
                        .next()
                        .map_or(('\u{FFFD}', 1), |c| (c, c.len_utf8()))
                }
                Err(_) => ('\u{FFFD}', 1),
            };
            push(out, ch);
            i += len;
        }
    }
    true
}

fn u4(s: &[u8]) -> Option<u32> {
    if s.len() < 6 || s[0] != b'\\' || s[1] != b'u' {
        return None;
    }
    let t = std::str::from_utf8(&s[2..6]).ok()?;
    u32::from_str_radix(t, 16).ok()
}

/// `| logfmt [--strict] [--keep-empty]`.
#[derive(Debug, Default)]
pub(crate) struct Logfmt {
    pub(crate) strict: bool,
    pub(crate) keep_empty: bool,
    dec: Decoder,
    name: String,
}

impl Logfmt {
    pub(crate) fn new(strict: bool, keep_empty: bool) -> Logfmt {
        Logfmt {
            strict,
            keep_empty,
            ..Logfmt::default()
        }
    }

    /// Parses `line` into `labels`; `false` when an early label filter drops the line.
    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) -> bool {
        if hints.no_labels(labels) {
            return true;
        }
        self.dec.reset();
        while !self.dec.eol(line) {
            if !self.dec.scan(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            let key = self.dec.key(line);
            if is_plain_name(key) && hints.skips_plain_key(key) {
                continue;
            }
            self.name.clear();
            push_sanitized(&mut self.name, key);
            if self.name.is_empty() {
                continue;
            }
            if labels.collides(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
            if !hints.should_extract(&self.name) || labels.extracted(&self.name) {
                continue;
            }
            let val = self.dec.value(line);
            if !self.keep_empty && val.is_empty() {
                continue;
            }
            let mut w = labels.value_writer();
            push_spaced(w.buf(), val);
            let v = w.finish();
            labels.set_parsed_value(&self.name, v);
            if !hints.should_continue(&self.name, labels) {
                return false;
            }
            if hints.all_extracted(labels) {
                break;
            }
        }
        if self.strict
            && let Some(e) = &self.dec.err
        {
            hints.set_parser_error(labels, LOGFMT_ERR, e);
            return hints.should_continue(ERROR_LABEL, labels);
        }
        true
    }
}

/// `| logfmt [--strict] name="key", ...`.
#[derive(Debug, Clone)]
pub(crate) struct LogfmtExpr {
    strict: bool,
    /// (label, key in the line)
    params: Vec<(String, String)>,
    dec: Decoder,
    name: String,
}

impl LogfmtExpr {
    pub(crate) fn new(params: &[ExtractParam], strict: bool) -> Result<LogfmtExpr, String> {
        let mut out = Vec::new();
        for p in params {
            if !protocol::labels::is_valid_label_name(&p.label) {
                return Err(format!("invalid extracted label name '{}'", p.label));
            }
            out.push((p.label.clone(), parse_key(&p.expr)?));
        }
        Ok(LogfmtExpr {
            strict,
            params: out,
            dec: Decoder::default(),
            name: String::new(),
        })
    }

    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) {
        if hints.no_labels(labels) {
            return;
        }
        for (id, _) in &self.params {
            if !labels.collides(id) {
                labels.set_parsed(id, "");
            }
        }
        self.dec.reset();
        while !self.dec.eol(line) {
            if !self.dec.scan(line) {
                if self.strict {
                    break;
                }
                continue;
            }
            self.name.clear();
            push_sanitized(&mut self.name, self.dec.key(line));
            if self.name.is_empty() {
                continue;
            }
            let is_id = self.params.iter().any(|(id, _)| *id == self.name);
            if !is_id && labels.extracted(&self.name) {
                continue;
            }
            // A key named by a parameter's expression is stored under the parameter's
            // label; a key equal to a label name is taken as is (Loki's mapping).
            if let Some((id, _)) = self.params.iter().find(|(_, k)| *k == self.name) {
                self.name.clone_from(id);
            }
            if !self.params.iter().any(|(id, _)| *id == self.name) {
                continue;
            }
            if labels.collides(&self.name) {
                self.name.push_str(DUPLICATE_SUFFIX);
                if labels.extracted(&self.name) || !hints.should_extract(&self.name) {
                    break;
                }
            }
            let val = self.dec.value(line);
            let mut w = labels.value_writer();
            // A value with invalid UTF-8 is dropped entirely here (unlike plain logfmt).
            if std::str::from_utf8(val).is_ok_and(|s| !s.contains('\u{FFFD}')) {
                push_spaced(w.buf(), val);
            }
            let v = w.finish();
            labels.set_parsed_value(&self.name, v);
            if hints.all_extracted(labels) {
                break;
            }
        }
        if self.strict
            && let Some(e) = &self.dec.err
        {
            hints.set_parser_error(labels, LOGFMT_ERR, e);
        }
    }
}

/// A logfmt extraction expression: a key, bare or quoted.
fn parse_key(expr: &str) -> Result<String, String> {
    let t = expr.trim_matches([' ', '\t', '\n']);
    let err = |c: char| format!("cannot parse expression [{expr}]: unexpected char {c}");
    if let Some(inner) = t.strip_prefix('"') {
        let end = inner.find(['"', ']']).unwrap_or(inner.len());
        return Ok(inner[..end].to_string());
    }
    let mut chars = t.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        Some(c) => return Err(err(c)),
        None => return Err(format!("cannot parse expression [{expr}]: syntax error")),
    }
    if let Some(c) = chars.find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
        return Err(err(c));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Labels;

    fn run(p: &mut Logfmt, line: &str) -> (Vec<(String, String)>, Option<String>) {
        let mut set = LabelSet::for_stream(&Labels::from_pairs([("app", "w")]));
        set.reset();
        p.process(line.as_bytes(), &mut set, &Hints::all());
        let err = set.err_details().map(str::to_string);
        set.finish(None);
        let labels = set
            .iter()
            .filter(|(n, _, _)| !n.starts_with("__") && *n != "app")
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect();
        (labels, err)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn parses_pairs() {
        let (l, e) = run(
            &mut Logfmt::new(false, false),
            r#"ts=2026-11-20T10:00:32.725Z level=info msg="job failed" q="a\"b" app=x note= flag size=96KB"#,
        );
        assert_eq!(
            l,
            pairs(&[
                ("app_extracted", "x"),
                ("level", "info"),
                ("msg", "job failed"),
                ("q", "a\"b"),
                ("size", "96KB"),
                ("ts", "2026-11-20T10:00:32.725Z"),
            ])
        );
        assert_eq!(e, None);
        let (l, _) = run(&mut Logfmt::new(false, true), "a=1 note= flag b=\"\"");
        assert_eq!(
            l,
            pairs(&[("a", "1"), ("b", ""), ("flag", ""), ("note", "")])
        );
    }

    #[test]
    fn quoted_values_with_escapes() {
        let (l, e) = run(
            &mut Logfmt::new(true, false),
            r#"a="x\\" b="\"q\" \\\"" c="\u00e9" d="""#,
        );
        assert_eq!(l, pairs(&[("a", "x\\"), ("b", "\"q\" \\\""), ("c", "é")]));
        assert_eq!(e, None);
        // An escaped closing quote, or a backslash at the very end, leaves it open.
        for line in [r#"a=1 b="x\""#, r#"a=1 b="x\"#] {
            let (_, e) = run(&mut Logfmt::new(true, false), line);
            let want = format!(
                "logfmt syntax error at pos {} : unterminated quoted value",
                line.len() + 1
            );
            assert_eq!(e.as_deref(), Some(want.as_str()), "{line}");
        }
    }

    #[test]
    fn hinted_names_only_including_extracted_forms() {
        let early = super::super::hints::EarlyFilters::default();
        let want = ["app_extracted".to_string(), "n".to_string()];
        // As for `sum by (app_extracted, n) (...)`.
        let hints = Hints::new(&[], &want, false, false, &early);
        let mut set = LabelSet::for_stream(&Labels::from_pairs([("app", "w")]));
        set.reset();
        let line = br#"z=0 app=x 9k=1 n="v w" m=2"#;
        assert!(Logfmt::new(false, false).process(line, &mut set, &hints));
        set.finish(None);
        let got: Vec<(String, String)> = set
            .iter()
            .map(|(n, v, _)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(
            got,
            pairs(&[("app", "w"), ("app_extracted", "x"), ("n", "v w")])
        );
    }

    #[test]
    fn strict_stops_at_errors() {
        let line = r#"a=1 b="x c=3"#;
        let (l, e) = run(&mut Logfmt::new(false, false), line);
        assert_eq!(l, pairs(&[("a", "1")]));
        assert_eq!(e, None);
        let (l, e) = run(&mut Logfmt::new(true, false), "a=1 =x b=2");
        assert_eq!(l, pairs(&[("a", "1")]));
        assert_eq!(
            e.as_deref(),
            Some("logfmt syntax error at pos 5 : unexpected '='")
        );
        let (_, e) = run(&mut Logfmt::new(true, false), line);
        assert_eq!(
            e.as_deref(),
            Some("logfmt syntax error at pos 13 : unterminated quoted value")
        );
        // Non-strict skips the bad pair and goes on.
        let (l, _) = run(&mut Logfmt::new(false, false), "a=1 x=\"y b=2");
        assert_eq!(l, pairs(&[("a", "1")]));
        let (l, _) = run(&mut Logfmt::new(false, false), "a=1 x=y\"z b=2");
        assert_eq!(l, pairs(&[("a", "1"), ("b", "2")]));
    }

    #[test]
    fn duplicate_keys_first_wins() {
        let (l, _) = run(&mut Logfmt::new(false, false), "a=1 a=2");
        assert_eq!(l, pairs(&[("a", "1")]));
    }

    #[test]
    fn extraction_params() {
        let params = [
            ExtractParam {
                label: "lvl".into(),
                expr: "level".into(),
            },
            ExtractParam {
                label: "d".into(),
                expr: "duration".into(),
            },
            ExtractParam {
                label: "missing".into(),
                expr: "missing".into(),
            },
        ];
        let mut p = LogfmtExpr::new(&params, false).unwrap();
        let mut set = LabelSet::for_stream(&Labels::new());
        set.reset();
        p.process(
            b"level=info duration=118ms other=x",
            &mut set,
            &Hints::all(),
        );
        set.finish(None);
        let got: Vec<_> = set.iter().map(|(n, v, _)| (n, v)).collect();
        assert_eq!(got, vec![("d", "118ms"), ("lvl", "info"), ("missing", "")]);
        assert!(
            LogfmtExpr::new(
                &[ExtractParam {
                    label: "a".into(),
                    expr: "a.b".into()
                }],
                false
            )
            .is_err()
        );
    }
}
