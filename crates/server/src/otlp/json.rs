//! OTLP/JSON, read into the same messages as the protobuf form. The JSON mapping of
//! protobuf: lowerCamelCase names (snake_case accepted too), 64-bit integers as strings or
//! numbers, `traceId`/`spanId` as hex, `bytesValue` as base64, enums as numbers.

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::proto;

#[derive(Deserialize, Default)]
#[serde(default)]
struct Request {
    #[serde(alias = "resource_logs", rename = "resourceLogs")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResourceLogs {
    resource: Option<Resource>,
    #[serde(alias = "scope_logs", rename = "scopeLogs")]
    scope_logs: Vec<ScopeLogs>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScopeLogs {
    scope: Option<Scope>,
    #[serde(alias = "log_records", rename = "logRecords")]
    log_records: Vec<LogRecord>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Scope {
    name: String,
    version: String,
    attributes: Vec<KeyValue>,
    #[serde(alias = "dropped_attributes_count", rename = "droppedAttributesCount")]
    dropped_attributes_count: u32,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogRecord {
    #[serde(
        alias = "time_unix_nano",
        rename = "timeUnixNano",
        deserialize_with = "u64_any"
    )]
    time_unix_nano: u64,
    #[serde(
        alias = "observed_time_unix_nano",
        rename = "observedTimeUnixNano",
        deserialize_with = "u64_any"
    )]
    observed_time_unix_nano: u64,
    #[serde(alias = "severity_number", rename = "severityNumber")]
    severity_number: i32,
    #[serde(alias = "severity_text", rename = "severityText")]
    severity_text: String,
    body: Option<AnyValue>,
    attributes: Vec<KeyValue>,
    #[serde(alias = "dropped_attributes_count", rename = "droppedAttributesCount")]
    dropped_attributes_count: u32,
    flags: u32,
    #[serde(alias = "trace_id", rename = "traceId")]
    trace_id: String,
    #[serde(alias = "span_id", rename = "spanId")]
    span_id: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    value: Option<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnyValue {
    #[serde(alias = "string_value", rename = "stringValue")]
    string_value: Option<String>,
    #[serde(alias = "bool_value", rename = "boolValue")]
    bool_value: Option<bool>,
    #[serde(
        alias = "int_value",
        rename = "intValue",
        deserialize_with = "opt_i64_any"
    )]
    int_value: Option<i64>,
    #[serde(alias = "double_value", rename = "doubleValue")]
    double_value: Option<f64>,
    #[serde(alias = "array_value", rename = "arrayValue")]
    array_value: Option<ArrayValue>,
    #[serde(alias = "kvlist_value", rename = "kvlistValue")]
    kvlist_value: Option<KvList>,
    #[serde(alias = "bytes_value", rename = "bytesValue")]
    bytes_value: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ArrayValue {
    values: Vec<AnyValue>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct KvList {
    values: Vec<KeyValue>,
}

/// A 64-bit integer written as a JSON string or number.
fn u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| de::Error::custom(format!("{n} is not an unsigned integer"))),
        serde_json::Value::String(s) => s
            .parse()
            .map_err(|_| de::Error::custom(format!("{s:?} is not an unsigned integer"))),
        serde_json::Value::Null => Ok(0),
        other => Err(de::Error::custom(format!("{other} is not an integer"))),
    }
}

fn opt_i64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("{n} is not an integer"))),
        serde_json::Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("{s:?} is not an integer"))),
        serde_json::Value::Null => Ok(None),
        other => Err(de::Error::custom(format!("{other} is not an integer"))),
    }
}

/// Reads an OTLP/JSON `ExportLogsServiceRequest`.
pub fn decode(body: &[u8]) -> Result<proto::ExportLogsServiceRequest, String> {
    let r: Request = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = proto::ExportLogsServiceRequest::default();
    for rl in r.resource_logs {
        let mut scope_logs = Vec::with_capacity(rl.scope_logs.len());
        for sl in rl.scope_logs {
            let mut records = Vec::with_capacity(sl.log_records.len());
            for lr in sl.log_records {
                records.push(proto::LogRecord {
                    time_unix_nano: lr.time_unix_nano,
                    observed_time_unix_nano: lr.observed_time_unix_nano,
                    severity_number: lr.severity_number,
                    severity_text: lr.severity_text,
                    body: lr.body.map(any).transpose()?,
                    attributes: kvs(lr.attributes)?,
                    dropped_attributes_count: lr.dropped_attributes_count,
                    flags: lr.flags,
                    trace_id: hex(&lr.trace_id, "traceId")?,
                    span_id: hex(&lr.span_id, "spanId")?,
                });
            }
            scope_logs.push(proto::ScopeLogs {
                scope: sl
                    .scope
                    .map(|s| {
                        Ok::<_, String>(proto::InstrumentationScope {
                            name: s.name,
                            version: s.version,
                            attributes: kvs(s.attributes)?,
                            dropped_attributes_count: s.dropped_attributes_count,
                        })
                    })
                    .transpose()?,
                log_records: records,
            });
        }
        out.resource_logs.push(proto::ResourceLogs {
            resource: rl
                .resource
                .map(|r| {
                    Ok::<_, String>(proto::Resource {
                        attributes: kvs(r.attributes)?,
                    })
                })
                .transpose()?,
            scope_logs,
        });
    }
    Ok(out)
}

fn kvs(v: Vec<KeyValue>) -> Result<Vec<proto::KeyValue>, String> {
    v.into_iter()
        .map(|kv| {
            Ok(proto::KeyValue {
                key: kv.key,
                value: kv.value.map(any).transpose()?,
            })
        })
        .collect()
}

fn any(v: AnyValue) -> Result<proto::AnyValue, String> {
    use proto::Value as V;
    let value = if let Some(s) = v.string_value {
        Some(V::String(s))
    } else if let Some(b) = v.bool_value {
        Some(V::Bool(b))
    } else if let Some(i) = v.int_value {
        Some(V::Int(i))
    } else if let Some(d) = v.double_value {
        Some(V::Double(d))
    } else if let Some(a) = v.array_value {
        Some(V::Array(proto::ArrayValue {
            values: a.values.into_iter().map(any).collect::<Result<_, _>>()?,
        }))
    } else if let Some(l) = v.kvlist_value {
        Some(V::Kvlist(proto::KeyValueList {
            values: kvs(l.values)?,
        }))
    } else if let Some(b) = v.bytes_value {
        Some(V::Bytes(
            super::base64::decode(&b).ok_or_else(|| format!("bytesValue {b:?} is not base64"))?,
        ))
    } else {
        None
    };
    Ok(proto::AnyValue { value })
}

fn hex(s: &str, field: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("{field} {s:?} is not hex"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("{field} {s:?} is not hex"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_json_mapping() {
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}}]},
          "scopeLogs":[{"scope":{"name":"app.logger","version":"1.0"},"logRecords":[
            {"timeUnixNano":"1795168800000000001","severityNumber":17,"severityText":"ERROR",
             "body":{"stringValue":"boom"},"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
             "attributes":[{"key":"http.status","value":{"intValue":"500"}},{"key":"ok","value":{"boolValue":false}}]}]}]}]}"#;
        let r = decode(body).unwrap();
        let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.time_unix_nano, 1795168800000000001);
        assert_eq!(rec.severity_number, 17);
        assert_eq!(rec.trace_id.len(), 16);
        assert_eq!(
            rec.attributes[0].value.as_ref().unwrap().value,
            Some(proto::Value::Int(500))
        );
        assert!(
            decode(br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#)
                .is_err()
        );
        assert!(decode(b"{").is_err());
    }
}
