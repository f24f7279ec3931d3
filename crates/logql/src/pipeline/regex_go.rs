//! Regexes as Loki (Go's RE2) reads them, run by Rust's `regex`.
//!
//! The syntaxes are nearly the same; the differences that change which lines match are
//! rewritten before compiling: Go's `\d \w \s \b` are ASCII-only (Rust's are Unicode), a
//! `[` inside a class is a literal in Go (a nested class in Rust), `&&`/`~~` inside a class
//! are literals in Go (set operators in Rust), a `{` that does not start a repetition is a
//! literal in Go (an error in Rust), and Go has `\Q...\E` quoting.

/// Rewrites a Go regex into the Rust syntax with the same meaning.
pub(crate) fn translate(go: &str) -> String {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Position right after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    while i < chars.len() {
        let c = chars[i];
        let at_class_start = class_start;
        class_start = false;
        match c {
            '\\' if i + 1 < chars.len() => {
                let e = chars[i + 1];
                i += 2;
                match e {
                    'Q' => {
                        let mut lit = String::new();
                        while i < chars.len() {
                            if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                                i += 2;
                                break;
                            }
                            lit.push(chars[i]);
                            i += 1;
                        }
                        if in_class {
                            for ch in lit.chars() {
                                push_class_literal(&mut out, ch);
                            }
                        } else {
                            out.push_str(&regex_syntax::escape(&lit));
                        }
                    }
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
                        let set = match e.to_ascii_lowercase() {
                            'd' => "0-9",
                            'w' => "0-9A-Za-z_",
                            _ => r"\t\n\x0C\r ",
                        };
                        let negated = e.is_ascii_uppercase();
                        match (in_class, negated) {
                            (false, false) => {
                                out.push('[');
                                out.push_str(set);
                                out.push(']');
                            }
                            (false, true) | (true, true) => {
                                out.push_str("[^");
                                out.push_str(set);
                                out.push(']');
                            }
                            (true, false) => out.push_str(set),
                        }
                    }
                    'b' | 'B' if !in_class => {
                        out.push_str("(?-u:\\");
                        out.push(e);
                        out.push(')');
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
                continue;
            }
            '[' if !in_class => {
                in_class = true;
                class_start = true;
                out.push('[');
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
            }
            '[' => {
                // `[:alpha:]` is a class name in both; any other `[` is a literal in Go.
                if chars.get(i + 1) == Some(&':')
                    && let Some(end) = find_seq(&chars, i + 2, &[':', ']'])
                {
                    out.extend(&chars[i..end + 2]);
                    i = end + 2;
                    continue;
                }
                out.push_str("\\[");
            }
            ']' if in_class && at_class_start => out.push_str("\\]"),
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '{' if !in_class => {
                if let Some(len) = repetition_len(&chars[i..]) {
                    out.extend(&chars[i..i + len]);
                    i += len;
                    continue;
                }
                out.push_str("\\{");
            }
            '}' if !in_class => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

fn push_class_literal(out: &mut String, ch: char) {
    if matches!(ch, '[' | ']' | '\\' | '^' | '-' | '&' | '~') {
        out.push('\\');
    }
    out.push(ch);
}

fn find_seq(chars: &[char], from: usize, seq: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(seq.len() - 1)).find(|&j| chars[j..].starts_with(seq))
}

/// The length of a valid `{n}`, `{n,}` or `{n,m}` at the start of `s`.
fn repetition_len(s: &[char]) -> Option<usize> {
    let mut i = 1;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && s[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return None;
    }
    if s.get(i) == Some(&',') {
        i += 1;
        digits(&mut i);
    }
    (s.get(i) == Some(&'}')).then_some(i + 1)
}

/// Compiles a Go regex for matching lines (bytes).
pub(crate) fn compile_bytes(go: &str) -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(&translate(go)).map_err(|e| {
        format!(
            "error parsing regexp {go:?}: {}",
            first_line(&e.to_string())
        )
    })
}

/// Compiles a Go regex for matching label values and template strings.
pub(crate) fn compile_str(go: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&translate(go)).map_err(|e| {
        format!(
            "error parsing regexp {go:?}: {}",
            first_line(&e.to_string())
        )
    })
}

fn first_line(s: &str) -> String {
    s.lines()
        .filter(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .next()
        .unwrap_or_else(|| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(re: &str, s: &str) -> bool {
        compile_str(re).unwrap().is_match(s)
    }

    #[test]
    fn perl_classes_are_ascii() {
        assert!(m(r"^\d+$", "123"));
        assert!(!m(r"^\d+$", "١٢٣"));
        assert!(!m(r"^\w+$", "été"));
        assert!(m(r"^[\w.]+$", "a.b_c"));
        assert!(m(r"^[^\d]+$", "abc"));
        assert!(m(r"^[\D]+$", "abc"));
        assert!(!m(r"^\s$", "\u{a0}"));
        assert!(m(r"\bfoo\b", "a foo b"));
        assert!(m(r"\bfoo\b", "éfoo"));
    }

    #[test]
    fn go_literals() {
        assert!(m(r"^[[]$", "["));
        assert!(m(r"^[]a]+$", "]a"));
        assert!(m(r"^[[:alpha:]]+$", "abc"));
        assert!(m(r#"{"level"#, r#"{"level": 1}"#));
        assert!(m(r"a{2}", "aa"));
        assert!(m(r"a{x}", "a{x}"));
        assert!(m(r"\Qa.b\E", "a.b"));
        assert!(!m(r"\Qa.b\E", "axb"));
        assert!(m(r"^[a&&b]+$", "a&b"));
        assert!(m(r"(?i)TIMEOUT", "upstream timeout"));
        assert!(m(r"(?P<x>\d+)", "12"));
    }
}
