//! The labels of one entry while it goes through the pipeline, with Loki's rules for where a
//! label comes from and which source wins.
//!
//! An entry starts with its stream's labels and its structured metadata; parsers and
//! formatters add *parsed* labels; `drop`/`keep` delete. Loki's precedence is
//! parsed > structured metadata > stream: a parsed label hides a metadata or stream label of
//! the same name, and a metadata label hides a stream label. Deleting a name hides the stream
//! label for the rest of the line. The error labels `__error__` and `__error_details__` are
//! kept apart and count as parsed.
//!
//! Every string of a line lives in one arena that is truncated, not freed, between lines,
//! so a steady stream of entries allocates nothing. The stream's own labels sit at the
//! start of the arena for the life of the [`StreamPipeline`](super::StreamPipeline).

use std::hash::Hasher;

use protocol::response::Categories;
use protocol::{Label, Labels};

use crate::prehashed::PrehashedMap;

/// Where a label of a processed entry comes from; Loki reports the three apart under
/// `categorize-labels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Stream,
    StructuredMetadata,
    Parsed,
}

pub(crate) const ERROR_LABEL: &str = "__error__";
pub(crate) const ERROR_DETAILS_LABEL: &str = "__error_details__";
/// Appended to a parsed name that collides with a stream label or metadata.
pub(crate) const DUPLICATE_SUFFIX: &str = "_extracted";

/// Name equality that rejects most mismatches before calling `memcmp`: label names
/// are short and mostly differ in length or first byte.
#[inline]
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.is_empty() || a.as_bytes()[0] == b.as_bytes()[0]) && a == b
}

/// A one-bit summary of a name: sets of names keep the union of their bits, so most
/// "is this name in the set" questions are answered without comparing strings.
#[inline]
fn bit(name: &str) -> u64 {
    let b = name.as_bytes();
    let h = match b {
        [] => 0,
        [first, .., last] => b.len() as u32 * 7 + u32::from(*first) * 3 + u32::from(*last),
        [only] => 7 + u32::from(*only) * 4,
    };
    1u64 << (h & 63)
}

/// Past this many names parsed on one line, whether a name is among them is asked of an
/// index rather than of each name in turn: a line can carry tens of thousands of fields,
/// and comparing each new one with all before it took seconds per line.
const INDEXED: usize = 32;

fn name_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// A byte range of the arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pair {
    name: Span,
    value: Span,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    name: Span,
    value: Span,
    cat: Category,
    /// The first eight bytes of the name, big-endian: orders most names without memcmp.
    key: u64,
}

fn sort_key(name: &str) -> u64 {
    let mut k = [0u8; 8];
    let n = name.len().min(8);
    k[..n].copy_from_slice(&name.as_bytes()[..n]);
    u64::from_be_bytes(k)
}

/// An entry's labels after the pipeline: sorted by name, names unique, each with its
/// category. While the pipeline runs it is also the working set the stages read and edit.
#[derive(Debug, Clone, Default)]
pub struct LabelSet {
    text: String,
    /// Length of the arena prefix holding the stream labels.
    base_len: usize,
    stream: Vec<Pair>,
    metadata: Vec<Pair>,
    parsed: Vec<Pair>,
    deleted: Vec<Span>,
    /// Names parsed on this line: Loki's parsers do not overwrite a name a previous parser
    /// (or formatter) of the same line already set.
    extracted: Vec<Span>,
    /// Past [`INDEXED`] names in `extracted`: the hash of each name (plus the probes it
    /// took to find a free key) → its index in `extracted`.
    extracted_index: PrehashedMap<u32>,
    err: Option<Span>,
    err_details: Option<Span>,
    /// `bit`s of the names in `stream`, `metadata`, `parsed`, `deleted`, `extracted`
    /// (never cleared within a line: a stale bit only costs a scan).
    stream_bits: u64,
    metadata_bits: u64,
    parsed_bits: u64,
    deleted_bits: u64,
    extracted_bits: u64,
    /// The finished, sorted view; valid after `finish`.
    view: Vec<Slot>,
}

impl LabelSet {
    /// A set bound to one stream's labels.
    pub(crate) fn for_stream(stream: &Labels) -> LabelSet {
        let mut set = LabelSet::default();
        for l in stream {
            let name = set.push_text(&l.name);
            let value = set.push_text(&l.value);
            set.stream.push(Pair { name, value });
            set.stream_bits |= bit(&l.name);
        }
        set.base_len = set.text.len();
        set
    }

    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            end: self.text.len() as u32,
        }
    }

    #[inline]
    fn str(&self, s: Span) -> &str {
        &self.text[s.start as usize..s.end as usize]
    }

    /// Starts a new entry: only the stream labels remain.
    pub(crate) fn reset(&mut self) {
        self.text.truncate(self.base_len);
        self.metadata.clear();
        self.parsed.clear();
        self.deleted.clear();
        self.extracted.clear();
        if !self.extracted_index.is_empty() {
            if self.extracted_index.capacity() > 4 * INDEXED {
                // A line with many fields: the next ones likely have few.
                self.extracted_index = PrehashedMap::default();
            } else {
                self.extracted_index.clear();
            }
        }
        self.err = None;
        self.err_details = None;
        self.metadata_bits = 0;
        self.parsed_bits = 0;
        self.deleted_bits = 0;
        self.extracted_bits = 0;
        self.view.clear();
    }

    /// Adds one structured-metadata pair at the start of an entry. A name that is also a
    /// stream label gets `_extracted` appended; `__error__`/`__error_details__` set the
    /// error, as Loki does.
    pub(crate) fn add_metadata(&mut self, name: &str, value: &str) {
        if self.base_has(name) {
            let n = self.text.len();
            self.text.push_str(name);
            self.text.push_str(DUPLICATE_SUFFIX);
            let name = Span {
                start: n as u32,
                end: self.text.len() as u32,
            };
            let value = self.push_text(value);
            self.set_metadata_span(name, value);
            return;
        }
        if name == ERROR_LABEL {
            self.err = Some(self.push_text(value));
            return;
        }
        if name == ERROR_DETAILS_LABEL {
            self.err_details = Some(self.push_text(value));
            return;
        }
        let name = self.push_text(name);
        let value = self.push_text(value);
        self.set_metadata_span(name, value);
    }

    fn set_metadata_span(&mut self, name: Span, value: Span) {
        let n = self.str(name);
        let b = bit(n);
        if self.parsed_bits & b != 0 && self.parsed.iter().any(|p| same(self.str(p.name), n)) {
            return;
        }
        let existing = if self.metadata_bits & b != 0 {
            self.metadata.iter().position(|p| same(self.str(p.name), n))
        } else {
            None
        };
        match existing {
            Some(i) => self.metadata[i].value = value,
            None => self.metadata.push(Pair { name, value }),
        }
        self.metadata_bits |= b;
    }

    /// Whether the stream itself has the label, deleted or not (Loki's `BaseHas`).
    pub(crate) fn base_has(&self, name: &str) -> bool {
        self.stream_bits & bit(name) != 0
            && self.stream.iter().any(|p| same(self.str(p.name), name))
    }

    /// Whether a structured-metadata label of this name is present.
    pub(crate) fn has_metadata(&self, name: &str) -> bool {
        self.metadata_bits & bit(name) != 0
            && self.metadata.iter().any(|p| same(self.str(p.name), name))
    }

    /// Whether a parsed name must get `_extracted`: it collides with a stream label or a
    /// structured-metadata label.
    pub(crate) fn collides(&self, name: &str) -> bool {
        self.base_has(name) || self.has_metadata(name)
    }

    /// Whether a parser or formatter already set this name on this line.
    pub(crate) fn extracted(&self, name: &str) -> bool {
        if self.extracted_bits & bit(name) == 0 {
            return false;
        }
        if self.extracted.len() <= INDEXED {
            return self.extracted.iter().any(|s| same(self.str(*s), name));
        }
        let mut h = name_hash(name);
        while let Some(&i) = self.extracted_index.get(&h) {
            if same(self.str(self.extracted[i as usize]), name) {
                return true;
            }
            h = h.wrapping_add(1);
        }
        false
    }

    fn push_extracted(&mut self, name: Span) {
        self.extracted.push(name);
        let n = self.extracted.len();
        if n == INDEXED + 1 {
            for i in 0..n {
                self.index_extracted(i);
            }
        } else if n > INDEXED + 1 {
            self.index_extracted(n - 1);
        }
    }

    fn index_extracted(&mut self, i: usize) {
        let mut h = name_hash(self.str(self.extracted[i]));
        while self.extracted_index.contains_key(&h) {
            h = h.wrapping_add(1);
        }
        self.extracted_index.insert(h, i as u32);
    }

    fn find_span(&self, name: &str) -> Option<(Span, Category)> {
        let b = bit(name);
        if self.metadata_bits & b != 0
            && let Some(p) = self.metadata.iter().find(|p| same(self.str(p.name), name))
        {
            return Some((p.value, Category::StructuredMetadata));
        }
        if self.parsed_bits & b != 0
            && let Some(p) = self.parsed.iter().find(|p| same(self.str(p.name), name))
        {
            return Some((p.value, Category::Parsed));
        }
        if self.deleted_bits & b != 0 && self.deleted.iter().any(|d| same(self.str(*d), name)) {
            return None;
        }
        if self.stream_bits & b == 0 {
            return None;
        }
        self.stream
            .iter()
            .find(|p| same(self.str(p.name), name) && p.value.start != p.value.end)
            .map(|p| (p.value, Category::Stream))
    }

    /// A label's current value, Loki's `Get`: the error labels are not seen here.
    pub(crate) fn lookup(&self, name: &str) -> Option<&str> {
        self.find_span(name).map(|(s, _)| self.str(s))
    }

    /// A label's value when a parser or formatter set it on this line.
    pub(crate) fn lookup_parsed(&self, name: &str) -> Option<&str> {
        match self.find_span(name) {
            Some((s, Category::Parsed)) => Some(self.str(s)),
            _ => None,
        }
    }

    /// A label's value as templates see it: every label, the error labels included.
    pub(crate) fn lookup_all(&self, name: &str) -> Option<&str> {
        if name == ERROR_LABEL
            && let Some(e) = self.err
        {
            return Some(self.str(e));
        }
        if name == ERROR_DETAILS_LABEL
            && let Some(e) = self.err_details
        {
            return Some(self.str(e));
        }
        self.lookup(name)
    }

    /// Sets a parsed label, hiding metadata and stream labels of the same name.
    pub(crate) fn set_parsed(&mut self, name: &str, value: &str) {
        let value = self.push_text(value);
        self.set_parsed_value(name, value);
    }

    /// Sets a parsed label whose value is already in the arena (see [`Self::value_writer`]).
    pub(crate) fn set_parsed_value(&mut self, name: &str, value: Span) {
        let b = bit(name);
        if self.metadata_bits & b != 0 {
            self.metadata.retain(|p| {
                let n = &self.text[p.name.start as usize..p.name.end as usize];
                n != name
            });
        }
        // Parsed names are all in `extracted`, which answers fast when it is long.
        if self.parsed_bits & b != 0
            && (self.extracted.len() <= INDEXED || self.extracted(name))
            && let Some(i) = self
                .parsed
                .iter()
                .position(|p| same(self.str(p.name), name))
        {
            self.parsed[i].value = value;
            return;
        }
        let name = self.push_text(name);
        self.parsed.push(Pair { name, value });
        self.push_extracted(name);
        self.parsed_bits |= b;
        self.extracted_bits |= b;
    }

    /// Renames: the value of `src` (any category) becomes parsed label `dst` and `src` is
    /// deleted. Nothing happens when `src` is absent.
    pub(crate) fn rename(&mut self, dst: &str, src: &str) {
        if let Some((v, _)) = self.find_span(src) {
            self.set_parsed_value(dst, v);
            self.delete(src);
        }
    }

    /// Appends to the arena and returns the span written, for values built in place
    /// (unescaped JSON strings, template output) without an intermediate buffer.
    pub(crate) fn value_writer(&mut self) -> ValueWriter<'_> {
        let start = self.text.len();
        ValueWriter { set: self, start }
    }

    /// Deletes a label of any category; a stream label stays hidden for this line.
    pub(crate) fn delete(&mut self, name: &str) {
        let text = &self.text;
        let eq = |p: &Pair| &text[p.name.start as usize..p.name.end as usize] == name;
        self.metadata.retain(|p| !eq(p));
        self.parsed.retain(|p| !eq(p));
        if !self.deleted.iter().any(|d| same(self.str(*d), name)) {
            let d = self.push_text(name);
            self.deleted.push(d);
            self.deleted_bits |= bit(name);
        }
    }

    pub(crate) fn err(&self) -> Option<&str> {
        self.err.map(|s| self.str(s))
    }

    pub(crate) fn err_details(&self) -> Option<&str> {
        self.err_details.map(|s| self.str(s))
    }

    pub(crate) fn has_err(&self) -> bool {
        self.err.is_some()
    }

    /// Sets `__error__` (a fixed kind such as `JSONParserErr`).
    pub(crate) fn set_err(&mut self, kind: &str) {
        self.err = Some(self.push_text(kind));
    }

    pub(crate) fn set_err_details(&mut self, details: &str) {
        self.err_details = if details.is_empty() {
            None
        } else {
            Some(self.push_text(details))
        };
    }

    pub(crate) fn clear_err(&mut self) {
        self.err = None;
    }

    pub(crate) fn clear_err_details(&mut self) {
        self.err_details = None;
    }

    /// Visits every current label (as Loki's `UnsortedLabels`): stream labels not hidden,
    /// metadata not hidden, parsed labels, then the error labels.
    pub(crate) fn for_each_current<'s>(&'s self, mut f: impl FnMut(&'s str, &'s str, Category)) {
        for p in &self.stream {
            let n = self.str(p.name);
            if self.hidden_stream(n) {
                continue;
            }
            f(n, self.str(p.value), Category::Stream);
        }
        for p in &self.metadata {
            f(
                self.str(p.name),
                self.str(p.value),
                Category::StructuredMetadata,
            );
        }
        for p in &self.parsed {
            f(self.str(p.name), self.str(p.value), Category::Parsed);
        }
        if let Some(e) = self.err {
            f(ERROR_LABEL, self.str(e), Category::Parsed);
        }
        if let Some(e) = self.err_details {
            f(ERROR_DETAILS_LABEL, self.str(e), Category::Parsed);
        }
    }

    fn hidden_stream(&self, n: &str) -> bool {
        if (self.deleted_bits | self.metadata_bits | self.parsed_bits) & bit(n) == 0 {
            return false;
        }
        self.deleted.iter().any(|d| same(self.str(*d), n))
            || self.metadata.iter().any(|p| same(self.str(p.name), n))
            || self.parsed.iter().any(|p| same(self.str(p.name), n))
    }

    /// `keep`: deletes every current label (the error labels aside) for which `kept(name,
    /// value)` is false, in one pass. Like a deletion one by one, a deleted name also
    /// hides a stream label of that name.
    pub(crate) fn keep_only(&mut self, kept: impl Fn(&str, &str) -> bool) {
        let text = &self.text;
        let s = |sp: Span| &text[sp.start as usize..sp.end as usize];
        let hidden_bits = self.deleted_bits | self.metadata_bits | self.parsed_bits;
        let before = self.deleted.len();
        for p in &self.stream {
            let n = s(p.name);
            let hidden = hidden_bits & bit(n) != 0
                && (self.deleted[..before].iter().any(|d| same(s(*d), n))
                    || self.metadata.iter().any(|m| same(s(m.name), n))
                    || self.parsed.iter().any(|m| same(s(m.name), n)));
            if !hidden && !kept(n, s(p.value)) {
                self.deleted.push(p.name);
                self.deleted_bits |= bit(n);
            }
        }
        let deleted = &mut self.deleted;
        let deleted_bits = &mut self.deleted_bits;
        let mut drop = |p: &Pair| {
            let n = s(p.name);
            if kept(n, s(p.value)) {
                return true;
            }
            deleted.push(p.name);
            *deleted_bits |= bit(n);
            false
        };
        self.metadata.retain(&mut drop);
        self.parsed.retain(&mut drop);
    }

    /// Builds the sorted view that [`Processed`](super::Processed) hands out. `skip` names
    /// a label left out of the view (the unwrapped label of a metric query).
    pub(crate) fn finish(&mut self, skip: Option<&str>) {
        let mut view = std::mem::take(&mut self.view);
        view.clear();
        let slot = |set: &LabelSet, p: &Pair, cat| Slot {
            name: p.name,
            value: p.value,
            cat,
            key: sort_key(set.str(p.name)),
        };
        for p in &self.stream {
            let n = self.str(p.name);
            if self.hidden_stream(n) || skip == Some(n) {
                continue;
            }
            view.push(slot(self, p, Category::Stream));
        }
        for p in &self.metadata {
            if skip != Some(self.str(p.name)) {
                view.push(slot(self, p, Category::StructuredMetadata));
            }
        }
        for p in &self.parsed {
            if skip != Some(self.str(p.name)) {
                view.push(slot(self, p, Category::Parsed));
            }
        }
        for (name, value) in [
            (ERROR_LABEL, self.err),
            (ERROR_DETAILS_LABEL, self.err_details),
        ] {
            if let Some(value) = value {
                let name_span = self.push_text(name);
                view.push(Slot {
                    name: name_span,
                    value,
                    cat: Category::Parsed,
                    key: sort_key(name),
                });
            }
        }
        let text = &self.text;
        let name = |s: &Slot| &text[s.name.start as usize..s.name.end as usize];
        view.sort_unstable_by(|a, b| a.key.cmp(&b.key).then_with(|| name(a).cmp(name(b))));
        // A parsed label literally named `__error__` would duplicate the error label: the
        // later one (the error) wins.
        view.dedup_by(|later, earlier| {
            let same = later.key == earlier.key && name(later) == name(earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        self.view = view;
    }

    /// The labels in name order with their categories.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, Category)> {
        self.view
            .iter()
            .map(|s| (self.str(s.name), self.str(s.value), s.cat))
    }

    pub fn len(&self) -> usize {
        self.view.len()
    }

    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.view
            .binary_search_by(|s| self.str(s.name).cmp(name))
            .ok()
            .map(|i| self.str(self.view[i].value))
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
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for s in &self.view {
            let n = self.str(s.name);
            if keep(n) {
                h.update(n.as_bytes());
                h.update(&[0xff]);
                h.update(self.str(s.value).as_bytes());
                h.update(&[0xff]);
            }
        }
        h.finish()
    }

    /// All labels, categories merged, as Loki returns them without `categorize-labels`.
    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted(
            self.view
                .iter()
                .map(|s| Label {
                    name: self.str(s.name).to_string(),
                    value: self.str(s.value).to_string(),
                })
                .collect(),
        )
    }

    /// The labels an entry is answered under and, with `categorize` (Loki's
    /// `categorize-labels`), the entry's other labels: without it all labels merged;
    /// with it the stream's own, the structured metadata and parsed labels apart.
    pub fn answer_labels(&self, categorize: bool) -> (Labels, Option<Categories>) {
        if !categorize {
            return (self.to_labels(), None);
        }
        let categories = Categories {
            structured_metadata: self.category(Category::StructuredMetadata),
            parsed: self.category(Category::Parsed),
        };
        (self.category(Category::Stream), Some(categories))
    }

    /// The labels of one category. The error labels count as parsed.
    pub fn category(&self, cat: Category) -> Labels {
        Labels::from_sorted(
            self.view
                .iter()
                .filter(|s| s.cat == cat)
                .map(|s| Label {
                    name: self.str(s.name).to_string(),
                    value: self.str(s.value).to_string(),
                })
                .collect(),
        )
    }
}

/// Writes one value at the end of the arena; [`ValueWriter::finish`] returns its span.
pub(crate) struct ValueWriter<'a> {
    set: &'a mut LabelSet,
    start: usize,
}

impl ValueWriter<'_> {
    pub(crate) fn buf(&mut self) -> &mut String {
        &mut self.set.text
    }

    pub(crate) fn finish(self) -> Span {
        Span {
            start: self.start as u32,
            end: self.set.text.len() as u32,
        }
    }
}
