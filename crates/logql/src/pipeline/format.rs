//! `line_format`, `label_format`, `drop`, `keep` and `decolorize`.

use std::borrow::Cow;

use super::labels::{ERROR_DETAILS_LABEL, ERROR_LABEL, LabelSet};
use super::regex_go;
use crate::ast::{LabelFmt, LabelSelect, MatchOp};
use crate::template::{Data, Template};

pub(crate) const TEMPLATE_ERR: &str = "TemplateFormatErr";

/// The labels, line and timestamp of an entry, as a template's data.
pub(crate) struct TemplateData<'a> {
    pub(crate) labels: &'a LabelSet,
    pub(crate) line: Cow<'a, str>,
    pub(crate) ts: i64,
}

impl Data for TemplateData<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.labels.lookup_all(name)
    }

    fn each<'s>(&'s self, f: &mut dyn FnMut(&'s str, &'s str)) {
        let mut all: Vec<(&'s str, &'s str)> = Vec::new();
        self.labels.for_each_current(|n, v, _| all.push((n, v)));
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.dedup_by(|a, b| a.0 == b.0);
        for (n, v) in all {
            f(n, v);
        }
    }

    fn len(&self) -> usize {
        let mut n = 0;
        self.labels.for_each_current(|_, _, _| n += 1);
        n
    }

    fn line(&self) -> &str {
        &self.line
    }

    fn timestamp(&self) -> i64 {
        self.ts
    }
}

/// `| line_format "..."`.
#[derive(Debug)]
pub(crate) struct LineFormat {
    pub(crate) template: Template,
    /// Whether the template reads `__line__` (else the line is not decoded).
    uses_line: bool,
}

impl LineFormat {
    pub(crate) fn new(src: &str) -> Result<LineFormat, String> {
        let template =
            Template::parse("line", src).map_err(|e| format!("invalid line template: {e}"))?;
        let uses_line = template.uses_line();
        Ok(LineFormat {
            template,
            uses_line,
        })
    }

    /// Writes the new line into `out` and returns `true`; on a template error sets
    /// `__error__` and returns `false` (the line stays as it was).
    pub(crate) fn format(
        &self,
        line: &[u8],
        ts: i64,
        labels: &mut LabelSet,
        out: &mut String,
    ) -> bool {
        out.clear();
        // `{{.name}}` alone copies a label; Loki then reads only real labels, so
        // `{{.__error__}}` is empty here (but not in a longer template).
        if let Some(key) = self.template.simple_key() {
            if let Some(v) = labels.lookup(key) {
                out.push_str(v);
            }
            return true;
        }
        let data = TemplateData {
            labels,
            line: if self.uses_line {
                String::from_utf8_lossy(line)
            } else {
                Cow::Borrowed("")
            },
            ts,
        };
        match self.template.execute(&data, out) {
            Ok(()) => true,
            Err(e) => {
                labels.set_err(TEMPLATE_ERR);
                labels.set_err_details(&e);
                false
            }
        }
    }
}

#[derive(Debug)]
enum FmtOp {
    Rename(String),
    Template(Template),
}

/// `| label_format dst=src, dst="{{template}}"`.
#[derive(Debug)]
pub(crate) struct LabelFormat {
    ops: Vec<(String, FmtOp)>,
}

impl LabelFormat {
    pub(crate) fn new(fmts: &[LabelFmt]) -> Result<LabelFormat, String> {
        let mut ops: Vec<(String, FmtOp)> = Vec::with_capacity(fmts.len());
        for f in fmts {
            let dst = match f {
                LabelFmt::Rename { dst, .. } | LabelFmt::Template { dst, .. } => dst,
            };
            if dst == ERROR_LABEL {
                return Err(format!("{ERROR_LABEL} cannot be formatted"));
            }
            if ops.iter().any(|(d, _)| d == dst) {
                return Err(format!(
                    "multiple label name '{dst}' not allowed in a single format operation"
                ));
            }
            let op = match f {
                LabelFmt::Rename { src, .. } => FmtOp::Rename(src.clone()),
                LabelFmt::Template { template, .. } => FmtOp::Template(
                    Template::parse("label", template)
                        .map_err(|e| format!("invalid template for label '{dst}': {e}"))?,
                ),
            };
            ops.push((dst.clone(), op));
        }
        Ok(LabelFormat { ops })
    }

    /// Applies the formats in order. Every template sees the labels as they were when the
    /// first template ran (Loki builds the template's map once per stage), renames see
    /// the labels as they are. `outs` is scratch space, one string per template.
    pub(crate) fn apply(
        &self,
        line: &[u8],
        ts: i64,
        labels: &mut LabelSet,
        outs: &mut Vec<Result<String, String>>,
    ) {
        let mut evaluated = false;
        let mut t = 0;
        for (dst, op) in &self.ops {
            match op {
                FmtOp::Rename(src) => labels.rename(dst, src),
                FmtOp::Template(_) => {
                    if !evaluated {
                        self.evaluate(line, ts, labels, outs);
                        evaluated = true;
                    }
                    match &outs[t] {
                        Ok(v) => labels.set_parsed(dst, v),
                        Err(e) => {
                            labels.set_err(super::format::TEMPLATE_ERR);
                            labels.set_err_details(e);
                        }
                    }
                    t += 1;
                }
            }
        }
    }

    fn evaluate(
        &self,
        line: &[u8],
        ts: i64,
        labels: &LabelSet,
        outs: &mut Vec<Result<String, String>>,
    ) {
        let data = TemplateData {
            labels,
            line: if self.uses_line() {
                String::from_utf8_lossy(line)
            } else {
                Cow::Borrowed("")
            },
            ts,
        };
        let mut i = 0;
        for (_, op) in &self.ops {
            let FmtOp::Template(tmpl) = op else { continue };
            if outs.len() <= i {
                outs.push(Ok(String::new()));
            }
            let mut buf = match std::mem::replace(&mut outs[i], Ok(String::new())) {
                Ok(mut s) | Err(mut s) => {
                    s.clear();
                    s
                }
            };
            outs[i] = match tmpl.execute(&data, &mut buf) {
                Ok(()) => Ok(buf),
                Err(e) => Err(e),
            };
            i += 1;
        }
    }

    /// Label names the formats read (renamed sources and template fields).
    pub(crate) fn names(&self, out: &mut Vec<String>) {
        for (_, op) in &self.ops {
            match op {
                FmtOp::Rename(src) => out.push(src.clone()),
                FmtOp::Template(t) => out.extend(t.fields()),
            }
        }
    }

    pub(crate) fn uses_line(&self) -> bool {
        self.ops
            .iter()
            .any(|(_, op)| matches!(op, FmtOp::Template(t) if t.uses_line()))
    }
}

/// A `drop`/`keep` operand: a name, or a name with a matcher on the value (Prometheus
/// semantics: anchored, `.` matches newlines).
#[derive(Debug)]
pub(crate) struct Select {
    name: String,
    matcher: Option<(MatchOp, String, Option<regex::Regex>)>,
}

impl Select {
    pub(crate) fn new(s: &LabelSelect) -> Result<Select, String> {
        Ok(match s {
            LabelSelect::Name(n) => Select {
                name: n.clone(),
                matcher: None,
            },
            LabelSelect::Matcher(m) => {
                let re = match m.op {
                    MatchOp::Re | MatchOp::Nre => Some(
                        regex::Regex::new(&format!("^(?s:{})$", regex_go::translate(&m.value)))
                            .map_err(|e| format!("invalid regex {:?}: {e}", m.value))?,
                    ),
                    MatchOp::Eq | MatchOp::Neq => None,
                };
                Select {
                    name: m.name.clone(),
                    matcher: Some((m.op, m.value.clone(), re)),
                }
            }
        })
    }

    fn matches(&self, v: &str) -> bool {
        match &self.matcher {
            None => true,
            Some((op, value, re)) => match op {
                MatchOp::Eq => v == value,
                MatchOp::Neq => v != value,
                MatchOp::Re => re.as_ref().is_some_and(|r| r.is_match(v)),
                MatchOp::Nre => !re.as_ref().is_some_and(|r| r.is_match(v)),
            },
        }
    }
}

/// `| drop a, b="x"`: deletes the named labels (the error labels included).
pub(crate) fn drop(sel: &[Select], labels: &mut LabelSet) {
    for s in sel {
        let name = s.name.as_str();
        if name == ERROR_LABEL {
            if s.matches(labels.err().unwrap_or("")) {
                labels.clear_err();
            }
            continue;
        }
        if name == ERROR_DETAILS_LABEL {
            if s.matches(labels.err_details().unwrap_or("")) {
                labels.clear_err_details();
            }
            continue;
        }
        match &s.matcher {
            None => {
                if labels.lookup(name).is_some() {
                    labels.delete(name);
                }
            }
            Some(_) => {
                if s.matches(labels.lookup(name).unwrap_or("")) {
                    labels.delete(name);
                }
            }
        }
    }
}

/// `| keep a, b="x"`: deletes every label not named (the error labels always stay).
pub(crate) fn keep(sel: &[Select], labels: &mut LabelSet) {
    if sel.is_empty() {
        return;
    }
    labels.keep_only(|name, value| {
        sel.iter()
            .any(|s| s.name == name && (s.matcher.is_none() || s.matches(value)))
    });
}

/// Removes ANSI escape sequences, with the pattern Loki uses (from acarl005/stripansi).
pub(crate) fn ansi_regex() -> Result<regex::bytes::Regex, String> {
    regex::bytes::Regex::new(
        "[\u{1b}\u{9b}][\\[\\]()#;?]*(?:(?:(?:[a-zA-Z0-9]*(?:;[a-zA-Z0-9]*)*)?\u{7})|(?:(?:[0-9]{1,4}(?:;[0-9]{0,4})*)?[0-9A-PRZcf-ntqry=><~]))",
    )
    .map_err(|e| e.to_string())
}

/// Whether the line may hold an escape sequence (ESC, or the UTF-8 form of CSI).
pub(crate) fn may_have_ansi(line: &[u8]) -> bool {
    memchr::memchr2(0x1b, 0xc2, line).is_some()
}
