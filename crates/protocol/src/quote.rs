//! Go's string quoting, which Loki uses for label values and LogQL string literals.
//!
//! LogQL strings are Go string literals: `"..."` with Go's escapes, or raw `` `...` ``.
//! Label sets print values the way Go's `strconv.Quote` does, so error messages and
//! `format_query` read exactly like Loki's.

use std::fmt::Write;

/// Why a quoted string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnquoteError {
    #[error("invalid syntax")]
    Syntax,
}

/// Reads a Go string literal (double-quoted with escapes, or backtick-quoted raw) and
/// returns its value. The input includes the quotes.
pub fn unquote(s: &str) -> Result<String, UnquoteError> {
    let bytes = s.as_bytes();
    if bytes.len() < 2 {
        return Err(UnquoteError::Syntax);
    }
    let (first, last) = (bytes[0], bytes[bytes.len() - 1]);
    let inner = &s[1..s.len() - 1];
    match (first, last) {
        (b'`', b'`') => {
            if inner.contains('`') {
                return Err(UnquoteError::Syntax);
            }
            // Go drops carriage returns from raw strings.
            Ok(inner.replace('\r', ""))
        }
        (b'"', b'"') => unescape(inner, b'"'),
        (b'\'', b'\'') => {
            let v = unescape(inner, b'\'')?;
            if v.chars().count() != 1 {
                return Err(UnquoteError::Syntax);
            }
            Ok(v)
        }
        _ => Err(UnquoteError::Syntax),
    }
}

/// Resolves Go escapes in the body of a quoted string whose quote character is `quote`.
pub fn unescape(inner: &str, quote: u8) -> Result<String, UnquoteError> {
    if !inner.contains('\\') {
        if inner.contains('\n') || inner.as_bytes().contains(&quote) {
            return Err(UnquoteError::Syntax);
        }
        return Ok(inner.to_string());
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\n' || (c as u32) == quote as u32 {
            return Err(UnquoteError::Syntax);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or(UnquoteError::Syntax)?;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' if quote == b'"' => out.push('"'),
            '\'' if quote == b'\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut v: u32 = 0;
                for _ in 0..n {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(16))
                        .ok_or(UnquoteError::Syntax)?;
                    v = v * 16 + d;
                }
                if e == 'x' {
                    // A \x escape is one byte; Go strings may hold invalid UTF-8, Rust ones
                    // may not, so bytes above 0x7f become U+FFFD, as they print in JSON.
                    out.push(if v < 0x80 {
                        v as u8 as char
                    } else {
                        '\u{fffd}'
                    });
                } else {
                    out.push(char::from_u32(v).ok_or(UnquoteError::Syntax)?);
                }
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    let d = chars
                        .next()
                        .and_then(|d| d.to_digit(8))
                        .ok_or(UnquoteError::Syntax)?;
                    v = v * 8 + d;
                }
                if v > 255 {
                    return Err(UnquoteError::Syntax);
                }
                out.push(if v < 0x80 {
                    v as u8 as char
                } else {
                    '\u{fffd}'
                });
            }
            _ => return Err(UnquoteError::Syntax),
        }
    }
    Ok(out)
}

/// Quotes `s` as Go's `strconv.Quote` does: double quotes, printable characters kept,
/// everything else escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(&mut out, s);
    out
}

/// Appends `s`, quoted as Go's `strconv.Quote` does, to `out`.
pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
}

/// An approximation of Go's `unicode.IsPrint` that errs on keeping characters: control
/// characters, the C1 block, unassigned surrogates and a few separators are not printable.
fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..0xa0).contains(&u)
        || u == 0xad
        || (0x2028..=0x2029).contains(&u)
        || (0xfff9..=0xfffb).contains(&u)
        || u == 0xfeff
        || (0xe000..=0xf8ff).contains(&u)
        || c.is_whitespace() && c != ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquotes_go_literals() {
        assert_eq!(unquote(r#""a\"b""#).unwrap(), "a\"b");
        assert_eq!(unquote(r#""\\S+ \d""#), Err(UnquoteError::Syntax));
        assert_eq!(unquote(r#""\\S+""#).unwrap(), "\\S+");
        assert_eq!(unquote("`C:\\temp`").unwrap(), "C:\\temp");
        assert_eq!(unquote(r#""\u00e9\x41\101\n""#).unwrap(), "éAA\n");
        assert_eq!(unquote(r#""注文""#).unwrap(), "注文");
        assert!(unquote(r#""abc"#).is_err());
        assert!(unquote("\"a\nb\"").is_err());
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(quote("エリカ"), "\"エリカ\"");
        assert_eq!(quote("\x1b[0m"), r#""\x1b[0m""#);
    }
}
