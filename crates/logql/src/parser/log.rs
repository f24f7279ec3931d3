//! Selectors, pipelines, label filters and log ranges.

use super::{ParseError, Parser};
use crate::ast::{
    CmpOp, ExtractParam, LabelFilter, LabelFmt, LabelSelect, LineFilter, LineFilterOp,
    LineFilterValue, LogExpr, LogRange, MatchOp, Matcher, Parser as LineParser, Stage, Unwrap,
    UnwrapConversion,
};
use crate::lexer::Tok;

/// A log range, or (inside parentheses) a log expression still waiting for its range.
enum RangeOrPartial {
    Range(LogRange),
    Partial(LogExpr, Option<Unwrap>),
}

impl Parser {
    /// `{name="value", ...}`
    pub(super) fn parse_selector(&mut self) -> Result<Vec<crate::ast::Matcher>, ParseError> {
        self.expect(Tok::LBrace, &["{"])?;
        let mut out = Vec::new();
        if *self.peek() == Tok::RBrace {
            self.next();
            return Ok(out);
        }
        loop {
            out.push(self.parse_matcher()?);
            match self.peek() {
                Tok::Comma => {
                    self.next();
                }
                Tok::RBrace => {
                    self.next();
                    return Ok(out);
                }
                _ => return Err(self.unexpected(&["}", ","])),
            }
        }
    }

    /// `name op "value"` with op one of `= != =~ !~`.
    fn parse_matcher(&mut self) -> Result<Matcher, ParseError> {
        let name = self.expect_ident(&["IDENTIFIER"])?;
        let op = match self.peek() {
            Tok::Eq => MatchOp::Eq,
            Tok::Neq => MatchOp::Neq,
            Tok::Re => MatchOp::Re,
            Tok::Nre => MatchOp::Nre,
            _ => return Err(self.unexpected(&["=", "!=", "=~", "!~"])),
        };
        self.next();
        let value = self.expect_str(&["STRING"])?;
        new_matcher(name, op, value)
    }

    /// A log query: a selector and its pipeline.
    pub(super) fn parse_log_expr(&mut self) -> Result<LogExpr, ParseError> {
        let selector = self.parse_selector()?;
        let pipeline = self.parse_pipeline()?;
        if *self.peek() == Tok::Pipe && *self.peek_at(1) == Tok::Unwrap {
            // `| unwrap` belongs in a range aggregation only.
            self.next();
            return Err(self.unexpected(&[]));
        }
        Ok(LogExpr { selector, pipeline })
    }

    /// Pipeline stages up to something that is not a stage (or up to `| unwrap`).
    fn parse_pipeline(&mut self) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::PipeExact => Some(LineFilterOp::Contains),
                Tok::Neq => Some(LineFilterOp::NotContains),
                Tok::PipeMatch => Some(LineFilterOp::Regex),
                Tok::Nre => Some(LineFilterOp::NotRegex),
                Tok::PipePattern => Some(LineFilterOp::Pattern),
                Tok::Npa => Some(LineFilterOp::NotPattern),
                Tok::Pipe if *self.peek_at(1) != Tok::Unwrap => None,
                _ => return Ok(stages),
            };
            if let Some(op) = op {
                self.next();
                self.parse_line_filter(op, &mut stages)?;
                continue;
            }
            self.next(); // |
            let stage = self.parse_stage()?;
            stages.push(stage);
        }
    }

    /// The value(s) of a line filter after its operator. `!= "a" or "b"` means neither,
    /// so negated alternatives become separate filters, as Loki rewrites them.
    fn parse_line_filter(
        &mut self,
        op: LineFilterOp,
        stages: &mut Vec<Stage>,
    ) -> Result<(), ParseError> {
        let mut values = vec![self.parse_line_filter_value(true)?];
        while *self.peek() == Tok::Or {
            self.next();
            values.push(self.parse_line_filter_value(false)?);
        }
        let negated = matches!(
            op,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        );
        for v in &values {
            check_line_filter_value(op, v)?;
        }
        if negated {
            for v in values {
                stages.push(Stage::LineFilter(LineFilter {
                    op,
                    values: vec![v],
                }));
            }
        } else {
            stages.push(Stage::LineFilter(LineFilter { op, values }));
        }
        Ok(())
    }

    fn parse_line_filter_value(&mut self, first: bool) -> Result<LineFilterValue, ParseError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.next();
                Ok(LineFilterValue::Text(s))
            }
            Tok::Ip => {
                self.next();
                self.expect(Tok::LParen, &["("])?;
                let s = self.expect_str(&["STRING"])?;
                self.expect(Tok::RParen, &[")"])?;
                Ok(LineFilterValue::Ip(s))
            }
            _ if first => Err(self.unexpected(&["STRING", "ip"])),
            _ => Err(self.unexpected(&["STRING", "ip"])),
        }
    }

    /// A stage after `|`.
    fn parse_stage(&mut self) -> Result<Stage, ParseError> {
        match self.peek().clone() {
            Tok::Json => {
                self.next();
                let params = self.parse_extract_params()?;
                Ok(Stage::Parser(LineParser::Json { params }))
            }
            Tok::Logfmt => {
                self.next();
                let (mut strict, mut keep_empty) = (false, false);
                while let Tok::Flag(f) = self.peek().clone() {
                    self.next();
                    match f.as_str() {
                        "--strict" => strict = true,
                        _ => keep_empty = true,
                    }
                }
                let params = self.parse_extract_params()?;
                Ok(Stage::Parser(LineParser::Logfmt {
                    strict,
                    keep_empty,
                    params,
                }))
            }
            Tok::Regexp => {
                self.next();
                let re = self.expect_str(&["STRING"])?;
                check_regexp_parser(&re)?;
                Ok(Stage::Parser(LineParser::Regexp(re)))
            }
            Tok::Pattern => {
                self.next();
                let p = self.expect_str(&["STRING"])?;
                check_pattern_parser(&p)?;
                Ok(Stage::Parser(LineParser::Pattern(p)))
            }
            Tok::Unpack => {
                self.next();
                Ok(Stage::Parser(LineParser::Unpack))
            }
            Tok::LineFmt => {
                self.next();
                Ok(Stage::LineFormat(self.expect_str(&["STRING"])?))
            }
            Tok::LabelFmt => {
                self.next();
                let mut fmts = Vec::new();
                loop {
                    let dst = self.expect_ident(&["IDENTIFIER"])?;
                    self.expect(Tok::Eq, &["="])?;
                    match self.next() {
                        Tok::Ident(src) => fmts.push(LabelFmt::Rename { dst, src }),
                        Tok::Str(template) => fmts.push(LabelFmt::Template { dst, template }),
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected(&["IDENTIFIER", "STRING"]));
                        }
                    }
                    if *self.peek() != Tok::Comma {
                        break;
                    }
                    self.next();
                }
                Ok(Stage::LabelFormat(fmts))
            }
            Tok::Decolorize => {
                self.next();
                Ok(Stage::Decolorize)
            }
            Tok::Drop | Tok::Keep => {
                let drop = self.next() == Tok::Drop;
                let mut names = Vec::new();
                loop {
                    let name = self.expect_ident(&["IDENTIFIER"])?;
                    if matches!(self.peek(), Tok::Eq | Tok::Neq | Tok::Re | Tok::Nre) {
                        let op = match self.next() {
                            Tok::Eq => MatchOp::Eq,
                            Tok::Neq => MatchOp::Neq,
                            Tok::Re => MatchOp::Re,
                            _ => MatchOp::Nre,
                        };
                        let value = self.expect_str(&["STRING"])?;
                        names.push(LabelSelect::Matcher(new_matcher(name, op, value)?));
                    } else {
                        names.push(LabelSelect::Name(name));
                    }
                    if *self.peek() != Tok::Comma {
                        break;
                    }
                    self.next();
                }
                Ok(if drop {
                    Stage::Drop(names)
                } else {
                    Stage::Keep(names)
                })
            }
            Tok::Ident(_) | Tok::LParen => Ok(Stage::LabelFilter(self.parse_label_filter(0)?)),
            _ => Err(self.unexpected(&[])),
        }
    }

    /// `a="x.y", b` of `json` and `logfmt`; none when no identifier follows.
    fn parse_extract_params(&mut self) -> Result<Vec<ExtractParam>, ParseError> {
        let mut params = Vec::new();
        if !matches!(self.peek(), Tok::Ident(_)) {
            return Ok(params);
        }
        loop {
            let label = self.expect_ident(&["IDENTIFIER"])?;
            let expr = if *self.peek() == Tok::Eq {
                self.next();
                self.expect_str(&["STRING"])?
            } else {
                label.clone()
            };
            params.push(ExtractParam { label, expr });
            if *self.peek() != Tok::Comma {
                return Ok(params);
            }
            self.next();
        }
    }

    /// A label filter expression. `or` binds loosest and `and` tighter, both to the left;
    /// `,` and juxtaposition take everything to their right, as Loki's grammar (where
    /// they have no precedence and yacc shifts) does.
    pub(super) fn parse_label_filter(&mut self, min_prec: u8) -> Result<LabelFilter, ParseError> {
        self.nested(|p| p.parse_label_filter_at(min_prec))
    }

    fn parse_label_filter_at(&mut self, min_prec: u8) -> Result<LabelFilter, ParseError> {
        let mut lhs = self.parse_label_filter_primary()?;
        loop {
            // Each operator joins two filters in a node one level up.
            match self.peek() {
                Tok::Comma => {
                    self.deeper()?;
                    self.next();
                    let rhs = self.parse_label_filter(0)?;
                    lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
                }
                Tok::Ident(_) | Tok::LParen => {
                    self.deeper()?;
                    let rhs = self.parse_label_filter(0)?;
                    lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
                }
                Tok::Or if min_prec <= 1 => {
                    self.deeper()?;
                    self.next();
                    let rhs = self.parse_label_filter(2)?;
                    lhs = LabelFilter::Or(Box::new(lhs), Box::new(rhs));
                }
                Tok::And if min_prec <= 2 => {
                    self.deeper()?;
                    self.next();
                    let rhs = self.parse_label_filter(3)?;
                    lhs = LabelFilter::And(Box::new(lhs), Box::new(rhs));
                }
                _ => return Ok(lhs),
            }
        }
    }

    fn parse_label_filter_primary(&mut self) -> Result<LabelFilter, ParseError> {
        if *self.peek() == Tok::LParen {
            self.next();
            let f = self.parse_label_filter(0)?;
            self.expect(Tok::RParen, &[")"])?;
            return Ok(f);
        }
        let name = self.expect_ident(&["IDENTIFIER", "("])?;
        let op_tok = self.next();
        let cmp = match op_tok {
            Tok::Eq => CmpOp::Eq,
            Tok::CmpEq => CmpOp::Eq,
            Tok::Neq => CmpOp::Neq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Gte,
            Tok::Lt => CmpOp::Lt,
            Tok::Lte => CmpOp::Lte,
            Tok::Re | Tok::Nre => {
                let op = if op_tok == Tok::Re {
                    MatchOp::Re
                } else {
                    MatchOp::Nre
                };
                let value = self.expect_str(&["STRING"])?;
                return Ok(LabelFilter::String(new_matcher(name, op, value)?));
            }
            _ => {
                self.pos -= 1;
                return Err(self.unexpected(&[]));
            }
        };
        let string_op = matches!(op_tok, Tok::Eq | Tok::Neq);
        match self.peek().clone() {
            Tok::Str(value) if string_op => {
                self.next();
                let op = if op_tok == Tok::Eq {
                    MatchOp::Eq
                } else {
                    MatchOp::Neq
                };
                Ok(LabelFilter::String(new_matcher(name, op, value)?))
            }
            Tok::Ip if string_op => {
                self.next();
                self.expect(Tok::LParen, &["("])?;
                let pattern = self.expect_str(&["STRING"])?;
                self.expect(Tok::RParen, &[")"])?;
                Ok(LabelFilter::Ip {
                    name,
                    negate: op_tok == Tok::Neq,
                    pattern,
                })
            }
            Tok::Duration(value) => {
                self.next();
                Ok(LabelFilter::Duration {
                    name,
                    op: cmp,
                    value,
                })
            }
            Tok::Bytes(value) => {
                self.next();
                Ok(LabelFilter::Bytes {
                    name,
                    op: cmp,
                    value,
                })
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => {
                let value = self.parse_number_literal()?;
                Ok(LabelFilter::Number {
                    name,
                    op: cmp,
                    value,
                })
            }
            _ => Err(self.unexpected(&[])),
        }
    }

    /// `NUMBER`, `+NUMBER` or `-NUMBER`.
    pub(super) fn parse_number_literal(&mut self) -> Result<f64, ParseError> {
        let neg = match self.peek() {
            Tok::Add => {
                self.next();
                false
            }
            Tok::Sub => {
                self.next();
                true
            }
            _ => false,
        };
        match self.peek().clone() {
            Tok::Number(n) => {
                self.next();
                let v = parse_float(&n).map_err(|e| {
                    ParseError::semantic(format!("unable to parse literal as a float: {e}"))
                })?;
                Ok(if neg { -v } else { v })
            }
            _ => Err(self.unexpected(&["NUMBER"])),
        }
    }

    /// The argument of a range aggregation: a log query with a range, in any of the
    /// orders Loki accepts (`{..} | json [5m]`, `{..}[5m] | json`, `({..} | json)[5m]`).
    pub(super) fn parse_log_range(&mut self) -> Result<LogRange, ParseError> {
        self.nested(Parser::parse_log_range_at)
    }

    fn parse_log_range_at(&mut self) -> Result<LogRange, ParseError> {
        match self.peek() {
            Tok::LParen => {
                self.next();
                let inner = self.parse_log_range_inner(true)?;
                self.expect(Tok::RParen, &[")"])?;
                match inner {
                    RangeOrPartial::Range(r) => Ok(r),
                    RangeOrPartial::Partial(log, unwrap) => {
                        let interval = self.expect_range()?;
                        let offset = self.parse_offset()?;
                        let mut unwrap = unwrap;
                        if unwrap.is_none()
                            && log.pipeline.is_empty()
                            && *self.peek() == Tok::Pipe
                            && *self.peek_at(1) == Tok::Unwrap
                        {
                            unwrap = Some(self.parse_unwrap()?);
                        }
                        Ok(LogRange {
                            log,
                            unwrap,
                            interval,
                            offset,
                        })
                    }
                }
            }
            Tok::LBrace => match self.parse_log_range_inner(false)? {
                RangeOrPartial::Range(r) => Ok(r),
                RangeOrPartial::Partial(..) => Err(self.unexpected(&[])),
            },
            _ => Err(self.unexpected(&["NUMBER", "{", "("])),
        }
    }

    fn parse_log_range_inner(&mut self, in_paren: bool) -> Result<RangeOrPartial, ParseError> {
        if *self.peek() == Tok::LParen {
            return Ok(RangeOrPartial::Range(self.parse_log_range()?));
        }
        let selector = self.parse_selector()?;
        if let Tok::Range(interval) = *self.peek() {
            self.next();
            let offset = self.parse_offset()?;
            let pipeline = self.parse_pipeline()?;
            let unwrap = self.parse_opt_unwrap()?;
            return Ok(RangeOrPartial::Range(LogRange {
                log: LogExpr { selector, pipeline },
                unwrap,
                interval,
                offset,
            }));
        }
        let pipeline = self.parse_pipeline()?;
        let unwrap = self.parse_opt_unwrap()?;
        let log = LogExpr { selector, pipeline };
        if in_paren && *self.peek() == Tok::RParen {
            return Ok(RangeOrPartial::Partial(log, unwrap));
        }
        let interval = self.expect_range()?;
        let offset = self.parse_offset()?;
        Ok(RangeOrPartial::Range(LogRange {
            log,
            unwrap,
            interval,
            offset,
        }))
    }

    fn expect_range(&mut self) -> Result<i64, ParseError> {
        match *self.peek() {
            Tok::Range(d) => {
                self.next();
                Ok(d)
            }
            _ => Err(self.unexpected(&[])),
        }
    }

    fn parse_offset(&mut self) -> Result<i64, ParseError> {
        if *self.peek() != Tok::Offset {
            return Ok(0);
        }
        self.next();
        match *self.peek() {
            Tok::Duration(d) => {
                self.next();
                Ok(d)
            }
            _ => Err(self.unexpected(&["DURATION"])),
        }
    }

    fn parse_opt_unwrap(&mut self) -> Result<Option<Unwrap>, ParseError> {
        if *self.peek() == Tok::Pipe && *self.peek_at(1) == Tok::Unwrap {
            return Ok(Some(self.parse_unwrap()?));
        }
        Ok(None)
    }

    /// `| unwrap [conv(]label[)]` and the label filters after it.
    fn parse_unwrap(&mut self) -> Result<Unwrap, ParseError> {
        self.next(); // |
        self.next(); // unwrap
        let conversion = match self.peek() {
            Tok::BytesConv => Some(UnwrapConversion::Bytes),
            Tok::DurationConv => Some(UnwrapConversion::Duration),
            Tok::DurationSecondsConv => Some(UnwrapConversion::DurationSeconds),
            _ => None,
        };
        let label = if conversion.is_some() {
            self.next();
            self.expect(Tok::LParen, &["("])?;
            let l = self.expect_ident(&["IDENTIFIER"])?;
            self.expect(Tok::RParen, &[")"])?;
            l
        } else {
            self.expect_ident(&["IDENTIFIER"])?
        };
        let mut post_filters = Vec::new();
        while *self.peek() == Tok::Pipe {
            self.next();
            post_filters.push(self.parse_label_filter(0)?);
        }
        Ok(Unwrap {
            label,
            conversion,
            post_filters,
        })
    }
}

/// Builds a matcher; a regex that does not compile is a parse error, worded like Go's.
pub(super) fn new_matcher(name: String, op: MatchOp, value: String) -> Result<Matcher, ParseError> {
    Matcher::new(name, op, value.clone())
        .map_err(|_| ParseError::semantic(regex_error(&value, false)))
}

/// A Go-style message for a regex that does not compile.
pub(super) fn regex_error(re: &str, _anchored: bool) -> String {
    use regex_syntax::ast::ErrorKind as K;
    let why = match regex_syntax::ast::parse::Parser::new().parse(re) {
        Err(e) => match e.kind() {
            K::GroupUnclosed => "missing closing )".to_string(),
            K::GroupUnopened => "unexpected )".to_string(),
            K::ClassUnclosed => "missing closing ]".to_string(),
            K::RepetitionMissing => "missing argument to repetition operator".to_string(),
            K::EscapeUnrecognized => "invalid escape sequence".to_string(),
            K::RepetitionCountInvalid | K::RepetitionCountUnclosed => {
                "invalid repeat count".to_string()
            }
            K::GroupNameInvalid | K::GroupNameEmpty | K::GroupNameUnexpectedEof => {
                "invalid named capture".to_string()
            }
            K::GroupNameDuplicate { .. } => "duplicate capture group name".to_string(),
            other => other.to_string(),
        },
        Ok(_) => "invalid or unsupported Perl syntax".to_string(),
    };
    format!("error parsing regexp: {why}: `{re}`")
}

fn check_line_filter_value(op: LineFilterOp, v: &LineFilterValue) -> Result<(), ParseError> {
    if let LineFilterValue::Text(t) = v
        && matches!(op, LineFilterOp::Regex | LineFilterOp::NotRegex)
        && regex::Regex::new(t).is_err()
    {
        return Err(ParseError::semantic(regex_error(t, false)));
    }
    Ok(())
}

/// Loki checks a `regexp` stage at parse time: it must compile and name a capture.
fn check_regexp_parser(re: &str) -> Result<(), ParseError> {
    let compiled = regex::Regex::new(re).map_err(|_| {
        ParseError::semantic(format!("invalid regexp parser: {}", regex_error(re, false)))
    })?;
    if compiled.capture_names().flatten().next().is_none() {
        return Err(ParseError::semantic(
            "invalid regexp parser: at least one named capture must be supplied",
        ));
    }
    Ok(())
}

/// Loki checks a `pattern` stage at parse time: it needs a named capture and no two
/// captures in a row.
fn check_pattern_parser(p: &str) -> Result<(), ParseError> {
    let mut named = 0;
    let mut prev_capture = false;
    let mut rest = p;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('<')
            && let Some(end) = after.find('>')
            && is_capture_name(&after[..end])
        {
            if prev_capture {
                return Err(ParseError::semantic(
                    "invalid pattern parser: found consecutive capture: invalid expression",
                ));
            }
            if &after[..end] != "_" {
                named += 1;
            }
            prev_capture = true;
            rest = &after[end + 1..];
            continue;
        }
        prev_capture = false;
        let n = rest.chars().next().map_or(1, char::len_utf8);
        rest = &rest[n..];
    }
    if named == 0 {
        return Err(ParseError::semantic(
            "invalid pattern parser: at least one capture is required",
        ));
    }
    Ok(())
}

fn is_capture_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// Go's `strconv.ParseFloat` for the literals the lexer produces.
pub(super) fn parse_float(s: &str) -> Result<f64, String> {
    let bad = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    if s.contains('_') || s.starts_with("0x") || s.starts_with("0X") {
        if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
            && !h.contains('_')
        {
            return Err(bad());
        }
        return Err(bad());
    }
    if s.starts_with("0o") || s.starts_with("0b") || s.starts_with("0O") || s.starts_with("0B") {
        return Err(bad());
    }
    let v = s.parse::<f64>().map_err(|_| bad())?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {s:?}: value out of range"
        ));
    }
    Ok(v)
}
