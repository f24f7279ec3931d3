//! What Loki 3.x adds to every push: a `service_name` label on each stream and a
//! `detected_level` structured-metadata pair on each entry. The rules live in
//! [`logql::detect`], shared with the query side; this module applies them on the push
//! path without allocating per line. The pair is stored here only when the stream labels
//! or the metadata decide it; a level only the line decides is the store's to add, once
//! per template (see [`stored_level`]).

use std::borrow::Cow;
use std::sync::LazyLock;

use logql::detect::{self, level};
use protocol::Labels;

use super::labels::StreamLabels;

pub use detect::DETECTED_LEVEL;

/// Adds `service_name` to a stream's labels when it has none.
pub fn add_service_name(labels: &mut Labels) {
    if let Some(name) = detect::service_name(labels) {
        let name = name.to_string();
        labels.set(detect::SERVICE_NAME, &name);
    }
}

/// Most metadata pairs looked at without a heap buffer.
const INLINE_PAIRS: usize = 16;

/// Stands for a stream's labels when none of them names a level.
static NO_LABELS: LazyLock<Labels> = LazyLock::new(Labels::new);

/// The `detected_level` to store with an entry when its stream labels or metadata
/// decide it: one of Loki's level words as a `'static` string, or, for a word Loki keeps
/// as it is, an owned copy (rare). `None` when only the line decides: then the pair is
/// left out, and the store derives it once per template of a block
/// ([`detect::line_level`]), so pushes skip the scan of every line.
pub fn stored_level(
    stream: &StreamLabels,
    metadata: &[(Cow<'_, str>, Cow<'_, str>)],
) -> Option<Cow<'static, str>> {
    if !stream.has_level_label && !names_a_level_field(metadata) {
        return None;
    }
    let labels = if stream.has_level_label {
        &stream.labels
    } else {
        &*NO_LABELS
    };
    // The line is not looked at: a label or a metadata field decides.
    Some(if metadata.len() <= INLINE_PAIRS {
        let mut pairs = [("", ""); INLINE_PAIRS];
        for (slot, (n, v)) in pairs.iter_mut().zip(metadata) {
            *slot = (n.as_ref(), v.as_ref());
        }
        detect::detected_level(labels, &pairs[..metadata.len()], "").into_owned_static()
    } else {
        let pairs: Vec<(&str, &str)> = metadata
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        detect::detected_level(labels, &pairs, "").into_owned_static()
    })
}

/// Whether a metadata field is, or names, a level: then the line's words do not decide.
fn names_a_level_field(metadata: &[(Cow<'_, str>, Cow<'_, str>)]) -> bool {
    metadata
        .iter()
        .any(|(n, _)| n == DETECTED_LEVEL || detect::LEVEL_FIELDS.iter().any(|f| n == f))
}

trait IntoStatic {
    fn into_owned_static(self) -> Cow<'static, str>;
}

impl IntoStatic for Cow<'_, str> {
    fn into_owned_static(self) -> Cow<'static, str> {
        const KNOWN: [&str; 8] = [
            level::TRACE,
            level::DEBUG,
            level::INFO,
            level::WARN,
            level::ERROR,
            level::CRITICAL,
            level::FATAL,
            level::UNKNOWN,
        ];
        match KNOWN.iter().find(|k| **k == self.as_ref()) {
            Some(k) => Cow::Borrowed(k),
            None => Cow::Owned(self.into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_name_from_app_or_unknown() {
        let mut l = Labels::from_pairs([("app", "api"), ("namespace", "shop")]);
        add_service_name(&mut l);
        assert_eq!(l.get("service_name"), Some("api"));
        let mut l = Labels::from_pairs([("namespace", "shop")]);
        add_service_name(&mut l);
        assert_eq!(l.get("service_name"), Some("unknown_service"));
        let mut l = Labels::from_pairs([("app", "api"), ("service_name", "mine")]);
        add_service_name(&mut l);
        assert_eq!(l.get("service_name"), Some("mine"));
    }

    #[test]
    fn levels_named_by_labels_or_metadata_are_stored() {
        let plain = StreamLabels {
            labels: Labels::from_pairs([("app", "api")]),
            text: String::new(),
            has_level_label: false,
        };
        // The line decides: nothing to store.
        assert_eq!(stored_level(&plain, &[]), None);
        let md = [(Cow::Borrowed("trace_id"), Cow::Borrowed("abc"))];
        assert_eq!(stored_level(&plain, &md), None);
        let md = [(Cow::Borrowed("level"), Cow::Borrowed("ERROR"))];
        let lv = stored_level(&plain, &md).unwrap();
        assert_eq!(lv, "error");
        assert!(matches!(lv, Cow::Borrowed(_)));
        // A client's own detected_level, normalised; an unknown word kept.
        let md = [(Cow::Borrowed("detected_level"), Cow::Borrowed("WARNING"))];
        assert_eq!(stored_level(&plain, &md).unwrap(), "warn");
        let md = [(Cow::Borrowed("severity"), Cow::Borrowed("notice"))];
        assert_eq!(stored_level(&plain, &md).unwrap(), "notice");
        // A stream label that names a level wins over the metadata.
        let s = StreamLabels {
            labels: Labels::from_pairs([("app", "api"), ("level", "debug")]),
            text: String::new(),
            has_level_label: true,
        };
        assert_eq!(stored_level(&s, &md).unwrap(), "debug");
    }
}
