//! From the bytes of a push request to the plain payload: undo `Content-Encoding`
//! (gzip, deflate, snappy) and, for protobuf, the snappy framing every Loki client applies,
//! never letting a body grow past the size limit while it is inflated.

use std::io::Read;

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use protocol::push::{DecodeError, decompress_snappy};

/// What a push body holds once decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `logproto.PushRequest`; the default, as in Loki, when there is no Content-Type.
    Protobuf,
    /// Loki's JSON push body.
    Json,
}

/// Why a body could not be read. All are the client's fault: HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("Content-Encoding {0:?} not supported: send gzip, deflate, snappy, zstd or none")]
    Encoding(String),
    #[error(
        "request body too large: {size} bytes, limit: {limit} bytes; send smaller batches or raise max_request_bytes"
    )]
    TooLarge { size: u64, limit: usize },
    #[error(
        "request body too large: more than {limit} bytes once decompressed; send smaller batches or raise max_request_bytes"
    )]
    InflatesTooLarge { limit: usize },
    #[error("invalid {encoding} body: {message}")]
    Corrupt {
        encoding: &'static str,
        message: String,
    },
    #[error("{0}")]
    Snappy(String),
}

impl BodyError {
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            BodyError::TooLarge { .. } | BodyError::InflatesTooLarge { .. }
        )
    }
}

/// Reads the `Content-Type` as Loki does: `application/json` is JSON, anything else
/// (`application/x-protobuf`, nothing at all) is snappy-compressed protobuf.
pub fn format(headers: &HeaderMap) -> Format {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Format::Json
    } else {
        Format::Protobuf
    }
}

/// The decompressed payload: the body itself when nothing was compressed (no copy).
pub fn decode(
    headers: &HeaderMap,
    body: Bytes,
    format: Format,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_ascii_lowercase())
        .unwrap_or_default();
    // Protobuf is snappy-compressed by every Loki client; `Content-Encoding: snappy` on a
    // protobuf body names that same compression, not a second one.
    let inflated = match encoding.as_str() {
        "" | "identity" => body,
        "snappy" if format == Format::Protobuf => body,
        "snappy" => Bytes::from(snappy(&body, limit)?),
        "gzip" | "x-gzip" => Bytes::from(inflate(
            flate2::read::MultiGzDecoder::new(&body[..]),
            "gzip",
            limit,
        )?),
        "deflate" => {
            // HTTP's deflate is zlib-wrapped, Go's (and Loki's) raw DEFLATE: accept both.
            if looks_like_zlib(&body) {
                Bytes::from(inflate(
                    flate2::read::ZlibDecoder::new(&body[..]),
                    "deflate",
                    limit,
                )?)
            } else {
                Bytes::from(inflate(
                    flate2::read::DeflateDecoder::new(&body[..]),
                    "deflate",
                    limit,
                )?)
            }
        }
        "zstd" => Bytes::from(inflate(
            zstd::stream::read::Decoder::new(&body[..]).map_err(|e| BodyError::Corrupt {
                encoding: "zstd",
                message: e.to_string(),
            })?,
            "zstd",
            limit,
        )?),
        other => return Err(BodyError::Encoding(other.to_string())),
    };
    match format {
        Format::Json => Ok(inflated),
        Format::Protobuf => Ok(Bytes::from(snappy(&inflated, limit)?)),
    }
}

fn snappy(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    decompress_snappy(body, limit).map_err(|e| match e {
        DecodeError::TooLarge { .. } => BodyError::InflatesTooLarge { limit },
        DecodeError::Snappy(m) => BodyError::Snappy(format!(
            "invalid snappy data: {m}: a protobuf push body must be compressed with snappy's block format"
        )),
        other => BodyError::Snappy(other.to_string()),
    })
}

/// Reads a decompressor to the end, stopping one byte past the limit.
fn inflate(r: impl Read, encoding: &'static str, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    r.take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Corrupt {
            encoding,
            message: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BodyError::InflatesTooLarge { limit });
    }
    Ok(out)
}

/// A zlib stream starts with a header whose first byte names DEFLATE and whose first two
/// bytes, read as a big-endian number, are a multiple of 31.
fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn content_type_picks_the_format() {
        assert_eq!(format(&HeaderMap::new()), Format::Protobuf);
        assert_eq!(
            format(&headers(&[(
                "content-type",
                "application/json; charset=utf-8"
            )])),
            Format::Json
        );
        assert_eq!(
            format(&headers(&[("content-type", "application/x-protobuf")])),
            Format::Protobuf
        );
    }

    #[test]
    fn every_encoding_inflates() {
        let json = br#"{"streams":[]}"#.to_vec();
        let h = |e: &str| headers(&[("content-encoding", e)]);
        let plain = decode(&HeaderMap::new(), json.clone().into(), Format::Json, 1024).unwrap();
        assert_eq!(&plain[..], &json[..]);
        let g = decode(&h("gzip"), gzip(&json).into(), Format::Json, 1024).unwrap();
        assert_eq!(&g[..], &json[..]);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&json).unwrap();
        let d = decode(
            &h("deflate"),
            z.finish().unwrap().into(),
            Format::Json,
            1024,
        )
        .unwrap();
        assert_eq!(&d[..], &json[..]);
        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        raw.write_all(&json).unwrap();
        let d = decode(
            &h("deflate"),
            raw.finish().unwrap().into(),
            Format::Json,
            1024,
        )
        .unwrap();
        assert_eq!(&d[..], &json[..]);
        let z = zstd::encode_all(&json[..], 1).unwrap();
        let d = decode(&h("zstd"), z.into(), Format::Json, 1024).unwrap();
        assert_eq!(&d[..], &json[..]);
        let s = snap::raw::Encoder::new().compress_vec(&json).unwrap();
        let d = decode(&h("snappy"), s.clone().into(), Format::Json, 1024).unwrap();
        assert_eq!(&d[..], &json[..]);
        // Protobuf: snappy once, whether or not the header says so, inside gzip too.
        let p = decode(&h("snappy"), s.clone().into(), Format::Protobuf, 1024).unwrap();
        assert_eq!(&p[..], &json[..]);
        let p = decode(&HeaderMap::new(), s.clone().into(), Format::Protobuf, 1024).unwrap();
        assert_eq!(&p[..], &json[..]);
        let p = decode(&h("gzip"), gzip(&s).into(), Format::Protobuf, 1024).unwrap();
        assert_eq!(&p[..], &json[..]);
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        let e = decode(
            &headers(&[("content-encoding", "br")]),
            Bytes::from_static(b"x"),
            Format::Json,
            10,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Content-Encoding \"br\" not supported: send gzip, deflate, snappy, zstd or none"
        );
        let e = decode(
            &headers(&[("content-encoding", "gzip")]),
            Bytes::from_static(b"not gzip"),
            Format::Json,
            10,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid gzip body"), "{e}");
        let e = decode(
            &HeaderMap::new(),
            Bytes::from_static(b"\x0a\x00x"),
            Format::Protobuf,
            100,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("invalid snappy data"), "{e}");
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let big = gzip(&vec![b'a'; 1 << 20]);
        let e = decode(
            &headers(&[("content-encoding", "gzip")]),
            big.into(),
            Format::Json,
            4096,
        )
        .unwrap_err();
        assert!(e.is_too_large());
        let s = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 1 << 16])
            .unwrap();
        assert!(
            decode(&HeaderMap::new(), s.into(), Format::Protobuf, 4096)
                .unwrap_err()
                .is_too_large()
        );
    }
}
