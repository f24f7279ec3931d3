//! Label filters: `| level="error"`, `| status >= 500`, `| duration > 10s`,
//! `| size > 1MB`, `| addr = ip("10.0.0.0/8")`, joined with `and`, `,` and `or`.
//!
//! Loki's rules kept here: a number, duration or size filter on a label that is absent
//! drops the line; on a value that does not convert it keeps the line and sets
//! `__error__=LabelFilterErr` (unless an error is already set) with Go's conversion message
//! in `__error_details__`; `and` evaluates both sides (so both may set errors), `or` stops
//! at the first match; an `ip()` filter passes every line that already has an error.
//! String filters compare against `""` when the label is absent; `__error__` is the only
//! error label they see.

use super::convert::{parse_bytes, parse_float, parse_go_duration};
use super::ip::IpMatcher;
use super::label_regex::StrMatch;
use super::labels::{ERROR_LABEL, LabelSet};
use crate::ast::{CmpOp, LabelFilter, MatchOp};

pub(crate) const LABEL_FILTER_ERR: &str = "LabelFilterErr";

#[derive(Debug)]
pub(crate) enum Compiled {
    And(Box<Compiled>, Box<Compiled>),
    Or(Box<Compiled>, Box<Compiled>),
    /// Always passes (`name=~".*"`).
    Noop,
    String {
        name: String,
        m: StrMatch,
    },
    Number {
        name: String,
        op: CmpOp,
        value: f64,
    },
    Duration {
        name: String,
        op: CmpOp,
        value: i64,
    },
    Bytes {
        name: String,
        op: CmpOp,
        value: u64,
    },
    Ip {
        name: String,
        negate: bool,
        ip: IpMatcher,
    },
}

fn cmp<T: PartialOrd>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Neq => a != b,
        CmpOp::Gt => a > b,
        CmpOp::Gte => a >= b,
        CmpOp::Lt => a < b,
        CmpOp::Lte => a <= b,
    }
}

impl Compiled {
    pub(crate) fn new(f: &LabelFilter) -> Result<Compiled, String> {
        Ok(match f {
            LabelFilter::And(a, b) => {
                Compiled::And(Box::new(Compiled::new(a)?), Box::new(Compiled::new(b)?))
            }
            LabelFilter::Or(a, b) => {
                Compiled::Or(Box::new(Compiled::new(a)?), Box::new(Compiled::new(b)?))
            }
            LabelFilter::String(m) => {
                let sm = match m.op {
                    MatchOp::Eq => StrMatch::Equal(m.value.clone()),
                    MatchOp::Neq => StrMatch::Not(Box::new(StrMatch::Equal(m.value.clone()))),
                    MatchOp::Re => StrMatch::label_regex(&m.value)?,
                    MatchOp::Nre => StrMatch::Not(Box::new(StrMatch::label_regex(&m.value)?)),
                };
                if matches!(sm, StrMatch::True) {
                    Compiled::Noop
                } else {
                    Compiled::String {
                        name: m.name.clone(),
                        m: sm,
                    }
                }
            }
            LabelFilter::Number { name, op, value } => Compiled::Number {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            LabelFilter::Duration { name, op, value } => Compiled::Duration {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            LabelFilter::Bytes { name, op, value } => Compiled::Bytes {
                name: name.clone(),
                op: *op,
                value: *value,
            },
            LabelFilter::Ip {
                name,
                negate,
                pattern,
            } => Compiled::Ip {
                name: name.clone(),
                negate: *negate,
                ip: IpMatcher::parse(pattern)?,
            },
        })
    }

    /// Whether the entry passes; may set `__error__`.
    pub(crate) fn test(&self, labels: &mut LabelSet) -> bool {
        match self {
            Compiled::And(a, b) => {
                let l = a.test(labels);
                let r = b.test(labels);
                l && r
            }
            Compiled::Or(a, b) => a.test(labels) || b.test(labels),
            Compiled::Noop => true,
            Compiled::String { name, m } => {
                let v = if name == ERROR_LABEL {
                    labels.err().unwrap_or("")
                } else {
                    labels.lookup(name).unwrap_or("")
                };
                m.matches(v)
            }
            Compiled::Number { name, op, value } => {
                converted(labels, name, parse_float, |v| cmp(*op, v, *value))
            }
            Compiled::Duration { name, op, value } => {
                converted(labels, name, parse_go_duration, |v| cmp(*op, v, *value))
            }
            Compiled::Bytes { name, op, value } => {
                converted(labels, name, parse_bytes, |v| cmp(*op, v, *value))
            }
            Compiled::Ip { name, negate, ip } => {
                if labels.has_err() {
                    return true;
                }
                match labels.lookup(name) {
                    None => false,
                    Some(v) => ip.matches_in(v.as_bytes()) != *negate,
                }
            }
        }
    }

    /// The label names this filter reads, as Loki's `RequiredLabelNames` lists them: a
    /// filter that always passes reads none.
    pub(crate) fn names(&self, out: &mut Vec<String>) {
        match self {
            Compiled::And(a, b) | Compiled::Or(a, b) => {
                a.names(out);
                b.names(out);
            }
            other => out.extend(other.name().map(str::to_string)),
        }
    }

    /// The one label a single filter reads; `None` for `and`/`or` and a filter that
    /// always passes.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Compiled::And(..) | Compiled::Or(..) | Compiled::Noop => None,
            Compiled::String { name, .. }
            | Compiled::Number { name, .. }
            | Compiled::Duration { name, .. }
            | Compiled::Bytes { name, .. }
            | Compiled::Ip { name, .. } => Some(name),
        }
    }
}

fn converted<T>(
    labels: &mut LabelSet,
    name: &str,
    conv: impl Fn(&str) -> Result<T, String>,
    test: impl Fn(T) -> bool,
) -> bool {
    let Some(v) = labels.lookup(name) else {
        return false;
    };
    match conv(v) {
        Ok(x) => test(x),
        Err(e) => {
            if !labels.has_err() {
                labels.set_err(LABEL_FILTER_ERR);
                labels.set_err_details(&e);
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::Matcher;
    use protocol::Labels;

    fn set(parsed: &[(&str, &str)]) -> LabelSet {
        let mut s = LabelSet::for_stream(&Labels::from_pairs([("app", "api")]));
        s.reset();
        for (n, v) in parsed {
            s.set_parsed(n, v);
        }
        s
    }

    #[test]
    fn numbers_durations_bytes() {
        let f = Compiled::new(&LabelFilter::Number {
            name: "status".into(),
            op: CmpOp::Gte,
            value: 500.0,
        })
        .unwrap();
        assert!(f.test(&mut set(&[("status", "503")])));
        assert!(!f.test(&mut set(&[("status", "200")])));
        assert!(!f.test(&mut set(&[])));
        let mut s = set(&[("status", "n/a")]);
        assert!(f.test(&mut s));
        assert_eq!(s.err(), Some("LabelFilterErr"));
        assert_eq!(
            s.err_details(),
            Some("strconv.ParseFloat: parsing \"n/a\": invalid syntax")
        );
        let d = Compiled::new(&LabelFilter::Duration {
            name: "duration".into(),
            op: CmpOp::Gt,
            value: 10_000_000_000,
        })
        .unwrap();
        assert!(d.test(&mut set(&[("duration", "1m52s")])));
        assert!(!d.test(&mut set(&[("duration", "250us")])));
        let b = Compiled::new(&LabelFilter::Bytes {
            name: "size".into(),
            op: CmpOp::Gt,
            value: 1_000_000,
        })
        .unwrap();
        assert!(b.test(&mut set(&[("size", "19.8MB")])));
        assert!(!b.test(&mut set(&[("size", "397KiB")])));
    }

    #[test]
    fn strings_and_logic() {
        let eq = |n: &str, v: &str| LabelFilter::String(Matcher::new(n, MatchOp::Eq, v).unwrap());
        let f = Compiled::new(&LabelFilter::Or(
            Box::new(eq("level", "error")),
            Box::new(eq("level", "warn")),
        ))
        .unwrap();
        assert!(f.test(&mut set(&[("level", "warn")])));
        assert!(!f.test(&mut set(&[("level", "info")])));
        let absent = Compiled::new(&eq("nope", "")).unwrap();
        assert!(absent.test(&mut set(&[])));
        let err = Compiled::new(&eq("__error__", "")).unwrap();
        let mut s = set(&[]);
        assert!(err.test(&mut s));
        s.set_err("JSONParserErr");
        assert!(!err.test(&mut s));
    }

    #[test]
    fn ip_filter() {
        let f = Compiled::new(&LabelFilter::Ip {
            name: "ip".into(),
            negate: false,
            pattern: "192.168.0.0/16".into(),
        })
        .unwrap();
        assert!(f.test(&mut set(&[("ip", "192.168.4.2")])));
        assert!(!f.test(&mut set(&[("ip", "10.0.0.1")])));
        assert!(!f.test(&mut set(&[])));
        let mut s = set(&[("ip", "10.0.0.1")]);
        s.set_err("X");
        assert!(f.test(&mut s));
    }
}
