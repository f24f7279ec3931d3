//! The LogQL parser: recursive descent over the lexer's tokens, with precedence climbing
//! for binary operators, into [`ast::Expr`](crate::ast::Expr).
//!
//! It accepts the language Loki's grammar accepts and rejects what Loki rejects, with
//! Loki's messages: syntax errors name the unexpected token and its position
//! (`parse error at line 1, col 11: syntax error: unexpected $end, expecting } or ,`),
//! semantic errors have no position (`parse error : grouping not allowed for
//! sum_over_time aggregation`). Like Loki, it folds operations between two number
//! literals (`2 * 3` is the literal `6`) and drops parentheses from the tree.
//!
//! The log half (selectors, pipelines, label filters, ranges) is in `parser/log.rs`, the
//! metric half (aggregations, binary operators) in `parser/metric.rs`.

mod log;
mod metric;

pub(crate) use metric::binary_op_str;

use std::fmt;

use crate::ast::{Expr, LogExpr, SampleExpr};
use crate::lexer::{self, Tok, Token};

/// Why a query could not be parsed. HTTP 400.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    pub msg: String,
    /// 1-based; 0 with `col == 0` when the error has no position.
    pub line: u32,
    pub col: u32,
}

impl ParseError {
    /// An error without a position, as Loki reports semantic errors.
    pub fn semantic(msg: impl Into<String>) -> ParseError {
        ParseError {
            msg: msg.into(),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 && self.col == 0 {
            write!(f, "parse error : {}", self.msg)
        } else {
            write!(
                f,
                "parse error at line {}, col {}: {}",
                self.line, self.col, self.msg
            )
        }
    }
}

impl std::error::Error for ParseError {}

/// Loki refuses queries this long (128 KiB).
const MAX_INPUT_SIZE: usize = 131_072;

/// How deep a query may nest: each parenthesis, aggregation or label-filter group being
/// parsed counts while it is open, each binary operator (`+`, `and`, `or`, `,` between
/// label filters, ...) for good. The parser, the evaluator and the tree's own drop all
/// recurse once per level, so this bounds their stack; Loki (whose parser is a table
/// and whose stacks grow) has no such limit, but no real query comes near it.
pub const MAX_NESTING: usize = 128;

const ERR_EMPTY_MATCHERS: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Parses and validates a query as Loki's `ParseExpr` does.
pub fn parse(q: &str) -> Result<Expr, ParseError> {
    if q.len() >= MAX_INPUT_SIZE {
        return Err(ParseError::semantic(format!(
            "input size too long ({} > {MAX_INPUT_SIZE})",
            q.len()
        )));
    }
    let toks = lexer::lex(q);
    let mut p = Parser {
        toks,
        pos: 0,
        nesting: 0,
    };
    let e = p.parse_expr(0)?;
    if *p.peek() != Tok::Eof {
        return Err(p.unexpected(&[]));
    }
    validate(&e)?;
    Ok(e)
}

/// A query's selectors must each select something specific.
fn validate(e: &Expr) -> Result<(), ParseError> {
    match e {
        Expr::Log(l) => validate_log(l),
        Expr::Sample(s) => validate_sample(s),
    }
}

fn validate_log(l: &LogExpr) -> Result<(), ParseError> {
    if l.selector.iter().all(|m| m.matches_empty()) {
        return Err(ParseError::semantic(ERR_EMPTY_MATCHERS));
    }
    Ok(())
}

fn validate_sample(s: &SampleExpr) -> Result<(), ParseError> {
    match s {
        SampleExpr::Range(r) => validate_log(&r.range.log),
        SampleExpr::Vector(v) => validate_sample(&v.expr),
        SampleExpr::Binary(b) => {
            validate_sample(&b.lhs)?;
            validate_sample(&b.rhs)
        }
        SampleExpr::LabelReplace(l) => validate_sample(&l.expr),
        SampleExpr::Paren(e) => validate_sample(e),
        SampleExpr::VectorLiteral(_) | SampleExpr::Literal(_) => Ok(()),
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Open nesting levels plus the binary operators so far (see [`MAX_NESTING`]).
    nesting: usize,
}

impl Parser {
    /// Runs `f` one nesting level deeper.
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Parser) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        self.deeper()?;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    /// Counts one more level (one more binary operator, or an opening).
    fn deeper(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ParseError::semantic(format!(
                "query is nested too deeply: more than {MAX_NESTING} levels of parentheses, aggregations and operators"
            )));
        }
        Ok(())
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.pos.min(self.toks.len() - 1)].tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks[(self.pos + k).min(self.toks.len() - 1)].tok
    }

    fn next(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// `syntax error: unexpected X[, expecting A or B]` at the current token.
    fn unexpected(&self, expecting: &[&str]) -> ParseError {
        let t = &self.toks[self.pos.min(self.toks.len() - 1)];
        if let Tok::Error(m) = &t.tok {
            return ParseError {
                msg: m.clone(),
                line: t.line,
                col: t.col,
            };
        }
        let mut msg = format!("syntax error: unexpected {}", t.tok.describe());
        if !expecting.is_empty() {
            msg.push_str(", expecting ");
            msg.push_str(&expecting.join(" or "));
        }
        // An empty query ends before any position exists; Loki reports none.
        let (line, col) = if t.tok == Tok::Eof && t.line == 1 && t.col == 1 {
            (0, 0)
        } else {
            (t.line, t.col)
        };
        ParseError { msg, line, col }
    }

    fn expect(&mut self, want: Tok, expecting: &[&str]) -> Result<(), ParseError> {
        if *self.peek() == want {
            self.next();
            Ok(())
        } else {
            Err(self.unexpected(expecting))
        }
    }

    fn expect_str(&mut self, expecting: &[&str]) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(expecting)),
        }
    }

    fn expect_ident(&mut self, expecting: &[&str]) -> Result<String, ParseError> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.next();
                Ok(s)
            }
            _ => Err(self.unexpected(expecting)),
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
