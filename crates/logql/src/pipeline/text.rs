//! Turning bytes of a line into label text the way Loki's Go code does.

/// Appends `b`, turning each byte of an invalid UTF-8 sequence and each U+FFFD into a space
/// (Loki's parsers replace `utf8.RuneError` with a space, as Prometheus rejects it).
pub(crate) fn push_spaced(out: &mut String, mut b: &[u8]) {
    loop {
        match std::str::from_utf8(b) {
            Ok(s) => {
                push_no_replacement(out, s);
                return;
            }
            Err(e) => {
                let (good, rest) = b.split_at(e.valid_up_to());
                // `valid_up_to` bytes are valid UTF-8 by contract.
                push_no_replacement(out, std::str::from_utf8(good).unwrap_or_default());
                let bad = e.error_len().unwrap_or(rest.len());
                out.extend(std::iter::repeat_n(' ', bad));
                b = &rest[bad..];
            }
        }
    }
}

fn push_no_replacement(out: &mut String, s: &str) {
    if s.contains('\u{FFFD}') {
        out.extend(s.chars().map(|c| if c == '\u{FFFD}' { ' ' } else { c }));
    } else {
        out.push_str(s);
    }
}

/// Appends `b`, invalid UTF-8 shown as U+FFFD (what Loki's JSON encoder prints for the raw
/// bytes its regexp and pattern parsers keep).
pub(crate) fn push_lossy(out: &mut String, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(b)),
    }
}

/// Go's `unicode.IsSpace` for `bytes.TrimSpace`.
fn is_go_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c as u32 > 0xff && c.is_whitespace())
}

/// Loki's label-name sanitising of one key part appended to `out`: spaces trimmed, `_`
/// before a leading digit when `out` is empty, every character other than
/// `[A-Za-z0-9_]` (and every invalid byte) replaced by `_`.
pub(crate) fn push_sanitized(out: &mut String, key: &[u8]) {
    let key = trim_go_space(key);
    if key.is_empty() {
        return;
    }
    if out.is_empty() && key[0].is_ascii_digit() {
        out.push('_');
    }
    let mut b = key;
    while !b.is_empty() {
        let (c, len) = decode_char(b);
        match c {
            Some(c) if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => out.push('_'),
        }
        b = &b[len..];
    }
}

/// The first character of `b` and its length; `None` for one invalid byte.
fn decode_char(b: &[u8]) -> (Option<char>, usize) {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => return (None, 1),
    };
    match b.get(..len).and_then(|s| std::str::from_utf8(s).ok()) {
        Some(s) => (s.chars().next(), len),
        None => (None, 1),
    }
}

pub(crate) fn trim_go_space(b: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < b.len() {
        let (c, len) = decode_char(&b[start..]);
        match c {
            Some(c) if is_go_space(c) => start += len,
            _ => break,
        }
    }
    let mut end = b.len();
    while end > start {
        // Find the start of the last character.
        let mut s = end - 1;
        while s > start && (b[s] & 0xc0) == 0x80 && end - s < 4 {
            s -= 1;
        }
        let (c, len) = decode_char(&b[s..end]);
        match c {
            Some(c) if s + len == end && is_go_space(c) => end = s,
            _ => break,
        }
    }
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_names() {
        let s = |k: &str| {
            let mut o = String::new();
            push_sanitized(&mut o, k.as_bytes());
            o
        };
        assert_eq!(s("user_agent"), "user_agent");
        assert_eq!(s(" my key "), "my_key");
        assert_eq!(s("1st"), "_1st");
        assert_eq!(s("a.b-c"), "a_b_c");
        assert_eq!(s("名前"), "__");
        assert_eq!(s("  "), "");
    }

    #[test]
    fn replaces_invalid_utf8() {
        let mut o = String::new();
        push_spaced(&mut o, b"a\xffb\xe2\x82c\xef\xbf\xbd");
        assert_eq!(o, "a b  c ");
    }
}
