//! Loki's JSON push body, for clients that do not speak protobuf:
//!
//! ```json
//! {"streams": [{"stream": {"app": "api"},
//!               "values": [["1795168800000000000", "a line"],
//!                          ["1795168800000000001", "another", {"trace_id": "abc"}]]}]}
//! ```
//!
//! The third element of a value is the entry's structured metadata. The legacy form of
//! `/api/prom/push`, `{"streams":[{"labels":"{app=\"api\"}","entries":[{"ts":"<RFC3339>",
//! "line":"..."}]}]}`, is read too. Strings without escapes are borrowed from the body.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::push::{EntryRef, PushRequestRef, StreamRef};
use crate::quote::quote_into;
use crate::time::parse_rfc3339;

/// A decoded JSON push body. Call [`JsonPush::as_request`] to view it as the same
/// [`PushRequestRef`] the protobuf decoder produces.
#[derive(Debug, Default)]
pub struct JsonPush<'a> {
    streams: Vec<JsonStream<'a>>,
}

#[derive(Debug)]
struct JsonStream<'a> {
    /// The label set in Loki's string form, built from the `stream` object.
    labels: String,
    entries: Vec<JsonEntry<'a>>,
}

#[derive(Debug)]
struct JsonEntry<'a> {
    ts: i64,
    line: Cow<'a, str>,
    metadata: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// Why a JSON push body could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON push body: {0}")]
pub struct JsonPushError(String);

impl<'a> JsonPush<'a> {
    pub fn decode(body: &'a [u8]) -> Result<JsonPush<'a>, JsonPushError> {
        #[derive(Deserialize)]
        struct Body<'a> {
            #[serde(borrow, default)]
            streams: Vec<JsonStream<'a>>,
        }
        let b: Body<'a> = serde_json::from_slice(body).map_err(|e| JsonPushError(e.to_string()))?;
        Ok(JsonPush { streams: b.streams })
    }

    pub fn as_request(&self) -> PushRequestRef<'_> {
        let mut req = PushRequestRef::default();
        for s in &self.streams {
            let start = req.entries.len();
            for e in &s.entries {
                let mstart = req.metadata.len();
                req.metadata
                    .extend(e.metadata.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
                req.entries.push(EntryRef {
                    ts: e.ts,
                    line: e.line.as_bytes(),
                    metadata: mstart..req.metadata.len(),
                });
            }
            req.streams.push(StreamRef {
                labels: s.labels.as_bytes(),
                entries: start..req.entries.len(),
            });
        }
        req
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonStream<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonStream<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a stream object with \"stream\" and \"values\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut labels: Option<String> = None;
                let mut entries = Vec::new();
                while let Some(k) = m.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "stream" => {
                            let pairs: Vec<(Cow<'de, str>, Cow<'de, str>)> =
                                m.next_value::<StringMap<'de>>()?.0;
                            let mut s = String::from("{");
                            for (i, (n, v)) in pairs.iter().enumerate() {
                                if i > 0 {
                                    s.push_str(", ");
                                }
                                s.push_str(n);
                                s.push('=');
                                quote_into(&mut s, v);
                            }
                            s.push('}');
                            labels = Some(s);
                        }
                        "labels" => labels = Some(m.next_value::<String>()?),
                        "values" => entries = m.next_value::<Vec<JsonEntry<'de>>>()?,
                        "entries" => {
                            entries = m
                                .next_value::<Vec<LegacyEntry<'de>>>()?
                                .into_iter()
                                .map(|e| e.0)
                                .collect();
                        }
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let labels =
                    labels.ok_or_else(|| de::Error::custom("a stream has no \"stream\" labels"))?;
                Ok(JsonStream { labels, entries })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A JSON object of string values, in document order.
struct StringMap<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'de: 'a, 'a> Deserialize<'de> for StringMap<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = StringMap<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of string values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<Cow<'de, str>, Cow<'de, str>>()? {
                    out.push((k, v));
                }
                Ok(StringMap(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A nanosecond timestamp written as a string (Loki's form) or a bare integer.
struct NanoTs(i64);

impl<'de> Deserialize<'de> for NanoTs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NanoTs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp in Unix nanoseconds, as a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NanoTs, E> {
                s.parse::<i64>().map(NanoTs).map_err(|_| {
                    E::custom(format!(
                        "timestamp {s:?} is not an integer of Unix nanoseconds"
                    ))
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NanoTs, E> {
                Ok(NanoTs(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NanoTs, E> {
                i64::try_from(v)
                    .map(NanoTs)
                    .map_err(|_| E::custom("timestamp out of range"))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for JsonEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = JsonEntry<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a value [\"<unix nanoseconds>\", \"<line>\"] or [ts, line, {metadata}]",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let ts: NanoTs = s
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("a value has no timestamp"))?;
                let line: Cow<'de, str> = s
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("a value has no line"))?;
                let metadata = match s.next_element::<Option<StringMap<'de>>>()? {
                    Some(Some(m)) => m.0,
                    _ => Vec::new(),
                };
                if s.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("a value has more than three elements"));
                }
                Ok(JsonEntry {
                    ts: ts.0,
                    line,
                    metadata,
                })
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// `{"ts": "<RFC3339>", "line": "..."}` of the legacy push format.
struct LegacyEntry<'a>(JsonEntry<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for LegacyEntry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            ts: String,
            #[serde(borrow)]
            line: Cow<'a, str>,
        }
        let r = Raw::deserialize(d)?;
        let ts = parse_rfc3339(&r.ts)
            .ok_or_else(|| de::Error::custom(format!("timestamp {:?} is not RFC 3339", r.ts)))?;
        Ok(LegacyEntry(JsonEntry {
            ts,
            line: r.line,
            metadata: Vec::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_values_with_metadata() {
        let body = br#"{"streams":[{"stream":{"app":"api","pod":"a\"1"},"values":[["1795168800000000000","plain"],["2","esc\naped",{"trace_id":"abc"}]]}]}"#;
        let p = JsonPush::decode(body).unwrap();
        let r = p.as_request();
        assert_eq!(r.streams[0].labels, br#"{app="api", pod="a\"1"}"#);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[0].ts, 1795168800000000000);
        assert_eq!(r.entries[1].line, b"esc\naped");
        assert_eq!(r.metadata, vec![(&b"trace_id"[..], &b"abc"[..])]);
    }

    #[test]
    fn decodes_legacy_form() {
        let body = br#"{"streams":[{"labels":"{app=\"x\"}","entries":[{"ts":"2026-11-20T10:00:00Z","line":"l"}]}]}"#;
        let p = JsonPush::decode(body).unwrap();
        let r = p.as_request();
        assert_eq!(r.streams[0].labels, br#"{app="x"}"#);
        assert_eq!(r.entries[0].ts, 1795168800000000000);
    }

    #[test]
    fn rejects_bad_bodies_with_reasons() {
        for b in [
            &br#"{"streams":[{"stream":{},"values":[["x","l"]]}]}"#[..],
            br#"{"streams":[{"values":[]}]}"#,
            b"{",
            br#"{"streams":[{"stream":{"a":1}}]}"#,
        ] {
            let e = JsonPush::decode(b).unwrap_err();
            assert!(e.to_string().starts_with("invalid JSON push body"), "{e}");
        }
    }
}
