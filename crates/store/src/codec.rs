//! Little-endian integers and LEB128 varints over byte slices: the building blocks of the
//! WAL records and the part format. Decoding never panics: a short or malformed input is a
//! [`Corrupt`] error the caller turns into a message naming the file.

/// A truncated or malformed encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `v` as an unsigned number that is small when `v` is near zero (how signed varints are
/// stored).
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn put_ivarint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A cursor over an encoded buffer.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Decoder<'a> {
        Decoder { buf, pos: 0 }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = *self.buf.get(self.pos).ok_or(Corrupt)?;
            self.pos += 1;
            if shift == 63 && b > 1 {
                return Err(Corrupt);
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(Corrupt);
            }
        }
    }

    #[inline]
    pub fn ivarint(&mut self) -> Result<i64, Corrupt> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A varint that must fit a `usize` no larger than what is left to read times `per`
    /// bytes: guards allocations sized from input.
    pub fn count(&mut self, min_bytes_each: usize) -> Result<usize, Corrupt> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes_each as u64) > left {
            return Err(Corrupt);
        }
        Ok(n as usize)
    }

    pub fn u8(&mut self) -> Result<u8, Corrupt> {
        let b = *self.buf.get(self.pos).ok_or(Corrupt)?;
        self.pos += 1;
        Ok(b)
    }

    pub fn u32(&mut self) -> Result<u32, Corrupt> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    pub fn u64(&mut self) -> Result<u64, Corrupt> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    /// The bytes read since position `from`.
    pub fn consumed_from(&self, from: usize) -> &'a [u8] {
        &self.buf[from.min(self.pos)..self.pos]
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.pos.checked_add(n).ok_or(Corrupt)?;
        let s = self.buf.get(self.pos..end).ok_or(Corrupt)?;
        self.pos = end;
        Ok(s)
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.uvarint()?;
        self.take(usize::try_from(n).map_err(|_| Corrupt)?)
    }

    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Corrupt)
    }
}

/// The stable fingerprint of a label set given as sorted pairs; equal to
/// [`protocol::Labels::fingerprint`] for the same set, without building one.
pub fn fingerprint_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (n, v) in pairs {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, u);
            put_ivarint(&mut b, i);
            let mut d = Decoder::new(&b);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.ivarint().unwrap(), i);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn decoding_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut d = Decoder::new(&b);
            while d.uvarint().is_ok() && !d.is_empty() {}
            let mut d = Decoder::new(&b);
            let _ = d.bytes();
            let _ = d.count(1);
        }
    }

    #[test]
    fn fingerprint_matches_labels() {
        let l = protocol::Labels::from_pairs([("app", "api"), ("pod", "a-1")]);
        let fp = fingerprint_pairs(l.iter().map(|l| (l.name.as_str(), l.value.as_str())));
        assert_eq!(fp, l.fingerprint());
    }
}
