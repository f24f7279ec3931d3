//! Which labels the parsers must extract for a metric query (Loki's parser hints).
//!
//! `sum by (level) (count_over_time({app="api"} | json [5m]))` needs only `level` from
//! each line: the parsers extract just the names asked for and stop as soon as they have
//! them all; `sum(count_over_time(... | json [5m]))` needs no label, and the parsers do not
//! run. Loki does this, and it shows: a line whose JSON breaks after the wanted field, or
//! any line when no label is wanted, gets no `__error__`. We do the same, so that the
//! answers agree.

use super::labels::{DUPLICATE_SUFFIX, LabelSet};

/// The labels a metric query needs from its parsers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hints {
    /// Names to extract; empty means every name.
    required: Vec<String>,
    /// Extract nothing at all.
    no_labels: bool,
}

impl Hints {
    /// No hints: extract everything (log queries, `without` groupings, no grouping).
    pub(crate) fn all() -> Hints {
        Hints::default()
    }

    /// Hints as Loki builds them: `referenced` are the names later stages read (label
    /// filters, formatters, the unwrapped label); `groups` the grouping of the range
    /// aggregation (or of a `sum` around it).
    pub(crate) fn new(
        referenced: &[String],
        groups: &[String],
        without: bool,
        no_labels: bool,
    ) -> Hints {
        let mut required: Vec<String> = Vec::new();
        let mut add = |n: &str| {
            if n.is_empty() || required.iter().any(|r| r == n) {
                return;
            }
            required.push(n.to_string());
            // A parsed name that collides with a stream label is extracted under
            // `name_extracted`; a query naming that form needs the plain name too.
            if let Some(base) = n.strip_suffix(DUPLICATE_SUFFIX)
                && !base.is_empty()
                && !required.iter().any(|r| r == base)
            {
                required.push(base.to_string());
            }
        };
        for n in referenced.iter().chain(groups) {
            add(n);
        }
        if no_labels {
            if required.is_empty() {
                return Hints {
                    required,
                    no_labels: true,
                };
            }
            return Hints {
                required,
                no_labels: false,
            };
        }
        if without || groups.is_empty() {
            return Hints::all();
        }
        Hints {
            required,
            no_labels: false,
        }
    }

    pub(crate) fn should_extract(&self, name: &str) -> bool {
        self.required.is_empty() || self.required.iter().any(|r| r == name)
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
}
