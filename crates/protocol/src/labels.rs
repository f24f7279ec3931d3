//! A stream's label set: the indexed identity of a stream.

use std::fmt;

use crate::quote;

/// One `name="value"` pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A label set sorted by name, names unique. Loki prints and compares label sets in this
/// order, and a stream's identity is its sorted label set.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

/// Why a label string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("labels {0:?} are not of the form {{name=\"value\", ...}}: {1}")]
    Syntax(String, &'static str),
    #[error("duplicate label name {name:?} in {labels}")]
    Duplicate { name: String, labels: String },
}

impl Labels {
    pub fn new() -> Labels {
        Labels(Vec::new())
    }

    /// Builds a label set from pairs in any order; a later pair with the same name wins.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        v.reverse();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|a, b| a.name == b.name);
        Labels(v)
    }

    /// Builds a label set from labels already sorted by name with unique names.
    pub fn from_sorted(v: Vec<Label>) -> Labels {
        debug_assert!(
            v.windows(2).all(|w| w[0].name < w[1].name),
            "labels not sorted: {v:?}"
        );
        Labels(v)
    }

    /// Parses Loki's label string, `{name="value", other="x"}`, as it arrives in push
    /// requests. Only `=` matchers are allowed; values are Go string literals.
    /// Returns an error for a duplicate name.
    pub fn parse(s: &str) -> Result<Labels, LabelsError> {
        let err = |why| LabelsError::Syntax(s.to_string(), why);
        let t = s.trim();
        let body = t
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(|| err("missing braces"))?;
        let mut out = Vec::new();
        let b = body.as_bytes();
        let mut i = 0;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == b.len() {
                break;
            }
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.' || b[i] >= 0x80)
            {
                i += 1;
            }
            let name = &body[start..i];
            if name.is_empty() {
                return Err(err("expected a label name"));
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i == b.len() || b[i] != b'=' {
                return Err(err("expected = after a label name"));
            }
            i += 1;
            if i < b.len() && (b[i] == b'~' || b[i] == b'=') {
                return Err(err("only = is allowed in a stream's labels"));
            }
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            let q = *b.get(i).ok_or_else(|| err("expected a quoted value"))?;
            if q != b'"' && q != b'`' {
                return Err(err("expected a quoted value"));
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
                return Err(err("unterminated value"));
            }
            i += 1;
            let value =
                quote::unquote(&body[vstart..i]).map_err(|_| err("invalid escape in a value"))?;
            out.push(Label {
                name: name.to_string(),
                value,
            });
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < b.len() {
                if b[i] != b',' {
                    return Err(err("expected , between labels"));
                }
                i += 1;
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(w) = out.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(LabelsError::Duplicate {
                name: w[0].name.clone(),
                labels: s.to_string(),
            });
        }
        Ok(Labels(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// Sets `name` to `value`, replacing an existing value.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => self.0[i].value = value.to_string(),
            Err(i) => self.0.insert(
                i,
                Label {
                    name: name.to_string(),
                    value: value.to_string(),
                },
            ),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        match self.0.binary_search_by(|l| l.name.as_str().cmp(name)) {
            Ok(i) => Some(self.0.remove(i).value),
            Err(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }

    /// A stable 64-bit fingerprint of the label set, the same in every process and version:
    /// it names streams in files on disk.
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }
}

/// Prints `{name="value", other="x"}` with Go quoting, as Loki and Prometheus do.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(
            2 + self
                .0
                .iter()
                .map(|l| l.name.len() + l.value.len() + 5)
                .sum::<usize>(),
        );
        s.push('{');
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&l.name);
            s.push('=');
            quote::quote_into(&mut s, &l.value);
        }
        s.push('}');
        f.write_str(&s)
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Whether `name` is a valid Loki/Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_valid_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let l = Labels::parse(r#"{pod="a-1", app = "api",ns=`x\y`}"#).unwrap();
        assert_eq!(l.to_string(), r#"{app="api", ns="x\\y", pod="a-1"}"#);
        assert_eq!(l.get("pod"), Some("a-1"));
        assert_eq!(Labels::parse("{}").unwrap().len(), 0);
        assert_eq!(Labels::parse(r#"{a="1",}"#).unwrap().len(), 1);
    }

    #[test]
    fn rejects_bad_strings() {
        for s in [
            r#"{a="1""#,
            r#"a="1""#,
            r#"{a=~"1"}"#,
            r#"{a="1" b="2"}"#,
            r#"{="1"}"#,
            r#"{a=1}"#,
        ] {
            assert!(Labels::parse(s).is_err(), "{s}");
        }
        assert!(matches!(
            Labels::parse(r#"{a="1", a="2"}"#),
            Err(LabelsError::Duplicate { .. })
        ));
    }

    #[test]
    fn fingerprint_is_order_free_and_stable() {
        let a = Labels::parse(r#"{a="1", b="2"}"#).unwrap();
        let b = Labels::from_pairs([("b", "2"), ("a", "1")]);
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(
            a.fingerprint(),
            Labels::parse(r#"{a="12"}"#).unwrap().fingerprint()
        );
    }

    #[test]
    fn label_names() {
        assert!(is_valid_label_name("_a9"));
        assert!(!is_valid_label_name("9a"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
    }
}
