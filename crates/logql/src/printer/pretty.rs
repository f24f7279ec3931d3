//! Loki's query formatter (`format_query`): an expression stays on one line when its
//! one-line form fits in 100 characters; otherwise its parts go on their own lines,
//! indented two spaces per level.

use protocol::quote::quote;
use protocol::time::format_duration;

use super::{conversion, go_float, label_filter, line_filter, log_expr, sample, selector, stage};
use crate::ast::{
    BinaryExpr, Cardinality, Expr, Grouping, LogExpr, LogRange, SampleExpr, Stage, Unwrap, VectorOp,
};
use crate::lexer::{range_op_name, vector_op_name};
use crate::parser::binary_op_str;

/// Loki splits expressions longer than this.
const MAX_CHARS_PER_LINE: usize = 100;

thread_local! {
    static WIDTH: std::cell::Cell<usize> = const { std::cell::Cell::new(MAX_CHARS_PER_LINE) };
}

fn indent(level: usize) -> String {
    "  ".repeat(level)
}

fn need_split(s: &str) -> bool {
    s.len() > WIDTH.with(|w| w.get())
}

/// [`pretty`] with another line width, as Loki's formatter tests use.
#[cfg(test)]
pub(crate) fn pretty_width(e: &Expr, width: usize) -> String {
    WIDTH.with(|w| w.set(width));
    let s = pretty(e);
    WIDTH.with(|w| w.set(MAX_CHARS_PER_LINE));
    s
}

/// What `/loki/api/v1/format_query` answers for a parsed query.
pub fn pretty(e: &Expr) -> String {
    match e {
        Expr::Log(l) => log(l, 0),
        Expr::Sample(s) => sample_pretty(s, 0),
    }
}

fn log(l: &LogExpr, level: usize) -> String {
    let one = log_expr(l);
    if l.pipeline.is_empty() || !need_split(&one) {
        return indent(level) + &one;
    }
    let mut out = format!("{}{}\n", indent(level), selector(&l.selector));
    // Consecutive line filters form one stage in Loki's tree.
    let mut groups: Vec<&[Stage]> = Vec::new();
    let mut i = 0;
    while i < l.pipeline.len() {
        let mut j = i + 1;
        if matches!(l.pipeline[i], Stage::LineFilter(_)) {
            while j < l.pipeline.len() && matches!(l.pipeline[j], Stage::LineFilter(_)) {
                j += 1;
            }
        }
        groups.push(&l.pipeline[i..j]);
        i = j;
    }
    let lines: Vec<String> = groups.iter().map(|g| stage_group(g, level + 1)).collect();
    out.push_str(&lines.join("\n"));
    out
}

fn stage_group(g: &[Stage], level: usize) -> String {
    match g {
        [Stage::Decolorize] => stage(&g[0]),
        [Stage::LineFilter(_), ..] => {
            let one: Vec<String> = g.iter().map(stage).collect();
            let one = one.join(" ");
            if !need_split(&one) {
                return indent(level) + &one;
            }
            let lines: Vec<String> = g
                .iter()
                .map(|s| match s {
                    Stage::LineFilter(f) => indent(level) + &line_filter(f),
                    other => indent(level) + &stage(other),
                })
                .collect();
            lines.join("\n")
        }
        _ => {
            let v: Vec<String> = g.iter().map(|s| indent(level) + &stage(s)).collect();
            v.join("\n")
        }
    }
}

fn unwrap_pretty(u: &Unwrap, level: usize) -> String {
    let mut s = indent(level);
    match u.conversion {
        Some(c) => s.push_str(&format!("| unwrap {}({})", conversion(c), u.label)),
        None => s.push_str(&format!("| unwrap {}", u.label)),
    }
    for f in &u.post_filters {
        s.push_str(&format!("\n{}| {}", indent(level), label_filter(f)));
    }
    s
}

fn log_range_pretty(r: &LogRange, level: usize) -> String {
    let mut s = log(&r.log, level);
    if let Some(u) = &r.unwrap {
        s.push('\n');
        s.push_str(&unwrap_pretty(u, level + 1));
    }
    s = format!("{s} [{}]", format_duration(r.interval));
    if r.offset != 0 {
        s.push_str(&format!(" offset {}", format_duration(r.offset)));
    }
    s
}

/// ` by (a, b)`, ` without (a, b)`; `by ()` prints nothing and `without ()` no list.
fn grouping_pretty(g: &Grouping) -> String {
    let mut s = String::new();
    if g.without {
        s.push_str(" without");
    } else if !g.labels.is_empty() {
        s.push_str(" by");
    }
    if !g.labels.is_empty() {
        s.push_str(&format!(" ({})", g.labels.join(", ")));
    }
    s
}

fn binary_op_pretty(b: &BinaryExpr) -> String {
    let mut op = binary_op_str(b.op).to_string();
    if b.return_bool {
        op.push_str(" bool");
    }
    if let Some(m) = &b.matching {
        let mut group = match &m.card {
            Cardinality::OneToOne => String::new(),
            Cardinality::ManyToOne(_) => "group_left".to_string(),
            Cardinality::OneToMany(_) => "group_right".to_string(),
        };
        if let Cardinality::ManyToOne(inc) | Cardinality::OneToMany(inc) = &m.card
            && !inc.is_empty()
        {
            group = format!("{group} ({})", inc.join(", "));
        }
        if !m.labels.is_empty() {
            op = format!(
                "{op} {} ({}) {group}",
                if m.on { "on" } else { "ignoring" },
                m.labels.join(", ")
            );
        }
    }
    op
}

/// An operand of a split binary operation. Loki prints a nested operation that is split
/// too without its parentheses, which changes what the query means when precedence
/// does not group it the same way (`a / (b + c)` would read back as `(a / b) + c`);
/// this keeps them there, and only there.
fn operand_pretty(parent: &BinaryExpr, e: &SampleExpr, left: bool, level: usize) -> String {
    let inner = match e {
        SampleExpr::Paren(inner) => inner,
        _ => e,
    };
    if let SampleExpr::Binary(child) = inner
        && need_split(&sample(inner))
    {
        let (p, c) = (precedence(parent.op), precedence(child.op));
        let right_assoc = parent.op == crate::ast::BinaryOp::Pow;
        let needed = c < p || (c == p && (left == right_assoc));
        if needed {
            return format!(
                "{}(\n{}\n{})",
                indent(level),
                sample_pretty(inner, level + 1),
                indent(level)
            );
        }
    }
    sample_pretty(e, level)
}

fn precedence(op: crate::ast::BinaryOp) -> u8 {
    use crate::ast::BinaryOp as B;
    match op {
        B::Or => 1,
        B::And | B::Unless => 2,
        B::Eq | B::Neq | B::Gt | B::Gte | B::Lt | B::Lte => 3,
        B::Add | B::Sub => 4,
        B::Mul | B::Div | B::Mod => 5,
        B::Pow => 6,
    }
}

fn sample_pretty(e: &SampleExpr, level: usize) -> String {
    let one = sample(e);
    if !need_split(&one) {
        return indent(level) + &one;
    }
    match e {
        SampleExpr::Range(r) => {
            let mut s = indent(level) + range_op_name(r.op) + "(\n";
            if let Some(p) = r.param {
                s.push_str(&format!("{}{},\n", indent(level + 1), go_float(p)));
            }
            s.push_str(&log_range_pretty(&r.range, level + 1));
            s.push_str(&format!("\n{})", indent(level)));
            if let Some(g) = &r.grouping {
                s.push_str(&grouping_pretty(g));
            }
            s
        }
        SampleExpr::Vector(v) => {
            let left = sample_pretty(&v.expr, level + 1);
            let mut params = Vec::new();
            if matches!(v.op, VectorOp::Topk | VectorOp::Bottomk) {
                params.push(format!(
                    "{}{}",
                    indent(level + 1),
                    v.param.unwrap_or(0.0) as i64
                ));
            }
            params.push(left);
            let mut s = indent(level) + vector_op_name(v.op);
            if let Some(g) = &v.grouping {
                s.push_str(&grouping_pretty(g));
            }
            s.push_str("(\n");
            s.push_str(&params.join(",\n"));
            s.push_str(&format!("\n{})", indent(level)));
            s
        }
        SampleExpr::Binary(b) => format!(
            "{}\n{}{}\n{}",
            operand_pretty(b, &b.lhs, true, level + 1),
            indent(level),
            binary_op_pretty(b),
            operand_pretty(b, &b.rhs, false, level + 1)
        ),
        SampleExpr::LabelReplace(l) => {
            let params = [
                sample_pretty(&l.expr, level + 1),
                indent(level + 1) + &quote(&l.dst),
                indent(level + 1) + &quote(&l.replacement),
                indent(level + 1) + &quote(&l.src),
                indent(level + 1) + &quote(&l.regex),
            ];
            format!(
                "{}label_replace(\n{}\n{})",
                indent(level),
                params.join(",\n"),
                indent(level)
            )
        }
        SampleExpr::Paren(inner) => sample_pretty(inner, level),
        SampleExpr::VectorLiteral(_) | SampleExpr::Literal(_) => indent(level) + &one,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt20(q: &str) -> String {
        pretty_width(&crate::parse(q).unwrap(), 20)
    }

    #[test]
    fn splits_like_loki() {
        assert_eq!(
            fmt20(
                r#"{job="loki", instance="localhost"}|= "error" != "memcached" |= ip("192.168.0.1") |logfmt"#
            ),
            "{job=\"loki\", instance=\"localhost\"}\n  |= \"error\"\n  != \"memcached\"\n  |= ip(\"192.168.0.1\")\n  | logfmt"
        );
        assert_eq!(
            fmt20(
                r#"count_over_time({job="loki", instance="localhost"}|= "error"[5m] offset 20m)"#
            ),
            "count_over_time(\n  {job=\"loki\", instance=\"localhost\"}\n    |= \"error\" [5m] offset 20m\n)"
        );
        assert_eq!(
            fmt20(
                r#"quantile_over_time(0.99,{container="ingress-nginx",service="hosted-grafana"}| json| unwrap response_latency_seconds| __error__=""[1m]) by (cluster)"#
            ),
            "quantile_over_time(\n  0.99,\n  {container=\"ingress-nginx\", service=\"hosted-grafana\"}\n    | json\n    | unwrap response_latency_seconds\n    | __error__=\"\" [1m]\n) by (cluster)"
        );
        assert_eq!(
            fmt20(
                r#"topk(5, count_over_time({foo="bar",namespace="loki",instance="localhost"}[5m])) by (container)"#
            ),
            "topk by (container)(\n  5,\n  count_over_time(\n    {foo=\"bar\", namespace=\"loki\", instance=\"localhost\"} [5m]\n  )\n)"
        );
    }
}
