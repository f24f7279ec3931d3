//! The log pipeline: everything after a stream selector, run entry by entry.
//!
//! (Skeleton of the interface: the stages are being built. The evaluator, the tail and the
//! agent program against this API.)
//!
//! A [`Pipeline`] is compiled once per query from the AST; [`Pipeline::for_stream`] makes a
//! [`StreamPipeline`] per stream, which [`StreamPipeline::process`]es entries one at a time
//! and hands back the [`Processed`] line and labels, valid until the next call, so the hot
//! loop allocates nothing per line.

use protocol::{Label, Labels};

use crate::ast::{Stage, Unwrap};
use crate::source::RequiredText;

/// A pipeline that cannot be built: a bad regex, pattern or template. HTTP 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    #[error("{0}")]
    Invalid(String),
}

/// Where a label of a processed entry comes from; Loki reports the three apart under
/// `categorize-labels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Stream,
    StructuredMetadata,
    Parsed,
}

/// A compiled pipeline.
#[derive(Debug, Clone)]
pub struct Pipeline {
    stages: Vec<Stage>,
}

impl Pipeline {
    /// Compiles `stages`, and `unwrap` when the pipeline feeds an unwrapped range
    /// aggregation.
    pub fn new(stages: &[Stage], unwrap: Option<&Unwrap>) -> Result<Pipeline, PipelineError> {
        if !stages.is_empty() || unwrap.is_some() {
            return Err(PipelineError::Invalid(
                "pipeline stages are not built yet".into(),
            ));
        }
        Ok(Pipeline {
            stages: stages.to_vec(),
        })
    }

    /// Whether any stage reads the line; when not, storage need not decompress lines.
    pub fn needs_lines(&self) -> bool {
        !self.stages.is_empty()
    }

    /// Text that every line passing the pipeline contains, from its leading line filters.
    pub fn required_text(&self) -> Option<RequiredText> {
        None
    }

    pub fn for_stream<'a>(&'a self, labels: &'a Labels) -> StreamPipeline<'a> {
        StreamPipeline {
            _pipeline: self,
            stream: labels,
            set: LabelSet::default(),
            line: Vec::new(),
        }
    }
}

/// A pipeline bound to one stream.
pub struct StreamPipeline<'a> {
    _pipeline: &'a Pipeline,
    stream: &'a Labels,
    set: LabelSet,
    line: Vec<u8>,
}

/// An entry after the pipeline. Valid until the next call to `process`.
pub struct Processed<'p> {
    pub line: &'p [u8],
    pub labels: &'p LabelSet,
    /// The unwrapped value, when the pipeline has an unwrap. A value that failed to convert
    /// is 0 and the labels carry `__error__`.
    pub value: Option<f64>,
}

impl StreamPipeline<'_> {
    /// Runs one entry; `None` when a filter drops it.
    pub fn process<'m>(
        &mut self,
        _ts: i64,
        line: &[u8],
        metadata: impl Iterator<Item = (&'m str, &'m str)>,
    ) -> Option<Processed<'_>> {
        self.set.clear();
        for l in self.stream {
            self.set.push(&l.name, &l.value, Category::Stream);
        }
        for (n, v) in metadata {
            self.set.push(n, v, Category::StructuredMetadata);
        }
        self.set.finish();
        self.line.clear();
        self.line.extend_from_slice(line);
        Some(Processed {
            line: &self.line,
            labels: &self.set,
            value: None,
        })
    }
}

/// An entry's labels after the pipeline: sorted by name, names unique, each with its
/// category.
#[derive(Debug, Clone, Default)]
pub struct LabelSet {
    items: Vec<(String, String, Category)>,
}

impl LabelSet {
    fn clear(&mut self) {
        self.items.clear();
    }

    fn push(&mut self, name: &str, value: &str, cat: Category) {
        self.items.push((name.to_string(), value.to_string(), cat));
    }

    fn finish(&mut self) {
        self.items.sort_by(|a, b| a.0.cmp(&b.0));
        self.items.dedup_by(|later, earlier| later.0 == earlier.0);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Category)> {
        self.items
            .iter()
            .map(|(n, v, c)| (n.as_str(), v.as_str(), *c))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .binary_search_by(|i| i.0.as_str().cmp(name))
            .ok()
            .map(|i| self.items[i].1.as_str())
    }

    /// A hash of the whole label set: equal sets hash equal within one process.
    pub fn hash(&self) -> u64 {
        self.hash_filtered(|_| true)
    }

    /// A hash of the labels kept by a grouping: with `without == false` only `names`,
    /// otherwise all but `names`.
    pub fn hash_grouped(&self, names: &[String], without: bool) -> u64 {
        self.hash_filtered(|n| names.iter().any(|g| g == n) != without)
    }

    fn hash_filtered(&self, keep: impl Fn(&str) -> bool) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for (n, v, _) in &self.items {
            if keep(n) {
                n.hash(&mut h);
                v.hash(&mut h);
            }
        }
        h.finish()
    }

    /// All labels, categories merged, as Loki returns them without `categorize-labels`.
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.items
                .iter()
                .map(|(n, v, _)| Label {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    }

    /// The labels of one category.
    pub fn category(&self, cat: Category) -> Labels {
        Labels::from_sorted(
            self.items
                .iter()
                .filter(|i| i.2 == cat)
                .map(|(n, v, _)| Label {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
        )
    }
}
