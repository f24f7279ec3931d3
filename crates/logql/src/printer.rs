//! Prints a query back as Loki does: [`to_string`] is Loki's canonical one-line form
//! (`{app="api"} | json | status>=500`), [`pretty`] is what `/loki/api/v1/format_query`
//! answers (the one-line form when it fits in 100 characters, else split over lines and
//! indented the way Loki's formatter does).
//!
//! Loki's printing has quirks that clients see and this reproduces: binary operations
//! are parenthesised (`(a + b)`), label filter conjunctions print as `( a , b )`, numeric
//! equality as `==`, `vector(1)` as `vector(1.000000)`, byte sizes in SI units (`1.0MB`),
//! offsets as Go durations (`5m0s`), a label regex that cannot be reduced to literals
//! between backticks. One difference: when Loki splits a long line filter chain over
//! lines it loses `or` alternatives, which changes the query; this keeps them.

mod pretty;

use std::fmt::Write;

use protocol::quote::quote;
use protocol::time::{format_duration, format_go_duration, format_sample_value};

use crate::ast::{
    BinaryExpr, CmpOp, Expr, Grouping, LabelFilter, LabelFmt, LabelSelect, LineFilter,
    LineFilterOp, LineFilterValue, LogExpr, LogRange, MatchOp, Matcher, Parser, SampleExpr, Stage,
    Unwrap, UnwrapConversion, VectorAggregation, VectorOp,
};
use crate::lexer::{range_op_name, vector_op_name};
use crate::parser::binary_op_str;

pub use pretty::pretty;

/// Loki's one-line form of a query.
pub fn to_string(e: &Expr) -> String {
    match e {
        Expr::Log(l) => log_expr(l),
        Expr::Sample(s) => sample(s),
    }
}

pub(crate) fn matcher(m: &Matcher) -> String {
    // Loki's grammar reads only bare names, so names are never quoted.
    let mut s = m.name.clone();
    let _ = write!(s, "{}", m.op);
    s.push_str(&quote(&m.value));
    s
}

pub(crate) fn selector(ms: &[Matcher]) -> String {
    let parts: Vec<String> = ms.iter().map(matcher).collect();
    format!("{{{}}}", parts.join(", "))
}

pub(crate) fn log_expr(l: &LogExpr) -> String {
    let mut s = selector(&l.selector);
    if !l.pipeline.is_empty() {
        s.push(' ');
        let stages: Vec<String> = l.pipeline.iter().map(stage).collect();
        s.push_str(&stages.join(" "));
    }
    s
}

fn line_filter_op(op: LineFilterOp) -> &'static str {
    match op {
        LineFilterOp::Contains => "|=",
        LineFilterOp::NotContains => "!=",
        LineFilterOp::Regex => "|~",
        LineFilterOp::NotRegex => "!~",
        LineFilterOp::Pattern => "|>",
        LineFilterOp::NotPattern => "!>",
    }
}

pub(crate) fn line_filter(f: &LineFilter) -> String {
    let vals: Vec<String> = f
        .values
        .iter()
        .map(|v| match v {
            LineFilterValue::Text(t) => quote(t),
            LineFilterValue::Ip(p) => format!("ip({})", quote(p)),
        })
        .collect();
    format!("{} {}", line_filter_op(f.op), vals.join(" or "))
}

fn extract_params(params: &[crate::ast::ExtractParam]) -> String {
    let v: Vec<String> = params
        .iter()
        .map(|p| format!("{}={}", p.label, quote(&p.expr)))
        .collect();
    v.join(",")
}

fn label_selects(v: &[LabelSelect]) -> String {
    let v: Vec<String> = v
        .iter()
        .map(|s| match s {
            LabelSelect::Name(n) => n.clone(),
            LabelSelect::Matcher(m) => matcher(m),
        })
        .collect();
    v.join(",")
}

pub(crate) fn stage(s: &Stage) -> String {
    match s {
        Stage::LineFilter(f) => line_filter(f),
        Stage::Parser(Parser::Json { params }) if params.is_empty() => "| json".to_string(),
        Stage::Parser(Parser::Json { params }) => format!("| json {}", extract_params(params)),
        Stage::Parser(Parser::Logfmt {
            strict,
            keep_empty,
            params,
        }) => {
            let mut s = String::from("| logfmt");
            if params.is_empty() {
                if *strict {
                    s.push_str(" --strict");
                }
                if *keep_empty {
                    s.push_str(" --keep-empty");
                }
            } else {
                s.push(' ');
                if *strict {
                    s.push_str("--strict ");
                }
                if *keep_empty {
                    s.push_str("--keep-empty ");
                }
                s.push_str(&extract_params(params));
            }
            s
        }
        Stage::Parser(Parser::Regexp(r)) => format!("| regexp {}", quote(r)),
        Stage::Parser(Parser::Pattern(p)) => format!("| pattern {}", quote(p)),
        Stage::Parser(Parser::Unpack) => "| unpack".to_string(),
        Stage::LabelFilter(f) => format!("| {}", label_filter(f)),
        Stage::LineFormat(t) => format!("| line_format {}", quote(t)),
        Stage::LabelFormat(fmts) => {
            let v: Vec<String> = fmts
                .iter()
                .map(|f| match f {
                    LabelFmt::Rename { dst, src } => format!("{dst}={src}"),
                    LabelFmt::Template { dst, template } => format!("{dst}={}", quote(template)),
                })
                .collect();
            format!("| label_format {}", v.join(","))
        }
        Stage::Decolorize => "| decolorize".to_string(),
        Stage::Drop(v) => format!("| drop {}", label_selects(v)),
        Stage::Keep(v) => format!("| keep {}", label_selects(v)),
    }
}

fn cmp_op(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "==",
        CmpOp::Neq => "!=",
        CmpOp::Gt => ">",
        CmpOp::Gte => ">=",
        CmpOp::Lt => "<",
        CmpOp::Lte => "<=",
    }
}

pub(crate) fn label_filter(f: &LabelFilter) -> String {
    match f {
        LabelFilter::And(a, b) => format!("( {} , {} )", label_filter(a), label_filter(b)),
        LabelFilter::Or(a, b) => format!("( {} or {} )", label_filter(a), label_filter(b)),
        LabelFilter::String(m) => {
            if m.op == MatchOp::Re && !label_regex_is_literal(&m.value) {
                let v = if m.value.contains(['`', '\r']) {
                    quote(&m.value)
                } else {
                    format!("`{}`", m.value)
                };
                format!("{}=~{v}", m.name)
            } else {
                matcher(m)
            }
        }
        LabelFilter::Number { name, op, value } => {
            format!("{name}{}{}", cmp_op(*op), format_sample_value(*value))
        }
        LabelFilter::Duration { name, op, value } => {
            format!("{name}{}{}", cmp_op(*op), format_go_duration(*value))
        }
        LabelFilter::Bytes { name, op, value } => {
            format!("{name}{}{}", cmp_op(*op), humanize_bytes(*value))
        }
        LabelFilter::Ip {
            name,
            negate,
            pattern,
        } => format!(
            "{name}{}ip({})",
            if *negate { "!=" } else { "=" },
            quote(pattern)
        ),
    }
}

/// Whether Loki reduces a label regex to literal comparisons (and so prints the matcher
/// quoted); otherwise it prints the regex between backticks. An approximation of Loki's
/// regex simplifier over the shapes people write: literals, `.*`/`.+` around one
/// literal, alternations of distinct literals.
fn label_regex_is_literal(re: &str) -> bool {
    use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};
    fn strip(a: &Ast) -> &Ast {
        match a {
            Ast::Group(g) => strip(&g.ast),
            other => other,
        }
    }
    fn literal(a: &Ast) -> Option<String> {
        match strip(a) {
            Ast::Literal(l) => Some(l.c.to_string()),
            Ast::Concat(c) => c.asts.iter().map(literal).collect(),
            _ => None,
        }
    }
    fn any_star(a: &Ast) -> Option<bool> {
        if let Ast::Repetition(r) = strip(a)
            && matches!(strip(&r.ast), Ast::Dot(_))
        {
            return match &r.op.kind {
                RepetitionKind::ZeroOrMore => Some(true),
                RepetitionKind::OneOrMore => Some(false),
                RepetitionKind::Range(RepetitionRange::AtLeast(0)) => Some(true),
                _ => None,
            };
        }
        None
    }
    fn simple(a: &Ast) -> bool {
        let a = strip(a);
        if matches!(a, Ast::Empty(_)) || literal(a).is_some() || any_star(a).is_some() {
            return true;
        }
        match a {
            Ast::Alternation(alt) => {
                let lits: Option<Vec<String>> = alt.asts.iter().map(literal).collect();
                let Some(lits) = lits else {
                    return false;
                };
                let mut firsts: Vec<char> = lits.iter().filter_map(|l| l.chars().next()).collect();
                let n = firsts.len();
                firsts.sort_unstable();
                firsts.dedup();
                firsts.len() == n && lits.iter().filter(|l| l.chars().count() == 1).count() < 2
            }
            Ast::Concat(c) => {
                // Runs of literal characters count as one literal, as in Go's tree.
                let mut parts: Vec<Option<bool>> = Vec::new(); // None: literal run
                let mut in_literal = false;
                for x in c.asts.iter().map(strip) {
                    match x {
                        Ast::Empty(_) => {}
                        Ast::Literal(_) => {
                            if !in_literal {
                                parts.push(None);
                            }
                            in_literal = true;
                        }
                        other => {
                            in_literal = false;
                            match any_star(other) {
                                Some(true) => parts.push(Some(true)),
                                _ => return false,
                            }
                        }
                    }
                }
                parts.len() <= 3 && parts.iter().filter(|p| p.is_none()).count() == 1
            }
            _ => false,
        }
    }
    match regex_syntax::ast::parse::Parser::new().parse(re) {
        Ok(ast) => simple(&ast),
        Err(_) => false,
    }
}

/// `go-humanize`'s `Bytes` with the space removed, as Loki prints byte filters.
pub(crate) fn humanize_bytes(s: u64) -> String {
    if s < 10 {
        return format!("{s}B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let f = s as f64;
    let e = (f.ln() / 1000f64.ln()).floor() as usize;
    let e = e.min(SIZES.len() - 1);
    let val = (f / 1000f64.powi(e as i32) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1}{}", SIZES[e])
    } else {
        format!("{val:.0}{}", SIZES[e])
    }
}

/// Go's `fmt.Sprint` of a float64: shortest digits, exponent form below 1e-4 and from
/// 1e21 on.
pub(crate) fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    format!("{v}")
}

fn unwrap(u: &Unwrap) -> String {
    let mut s = match u.conversion {
        Some(c) => format!(" | unwrap {}({})", conversion(c), u.label),
        None => format!(" | unwrap {}", u.label),
    };
    for f in &u.post_filters {
        let _ = write!(s, " | {}", label_filter(f));
    }
    s
}

pub(crate) fn conversion(c: UnwrapConversion) -> &'static str {
    match c {
        UnwrapConversion::Bytes => "bytes",
        UnwrapConversion::Duration => "duration",
        UnwrapConversion::DurationSeconds => "duration_seconds",
    }
}

pub(crate) fn log_range(r: &LogRange) -> String {
    let mut s = log_expr(&r.log);
    if let Some(u) = &r.unwrap {
        s.push_str(&unwrap(u));
    }
    let _ = write!(s, "[{}]", format_duration(r.interval));
    if r.offset != 0 {
        let _ = write!(s, " offset {}", format_go_duration(r.offset));
    }
    s
}

/// ` by (a,b)`, ` without (a,b)`, as range aggregations print groupings.
fn grouping(g: &Grouping) -> String {
    format!(
        " {} ({})",
        if g.without { "without" } else { "by" },
        g.labels.join(",")
    )
}

fn is_singleton(g: Option<&Grouping>) -> bool {
    g.is_none_or(|g| !g.without && g.labels.is_empty())
}

fn vector_aggregation(v: &VectorAggregation) -> String {
    let mut s = vector_op_name(v.op).to_string();
    if !is_singleton(v.grouping.as_ref())
        && let Some(g) = &v.grouping
    {
        s.push_str(&grouping(g));
    }
    s.push('(');
    if matches!(v.op, VectorOp::Topk | VectorOp::Bottomk) {
        let _ = write!(s, "{},", v.param.unwrap_or(0.0) as i64);
    }
    s.push_str(&sample(&v.expr));
    s.push(')');
    s
}

fn binary(b: &BinaryExpr) -> String {
    let mut op = binary_op_str(b.op).to_string();
    if b.return_bool {
        op.push_str(" bool");
    }
    if let Some(m) = &b.matching {
        let group = match &m.card {
            crate::ast::Cardinality::OneToOne => String::new(),
            crate::ast::Cardinality::ManyToOne(inc) | crate::ast::Cardinality::OneToMany(inc) => {
                let name = if matches!(m.card, crate::ast::Cardinality::ManyToOne(_)) {
                    "group_left"
                } else {
                    "group_right"
                };
                if inc.is_empty() {
                    name.to_string()
                } else {
                    format!("{name} ({})", inc.join(","))
                }
            }
        };
        if m.on || !m.labels.is_empty() {
            op = format!(
                "{op} {} ({}) {group}",
                if m.on { "on" } else { "ignoring" },
                m.labels.join(",")
            );
        }
    }
    format!("({} {op} {})", sample(&b.lhs), sample(&b.rhs))
}

/// Loki's one-line form of a metric expression.
pub(crate) fn sample(e: &SampleExpr) -> String {
    match e {
        SampleExpr::Range(r) => {
            let mut s = format!("{}(", range_op_name(r.op));
            if let Some(p) = r.param {
                let _ = write!(s, "{},", format_sample_value(p));
            }
            s.push_str(&log_range(&r.range));
            s.push(')');
            if let Some(g) = &r.grouping {
                s.push_str(&grouping(g));
            }
            s
        }
        SampleExpr::Vector(v) => vector_aggregation(v),
        SampleExpr::Binary(b) => binary(b),
        SampleExpr::LabelReplace(l) => format!(
            "label_replace({},{},{},{},{})",
            sample(&l.expr),
            quote(&l.dst),
            quote(&l.replacement),
            quote(&l.src),
            quote(&l.regex)
        ),
        SampleExpr::VectorLiteral(v) => format!("vector({v:.6})"),
        SampleExpr::Literal(v) => go_float(*v),
        SampleExpr::Paren(e) => sample(e),
    }
}

/// Parses `q`; when it parses, checks that both printed forms parse back to a query that
/// prints the same. Panics otherwise: for the fuzz target and property tests.
#[doc(hidden)]
pub fn check_round_trip(q: &str) {
    let Ok(e) = crate::parse(q) else {
        return;
    };
    // `1 % 0` folds to NaN, which prints as `NaN` in Loki too; LogQL cannot write it.
    if let Expr::Sample(s) = &e
        && has_non_finite(s)
    {
        return;
    }
    let one = to_string(&e);
    let back = crate::parse(&one)
        .unwrap_or_else(|err| panic!("{q:?} printed as {one:?}, which does not parse: {err}"));
    assert_eq!(to_string(&back), one, "{q:?} does not print stably");
    let pretty = pretty(&e);
    let back = crate::parse(&pretty)
        .unwrap_or_else(|err| panic!("{q:?} formatted as {pretty:?}, which does not parse: {err}"));
    assert_eq!(
        to_string(&back),
        one,
        "{q:?} formats to {pretty:?}, another query"
    );
}

fn has_non_finite(e: &SampleExpr) -> bool {
    match e {
        SampleExpr::Literal(v) | SampleExpr::VectorLiteral(v) => !v.is_finite(),
        SampleExpr::Range(r) => r.param.is_some_and(|p| !p.is_finite()),
        SampleExpr::Vector(v) => has_non_finite(&v.expr),
        SampleExpr::Binary(b) => has_non_finite(&b.lhs) || has_non_finite(&b.rhs),
        SampleExpr::LabelReplace(l) => has_non_finite(&l.expr),
        SampleExpr::Paren(e) => has_non_finite(e),
    }
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&to_string(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_number_forms() {
        assert_eq!(go_float(2.0), "2");
        assert_eq!(go_float(3.5), "3.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-0.5), "-0.5");
        assert_eq!(humanize_bytes(1_000_000), "1.0MB");
        assert_eq!(humanize_bytes(1024), "1.0kB");
        assert_eq!(humanize_bytes(5), "5B");
        assert_eq!(humanize_bytes(123_456_789), "123MB".replace("123", "124"));
    }

    #[test]
    fn label_regex_printing() {
        assert!(!label_regex_is_literal("5.."));
        assert!(label_regex_is_literal("kube-probe.*"));
        assert!(label_regex_is_literal("ERROR|FATAL"));
        assert!(!label_regex_is_literal("a|b"));
        assert!(label_regex_is_literal(".+"));
    }
}
