//! The lexer of Go's `text/template`: text between actions, and the tokens inside
//! `{{ }}`, with the `{{- ` / ` -}}` trim markers and `{{/* comments */}}`.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    /// Significant inside actions: separates arguments.
    Space,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
    /// A string constant, already unquoted; `raw` keeps the source for error contexts.
    Str {
        value: String,
        raw: String,
    },
    Char {
        value: char,
        raw: String,
    },
    Number(String),
    Bool(bool),
    Nil,
    Dot,
    /// `.Name` (without the dot).
    Field(String),
    /// `$` or `$name` (with the dollar).
    Variable(String),
    Identifier(String),
    Keyword(Keyword),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    If,
    Else,
    End,
    Range,
    With,
    Define,
    Template,
    Block,
    Break,
    Continue,
}

/// A token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
}

/// Splits `src` into tokens. Errors carry the line they were found on.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, (usize, String)> {
    let mut l = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        out: Vec::new(),
        paren: 0,
    };
    l.run()?;
    Ok(l.out)
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    out: Vec<Token>,
    paren: usize,
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

impl Lexer<'_> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> (usize, String) {
        (
            1 + self.src[..pos.min(self.src.len())].matches('\n').count(),
            msg.into(),
        )
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        self.out.push(Token { tok, pos });
    }

    fn run(&mut self) -> Result<(), (usize, String)> {
        loop {
            // Text up to the next `{{`.
            let start = self.pos;
            let Some(off) = self.src[self.pos..].find("{{") else {
                if start < self.b.len() {
                    self.push(Tok::Text(self.src[start..].to_string()), start);
                }
                self.push(Tok::Eof, self.b.len());
                return Ok(());
            };
            let delim = self.pos + off;
            let trim_left = self.b.get(delim + 2) == Some(&b'-')
                && self.b.get(delim + 3).is_some_and(|c| is_space(*c));
            let mut text_end = delim;
            if trim_left {
                while text_end > start && is_space(self.b[text_end - 1]) {
                    text_end -= 1;
                }
            }
            if text_end > start {
                self.push(Tok::Text(self.src[start..text_end].to_string()), start);
            }
            self.pos = delim + 2;
            if trim_left {
                self.pos += 2;
            }
            // A comment must follow the delimiter directly.
            if self.src[self.pos..].starts_with("/*") {
                let Some(end) = self.src[self.pos..].find("*/") else {
                    return Err(self.err(delim, "unclosed comment"));
                };
                self.pos += end + 2;
                let (right, trim_right) = self.right_delim_at(self.pos);
                if !right {
                    return Err(self.err(delim, "comment ends before closing delimiter"));
                }
                self.pos += if trim_right { 4 } else { 2 };
                if trim_right {
                    self.skip_spaces_after();
                }
                continue;
            }
            self.push(Tok::LeftDelim, delim);
            self.paren = 0;
            self.inside()?;
        }
    }

    /// Whether ` -}}` or `}}` starts at `at` (returns (found, trim)).
    fn right_delim_at(&self, at: usize) -> (bool, bool) {
        let rest = &self.src[at..];
        if rest.starts_with(" -}}")
            || rest.starts_with("\t-}}")
            || rest.starts_with("\r-}}")
            || rest.starts_with("\n-}}")
        {
            return (true, true);
        }
        (rest.starts_with("}}"), false)
    }

    fn skip_spaces_after(&mut self) {
        while self.pos < self.b.len() && is_space(self.b[self.pos]) {
            self.pos += 1;
        }
    }

    fn inside(&mut self) -> Result<(), (usize, String)> {
        loop {
            let (right, trim) = self.right_delim_at(self.pos);
            if right && self.paren == 0 {
                let p = self.pos;
                self.pos += if trim { 4 } else { 2 };
                self.push(Tok::RightDelim, p);
                if trim {
                    self.skip_spaces_after();
                }
                return Ok(());
            }
            let Some(&c) = self.b.get(self.pos) else {
                return Err(self.err(self.pos, "unclosed action"));
            };
            let start = self.pos;
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => {
                    while self.pos < self.b.len() && is_space(self.b[self.pos]) {
                        if self.right_delim_at(self.pos).0 && self.right_delim_at(self.pos).1 {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.right_delim_at(self.pos).0 && self.paren == 0 {
                        continue;
                    }
                    self.push(Tok::Space, start);
                }
                b'=' => {
                    self.pos += 1;
                    self.push(Tok::Assign, start);
                }
                b':' => {
                    if self.b.get(self.pos + 1) != Some(&b'=') {
                        return Err(self.err(start, "expected :="));
                    }
                    self.pos += 2;
                    self.push(Tok::Declare, start);
                }
                b'|' => {
                    self.pos += 1;
                    self.push(Tok::Pipe, start);
                }
                b',' => {
                    self.pos += 1;
                    self.push(Tok::Comma, start);
                }
                b'(' => {
                    self.pos += 1;
                    self.paren += 1;
                    self.push(Tok::LeftParen, start);
                }
                b')' => {
                    if self.paren == 0 {
                        return Err(self.err(start, "unexpected right paren"));
                    }
                    self.pos += 1;
                    self.paren -= 1;
                    self.push(Tok::RightParen, start);
                }
                b'"' => self.quote(start)?,
                b'`' => {
                    let Some(end) = self.src[self.pos + 1..].find('`') else {
                        return Err(self.err(start, "unterminated raw quoted string"));
                    };
                    let raw = &self.src[start..self.pos + 2 + end];
                    self.pos += end + 2;
                    self.push(
                        Tok::Str {
                            value: raw[1..raw.len() - 1].replace('\r', ""),
                            raw: raw.to_string(),
                        },
                        start,
                    );
                }
                b'\'' => self.char_const(start)?,
                b'$' => {
                    self.pos += 1;
                    let n = self.word_len(self.pos);
                    self.pos += n;
                    self.push(Tok::Variable(self.src[start..self.pos].to_string()), start);
                }
                b'.' => {
                    if self.b.get(self.pos + 1).is_some_and(u8::is_ascii_digit) {
                        self.number(start)?;
                        continue;
                    }
                    self.pos += 1;
                    let n = self.word_len(self.pos);
                    if n == 0 {
                        self.push(Tok::Dot, start);
                    } else {
                        self.pos += n;
                        self.push(Tok::Field(self.src[start + 1..self.pos].to_string()), start);
                    }
                }
                b'+' | b'-' | b'0'..=b'9' => self.number(start)?,
                _ => {
                    let ch = self.src[self.pos..].chars().next().unwrap_or('\0');
                    if !is_alnum(ch) {
                        return Err(self.err(start, format!("unexpected {ch:?} in command")));
                    }
                    let n = self.word_len(self.pos);
                    let word = &self.src[self.pos..self.pos + n];
                    self.pos += n;
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        "if" => Tok::Keyword(Keyword::If),
                        "else" => Tok::Keyword(Keyword::Else),
                        "end" => Tok::Keyword(Keyword::End),
                        "range" => Tok::Keyword(Keyword::Range),
                        "with" => Tok::Keyword(Keyword::With),
                        "define" => Tok::Keyword(Keyword::Define),
                        "template" => Tok::Keyword(Keyword::Template),
                        "block" => Tok::Keyword(Keyword::Block),
                        "break" => Tok::Keyword(Keyword::Break),
                        "continue" => Tok::Keyword(Keyword::Continue),
                        _ => Tok::Identifier(word.to_string()),
                    };
                    self.push(tok, start);
                }
            }
        }
    }

    /// Length of the identifier characters from `at`.
    fn word_len(&self, at: usize) -> usize {
        self.src[at..]
            .char_indices()
            .find(|(_, c)| !is_alnum(*c))
            .map_or(self.src.len() - at, |(i, _)| i)
    }

    fn quote(&mut self, start: usize) -> Result<(), (usize, String)> {
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => return Err(self.err(start, "unterminated quoted string")),
                Some(b'\\') => i += 2,
                Some(b'"') => break,
                _ => i += 1,
            }
        }
        let raw = &self.src[start..=i];
        self.pos = i + 1;
        let value = protocol::quote::unquote(raw)
            .map_err(|_| self.err(start, format!("invalid syntax in string {raw}")))?;
        self.push(
            Tok::Str {
                value,
                raw: raw.to_string(),
            },
            start,
        );
        Ok(())
    }

    fn char_const(&mut self, start: usize) -> Result<(), (usize, String)> {
        let mut i = self.pos + 1;
        loop {
            match self.b.get(i) {
                None | Some(b'\n') => {
                    return Err(self.err(start, "unterminated character constant"));
                }
                Some(b'\\') => i += 2,
                Some(b'\'') => break,
                _ => i += 1,
            }
        }
        let raw = &self.src[start..=i];
        self.pos = i + 1;
        let v = protocol::quote::unquote(raw)
            .map_err(|_| self.err(start, format!("malformed character constant: {raw}")))?;
        let value = v.chars().next().unwrap_or('\0');
        self.push(
            Tok::Char {
                value,
                raw: raw.to_string(),
            },
            start,
        );
        Ok(())
    }

    /// A Go number: sign, hex/octal/binary prefixes, underscores, fraction, exponent.
    fn number(&mut self, start: usize) -> Result<(), (usize, String)> {
        let mut i = self.pos;
        if matches!(self.b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let mut digits = "0123456789_";
        if self.b.get(i) == Some(&b'0') {
            match self.b.get(i + 1) {
                Some(b'x' | b'X') => {
                    i += 2;
                    digits = "0123456789abcdefABCDEF_";
                }
                Some(b'o' | b'O') => {
                    i += 2;
                    digits = "01234567_";
                }
                Some(b'b' | b'B') => {
                    i += 2;
                    digits = "01_";
                }
                _ => {}
            }
        }
        let run = |i: &mut usize, set: &str| {
            while *i < self.b.len() && set.as_bytes().contains(&self.b[*i]) {
                *i += 1;
            }
        };
        run(&mut i, digits);
        if self.b.get(i) == Some(&b'.') {
            i += 1;
            run(&mut i, digits);
        }
        let exp = if digits.len() == 11 { "eE" } else { "pP" };
        if self.b.get(i).is_some_and(|c| exp.as_bytes().contains(c)) {
            i += 1;
            if matches!(self.b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            run(&mut i, "0123456789_");
        }
        if self.b.get(i) == Some(&b'i') {
            i += 1;
        }
        if i < self.b.len() && is_alnum(self.src[i..].chars().next().unwrap_or(' ')) {
            let end = i + self.word_len(i);
            return Err(self.err(
                start,
                format!("bad number syntax: {:?}", &self.src[start..end]),
            ));
        }
        self.pos = i;
        self.push(Tok::Number(self.src[start..i].to_string()), start);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn trims_and_comments() {
        assert_eq!(
            toks("a  {{- .x -}}  b{{/* c */}}d"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Field("x".into()),
                Tok::RightDelim,
                Tok::Text("b".into()),
                Tok::Text("d".into()),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("{{-3}}"),
            vec![
                Tok::LeftDelim,
                Tok::Number("-3".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn action_tokens() {
        assert_eq!(
            toks(r#"{{ $x := printf "%d" 1.5 | len }}"#),
            vec![
                Tok::LeftDelim,
                Tok::Space,
                Tok::Variable("$x".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Identifier("printf".into()),
                Tok::Space,
                Tok::Str {
                    value: "%d".into(),
                    raw: "\"%d\"".into()
                },
                Tok::Space,
                Tok::Number("1.5".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Identifier("len".into()),
                Tok::RightDelim,
                Tok::Eof
            ]
        );
        assert!(lex("{{ .x ").is_err());
        assert!(lex("{{ \"abc }}").is_err());
    }
}
