//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-05-01T10:00:00.123456789Z"}`.
//! A `log` without its trailing newline is a partial line (Docker splits lines at 16 KiB).
//!
//! A small scanner rather than serde: it reads the three fields it needs, unescapes `log`
//! into a buffer the caller reuses, and skips anything else (`attrs`).

use super::{FormatError, Output, Record, parse_time};

type Result<T> = std::result::Result<T, FormatError>;

fn err(why: &'static str) -> FormatError {
    FormatError::Docker(why)
}

/// Parses one line; the message is unescaped into `scratch` and borrowed from it.
pub fn parse<'s>(line: &[u8], scratch: &'s mut Vec<u8>) -> Result<Record<'s>> {
    scratch.clear();
    let mut s = Scanner { b: line, i: 0 };
    s.expect(b'{')?;
    let (mut ts, mut output, mut have_log) = (None, None, false);
    s.ws();
    if s.peek() == Some(b'}') {
        return Err(err("empty object"));
    }
    loop {
        s.ws();
        let key = s.raw_string()?;
        s.ws();
        s.expect(b':')?;
        s.ws();
        match key {
            b"log" => {
                s.string_into(scratch)?;
                have_log = true;
            }
            b"stream" => output = Output::parse(s.raw_string()?),
            b"time" => ts = parse_time(s.raw_string()?),
            _ => s.skip_value(0)?,
        }
        s.ws();
        match s.next() {
            Some(b',') => continue,
            Some(b'}') => break,
            _ => return Err(err("expected , or } after a field")),
        }
    }
    if !have_log {
        return Err(err("no log field"));
    }
    let output = output.ok_or(err("stream is missing or not stdout/stderr"))?;
    let ts = ts.ok_or(err("time is missing or not RFC 3339"))?;
    let partial = scratch.last() != Some(&b'\n');
    if !partial {
        scratch.pop();
    }
    Ok(Record {
        ts,
        output,
        partial,
        msg: scratch,
    })
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: u8) -> Result<()> {
        if self.next() == Some(c) {
            Ok(())
        } else {
            Err(err("unexpected character"))
        }
    }

    /// A string returned as written, for keys and short values; escapes are kept.
    fn raw_string(&mut self) -> Result<&'a [u8]> {
        self.expect(b'"')?;
        let start = self.i;
        loop {
            match self.next() {
                None => return Err(err("unterminated string")),
                Some(b'"') => return Ok(&self.b[start..self.i - 1]),
                Some(b'\\') => {
                    self.next();
                }
                Some(_) => {}
            }
        }
    }

    fn string_into(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.expect(b'"')?;
        loop {
            let rest = &self.b[self.i..];
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(err("unterminated string"))?;
            out.extend_from_slice(&rest[..stop]);
            self.i += stop + 1;
            if rest[stop] == b'"' {
                return Ok(());
            }
            match self.next().ok_or(err("unterminated escape"))? {
                b'"' => out.push(b'"'),
                b'\\' => out.push(b'\\'),
                b'/' => out.push(b'/'),
                b'b' => out.push(0x08),
                b'f' => out.push(0x0c),
                b'n' => out.push(b'\n'),
                b'r' => out.push(b'\r'),
                b't' => out.push(b'\t'),
                b'u' => {
                    let c = self.unicode_escape()?;
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                }
                _ => return Err(err("invalid escape")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or(err("short \\u escape"))?;
        self.i += 4;
        let s = std::str::from_utf8(h).map_err(|_| err("invalid \\u escape"))?;
        u32::from_str_radix(s, 16).map_err(|_| err("invalid \\u escape"))
    }

    fn unicode_escape(&mut self) -> Result<char> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.b.get(self.i..self.i + 2) == Some(b"\\u") {
            let save = self.i;
            self.i += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
            }
            self.i = save;
        }
        Ok(char::from_u32(hi).unwrap_or(char::REPLACEMENT_CHARACTER))
    }

    fn skip_value(&mut self, depth: usize) -> Result<()> {
        if depth > 32 {
            return Err(err("nested too deeply"));
        }
        match self.peek().ok_or(err("missing value"))? {
            b'"' => {
                self.raw_string()?;
            }
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.raw_string()?;
                        self.ws();
                        self.expect(b':')?;
                        self.ws();
                    }
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.next() {
                        Some(b',') => continue,
                        Some(c) if c == close => return Ok(()),
                        _ => return Err(err("unterminated object or array")),
                    }
                }
            }
            _ => {
                let start = self.i;
                while matches!(self.peek(), Some(c) if !matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))
                {
                    self.i += 1;
                }
                if self.i == start {
                    return Err(err("missing value"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_docker_records() {
        let mut scratch = Vec::new();
        let r = parse(
            br#"{"log":"hello \"world\"\tA\u00e9\ud83d\ude00\n","stream":"stderr","attrs":{"a":[1,{"b":null}]},"time":"2024-05-01T10:00:00.123456789Z"}"#,
            &mut scratch,
        )
        .unwrap();
        assert_eq!(r.ts, 1_714_557_600_123_456_789);
        assert_eq!(r.output, Output::Stderr);
        assert!(!r.partial);
        assert_eq!(r.msg, "hello \"world\"\tAé😀".as_bytes());
        let r = parse(
            br#"{"time":"2024-05-01T10:00:00Z","stream":"stdout","log":"no newline"}"#,
            &mut scratch,
        )
        .unwrap();
        assert!(r.partial);
        assert_eq!(r.msg, b"no newline");
    }

    #[test]
    fn rejects_broken_records() {
        let mut scratch = Vec::new();
        for bad in [
            &b"{}"[..],
            b"{",
            br#"{"log":"x\n"}"#,
            br#"{"log":"x\n","stream":"stdout","time":"yesterday"}"#,
            br#"{"log":"unterminated"#,
            br#"{"log":"\q","stream":"stdout","time":"2024-05-01T10:00:00Z"}"#,
            b"\x00\xff binary",
        ] {
            assert!(parse(bad, &mut scratch).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut scratch = Vec::new();
            let _ = parse(&line, &mut scratch);
        }

        #[test]
        fn round_trips_serde_json_strings(msg in ".{0,100}") {
            let line = format!(
                r#"{{"log":{},"stream":"stdout","time":"2024-05-01T10:00:00Z"}}"#,
                serde_json::to_string(&format!("{msg}\n")).unwrap()
            );
            let mut scratch = Vec::new();
            let r = parse(line.as_bytes(), &mut scratch).unwrap();
            prop_assert_eq!(r.msg, msg.as_bytes());
        }
    }
}
