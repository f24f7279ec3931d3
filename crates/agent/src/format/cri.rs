//! The CRI log format: `<RFC3339Nano> <stdout|stderr> <tags> <msg>`, where the tags are
//! `P` (partial: the line continues in the next record) or `F` (full), possibly followed by
//! more tags after `:`.

use super::{FormatError, Output, Record, parse_time};

/// Parses one line (without its newline).
pub fn parse(line: &[u8]) -> Result<Record<'_>, FormatError> {
    let (ts, rest) = split_field(line).ok_or(FormatError::Cri("no timestamp"))?;
    let ts = parse_time(ts).ok_or(FormatError::Cri("invalid timestamp"))?;
    let (output, rest) = split_field(rest).ok_or(FormatError::Cri("no stream"))?;
    let output = Output::parse(output).ok_or(FormatError::Cri("stream is not stdout or stderr"))?;
    // An empty message may come without the space before it.
    let (tags, msg) = match memchr::memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b""[..]),
    };
    let first_tag = tags.split(|b| *b == b':').next().unwrap_or_default();
    let partial = match first_tag {
        b"P" => true,
        b"F" => false,
        _ => return Err(FormatError::Cri("tag is not P or F")),
    };
    Ok(Record {
        ts,
        output,
        partial,
        msg,
    })
}

fn split_field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = memchr::memchr(b' ', s)?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_full_partial_and_empty_lines() {
        let r = parse(b"2024-05-01T10:00:00.123456789Z stdout F hello world").unwrap();
        assert_eq!(r.ts, 1_714_557_600_123_456_789);
        assert_eq!(r.output, Output::Stdout);
        assert!(!r.partial);
        assert_eq!(r.msg, b"hello world");
        let r = parse(b"2024-05-01T10:00:00Z stderr P part").unwrap();
        assert!(r.partial);
        assert_eq!(r.output, Output::Stderr);
        let r = parse(b"2024-05-01T10:00:00+02:00 stdout F").unwrap();
        assert_eq!(r.msg, b"");
        assert_eq!(r.ts, 1_714_550_400_000_000_000);
        let r = parse(b"2024-05-01T10:00:00Z stdout F:x  two spaces").unwrap();
        assert_eq!(r.msg, b" two spaces");
    }

    #[test]
    fn rejects_what_is_not_cri() {
        for bad in [
            &b""[..],
            b"hello",
            b"notatime stdout F x",
            b"2024-05-01T10:00:00Z stdin F x",
            b"2024-05-01T10:00:00Z stdout X x",
            b"\xff\xfe\x00garbage",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&line);
        }

        #[test]
        fn message_survives(msg in proptest::collection::vec(any::<u8>(), 0..200), partial: bool) {
            let mut line = b"2024-05-01T10:00:00.5Z stderr ".to_vec();
            line.extend_from_slice(if partial { b"P " } else { b"F " });
            line.extend_from_slice(&msg);
            let r = parse(&line).unwrap();
            prop_assert_eq!(r.msg, &msg[..]);
            prop_assert_eq!(r.partial, partial);
        }
    }
}
