//! Which labels the parsers must extract, and which label filters they may apply early
//! (Loki's parser hints).
//!
//! `sum by (level) (count_over_time({app="api"} | json [5m]))` needs only `level` from
//! each line: the parsers extract just the names asked for and stop as soon as they have
//! them all; `sum(count_over_time(... | json [5m]))` needs no label, and the parsers do not
//! run. Loki does this, and it shows: a line whose JSON breaks after the wanted field, or
//! any line when no label is wanted, gets no `__error__`. We do the same, so that the
//! answers agree.
//!
//! Loki's hints also carry the pipeline's single-label filters: when a parser has just
//! set a label that such a filter reads, it runs the filter at once and drops the line if
//! it fails, before the rest of the line is parsed (so a JSON error further on goes
//! unnoticed). It pairs filters and names the way Loki does, including its quirk: a filter
//! that reads no label (`| x=~".*"`) takes a filter slot but no name slot, so the names
//! after it are checked against the filter before theirs. Loki keeps these filters for log
//! queries and for metric queries without a `by` grouping, and drops them when the hints
//! name the labels to extract.
//!
//! When the hints name `__error__`, a parser error also sets the parsed label
//! `__preserve_error__="true"`, which tells the evaluator not to fail on that error.

use std::sync::Arc;

use super::label_filter::Compiled;
use super::labels::{DUPLICATE_SUFFIX, ERROR_LABEL, LabelSet};

/// The label Loki sets next to a parser error that the query asked for by name.
pub(crate) const PRESERVE_ERROR_LABEL: &str = "__preserve_error__";

/// Loki's single-label filters of a pipeline, as its `NewParserHint` pairs them.
#[derive(Debug, Clone, Default)]
pub(crate) struct EarlyFilters {
    names: Vec<String>,
    filters: Vec<Arc<Compiled>>,
}

impl EarlyFilters {
    /// Adds a label filter stage (or the unwrap's post filter) in pipeline order. `and`
    /// and `or` combinations are left out, as Loki leaves them out.
    pub(crate) fn push(&mut self, f: &Arc<Compiled>) {
        match &**f {
            Compiled::And(..) | Compiled::Or(..) => {}
            Compiled::Noop => self.filters.push(f.clone()),
            other => {
                if let Some(n) = other.name() {
                    self.names.push(n.to_string());
                }
                self.filters.push(f.clone());
            }
        }
    }

    /// Every filter is paired with the label it reads, so each runs right after its own
    /// label is set, whatever the order of the members in a line.
    pub(crate) fn paired(&self) -> bool {
        self.names.len() == self.filters.len()
    }

    /// Adds an unwrap's post filters the way Loki reduces them: none is a filter that
    /// reads no label, one is itself, several are one `and` (left out).
    pub(crate) fn push_post(&mut self, post: &[Arc<Compiled>]) {
        match post {
            [] => self.filters.push(Arc::new(Compiled::Noop)),
            [one] => self.push(one),
            _ => {}
        }
    }
}

/// The names a parser must extract for stages that read `names`: each once, empty names
/// left out, and with a name `x_extracted` also `x` (a parsed name that collides with a
/// stream label is extracted under `x_extracted`, so a query naming that form needs the
/// plain name too).
pub(crate) fn names_to_extract<'a>(names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if n.is_empty() || out.iter().any(|r| r == n) {
            continue;
        }
        out.push(n.clone());
        if let Some(base) = n.strip_suffix(DUPLICATE_SUFFIX)
            && !base.is_empty()
            && !out.iter().any(|r| r == base)
        {
            out.push(base.to_string());
        }
    }
    out
}

/// The labels a metric query needs from its parsers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints {
    /// Names to extract; empty means every name.
    required: Vec<String>,
    /// Extract nothing at all.
    no_labels: bool,
    /// A parser error also sets `__preserve_error__`.
    preserve_error: bool,
    early: EarlyFilters,
}

impl Hints {
    /// No hints at all (unit tests of single stages).
    #[cfg(test)]
    pub(crate) fn all() -> Hints {
        Hints::default()
    }

    /// Hints of a log query, or of a metric query that cannot narrow extraction: every
    /// name is extracted, the early filters apply.
    pub(crate) fn unhinted(early: &EarlyFilters) -> Hints {
        Hints {
            early: early.clone(),
            ..Hints::default()
        }
    }

    /// Hints as Loki's `NewParserHint` builds them: `referenced` are the names later
    /// stages read (label filters, formatters, the unwrapped label); `groups`, `without`
    /// and `no_labels` the grouping the samples get (for an unwrap, already with the
    /// unwrapped label added when the grouping is `without` or empty).
    pub(crate) fn new(
        referenced: &[String],
        groups: &[String],
        without: bool,
        no_labels: bool,
        early: &EarlyFilters,
    ) -> Hints {
        let required = names_to_extract(referenced.iter().chain(groups));
        let preserve_error = required.iter().any(|r| r == ERROR_LABEL);
        if no_labels {
            if required.is_empty() {
                return Hints {
                    no_labels: true,
                    ..Hints::default()
                };
            }
            return Hints {
                required,
                no_labels: false,
                preserve_error,
                early: early.clone(),
            };
        }
        if without || groups.is_empty() {
            return Hints::unhinted(early);
        }
        Hints {
            required,
            no_labels: false,
            preserve_error,
            early: EarlyFilters::default(),
        }
    }

    /// The names to extract, when the hints narrow extraction to some names and no early
    /// filter can drop a line halfway through parsing it: then what a parser makes of a
    /// line depends only on the members with those names.
    pub(crate) fn named_only(&self) -> Option<&[String]> {
        (!self.no_labels && !self.required.is_empty() && self.early.filters.is_empty())
            .then_some(self.required.as_slice())
    }

    /// The parsers do not run at all.
    pub(crate) fn none(&self) -> bool {
        self.no_labels
    }

    pub(crate) fn should_extract(&self, name: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r == name)
    }

    /// Whether a line's `key`, already a valid label name, cannot be extracted whatever
    /// it collides with: the hints name neither it nor its `_extracted` form. Lets a parser
    /// pass over a key without copying it.
    pub(crate) fn skips_plain_key(&self, key: &[u8]) -> bool {
        !self.required.is_empty()
            && !self.required.iter().any(|r| {
                let r = r.as_bytes();
                r == key || r.strip_suffix(DUPLICATE_SUFFIX.as_bytes()) == Some(key)
            })
    }

    pub(crate) fn should_extract_prefix(&self, prefix: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r.starts_with(prefix))
    }

    /// Whether every required name has been extracted on this line.
    pub(crate) fn all_extracted(&self, labels: &LabelSet) -> bool {
        !self.required.is_empty() && self.required.iter().all(|r| labels.extracted(r))
    }

    /// Whether the parsers need not run at all on this line.
    pub(crate) fn no_labels(&self, labels: &LabelSet) -> bool {
        self.no_labels || self.all_extracted(labels)
    }

    /// Loki's `ShouldContinueParsingLine`: after a parser set `name`, runs the first
    /// early filter paired with that name; `false` drops the line.
    pub(crate) fn should_continue(&self, name: &str, labels: &mut LabelSet) -> bool {
        if self.early.names.is_empty() {
            return true;
        }
        match self.early.names.iter().position(|n| n == name) {
            Some(i) => self.early.filters[i].test(labels),
            None => true,
        }
    }

    /// Sets a parser error as Loki's `addErrLabel` does: the kind, its details when there
    /// are any, and `__preserve_error__` when the query named `__error__`.
    pub(crate) fn set_parser_error(&self, labels: &mut LabelSet, kind: &str, details: &str) {
        labels.set_err(kind);
        if !details.is_empty() {
            labels.set_err_details(details);
        }
        if self.preserve_error {
            labels.set_parsed(PRESERVE_ERROR_LABEL, "true");
        }
    }
}
