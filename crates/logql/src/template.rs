//! Go's `text/template`, as LogQL's `line_format` and `label_format` use it.
//!
//! Loki runs these templates with Go's engine, so a template's output, its quirks and its
//! error messages are Go's: a missing label prints as `""`, `printf "%.1f"` of a label
//! (a string) prints `%!f(string=...)`, a function given the wrong type fails with
//! `wrong type for value; expected int; got string`. This module is our own engine with
//! those semantics: a lexer ([`lex`]), a parser ([`parse`]) and an executor ([`exec`]) over
//! typed values ([`value`]), with Go's `fmt` ([`fmt`]), Go's time layouts ([`gotime`]) and
//! the function set Loki offers ([`funcs`]).
//!
//! Start reading from [`Template`] and [`Data`].

mod cast;
mod decimal;
mod escape;
mod exec;
mod fmt;
mod funcs;
mod gotime;
mod lex;
mod parse;
mod value;

use parse::{Arg, Node, Pipe};

/// What a template reads: the entry's labels as a `map[string]string`, its line
/// (`__line__`) and its timestamp (`__timestamp__`).
pub trait Data {
    /// A label's value; `None` when absent (templates then see `""`).
    fn get(&self, name: &str) -> Option<&str>;
    /// Every label, sorted by name.
    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s str));
    /// The number of labels.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The current line, for `__line__`.
    fn line(&self) -> &str;
    /// The entry's timestamp in Unix nanoseconds, for `__timestamp__`.
    fn timestamp(&self) -> i64;
}

/// A template that could not be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}: {msg}")]
pub struct TemplateError {
    name: String,
    line: usize,
    msg: String,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    root: Vec<Node>,
}

impl Template {
    /// Parses `src`; `name` appears in error messages (`line` for `line_format`, `label`
    /// for `label_format`, as in Loki).
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let e = |line: usize, msg: String| TemplateError {
            name: name.to_string(),
            line,
            msg,
        };
        let toks = lex::lex(src).map_err(|(line, msg)| e(line, msg))?;
        let root = parse::parse(&toks, &|n| funcs::lookup(n).is_some()).map_err(|m| e(1, m))?;
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            root,
        })
    }

    /// Runs the template, appending its output to `out`. On an error `out` holds what was
    /// written before it, and the message reads as Go's (`template: line:1:3: executing
    /// "line" at <...>: ...`).
    pub fn execute(&self, data: &dyn Data, out: &mut String) -> Result<(), String> {
        let mut ex = exec::Exec {
            data,
            vars: Vec::new(),
        };
        ex.run(&self.root, out).map_err(|e| self.error_text(&e))
    }

    fn error_text(&self, e: &exec::ExecError) -> String {
        let before = &self.src[..e.pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let col = match before.rfind('\n') {
            Some(nl) => e.pos - nl - 1,
            None => e.pos,
        };
        let ctx = if e.ctx.chars().count() > 20 {
            format!("{}...", e.ctx.chars().take(20).collect::<String>())
        } else {
            e.ctx.clone()
        };
        format!(
            "template: {name}:{line}:{col}: executing \"{name}\" at <{ctx}>: {msg}",
            name = self.name,
            msg = e.msg
        )
    }

    /// When the whole template is `{{.name}}`, the name: Loki then copies the label (and
    /// only a real label: not `__error__`) without running the template.
    pub fn simple_key(&self) -> Option<&str> {
        match self.root.as_slice() {
            [Node::Action(p)] if p.decl.is_empty() && p.cmds.len() == 1 => {
                match p.cmds[0].args.as_slice() {
                    [Arg::Field { idents, .. }] if idents.len() == 1 => Some(&idents[0]),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// The field names the template reads (`.a.b` gives `a` and `b`), as Loki lists them
    /// to tell parsers which labels a metric query needs.
    pub fn fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        fields_of(&self.root, &mut out);
        out.dedup();
        out
    }

    /// Whether the template calls `__line__`.
    pub fn uses_line(&self) -> bool {
        let mut found = false;
        visit_args(&self.root, &mut |a| {
            if let Arg::Ident { name, .. } = a
                && name == "__line__"
            {
                found = true;
            }
        });
        found
    }
}

fn fields_of(nodes: &[Node], out: &mut Vec<String>) {
    visit_args(nodes, &mut |a| {
        if let Arg::Field { idents, .. } = a {
            for i in idents {
                if !out.contains(i) {
                    out.push(i.clone());
                }
            }
        }
    });
}

fn visit_args(nodes: &[Node], f: &mut dyn FnMut(&Arg)) {
    fn pipe(p: &Pipe, f: &mut dyn FnMut(&Arg)) {
        for c in &p.cmds {
            for a in &c.args {
                arg(a, f);
            }
        }
    }
    fn arg(a: &Arg, f: &mut dyn FnMut(&Arg)) {
        f(a);
        match a {
            Arg::Pipe(_, p) => pipe(p, f),
            Arg::Chain { node, .. } => arg(node, f),
            _ => {}
        }
    }
    for n in nodes {
        match n {
            Node::Action(p) => pipe(p, f),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                pipe(&b.pipe, f);
                visit_args(&b.list, f);
                if let Some(e) = &b.else_list {
                    visit_args(e, f);
                }
            }
            Node::Text(_) | Node::Break | Node::Continue => {}
        }
    }
}

#[cfg(test)]
mod tests;
