//! What Loki 3.x adds to every push: a `service_name` label on each stream and a
//! `detected_level` structured-metadata pair on each entry. The rules live in
//! [`logql::detect`], shared with the query side; this module applies them on the push
//! path without allocating per line.

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

/// The entry's `detected_level`: one of Loki's level words as a `'static` string, or, for
/// a word Loki keeps as it is, an owned copy (rare).
pub fn detected_level(
    stream: &StreamLabels,
    metadata: &[(Cow<'_, str>, Cow<'_, str>)],
    line: &[u8],
) -> Cow<'static, str> {
    let labels = if stream.has_level_label {
        &stream.labels
    } else {
        &*NO_LABELS
    };
    level_of(labels, metadata, line)
}

fn level_of(
    stream: &Labels,
    metadata: &[(Cow<'_, str>, Cow<'_, str>)],
    line: &[u8],
) -> Cow<'static, str> {
    if stream.is_empty()
        && !names_a_level_field(metadata)
        && let Some(level) = detect::plain_level(line)
    {
        return Cow::Borrowed(level);
    }
    let line = crate::push::utf8(line);
    if metadata.len() <= INLINE_PAIRS {
        let mut pairs = [("", ""); INLINE_PAIRS];
        for (slot, (n, v)) in pairs.iter_mut().zip(metadata) {
            *slot = (n.as_ref(), v.as_ref());
        }
        detect::detected_level(stream, &pairs[..metadata.len()], &line).into_owned_static()
    } else {
        let pairs: Vec<(&str, &str)> = metadata
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        detect::detected_level(stream, &pairs, &line).into_owned_static()
    }
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
    use proptest::prelude::*;

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

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The shortcut finds the level Loki's rules in `logql::detect` find, on lines
        /// made of level words, boundaries, JSON and logfmt pieces with and without level
        /// fields, and noise.
        #[test]
        fn plain_lines_get_the_level_logql_detects(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "trace", "DEBUG", "Fatal", "critical", "error", "err", "ERR",
                        "warning", "Warn", "info", "INFO", "inform", "errors", "xerror",
                    ]).prop_map(str::to_string),
                    proptest::sample::select(vec![
                        " ", "\t", "[", "]", "(", ")", ":", ",", "!", "\"", "'", "|", "}",
                        "-", ".", "/", "\n", "{", "=",
                    ]).prop_map(str::to_string),
                    proptest::sample::select(vec![
                        "level=", "LVL=warn ", "Severity=", "lvl", "\"level\":\"", "{\"msg\":\"",
                        "{\"severity\":\"error\"}", "\"}", "{\"log\":{\"level\":\"debug\"}}",
                        "x=1 ", "status=500 ", "severity_text=fatal",
                    ]).prop_map(str::to_string),
                    "[a-zA-Z0-9 ]{0,6}",
                    // Long runs, so lines cross the scan's 64-byte chunks.
                    "[a-z]{50,70}",
                    proptest::collection::vec(any::<u8>(), 0..4)
                        .prop_map(|b: Vec<u8>| String::from_utf8_lossy(&b).into_owned()),
                ],
                0..12,
            ),
        ) {
            let line = parts.concat();
            let none = Labels::new();
            let want = detect::detected_level(&none, &[], &line).into_owned();
            let got = level_of(&none, &[], line.as_bytes());
            prop_assert_eq!(got.as_ref(), want.as_str(), "line {:?}", line);
        }
    }

    #[test]
    fn levels_borrow_static_words() {
        let l = Labels::from_pairs([("app", "api")]);
        let lv = level_of(&l, &[], br#"{"level":"warning","msg":"x"}"#);
        assert_eq!(lv, "warn");
        assert!(matches!(lv, Cow::Borrowed(_)));
        let md = [(Cow::Borrowed("level"), Cow::Borrowed("ERROR"))];
        assert_eq!(level_of(&l, &md, b"plain"), "error");
        assert_eq!(level_of(&l, &[], b"nothing here"), "unknown");
        // A stream label that names a level wins over the line.
        let s = StreamLabels {
            labels: Labels::from_pairs([("app", "api"), ("level", "debug")]),
            text: String::new(),
            has_level_label: true,
        };
        assert_eq!(detected_level(&s, &[], b"ERROR boom"), "debug");
    }
}
