//! The JSON answers of Loki's query API, exactly as Loki writes them, and read back by the
//! command-line client.
//!
//! Shapes: `{"status":"success","data":{"resultType":"streams"|"matrix"|"vector"|"scalar",
//! "result":[...],"stats":{...}}}`. Stream entries are `["<unix ns as string>", "line"]`,
//! with a third element `{"structuredMetadata":{..},"parsed":{..}}` when the client asked
//! for categorized labels; points are `[<unix seconds, millisecond precision>, "<value>"]`.

use serde::de::Error as _;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::labels::{Label, Labels};
use crate::time::format_sample_value;

/// The result of a query: log lines (`streams`) or numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    Streams(Vec<Stream>),
    Matrix(Vec<Series>),
    Vector(Vec<Sample>),
    Scalar(Point),
}

impl QueryResult {
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryResult::Streams(_) => "streams",
            QueryResult::Matrix(_) => "matrix",
            QueryResult::Vector(_) => "vector",
            QueryResult::Scalar(_) => "scalar",
        }
    }
}

/// Log lines that share one label set, in the query's direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Unix nanoseconds.
    pub ts: i64,
    pub line: String,
    /// Present only when the client asked for categorized labels.
    pub categories: Option<Categories>,
}

/// The non-indexed labels of an entry, split out under `categorize-labels`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Categories {
    pub structured_metadata: Labels,
    pub parsed: Labels,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub values: Vec<Point>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub point: Point,
}

/// A sample: Unix milliseconds (Loki prints seconds with millisecond precision) and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub t_ms: i64,
    pub v: f64,
}

/// `{"status":"success","data":{...}}` for `query` and `query_range`.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResponse {
    pub result: QueryResult,
    /// Loki's `data.stats`; written as given (an empty object when `None`).
    pub stats: Option<serde_json::Value>,
    /// `data.encodingFlags`, written only when not empty (`["categorize-labels"]`).
    pub encoding_flags: Vec<String>,
}

/// `{"status":"success","data":<T>}` for labels, label values, series and `format_query`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataResponse<T> {
    pub status: String,
    pub data: T,
}

impl<T> DataResponse<T> {
    pub fn success(data: T) -> Self {
        DataResponse {
            status: "success".to_string(),
            data,
        }
    }
}

struct LabelsMap<'a>(&'a Labels);

impl Serialize for LabelsMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for l in self.0 {
            m.serialize_entry(&l.name, &l.value)?;
        }
        m.end()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        LabelsMap(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = std::collections::BTreeMap::<String, String>::deserialize(d)?;
        Ok(Labels::from_sorted(
            m.into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
        ))
    }
}

/// Writes Unix milliseconds as seconds: `1795169100` or `1795169099.999`.
struct SecondsNumber(i64);

impl Serialize for SecondsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % 1000 == 0 {
            s.serialize_i64(self.0 / 1000)
        } else {
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

impl Serialize for Point {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(2))?;
        seq.serialize_element(&SecondsNumber(self.t_ms))?;
        seq.serialize_element(&format_sample_value(self.v))?;
        seq.end()
    }
}

impl Serialize for Categories {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = usize::from(!self.structured_metadata.is_empty())
            + usize::from(!self.parsed.is_empty());
        let mut m = s.serialize_map(Some(n))?;
        if !self.structured_metadata.is_empty() {
            m.serialize_entry("structuredMetadata", &self.structured_metadata)?;
        }
        if !self.parsed.is_empty() {
            m.serialize_entry("parsed", &self.parsed)?;
        }
        m.end()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Under `categorize-labels` every entry has the third element, `{}` when it has
        // neither kind of label, as Loki writes it.
        let cats = self.categories.as_ref();
        let mut seq = s.serialize_seq(Some(2 + usize::from(cats.is_some())))?;
        seq.serialize_element(&self.ts.to_string())?;
        seq.serialize_element(&self.line)?;
        if let Some(c) = cats {
            seq.serialize_element(c)?;
        }
        seq.end()
    }
}

impl Serialize for Stream {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Stream", 2)?;
        st.serialize_field("stream", &self.labels)?;
        st.serialize_field("values", &self.entries)?;
        st.end()
    }
}

impl Serialize for Series {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Series", 2)?;
        st.serialize_field("metric", &self.metric)?;
        st.serialize_field("values", &self.values)?;
        st.end()
    }
}

impl Serialize for Sample {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Sample", 2)?;
        st.serialize_field("metric", &self.metric)?;
        st.serialize_field("value", &self.point)?;
        st.end()
    }
}

struct ResultBody<'a>(&'a QueryResult);

impl Serialize for ResultBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            QueryResult::Streams(v) => v.serialize(s),
            QueryResult::Matrix(v) => v.serialize(s),
            QueryResult::Vector(v) => v.serialize(s),
            QueryResult::Scalar(p) => p.serialize(s),
        }
    }
}

struct Data<'a>(&'a QueryResponse);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut st = s.serialize_struct("Data", 4)?;
        st.serialize_field("resultType", r.result.result_type())?;
        if !r.encoding_flags.is_empty() {
            st.serialize_field("encodingFlags", &r.encoding_flags)?;
        }
        st.serialize_field("result", &ResultBody(&r.result))?;
        match &r.stats {
            Some(v) => st.serialize_field("stats", v)?,
            None => st.serialize_field("stats", &serde_json::Map::new())?,
        }
        st.end()
    }
}

impl Serialize for QueryResponse {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("QueryResponse", 2)?;
        st.serialize_field("status", "success")?;
        st.serialize_field("data", &Data(self))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for QueryResponse {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            data: RawData,
        }
        #[derive(Deserialize)]
        struct RawData {
            #[serde(rename = "resultType")]
            result_type: String,
            #[serde(default)]
            result: serde_json::Value,
            #[serde(default)]
            stats: Option<serde_json::Value>,
            #[serde(default, rename = "encodingFlags")]
            encoding_flags: Option<Vec<String>>,
        }
        let raw = Raw::deserialize(d)?;
        let result =
            read_result(&raw.data.result_type, raw.data.result).map_err(D::Error::custom)?;
        Ok(QueryResponse {
            result,
            stats: raw.data.stats,
            encoding_flags: raw.data.encoding_flags.unwrap_or_default(),
        })
    }
}

fn read_labels(v: &serde_json::Value) -> Result<Labels, String> {
    let m = v.as_object().ok_or("labels are not an object")?;
    Ok(Labels::from_pairs(m.iter().map(|(k, v)| {
        (k.clone(), v.as_str().unwrap_or_default().to_string())
    })))
}

fn read_point(v: &serde_json::Value) -> Result<Point, String> {
    let a = v
        .as_array()
        .filter(|a| a.len() == 2)
        .ok_or("a point is not [time, value]")?;
    let t = a[0].as_f64().ok_or("a point's time is not a number")?;
    let v = a[1].as_str().ok_or("a point's value is not a string")?;
    let v = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad sample value {v:?}"))?,
    };
    Ok(Point {
        t_ms: (t * 1000.0).round() as i64,
        v,
    })
}

fn read_result(kind: &str, v: serde_json::Value) -> Result<QueryResult, String> {
    let empty = Vec::new();
    let items = v.as_array().unwrap_or(&empty);
    Ok(match kind {
        "streams" => QueryResult::Streams(
            items
                .iter()
                .map(|s| {
                    let labels = read_labels(&s["stream"])?;
                    let entries = s["values"]
                        .as_array()
                        .unwrap_or(&empty)
                        .iter()
                        .map(|e| {
                            let ts = e[0]
                                .as_str()
                                .and_then(|t| t.parse().ok())
                                .ok_or("bad entry timestamp")?;
                            let line = e[1].as_str().unwrap_or_default().to_string();
                            let categories = match e.get(2) {
                                Some(c) => Some(Categories {
                                    structured_metadata: c
                                        .get("structuredMetadata")
                                        .map(read_labels)
                                        .transpose()?
                                        .unwrap_or_default(),
                                    parsed: c
                                        .get("parsed")
                                        .map(read_labels)
                                        .transpose()?
                                        .unwrap_or_default(),
                                }),
                                None => None,
                            };
                            Ok::<_, String>(Entry {
                                ts,
                                line,
                                categories,
                            })
                        })
                        .collect::<Result<_, _>>()?;
                    Ok::<_, String>(Stream { labels, entries })
                })
                .collect::<Result<_, _>>()?,
        ),
        "matrix" => QueryResult::Matrix(
            items
                .iter()
                .map(|s| {
                    Ok::<_, String>(Series {
                        metric: read_labels(&s["metric"])?,
                        values: s["values"]
                            .as_array()
                            .unwrap_or(&empty)
                            .iter()
                            .map(read_point)
                            .collect::<Result<_, _>>()?,
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "vector" => QueryResult::Vector(
            items
                .iter()
                .map(|s| {
                    Ok::<_, String>(Sample {
                        metric: read_labels(&s["metric"])?,
                        point: read_point(&s["value"])?,
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        "scalar" => QueryResult::Scalar(read_point(&v)?),
        other => return Err(format!("unknown resultType {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_loki_shapes() {
        let r = QueryResponse {
            result: QueryResult::Matrix(vec![Series {
                metric: Labels::from_pairs([("app", "api")]),
                values: vec![
                    Point {
                        t_ms: 1795169100000,
                        v: 0.02,
                    },
                    Point {
                        t_ms: 1795169099999,
                        v: f64::NAN,
                    },
                ],
            }]),
            stats: None,
            encoding_flags: vec![],
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(
            s,
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"app":"api"},"values":[[1795169100,"0.02"],[1795169099.999,"NaN"]]}],"stats":{}}}"#
        );
        let back: QueryResponse = serde_json::from_str(&s).unwrap();
        assert_eq!(back.result.result_type(), "matrix");
    }

    #[test]
    fn streams_round_trip() {
        let r = QueryResponse {
            result: QueryResult::Streams(vec![Stream {
                labels: Labels::from_pairs([("app", "api")]),
                entries: vec![
                    Entry {
                        ts: 1795170598212145440,
                        line: "a \"b\"".into(),
                        categories: None,
                    },
                    Entry {
                        ts: 1,
                        line: "x".into(),
                        categories: Some(Categories {
                            structured_metadata: Labels::from_pairs([("trace_id", "1")]),
                            parsed: Labels::new(),
                        }),
                    },
                    Entry {
                        ts: 2,
                        line: "y".into(),
                        categories: Some(Categories::default()),
                    },
                ],
            }]),
            stats: None,
            encoding_flags: vec!["categorize-labels".into()],
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(
            s.contains(r#"["1","x",{"structuredMetadata":{"trace_id":"1"}}]"#),
            "{s}"
        );
        // Loki writes the object even when it is empty.
        assert!(s.contains(r#"["2","y",{}]"#), "{s}");
        assert!(
            s.contains(r#""encodingFlags":["categorize-labels"]"#),
            "{s}"
        );
        let back: QueryResponse = serde_json::from_str(&s).unwrap();
        assert_eq!(
            back,
            QueryResponse {
                stats: Some(serde_json::json!({})),
                ..r
            }
        );
    }
}
