//! A pattern's template: per token position, the literal text seen in every line of the
//! cluster or a variable, with the whitespace after it; how a line widens it, and how it
//! is printed as a pattern (`<_>` for variables) that works as a `|>` line filter.

use super::tokens::Token;

/// The whitespace after a variable: the same in every line, or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Gap {
    Same(Box<[u8]>),
    Mixed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    Literal { text: Box<[u8]>, gap: Box<[u8]> },
    Variable { gap: Gap },
}

/// Turns every position where the line differs into a variable.
pub(super) fn merge(slots: &mut [Slot], line: &[u8], toks: &[Token]) {
    for (slot, t) in slots.iter_mut().zip(toks) {
        let (text, gap) = (t.text(line), t.gap(line));
        match slot {
            Slot::Literal { text: lit, gap: g } => {
                if **lit != *text || **g != *gap {
                    let same_gap = **g == *gap;
                    *slot = Slot::Variable {
                        gap: if same_gap {
                            Gap::Same(std::mem::take(g))
                        } else {
                            Gap::Mixed
                        },
                    };
                }
            }
            Slot::Variable { gap: g } => {
                if let Gap::Same(s) = g
                    && **s != *gap
                {
                    *g = Gap::Mixed;
                }
            }
        }
    }
}

const VAR: &[u8] = b"<_>";

/// The template as text: literals as they were, each run of variables as one `<_>`, a
/// JSON message between `<_>`s. A literal word between `<` and `>` is printed as `<_>`
/// too, since `<word>` would read as a named capture in a `|>` filter.
pub(super) fn render(slots: &[Slot], embedded: bool) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(slots.len() * 8);
    let mut ends_in_var = false;
    let var = |out: &mut Vec<u8>, ends_in_var: &mut bool| {
        if !*ends_in_var {
            out.extend_from_slice(VAR);
            *ends_in_var = true;
        }
    };
    if embedded {
        var(&mut out, &mut ends_in_var);
    }
    for (i, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Literal { text, gap } if !looks_like_capture(slots, i) => {
                out.extend_from_slice(text);
                out.extend_from_slice(gap);
                ends_in_var = false;
            }
            Slot::Literal { gap, .. } => {
                var(&mut out, &mut ends_in_var);
                if !gap.is_empty() {
                    out.extend_from_slice(gap);
                    ends_in_var = false;
                }
            }
            Slot::Variable { gap } => {
                var(&mut out, &mut ends_in_var);
                if let Gap::Same(g) = gap
                    && !g.is_empty()
                {
                    out.extend_from_slice(g);
                    ends_in_var = false;
                }
            }
        }
    }
    if embedded {
        var(&mut out, &mut ends_in_var);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn looks_like_capture(slots: &[Slot], i: usize) -> bool {
    let lit = |j: usize| match slots.get(j) {
        Some(Slot::Literal { text, gap }) => Some((&**text, &**gap)),
        _ => None,
    };
    let Some((text, gap)) = lit(i) else {
        return false;
    };
    let ident = text
        .first()
        .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        && text.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    ident
        && gap.is_empty()
        && i > 0
        && lit(i - 1).is_some_and(|(t, g)| t == b"<" && g.is_empty())
        && lit(i + 1).is_some_and(|(t, _)| t == b">")
}
