//! The text every line passing a pipeline must contain, for storage to skip blocks whose
//! token filter rules it out. Only what is certain goes in: a hint too strong would lose
//! lines, a hint too weak only reads more.

use regex_syntax::hir::literal::{ExtractKind, Extractor};

use super::line_filter::Filter;
use crate::source::RequiredText;

/// The requirement of one compiled line filter, if it has one.
pub(crate) fn of_filter(f: &Filter) -> Option<RequiredText> {
    match f {
        Filter::Contains(fi) => Some(RequiredText::Literal {
            text: String::from_utf8(fi.needle().to_vec()).ok()?,
            case_insensitive: false,
        }),
        Filter::AnyOf { needles, ci, .. } => any(needles
            .iter()
            .map(|n| RequiredText::Literal {
                text: n.clone(),
                case_insensitive: *ci,
            })
            .collect()),
        Filter::Regex(r) => of_regex(r.as_str()),
        Filter::Pattern(p) => all(p
            .literals()
            .filter_map(|l| {
                let text = std::str::from_utf8(l).ok()?;
                (!text.is_empty()).then(|| RequiredText::Literal {
                    text: text.to_string(),
                    case_insensitive: false,
                })
            })
            .collect()),
        Filter::Or(legs) => any(legs.iter().map(of_filter).collect::<Option<Vec<_>>>()?),
        Filter::True | Filter::Exists | Filter::Ip(_) | Filter::Not(_) => None,
    }
}

fn any(mut v: Vec<RequiredText>) -> Option<RequiredText> {
    match v.len() {
        0 => None,
        1 => v.pop(),
        _ => Some(RequiredText::Any(v)),
    }
}

/// `All`, flattened.
pub(crate) fn all(v: Vec<RequiredText>) -> Option<RequiredText> {
    let mut flat = Vec::with_capacity(v.len());
    for r in v {
        match r {
            RequiredText::All(inner) => flat.extend(inner),
            other => flat.push(other),
        }
    }
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(RequiredText::All(flat)),
    }
}

/// Literals every match of a (Rust-syntax) regex starts or ends with. Case variants the
/// extractor spells out (`(?i)ab` gives `AB Ab aB ab`) fold into one case-insensitive
/// literal.
fn of_regex(re: &str) -> Option<RequiredText> {
    let hir = regex_syntax::Parser::new().parse(re).ok()?;
    // Of the prefix and suffix literals, keep the set whose shortest member is longest.
    let mut best: Option<(usize, Vec<String>)> = None;
    for kind in [ExtractKind::Prefix, ExtractKind::Suffix] {
        let mut ex = Extractor::new();
        ex.kind(kind);
        let seq = ex.extract(&hir);
        let Some(lits) = seq.literals() else {
            continue;
        };
        if lits.is_empty() || lits.iter().any(|l| l.as_bytes().is_empty()) {
            continue;
        }
        let Some(texts) = lits
            .iter()
            .map(|l| String::from_utf8(l.as_bytes().to_vec()).ok())
            .collect::<Option<Vec<String>>>()
        else {
            continue;
        };
        let min = texts.iter().map(String::len).min().unwrap_or(0);
        if best.as_ref().is_none_or(|(m, _)| min > *m) {
            best = Some((min, texts));
        }
    }
    let (_, mut texts) = best?;
    // Many alternatives with a long shared start (`blk_-0` ... `blk_-9`) say the same as
    // the shared start, more cheaply.
    if texts.len() > 4 {
        let common = |rev: bool| -> String {
            let chars = |t: &String| -> Vec<char> {
                if rev {
                    t.chars().rev().collect()
                } else {
                    t.chars().collect()
                }
            };
            let first = chars(&texts[0]);
            let n = texts.iter().fold(first.len(), |n, t| {
                first
                    .iter()
                    .zip(chars(t))
                    .take(n)
                    .take_while(|(a, b)| **a == *b)
                    .count()
            });
            let part: Vec<char> = first[..n].to_vec();
            if rev {
                part.into_iter().rev().collect()
            } else {
                part.into_iter().collect()
            }
        };
        let (pre, suf) = (common(false), common(true));
        let best = if pre.len() >= suf.len() { pre } else { suf };
        if best.len() >= 3 {
            texts = vec![best];
        }
    }
    let mut lower: Vec<String> = texts.iter().map(|t| t.to_ascii_lowercase()).collect();
    lower.sort();
    lower.dedup();
    let ci = lower.len() < texts.len();
    let chosen = if ci { lower } else { texts };
    any(chosen
        .into_iter()
        .map(|text| RequiredText::Literal {
            text,
            case_insensitive: ci,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(t: &str, ci: bool) -> RequiredText {
        RequiredText::Literal {
            text: t.into(),
            case_insensitive: ci,
        }
    }

    #[test]
    fn regex_literals() {
        assert_eq!(of_regex("blk_-[0-9]+"), Some(lit("blk_-", false)));
        assert_eq!(of_regex("(?i)timeout"), Some(lit("timeout", true)));
        assert_eq!(
            of_regex("ERROR|FATAL"),
            Some(RequiredText::Any(vec![
                lit("ERROR", false),
                lit("FATAL", false)
            ]))
        );
        assert_eq!(of_regex("^$"), None);
        assert_eq!(of_regex("[0-9]+ seconds"), Some(lit(" seconds", false)));
        assert!(matches!(of_regex("[0-9]+ms"), Some(RequiredText::Any(v)) if v.len() == 10));
        assert_eq!(of_regex("a*"), None);
    }
}
