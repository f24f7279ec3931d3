//! The scan for level words (`error`, `WARN`, ...) and level field names (`level`, `lvl`,
//! `severity`) in a line, which runs on every pushed line.
//!
//! A byte-at-a-time loop that tracks "the previous byte was a boundary" mispredicts a
//! branch at nearly every word start. Instead each byte is classified through one table,
//! the classes of 64 bytes are packed into bit masks, and only the positions that both
//! follow a boundary and hold a level word's first letter (a few per line) are compared
//! with the words.

use super::level;

/// May stand right before a level word.
const LEFT: u8 = 1;
/// The first letter of a level word.
const START: u8 = 2;
/// The first letter of a level field name.
const FIELD: u8 = 4;
/// May stand right after a level word.
const RIGHT: u8 = 8;
/// The second letter of a level field name.
const SECOND: u8 = 16;

static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    t = mark(t, b" \t\n[({\"'=|", LEFT);
    t = mark(t, b" \t\n[]()!{}:,\"'=|", RIGHT);
    t = mark(t, b"tdfcewiTDFCEWI", START);
    t = mark(t, b"lsLS", FIELD);
    mark(t, b"veVE", SECOND)
}

const fn mark(mut t: [u8; 256], bytes: &[u8], class: u8) -> [u8; 256] {
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] |= class;
        i += 1;
    }
    t
}

/// The level of the first level word in `b` that stands alone (a [`LEFT`] byte or the
/// start before it, a [`RIGHT`] byte or the end after it), by position; with
/// `stop_at_field`, `None` as soon as a level field name appears anywhere in `b`.
pub(super) fn scan(b: &[u8], stop_at_field: bool) -> Option<&'static str> {
    let mut found = None;
    // The class of the byte before the current chunk; the line's start is a boundary.
    let mut before = LEFT;
    let mut tail = [0u8; 64];
    for (c, chunk) in b.chunks(64).enumerate() {
        let at = c * 64;
        // The last chunk is padded with zero bytes, which belong to no class.
        let chunk: &[u8; 64] = match chunk.try_into() {
            Ok(full) => full,
            Err(_) => {
                tail[..chunk.len()].copy_from_slice(chunk);
                &tail
            }
        };
        let (mut words, mut fields, last) = candidates(chunk, before);
        before = last;
        if stop_at_field {
            while fields != 0 {
                if field_name_at(&b[at + fields.trailing_zeros() as usize..]) {
                    return None;
                }
                fields &= fields - 1;
            }
        }
        if found.is_none() {
            while words != 0 {
                if let Some(l) = word_at(&b[at + words.trailing_zeros() as usize..]) {
                    found = Some(l);
                    if !stop_at_field {
                        return found;
                    }
                    break;
                }
                words &= words - 1;
            }
        }
    }
    Some(found.unwrap_or(level::UNKNOWN))
}

/// The positions in `chunk` where a level word may start (a [`START`] byte after a
/// [`LEFT`] one) and where a level field name may (a [`FIELD`] byte before a [`SECOND`]
/// one, or at a group's last byte, whose next byte is not looked at), as bit masks; and
/// the class of the chunk's last byte. `before` is the class of the byte before `chunk`.
#[inline]
fn candidates(chunk: &[u8; 64], mut before: u8) -> (u64, u64, u8) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let (mut words, mut fields) = (0u64, 0u64);
    for (g, eight) in chunk.chunks_exact(8).enumerate() {
        let k = u64::from_le_bytes(std::array::from_fn(|j| CLASS[eight[j] as usize]));
        let prev = (k << 8) | u64::from(before);
        let next = (k >> 8) | u64::from(SECOND) << 56;
        words |= pack(prev & (k >> 1) & ONES) << (8 * g);
        fields |= pack((k >> 2) & (next >> 4) & ONES) << (8 * g);
        before = (k >> 56) as u8;
    }
    (words, fields, before)
}

/// Packs the low bits of the eight bytes of `x` (each 0 or 1) into bits 0..8: the
/// multiplication moves byte `j`'s bit to bit `56 + j` and no two partial products
/// overlap, so nothing carries.
#[inline]
fn pack(x: u64) -> u64 {
    x.wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The level word at the start of `rest` when a boundary follows it; longer words first,
/// as Loki tries them.
fn word_at(rest: &[u8]) -> Option<&'static str> {
    let is = |w: &[u8]| {
        rest.len() >= w.len()
            && rest[..w.len()].eq_ignore_ascii_case(w)
            && rest
                .get(w.len())
                .is_none_or(|&c| CLASS[c as usize] & RIGHT != 0)
    };
    let l = match rest[0] | 0x20 {
        b't' if is(b"trace") => level::TRACE,
        b'd' if is(b"debug") => level::DEBUG,
        b'f' if is(b"fatal") => level::FATAL,
        b'c' if is(b"critical") => level::CRITICAL,
        b'e' if is(b"error") || is(b"err") => level::ERROR,
        b'w' if is(b"warning") || is(b"warn") => level::WARN,
        b'i' if is(b"info") => level::INFO,
        _ => return None,
    };
    Some(l)
}

/// Whether `rest` starts with `level`, `lvl` or `severity`, in any case: every name in
/// [`super::LEVEL_FIELDS`] holds one of them.
fn field_name_at(rest: &[u8]) -> bool {
    let starts = |w: &[u8]| rest.len() >= w.len() && rest[..w.len()].eq_ignore_ascii_case(w);
    starts(b"lvl") || starts(b"level") || starts(b"severity")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_moves_each_byte_bit_to_its_place() {
        for bits in 0u64..256 {
            let spread = (0..8).fold(0, |x, j| x | (((bits >> j) & 1) << (8 * j)));
            assert_eq!(pack(spread), bits);
        }
    }

    #[test]
    fn words_across_chunk_edges() {
        // A boundary as byte 63 and the word starting the next chunk, and a word that
        // runs over the edge.
        let mut line = "x".repeat(63);
        line.push_str(" error");
        assert_eq!(scan(line.as_bytes(), false), Some(level::ERROR));
        let line = format!("{}xerror warn", "x".repeat(63));
        assert_eq!(scan(line.as_bytes(), false), Some(level::WARN));
        let line = format!("{} deb{}", "x".repeat(60), "ug");
        assert_eq!(scan(line.as_bytes(), false), Some(level::DEBUG));
        // A field name after the level word still sends the line to the full rules.
        let line = format!("error {} Severity=x", "y".repeat(100));
        assert_eq!(scan(line.as_bytes(), true), None);
        assert_eq!(scan(line.as_bytes(), false), Some(level::ERROR));
        assert_eq!(scan(b"", true), Some(level::UNKNOWN));
    }
}
