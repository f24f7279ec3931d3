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
    // U+FFFD is EF BF BD: look for the lead byte first, it is rare.
    if memchr::memchr(0xef, s.as_bytes()).is_some() && s.contains('\u{FFFD}') {
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

/// A byte that stands in a label name as it is: `[A-Za-z0-9_]`.
fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Whether `key` is a label name as it is, so that sanitising leaves it unchanged.
pub(crate) fn is_plain_name(key: &[u8]) -> bool {
    key.first().is_some_and(|c| !c.is_ascii_digit()) && key.iter().all(|&c| is_name_byte(c))
}

/// Loki's label-name sanitising of one key part appended to `out`: spaces trimmed, `_`
/// before a leading digit when `out` is empty, every character other than
/// `[A-Za-z0-9_]` (and every invalid byte) replaced by `_`.
pub(crate) fn push_sanitized(out: &mut String, key: &[u8]) {
    // Most keys are already valid names: copy them whole.
    if let Some(&first) = key.first()
        && !(out.is_empty() && first.is_ascii_digit())
        && key.iter().all(|&c| is_name_byte(c))
    {
        out.push_str(std::str::from_utf8(key).unwrap_or_default());
        return;
    }
    let key = trim_go_space(key);
    if key.is_empty() {
        return;
    }
    if out.is_empty() && key[0].is_ascii_digit() {
        out.push('_');
    }
    let mut i = 0;
    while i < key.len() {
        let c = key[i];
        if c < 0x80 {
            out.push(if is_name_byte(c) { c as char } else { '_' });
            i += 1;
        } else {
            // Any other character, or an invalid byte, is one `_`.
            out.push('_');
            i += decode_char(&key[i..]).1;
        }
    }
}

/// The first character of `b` and its length; `None` for one invalid byte.
fn decode_char(b: &[u8]) -> (Option<char>, usize) {
    let len = match b[0] {
        0x00..=0x7f => return (Some(b[0] as char), 1),
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

fn is_ascii_go_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

pub(crate) fn trim_go_space(b: &[u8]) -> &[u8] {
    if let (Some(&f), Some(&l)) = (b.first(), b.last())
        && f > b' '
        && f < 0x80
        && l > b' '
        && l < 0x80
    {
        return b;
    }
    let mut start = 0;
    while start < b.len() {
        let c = b[start];
        if c < 0x80 {
            if !is_ascii_go_space(c) {
                break;
            }
            start += 1;
            continue;
        }
        let (c, len) = decode_char(&b[start..]);
        match c {
            Some(c) if is_go_space(c) => start += len,
            _ => break,
        }
    }
    let mut end = b.len();
    while end > start {
        let last = b[end - 1];
        if last < 0x80 {
            if !is_ascii_go_space(last) {
                break;
            }
            end -= 1;
            continue;
        }
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
