//! `kiroku logs`' arguments as a LogQL stream selector. A plain name (`web-1`, `shop`) is
//! matched exactly (`pod="web-1"`); anything with other characters is a regular expression
//! matched against the whole value, as LogQL's `=~` does (`'web-.*'` for a deployment's
//! pods). Values are quoted the way Loki reads them, so any name is safe.

use protocol::quote::quote_into;

use crate::error::ClientError;

/// `-n`, the pod argument and `-c`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelector {
    pub namespace: Option<String>,
    pub pod: String,
    pub container: Option<String>,
}

impl PodSelector {
    /// The LogQL selector, for example `{namespace="shop", pod=~"web-.*", container="app"}`.
    pub fn to_logql(&self) -> Result<String, ClientError> {
        let mut s = String::from("{");
        let mut first = true;
        let mut add = |name: &str, op: &str, value: &str| {
            if !first {
                s.push_str(", ");
            }
            first = false;
            s.push_str(name);
            s.push_str(op);
            quote_into(&mut s, value);
        };
        let mut any_required = false;
        for (flag, name, value) in [
            ("-n", "namespace", self.namespace.as_deref()),
            ("the pod", "pod", Some(self.pod.as_str())),
            ("-c", "container", self.container.as_deref()),
        ] {
            let Some(value) = value else { continue };
            match Pattern::read(flag, value)? {
                Pattern::Name => {
                    add(name, "=", value);
                    any_required = true;
                }
                Pattern::Regex { matches_empty } => {
                    // LogQL refuses a selector whose every matcher accepts an empty value; a
                    // pod always has a name, so say so before the user's pattern.
                    if matches_empty && !any_required && name == "pod" {
                        add(name, "=~", ".+");
                    }
                    add(name, "=~", value);
                    any_required |= !matches_empty || name == "pod";
                }
            }
        }
        s.push('}');
        Ok(s)
    }

    /// The selector of one container, exactly, from a stream's labels.
    pub fn exact(namespace: Option<&str>, pod: &str, container: Option<&str>) -> String {
        let mut s = String::from("{");
        if let Some(ns) = namespace {
            s.push_str("namespace=");
            quote_into(&mut s, ns);
            s.push_str(", ");
        }
        s.push_str("pod=");
        quote_into(&mut s, pod);
        if let Some(c) = container {
            s.push_str(", container=");
            quote_into(&mut s, c);
        }
        s.push('}');
        s
    }
}

/// How one argument is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A Kubernetes name: letters, digits, `-`, `.`, `_`; matched exactly.
    Name,
    Regex {
        matches_empty: bool,
    },
}

impl Pattern {
    pub fn read(flag: &str, value: &str) -> Result<Pattern, ClientError> {
        if value.is_empty() {
            return Err(ClientError::Usage(format!(
                "{flag} is empty: give a name or a regular expression"
            )));
        }
        if is_name(value) {
            return Ok(Pattern::Name);
        }
        let re = regex::Regex::new(&format!("^(?:{value})$")).map_err(|e| {
            ClientError::Usage(format!(
                "{flag} {value:?} is neither a name nor a valid regular expression: {}",
                e.to_string().lines().last().unwrap_or_default().trim()
            ))
        })?;
        Ok(Pattern::Regex {
            matches_empty: re.is_match(""),
        })
    }
}

fn is_name(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(ns: Option<&str>, pod: &str, c: Option<&str>) -> Result<String, ClientError> {
        PodSelector {
            namespace: ns.map(str::to_string),
            pod: pod.to_string(),
            container: c.map(str::to_string),
        }
        .to_logql()
    }

    #[test]
    fn names_match_exactly_and_patterns_as_regexes() {
        assert_eq!(sel(None, "web-1", None).unwrap(), r#"{pod="web-1"}"#);
        assert_eq!(
            sel(Some("shop"), "web-.*", Some("app")).unwrap(),
            r#"{namespace="shop", pod=~"web-.*", container="app"}"#
        );
        assert_eq!(
            sel(Some("shop|kube-system"), "api", Some("srv|sidecar")).unwrap(),
            r#"{namespace=~"shop|kube-system", pod="api", container=~"srv|sidecar"}"#
        );
    }

    #[test]
    fn regex_specials_and_quotes_are_escaped_for_logql() {
        assert_eq!(
            sel(None, r#"web-\d+"#, None).unwrap(),
            r#"{pod=~"web-\\d+"}"#
        );
        assert_eq!(sel(None, "a\"b|c", None).unwrap(), r#"{pod=~"a\"b|c"}"#);
    }

    #[test]
    fn patterns_that_match_nothing_in_particular_still_make_a_valid_selector() {
        assert_eq!(sel(None, ".*", None).unwrap(), r#"{pod=~".+", pod=~".*"}"#);
        assert_eq!(
            sel(Some("shop"), ".*", None).unwrap(),
            r#"{namespace="shop", pod=~".*"}"#
        );
    }

    #[test]
    fn bad_patterns_are_refused_with_the_flag_named() {
        let e = sel(None, "web-(", None).unwrap_err().to_string();
        assert!(
            e.starts_with("the pod \"web-(\" is neither a name nor a valid regular expression"),
            "{e}"
        );
        let e = sel(None, "x", Some("")).unwrap_err().to_string();
        assert!(e.contains("-c is empty"), "{e}");
    }

    #[test]
    fn exact_selectors() {
        assert_eq!(
            PodSelector::exact(Some("shop"), "web-1", Some("app")),
            r#"{namespace="shop", pod="web-1", container="app"}"#
        );
    }
}
