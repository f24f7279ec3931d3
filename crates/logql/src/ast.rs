//! The syntax tree of a LogQL query, as the parser produces it and the evaluator reads it.
//!
//! A query is either a log query ([`LogExpr`]: a stream selector and a pipeline) or a metric
//! query ([`SampleExpr`]: range aggregations over log queries, vector aggregations, binary
//! operations, literals). Durations are nanoseconds in an `i64`.

use std::fmt;

/// A whole query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Log(LogExpr),
    Sample(SampleExpr),
}

/// `{app="api"} |= "error" | json | status >= 500`
#[derive(Debug, Clone, PartialEq)]
pub struct LogExpr {
    pub selector: Vec<Matcher>,
    pub pipeline: Vec<Stage>,
}

/// A label matcher of a stream selector or of `drop`/`keep`.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// For `=~` and `!~`: the value compiled, anchored at both ends as Prometheus does.
    pub regex: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// Builds a matcher; a regex that does not compile is an error naming it.
    pub fn new(
        name: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Matcher, regex::Error> {
        let value = value.into();
        let regex = match op {
            MatchOp::Re | MatchOp::Nre => Some(regex::Regex::new(&format!("^(?s:{value})$"))?),
            MatchOp::Eq | MatchOp::Neq => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value matches; an absent label has the value `""`.
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Neq => v != self.value,
            MatchOp::Re => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::Nre => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher matches the empty string, i.e. also selects streams without
    /// the label. A selector needs at least one matcher that does not.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    Nre,
}

/// One stage of a log pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// `|= "a" or "b"`, `!~ "re"`, `|> "<_> pattern"`, `|= ip("10.0.0.0/8")`.
    LineFilter(LineFilter),
    /// `| json`, `| logfmt`, `| regexp`, `| pattern`, `| unpack`.
    Parser(Parser),
    /// `| status >= 500 and level="error"`.
    LabelFilter(LabelFilter),
    /// `| line_format "{{.msg}}"`: the template source, unquoted.
    LineFormat(String),
    /// `| label_format a=b, c="{{.x}}"`.
    LabelFormat(Vec<LabelFmt>),
    /// `| decolorize`
    Decolorize,
    /// `| drop a, b="x"`
    Drop(Vec<LabelSelect>),
    /// `| keep a, b="x"`
    Keep(Vec<LabelSelect>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LineFilter {
    pub op: LineFilterOp,
    /// The alternatives joined by `or`; at least one.
    pub values: Vec<LineFilterValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Regex,
    /// `!~`
    NotRegex,
    /// `|>`
    Pattern,
    /// `!>`
    NotPattern,
}

#[derive(Debug, Clone, PartialEq)]
pub enum LineFilterValue {
    /// A string literal (unquoted): a substring, a regex or a pattern, after the op.
    Text(String),
    /// `ip("10.0.0.0/8")`: the lines that contain an address in the range.
    Ip(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Parser {
    /// `| json` or `| json a="x.y", b="z[0]"`.
    Json { params: Vec<ExtractParam> },
    /// `| logfmt --strict --keep-empty a="b"`.
    Logfmt {
        strict: bool,
        keep_empty: bool,
        params: Vec<ExtractParam>,
    },
    /// `| regexp "(?P<name>...)"`: the expression, unquoted.
    Regexp(String),
    /// `| pattern "<ip> - <_>"`: the pattern, unquoted.
    Pattern(String),
    /// `| unpack`
    Unpack,
}

/// `label="expression"` of `json` and `logfmt`. Without an expression (`| json a`) the
/// expression is the label name itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractParam {
    pub label: String,
    pub expr: String,
}

/// A label filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFilter {
    /// `a and b`, also written `a, b` or `a b`.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// `a or b`
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// `name = "v"`, `name =~ "re"`, ...
    String(Matcher),
    /// `name >= 500`; the label's value parsed as a float.
    Number { name: String, op: CmpOp, value: f64 },
    /// `name > 10s`; the label's value parsed as a duration.
    Duration { name: String, op: CmpOp, value: i64 },
    /// `name > 1MB`; the label's value parsed as a byte size.
    Bytes { name: String, op: CmpOp, value: u64 },
    /// `name = ip("10.0.0.0/8")` or `name != ip(...)`.
    Ip {
        name: String,
        negate: bool,
        pattern: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==` or `=`
    Eq,
    /// `!=`
    Neq,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `<`
    Lt,
    /// `<=`
    Lte,
}

/// One `dst=src` (rename) or `dst="{{template}}"` of `label_format`.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelFmt {
    Rename { dst: String, src: String },
    Template { dst: String, template: String },
}

/// An operand of `drop`/`keep`: a bare name, or a matcher that names the label and which
/// values it applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSelect {
    Name(String),
    Matcher(Matcher),
}

/// A metric query.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleExpr {
    Range(RangeAggregation),
    Vector(VectorAggregation),
    Binary(BinaryExpr),
    LabelReplace(LabelReplace),
    /// `vector(5)`
    VectorLiteral(f64),
    /// `5`, `-2.5`: a scalar.
    Literal(f64),
    /// `( expr )`, kept so the printer can reproduce it.
    Paren(Box<SampleExpr>),
}

/// `count_over_time({app="x"} | json [5m] offset 1m)`, `quantile_over_time(0.9, ... ) by (a)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeAggregation {
    pub op: RangeOp,
    /// The quantile of `quantile_over_time`.
    pub param: Option<f64>,
    pub range: LogRange,
    pub grouping: Option<Grouping>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogRange {
    pub log: LogExpr,
    pub unwrap: Option<Unwrap>,
    /// The range, `[5m]`, in nanoseconds.
    pub interval: i64,
    /// `offset 5m`, in nanoseconds; 0 when absent.
    pub offset: i64,
}

/// `| unwrap bytes(size) | __error__=""`
#[derive(Debug, Clone, PartialEq)]
pub struct Unwrap {
    pub label: String,
    pub conversion: Option<UnwrapConversion>,
    /// Label filters written after the unwrap.
    pub post_filters: Vec<LabelFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwrapConversion {
    /// `duration(label)`: Go durations to seconds.
    Duration,
    /// `duration_seconds(label)`: the same.
    DurationSeconds,
    /// `bytes(label)`: `10KB`-style sizes to bytes.
    Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOp {
    CountOverTime,
    Rate,
    RateCounter,
    BytesOverTime,
    BytesRate,
    AvgOverTime,
    SumOverTime,
    MinOverTime,
    MaxOverTime,
    StdvarOverTime,
    StddevOverTime,
    QuantileOverTime,
    FirstOverTime,
    LastOverTime,
    AbsentOverTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Grouping {
    /// `without (...)` rather than `by (...)`.
    pub without: bool,
    pub labels: Vec<String>,
}

/// `sum by (app) (expr)`, `topk(5, expr)`.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorAggregation {
    pub op: VectorOp,
    /// `k` of `topk`/`bottomk`.
    pub param: Option<f64>,
    pub expr: Box<SampleExpr>,
    pub grouping: Option<Grouping>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VectorOp {
    Sum,
    Avg,
    Count,
    Max,
    Min,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Sort,
    SortDesc,
}

/// `lhs op [bool] [on|ignoring (labels) [group_left|group_right (labels)]] rhs`
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Box<SampleExpr>,
    pub rhs: Box<SampleExpr>,
    /// `bool` after a comparison.
    pub return_bool: bool,
    pub matching: Option<VectorMatching>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    Unless,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    /// `on (...)` rather than `ignoring (...)`.
    pub on: bool,
    pub labels: Vec<String>,
    pub card: Cardinality,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cardinality {
    OneToOne,
    /// `group_left (include...)`
    ManyToOne(Vec<String>),
    /// `group_right (include...)`
    OneToMany(Vec<String>),
}

/// `label_replace(expr, "dst", "replacement", "src", "regex")`
#[derive(Debug, Clone, PartialEq)]
pub struct LabelReplace {
    pub expr: Box<SampleExpr>,
    pub dst: String,
    pub replacement: String,
    pub src: String,
    pub regex: String,
}

impl fmt::Display for MatchOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        })
    }
}
