//! Metric expressions: aggregations, literals and binary operators.

use super::log::{parse_float, regex_error};
use super::{ParseError, Parser};
use crate::ast::{
    BinaryExpr, BinaryOp, Cardinality, Expr, Grouping, LabelReplace, RangeAggregation, RangeOp,
    SampleExpr, VectorAggregation, VectorMatching, VectorOp,
};
use crate::lexer::{Tok, range_op_name, vector_op_name};

/// Precedence of a binary operator token (higher binds tighter), Prometheus' order.
fn binary_op(t: &Tok) -> Option<(BinaryOp, u8)> {
    Some(match t {
        Tok::Or => (BinaryOp::Or, 1),
        Tok::And => (BinaryOp::And, 2),
        Tok::Unless => (BinaryOp::Unless, 2),
        Tok::CmpEq => (BinaryOp::Eq, 3),
        Tok::Neq => (BinaryOp::Neq, 3),
        Tok::Gt => (BinaryOp::Gt, 3),
        Tok::Gte => (BinaryOp::Gte, 3),
        Tok::Lt => (BinaryOp::Lt, 3),
        Tok::Lte => (BinaryOp::Lte, 3),
        Tok::Add => (BinaryOp::Add, 4),
        Tok::Sub => (BinaryOp::Sub, 4),
        Tok::Mul => (BinaryOp::Mul, 5),
        Tok::Div => (BinaryOp::Div, 5),
        Tok::Mod => (BinaryOp::Mod, 5),
        Tok::Pow => (BinaryOp::Pow, 6),
        _ => return None,
    })
}

pub(crate) fn binary_op_str(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Or => "or",
        BinaryOp::And => "and",
        BinaryOp::Unless => "unless",
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Pow => "^",
        BinaryOp::Eq => "==",
        BinaryOp::Neq => "!=",
        BinaryOp::Gt => ">",
        BinaryOp::Gte => ">=",
        BinaryOp::Lt => "<",
        BinaryOp::Lte => "<=",
    }
}

impl Parser {
    /// An expression whose binary operators bind at least as tight as `min_prec`.
    pub(super) fn parse_expr(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        self.nested(|p| p.parse_expr_at(min_prec))
    }

    fn parse_expr_at(&mut self, min_prec: u8) -> Result<Expr, ParseError> {
        let mut lhs = self.parse_operand()?;
        while let Some((op, prec)) = binary_op(self.peek()) {
            if prec < min_prec {
                break;
            }
            self.deeper()?;
            self.next();
            let (return_bool, matching) = self.parse_bin_modifiers()?;
            // `^` is right-associative, everything else left.
            let next_min = if op == BinaryOp::Pow { prec } else { prec + 1 };
            let rhs = self.parse_expr(next_min)?;
            lhs = Expr::Sample(new_binary(op, return_bool, matching, lhs, rhs)?);
        }
        Ok(lhs)
    }

    /// `bool`, `on (..)`/`ignoring (..)`, `group_left (..)`/`group_right (..)`.
    fn parse_bin_modifiers(&mut self) -> Result<(bool, Option<VectorMatching>), ParseError> {
        let return_bool = if *self.peek() == Tok::Bool {
            self.next();
            true
        } else {
            false
        };
        let on = match self.peek() {
            Tok::On => true,
            Tok::Ignoring => false,
            _ => return Ok((return_bool, None)),
        };
        self.next();
        let labels = self.parse_label_list()?;
        let card = match self.peek() {
            Tok::GroupLeft | Tok::GroupRight => {
                let left = self.next() == Tok::GroupLeft;
                let include = if *self.peek() == Tok::LParen {
                    self.parse_label_list()?
                } else {
                    Vec::new()
                };
                if left {
                    Cardinality::ManyToOne(include)
                } else {
                    Cardinality::OneToMany(include)
                }
            }
            _ => Cardinality::OneToOne,
        };
        // `ignoring ()` without a group modifier changes nothing; Loki drops it.
        if !on && labels.is_empty() && card == Cardinality::OneToOne {
            return Ok((return_bool, None));
        }
        Ok((return_bool, Some(VectorMatching { on, labels, card })))
    }

    /// `( a, b )`, possibly empty.
    fn parse_label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::LParen, &["("])?;
        let mut out = Vec::new();
        if *self.peek() == Tok::RParen {
            self.next();
            return Ok(out);
        }
        loop {
            out.push(self.expect_ident(&["IDENTIFIER"])?);
            match self.next() {
                Tok::Comma => {}
                Tok::RParen => return Ok(out),
                _ => {
                    self.pos -= 1;
                    return Err(self.unexpected(&[",", ")"]));
                }
            }
        }
    }

    fn parse_grouping(&mut self) -> Result<Option<Grouping>, ParseError> {
        let without = match self.peek() {
            Tok::By => false,
            Tok::Without => true,
            _ => return Ok(None),
        };
        self.next();
        let labels = self.parse_label_list()?;
        Ok(Some(Grouping { without, labels }))
    }

    fn parse_operand(&mut self) -> Result<Expr, ParseError> {
        match self.peek().clone() {
            Tok::LBrace => Ok(Expr::Log(self.parse_log_expr()?)),
            Tok::LParen => {
                self.next();
                let e = self.parse_expr(0)?;
                self.expect(Tok::RParen, &[")"])?;
                Ok(e)
            }
            Tok::Number(_) | Tok::Add | Tok::Sub => Ok(Expr::Sample(SampleExpr::Literal(
                self.parse_number_literal()?,
            ))),
            Tok::RangeOp(op) => Ok(Expr::Sample(self.parse_range_aggregation(op)?)),
            Tok::VectorOp(op) => Ok(Expr::Sample(self.parse_vector_aggregation(op)?)),
            Tok::Vector => {
                self.next();
                self.expect(Tok::LParen, &["("])?;
                let v = match self.next() {
                    Tok::Number(n) => parse_float(&n).map_err(|e| {
                        ParseError::semantic(format!("unable to parse vectorExpr as a float: {e}"))
                    })?,
                    _ => {
                        self.pos -= 1;
                        return Err(self.unexpected(&["NUMBER"]));
                    }
                };
                self.expect(Tok::RParen, &[")"])?;
                Ok(Expr::Sample(SampleExpr::VectorLiteral(v)))
            }
            Tok::LabelReplace => {
                self.next();
                self.expect(Tok::LParen, &["("])?;
                let expr = self.parse_metric_arg()?;
                let mut args = Vec::new();
                for _ in 0..4 {
                    self.expect(Tok::Comma, &[","])?;
                    args.push(self.expect_str(&["STRING"])?);
                }
                self.expect(Tok::RParen, &[")"])?;
                let regex = args.pop().unwrap_or_default();
                let src = args.pop().unwrap_or_default();
                let replacement = args.pop().unwrap_or_default();
                let dst = args.pop().unwrap_or_default();
                if regex::Regex::new(&format!("^(?:{regex})$")).is_err() {
                    return Err(ParseError::semantic(format!(
                        "invalid regex in label_replace: {}",
                        regex_error(&regex, true)
                    )));
                }
                Ok(Expr::Sample(SampleExpr::LabelReplace(LabelReplace {
                    expr: Box::new(expr),
                    dst,
                    replacement,
                    src,
                    regex,
                })))
            }
            _ => Err(self.unexpected(&[])),
        }
    }

    /// A metric expression as a function argument: a log query there is a syntax error
    /// at the token after it.
    fn parse_metric_arg(&mut self) -> Result<SampleExpr, ParseError> {
        match self.parse_expr(0)? {
            Expr::Sample(s) => Ok(s),
            Expr::Log(_) => Err(self.unexpected(&[])),
        }
    }

    fn parse_range_aggregation(&mut self, op: RangeOp) -> Result<SampleExpr, ParseError> {
        self.next();
        self.expect(Tok::LParen, &["("])?;
        let param = match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Number(n), Tok::Comma) => {
                self.next();
                self.next();
                Some(n)
            }
            _ => None,
        };
        let range = self.parse_log_range()?;
        self.expect(Tok::RParen, &[")"])?;
        let grouping = self.parse_grouping()?;
        let name = range_op_name(op);
        let param = match param {
            Some(p) if op != RangeOp::QuantileOverTime => {
                return Err(ParseError::semantic(format!(
                    "parameter {p} not supported for operation {name}"
                )));
            }
            Some(p) => Some(parse_float(&p).map_err(|e| {
                ParseError::semantic(format!("invalid parameter for operation {name}: {e}"))
            })?),
            None if op == RangeOp::QuantileOverTime => {
                return Err(ParseError::semantic(format!(
                    "parameter required for operation {name}"
                )));
            }
            None => None,
        };
        let agg = RangeAggregation {
            op,
            param,
            range,
            grouping,
        };
        validate_range_aggregation(&agg)?;
        Ok(SampleExpr::Range(agg))
    }

    fn parse_vector_aggregation(&mut self, op: VectorOp) -> Result<SampleExpr, ParseError> {
        self.next();
        let mut grouping = self.parse_grouping()?;
        let before = grouping.is_some();
        self.expect(Tok::LParen, &["("])?;
        let param = match (self.peek().clone(), self.peek_at(1)) {
            (Tok::Number(n), Tok::Comma) => {
                self.next();
                self.next();
                Some(n)
            }
            _ => None,
        };
        let expr = self.parse_metric_arg()?;
        self.expect(Tok::RParen, &[")"])?;
        if !before {
            grouping = self.parse_grouping()?;
        }
        let name = vector_op_name(op);
        let param = match op {
            VectorOp::Topk | VectorOp::Bottomk => {
                let Some(p) = param else {
                    return Err(ParseError::semantic(format!(
                        "parameter required for operation {name}"
                    )));
                };
                let k: i64 = p
                    .parse()
                    .map_err(|_| ParseError::semantic(format!("invalid parameter {name}({p},")))?;
                if k <= 0 {
                    return Err(ParseError::semantic(format!(
                        "invalid parameter (must be greater than 0) {name}({p}"
                    )));
                }
                Some(k as f64)
            }
            _ => {
                if let Some(p) = param {
                    return Err(ParseError::semantic(format!(
                        "unsupported parameter for operation {name}({p},"
                    )));
                }
                None
            }
        };
        if matches!(op, VectorOp::Sort | VectorOp::SortDesc)
            && grouping.as_ref().is_some_and(|g| !g.labels.is_empty())
        {
            return Err(ParseError::semantic(
                "sort and sort_desc doesn't allow grouping by ",
            ));
        }
        Ok(SampleExpr::Vector(VectorAggregation {
            op,
            param,
            expr: Box::new(expr),
            grouping,
        }))
    }
}

/// Which range operations take grouping, and which need (or refuse) `unwrap`.
fn validate_range_aggregation(r: &RangeAggregation) -> Result<(), ParseError> {
    use RangeOp as R;
    let name = range_op_name(r.op);
    if r.grouping.is_some()
        && !matches!(
            r.op,
            R::AvgOverTime
                | R::StddevOverTime
                | R::StdvarOverTime
                | R::QuantileOverTime
                | R::MaxOverTime
                | R::MinOverTime
                | R::FirstOverTime
                | R::LastOverTime
        )
    {
        return Err(ParseError::semantic(format!(
            "grouping not allowed for {name} aggregation"
        )));
    }
    if r.range.unwrap.is_some() {
        if matches!(r.op, R::CountOverTime | R::BytesOverTime | R::BytesRate) {
            return Err(ParseError::semantic(format!(
                "invalid aggregation {name} with unwrap"
            )));
        }
        return Ok(());
    }
    if !matches!(
        r.op,
        R::BytesOverTime | R::BytesRate | R::CountOverTime | R::Rate | R::AbsentOverTime
    ) {
        return Err(ParseError::semantic(format!(
            "invalid aggregation {name} without unwrap"
        )));
    }
    Ok(())
}

fn new_binary(
    op: BinaryOp,
    return_bool: bool,
    matching: Option<VectorMatching>,
    lhs: Expr,
    rhs: Expr,
) -> Result<SampleExpr, ParseError> {
    let o = binary_op_str(op);
    let Expr::Sample(lhs) = lhs else {
        return Err(ParseError::semantic(format!(
            "unexpected type for left leg of binary operation ({o}): log query"
        )));
    };
    let Expr::Sample(rhs) = rhs else {
        return Err(ParseError::semantic(format!(
            "unexpected type for right leg of binary operation ({o}): log query"
        )));
    };
    let set_op = matches!(op, BinaryOp::Or | BinaryOp::And | BinaryOp::Unless);
    if set_op {
        if let SampleExpr::Literal(v) = lhs {
            return Err(ParseError::semantic(format!(
                "unexpected literal for left leg of logical/set binary operation ({o}): {v:.6}"
            )));
        }
        if let SampleExpr::Literal(v) = rhs {
            return Err(ParseError::semantic(format!(
                "unexpected literal for right leg of logical/set binary operation ({o}): {v:.6}"
            )));
        }
    }
    if let (SampleExpr::Literal(a), SampleExpr::Literal(b)) = (&lhs, &rhs) {
        // `2 * 3` is the literal 6; comparisons give 0 or 1.
        return Ok(SampleExpr::Literal(
            crate::eval::binop::apply(op, *a, *b, false).unwrap_or(0.0),
        ));
    }
    Ok(SampleExpr::Binary(BinaryExpr {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
        return_bool,
        matching,
    }))
}
