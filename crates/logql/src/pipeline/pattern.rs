//! Loki's pattern expressions: `<ip> - <_> [<ts>] "<method> <path> <_>"`, literal text
//! with `<name>` captures and `<_>` placeholders. The `pattern` parser extracts the named
//! captures; the `|>`/`!>` line filters test whether a line has the shape.

use memchr::memmem;

#[derive(Debug, Clone)]
enum Node {
    Literal(Vec<u8>),
    /// A capture; `None` for `<_>`.
    Capture(Option<String>),
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    nodes: Vec<Node>,
    finders: Vec<Option<memmem::Finder<'static>>>,
    names: Vec<String>,
}

fn parse(src: &str) -> Result<Vec<Node>, String> {
    let b = src.as_bytes();
    let mut nodes: Vec<Node> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'<'
            && let Some(len) = capture_len(&b[i..])
        {
            let name = &src[i + 1..i + len - 1];
            nodes.push(Node::Capture((name != "_").then(|| name.to_string())));
            i += len;
            continue;
        }
        match nodes.last_mut() {
            Some(Node::Literal(l)) => l.push(b[i]),
            _ => nodes.push(Node::Literal(vec![b[i]])),
        }
        i += 1;
    }
    if nodes.is_empty() {
        return Err("syntax error: unexpected $end".into());
    }
    Ok(nodes)
}

/// `<[A-Za-z_][A-Za-z0-9_]*>` at the start of `b`.
fn capture_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let mut i = 2;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
        i += 1;
    }
    (b.get(i) == Some(&b'>')).then_some(i + 1)
}

fn no_consecutive_captures(nodes: &[Node]) -> Result<(), String> {
    for w in nodes.windows(2) {
        if let (Node::Capture(a), Node::Capture(b)) = (&w[0], &w[1]) {
            let s = |n: &Option<String>| format!("<{}>", n.as_deref().unwrap_or("_"));
            return Err(format!(
                "found consecutive capture '{}{}': invalid expression",
                s(a),
                s(b)
            ));
        }
    }
    Ok(())
}

impl Pattern {
    fn build(nodes: Vec<Node>) -> Pattern {
        let finders = nodes
            .iter()
            .map(|n| match n {
                Node::Literal(l) => Some(memmem::Finder::new(l).into_owned()),
                Node::Capture(_) => None,
            })
            .collect();
        let names = nodes
            .iter()
            .filter_map(|n| match n {
                Node::Capture(Some(name)) => Some(name.clone()),
                _ => None,
            })
            .collect();
        Pattern {
            nodes,
            finders,
            names,
        }
    }

    /// A pattern for the `pattern` parser: at least one named capture, names unique, no two
    /// captures side by side.
    pub(crate) fn parser(src: &str) -> Result<Pattern, String> {
        let nodes = parse(src)?;
        let p = Pattern::build(nodes);
        if p.names.is_empty() {
            return Err("at least one capture is required".into());
        }
        no_consecutive_captures(&p.nodes)?;
        for (i, n) in p.names.iter().enumerate() {
            if p.names[..i].contains(n) {
                return Err(format!("duplicate capture name ({n}): invalid expression"));
            }
        }
        Ok(p)
    }

    /// A pattern for `|>`/`!>`: only `<_>` placeholders. The empty pattern matches only
    /// empty lines.
    pub(crate) fn line_filter(src: &str) -> Result<Pattern, String> {
        if src.is_empty() {
            return Ok(Pattern::build(Vec::new()));
        }
        let nodes = parse(src)?;
        no_consecutive_captures(&nodes)?;
        if let Some(Node::Capture(Some(n))) =
            nodes.iter().find(|n| matches!(n, Node::Capture(Some(_))))
        {
            return Err(format!("named captures are not allowed: found '<{n}>'"));
        }
        Ok(Pattern::build(nodes))
    }

    /// The capture names, in order.
    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    /// The literal pieces, for skipping blocks.
    pub(crate) fn literals(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes.iter().filter_map(|n| match n {
            Node::Literal(l) => Some(l.as_slice()),
            Node::Capture(_) => None,
        })
    }

    fn finder(&self, i: usize) -> &memmem::Finder<'static> {
        match &self.finders[i] {
            Some(f) => f,
            None => unreachable!("finder asked for a capture node"),
        }
    }

    /// Extracts the named captures of `line` in order, calling `f(index, value)`. Loki's
    /// rules: a leading literal must be at the very start; a capture runs to the next
    /// literal's first occurrence; when that literal is missing the capture takes the rest
    /// and matching stops; text after a trailing literal is ignored.
    /// Calls `f(capture index, value)` for each named capture in order until `f` returns
    /// `false`.
    pub(crate) fn captures(&self, line: &[u8], mut f: impl FnMut(usize, &[u8]) -> bool) {
        if line.is_empty() || self.nodes.is_empty() {
            return;
        }
        let mut input = line;
        let mut i = 0;
        if let Node::Literal(l) = &self.nodes[0] {
            if !input.starts_with(l) {
                return;
            }
            input = &input[l.len()..];
            i = 1;
        }
        let mut named = 0;
        while i < self.nodes.len() {
            let Node::Capture(name) = &self.nodes[i] else {
                // Two literals never follow each other: the parser merges them.
                return;
            };
            if i + 1 == self.nodes.len() {
                if name.is_some() {
                    f(named, input);
                }
                return;
            }
            let lit_len = match &self.nodes[i + 1] {
                Node::Literal(l) => l.len(),
                Node::Capture(_) => return,
            };
            match self.finder(i + 1).find(input) {
                None => {
                    if name.is_some() {
                        f(named, input);
                    }
                    return;
                }
                Some(at) => {
                    if name.is_some() {
                        if !f(named, &input[..at]) {
                            return;
                        }
                        named += 1;
                    }
                    input = &input[at + lit_len..];
                }
            }
            i += 2;
        }
    }

    /// Whether `line` has the pattern's shape (the `|>` filter): every literal in order,
    /// each placeholder non-empty, nothing left over after a trailing literal.
    pub(crate) fn test(&self, line: &[u8]) -> bool {
        if line.is_empty() || self.nodes.is_empty() {
            return line.is_empty() && self.nodes.is_empty();
        }
        let mut off = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            let Node::Literal(lit) = n else { continue };
            let Some(j) = self.finder(i).find(&line[off..]) else {
                return false;
            };
            if i != 0 && j == 0 {
                return false;
            }
            off += j + lit.len();
        }
        let ends_with_capture = matches!(self.nodes.last(), Some(Node::Capture(_)));
        ends_with_capture == (off != line.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(p: &str, line: &str) -> Vec<(String, String)> {
        let p = Pattern::parser(p).unwrap();
        let mut out = Vec::new();
        p.captures(line.as_bytes(), |i, v| {
            out.push((
                p.names()[i].clone(),
                String::from_utf8_lossy(v).into_owned(),
            ));
            true
        });
        out
    }

    #[test]
    fn extracts_like_loki() {
        let line = r#"192.168.0.226 - - [20/Nov/2026:10:00:45 +0000] "GET /login HTTP/1.1" 200 12805 "-" "Mozilla/5.0 (X11; Linux x86_64)" 0.859"#;
        let got = caps(
            r#"<ip> - - [<_>] "<method> <path> <_>" <status> <size> "<_>" "<agent>" <latency>"#,
            line,
        );
        let want = [
            ("ip", "192.168.0.226"),
            ("method", "GET"),
            ("path", "/login"),
            ("status", "200"),
            ("size", "12805"),
            ("agent", "Mozilla/5.0 (X11; Linux x86_64)"),
            ("latency", "0.859"),
        ];
        assert_eq!(
            got,
            want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
        );
        // A missing literal: the capture takes the rest, later captures are not set.
        assert_eq!(
            caps("<a> x <b> y <c>", "1 x 2"),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        // A leading literal must be at the start.
        assert!(caps("foo <a>", "xfoo 1").is_empty());
        assert_eq!(caps("<a>:", "k:v:w"), vec![("a".into(), "k".into())]);
    }

    #[test]
    fn rejects_bad_patterns() {
        assert!(Pattern::parser("<_> foo").is_err());
        assert!(Pattern::parser("<a><b>").is_err());
        assert!(Pattern::parser("<a> <a>").is_err());
        assert!(Pattern::parser("").is_err());
        assert!(Pattern::line_filter("<a> x").is_err());
        assert!(Pattern::line_filter("<_><_>").is_err());
        // `<1>` is not a capture: literal text.
        assert!(Pattern::line_filter("<1> <_>").is_ok());
    }

    #[test]
    fn tests_line_shape() {
        let p = Pattern::line_filter(r#"<_> "GET <_> HTTP/1.1" 500 <_>"#).unwrap();
        assert!(p.test(br#"1.2.3.4 - - [x] "GET /a HTTP/1.1" 500 12 "-""#));
        assert!(!p.test(br#"1.2.3.4 - - [x] "GET /a HTTP/1.1" 200 12"#));
        let p = Pattern::line_filter("<_> bar").unwrap();
        assert!(!p.test(b"foo bar baz"));
        assert!(
            Pattern::line_filter("<_> baz")
                .unwrap()
                .test(b"foo bar baz")
        );
        assert!(
            Pattern::line_filter("foo <_>")
                .unwrap()
                .test(b"foo bar baz")
        );
        assert!(!Pattern::line_filter("<_> bar <_>").unwrap().test(b" bar "));
        assert!(Pattern::line_filter("<_>bar<_>").unwrap().test(b" bar "));
        let empty = Pattern::line_filter("").unwrap();
        assert!(empty.test(b""));
        assert!(!empty.test(b"x"));
    }
}
