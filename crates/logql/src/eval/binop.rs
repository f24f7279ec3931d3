//! Arithmetic and comparison of two sample values, as Loki's `MergeBinOp` does.

use crate::ast::BinaryOp;

/// `a op b`. Division and modulo by zero are NaN (Loki's choice, unlike Prometheus).
/// Comparisons give 1 or 0; with `filter` (a comparison without `bool`) a false
/// comparison gives `None` (the sample is dropped). Set operators are not values:
/// `None`.
pub(crate) fn apply(op: BinaryOp, a: f64, b: f64, filter: bool) -> Option<f64> {
    let cmp = |c: bool| {
        if c {
            Some(1.0)
        } else if filter {
            None
        } else {
            Some(0.0)
        }
    };
    match op {
        BinaryOp::Add => Some(a + b),
        BinaryOp::Sub => Some(a - b),
        BinaryOp::Mul => Some(a * b),
        BinaryOp::Div => Some(if b == 0.0 { f64::NAN } else { a / b }),
        BinaryOp::Mod => Some(if b == 0.0 { f64::NAN } else { go_mod(a, b) }),
        BinaryOp::Pow => Some(a.powf(b)),
        BinaryOp::Eq => cmp(a == b),
        BinaryOp::Neq => cmp(a != b),
        BinaryOp::Gt => cmp(a > b),
        BinaryOp::Gte => cmp(a >= b),
        BinaryOp::Lt => cmp(a < b),
        BinaryOp::Lte => cmp(a <= b),
        BinaryOp::Or | BinaryOp::And | BinaryOp::Unless => None,
    }
}

/// Go's `math.Mod`: the result has the sign of `a`, like Rust's `%` on floats.
fn go_mod(a: f64, b: f64) -> f64 {
    a % b
}
