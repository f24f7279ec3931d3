//! The `regexp` and `pattern` parsers: labels from named captures.

use super::hints::Hints;
use super::labels::{DUPLICATE_SUFFIX, LabelSet};
use super::pattern::Pattern;
use super::regex_go;
use super::text::push_lossy;

/// `| regexp "(?P<name>...)"`: each named group becomes a label (empty when the group did
/// not take part in the match); a line that does not match gets no labels.
#[derive(Debug, Clone)]
pub(crate) struct RegexpParser {
    re: regex::bytes::Regex,
    /// (group index, label name)
    names: Vec<(usize, String)>,
    locs: regex::bytes::CaptureLocations,
    name: String,
}

impl RegexpParser {
    pub(crate) fn new(src: &str) -> Result<RegexpParser, String> {
        let re = regex_go::compile_bytes(src)?;
        let mut names = Vec::new();
        for (i, n) in re.capture_names().enumerate() {
            if let Some(n) = n {
                if !protocol::labels::is_valid_label_name(n) {
                    return Err(format!("invalid extracted label name '{n}'"));
                }
                names.push((i, n.to_string()));
            }
        }
        if names.is_empty() {
            return Err("at least one named capture must be supplied".into());
        }
        let locs = re.capture_locations();
        Ok(RegexpParser {
            re,
            names,
            locs,
            name: String::new(),
        })
    }

    /// Extracts the captures of `line`; `false` when an early label filter drops it.
    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) -> bool {
        if self.re.captures_read(&mut self.locs, line).is_none() {
            return true;
        }
        for (i, n) in &self.names {
            self.name.clear();
            self.name.push_str(n);
            if labels.collides(n) {
                self.name.push_str(DUPLICATE_SUFFIX);
            }
            if !hints.should_extract(&self.name) || labels.extracted(&self.name) {
                continue;
            }
            let value = self.locs.get(*i).map_or(&[][..], |(s, e)| &line[s..e]);
            let mut w = labels.value_writer();
            push_lossy(w.buf(), value);
            let v = w.finish();
            labels.set_parsed_value(&self.name, v);
            if !hints.should_continue(&self.name, labels) {
                return false;
            }
        }
        true
    }
}

/// `| pattern "<ip> - <_> ..."`.
#[derive(Debug, Clone)]
pub(crate) struct PatternParser {
    pattern: Pattern,
    name: String,
}

impl PatternParser {
    pub(crate) fn new(src: &str) -> Result<PatternParser, String> {
        let pattern = Pattern::parser(src)?;
        Ok(PatternParser {
            pattern,
            name: String::new(),
        })
    }

    /// Extracts the captures of `line`; `false` when an early label filter drops it.
    pub(crate) fn process(&mut self, line: &[u8], labels: &mut LabelSet, hints: &Hints) -> bool {
        if hints.no_labels(labels) {
            return true;
        }
        let pattern = &self.pattern;
        let name = &mut self.name;
        let mut keep = true;
        pattern.captures(line, |i, value| {
            let n = &pattern.names()[i];
            name.clear();
            name.push_str(n);
            if labels.collides(n) {
                name.push_str(DUPLICATE_SUFFIX);
            }
            if labels.extracted(name) || !hints.should_extract(name) {
                return true;
            }
            let mut w = labels.value_writer();
            push_lossy(w.buf(), value);
            let v = w.finish();
            labels.set_parsed_value(name, v);
            keep = hints.should_continue(name, labels);
            keep
        });
        keep
    }
}
