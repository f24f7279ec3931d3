//! Line filters: `|=`, `!=`, `|~`, `!~`, `|>`, `!>`, with `or` alternatives and `ip()`.
//!
//! Everything is compiled once. Substrings use a prebuilt `memmem::Finder`; `or`
//! alternatives of substrings one Aho-Corasick automaton; regexes that are only literals
//! (`error`, `(?i)timeout`, `ERROR|FATAL`) become the same substring searches, as Loki
//! simplifies them, and other regexes run on `regex`, which has its own literal
//! prefilters.
//!
//! Loki's quirks kept here: an empty needle (`|= ""`, `|~ ""`) matches every line and
//! disappears from an `or` (`|= "" or "x"` is `|= "x"`); `!=`/`!~`/`!>` with `or` drops a
//! line that matches any alternative; `|~ ".+"` only asks for a non-empty line.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use memchr::memmem;
use regex_syntax::ast::{self, Ast};

use super::ip::IpMatcher;
use super::pattern::Pattern;
use super::regex_go;
use crate::ast::{LineFilter, LineFilterOp, LineFilterValue};

/// A compiled line filter.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    /// Matches every line.
    True,
    /// Matches every line that is not empty.
    Exists,
    Contains(Box<memmem::Finder<'static>>),
    /// Substrings (one or several, any of them), optionally ASCII case-insensitive.
    AnyOf {
        ac: AhoCorasick,
        needles: Vec<String>,
        ci: bool,
    },
    Regex(regex::bytes::Regex),
    Pattern(Pattern),
    Ip(IpMatcher),
    Not(Box<Filter>),
    Or(Vec<Filter>),
}

impl Filter {
    #[inline]
    pub(crate) fn matches(&self, line: &[u8]) -> bool {
        match self {
            Filter::True => true,
            Filter::Exists => !line.is_empty(),
            Filter::Contains(f) => f.find(line).is_some(),
            Filter::AnyOf { ac, .. } => ac.is_match(line),
            Filter::Regex(r) => r.is_match(line),
            Filter::Pattern(p) => p.test(line),
            Filter::Ip(ip) => ip.matches_in(line),
            Filter::Not(f) => !f.matches(line),
            Filter::Or(fs) => fs.iter().any(|f| f.matches(line)),
        }
    }

    /// Builds one `op value or value ...` stage.
    pub(crate) fn compile(lf: &LineFilter) -> Result<Filter, String> {
        let positive = matches!(
            lf.op,
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern
        );
        let mut legs = Vec::with_capacity(lf.values.len());
        for v in &lf.values {
            legs.push(leg(lf.op, v)?);
        }
        if positive {
            // Loki's `or` drops legs that match everything, unless nothing else is left.
            let (trues, rest): (Vec<Filter>, Vec<Filter>) =
                legs.into_iter().partition(|f| matches!(f, Filter::True));
            Ok(match rest.len() {
                0 if !trues.is_empty() => Filter::True,
                1 => rest.into_iter().next().unwrap_or(Filter::True),
                _ => merge_or(rest),
            })
        } else {
            // not (a or b) = not a and not b: a line matching any alternative is dropped.
            Ok(match legs.len() {
                1 => Filter::Not(Box::new(legs.into_iter().next().unwrap_or(Filter::True))),
                _ => Filter::Not(Box::new(merge_or(legs))),
            })
        }
    }
}

/// Merges the substring legs of an `or` into one automaton; other legs stay apart.
fn merge_or(legs: Vec<Filter>) -> Filter {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    let mut rest = Vec::new();
    for l in legs {
        match l {
            Filter::Contains(f) => needles.push(f.needle().to_vec()),
            other => rest.push(other),
        }
    }
    match needles.len() {
        0 => {}
        1 => rest.insert(0, contains(&needles[0])),
        _ => match any_of(&needles, false) {
            Some(f) => rest.insert(0, f),
            None => {
                for n in needles {
                    rest.insert(0, contains(&n));
                }
            }
        },
    }
    if rest.len() == 1 {
        return rest.pop().unwrap_or(Filter::True);
    }
    Filter::Or(rest)
}

fn any_of(needles: &[Vec<u8>], ci: bool) -> Option<Filter> {
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(ci)
        .match_kind(MatchKind::LeftmostFirst)
        .build(needles)
        .ok()?;
    let needles = needles
        .iter()
        .map(|n| String::from_utf8(n.clone()).ok())
        .collect::<Option<Vec<String>>>()?;
    Some(Filter::AnyOf { ac, needles, ci })
}

fn leg(op: LineFilterOp, v: &LineFilterValue) -> Result<Filter, String> {
    let text = match v {
        LineFilterValue::Ip(p) => {
            return match op {
                LineFilterOp::Contains | LineFilterOp::NotContains => {
                    Ok(Filter::Ip(IpMatcher::parse(p)?))
                }
                _ => Err("ip: invalid operation: ip() works only with |= and !=".into()),
            };
        }
        LineFilterValue::Text(t) => t,
    };
    match op {
        LineFilterOp::Contains | LineFilterOp::NotContains => Ok(contains(text.as_bytes())),
        LineFilterOp::Regex | LineFilterOp::NotRegex => regex_filter(text),
        LineFilterOp::Pattern | LineFilterOp::NotPattern => {
            Ok(Filter::Pattern(Pattern::line_filter(text)?))
        }
    }
}

fn contains(needle: &[u8]) -> Filter {
    if needle.is_empty() {
        Filter::True
    } else {
        Filter::Contains(Box::new(memmem::Finder::new(needle).into_owned()))
    }
}

/// A regex line filter, simplified to substring searches when it is only literals.
pub(crate) fn regex_filter(re: &str) -> Result<Filter, String> {
    let translated = regex_go::translate(re);
    let parsed = ast::parse::Parser::new().parse(&translated).ok();
    if let Some(a) = &parsed
        && let Some(f) = simplify(a)
    {
        return Ok(f);
    }
    Ok(Filter::Regex(regex_go::compile_bytes(re)?))
}

/// Loki's regex simplifier, on the syntax tree: an empty regex or `.*` matches all, `.+`
/// any non-empty line, literals and alternations of literals (optionally `(?i)`) are
/// substring searches.
fn simplify(a: &Ast) -> Option<Filter> {
    if is_empty_or_dot_star(a) {
        return Some(Filter::True);
    }
    if is_dot_plus(a) {
        return Some(Filter::Exists);
    }
    if let Some((lit, ci)) = starred_literal(a) {
        if ci && !lit.is_ascii() {
            return None;
        }
        return if ci {
            any_of(&[lit.into_bytes()], true)
        } else {
            Some(contains(lit.as_bytes()))
        };
    }
    let (alts, ci) = literal_alternatives(a)?;
    if alts.iter().any(|l| l.is_empty()) {
        // `a|` matches everything.
        return Some(Filter::True);
    }
    if ci && alts.iter().any(|l| !l.is_ascii()) {
        return None;
    }
    if !ci && alts.len() == 1 {
        return Some(contains(alts[0].as_bytes()));
    }
    let needles: Vec<Vec<u8>> = alts.into_iter().map(String::into_bytes).collect();
    any_of(&needles, ci)
}

fn strip_groups(a: &Ast) -> &Ast {
    match a {
        Ast::Group(g) if !matches!(g.kind, ast::GroupKind::NonCapturing(_)) => strip_groups(&g.ast),
        Ast::Group(g) => match &g.kind {
            ast::GroupKind::NonCapturing(flags) if flags.items.is_empty() => strip_groups(&g.ast),
            _ => a,
        },
        _ => a,
    }
}

fn is_empty_or_dot_star(a: &Ast) -> bool {
    match strip_groups(a) {
        Ast::Empty(_) => true,
        Ast::Repetition(r) => {
            matches!(r.op.kind, ast::RepetitionKind::ZeroOrMore)
                && matches!(strip_groups(&r.ast), Ast::Dot(_))
        }
        _ => false,
    }
}

fn is_dot_plus(a: &Ast) -> bool {
    match strip_groups(a) {
        Ast::Repetition(r) => {
            matches!(r.op.kind, ast::RepetitionKind::OneOrMore)
                && matches!(strip_groups(&r.ast), Ast::Dot(_))
        }
        _ => false,
    }
}

/// The literal alternatives of a regex made only of literals, and whether they compare
/// case-insensitively (`(?i)` at the very start, or a `(?i:...)` group around all).
fn literal_alternatives(a: &Ast) -> Option<(Vec<String>, bool)> {
    let (body, ci) = match strip_groups(a) {
        Ast::Concat(c) if !c.asts.is_empty() => match &c.asts[0] {
            Ast::Flags(f) if only_case_insensitive(&f.flags) => {
                let rest = &c.asts[1..];
                if rest.len() == 1 {
                    (&rest[0], true)
                } else {
                    let mut s = String::new();
                    for x in rest {
                        s.push_str(&literal_text(x)?);
                    }
                    return Some((vec![s], true));
                }
            }
            _ => (strip_groups(a), false),
        },
        Ast::Group(g) => match &g.kind {
            ast::GroupKind::NonCapturing(flags) if only_case_insensitive(flags) => {
                (strip_groups(&g.ast), true)
            }
            _ => return None,
        },
        other => (other, false),
    };
    match strip_groups(body) {
        Ast::Alternation(alt) => {
            let mut out = Vec::with_capacity(alt.asts.len());
            for x in &alt.asts {
                out.push(literal_text(x)?);
            }
            Some((out, ci))
        }
        other => Some((vec![literal_text(other)?], ci)),
    }
}

/// `.*literal.*`, `literal.*`, `.*literal` (optionally `(?i)`): for a line, the same as
/// containing the literal.
fn starred_literal(a: &Ast) -> Option<(String, bool)> {
    let Ast::Concat(c) = strip_groups(a) else {
        return None;
    };
    let (items, ci) = match c.asts.first() {
        Some(Ast::Flags(f)) if only_case_insensitive(&f.flags) => (&c.asts[1..], true),
        _ => (&c.asts[..], false),
    };
    let mut lit = String::new();
    let mut stars = 0;
    let mut seen_lit = false;
    let mut after_lit = false;
    for x in items {
        match x {
            Ast::Literal(l) if !after_lit => {
                lit.push(l.c);
                seen_lit = true;
            }
            _ if is_empty_or_dot_star(x) && !matches!(x, Ast::Empty(_)) => {
                stars += 1;
                if seen_lit {
                    after_lit = true;
                }
            }
            _ => return None,
        }
    }
    (stars > 0 && !lit.is_empty()).then_some((lit, ci))
}

fn only_case_insensitive(flags: &ast::Flags) -> bool {
    flags.items.len() == 1
        && matches!(
            flags.items[0].kind,
            ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive)
        )
}

/// The text of a literal or a concatenation of literals.
fn literal_text(a: &Ast) -> Option<String> {
    match strip_groups(a) {
        Ast::Empty(_) => Some(String::new()),
        Ast::Literal(l) => Some(l.c.to_string()),
        Ast::Concat(c) => {
            let mut s = String::new();
            for x in &c.asts {
                match x {
                    Ast::Literal(l) => s.push(l.c),
                    _ => return None,
                }
            }
            Some(s)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(op: LineFilterOp, vals: &[&str]) -> Filter {
        Filter::compile(&LineFilter {
            op,
            values: vals
                .iter()
                .map(|v| LineFilterValue::Text(v.to_string()))
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn substrings_and_or() {
        let c = f(LineFilterOp::Contains, &["timeout", "refused"]);
        assert!(c.matches(b"upstream timeout"));
        assert!(c.matches(b"connection refused"));
        assert!(!c.matches(b"ok"));
        let n = f(LineFilterOp::NotContains, &["timeout", "refused"]);
        assert!(!n.matches(b"upstream timeout"));
        assert!(n.matches(b"ok"));
        // Empty needles.
        assert!(f(LineFilterOp::Contains, &[""]).matches(b""));
        assert!(!f(LineFilterOp::NotContains, &[""]).matches(b"x"));
        let e = f(LineFilterOp::Contains, &["", "x"]);
        assert!(!e.matches(b"abc"));
        assert!(e.matches(b"axc"));
    }

    #[test]
    fn regex_simplification() {
        assert!(matches!(
            f(LineFilterOp::Regex, &["error"]),
            Filter::Contains(_)
        ));
        assert!(matches!(
            f(LineFilterOp::Regex, &["ERROR|FATAL"]),
            Filter::AnyOf { .. }
        ));
        let ci = f(LineFilterOp::Regex, &["(?i)TIMEOUT"]);
        assert!(matches!(ci, Filter::AnyOf { ci: true, .. }));
        assert!(matches!(
            f(LineFilterOp::Regex, &[".*error.*"]),
            Filter::Contains(_)
        ));
        assert!(f(LineFilterOp::Regex, &["(?i).*error"]).matches(b"an ERROR"));
        assert!(matches!(
            f(LineFilterOp::Regex, &[".*err.*or"]),
            Filter::Regex(_)
        ));
        assert!(ci.matches(b"Upstream Timeout"));
        assert!(matches!(f(LineFilterOp::Regex, &[""]), Filter::True));
        assert!(matches!(f(LineFilterOp::Regex, &[".*"]), Filter::True));
        assert!(matches!(f(LineFilterOp::Regex, &[".+"]), Filter::Exists));
        let r = f(LineFilterOp::Regex, &["blk_-[0-9]+"]);
        assert!(matches!(r, Filter::Regex(_)));
        assert!(r.matches(b"block blk_-6952295868487656571 terminating"));
        assert!(f(LineFilterOp::Regex, &["^$"]).matches(b""));
        assert!(!f(LineFilterOp::Regex, &["^$"]).matches(b"x"));
        assert!(!f(LineFilterOp::NotRegex, &["LOG:.*"]).matches(b"[1] LOG:  checkpoint"));
    }
}
