//! The functions a LogQL template can call: Go's builtins, Loki's own (`ToUpper`,
//! `regexReplaceAll`, `bytes`, `duration`, `unixToTime`, `alignLeft`, ...) and the subset of
//! sprig Loki enables (`trunc`, `default`, `fromJson`, `addf`, `date`, ...), each with
//! Go's parameter types so that arguments are checked as Go checks them.

use std::borrow::Cow;
use std::rc::Rc;

use super::Data;
use super::cast::{to_float64, to_int64};
use super::decimal::{self, Op};
use super::escape::{b64_decode, b64_encode, html_escape, js_escape, query_escape, query_unescape};
use super::fmt::{sprint, sprintf, sprintln};
use super::gotime::GoTime;
use super::value::{IntKind, Value};
use crate::pipeline::convert::{duration_seconds, parse_bytes, parse_go_duration};

/// A parameter type as Go's reflection checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Str,
    Int,
    Float,
    Time,
    Any,
}

/// How a function is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `and`/`or`: arguments evaluated lazily.
    ShortCircuit,
    Normal,
}

pub(crate) type Impl = for<'a> fn(&[Value<'a>], &'a dyn Data) -> Result<Value<'a>, String>;

pub(crate) struct Func {
    pub(crate) name: &'static str,
    pub(crate) params: &'static [Param],
    pub(crate) variadic: Option<Param>,
    pub(crate) kind: Kind,
    pub(crate) call: Impl,
}

use Param::{Any, Float, Int, Str, Time};

macro_rules! f {
    ($name:literal, [$($p:expr),*], $v:expr, $call:expr) => {
        Func { name: $name, params: &[$($p),*], variadic: $v, kind: Kind::Normal, call: $call }
    };
}

pub(crate) static FUNCS: &[Func] = &[
    // Go's builtins.
    Func {
        name: "and",
        params: &[Any],
        variadic: Some(Any),
        kind: Kind::ShortCircuit,
        call: |a, _| Ok(a.last().cloned().unwrap_or(Value::Nil)),
    },
    Func {
        name: "or",
        params: &[Any],
        variadic: Some(Any),
        kind: Kind::ShortCircuit,
        call: |a, _| Ok(a.last().cloned().unwrap_or(Value::Nil)),
    },
    f!("not", [Any], None, |a, d| Ok(Value::Bool(
        !a[0].truth(d.len())
    ))),
    f!("len", [Any], None, |a, d| {
        Ok(Value::int(match &a[0] {
            Value::Str(s) => s.len() as i64,
            Value::Map(m) => m.len() as i64,
            Value::List(l) => l.len() as i64,
            Value::Labels => d.len() as i64,
            v => return Err(format!("len of type {}", v.type_name())),
        }))
    }),
    f!("index", [Any], Some(Any), index),
    f!("slice", [Any], Some(Any), slice),
    f!("print", [], Some(Any), |a, d| Ok(Value::str(sprint(a, d)))),
    f!("println", [], Some(Any), |a, d| Ok(Value::str(sprintln(
        a, d
    )))),
    f!("printf", [Str], Some(Any), |a, d| {
        Ok(Value::str(sprintf(as_str(&a[0]), &a[1..], d)))
    }),
    f!("eq", [Any], Some(Any), |a, _| {
        if a.len() < 2 {
            return Err("missing argument for comparison".into());
        }
        for b in &a[1..] {
            if compare(&a[0], b)? == std::cmp::Ordering::Equal {
                return Ok(Value::Bool(true));
            }
        }
        Ok(Value::Bool(false))
    }),
    f!("ne", [Any, Any], None, |a, _| {
        Ok(Value::Bool(
            compare(&a[0], &a[1])? != std::cmp::Ordering::Equal,
        ))
    }),
    f!("lt", [Any, Any], None, |a, _| ordered(&a[0], &a[1], |o| o
        .is_lt())),
    f!("le", [Any, Any], None, |a, _| ordered(&a[0], &a[1], |o| o
        .is_le())),
    f!("gt", [Any, Any], None, |a, _| ordered(&a[0], &a[1], |o| o
        .is_gt())),
    f!("ge", [Any, Any], None, |a, _| ordered(&a[0], &a[1], |o| o
        .is_ge())),
    f!("html", [], Some(Any), |a, d| Ok(Value::str(html_escape(
        &eval_args(a, d)
    )))),
    f!("js", [], Some(Any), |a, d| Ok(Value::str(js_escape(
        &eval_args(a, d)
    )))),
    f!("urlquery", [], Some(Any), |a, d| {
        Ok(Value::str(query_escape(&eval_args(a, d))))
    }),
    // Loki's functions.
    f!("ToLower", [Str], None, |a, _| Ok(Value::str(
        as_str(&a[0]).to_lowercase()
    ))),
    f!("ToUpper", [Str], None, |a, _| Ok(Value::str(
        as_str(&a[0]).to_uppercase()
    ))),
    f!("Replace", [Str, Str, Str, Int], None, |a, _| {
        Ok(Value::str(replace_n(
            as_str(&a[0]),
            as_str(&a[1]),
            as_str(&a[2]),
            as_int(&a[3]),
        )))
    }),
    f!("Trim", [Str, Str], None, |a, _| {
        let cut = as_str(&a[1]);
        Ok(sub_str(&a[0], |s| s.trim_matches(|c| cut.contains(c))))
    }),
    f!("TrimLeft", [Str, Str], None, |a, _| {
        let cut = as_str(&a[1]);
        Ok(sub_str(&a[0], |s| {
            s.trim_start_matches(|c| cut.contains(c))
        }))
    }),
    f!("TrimRight", [Str, Str], None, |a, _| {
        let cut = as_str(&a[1]);
        Ok(sub_str(&a[0], |s| s.trim_end_matches(|c| cut.contains(c))))
    }),
    f!("TrimPrefix", [Str, Str], None, |a, _| {
        let p = as_str(&a[1]);
        Ok(sub_str(&a[0], |s| s.strip_prefix(p).unwrap_or(s)))
    }),
    f!("TrimSuffix", [Str, Str], None, |a, _| {
        let p = as_str(&a[1]);
        Ok(sub_str(&a[0], |s| s.strip_suffix(p).unwrap_or(s)))
    }),
    f!("TrimSpace", [Str], None, |a, _| Ok(sub_str(
        &a[0],
        str::trim
    ))),
    f!("regexReplaceAll", [Str, Str, Str], None, |a, _| {
        with_regex(as_str(&a[0]), |re| {
            Value::str(re.replace_all(as_str(&a[1]), as_str(&a[2])).into_owned())
        })
    }),
    f!("regexReplaceAllLiteral", [Str, Str, Str], None, |a, _| {
        with_regex(as_str(&a[0]), |re| {
            Value::str(
                re.replace_all(as_str(&a[1]), regex::NoExpand(as_str(&a[2])))
                    .into_owned(),
            )
        })
    }),
    f!("count", [Str, Str], None, |a, _| {
        with_regex(as_str(&a[0]), |re| {
            Value::int(re.find_iter(as_str(&a[1])).count() as i64)
        })
    }),
    f!("urldecode", [Str], None, |a, _| Ok(Value::str(
        query_unescape(as_str(&a[0]))?
    ))),
    f!("urlencode", [Str], None, |a, _| Ok(Value::str(
        query_escape(as_str(&a[0]))
    ))),
    f!("bytes", [Str], None, |a, _| Ok(Value::Float(
        parse_bytes(as_str(&a[0]))? as f64
    ))),
    f!("duration", [Str], None, |a, _| {
        Ok(Value::Float(duration_seconds(parse_go_duration(as_str(
            &a[0],
        ))?)))
    }),
    f!("duration_seconds", [Str], None, |a, _| {
        Ok(Value::Float(duration_seconds(parse_go_duration(as_str(
            &a[0],
        ))?)))
    }),
    f!("unixEpochMillis", [Time], None, |a, _| {
        Ok(Value::str(as_time(&a[0]).unix_millis().to_string()))
    }),
    f!("unixEpochNanos", [Time], None, |a, _| {
        Ok(Value::str(as_time(&a[0]).unix_nanos().to_string()))
    }),
    f!("toDateInZone", [Str, Str, Str], None, |a, _| {
        // Only UTC is known here; Loki also falls back to UTC for a zone it cannot load.
        Ok(time(
            GoTime::parse(as_str(&a[0]), as_str(&a[2])).unwrap_or_else(|_| GoTime::zero()),
        ))
    }),
    f!("unixToTime", [Str], None, |a, _| unix_to_time(as_str(
        &a[0]
    ))),
    f!("alignLeft", [Int, Str], None, |a, _| Ok(Value::str(align(
        as_int(&a[0]),
        as_str(&a[1]),
        true
    )))),
    f!("alignRight", [Int, Str], None, |a, _| {
        Ok(Value::str(align(as_int(&a[0]), as_str(&a[1]), false)))
    }),
    f!("b64dec", [Str], None, |a, _| Ok(Value::str(b64_decode(
        as_str(&a[0])
    )))),
    f!("__line__", [], None, |_, d| Ok(Value::Str(Cow::Borrowed(
        d.line()
    )))),
    f!("__timestamp__", [], None, |_, d| Ok(time(
        GoTime::from_unix_nanos(d.timestamp())
    ))),
    // sprig.
    f!("b64enc", [Str], None, |a, _| Ok(Value::str(b64_encode(
        as_str(&a[0]).as_bytes()
    )))),
    f!("lower", [Str], None, |a, _| Ok(Value::str(
        as_str(&a[0]).to_lowercase()
    ))),
    f!("upper", [Str], None, |a, _| Ok(Value::str(
        as_str(&a[0]).to_uppercase()
    ))),
    f!("title", [Str], None, |a, _| Ok(Value::str(title(as_str(
        &a[0]
    ))))),
    f!("trunc", [Int, Str], None, |a, _| {
        let (c, s) = (as_int(&a[0]), as_str(&a[1]));
        let len = s.len() as i64;
        Ok(if c < 0 && len + c > 0 {
            Value::str(byte_slice(s, (len + c) as usize, s.len()))
        } else if c >= 0 && len > c {
            Value::str(byte_slice(s, 0, c as usize))
        } else {
            a[1].clone()
        })
    }),
    f!("substr", [Int, Int, Str], None, |a, _| {
        let (start, end, s) = (as_int(&a[0]), as_int(&a[1]), as_str(&a[2]));
        let len = s.len() as i64;
        let range = if start < 0 {
            (0, end)
        } else if end < 0 || end > len {
            (start, len)
        } else {
            (start, end)
        };
        if range.1 > len || range.1 < 0 {
            return Err(format!(
                "runtime error: slice bounds out of range [:{}] with length {len}",
                range.1
            ));
        }
        if range.0 > range.1 {
            return Err(format!(
                "runtime error: slice bounds out of range [{}:{}]",
                range.0, range.1
            ));
        }
        Ok(Value::str(byte_slice(
            s,
            range.0 as usize,
            range.1 as usize,
        )))
    }),
    f!("contains", [Str, Str], None, |a, _| Ok(Value::Bool(
        as_str(&a[1]).contains(as_str(&a[0]))
    ))),
    f!("hasPrefix", [Str, Str], None, |a, _| {
        Ok(Value::Bool(as_str(&a[1]).starts_with(as_str(&a[0]))))
    }),
    f!("hasSuffix", [Str, Str], None, |a, _| {
        Ok(Value::Bool(as_str(&a[1]).ends_with(as_str(&a[0]))))
    }),
    f!("indent", [Int, Str], None, |a, _| Ok(Value::str(indent(
        as_int(&a[0]),
        as_str(&a[1])
    )))),
    f!("nindent", [Int, Str], None, |a, _| {
        Ok(Value::str(format!(
            "\n{}",
            indent(as_int(&a[0]), as_str(&a[1]))
        )))
    }),
    f!("replace", [Str, Str, Str], None, |a, _| {
        Ok(Value::str(
            as_str(&a[2]).replace(as_str(&a[0]), as_str(&a[1])),
        ))
    }),
    f!("repeat", [Int, Str], None, |a, _| {
        let n = as_int(&a[0]);
        if n < 0 {
            return Err("strings: negative Repeat count".into());
        }
        Ok(Value::str(as_str(&a[1]).repeat(n as usize)))
    }),
    f!("trim", [Str], None, |a, _| Ok(sub_str(&a[0], str::trim))),
    f!("trimAll", [Str, Str], None, |a, _| {
        let cut = as_str(&a[0]);
        Ok(sub_str(&a[1], |s| s.trim_matches(|c| cut.contains(c))))
    }),
    f!("trimSuffix", [Str, Str], None, |a, _| {
        let p = as_str(&a[0]);
        Ok(sub_str(&a[1], |s| s.strip_suffix(p).unwrap_or(s)))
    }),
    f!("trimPrefix", [Str, Str], None, |a, _| {
        let p = as_str(&a[0]);
        Ok(sub_str(&a[1], |s| s.strip_prefix(p).unwrap_or(s)))
    }),
    f!("int", [Any], None, |a, _| Ok(Value::int(to_int64(&a[0])))),
    f!("float64", [Any], None, |a, _| Ok(Value::Float(to_float64(
        &a[0]
    )))),
    f!("add", [], Some(Any), |a, _| {
        Ok(Value::int64(
            a.iter().map(to_int64).fold(0i64, i64::wrapping_add),
        ))
    }),
    f!("sub", [Any, Any], None, |a, _| Ok(Value::int64(
        to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))
    ))),
    f!("mul", [Any], Some(Any), |a, _| {
        Ok(Value::int64(
            a.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
        ))
    }),
    f!("div", [Any, Any], None, |a, _| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::int64(x.wrapping_div(y)))
    }),
    f!("mod", [Any, Any], None, |a, _| {
        let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
        if y == 0 {
            return Err("runtime error: integer divide by zero".into());
        }
        Ok(Value::int64(x.wrapping_rem(y)))
    }),
    f!("addf", [], Some(Any), |a, _| float_fold(a, Op::Add, true)),
    f!("subf", [Any], Some(Any), |a, _| float_fold(
        a,
        Op::Sub,
        false
    )),
    f!("mulf", [Any], Some(Any), |a, _| float_fold(
        a,
        Op::Mul,
        false
    )),
    f!("divf", [Any], Some(Any), |a, _| float_fold(
        a,
        Op::Div,
        false
    )),
    f!("max", [Any], Some(Any), |a, _| Ok(Value::int64(
        a.iter().map(to_int64).max().unwrap_or(0)
    ))),
    f!("min", [Any], Some(Any), |a, _| Ok(Value::int64(
        a.iter().map(to_int64).min().unwrap_or(0)
    ))),
    f!("maxf", [Any], Some(Any), |a, _| {
        Ok(Value::Float(
            a.iter().map(to_float64).reduce(go_max).unwrap_or(0.0),
        ))
    }),
    f!("minf", [Any], Some(Any), |a, _| {
        Ok(Value::Float(
            a.iter().map(to_float64).reduce(go_min).unwrap_or(0.0),
        ))
    }),
    f!("ceil", [Any], None, |a, _| Ok(Value::Float(
        to_float64(&a[0]).ceil()
    ))),
    f!("floor", [Any], None, |a, _| Ok(Value::Float(
        to_float64(&a[0]).floor()
    ))),
    f!("round", [Any, Int], Some(Float), |a, _| {
        let round_on = a.get(2).map_or(0.5, to_float64);
        let val = to_float64(&a[0]);
        let pow = 10f64.powf(as_int(&a[1]) as f64);
        let digit = pow * val;
        let div = digit.fract();
        let r = if div >= round_on {
            digit.ceil()
        } else {
            digit.floor()
        };
        Ok(Value::Float(r / pow))
    }),
    f!("fromJson", [Str], None, |a, _| {
        Ok(serde_json::from_str::<serde_json::Value>(as_str(&a[0]))
            .map(|v| Value::from_json(&v))
            .unwrap_or(Value::Nil))
    }),
    f!("date", [Str, Any], None, |a, _| {
        let t = match &a[1] {
            Value::Time(t) => (**t).clone(),
            Value::Int(i, _) => GoTime::from_unix(*i, 0),
            _ => now(),
        };
        Ok(Value::str(t.format(as_str(&a[0]))))
    }),
    f!("toDate", [Str, Str], None, |a, _| {
        Ok(time(
            GoTime::parse(as_str(&a[0]), as_str(&a[1])).unwrap_or_else(|_| GoTime::zero()),
        ))
    }),
    f!("now", [], None, |_, _| Ok(time(now()))),
    f!("unixEpoch", [Time], None, |a, _| Ok(Value::str(
        as_time(&a[0]).secs.to_string()
    ))),
    f!("default", [Any], Some(Any), |a, d| {
        let given = a.get(1);
        Ok(match given {
            Some(g) if !empty(g, d) => g.clone(),
            _ => a[0].clone(),
        })
    }),
];

thread_local! {
    /// Regexes of `regexReplaceAll` and friends, compiled once: the pattern is almost
    /// always a constant of the template, and compiling per line would dominate the cost.
    static REGEXES: std::cell::RefCell<Vec<(String, regex::Regex)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` with the compiled regex (kept by reference: a cloned `Regex` starts with
/// empty search caches).
fn with_regex<T>(src: &str, f: impl FnOnce(&regex::Regex) -> T) -> Result<T, String> {
    REGEXES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let i = match cache.iter().position(|(s, _)| s == src) {
            Some(i) => i,
            None => {
                let r = crate::pipeline::regex_go::compile_str(src)?;
                if cache.len() >= 32 {
                    cache.remove(0);
                }
                cache.push((src.to_string(), r));
                cache.len() - 1
            }
        };
        Ok(f(&cache[i].1))
    })
}

pub(crate) fn lookup(name: &str) -> Option<&'static Func> {
    FUNCS.iter().find(|f| f.name == name)
}

fn time(t: GoTime) -> Value<'static> {
    Value::Time(Rc::new(t))
}

fn now() -> GoTime {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    GoTime::from_unix_nanos(ns)
}

// Arguments have been checked against the parameter types before a call: these read them.
fn as_str<'v>(v: &'v Value<'_>) -> &'v str {
    match v {
        Value::Str(s) => s,
        _ => "",
    }
}

fn as_int(v: &Value<'_>) -> i64 {
    match v {
        Value::Int(i, _) => *i,
        _ => 0,
    }
}

fn as_time(v: &Value<'_>) -> GoTime {
    match v {
        Value::Time(t) => (**t).clone(),
        _ => GoTime::zero(),
    }
}

/// A substring of a string argument, borrowed when the argument is.
fn sub_str<'a>(v: &Value<'a>, f: impl for<'s> Fn(&'s str) -> &'s str) -> Value<'a> {
    match v {
        Value::Str(Cow::Borrowed(s)) => Value::Str(Cow::Borrowed(f(s))),
        Value::Str(Cow::Owned(s)) => Value::str(f(s).to_string()),
        other => other.clone(),
    }
}

/// Bytes `[s, e)` of a string, as Go slices it (possibly splitting a character, which then
/// shows as U+FFFD).
fn byte_slice(st: &str, s: usize, e: usize) -> String {
    String::from_utf8_lossy(&st.as_bytes()[s..e]).into_owned()
}

fn replace_n(s: &str, old: &str, new: &str, n: i64) -> String {
    if n < 0 {
        return s.replace(old, new);
    }
    s.replacen(old, new, n as usize)
}

fn align(count: i64, src: &str, left: bool) -> String {
    let l = src.chars().count() as i64;
    if count < 0 || count == l {
        return src.to_string();
    }
    let pad = count - l;
    if pad > 0 {
        let spaces = " ".repeat(pad as usize);
        return if left {
            format!("{src}{spaces}")
        } else {
            format!("{spaces}{src}")
        };
    }
    if left {
        src.chars().take(count as usize).collect()
    } else {
        src.chars().skip((l - count) as usize).collect()
    }
}

fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// Go's deprecated `strings.Title`.
fn title(s: &str) -> String {
    let sep = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphanumeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if sep(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn unix_to_time(epoch: &str) -> Result<Value<'static>, String> {
    let i: i64 = epoch.parse().map_err(|_| {
        format!(
            "unable to parse time '{epoch}': strconv.ParseInt: parsing {}: invalid syntax",
            protocol::quote::quote(epoch)
        )
    })?;
    let t = match epoch.len() {
        5 => GoTime::from_unix(i * 86_400, 0),
        10 => GoTime::from_unix(i, 0),
        13 => GoTime::from_unix(0, i * 1_000_000),
        16 => GoTime::from_unix(0, i * 1000),
        19 => GoTime::from_unix(0, i),
        _ => return Err(format!("unable to parse time '{epoch}': %!w(<nil>)")),
    };
    Ok(time(t))
}

/// The text/template escapers' argument handling: one string is taken as is, anything
/// else is `fmt.Sprint`ed.
fn eval_args(a: &[Value<'_>], d: &dyn Data) -> String {
    if let [Value::Str(s)] = a {
        return s.to_string();
    }
    sprint(a, d)
}

fn index<'a>(a: &[Value<'a>], d: &dyn Data) -> Result<Value<'a>, String> {
    let mut cur = a[0].clone();
    for ix in &a[1..] {
        cur = match (&cur, ix) {
            (Value::Map(m), Value::Str(k)) => m
                .iter()
                .find(|(n, _)| n == k.as_ref())
                .map_or(Value::Nil, |(_, v)| v.clone()),
            (Value::Labels, Value::Str(k)) => Value::str(d.get(k).unwrap_or_default().to_string()),
            (Value::Map(_) | Value::Labels, other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ));
            }
            (Value::List(l), Value::Int(i, _)) => {
                if *i < 0 || *i as usize >= l.len() {
                    return Err(format!("index out of range: {i}"));
                }
                l[*i as usize].clone()
            }
            (Value::Str(s), Value::Int(i, _)) => {
                if *i < 0 || *i as usize >= s.len() {
                    return Err(format!("index out of range: {i}"));
                }
                Value::Int(i64::from(s.as_bytes()[*i as usize]), IntKind::Uint8)
            }
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (c, _) => return Err(format!("can't index item of type {}", c.type_name())),
        };
    }
    Ok(cur)
}

fn slice<'a>(a: &[Value<'a>], _: &dyn Data) -> Result<Value<'a>, String> {
    let idx: Vec<i64> = a[1..].iter().map(as_int).collect();
    let len = match &a[0] {
        Value::Str(s) => s.len() as i64,
        Value::List(l) => l.len() as i64,
        v => return Err(format!("can't slice item of type {}", v.type_name())),
    };
    if idx.len() > 3 {
        return Err(format!("too many slice indexes: {}", idx.len()));
    }
    let start = idx.first().copied().unwrap_or(0);
    let end = idx.get(1).copied().unwrap_or(len);
    if start < 0 || end > len || start > end {
        return Err(format!("index out of range: {start}"));
    }
    Ok(match &a[0] {
        Value::Str(s) => Value::str(byte_slice(s, start as usize, end as usize)),
        Value::List(l) => Value::List(Rc::new(l[start as usize..end as usize].to_vec())),
        _ => Value::Nil,
    })
}

#[derive(PartialEq)]
enum Basic {
    Bool,
    Int,
    Float,
    Str,
}

fn basic(v: &Value<'_>) -> Option<Basic> {
    match v {
        Value::Bool(_) => Some(Basic::Bool),
        Value::Int(_, IntKind::Uint8) | Value::Int(..) => Some(Basic::Int),
        Value::Float(_) => Some(Basic::Float),
        Value::Str(_) => Some(Basic::Str),
        _ => None,
    }
}

/// Go's template comparison: basic kinds only, both sides of the same kind.
fn compare(a: &Value<'_>, b: &Value<'_>) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    let (ka, kb) = (basic(a), basic(b));
    if ka.is_none() || kb.is_none() {
        if matches!((a, b), (Value::Nil, Value::Nil)) {
            return Ok(Ordering::Equal);
        }
        if matches!(a, Value::Nil) || matches!(b, Value::Nil) {
            return Err("incompatible types for comparison".into());
        }
        return Err("invalid type for comparison".into());
    }
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x, _), Value::Int(y, _)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Less),
        (Value::Str(x), Value::Str(y)) => x.cmp(y),
        _ => Ordering::Less,
    })
}

fn ordered<'a>(
    a: &Value<'_>,
    b: &Value<'_>,
    f: impl Fn(std::cmp::Ordering) -> bool,
) -> Result<Value<'a>, String> {
    if matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)) {
        return Err("invalid type for comparison".into());
    }
    if let (Value::Float(x), Value::Float(y)) = (a, b)
        && (x.is_nan() || y.is_nan())
    {
        return Ok(Value::Bool(false));
    }
    Ok(Value::Bool(f(compare(a, b)?)))
}

/// sprig's `empty`, for `default`.
fn empty(v: &Value<'_>, d: &dyn Data) -> bool {
    !v.truth(d.len()) && !matches!(v, Value::Time(_))
}

fn float_fold<'a>(a: &[Value<'_>], op: Op, from_zero: bool) -> Result<Value<'a>, String> {
    let mut vals: Vec<f64> = Vec::with_capacity(a.len() + 1);
    if from_zero {
        vals.push(0.0);
    }
    vals.extend(a.iter().map(to_float64));
    Ok(Value::Float(decimal::fold(&vals, op)?))
}

/// Go's `math.Max`/`math.Min` (NaN wins, and -0 < +0).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { b } else { a };
    }
    a.max(b)
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        return f64::NAN;
    }
    if a == 0.0 && b == 0.0 {
        return if a.is_sign_negative() { a } else { b };
    }
    a.min(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(b64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(b64_decode("aGVsbG8"), "hello");
        assert_eq!(b64_decode("aGVsbG8="), "hello");
        assert_eq!(b64_decode("!!!!"), "illegal base64 data at input byte 0");
        assert_eq!(query_escape("a b/c?"), "a+b%2Fc%3F");
        assert_eq!(query_unescape("a+b%2Fc").unwrap(), "a b/c");
        assert!(query_unescape("%zz").is_err());
        assert_eq!(title("hello wORLD-x"), "Hello WORLD-X");
        assert_eq!(align(5, "ab", true), "ab   ");
        assert_eq!(align(1, "ab", false), "b");
        assert_eq!(to_int64(&Value::str("12.7")), 12);
        assert_eq!(to_int64(&Value::str("0x1f")), 31);
        assert_eq!(to_int64(&Value::str("010")), 8);
        assert_eq!(to_int64(&Value::str("abc")), 0);
        assert_eq!(to_float64(&Value::str("2.5")), 2.5);
        assert_eq!(indent(2, "a\nb"), "  a\n  b");
    }
}
