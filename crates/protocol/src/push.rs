//! `logproto.PushRequest`, the body of `POST /loki/api/v1/push` that Promtail, Alloy, the
//! OpenTelemetry Collector and `kiroku agent` send: protobuf, compressed with raw snappy.
//!
//! Two sides of one format: clients build the owned [`PushRequest`] (prost) and call
//! [`encode_snappy`]; the server reads bodies with [`PushRequestRef::decode`], which borrows
//! every string from the decompressed buffer and allocates per request, never per line.
//!
//! ```text
//! PushRequest      { repeated StreamAdapter streams = 1; }
//! StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
//! EntryAdapter     { Timestamp timestamp = 1; string line = 2;
//!                    repeated LabelPairAdapter structuredMetadata = 3; }
//! LabelPairAdapter { string name = 1; string value = 2; }
//! Timestamp        { int64 seconds = 1; int32 nanos = 2; }
//! ```

use std::ops::Range;

use crate::time::NANOS_PER_SECOND;

/// Why a push body could not be read. Each message says what was wrong with the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid snappy data: {0}")]
    Snappy(String),
    #[error("body of {size} bytes when decompressed is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid protobuf: {0}")]
    Protobuf(&'static str),
}

/// A push request decoded in place: streams and entries point into the buffer they were
/// decoded from. Entries of stream `s` are `entries[s.entries]`, the structured metadata of
/// entry `e` is `metadata[e.metadata]`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushRequestRef<'a> {
    pub streams: Vec<StreamRef<'a>>,
    pub entries: Vec<EntryRef<'a>>,
    pub metadata: Vec<(&'a [u8], &'a [u8])>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRef<'a> {
    /// The label string, `{name="value", ...}`, as sent (not validated).
    pub labels: &'a [u8],
    pub entries: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Unix nanoseconds.
    pub ts: i64,
    pub line: &'a [u8],
    pub metadata: Range<usize>,
}

impl<'a> PushRequestRef<'a> {
    /// Decodes an uncompressed protobuf `PushRequest`.
    pub fn decode(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let mut req = PushRequestRef::default();
        let mut r = Reader { buf, pos: 0 };
        while let Some((field, wt)) = r.key()? {
            match (field, wt) {
                (1, WIRE_LEN) => {
                    let s = r.bytes()?;
                    req.decode_stream(s)?;
                }
                _ => r.skip(wt)?,
            }
        }
        Ok(req)
    }

    fn decode_stream(&mut self, buf: &'a [u8]) -> Result<(), DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let mut labels: &[u8] = b"";
        let start = self.entries.len();
        while let Some((field, wt)) = r.key()? {
            match (field, wt) {
                (1, WIRE_LEN) => labels = r.bytes()?,
                (2, WIRE_LEN) => {
                    let e = r.bytes()?;
                    self.decode_entry(e)?;
                }
                _ => r.skip(wt)?,
            }
        }
        self.streams.push(StreamRef {
            labels,
            entries: start..self.entries.len(),
        });
        Ok(())
    }

    fn decode_entry(&mut self, buf: &'a [u8]) -> Result<(), DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let mut ts = 0i64;
        let mut line: &[u8] = b"";
        let start = self.metadata.len();
        while let Some((field, wt)) = r.key()? {
            match (field, wt) {
                (1, WIRE_LEN) => ts = decode_timestamp(r.bytes()?)?,
                (2, WIRE_LEN) => line = r.bytes()?,
                (3, WIRE_LEN) => {
                    let p = r.bytes()?;
                    let pair = decode_pair(p)?;
                    self.metadata.push(pair);
                }
                _ => r.skip(wt)?,
            }
        }
        self.entries.push(EntryRef {
            ts,
            line,
            metadata: start..self.metadata.len(),
        });
        Ok(())
    }
}

/// Decompresses a raw-snappy body, refusing one that would exceed `limit` bytes before
/// allocating for it.
pub fn decompress_snappy(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let size = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(DecodeError::TooLarge { size, limit });
    }
    let mut out = vec![0u8; size];
    let n = snap::raw::Decoder::new()
        .decompress(body, &mut out)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = *self
                .buf
                .get(self.pos)
                .ok_or(DecodeError::Protobuf("truncated varint"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DecodeError::Protobuf("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<Option<(u64, u8)>, DecodeError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let k = self.varint()?;
        let field = k >> 3;
        if field == 0 {
            return Err(DecodeError::Protobuf("field number 0"));
        }
        Ok(Some((field, (k & 7) as u8)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.varint()?;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
            .filter(|e| *e <= self.buf.len())
            .ok_or(DecodeError::Protobuf(
                "length beyond the end of the message",
            ))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn skip(&mut self, wt: u8) -> Result<(), DecodeError> {
        match wt {
            WIRE_VARINT => {
                self.varint()?;
            }
            WIRE_I64 => self.advance(8)?,
            WIRE_LEN => {
                self.bytes()?;
            }
            WIRE_I32 => self.advance(4)?,
            _ => return Err(DecodeError::Protobuf("unsupported wire type")),
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Protobuf("truncated fixed-width field"));
        }
        self.pos += n;
        Ok(())
    }
}

fn decode_timestamp(buf: &[u8]) -> Result<i64, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let (mut secs, mut nanos) = (0i64, 0i64);
    while let Some((field, wt)) = r.key()? {
        match (field, wt) {
            (1, WIRE_VARINT) => secs = r.varint()? as i64,
            (2, WIRE_VARINT) => nanos = i64::from(r.varint()? as i32),
            _ => r.skip(wt)?,
        }
    }
    secs.checked_mul(NANOS_PER_SECOND)
        .and_then(|s| s.checked_add(nanos))
        .ok_or(DecodeError::Protobuf("timestamp out of range"))
}

fn decode_pair(buf: &[u8]) -> Result<(&[u8], &[u8]), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let (mut name, mut value): (&[u8], &[u8]) = (b"", b"");
    while let Some((field, wt)) = r.key()? {
        match (field, wt) {
            (1, WIRE_LEN) => name = r.bytes()?,
            (2, WIRE_LEN) => value = r.bytes()?,
            _ => r.skip(wt)?,
        }
    }
    Ok((name, value))
}

/// The owned request, for clients that build and send pushes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Timestamp {
    pub fn from_nanos(ns: i64) -> Timestamp {
        Timestamp {
            seconds: ns.div_euclid(NANOS_PER_SECOND),
            nanos: ns.rem_euclid(NANOS_PER_SECOND) as i32,
        }
    }
}

impl EntryAdapter {
    pub fn new(ts_nanos: i64, line: impl Into<String>) -> EntryAdapter {
        EntryAdapter {
            timestamp: Some(Timestamp::from_nanos(ts_nanos)),
            line: line.into(),
            structured_metadata: Vec::new(),
        }
    }
}

/// Encodes a request as protobuf compressed with raw snappy, ready to POST with
/// `Content-Type: application/x-protobuf`.
pub fn encode_snappy(req: &PushRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(req);
    // Compressing a buffer we hold in memory cannot fail except for inputs over 4 GiB,
    // which no client builds; fall back to an empty body rather than panic.
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> PushRequest {
        PushRequest {
            streams: vec![
                StreamAdapter {
                    labels: r#"{app="api"}"#.into(),
                    entries: vec![
                        EntryAdapter::new(1795168800123456789, "hello"),
                        EntryAdapter {
                            timestamp: Some(Timestamp {
                                seconds: 1,
                                nanos: 5,
                            }),
                            line: "with metadata".into(),
                            structured_metadata: vec![LabelPairAdapter {
                                name: "trace_id".into(),
                                value: "abc".into(),
                            }],
                        },
                    ],
                    hash: 7,
                },
                StreamAdapter {
                    labels: "{}".into(),
                    entries: vec![],
                    hash: 0,
                },
            ],
        }
    }

    #[test]
    fn decodes_what_prost_encodes() {
        let body = encode_snappy(&sample());
        let raw = decompress_snappy(&body, 1 << 20).unwrap();
        let r = PushRequestRef::decode(&raw).unwrap();
        assert_eq!(r.streams.len(), 2);
        assert_eq!(r.streams[0].labels, br#"{app="api"}"#);
        assert_eq!(r.entries[0].ts, 1795168800123456789);
        assert_eq!(r.entries[1].ts, 1_000_000_005);
        assert_eq!(r.entries[1].line, b"with metadata");
        assert_eq!(
            r.metadata[r.entries[1].metadata.clone()],
            [(&b"trace_id"[..], &b"abc"[..])]
        );
        assert!(r.streams[1].entries.is_empty());
    }

    #[test]
    fn rejects_garbage_and_oversize() {
        assert!(decompress_snappy(b"\xff\xff\xff\xff\x0fjunk", 1 << 20).is_err());
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4096])
            .unwrap();
        assert!(matches!(
            decompress_snappy(&big, 1024),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(PushRequestRef::decode(&[0x0a, 0x05, 0x01]).is_err());
        assert!(PushRequestRef::decode(&[0x0a]).is_err());
        assert!(PushRequestRef::decode(&[0x07]).is_err());
    }

    proptest! {
        #[test]
        fn round_trips(streams in proptest::collection::vec(
            ("[a-z]{0,8}", proptest::collection::vec((any::<i64>(), ".{0,40}", proptest::collection::vec(("[a-z]{1,5}", ".{0,5}"), 0..3)), 0..5)),
            0..4)) {
            let req = PushRequest { streams: streams.iter().map(|(l, es)| StreamAdapter {
                labels: l.clone(),
                entries: es.iter().map(|(ts, line, md)| EntryAdapter {
                    timestamp: Some(Timestamp::from_nanos(*ts)),
                    line: line.clone(),
                    structured_metadata: md.iter().map(|(n, v)| LabelPairAdapter { name: n.clone(), value: v.clone() }).collect(),
                }).collect(),
                hash: 0,
            }).collect() };
            let raw = prost::Message::encode_to_vec(&req);
            let r = PushRequestRef::decode(&raw).unwrap();
            prop_assert_eq!(r.streams.len(), streams.len());
            for (s, (l, es)) in r.streams.iter().zip(&streams) {
                prop_assert_eq!(s.labels, l.as_bytes());
                for (e, (ts, line, md)) in r.entries[s.entries.clone()].iter().zip(es) {
                    prop_assert_eq!(e.ts, *ts);
                    prop_assert_eq!(e.line, line.as_bytes());
                    prop_assert_eq!(e.metadata.len(), md.len());
                }
            }
        }

        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = PushRequestRef::decode(&bytes);
            let _ = decompress_snappy(&bytes, 1 << 16);
        }
    }
}
