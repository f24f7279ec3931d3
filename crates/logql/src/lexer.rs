//! The LogQL lexer: query text to tokens with their line and column.
//!
//! It follows Loki's lexer where users can tell the difference: keywords are
//! case-insensitive; function names (`rate`, `sum`, `bytes`, `ip`, ...) are keywords only
//! when a `(` follows (or `by`/`without` and then `(`), so `{rate="x"}` and
//! `| unwrap bytes` name labels; a number directly followed by a unit is a duration (`5m`)
//! or a byte size (`10KiB`); `[...]` is read whole as a range; `#`, `//` and `/* */` are
//! comments. Columns count characters from 1, as Loki's error messages do.

use crate::ast::{RangeOp, VectorOp};

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Comma,
    Dot,
    LBrace,
    RBrace,
    LParen,
    RParen,
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
    /// `!>`
    Npa,
    /// `|=`
    PipeExact,
    /// `|~`
    PipeMatch,
    /// `|>`
    PipePattern,
    /// `|`
    Pipe,
    /// `==`
    CmpEq,
    Gt,
    Gte,
    Lt,
    Lte,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    By,
    Without,
    Bool,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Or,
    And,
    Unless,
    Offset,
    Unwrap,
    Json,
    Logfmt,
    Regexp,
    Unpack,
    Pattern,
    LabelFmt,
    LineFmt,
    Ip,
    Decolorize,
    Drop,
    Keep,
    LabelReplace,
    Vector,
    RangeOp(RangeOp),
    VectorOp(VectorOp),
    BytesConv,
    DurationConv,
    DurationSecondsConv,
    Ident(String),
    /// A string literal, unquoted.
    Str(String),
    /// A number as written.
    Number(String),
    /// Nanoseconds.
    Duration(i64),
    Bytes(u64),
    /// `[5m]`: nanoseconds.
    Range(i64),
    /// `--strict`, `--keep-empty`
    Flag(String),
    /// Text the lexer could not read; the parser reports it when it gets there.
    Error(String),
    Eof,
}

impl Tok {
    /// The name Loki's parser gives the token in `unexpected X` messages.
    pub(crate) fn describe(&self) -> String {
        let s = match self {
            Tok::Comma => ",",
            Tok::Dot => ".",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Eq => "=",
            Tok::Neq => "!=",
            Tok::Re => "=~",
            Tok::Nre => "!~",
            Tok::Npa => "!>",
            Tok::PipeExact => "|=",
            Tok::PipeMatch => "|~",
            Tok::PipePattern => "|>",
            Tok::Pipe => "|",
            Tok::CmpEq => "==",
            Tok::Gt => ">",
            Tok::Gte => ">=",
            Tok::Lt => "<",
            Tok::Lte => "<=",
            Tok::Add => "+",
            Tok::Sub => "-",
            Tok::Mul => "*",
            Tok::Div => "/",
            Tok::Mod => "%",
            Tok::Pow => "^",
            Tok::By => "by",
            Tok::Without => "without",
            Tok::Bool => "bool",
            Tok::On => "on",
            Tok::Ignoring => "ignoring",
            Tok::GroupLeft => "group_left",
            Tok::GroupRight => "group_right",
            Tok::Or => "or",
            Tok::And => "and",
            Tok::Unless => "unless",
            Tok::Offset => "offset",
            Tok::Unwrap => "unwrap",
            Tok::Json => "json",
            Tok::Logfmt => "logfmt",
            Tok::Regexp => "regexp",
            Tok::Unpack => "unpack",
            Tok::Pattern => "pattern",
            Tok::LabelFmt => "label_format",
            Tok::LineFmt => "line_format",
            Tok::Ip => "ip",
            Tok::Decolorize => "decolorize",
            Tok::Drop => "drop",
            Tok::Keep => "keep",
            Tok::LabelReplace => "label_replace",
            Tok::Vector => "VECTOR",
            Tok::RangeOp(op) => return range_op_name(*op).to_ascii_uppercase(),
            Tok::VectorOp(op) => return vector_op_name(*op).to_ascii_uppercase(),
            Tok::BytesConv => "BYTES_CONV",
            Tok::DurationConv => "DURATION_CONV",
            Tok::DurationSecondsConv => "DURATION_SECONDS_CONV",
            Tok::Ident(_) => "IDENTIFIER",
            Tok::Str(_) => "STRING",
            Tok::Number(_) => "NUMBER",
            Tok::Duration(_) => "DURATION",
            Tok::Bytes(_) => "BYTES",
            Tok::Range(_) => "RANGE",
            Tok::Flag(_) => "FUNCTION_FLAG",
            Tok::Error(m) => m,
            Tok::Eof => "$end",
        };
        s.to_string()
    }
}

pub(crate) fn range_op_name(op: RangeOp) -> &'static str {
    match op {
        RangeOp::CountOverTime => "count_over_time",
        RangeOp::Rate => "rate",
        RangeOp::RateCounter => "rate_counter",
        RangeOp::BytesOverTime => "bytes_over_time",
        RangeOp::BytesRate => "bytes_rate",
        RangeOp::AvgOverTime => "avg_over_time",
        RangeOp::SumOverTime => "sum_over_time",
        RangeOp::MinOverTime => "min_over_time",
        RangeOp::MaxOverTime => "max_over_time",
        RangeOp::StdvarOverTime => "stdvar_over_time",
        RangeOp::StddevOverTime => "stddev_over_time",
        RangeOp::QuantileOverTime => "quantile_over_time",
        RangeOp::FirstOverTime => "first_over_time",
        RangeOp::LastOverTime => "last_over_time",
        RangeOp::AbsentOverTime => "absent_over_time",
    }
}

pub(crate) fn vector_op_name(op: VectorOp) -> &'static str {
    match op {
        VectorOp::Sum => "sum",
        VectorOp::Avg => "avg",
        VectorOp::Count => "count",
        VectorOp::Max => "max",
        VectorOp::Min => "min",
        VectorOp::Stddev => "stddev",
        VectorOp::Stdvar => "stdvar",
        VectorOp::Topk => "topk",
        VectorOp::Bottomk => "bottomk",
        VectorOp::Sort => "sort",
        VectorOp::SortDesc => "sort_desc",
    }
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
}

/// A lexical error, with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LexError {
    pub msg: String,
    pub line: u32,
    pub col: u32,
}

/// Names that are keywords only when called like a function.
fn function_token(lower: &str) -> Option<Tok> {
    use RangeOp as R;
    use VectorOp as V;
    Some(match lower {
        "rate" => Tok::RangeOp(R::Rate),
        "rate_counter" => Tok::RangeOp(R::RateCounter),
        "count_over_time" => Tok::RangeOp(R::CountOverTime),
        "bytes_rate" => Tok::RangeOp(R::BytesRate),
        "bytes_over_time" => Tok::RangeOp(R::BytesOverTime),
        "avg_over_time" => Tok::RangeOp(R::AvgOverTime),
        "sum_over_time" => Tok::RangeOp(R::SumOverTime),
        "min_over_time" => Tok::RangeOp(R::MinOverTime),
        "max_over_time" => Tok::RangeOp(R::MaxOverTime),
        "stdvar_over_time" => Tok::RangeOp(R::StdvarOverTime),
        "stddev_over_time" => Tok::RangeOp(R::StddevOverTime),
        "quantile_over_time" => Tok::RangeOp(R::QuantileOverTime),
        "first_over_time" => Tok::RangeOp(R::FirstOverTime),
        "last_over_time" => Tok::RangeOp(R::LastOverTime),
        "absent_over_time" => Tok::RangeOp(R::AbsentOverTime),
        "vector" => Tok::Vector,
        "sum" => Tok::VectorOp(V::Sum),
        "avg" => Tok::VectorOp(V::Avg),
        "max" => Tok::VectorOp(V::Max),
        "min" => Tok::VectorOp(V::Min),
        "count" => Tok::VectorOp(V::Count),
        "stddev" => Tok::VectorOp(V::Stddev),
        "stdvar" => Tok::VectorOp(V::Stdvar),
        "bottomk" => Tok::VectorOp(V::Bottomk),
        "topk" => Tok::VectorOp(V::Topk),
        "sort" => Tok::VectorOp(V::Sort),
        "sort_desc" => Tok::VectorOp(V::SortDesc),
        "label_replace" => Tok::LabelReplace,
        "bytes" => Tok::BytesConv,
        "duration" => Tok::DurationConv,
        "duration_seconds" => Tok::DurationSecondsConv,
        "ip" => Tok::Ip,
        _ => return None,
    })
}

/// Names that are always keywords.
fn keyword(lower: &str) -> Option<Tok> {
    Some(match lower {
        "by" => Tok::By,
        "without" => Tok::Without,
        "bool" => Tok::Bool,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "or" => Tok::Or,
        "and" => Tok::And,
        "unless" => Tok::Unless,
        "offset" => Tok::Offset,
        "unwrap" => Tok::Unwrap,
        "json" => Tok::Json,
        "logfmt" => Tok::Logfmt,
        "regexp" => Tok::Regexp,
        "unpack" => Tok::Unpack,
        "pattern" => Tok::Pattern,
        "label_format" => Tok::LabelFmt,
        "line_format" => Tok::LineFmt,
        "ip" => Tok::Ip,
        "decolorize" => Tok::Decolorize,
        "drop" => Tok::Drop,
        "keep" => Tok::Keep,
        "label_replace" => Tok::LabelReplace,
        _ => return None,
    })
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    _src: &'a str,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`]. Text that cannot be read ends the
/// list with a [`Tok::Error`] instead, so an earlier syntax error is reported first, as
/// Loki's lexer (which runs as the parser asks for tokens) does.
pub(crate) fn lex(src: &str) -> Vec<Token> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        _src: src,
    };
    let mut out = Vec::new();
    loop {
        match lx.next_token() {
            Ok(t) => {
                let end = t.tok == Tok::Eof;
                out.push(t);
                if end {
                    return out;
                }
            }
            Err(e) => {
                out.push(Token {
                    tok: Tok::Error(e.msg),
                    line: e.line,
                    col: e.col,
                });
                return out;
            }
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_duration_rune(c: char) -> bool {
    matches!(c, 'n' | 'u' | 'µ' | 'm' | 's' | 'h' | 'd' | 'w' | 'y')
}

fn is_bytes_rune(c: char) -> bool {
    matches!(c, 'B' | 'i' | 'k' | 'K' | 'M' | 'G' | 'T' | 'P')
}

impl Lexer<'_> {
    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied()?;
        self.pos += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err(&self, msg: impl Into<String>, line: u32, col: u32) -> LexError {
        LexError {
            msg: msg.into(),
            line,
            col,
        }
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), LexError> {
        loop {
            match self.peek_at(0) {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while let Some(c) = self.peek_at(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if self.peek_at(1) == Some('/') => {
                    while let Some(c) = self.peek_at(0) {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if self.peek_at(1) == Some('*') => {
                    let (line, col) = (self.line, self.col);
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(self.err("comment not terminated", line, col)),
                            Some('*') if self.peek_at(0) == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(_) => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    /// Whether the text after the current position calls a function: `(` next, or
    /// `by`/`without` and then `(`.
    fn is_function_call(&self) -> bool {
        let mut i = self.pos;
        let skip_ws = |mut i: usize| {
            while i < self.chars.len() && self.chars[i].is_whitespace() {
                i += 1;
            }
            i
        };
        i = skip_ws(i);
        match self.chars.get(i) {
            Some('(') => true,
            Some(_) => {
                for kw in ["by", "without"] {
                    let n = kw.len();
                    if i + n <= self.chars.len()
                        && self.chars[i..i + n]
                            .iter()
                            .map(|c| c.to_ascii_lowercase())
                            .eq(kw.chars())
                    {
                        let j = skip_ws(i + n);
                        return self.chars.get(j) == Some(&'(');
                    }
                }
                false
            }
            None => false,
        }
    }

    fn next_token(&mut self) -> Result<Token, LexError> {
        self.skip_trivia()?;
        let (line, col) = (self.line, self.col);
        let tok = |tok| Token { tok, line, col };
        let Some(c) = self.peek_at(0) else {
            return Ok(tok(Tok::Eof));
        };
        if c.is_ascii_digit() || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) {
            let text = self.scan_number();
            if let Some(d) = self.try_unit(&text, is_duration_rune, parse_duration) {
                return Ok(tok(Tok::Duration(d)));
            }
            if let Some(b) = self.try_unit(&text, is_bytes_rune, parse_bytes) {
                return Ok(tok(Tok::Bytes(b)));
            }
            return Ok(tok(Tok::Number(text)));
        }
        if is_ident_start(c) {
            let start = self.pos;
            while self.peek_at(0).is_some_and(is_ident_char) {
                self.bump();
            }
            let text: String = self.chars[start..self.pos].iter().collect();
            let lower = text.to_lowercase();
            if let Some(t) = function_token(&lower) {
                if self.is_function_call() {
                    return Ok(tok(t));
                }
                return Ok(tok(Tok::Ident(text)));
            }
            if let Some(t) = keyword(&lower) {
                return Ok(tok(t));
            }
            return Ok(tok(Tok::Ident(text)));
        }
        match c {
            '"' | '`' => {
                let s = self.scan_string(c, line, col)?;
                Ok(tok(Tok::Str(s)))
            }
            '[' => {
                self.bump();
                let mut body = String::new();
                loop {
                    match self.bump() {
                        None => {
                            return Err(self.err(
                                "missing closing ']' in duration",
                                self.line,
                                self.col,
                            ));
                        }
                        Some(']') => break,
                        Some(ch) => body.push(ch),
                    }
                }
                match protocol::time::parse_prometheus_duration(&body) {
                    Some(d) => Ok(tok(Tok::Range(d))),
                    None => Err(self.err(
                        format!("not a valid duration string: {:?}", body),
                        self.line,
                        self.col,
                    )),
                }
            }
            '-' => {
                self.bump();
                if self.peek_at(0) == Some('-') {
                    // a parser flag: --strict, --keep-empty
                    let mut k = 0;
                    let mut flag = String::from("-");
                    while let Some(ch) = self.peek_at(k) {
                        if ch.is_alphabetic() || ch == '-' {
                            flag.push(ch);
                            k += 1;
                        } else {
                            break;
                        }
                    }
                    if flag == "--strict" || flag == "--keep-empty" {
                        for _ in 0..k {
                            self.bump();
                        }
                        return Ok(tok(Tok::Flag(flag)));
                    }
                }
                if let Some(d) = self.try_unit("-", is_duration_rune, parse_duration) {
                    return Ok(tok(Tok::Duration(d)));
                }
                Ok(tok(Tok::Sub))
            }
            _ => {
                self.bump();
                let next = self.peek_at(0);
                let two = |s: &mut Self, t: Tok| {
                    s.bump();
                    Ok(tok(t))
                };
                match (c, next) {
                    ('!', Some('=')) => two(self, Tok::Neq),
                    ('!', Some('~')) => two(self, Tok::Nre),
                    ('!', Some('>')) => two(self, Tok::Npa),
                    ('=', Some('~')) => two(self, Tok::Re),
                    ('=', Some('=')) => two(self, Tok::CmpEq),
                    ('|', Some('=')) => two(self, Tok::PipeExact),
                    ('|', Some('~')) => two(self, Tok::PipeMatch),
                    ('|', Some('>')) => two(self, Tok::PipePattern),
                    ('>', Some('=')) => two(self, Tok::Gte),
                    ('<', Some('=')) => two(self, Tok::Lte),
                    (',', _) => Ok(tok(Tok::Comma)),
                    ('.', _) => Ok(tok(Tok::Dot)),
                    ('{', _) => Ok(tok(Tok::LBrace)),
                    ('}', _) => Ok(tok(Tok::RBrace)),
                    ('(', _) => Ok(tok(Tok::LParen)),
                    (')', _) => Ok(tok(Tok::RParen)),
                    ('=', _) => Ok(tok(Tok::Eq)),
                    ('|', _) => Ok(tok(Tok::Pipe)),
                    ('>', _) => Ok(tok(Tok::Gt)),
                    ('<', _) => Ok(tok(Tok::Lt)),
                    ('+', _) => Ok(tok(Tok::Add)),
                    ('*', _) => Ok(tok(Tok::Mul)),
                    ('/', _) => Ok(tok(Tok::Div)),
                    ('%', _) => Ok(tok(Tok::Mod)),
                    ('^', _) => Ok(tok(Tok::Pow)),
                    _ => Err(self.err(
                        format!("syntax error: unexpected character {c:?}"),
                        line,
                        col,
                    )),
                }
            }
        }
    }

    /// A Go number literal: decimal with fraction and exponent, or 0x/0o/0b integers,
    /// digits optionally separated by `_`.
    fn scan_number(&mut self) -> String {
        let start = self.pos;
        if self.peek_at(0) == Some('0')
            && matches!(self.peek_at(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B'))
            && self.peek_at(2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            self.bump();
            self.bump();
            while self
                .peek_at(0)
                .is_some_and(|c| c.is_ascii_hexdigit() || c == '_')
            {
                self.bump();
            }
            return self.chars[start..self.pos].iter().collect();
        }
        while self
            .peek_at(0)
            .is_some_and(|c| c.is_ascii_digit() || c == '_')
        {
            self.bump();
        }
        if self.peek_at(0) == Some('.') {
            self.bump();
            while self
                .peek_at(0)
                .is_some_and(|c| c.is_ascii_digit() || c == '_')
            {
                self.bump();
            }
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                for _ in 0..=sign {
                    self.bump();
                }
                while self.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                    self.bump();
                }
            }
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Loki's `tryScanDuration`/`tryScanBytes`: the number followed (without space) by
    /// digits, `.` and unit characters, if the whole parses.
    fn try_unit<T>(
        &mut self,
        number: &str,
        unit_char: fn(char) -> bool,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let mut k = 0;
        let mut text = number.to_string();
        while let Some(c) = self.peek_at(k) {
            if c.is_whitespace() || !(c.is_numeric() || unit_char(c) || c == '.') {
                break;
            }
            text.push(c);
            k += 1;
        }
        if k == 0 {
            return None;
        }
        let v = parse(&text)?;
        for _ in 0..k {
            self.bump();
        }
        Some(v)
    }

    fn scan_string(&mut self, quote: char, line: u32, col: u32) -> Result<String, LexError> {
        let start = self.pos;
        self.bump();
        loop {
            match self.bump() {
                None => return Err(self.err("literal not terminated", line, col)),
                Some('\n') if quote == '"' => {
                    return Err(self.err("literal not terminated", line, col));
                }
                Some('\\') if quote == '"' => {
                    if self.bump().is_none() {
                        return Err(self.err("literal not terminated", line, col));
                    }
                }
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        let raw: String = self.chars[start..self.pos].iter().collect();
        protocol::quote::unquote(&raw).map_err(|e| self.err(e.to_string(), line, col))
    }
}

/// Durations as LogQL reads them: Prometheus syntax, then Go's.
fn parse_duration(s: &str) -> Option<i64> {
    protocol::time::parse_duration(s).ok()
}

/// `go-humanize`'s `ParseBytes`: a number, optional space, and an SI (`kB`, `MB`) or IEC
/// (`KiB`, `MiB`) unit, case-insensitive; `B` or no unit is bytes.
pub(crate) fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(s.len());
    let num: String = s[..split].chars().filter(|c| *c != ',').collect();
    let n: f64 = num.parse().ok()?;
    let unit = s[split..].trim().to_ascii_lowercase();
    let mult: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "ki" | "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mi" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gi" | "gib" => 1024f64.powi(3),
        "t" | "tb" => 1e12,
        "ti" | "tib" => 1024f64.powi(4),
        "p" | "pb" => 1e15,
        "pi" | "pib" => 1024f64.powi(5),
        "e" | "eb" => 1e18,
        "ei" | "eib" => 1024f64.powi(6),
        _ => return None,
    };
    let v = n * mult;
    if !(0.0..1.8446744073709552e19).contains(&v) {
        return None;
    }
    Some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        lex(s).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn functions_only_when_called() {
        assert_eq!(
            toks(r#"{rate="x"} | unwrap bytes"#),
            vec![
                Tok::LBrace,
                Tok::Ident("rate".into()),
                Tok::Eq,
                Tok::Str("x".into()),
                Tok::RBrace,
                Tok::Pipe,
                Tok::Unwrap,
                Tok::Ident("bytes".into()),
                Tok::Eof
            ]
        );
        assert_eq!(toks("SUM by (a) (")[0], Tok::VectorOp(VectorOp::Sum));
        assert_eq!(toks("sum")[0], Tok::Ident("sum".into()));
    }

    #[test]
    fn numbers_durations_bytes() {
        assert_eq!(
            toks("5m 1.5h 10 1MB 10KiB -5m - 5 [1h30m] --strict"),
            vec![
                Tok::Duration(300_000_000_000),
                Tok::Duration(5_400_000_000_000),
                Tok::Number("10".into()),
                Tok::Bytes(1_000_000),
                Tok::Bytes(10240),
                Tok::Duration(-300_000_000_000),
                Tok::Sub,
                Tok::Number("5".into()),
                Tok::Range(5_400_000_000_000),
                Tok::Flag("--strict".into()),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn positions_and_comments() {
        let t = lex("# comment\n  {a=\"b\"}");
        assert_eq!((t[0].line, t[0].col), (2, 3));
        let t = lex(r#"{app="api""#);
        assert_eq!((t.last().unwrap().line, t.last().unwrap().col), (1, 11));
        assert!(matches!(lex(r#"{a="b}"#)[3].tok, Tok::Error(_)));
        assert!(matches!(lex("[5m:1m]")[0].tok, Tok::Error(_)));
    }
}
