//! The parser of Go's `text/template`: actions, pipelines, `if`/`else if`/`range`/`with`,
//! variables, and the checks Go makes before running (functions exist, variables are
//! declared, `break` is inside `range`).

use super::lex::{Keyword, Tok, Token};

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) list: Vec<Node>,
    pub(crate) else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub(crate) args: Vec<Arg>,
}

/// A numeric constant with every reading Go gives it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Number {
    pub(crate) text: String,
    pub(crate) int: Option<i64>,
    pub(crate) float: Option<f64>,
    /// A character constant (`'a'`).
    pub(crate) is_char: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field {
        pos: usize,
        idents: Vec<String>,
    },
    Variable {
        pos: usize,
        name: String,
        idents: Vec<String>,
    },
    /// `(pipeline).a.b` or `$x.a`-like chains on other terms.
    Chain {
        pos: usize,
        node: Box<Arg>,
        idents: Vec<String>,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    Str {
        pos: usize,
        value: String,
        raw: String,
    },
    Ident {
        pos: usize,
        name: String,
    },
    Pipe(usize, Box<Pipe>),
}

impl Arg {
    pub(crate) fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Str { pos, .. }
            | Arg::Ident { pos, .. } => *pos,
            Arg::Dot(p) | Arg::Nil(p) | Arg::Bool(p, _) | Arg::Number(p, _) | Arg::Pipe(p, _) => *p,
        }
    }
}

/// Parses `toks`; `has_func` says which identifiers name functions.
pub(crate) fn parse(toks: &[Token], has_func: &dyn Fn(&str) -> bool) -> Result<Vec<Node>, String> {
    let mut p = Parser {
        toks,
        i: 0,
        vars: vec!["$".to_string()],
        range_depth: 0,
        depth: 0,
        has_func,
    };
    let (list, end) = p.list()?;
    match end {
        Stop::Eof => Ok(list),
        Stop::End => Err("unexpected {{end}}".into()),
        Stop::Else(_) => Err("unexpected {{else}}".into()),
    }
}

enum Stop {
    Eof,
    End,
    /// `{{else}}`, `{{else if ...}}` or `{{else with ...}}`: the keyword after else.
    Else(Option<Keyword>),
}

struct Parser<'a> {
    toks: &'a [Token],
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Open `if`/`with`/`range` blocks (an `else if` counts as one more) and parentheses.
    depth: usize,
    has_func: &'a dyn Fn(&str) -> bool,
}

/// How deep a template may nest. Parsing and executing recurse once per level, so this
/// bounds their stack; Go's limit is higher (10000) because its stacks grow, but no
/// template of a log line comes near either.
const MAX_DEPTH: usize = 100;

impl Parser<'_> {
    /// Runs `f` one nesting level deeper, failing as Go does past the limit.
    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        if self.depth >= MAX_DEPTH {
            return Err("max expression depth exceeded".into());
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn peek(&self) -> &Tok {
        self.toks.get(self.i).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.i).map_or(0, |t| t.pos)
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn skip_space(&mut self) {
        while *self.peek() == Tok::Space {
            self.i += 1;
        }
    }

    fn expect_right(&mut self, ctx: &str) -> Result<(), String> {
        self.skip_space();
        match self.next() {
            Tok::RightDelim => Ok(()),
            t => Err(format!("unexpected {} in {ctx}", describe(&t))),
        }
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, Stop), String> {
        let mut out = Vec::new();
        loop {
            match self.next() {
                Tok::Eof => return Ok((out, Stop::Eof)),
                Tok::Text(t) => out.push(Node::Text(t)),
                Tok::LeftDelim => {
                    self.skip_space();
                    match self.peek().clone() {
                        Tok::Keyword(Keyword::End) => {
                            self.i += 1;
                            self.expect_right("end")?;
                            return Ok((out, Stop::End));
                        }
                        Tok::Keyword(Keyword::Else) => {
                            self.i += 1;
                            self.skip_space();
                            match self.peek().clone() {
                                Tok::Keyword(k @ (Keyword::If | Keyword::With)) => {
                                    return Ok((out, Stop::Else(Some(k))));
                                }
                                _ => {
                                    self.expect_right("else")?;
                                    return Ok((out, Stop::Else(None)));
                                }
                            }
                        }
                        Tok::Keyword(Keyword::If) => {
                            self.i += 1;
                            out.push(Node::If(self.branch("if", false)?));
                        }
                        Tok::Keyword(Keyword::With) => {
                            self.i += 1;
                            out.push(Node::With(self.branch("with", false)?));
                        }
                        Tok::Keyword(Keyword::Range) => {
                            self.i += 1;
                            self.range_depth += 1;
                            let b = self.branch("range", true);
                            self.range_depth -= 1;
                            out.push(Node::Range(b?));
                        }
                        Tok::Keyword(Keyword::Break) => {
                            self.i += 1;
                            if self.range_depth == 0 {
                                return Err("{{break}} outside {{range}}".into());
                            }
                            self.expect_right("break")?;
                            out.push(Node::Break);
                        }
                        Tok::Keyword(Keyword::Continue) => {
                            self.i += 1;
                            if self.range_depth == 0 {
                                return Err("{{continue}} outside {{range}}".into());
                            }
                            self.expect_right("continue")?;
                            out.push(Node::Continue);
                        }
                        Tok::Keyword(
                            k @ (Keyword::Define | Keyword::Template | Keyword::Block),
                        ) => {
                            return Err(format!(
                                "{{{{{}}}}} is not supported in LogQL templates",
                                match k {
                                    Keyword::Define => "define",
                                    Keyword::Template => "template",
                                    _ => "block",
                                }
                            ));
                        }
                        _ => {
                            let pipe = self.pipeline("command", true)?;
                            out.push(Node::Action(pipe));
                        }
                    }
                }
                t => return Err(format!("unexpected {}", describe(&t))),
            }
        }
    }

    /// `if`/`with`/`range` after the keyword: pipeline, body, optional else.
    fn branch(&mut self, ctx: &str, is_range: bool) -> Result<Branch, String> {
        self.nested(|p| p.branch_at(ctx, is_range))
    }

    fn branch_at(&mut self, ctx: &str, is_range: bool) -> Result<Branch, String> {
        let vars_len = self.vars.len();
        let pipe = self.pipeline(ctx, is_range)?;
        let (list, end) = self.list()?;
        let else_list = match end {
            Stop::Eof => return Err(format!("unexpected EOF in {ctx}")),
            Stop::End => None,
            Stop::Else(None) => {
                let (l, end) = self.list()?;
                if !matches!(end, Stop::End) {
                    return Err(format!("expected end; found {}", "else or EOF"));
                }
                Some(l)
            }
            Stop::Else(Some(k)) => {
                if is_range {
                    return Err("unexpected {{else if}} in range".into());
                }
                // `{{else if x}}...{{end}}` is an `if` inside the else list, sharing the end.
                self.i += 1;
                let inner = self.branch(if k == Keyword::If { "if" } else { "with" }, false)?;
                Some(vec![if k == Keyword::If {
                    Node::If(inner)
                } else {
                    Node::With(inner)
                }])
            }
        };
        self.vars.truncate(vars_len);
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    /// A pipeline up to `}}` (or `)` when nested); declarations allowed at the start.
    fn pipeline(&mut self, ctx: &str, allow_decl: bool) -> Result<Pipe, String> {
        self.skip_space();
        let pos = self.pos();
        let mut decl = Vec::new();
        let mut is_assign = false;
        // `$x :=`, `$x =`, `$i, $e :=`.
        let save = self.i;
        if allow_decl && let Tok::Variable(v) = self.peek().clone() {
            self.i += 1;
            self.skip_space();
            match self.peek().clone() {
                Tok::Declare | Tok::Assign => {
                    is_assign = *self.peek() == Tok::Assign;
                    self.i += 1;
                    decl.push(v);
                }
                Tok::Comma if ctx == "range" => {
                    self.i += 1;
                    self.skip_space();
                    if let Tok::Variable(v2) = self.next() {
                        self.skip_space();
                        match self.next() {
                            Tok::Declare => decl.extend([v, v2]),
                            Tok::Assign => {
                                is_assign = true;
                                decl.extend([v, v2]);
                            }
                            t => return Err(format!("unexpected {} in range", describe(&t))),
                        }
                    } else {
                        return Err("range can only initialize variables".into());
                    }
                }
                _ => self.i = save,
            }
        }
        if is_assign {
            for d in &decl {
                if !self.vars.contains(d) {
                    return Err(format!("undefined variable \"{d}\""));
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            match self.peek().clone() {
                Tok::RightDelim | Tok::RightParen => {
                    if *self.peek() == Tok::RightParen && ctx != "parenthesized pipeline" {
                        return Err("unexpected right paren".into());
                    }
                    if *self.peek() == Tok::RightDelim && ctx == "parenthesized pipeline" {
                        return Err("unclosed left paren".into());
                    }
                    self.i += 1;
                    break;
                }
                Tok::Eof => return Err(format!("unclosed action in {ctx}")),
                _ => cmds.push(self.command()?),
            }
        }
        if cmds.is_empty() {
            return Err(format!("missing value for {ctx}"));
        }
        if !is_assign {
            self.vars.extend(decl.iter().cloned());
        }
        for (i, c) in cmds.iter().enumerate().skip(1) {
            if let Some(first) = c.args.first()
                && matches!(
                    first,
                    Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::Str { .. }
                )
            {
                let _ = i;
                return Err(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(Pipe {
            pos,
            decl,
            is_assign,
            cmds,
        })
    }

    fn command(&mut self) -> Result<Command, String> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            args.push(self.operand()?);
            match self.peek() {
                Tok::Space => {
                    self.skip_space();
                    match self.peek() {
                        Tok::RightDelim | Tok::RightParen => break,
                        Tok::Pipe => {
                            self.i += 1;
                            break;
                        }
                        _ => continue,
                    }
                }
                Tok::RightDelim | Tok::RightParen => break,
                Tok::Pipe => {
                    self.i += 1;
                    break;
                }
                t => return Err(format!("unexpected {} in operand", describe(t))),
            }
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> Result<Arg, String> {
        let term = self.term()?;
        let mut idents = Vec::new();
        while let Tok::Field(f) = self.peek().clone() {
            self.i += 1;
            idents.push(f);
        }
        if idents.is_empty() {
            return Ok(term);
        }
        Ok(match term {
            Arg::Field { pos, idents: mut a } => {
                a.extend(idents);
                Arg::Field { pos, idents: a }
            }
            Arg::Variable {
                pos,
                name,
                idents: mut a,
            } => {
                a.extend(idents);
                Arg::Variable {
                    pos,
                    name,
                    idents: a,
                }
            }
            Arg::Bool(..) | Arg::Str { .. } | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err("unexpected . after term".into());
            }
            other => Arg::Chain {
                pos: other.pos(),
                node: Box::new(other),
                idents,
            },
        })
    }

    fn term(&mut self) -> Result<Arg, String> {
        let pos = self.pos();
        Ok(match self.next() {
            Tok::Identifier(name) => {
                if !(self.has_func)(&name) {
                    return Err(format!("function \"{name}\" not defined"));
                }
                Arg::Ident { pos, name }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable(name) => {
                if !self.vars.contains(&name) {
                    return Err(format!("undefined variable \"{name}\""));
                }
                Arg::Variable {
                    pos,
                    name,
                    idents: Vec::new(),
                }
            }
            Tok::Field(f) => Arg::Field {
                pos,
                idents: vec![f],
            },
            Tok::Bool(b) => Arg::Bool(pos, b),
            Tok::Number(text) => Arg::Number(pos, number(&text)?),
            Tok::Char { value, raw } => Arg::Number(
                pos,
                Number {
                    text: raw,
                    int: Some(value as i64),
                    float: Some(value as u32 as f64),
                    is_char: true,
                },
            ),
            Tok::Str { value, raw } => Arg::Str { pos, value, raw },
            Tok::LeftParen => {
                let p = self.nested(|p| p.pipeline("parenthesized pipeline", false))?;
                Arg::Pipe(pos, Box::new(p))
            }
            t => return Err(format!("unexpected {} in operand", describe(&t))),
        })
    }
}

/// Reads a Go numeric constant.
fn number(text: &str) -> Result<Number, String> {
    let bad = || format!("illegal number syntax: {text:?}");
    if text.ends_with('i') {
        return Err("complex numbers are not supported".into());
    }
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    }
    .map(|v| if neg { -v } else { v });
    let is_hex = lower.starts_with("0x");
    let float = if is_hex && !lower.contains('p') {
        int.map(|i| i as f64)
    } else {
        clean.parse::<f64>().ok().filter(|f| f.is_finite())
    };
    // A float with an integral value is an int too.
    let int = int.or_else(|| {
        float
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
            .map(|f| f as i64)
    });
    if int.is_none() && float.is_none() {
        return Err(bad());
    }
    Ok(Number {
        text: text.to_string(),
        int,
        float,
        is_char: false,
    })
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Text(_) => "text".into(),
        Tok::LeftDelim => "\"{{\"".into(),
        Tok::RightDelim => "\"}}\"".into(),
        Tok::Space => "space".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LeftParen => "\"(\"".into(),
        Tok::RightParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
        Tok::Str { raw, .. } => raw.clone(),
        Tok::Char { raw, .. } => raw.clone(),
        Tok::Number(n) => format!("number {n}"),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Dot => "\".\"".into(),
        Tok::Field(f) => format!("field .{f}"),
        Tok::Variable(v) => format!("variable {v}"),
        Tok::Identifier(i) => format!("identifier {i}"),
        Tok::Keyword(k) => format!("keyword {k:?}").to_lowercase(),
        Tok::Eof => "EOF".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    fn p(s: &str) -> Result<Vec<Node>, String> {
        parse(&lex(s).map_err(|e| e.1)?, &|n| {
            matches!(n, "printf" | "eq" | "ToUpper" | "len")
        })
    }

    #[test]
    fn parses_control_flow() {
        let n = p(r#"{{ if eq .a "x" }}A{{ else if .b }}B{{ else }}C{{ end }}"#).unwrap();
        assert_eq!(n.len(), 1);
        let Node::If(b) = &n[0] else { panic!() };
        assert!(matches!(b.else_list.as_deref(), Some([Node::If(_)])));
        assert!(p("{{ range $i, $e := . }}{{ $i }}{{ break }}{{ end }}").is_ok());
        assert!(p("{{ with .x }}{{ . }}{{ else with .y }}{{ . }}{{ end }}").is_ok());
        assert!(p(r#"{{ .msg | ToUpper | printf "%s!" }}"#).is_ok());
        assert!(p("{{ (len .x).y }}").is_ok());
    }

    #[test]
    fn rejects_bad_templates() {
        assert!(p("{{ nope .x }}").is_err());
        assert!(p("{{ $x }}").is_err());
        assert!(p("{{ if .x }}").is_err());
        assert!(p("{{ end }}").is_err());
        assert!(p("{{ break }}").is_err());
        assert!(p("{{ .x | \"a\" }}").is_err());
        assert!(p("{{ \"a\"\"b\" }}").is_err());
        assert!(p("{{ ( .x }}").is_err());
    }

    #[test]
    fn nesting_has_a_limit() {
        let shapes = |n: usize| {
            [
                format!("{}x{}", "{{ if .a }}".repeat(n), "{{ end }}".repeat(n)),
                format!(
                    "{{{{ if .a }}}}{}{{{{ end }}}}",
                    "{{ else if .b }}".repeat(n)
                ),
                format!("{{{{ {}.a{} }}}}", "(".repeat(n), ")".repeat(n)),
            ]
        };
        for t in shapes(MAX_DEPTH - 1) {
            assert!(p(&t).is_ok(), "{t}");
        }
        for t in shapes(10_000) {
            assert_eq!(
                p(&t).err().as_deref(),
                Some("max expression depth exceeded")
            );
        }
    }

    #[test]
    fn numbers() {
        let n = number("0x1F").unwrap();
        assert_eq!(n.int, Some(31));
        let n = number("1.0").unwrap();
        assert_eq!((n.int, n.float), (Some(1), Some(1.0)));
        let n = number("1.5").unwrap();
        assert_eq!((n.int, n.float), (None, Some(1.5)));
        assert_eq!(number("010").unwrap().int, Some(8));
        assert_eq!(number("-3").unwrap().int, Some(-3));
        assert!(number("1x").is_err());
    }
}
