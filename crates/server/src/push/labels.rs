//! A pushed stream's label string, read once: parsed, checked against Loki's label rules,
//! given its `service_name`, and cached by the exact bytes the client sent, so the next
//! request for the same stream costs one hash lookup.
//!
//! The parser is lenient about label names on purpose: `{x-y="1"}` reads as a name `x-y`
//! so the client learns which name is wrong, rather than getting a syntax error.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use protocol::labels::is_valid_label_name;
use protocol::{Label, Labels, quote};

use super::limits::{IngestLimits, Rejection, reason};

/// A stream's labels as they will be stored, and their printed form for messages.
#[derive(Debug, PartialEq)]
pub struct StreamLabels {
    pub labels: Labels,
    pub text: String,
    /// Whether a label names a level (`level`, `severity`, ...): most streams have none,
    /// and then `detected_level` need not look at the labels for every line.
    pub has_level_label: bool,
}

/// Label strings already read, by their exact bytes. Bounded: when full it is emptied and
/// refilled by the streams still being pushed, which a handful of requests does.
pub struct LabelCache {
    map: Mutex<HashMap<Box<[u8]>, Arc<StreamLabels>>>,
    capacity: usize,
}

impl LabelCache {
    pub fn new(capacity: usize) -> LabelCache {
        LabelCache {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The stream's labels, from the cache or read now. `enrich` adds derived labels
    /// (`service_name`) to a label set read for the first time; `limits` are the rules a
    /// new label set must pass. Only label sets that pass are cached.
    pub fn get(
        &self,
        raw: &[u8],
        limits: &IngestLimits,
        enrich: impl FnOnce(&mut Labels),
    ) -> Result<Arc<StreamLabels>, Rejection> {
        if let Some(s) = self.map.lock().get(raw) {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(read(raw, limits, enrich)?);
        let mut m = self.map.lock();
        if m.len() >= self.capacity {
            m.clear();
        }
        m.insert(raw.into(), Arc::clone(&s));
        Ok(s)
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads and checks a label string, in Loki's order: syntax, at least one label, then the
/// limits on the label set with `service_name` added (it does not count toward the number
/// of names), then each name and value.
fn read(
    raw: &[u8],
    limits: &IngestLimits,
    enrich: impl FnOnce(&mut Labels),
) -> Result<StreamLabels, Rejection> {
    let invalid = |why: &str| {
        Rejection::new(
            reason::INVALID_LABELS,
            format!(
                "error parsing labels '{}' with error: {why}",
                String::from_utf8_lossy(raw)
            ),
        )
    };
    let s = std::str::from_utf8(raw).map_err(|_| invalid("labels are not valid UTF-8"))?;
    let mut pairs = parse(s).map_err(invalid)?;
    // Loki drops empty values: an empty label is the same as an absent one.
    pairs.retain(|(_, v)| !v.is_empty());
    if pairs.is_empty() {
        return Err(Rejection::new(
            reason::MISSING_LABELS,
            "error at least one label pair is required per stream",
        ));
    }
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let dup = pairs
        .windows(2)
        .find(|w| w[0].0 == w[1].0)
        .map(|w| w[0].0.clone());
    if let Some(name) = dup {
        return Err(Rejection::new(
            reason::DUPLICATE_LABEL_NAMES,
            format!(
                "stream '{}' has duplicate label name: '{name}'",
                print(&pairs)
            ),
        ));
    }
    let mut labels = Labels::from_sorted(
        pairs
            .into_iter()
            .map(|(name, value)| Label { name, value })
            .collect(),
    );
    enrich(&mut labels);
    let text = labels.to_string();
    let names = labels.len() - usize::from(labels.get("service_name").is_some());
    if names > limits.max_label_names_per_series {
        return Err(Rejection::new(
            reason::MAX_LABEL_NAMES_PER_SERIES,
            format!(
                "entry for stream '{text}' has {names} label names; limit {}",
                limits.max_label_names_per_series
            ),
        ));
    }
    for l in &labels {
        if l.name.len() > limits.max_label_name_length {
            return Err(Rejection::new(
                reason::LABEL_NAME_TOO_LONG,
                format!("stream '{text}' has label name too long: '{}'", l.name),
            ));
        }
        if l.value.len() > limits.max_label_value_length {
            return Err(Rejection::new(
                reason::LABEL_VALUE_TOO_LONG,
                format!("stream '{text}' has label value too long: '{}'", l.value),
            ));
        }
        if !is_valid_label_name(&l.name) {
            return Err(Rejection::new(
                reason::INVALID_LABELS,
                format!(
                    "stream '{text}' has label name '{}' which is not valid: a label name is letters, digits and _, not starting with a digit",
                    l.name
                ),
            ));
        }
    }
    let has_level_label = logql::detect::LEVEL_FIELDS
        .iter()
        .any(|f| labels.get(f).is_some());
    Ok(StreamLabels {
        labels,
        text,
        has_level_label,
    })
}

fn print(pairs: &[(String, String)]) -> String {
    let mut s = String::from("{");
    for (i, (n, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(n);
        s.push('=');
        quote::quote_into(&mut s, v);
    }
    s.push('}');
    s
}

/// Reads `{name="value", ...}`. A name is anything up to `=` that is not a quote, brace,
/// comma or space; values are Go string literals (`"..."` or `` `...` ``).
pub fn parse(s: &str) -> Result<Vec<(String, String)>, &'static str> {
    let t = s.trim();
    let body = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or("labels must be enclosed in braces, like {app=\"api\"}")?;
    let b = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len()
            && !matches!(b[i], b'=' | b'!' | b'~' | b'"' | b'`' | b',' | b'{' | b'}')
            && !b[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = &body[start..i];
        if name.is_empty() {
            return Err("expected a label name");
        }
        skip_ws(&mut i);
        match b.get(i) {
            Some(b'=') => i += 1,
            Some(b'!' | b'~') => {
                return Err("only = is allowed between a label name and its value");
            }
            _ => return Err("expected = after a label name"),
        }
        if matches!(b.get(i), Some(b'~' | b'=')) {
            return Err("only = is allowed between a label name and its value");
        }
        skip_ws(&mut i);
        let q = *b.get(i).ok_or("expected a quoted label value")?;
        if q != b'"' && q != b'`' {
            return Err("expected a quoted label value");
        }
        let vstart = i;
        i += 1;
        while i < b.len() && b[i] != q {
            if b[i] == b'\\' && q == b'"' {
                i += 1;
            }
            i += 1;
        }
        if i >= b.len() {
            return Err("unterminated label value");
        }
        i += 1;
        let value =
            quote::unquote(&body[vstart..i]).map_err(|_| "invalid escape in a label value")?;
        out.push((name.to_string(), value));
        skip_ws(&mut i);
        if i < b.len() {
            if b[i] != b',' {
                return Err("expected , between labels");
            }
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> IngestLimits {
        IngestLimits::for_tests()
    }

    fn read_plain(s: &str) -> Result<StreamLabels, Rejection> {
        read(s.as_bytes(), &limits(), |_| {})
    }

    #[test]
    fn reads_sorts_and_drops_empty_values() {
        let s = read_plain(r#"{pod="a-1", app = "api", empty="", ns=`x\y`}"#).unwrap();
        assert_eq!(s.text, r#"{app="api", ns="x\\y", pod="a-1"}"#);
    }

    #[test]
    fn names_the_bad_label() {
        let e = read_plain(r#"{app="a", x-y="1"}"#).unwrap_err();
        assert_eq!(e.reason, reason::INVALID_LABELS);
        assert!(
            e.message.starts_with(
                r#"stream '{app="a", x-y="1"}' has label name 'x-y' which is not valid"#
            ),
            "{}",
            e.message
        );
        let e = read_plain(r#"{app="a", app="b"}"#).unwrap_err();
        assert_eq!(
            e.message,
            r#"stream '{app="a", app="b"}' has duplicate label name: 'app'"#
        );
        let e = read_plain("{}").unwrap_err();
        assert_eq!(
            e.message,
            "error at least one label pair is required per stream"
        );
        let e = read_plain(r#"{app="a""#).unwrap_err();
        assert!(
            e.message
                .starts_with(r#"error parsing labels '{app="a"' with error:"#),
            "{}",
            e.message
        );
        let e = read_plain(r#"{app=~"a"}"#).unwrap_err();
        assert!(e.message.contains("only = is allowed"), "{}", e.message);
    }

    #[test]
    fn enforces_loki_limits() {
        let many: Vec<String> = (0..16).map(|i| format!("l{i:02}=\"v\"")).collect();
        let e = read_plain(&format!("{{{}}}", many.join(","))).unwrap_err();
        assert_eq!(e.reason, reason::MAX_LABEL_NAMES_PER_SERIES);
        assert!(
            e.message.ends_with("has 16 label names; limit 15"),
            "{}",
            e.message
        );
        // service_name does not count toward the limit.
        let fifteen = many[..15].join(",");
        let ok = read(format!("{{{fifteen}}}").as_bytes(), &limits(), |l| {
            l.set("service_name", "x")
        });
        assert!(ok.is_ok());
        let long = "v".repeat(2049);
        let e = read_plain(&format!("{{app=\"{long}\"}}")).unwrap_err();
        assert_eq!(e.reason, reason::LABEL_VALUE_TOO_LONG);
        let e = read_plain(&format!("{{{}=\"v\"}}", "n".repeat(1025))).unwrap_err();
        assert_eq!(e.reason, reason::LABEL_NAME_TOO_LONG);
    }

    #[test]
    fn caches_by_raw_bytes() {
        let c = LabelCache::new(2);
        let mut calls = 0;
        for _ in 0..3 {
            c.get(br#"{app="a"}"#, &limits(), |l| {
                calls += 1;
                l.set("service_name", "a")
            })
            .unwrap();
        }
        assert_eq!(calls, 1);
        assert_eq!(c.len(), 1);
        assert!(c.get(br#"{app="#, &limits(), |_| {}).is_err());
        assert_eq!(c.len(), 1);
        c.get(br#"{app="b"}"#, &limits(), |_| {}).unwrap();
        c.get(br#"{app="c"}"#, &limits(), |_| {}).unwrap();
        assert!(c.len() <= 2);
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,64}") {
            let _ = read_plain(&s);
        }

        #[test]
        fn printed_labels_read_back(pairs in proptest::collection::vec(("[a-z_][a-z0-9_]{0,6}", ".{1,8}"), 1..6)) {
            let l = Labels::from_pairs(pairs.iter().map(|(n, v)| (n.clone(), v.clone())));
            let back = read_plain(&l.to_string()).unwrap();
            prop_assert_eq!(back.labels, l);
        }
    }
}
