//! Test support for Loki conformance: loads the recorded cases and data set in
//! `testdata/conformance` and compares an answer with Loki's under the rules of that
//! folder's README (statuses decide errors; stream and series sets compare as sets;
//! numbers within 1e-9; `ties`, `approx` and `detected` modes).
//!
//! It does not send requests: the engine's in-process test and the server's HTTP test
//! each replay [`cases`] their own way and hand the answer to [`compare`].
//!
//! Start reading from [`Case`], [`compare`] and [`PushStream`].

mod compare;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use compare::compare;

/// One recorded request and Loki's answer.
#[derive(Debug, Clone)]
pub struct Case {
    pub id: String,
    /// `/loki/api/v1/query_range`, ...
    pub path: String,
    /// Query parameters in order; a name may repeat (`match[]`).
    pub params: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// `ties`, `approx`, `detected`, or `None` for exact.
    pub compare: Option<String>,
    pub status: u16,
    /// Loki's body: JSON (with `data.stats` removed) or, for errors, the text.
    pub body: Value,
}

impl Case {
    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A request header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One stream of the data set, as pushed.
#[derive(Debug, Clone)]
pub struct PushStream {
    /// The stream's labels as pushed (before Loki adds `service_name`).
    pub labels: Vec<(String, String)>,
    pub entries: Vec<PushEntry>,
    /// `{"streams":[<this stream>]}`: the body to push it with, one stream per request as
    /// Loki's recording did.
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct PushEntry {
    /// Unix nanoseconds.
    pub ts: i64,
    pub line: String,
    pub metadata: Vec<(String, String)>,
}

/// Why the recorded files could not be read.
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LoadError {}

/// `testdata/conformance` of this repository.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/conformance")
}

fn read(path: &Path) -> Result<String, LoadError> {
    std::fs::read_to_string(path)
        .map_err(|e| LoadError(format!("cannot read {}: {e}", path.display())))
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|p| {
                let p = p.as_array()?;
                Some((
                    p.first()?.as_str()?.to_string(),
                    p.get(1)?.as_str()?.to_string(),
                ))
            })
            .collect(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every recorded case, in file order.
pub fn cases() -> Result<Vec<Case>, LoadError> {
    cases_from(&data_dir().join("cases.jsonl"))
}

/// The cases of a `cases.jsonl` file.
pub fn cases_from(path: &Path) -> Result<Vec<Case>, LoadError> {
    let text = read(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| LoadError(format!("{}:{}: {e}", path.display(), i + 1)))?;
        let s = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        out.push(Case {
            id: s("id"),
            path: s("path"),
            params: pairs(v.get("params").unwrap_or(&Value::Null)),
            headers: pairs(v.get("headers").unwrap_or(&Value::Null)),
            compare: v.get("compare").and_then(Value::as_str).map(str::to_string),
            status: v.get("status").and_then(Value::as_u64).unwrap_or(0) as u16,
            body: v.get("body").cloned().unwrap_or(Value::Null),
        });
    }
    Ok(out)
}

/// The data set, stream by stream.
pub fn push_data() -> Result<Vec<PushStream>, LoadError> {
    push_data_from(&data_dir().join("push.json"))
}

pub fn push_data_from(path: &Path) -> Result<Vec<PushStream>, LoadError> {
    let v: Value = serde_json::from_str(&read(path)?)
        .map_err(|e| LoadError(format!("{}: {e}", path.display())))?;
    let bad = |what: &str| LoadError(format!("{}: {what}", path.display()));
    let streams = v
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no streams"))?;
    let mut out = Vec::new();
    for s in streams {
        let labels = pairs(s.get("stream").unwrap_or(&Value::Null));
        let mut entries = Vec::new();
        for e in s
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("a stream has no values"))?
        {
            let ts = e
                .get(0)
                .and_then(Value::as_str)
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| bad("an entry has no timestamp"))?;
            let line = e
                .get(1)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let metadata = e.get(2).map(pairs).unwrap_or_default();
            entries.push(PushEntry { ts, line, metadata });
        }
        let body = serde_json::json!({ "streams": [s] }).to_string();
        out.push(PushStream {
            labels,
            entries,
            body,
        });
    }
    Ok(out)
}
