//! Cutting a log line into the tokens the miner compares.
//!
//! A token is a run of word bytes (letters and digits of any script, and `_ - . : / + @ $
//! ~ ^ % #`), or one punctuation byte (`= , ; " ' ( ) [ ] { } < > ! ? * & | \` and the
//! backquote) standing alone. Whitespace separates tokens and is kept, byte for byte, as
//! the *gap* after the token before it, so that a template printed from tokens reproduces
//! the line's spacing and can be used as a `|>` filter on the very lines it counts.
//! Leading whitespace is a token of its own.
//!
//! Tokens are offsets into the line: cutting a line allocates nothing once the token
//! buffer has grown. Only ASCII bytes split, so a token never ends inside a UTF-8
//! sequence.
//!
//! JSON lines (`{...}`) are mined by their message, as Loki does: the raw text of the
//! first top-level string field among [`MESSAGE_FIELDS`]; the template then stands for
//! `<_>message<_>`. A JSON line without one is mined whole.

/// Most tokens a line is cut into; the rest of a longer line is one last token that is
/// always a variable, so a long line is still counted and its template ends in `<_>`.
pub const MAX_TOKENS: usize = 100;
/// Bytes of a line (or JSON message) that are cut into tokens; a token that reaches past
/// them starts the rest, as past [`MAX_TOKENS`]. This bounds what a cluster keeps of its
/// first line (Loki's miner skips lines longer than 3,000 bytes instead, losing them from
/// the counts).
pub const MAX_CUT_BYTES: usize = 3000;

/// The top-level JSON fields that hold the message, in order of preference (Loki's
/// `pattern_ingester_tokenizable_json_fields_default`).
pub const MESSAGE_FIELDS: &[&str] = &["log", "message", "msg", "msg_", "_msg", "content"];

/// `line[start..end]` is the token, `line[end..gap_end]` the whitespace after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub start: u32,
    pub end: u32,
    pub gap_end: u32,
}

impl Token {
    pub fn text<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.start as usize..self.end as usize]
    }

    pub fn gap<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        &line[self.end as usize..self.gap_end as usize]
    }
}

/// What was cut: the tokens, and whether the last one is the uncut rest of a long line.
#[derive(Debug, Default)]
pub struct Tokens {
    pub list: Vec<Token>,
    pub truncated: bool,
    /// The tokens come from a JSON line's message field.
    pub embedded: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Space,
    Punct,
    Word,
}

const fn class_table() -> [Class; 256] {
    let mut t = [Class::Word; 256];
    let spaces = b" \t\r\n\x0b\x0c";
    let mut i = 0;
    while i < spaces.len() {
        t[spaces[i] as usize] = Class::Space;
        i += 1;
    }
    let punct = b"=,;\"'()[]{}<>!?*&|\\`";
    let mut i = 0;
    while i < punct.len() {
        t[punct[i] as usize] = Class::Punct;
        i += 1;
    }
    // Other control bytes split like punctuation: they are never part of a word.
    let mut c = 0;
    while c < 0x20 {
        if matches!(t[c], Class::Word) {
            t[c] = Class::Punct;
        }
        c += 1;
    }
    t[0x7f] = Class::Punct;
    t
}

static CLASS: [Class; 256] = class_table();

impl Tokens {
    /// Cuts `line` (its message, for JSON lines), replacing what was there.
    pub fn cut(&mut self, line: &[u8]) {
        self.list.clear();
        self.truncated = false;
        self.embedded = false;
        if let Some((from, to)) = json_message(line) {
            self.embedded = true;
            self.cut_range(line, from, to);
            if !self.list.is_empty() {
                return;
            }
            self.embedded = false;
        }
        self.cut_range(line, 0, line.len());
    }

    fn cut_range(&mut self, line: &[u8], from: usize, to: usize) {
        let mut i = from;
        // Leading whitespace: a token of its own, unless it is all there is (a blank line
        // has no tokens, hence no pattern).
        while i < to && CLASS[line[i] as usize] == Class::Space {
            i += 1;
        }
        if i == to {
            return;
        }
        if i > from {
            self.push(from, i, i);
        }
        let limit = from.saturating_add(MAX_CUT_BYTES);
        while i < to {
            if self.list.len() == MAX_TOKENS - 1 {
                self.push(i, to, to);
                self.truncated = true;
                return;
            }
            let start = i;
            if CLASS[line[i] as usize] == Class::Punct {
                i += 1;
            } else {
                while i < to && CLASS[line[i] as usize] == Class::Word {
                    i += 1;
                }
            }
            if i > limit {
                self.push(start, to, to);
                self.truncated = true;
                return;
            }
            let end = i;
            while i < to && CLASS[line[i] as usize] == Class::Space {
                i += 1;
            }
            self.push(start, end, i);
        }
    }

    fn push(&mut self, start: usize, end: usize, gap_end: usize) {
        // Lines are at most a few MiB (the server's line limit): offsets fit in u32.
        self.list.push(Token {
            start: start as u32,
            end: end as u32,
            gap_end: gap_end as u32,
        });
    }
}

/// Whether a token looks like a value rather than a word of the message: it holds a digit.
pub fn is_numeric(text: &[u8]) -> bool {
    text.iter().any(u8::is_ascii_digit)
}

/// The raw text (escapes kept) of the preferred message field of a JSON object line, as
/// `line[from..to]`; `None` when the line is not an object or has no such string field.
pub fn json_message(line: &[u8]) -> Option<(usize, usize)> {
    let first = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let last = line.iter().rposition(|b| !b.is_ascii_whitespace())?;
    if line[first] != b'{' || line[last] != b'}' {
        return None;
    }
    let mut best: Option<(usize, usize, usize)> = None; // (preference, from, to)
    let mut i = first + 1;
    loop {
        i = skip_ws(line, i);
        match line.get(i)? {
            b'}' => break,
            b'"' => {}
            _ => return best.map(|(_, f, t)| (f, t)),
        }
        let (key_from, key_to) = string_at(line, i)?;
        i = skip_ws(line, key_to + 1);
        if line.get(i) != Some(&b':') {
            return best.map(|(_, f, t)| (f, t));
        }
        i = skip_ws(line, i + 1);
        let value_start = i;
        let value_end = skip_value(line, i)?;
        let key = &line[key_from..key_to];
        if line[value_start] == b'"'
            && let Some(pref) = MESSAGE_FIELDS.iter().position(|f| f.as_bytes() == key)
            && best.is_none_or(|(p, _, _)| pref < p)
        {
            best = Some((pref, value_start + 1, value_end - 1));
        }
        i = skip_ws(line, value_end);
        match line.get(i)? {
            b',' => i += 1,
            b'}' => break,
            _ => return best.map(|(_, f, t)| (f, t)),
        }
    }
    best.map(|(_, f, t)| (f, t))
}

fn skip_ws(line: &[u8], mut i: usize) -> usize {
    while i < line.len() && line[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The contents of the string whose opening quote is at `i`: `(i + 1, closing quote)`.
fn string_at(line: &[u8], i: usize) -> Option<(usize, usize)> {
    let mut j = i + 1;
    while j < line.len() {
        match line[j] {
            b'\\' => j += 2,
            b'"' => return Some((i + 1, j)),
            _ => j += 1,
        }
    }
    None
}

/// The index just past the JSON value starting at `i`.
fn skip_value(line: &[u8], i: usize) -> Option<usize> {
    match *line.get(i)? {
        b'"' => string_at(line, i).map(|(_, q)| q + 1),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < line.len() {
                match line[j] {
                    b'"' => {
                        j = string_at(line, j)?.1;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < line.len() && !matches!(line[j], b',' | b'}' | b']') {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(line: &str) -> Vec<(String, String)> {
        let mut t = Tokens::default();
        t.cut(line.as_bytes());
        t.list
            .iter()
            .map(|k| {
                (
                    String::from_utf8_lossy(k.text(line.as_bytes())).into_owned(),
                    String::from_utf8_lossy(k.gap(line.as_bytes())).into_owned(),
                )
            })
            .collect()
    }

    fn texts(line: &str) -> Vec<String> {
        cut(line).into_iter().map(|(t, _)| t).collect()
    }

    #[test]
    fn words_punctuation_and_gaps() {
        assert_eq!(
            texts(r#"10.1.2.3 - - [20/Nov/2026:10:00:45 +0000] "GET /login HTTP/1.1" 200"#),
            [
                "10.1.2.3",
                "-",
                "-",
                "[",
                "20/Nov/2026:10:00:45",
                "+0000",
                "]",
                "\"",
                "GET",
                "/login",
                "HTTP/1.1",
                "\"",
                "200"
            ]
        );
        assert_eq!(
            cut("a=b  c\td"),
            [
                ("a".into(), "".into()),
                ("=".into(), "".into()),
                ("b".into(), "  ".into()),
                ("c".into(), "\t".into()),
                ("d".into(), "".into())
            ]
        );
        assert_eq!(texts("  x"), ["  ", "x"]);
        assert!(texts(" \t ").is_empty(), "a blank line has no tokens");
        assert_eq!(texts("ユーザー login"), ["ユーザー", "login"]);
        assert!(texts("").is_empty());
    }

    #[test]
    fn joined_tokens_give_back_the_line() {
        for line in [
            "  a  b=c, d(e) \"f\"\t",
            "ts=2026-11-20T10:00:32.725Z level=info msg=\"job failed\"",
            "\u{1b}[31mERROR\u{1b}[0m [main] x",
        ] {
            let mut t = Tokens::default();
            t.cut(line.as_bytes());
            let back: Vec<u8> = t
                .list
                .iter()
                .flat_map(|k| line.as_bytes()[k.start as usize..k.gap_end as usize].to_vec())
                .collect();
            assert_eq!(back, line.as_bytes());
        }
    }

    #[test]
    fn long_lines_end_in_one_rest_token() {
        let line = (0..300)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut t = Tokens::default();
        t.cut(line.as_bytes());
        assert_eq!(t.list.len(), MAX_TOKENS);
        assert!(t.truncated);
        let last = t.list[MAX_TOKENS - 1];
        assert_eq!(last.end as usize, line.len());
        assert!(last.text(line.as_bytes()).starts_with(b"w99 w100"));
    }

    #[test]
    fn only_the_start_of_a_huge_line_is_cut() {
        // One 200 KB word after a few short ones: the word starts the rest.
        let line = format!("GET /x {} done", "a".repeat(200_000));
        let mut t = Tokens::default();
        t.cut(line.as_bytes());
        assert!(t.truncated);
        assert_eq!(t.list.len(), 3);
        assert_eq!(t.list[2].start, 7);
        assert_eq!(t.list[2].end as usize, line.len());
        // Fewer than MAX_TOKENS words, but longer than the byte budget: cut there.
        let line = format!("{} ", "w".repeat(49)).repeat(100);
        t.cut(line.as_bytes());
        assert!(t.truncated);
        assert!(t.list.len() < MAX_TOKENS);
        let (rest, cut) = t.list.split_last().unwrap();
        assert!(cut.iter().all(|k| k.end as usize <= MAX_CUT_BYTES));
        assert_eq!(rest.end as usize, line.len());
    }

    #[test]
    fn json_lines_are_cut_by_their_message() {
        let line = r#"{"level":"info","msg":"user \"bob\" logged in","nested":{"msg":"no"}}"#;
        let (f, t) = json_message(line.as_bytes()).unwrap();
        assert_eq!(&line[f..t], r#"user \"bob\" logged in"#);
        // `log` is preferred over `msg`, wherever it is.
        let line = r#"{"msg": "second", "arr": [1, {"log": "nested"}], "log": "first"}"#;
        let (f, t) = json_message(line.as_bytes()).unwrap();
        assert_eq!(&line[f..t], "first");
        // Not a string, not an object, or no message field: none.
        assert_eq!(json_message(br#"{"msg": 5}"#), None);
        assert_eq!(json_message(br#"{"a": "b"}"#), None);
        assert_eq!(json_message(br#"["msg"]"#), None);
        assert_eq!(json_message(br#"{"msg": "x"#), None);
        let mut tk = Tokens::default();
        tk.cut(br#"{"msg": "", "a": 1}"#);
        assert!(!tk.embedded, "an empty message: the whole line is mined");
        tk.cut(br#"{"msg": "cache miss", "a": 1}"#);
        assert!(tk.embedded);
        assert_eq!(tk.list.len(), 2);
    }

    #[test]
    fn numbers_are_values() {
        assert!(is_numeric(b"10.1.2.3"));
        assert!(is_numeric(b"blk_-123"));
        assert!(!is_numeric(b"GET"));
    }
}
