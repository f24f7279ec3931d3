//! The log pipeline: everything after a stream selector, run entry by entry, with Loki's
//! exact behaviour.
//!
//! A [`Pipeline`] is compiled once per query from the AST (regexes, patterns, templates,
//! automata are all built here); [`Pipeline::for_stream`] makes a [`StreamPipeline`] per
//! stream, which [`StreamPipeline::process`]es entries one at a time and hands back the
//! [`Processed`] line and labels, valid until the next call. Buffers live in the
//! `StreamPipeline` and are reused, so the hot loop allocates nothing per line once warm
//! (template functions that build new strings aside).
//!
//! Like Loki, the pipeline moves line filters ahead of the stages that do not change the
//! line (parsers, `label_format`, `drop`, `keep`, and — as Loki does — `decolorize`), up to
//! the next label filter, `line_format` or `unpack`. The stages live in submodules:
//! [`line_filter`], the parsers ([`json`], [`json_expr`], [`logfmt`], [`extract`]),
//! [`label_filter`], [`format`]; [`labels`] holds the label rules that tie them together.

pub(crate) mod convert;
mod extract;
mod format;
mod hints;
mod ip;
pub(crate) mod json;
mod json_expr;
mod label_filter;
mod label_regex;
pub(crate) mod labels;
mod line_filter;
pub(crate) mod logfmt;
mod pattern;
pub(crate) mod regex_go;
mod required;
pub(crate) mod text;

use std::sync::Arc;

use protocol::Labels;

pub use labels::{Category, LabelSet};

use crate::ast::{Grouping, Parser, Stage, Unwrap, UnwrapConversion};
use crate::fields::{FieldKind, FieldNames};
use crate::source::RequiredText;
use hints::{EarlyFilters, Hints};

/// A pipeline that cannot be built: a bad regex, pattern or template. HTTP 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Invalid(String),
}

const SAMPLE_ERR: &str = "SampleExtractionErr";

/// One compiled stage.
#[derive(Debug)]
enum Step {
    LineFilter(line_filter::Filter),
    Json,
    JsonExpr(json_expr::JsonExpr),
    Logfmt(logfmt::Logfmt),
    LogfmtExpr(logfmt::LogfmtExpr),
    Regexp(extract::RegexpParser),
    Pattern(extract::PatternParser),
    Unpack,
    LabelFilter(Arc<label_filter::Compiled>),
    LineFormat(format::LineFormat),
    LabelFormat(format::LabelFormat),
    Decolorize,
    Drop(Vec<format::Select>),
    Keep(Vec<format::Select>),
}

/// The compiled `| unwrap ...` of a metric query.
#[derive(Debug)]
struct UnwrapStep {
    label: String,
    conversion: Option<UnwrapConversion>,
    post: Vec<Arc<label_filter::Compiled>>,
}

impl UnwrapStep {
    /// The sample value of the unwrapped label's value `raw`, or the conversion error.
    fn convert(&self, raw: &str) -> Result<f64, String> {
        match self.conversion {
            None => convert::parse_float(raw),
            Some(UnwrapConversion::Duration | UnwrapConversion::DurationSeconds) => {
                convert::parse_go_duration(raw).map(convert::duration_seconds)
            }
            Some(UnwrapConversion::Bytes) => convert::parse_bytes(raw).map(|b| b as f64),
        }
    }
}

/// A compiled pipeline.
#[derive(Debug)]
pub struct Pipeline {
    steps: Vec<Step>,
    unwrap: Option<UnwrapStep>,
    hints: Hints,
    /// Label names later stages read (for parser hints).
    referenced: Vec<String>,
    /// The single-label filters parsers apply as soon as they set the label.
    early: EarlyFilters,
    ansi: Option<regex::bytes::Regex>,
}

fn invalid(e: String) -> PipelineError {
    PipelineError::Invalid(e)
}

/// Loki's stage order: line filters move ahead of everything up to the next label filter,
/// `line_format` or `unpack`.
fn reorder(stages: &[Stage]) -> Vec<&Stage> {
    let mut out = Vec::with_capacity(stages.len());
    let mut filters: Vec<&Stage> = Vec::new();
    let mut others: Vec<&Stage> = Vec::new();
    fn flush<'s>(out: &mut Vec<&'s Stage>, f: &mut Vec<&'s Stage>, o: &mut Vec<&'s Stage>) {
        out.append(f);
        out.append(o);
    }
    for s in stages {
        match s {
            Stage::LabelFilter(_) => {
                flush(&mut out, &mut filters, &mut others);
                out.push(s);
            }
            Stage::LineFilter(_) => filters.push(s),
            Stage::LineFormat(_) | Stage::Parser(Parser::Unpack) => {
                others.push(s);
                flush(&mut out, &mut filters, &mut others);
            }
            _ => others.push(s),
        }
    }
    flush(&mut out, &mut filters, &mut others);
    out
}

impl Pipeline {
    /// Compiles `stages`, and `unwrap` when the pipeline feeds an unwrapped range
    /// aggregation.
    pub fn new(stages: &[Stage], unwrap: Option<&Unwrap>) -> Result<Pipeline, PipelineError> {
        let mut steps = Vec::with_capacity(stages.len());
        let mut referenced = Vec::new();
        let mut early = EarlyFilters::default();
        let mut ansi = None;
        for s in reorder(stages) {
            let step = match s {
                Stage::LineFilter(lf) => {
                    Step::LineFilter(line_filter::Filter::compile(lf).map_err(invalid)?)
                }
                Stage::Parser(p) => match p {
                    Parser::Json { params } if params.is_empty() => Step::Json,
                    Parser::Json { params } => {
                        Step::JsonExpr(json_expr::JsonExpr::new(params).map_err(invalid)?)
                    }
                    Parser::Logfmt {
                        strict,
                        keep_empty,
                        params,
                    } if params.is_empty() => {
                        Step::Logfmt(logfmt::Logfmt::new(*strict, *keep_empty))
                    }
                    Parser::Logfmt { strict, params, .. } => {
                        Step::LogfmtExpr(logfmt::LogfmtExpr::new(params, *strict).map_err(invalid)?)
                    }
                    Parser::Regexp(re) => Step::Regexp(
                        extract::RegexpParser::new(re)
                            .map_err(|e| invalid(format!("invalid regexp parser: {e}")))?,
                    ),
                    Parser::Pattern(p) => Step::Pattern(
                        extract::PatternParser::new(p)
                            .map_err(|e| invalid(format!("invalid pattern parser: {e}")))?,
                    ),
                    Parser::Unpack => Step::Unpack,
                },
                Stage::LabelFilter(f) => {
                    let f = Arc::new(label_filter::Compiled::new(f).map_err(invalid)?);
                    f.names(&mut referenced);
                    early.push(&f);
                    Step::LabelFilter(f)
                }
                Stage::LineFormat(t) => {
                    let lf = format::LineFormat::new(t).map_err(invalid)?;
                    referenced.extend(lf.template.fields());
                    Step::LineFormat(lf)
                }
                Stage::LabelFormat(fmts) => {
                    let lf = format::LabelFormat::new(fmts).map_err(invalid)?;
                    lf.names(&mut referenced);
                    Step::LabelFormat(lf)
                }
                Stage::Decolorize => {
                    if ansi.is_none() {
                        ansi = Some(format::ansi_regex().map_err(invalid)?);
                    }
                    Step::Decolorize
                }
                Stage::Drop(sel) => Step::Drop(
                    sel.iter()
                        .map(format::Select::new)
                        .collect::<Result<_, _>>()
                        .map_err(invalid)?,
                ),
                Stage::Keep(sel) => Step::Keep(
                    sel.iter()
                        .map(format::Select::new)
                        .collect::<Result<_, _>>()
                        .map_err(invalid)?,
                ),
            };
            steps.push(step);
        }
        let unwrap = match unwrap {
            None => None,
            Some(u) => {
                let mut post = Vec::with_capacity(u.post_filters.len());
                for f in &u.post_filters {
                    let f = Arc::new(label_filter::Compiled::new(f).map_err(invalid)?);
                    f.names(&mut referenced);
                    post.push(f);
                }
                early.push_post(&post);
                referenced.push(u.label.clone());
                Some(UnwrapStep {
                    label: u.label.clone(),
                    conversion: u.conversion,
                    post,
                })
            }
        };
        Ok(Pipeline {
            steps,
            unwrap,
            hints: Hints::unhinted(&early),
            referenced,
            early,
            ansi,
        })
    }

    /// Tells the parsers which labels a metric query needs, as Loki's sample extractors
    /// do. `grouping` is the grouping the samples get: the `by`/`without` of the range
    /// aggregation, or of a `sum` around it when Loki pushes that down (`sum by (level)
    /// (count_over_time(...))`, for `count_over_time`, `rate`, `bytes_over_time`,
    /// `bytes_rate` and `sum_over_time` without a grouping of their own); `None` when
    /// there is none. `absent` is set for `absent_over_time`, which needs no labels.
    ///
    /// With `by (level)` the parsers extract only `level` (and the labels later stages
    /// read) and stop once they have it; with `by ()`, a plain `sum(...)` or `absent` and
    /// nothing read later they do not run at all. This changes answers exactly as it does
    /// in Loki (a JSON error after the wanted field goes unnoticed), so call it only where
    /// Loki would. Log queries keep the default hints.
    pub fn hint_grouping(mut self, grouping: Option<&Grouping>, absent: bool) -> Pipeline {
        let (mut groups, mut without, mut no_labels) = match grouping {
            Some(g) => (
                g.labels.clone(),
                g.without,
                g.labels.is_empty() && !g.without,
            ),
            None => (Vec::new(), false, false),
        };
        if absent {
            no_labels = true;
        }
        // An unwrap without a `by` list groups `without` its label.
        if let Some(u) = &self.unwrap
            && (groups.is_empty() || without)
        {
            without = true;
            groups.push(u.label.clone());
        }
        self.hints = Hints::new(&self.referenced, &groups, without, no_labels, &self.early);
        self
    }

    /// The labels a metric pipeline of `| json` or `| logfmt` (without parameters) and
    /// label filters takes from each line, when its hints name them: then a line's outcome
    /// depends only on its fields of those names (for JSON, top-level members), and
    /// write-time field columns ([`crate::fields`]) can stand in for the line.
    pub fn field_names(&self) -> Option<FieldNames> {
        let kind = self.parser_then_filters()?;
        self.hints.named_only().map(|names| FieldNames {
            kind,
            names: names.to_vec(),
        })
    }

    /// The unwrapped label, when its value decides nothing but the sample value: no label
    /// filter reads it and none follows the unwrap. Then, among lines whose value of it
    /// converts cleanly and that set it from their own field, the lines that agree on
    /// everything else pass or drop alike and land in one series (the unwrapped label is
    /// not part of a clean sample's series).
    pub(crate) fn value_only_unwrap(&self) -> Option<&str> {
        let u = self.unwrap.as_ref().filter(|u| u.post.is_empty())?;
        let mut read = Vec::new();
        for s in &self.steps {
            if let Step::LabelFilter(f) = s {
                f.names(&mut read);
            }
        }
        (!read.contains(&u.label)).then_some(u.label.as_str())
    }

    /// The sample value of unwrapped value `raw`; `None` when it does not convert.
    pub(crate) fn convert_unwrapped(&self, raw: &str) -> Option<f64> {
        self.unwrap.as_ref()?.convert(raw).ok()
    }

    /// The parser of a pipeline of `| json` or `| logfmt` without parameters, then label
    /// filters only.
    fn parser_then_filters(&self) -> Option<FieldKind> {
        let (first, rest) = self.steps.split_first()?;
        let kind = match first {
            Step::Json => FieldKind::Json,
            Step::Logfmt(_) => FieldKind::Logfmt,
            _ => return None,
        };
        rest.iter()
            .all(|s| matches!(s, Step::LabelFilter(_)))
            .then_some(kind)
    }

    /// The labels the filters of a log pipeline of `| json` or `| logfmt` (without
    /// parameters) and label filters read, when field columns can decide which lines the
    /// filters drop: a line the pipeline drops when it runs on a line of just these fields
    /// (from a block without nested objects) is dropped on the whole line too. As for
    /// parser hints, a name `x_extracted` brings `x` along: a field `x` that collides
    /// with a stream label fills it.
    pub fn filter_names(&self) -> Option<FieldNames> {
        // No filter stage means no name read: `referenced` is empty then.
        let kind = self.parser_then_filters()?;
        if !self.early.paired() || self.referenced.is_empty() {
            return None;
        }
        let names = hints::names_to_extract(&self.referenced);
        Some(FieldNames { kind, names })
    }

    /// Whether any stage reads the stored line; when not, storage need not decompress
    /// lines (the caller still needs them to return lines or count bytes).
    pub fn needs_lines(&self) -> bool {
        for s in &self.steps {
            match s {
                // Hints that need no label: the parsers do not run.
                Step::Json | Step::Logfmt(_) if self.hints.none() => {}
                Step::LineFilter(_)
                | Step::Json
                | Step::JsonExpr(_)
                | Step::Logfmt(_)
                | Step::LogfmtExpr(_)
                | Step::Regexp(_)
                | Step::Pattern(_)
                | Step::Unpack
                | Step::Decolorize => return true,
                Step::LineFormat(lf) => {
                    // A template that never reads the line replaces it outright.
                    return lf.template.uses_line();
                }
                Step::LabelFormat(lf) if lf.uses_line() => return true,
                Step::LabelFilter(_) | Step::LabelFormat(_) | Step::Drop(_) | Step::Keep(_) => {}
            }
        }
        false
    }

    /// Whether structured metadata can change what the stages do (parsers rename colliding
    /// names, filters and formats read labels). Pipelines of line filters alone do not
    /// need it; a log query returns metadata anyway.
    pub fn needs_metadata(&self) -> bool {
        self.unwrap.is_some() || self.steps.iter().any(|s| !matches!(s, Step::LineFilter(_)))
    }

    /// Text that every line passing the pipeline contains, from its leading line filters.
    pub fn required_text(&self) -> Option<RequiredText> {
        let mut reqs = Vec::new();
        for s in &self.steps {
            match s {
                Step::LineFilter(f) => {
                    if let Some(r) = required::of_filter(f) {
                        reqs.push(r);
                    }
                }
                _ => break,
            }
        }
        required::all(reqs)
    }

    pub fn for_stream<'a>(&'a self, labels: &'a Labels) -> StreamPipeline<'a> {
        let states = self
            .steps
            .iter()
            .map(|s| match s {
                Step::Json => State::Json(json::JsonParser::default()),
                Step::Unpack => State::Unpack(json::Unpack::default()),
                Step::LabelFormat(_) => State::LabelFormat(Vec::new()),
                _ => State::None,
            })
            .collect();
        StreamPipeline {
            pipeline: self,
            states,
            parsers: self
                .steps
                .iter()
                .map(|s| match s {
                    Step::JsonExpr(p) => Some(Parsers::JsonExpr(p.clone())),
                    Step::Logfmt(p) => {
                        Some(Parsers::Logfmt(logfmt::Logfmt::new(p.strict, p.keep_empty)))
                    }
                    Step::LogfmtExpr(p) => Some(Parsers::LogfmtExpr(p.clone())),
                    Step::Regexp(p) => Some(Parsers::Regexp(p.clone())),
                    Step::Pattern(p) => Some(Parsers::Pattern(p.clone())),
                    _ => None,
                })
                .collect(),
            set: LabelSet::for_stream(labels),
            buf: [Vec::new(), Vec::new()],
        }
    }
}

/// Per-stream scratch state of a stage.
#[derive(Debug)]
enum State {
    None,
    Json(json::JsonParser),
    Unpack(json::Unpack),
    LabelFormat(Vec<Result<String, String>>),
}

#[derive(Debug)]
enum Parsers {
    JsonExpr(json_expr::JsonExpr),
    Logfmt(logfmt::Logfmt),
    LogfmtExpr(logfmt::LogfmtExpr),
    Regexp(extract::RegexpParser),
    Pattern(extract::PatternParser),
}

/// A pipeline bound to one stream.
pub struct StreamPipeline<'a> {
    pipeline: &'a Pipeline,
    states: Vec<State>,
    parsers: Vec<Option<Parsers>>,
    set: LabelSet,
    /// The line after stages that rewrite it: the current one and the spare.
    buf: [Vec<u8>; 2],
}

/// An entry after the pipeline. Valid until the next call to `process`.
pub struct Processed<'p> {
    pub line: &'p [u8],
    pub labels: &'p LabelSet,
    /// The unwrapped value, when the pipeline has an unwrap. A value that failed to convert
    /// is 0 and the labels carry `__error__` (and keep the unwrapped label, as Loki does).
    pub value: Option<f64>,
}

/// Which buffer holds the current line.
#[derive(Clone, Copy)]
enum Cur {
    Input,
    Buf(usize),
}

impl StreamPipeline<'_> {
    /// Runs one entry; `None` when a filter drops it (or, with an unwrap, when the label
    /// is absent or empty, or a filter after the unwrap drops it).
    pub fn process<'s, 'm>(
        &'s mut self,
        ts: i64,
        line: &'s [u8],
        metadata: impl Iterator<Item = (&'m str, &'m str)>,
    ) -> Option<Processed<'s>> {
        let p = self.pipeline;
        self.set.reset();
        for (n, v) in metadata {
            self.set.add_metadata(n, v);
        }
        let mut cur = Cur::Input;
        for (i, step) in p.steps.iter().enumerate() {
            let (current, spare): (&[u8], &mut Vec<u8>) = match cur {
                Cur::Input => (line, &mut self.buf[0]),
                Cur::Buf(k) => {
                    let (a, b) = self.buf.split_at_mut(1);
                    if k == 0 {
                        (&a[0][..], &mut b[0])
                    } else {
                        (&b[0][..], &mut a[0])
                    }
                }
            };
            let spare_idx = match cur {
                Cur::Input | Cur::Buf(1) => 0,
                Cur::Buf(_) => 1,
            };
            match step {
                Step::LineFilter(f) => {
                    if !f.matches(current) {
                        return None;
                    }
                }
                Step::Json => {
                    if let State::Json(j) = &mut self.states[i]
                        && !j.process(current, &mut self.set, &p.hints)
                    {
                        return None;
                    }
                }
                Step::JsonExpr(_) => {
                    if let Some(Parsers::JsonExpr(j)) = &mut self.parsers[i]
                        && !p.hints.no_labels(&self.set)
                    {
                        j.process(current, &mut self.set, &p.hints);
                    }
                }
                Step::Logfmt(_) => {
                    if let Some(Parsers::Logfmt(l)) = &mut self.parsers[i]
                        && !l.process(current, &mut self.set, &p.hints)
                    {
                        return None;
                    }
                }
                Step::LogfmtExpr(_) => {
                    if let Some(Parsers::LogfmtExpr(l)) = &mut self.parsers[i] {
                        l.process(current, &mut self.set, &p.hints);
                    }
                }
                Step::Regexp(_) => {
                    if let Some(Parsers::Regexp(r)) = &mut self.parsers[i]
                        && !r.process(current, &mut self.set, &p.hints)
                    {
                        return None;
                    }
                }
                Step::Pattern(_) => {
                    if let Some(Parsers::Pattern(r)) = &mut self.parsers[i]
                        && !r.process(current, &mut self.set, &p.hints)
                    {
                        return None;
                    }
                }
                Step::Unpack => {
                    if let State::Unpack(u) = &mut self.states[i] {
                        match u.process(current, &mut self.set, &p.hints, spare) {
                            json::Unpacked::Dropped => return None,
                            json::Unpacked::Entry => cur = Cur::Buf(spare_idx),
                            json::Unpacked::Line => {}
                        }
                    }
                }
                Step::LabelFilter(f) => {
                    if !f.test(&mut self.set) {
                        return None;
                    }
                }
                Step::LineFormat(lf) => {
                    spare.clear();
                    let mut out = String::from_utf8(std::mem::take(spare)).unwrap_or_default();
                    let ok = lf.format(current, ts, &mut self.set, &mut out);
                    *spare = out.into_bytes();
                    if ok {
                        cur = Cur::Buf(spare_idx);
                    }
                }
                Step::LabelFormat(lf) => {
                    if let State::LabelFormat(outs) = &mut self.states[i] {
                        lf.apply(current, ts, &mut self.set, outs);
                    }
                }
                Step::Decolorize => {
                    if format::may_have_ansi(current)
                        && let Some(re) = &p.ansi
                    {
                        spare.clear();
                        let mut last = 0;
                        for m in re.find_iter(current) {
                            spare.extend_from_slice(&current[last..m.start()]);
                            last = m.end();
                        }
                        spare.extend_from_slice(&current[last..]);
                        cur = Cur::Buf(spare_idx);
                    }
                }
                Step::Drop(sel) => format::drop(sel, &mut self.set),
                Step::Keep(sel) => format::keep(sel, &mut self.set),
            }
        }
        let mut value = None;
        let mut skip: Option<&str> = None;
        if let Some(u) = &p.unwrap {
            let raw = self.set.lookup(&u.label).unwrap_or("");
            if raw.is_empty() {
                return None;
            }
            let v = match u.convert(raw) {
                Ok(v) => v,
                Err(e) => {
                    self.set.set_err(SAMPLE_ERR);
                    self.set.set_err_details(&e);
                    0.0
                }
            };
            let mut pass = true;
            for f in &u.post {
                pass &= f.test(&mut self.set);
            }
            if !pass {
                return None;
            }
            value = Some(v);
            // Loki groups an unwrapped sample `without` its label, unless it has an error.
            if !self.set.has_err() {
                skip = Some(u.label.as_str());
            }
        }
        self.set.finish(skip);
        let line = match cur {
            Cur::Input => line,
            Cur::Buf(k) => &self.buf[k][..],
        };
        Some(Processed {
            line,
            labels: &self.set,
            value,
        })
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
