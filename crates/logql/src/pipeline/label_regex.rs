//! String matching of label values for label filters (`| name=~"re"`), as Loki does it.
//!
//! Loki does not run every label regex: it first "simplifies" literal-only shapes into
//! equality and substring tests, on the tree Go's regex parser builds. Several of those
//! rewrites do not keep the regex's meaning, and the answers show it:
//!
//! - a literal with `.*` on one side (`al.*`, `.*al`) becomes a substring test, so
//!   `name=~"al.*"` also matches `prealpha`;
//! - Go's parser factors alternatives that share a prefix (`warn|warning` is
//!   `warn(?:|ing)`), and the factored form becomes substring tests too;
//! - an empty alternative is dropped (`foo|` matches only `foo`).
//!
//! (grafana/loki#14433 and #23892 track this as a bug; until Loki changes, the same query
//! must give the same lines.) Everything else is a regex anchored at both ends, without
//! `(?s)`.

use memchr::memmem;
use regex_syntax::ast::{self, Ast};

use super::regex_go;

/// How a label value is tested.
#[derive(Debug, Clone)]
pub(crate) enum StrMatch {
    True,
    /// Any non-empty value.
    Exists,
    Equal(String),
    /// Equal ignoring ASCII case; the needle is lowercase.
    EqualCi(String),
    Contains(Box<memmem::Finder<'static>>),
    /// Contains ignoring ASCII case; the needle is lowercase.
    ContainsCi(String),
    Regex(regex::Regex),
    Or(Vec<StrMatch>),
    Not(Box<StrMatch>),
}

impl StrMatch {
    pub(crate) fn matches(&self, v: &str) -> bool {
        match self {
            StrMatch::True => true,
            StrMatch::Exists => !v.is_empty(),
            StrMatch::Equal(s) => v == s,
            StrMatch::EqualCi(s) => v.len() == s.len() && v.eq_ignore_ascii_case(s),
            StrMatch::Contains(f) => f.find(v.as_bytes()).is_some(),
            StrMatch::ContainsCi(s) => contains_ci(v.as_bytes(), s.as_bytes()),
            StrMatch::Regex(r) => r.is_match(v),
            StrMatch::Or(ms) => ms.iter().any(|m| m.matches(v)),
            StrMatch::Not(m) => !m.matches(v),
        }
    }

    /// A `=~` label filter.
    pub(crate) fn label_regex(re: &str) -> Result<StrMatch, String> {
        let translated = regex_go::translate(re);
        if let Ok(a) = ast::parse::Parser::new().parse(&translated)
            && let Some(m) = simplify(&a)
        {
            return Ok(m);
        }
        regex::Regex::new(&format!("^(?:{translated})$"))
            .map(StrMatch::Regex)
            .map_err(|e| format!("error parsing regexp {re:?}: {e}"))
    }
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return true;
    }
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn contains(s: &str, ci: bool) -> StrMatch {
    if ci {
        StrMatch::ContainsCi(s.to_ascii_lowercase())
    } else if s.is_empty() {
        StrMatch::True
    } else {
        StrMatch::Contains(Box::new(memmem::Finder::new(s.as_bytes()).into_owned()))
    }
}

fn equal(s: &str, ci: bool) -> StrMatch {
    if ci {
        StrMatch::EqualCi(s.to_ascii_lowercase())
    } else {
        StrMatch::Equal(s.to_string())
    }
}

/// Loki's `or`: legs that match everything are dropped unless nothing else is left.
fn or(legs: Vec<StrMatch>) -> StrMatch {
    let mut rest: Vec<StrMatch> = legs
        .into_iter()
        .filter(|l| !matches!(l, StrMatch::True))
        .collect();
    match rest.len() {
        0 => StrMatch::True,
        1 => rest.pop().unwrap_or(StrMatch::True),
        _ => StrMatch::Or(rest),
    }
}

/// An alternation as Go's parser leaves it after factoring literal branches.
#[derive(Debug, Clone, PartialEq)]
enum GoAlt {
    Empty,
    Lit(String),
    /// Single characters collapsed into a class: not simplifiable.
    Class,
    /// `prefix(?:alt|alt...)`; the inner list has two or more items, or one `Class`.
    Concat(String, Vec<GoAlt>),
}

fn common_prefix(a: &str, b: &str, ci: bool) -> usize {
    let mut n = 0;
    for (x, y) in a.chars().zip(b.chars()) {
        let same = if ci {
            x.eq_ignore_ascii_case(&y)
        } else {
            x == y
        };
        if !same {
            break;
        }
        n += x.len_utf8();
    }
    n
}

/// Go's `factor` for alternations of literals (rounds 1, 3 and 4).
fn go_factor(branches: &[String], ci: bool) -> Vec<GoAlt> {
    // Round 1: common literal prefixes of consecutive branches.
    let mut out = Vec::new();
    let mut start = 0;
    let mut prefix_len = 0;
    for i in 0..=branches.len() {
        if i < branches.len() && i > start {
            let same = common_prefix(&branches[start][..prefix_len], &branches[i], ci);
            if same > 0 {
                prefix_len = same;
                continue;
            }
        }
        if i > start {
            if i == start + 1 {
                let b = &branches[start];
                out.push(if b.is_empty() {
                    GoAlt::Empty
                } else {
                    GoAlt::Lit(b.clone())
                });
            } else {
                let prefix = branches[start][..prefix_len].to_string();
                let suffixes: Vec<String> = branches[start..i]
                    .iter()
                    .map(|b| b[prefix_len..].to_string())
                    .collect();
                let inner = go_factor(&suffixes, ci);
                out.push(GoAlt::Concat(prefix, inner));
            }
        }
        start = i;
        prefix_len = branches.get(i).map_or(0, String::len);
    }
    // Round 3: runs of single characters become a class.
    let single =
        |a: &GoAlt| matches!(a, GoAlt::Lit(s) if s.chars().count() == 1) || *a == GoAlt::Class;
    let mut merged: Vec<GoAlt> = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let mut j = i;
        while j < out.len() && single(&out[j]) {
            j += 1;
        }
        if j - i >= 2 {
            merged.push(GoAlt::Class);
            i = j;
        } else {
            merged.push(out[i].clone());
            i += 1;
        }
    }
    // Round 4: runs of empty matches become one.
    merged.dedup_by(|a, b| *a == GoAlt::Empty && *b == GoAlt::Empty);
    merged
}

/// Loki's simplifier on a factored alternation, for label values. `None`: use the regex.
fn simplify_alternation(alts: &[GoAlt], ci: bool) -> Option<StrMatch> {
    if alts.len() == 1 {
        return simplify_alt(&alts[0], ci);
    }
    let mut legs = Vec::with_capacity(alts.len());
    for a in alts {
        legs.push(simplify_alt(a, ci)?);
    }
    Some(or(legs))
}

fn simplify_alt(a: &GoAlt, ci: bool) -> Option<StrMatch> {
    match a {
        GoAlt::Empty => Some(StrMatch::True),
        GoAlt::Lit(s) => Some(equal(s, ci)),
        GoAlt::Class => None,
        GoAlt::Concat(prefix, inner) => concat_alternate(prefix, inner, ci).map(or),
    }
}

/// `literal(alt|alt)`: every alternative becomes a substring test of the literal plus it.
fn concat_alternate(prefix: &str, alts: &[GoAlt], ci: bool) -> Option<Vec<StrMatch>> {
    if alts.len() == 1 {
        // A single item is not an alternation (a collapsed class).
        return None;
    }
    let mut legs = Vec::new();
    for a in alts {
        match a {
            GoAlt::Empty => legs.push(contains(prefix, ci)),
            GoAlt::Lit(s) => legs.push(contains(&format!("{prefix}{s}"), ci)),
            GoAlt::Class => return None,
            GoAlt::Concat(p2, inner) => {
                legs.extend(concat_alternate(&format!("{prefix}{p2}"), inner, ci)?);
            }
        }
    }
    Some(legs)
}

fn strip_capture(a: &Ast) -> &Ast {
    match a {
        Ast::Group(g) => match &g.kind {
            ast::GroupKind::NonCapturing(f) if !f.items.is_empty() => a,
            _ => strip_capture(&g.ast),
        },
        _ => a,
    }
}

fn is_dot_star(a: &Ast) -> bool {
    matches!(strip_capture(a), Ast::Repetition(r)
        if matches!(r.op.kind, ast::RepetitionKind::ZeroOrMore)
            && matches!(*r.ast, Ast::Dot(_)))
}

fn is_dot_plus(a: &Ast) -> bool {
    matches!(strip_capture(a), Ast::Repetition(r)
        if matches!(r.op.kind, ast::RepetitionKind::OneOrMore)
            && matches!(*r.ast, Ast::Dot(_)))
}

fn only_ci(f: &ast::Flags) -> bool {
    f.items.len() == 1
        && matches!(
            f.items[0].kind,
            ast::FlagsItemKind::Flag(ast::Flag::CaseInsensitive)
        )
}

/// The text of a literal-only expression.
fn literal(a: &Ast) -> Option<String> {
    match strip_capture(a) {
        Ast::Empty(_) => Some(String::new()),
        Ast::Literal(l) => Some(l.c.to_string()),
        Ast::Concat(c) => c
            .asts
            .iter()
            .map(|x| match x {
                Ast::Literal(l) => Some(l.c),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn literal_branches(a: &Ast) -> Option<Vec<String>> {
    match strip_capture(a) {
        Ast::Alternation(alt) => alt.asts.iter().map(literal).collect(),
        _ => None,
    }
}

/// Items of a concatenation as Go sees them: adjacent literals merged.
enum Item {
    Lit(String),
    Star,
    Alt(Vec<GoAlt>),
}

fn simplify(a: &Ast) -> Option<StrMatch> {
    // `(?i)` at the very start applies to everything after it.
    let (items, ci): (&[Ast], bool) = match a {
        Ast::Concat(c) if matches!(c.asts.first(), Some(Ast::Flags(f)) if only_ci(&f.flags)) => {
            (&c.asts[1..], true)
        }
        Ast::Alternation(alt) => {
            let first_ci = matches!(&alt.asts[0], Ast::Concat(c)
                if matches!(c.asts.first(), Some(Ast::Flags(f)) if only_ci(&f.flags)));
            if first_ci {
                let mut branches = Vec::new();
                for (i, b) in alt.asts.iter().enumerate() {
                    let b = match (i, b) {
                        (0, Ast::Concat(c)) => {
                            let mut s = String::new();
                            for x in &c.asts[1..] {
                                s.push_str(&literal(x)?);
                            }
                            s
                        }
                        _ => literal(b)?,
                    };
                    branches.push(b);
                }
                return ascii_only(&branches, true)
                    .and_then(|_| simplify_alternation(&go_factor(&branches, true), true));
            }
            (std::slice::from_ref(a), false)
        }
        _ => (std::slice::from_ref(a), false),
    };
    if items.len() == 1 {
        let x = &items[0];
        if matches!(strip_capture(x), Ast::Empty(_)) || is_dot_star(x) {
            return Some(StrMatch::True);
        }
        if is_dot_plus(x) {
            return Some(StrMatch::Exists);
        }
        if let Some(branches) = literal_branches(x) {
            ascii_only(&branches, ci)?;
            return simplify_alternation(&go_factor(&branches, ci), ci);
        }
        if let Some(l) = literal(x) {
            ascii_only(std::slice::from_ref(&l), ci)?;
            return Some(equal(&l, ci));
        }
    }
    // A concatenation: at most three pieces, one literal, `.*` around it, or a literal
    // followed by an alternation of literals.
    let flat: Vec<&Ast> = items
        .iter()
        .flat_map(|x| match strip_capture(x) {
            Ast::Concat(c) if std::ptr::eq(x, strip_capture(x)) => c.asts.iter().collect(),
            _ => vec![x],
        })
        .collect();
    let mut go_items: Vec<Item> = Vec::new();
    for x in flat {
        match x {
            Ast::Empty(_) => {}
            Ast::Literal(l) => match go_items.last_mut() {
                Some(Item::Lit(s)) => s.push(l.c),
                _ => go_items.push(Item::Lit(l.c.to_string())),
            },
            _ if is_dot_star(x) => go_items.push(Item::Star),
            Ast::Group(_) => {
                if let Some(branches) = literal_branches(x) {
                    ascii_only(&branches, ci)?;
                    go_items.push(Item::Alt(go_factor(&branches, ci)));
                } else {
                    go_items.push(Item::Lit(literal(x)?));
                }
            }
            _ => return None,
        }
    }
    if go_items.len() > 3 {
        return None;
    }
    let mut base: Option<String> = None;
    let mut legs: Vec<StrMatch> = Vec::new();
    for it in &go_items {
        match it {
            Item::Lit(s) => {
                if base.is_some() {
                    return None;
                }
                ascii_only(std::slice::from_ref(s), ci)?;
                base = Some(s.clone());
            }
            Item::Alt(alts) => {
                let b = base.as_deref()?;
                if alts.len() == 1 {
                    return None;
                }
                legs.extend(concat_alternate(b, alts, ci)?);
            }
            Item::Star => {}
        }
    }
    if !legs.is_empty() {
        return Some(or(legs));
    }
    if let [Item::Lit(l)] = go_items.as_slice() {
        // A plain literal (with `(?i)`): Go has a literal node, compared whole.
        return Some(equal(l, ci));
    }
    base.map(|b| contains(&b, ci))
}

fn ascii_only(v: &[String], ci: bool) -> Option<()> {
    (!ci || v.iter().all(|s| s.is_ascii())).then_some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, v: &str) -> bool {
        StrMatch::label_regex(re).unwrap().matches(v)
    }

    #[test]
    fn anchored_regexes() {
        assert!(m("5..", "503"));
        assert!(!m("5..", "1503"));
        assert!(m("ERROR|FATAL", "FATAL"));
        assert!(!m("ERROR|FATAL", "xFATAL"));
        assert!(m("kube-probe.*", "kube-probe/1.32"));
        assert!(m("(?i)hello", "HeLLo"));
        assert!(!m("(?i)hello", "hello there"));
        assert!(m(".*", ""));
        assert!(m(".+", "x"));
        assert!(!m(".+", ""));
        assert!(m("400|404", "404"));
        assert!(!m("400|404", "4040"));
        assert!(m("[a-z]+", "abc"));
        assert!(!m("[a-z]+", "abc1"));
    }

    #[test]
    fn lokis_substring_shapes() {
        // One-sided stars are substring tests in Loki.
        assert!(m("al.*", "prealpha"));
        assert!(m(".*al", "alpha"));
        assert!(m("(?i)foo.*", "xFOOy"));
        // Factored alternations too.
        assert!(m("warn|warning", "prewarn"));
        assert!(m("prod|preprod", "nonprod"));
        assert!(m("bar|buzz", "xbuzzy"));
        // Without a shared prefix, alternatives compare whole values.
        assert!(!m("foo|bar", "xfoo"));
        // An empty alternative is dropped.
        assert!(m("foo|", "foo"));
        assert!(!m("foo|", ""));
        // Single characters become a class: a real, anchored regex.
        assert!(!m("a|b", "xa"));
        assert!(m("a|b", "b"));
    }

    #[test]
    fn factoring() {
        let f = go_factor(&["foo".into(), "foobar".into(), "fox".into()], false);
        assert_eq!(
            f,
            vec![GoAlt::Concat(
                "fo".into(),
                vec![
                    GoAlt::Concat("o".into(), vec![GoAlt::Empty, GoAlt::Lit("bar".into())]),
                    GoAlt::Lit("x".into())
                ]
            )]
        );
        assert_eq!(
            go_factor(&["400".into(), "404".into()], false),
            vec![GoAlt::Concat("40".into(), vec![GoAlt::Class])]
        );
    }
}
