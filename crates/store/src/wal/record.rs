//! The payload of a WAL record: one append of one tenant.
//!
//! ```text
//! tenant: bytes | streams: varint | per stream: body_len u32 | body
//! body:   fingerprint u64 | labels: varint, (name bytes, value bytes)* |
//!         entries: varint | per entry: ts delta zigzag varint, line bytes,
//!                                      metadata: varint, (name bytes, value bytes)*
//! ```
//!
//! The caller's task encodes the record (spreading the CPU over the runtime's threads);
//! the commit thread decodes it into the heads after it is durable.

use crate::codec::{Corrupt, Decoder, put_bytes, put_ivarint, put_u64, put_uvarint};
use crate::{WriteStream, wal};

/// Encodes the entries of `streams` accepted by `accept` as one framed record appended to
/// `out`; calls `reject(stream, entry)` for the others. Returns (entries, line bytes)
/// encoded; a record with no entries is not written.
pub fn encode_append(
    tenant: &str,
    streams: &[WriteStream<'_>],
    mut accept: impl FnMut(i64) -> bool,
    mut reject: impl FnMut(usize, usize),
    out: &mut Vec<u8>,
) -> (u64, u64) {
    let frame_start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    let payload_start = out.len();
    put_bytes(out, tenant.as_bytes());
    let nstreams_pos = out.len();
    // Up to 5 bytes for the stream count, patched at the end.
    out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
    let (mut nstreams, mut entries, mut bytes) = (0u32, 0u64, 0u64);
    for (si, s) in streams.iter().enumerate() {
        let body_len_pos = out.len();
        out.extend_from_slice(&[0u8; 4]);
        let body_start = out.len();
        put_u64(out, s.labels.fingerprint());
        put_uvarint(out, s.labels.len() as u64);
        for l in s.labels {
            put_bytes(out, l.name.as_bytes());
            put_bytes(out, l.value.as_bytes());
        }
        let count_pos = out.len();
        out.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        let mut n = 0u32;
        let mut prev = 0i64;
        for (ei, e) in s.entries.iter().enumerate() {
            if !accept(e.ts) {
                reject(si, ei);
                continue;
            }
            put_ivarint(out, e.ts.wrapping_sub(prev));
            prev = e.ts;
            put_bytes(out, e.line);
            put_uvarint(out, e.metadata.len() as u64);
            for (name, value) in e.metadata {
                put_bytes(out, name.as_bytes());
                put_bytes(out, value.as_bytes());
            }
            n += 1;
            bytes += e.line.len() as u64;
        }
        if n == 0 {
            out.truncate(body_len_pos);
            continue;
        }
        patch_varint5(&mut out[count_pos..count_pos + 5], n);
        let body_len = (out.len() - body_start) as u32;
        out[body_len_pos..body_start].copy_from_slice(&body_len.to_le_bytes());
        nstreams += 1;
        entries += u64::from(n);
    }
    if nstreams == 0 {
        out.truncate(frame_start);
        return (0, 0);
    }
    patch_varint5(&mut out[nstreams_pos..nstreams_pos + 5], nstreams);
    let payload_len = (out.len() - payload_start) as u32;
    let crc = crc32fast::hash(&out[payload_start..]);
    out[frame_start..frame_start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[frame_start + 4..frame_start + 8].copy_from_slice(&crc.to_le_bytes());
    debug_assert!(payload_len as usize <= wal::MAX_RECORD);
    (entries, bytes)
}

/// A varint written in exactly 5 bytes (padded with continuation bits).
fn patch_varint5(dst: &mut [u8], v: u32) {
    for (i, b) in dst.iter_mut().enumerate() {
        let part = ((v >> (7 * i)) & 0x7f) as u8;
        *b = if i < 4 { part | 0x80 } else { part };
    }
}

/// Reads a record payload stream by stream.
pub struct RecordDecoder<'a> {
    pub tenant: &'a str,
    d: Decoder<'a>,
    left: usize,
}

impl<'a> RecordDecoder<'a> {
    pub fn new(payload: &'a [u8]) -> Result<RecordDecoder<'a>, Corrupt> {
        let mut d = Decoder::new(payload);
        let tenant = d.str()?;
        let left = d.count(4)?;
        Ok(RecordDecoder { tenant, d, left })
    }

    pub fn next_stream(&mut self) -> Result<Option<StreamDecoder<'a>>, Corrupt> {
        if self.left == 0 {
            return if self.d.is_empty() {
                Ok(None)
            } else {
                Err(Corrupt)
            };
        }
        self.left -= 1;
        let len = self.d.u32()? as usize;
        let mut d = Decoder::new(self.d.take(len)?);
        let fingerprint = d.u64()?;
        let nlabels = d.count(2)?;
        let labels_start = d.position();
        for _ in 0..nlabels {
            d.bytes()?;
            d.bytes()?;
        }
        let labels = d.consumed_from(labels_start);
        let entries = d.count(2)?;
        Ok(Some(StreamDecoder {
            fingerprint,
            nlabels,
            labels,
            entries,
            d,
            prev: 0,
            meta: Vec::new(),
        }))
    }
}

/// One stream of a record.
pub struct StreamDecoder<'a> {
    pub fingerprint: u64,
    nlabels: usize,
    labels: &'a [u8],
    pub entries: usize,
    d: Decoder<'a>,
    prev: i64,
    /// The current entry's metadata pairs. They are not checked as UTF-8 here: the head
    /// checks each distinct pair once (see `HeadStream::push`).
    meta: Vec<(&'a [u8], &'a [u8])>,
}

impl<'a> StreamDecoder<'a> {
    /// The label pairs, sorted by name.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let mut d = Decoder::new(self.labels);
        (0..self.nlabels).map_while(move |_| Some((d.str().ok()?, d.str().ok()?)))
    }

    /// Whether the label strings are valid UTF-8 (checked once per stream).
    pub fn check_labels(&self) -> Result<(), Corrupt> {
        let mut d = Decoder::new(self.labels);
        for _ in 0..self.nlabels {
            d.str()?;
            d.str()?;
        }
        Ok(())
    }

    /// The next entry: timestamp, line and metadata pairs.
    pub fn next_entry(&mut self) -> Result<Option<RecordEntry<'a, '_>>, Corrupt> {
        if self.entries == 0 {
            return if self.d.is_empty() {
                Ok(None)
            } else {
                Err(Corrupt)
            };
        }
        self.entries -= 1;
        let ts = self.prev.wrapping_add(self.d.ivarint()?);
        self.prev = ts;
        let line = self.d.bytes()?;
        let n = self.d.count(2)?;
        self.meta.clear();
        for _ in 0..n {
            self.meta.push((self.d.bytes()?, self.d.bytes()?));
        }
        Ok(Some((ts, line, &self.meta)))
    }
}

/// An entry of a record: timestamp, line, metadata pairs.
pub type RecordEntry<'a, 'm> = (i64, &'a [u8], &'m [(&'a [u8], &'a [u8])]);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteEntry;
    use protocol::Labels;

    #[test]
    fn round_trip_with_rejections() {
        let a = Labels::from_pairs([("app", "api"), ("pod", "p1")]);
        let b = Labels::from_pairs([("app", "db")]);
        let meta = [("trace_id", "t1")];
        let ea = [
            WriteEntry {
                ts: 100,
                line: b"hello",
                metadata: &meta,
            },
            WriteEntry {
                ts: 5,
                line: b"too old",
                metadata: &[],
            },
            WriteEntry {
                ts: 90,
                line: b"",
                metadata: &[],
            },
        ];
        let eb = [WriteEntry {
            ts: 1,
            line: b"old",
            metadata: &[],
        }];
        let streams = [
            WriteStream {
                labels: &a,
                entries: &ea,
            },
            WriteStream {
                labels: &b,
                entries: &eb,
            },
        ];
        let mut out = Vec::new();
        let mut rejected = Vec::new();
        let (n, bytes) = encode_append(
            "t",
            &streams,
            |ts| ts >= 50,
            |s, e| rejected.push((s, e)),
            &mut out,
        );
        assert_eq!((n, bytes), (2, 5));
        assert_eq!(rejected, vec![(0, 1), (1, 0)]);
        let mut seen = 0;
        let mut replayed = Vec::new();
        std::fs::create_dir_all(std::env::temp_dir()).unwrap();
        let payload = &out[8..];
        assert_eq!(
            u32::from_le_bytes(out[4..8].try_into().unwrap()),
            crc32fast::hash(payload)
        );
        let mut r = RecordDecoder::new(payload).unwrap();
        assert_eq!(r.tenant, "t");
        while let Some(mut s) = r.next_stream().unwrap() {
            seen += 1;
            assert_eq!(s.fingerprint, a.fingerprint());
            assert_eq!(
                s.labels().collect::<Vec<_>>(),
                vec![("app", "api"), ("pod", "p1")]
            );
            while let Some((ts, line, m)) = s.next_entry().unwrap() {
                replayed.push((ts, line.to_vec(), m.to_vec()));
            }
        }
        assert_eq!(seen, 1);
        assert_eq!(
            replayed,
            vec![
                (100, b"hello".to_vec(), vec![(&b"trace_id"[..], &b"t1"[..])]),
                (90, vec![], vec![])
            ]
        );
        let mut none = Vec::new();
        assert_eq!(
            encode_append("t", &streams[1..], |_| false, |_, _| {}, &mut none),
            (0, 0)
        );
        assert!(none.is_empty());
    }
}
