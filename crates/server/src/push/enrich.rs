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
        && !metadata_names_level(metadata)
        && let Some(level) = plain_line_level(line)
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

/// Whether the metadata holds a level field (then `logql::detect` decides).
fn metadata_names_level(metadata: &[(Cow<'_, str>, Cow<'_, str>)]) -> bool {
    metadata
        .iter()
        .any(|(n, _)| n == DETECTED_LEVEL || detect::LEVEL_FIELDS.iter().any(|f| n == f))
}

/// Byte classes for [`plain_line_level`]: a byte before which a level word may start,
/// the first letter of a level word, the first letter of a level field name.
const LEFT: u8 = 1;
const WORD: u8 = 2;
const FIELD: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let left = b" \t\n[({\"'=|";
    let mut k = 0;
    while k < left.len() {
        t[left[k] as usize] |= LEFT;
        k += 1;
    }
    let word = b"tdfcewi";
    let mut k = 0;
    while k < word.len() {
        t[word[k] as usize] |= WORD;
        t[word[k].to_ascii_uppercase() as usize] |= WORD;
        k += 1;
    }
    t[b'l' as usize] |= FIELD;
    t[b'L' as usize] |= FIELD;
    t[b's' as usize] |= FIELD;
    t[b'S' as usize] |= FIELD;
    t
};

/// Level words in Loki's order of preference at one position, packed little-endian.
const WORDS: [(u64, usize, &str); 9] = [
    (pack(b"trace"), 5, level::TRACE),
    (pack(b"debug"), 5, level::DEBUG),
    (pack(b"fatal"), 5, level::FATAL),
    (pack(b"critical"), 8, level::CRITICAL),
    (pack(b"error"), 5, level::ERROR),
    (pack(b"err"), 3, level::ERROR),
    (pack(b"warning"), 7, level::WARN),
    (pack(b"warn"), 4, level::WARN),
    (pack(b"info"), 4, level::INFO),
];

const fn pack(w: &[u8]) -> u64 {
    let mut x = 0u64;
    let mut k = 0;
    while k < w.len() {
        x |= (w[k] as u64) << (8 * k);
        k += 1;
    }
    x
}

const fn low_bytes(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    }
}

/// Up to eight bytes of `b` from `i`, ASCII letters folded to lower case (`| 0x20` maps
/// only letters onto letters); past the end, spaces, which match no letter.
#[inline]
fn folded8(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    if let Some(s) = b.get(i..i + 8) {
        // One load (a copy of a constant length), not a call to memcpy.
        x.copy_from_slice(s);
    } else {
        let n = b.len().saturating_sub(i);
        x[..n].copy_from_slice(&b[i..]);
    }
    u64::from_le_bytes(x) | 0x2020_2020_2020_2020
}

/// The level of a line whose level can only come from a word in it, in one pass: `None`
/// when the line may hold a JSON or logfmt level field (every name in
/// [`detect::LEVEL_FIELDS`] holds `level`, `severity` or `lvl`, in any case), else the
/// first level word standing alone in the line (case-insensitive, with Loki's boundaries
/// on both sides), by position, or `unknown`. It gives what [`detect::detected_level`]
/// gives (a proptest checks it), which scans the line once per level word: that was a
/// quarter of the server's ingest CPU.
fn plain_line_level(b: &[u8]) -> Option<&'static str> {
    let mut found = None;
    let mut left = true;
    for (i, &c) in b.iter().enumerate() {
        let class = CLASS[c as usize];
        if class & FIELD != 0 {
            let w = folded8(b, i);
            if w & low_bytes(5) == pack(b"level")
                || w & low_bytes(3) == pack(b"lvl")
                || w == pack(b"severity")
            {
                return None;
            }
        } else if class & WORD != 0 && left && found.is_none() {
            let w = folded8(b, i);
            for (word, len, lvl) in WORDS {
                if w & low_bytes(len) == word && b.get(i + len).is_none_or(|&r| right_boundary(r)) {
                    found = Some(lvl);
                    break;
                }
            }
        }
        left = class & LEFT != 0;
    }
    Some(found.unwrap_or(level::UNKNOWN))
}

fn right_boundary(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t'
            | b'\n'
            | b'['
            | b']'
            | b'('
            | b')'
            | b'{'
            | b'}'
            | b':'
            | b','
            | b'!'
            | b'"'
            | b'\''
            | b'='
            | b'|'
    )
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

        /// The one-pass scan of plain lines finds the level Loki's rules in
        /// `logql::detect` find, on lines made of level words, boundaries, JSON and logfmt
        /// level fields and noise.
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
                        "-", ".", "/", "\n", "{", "=", "level=", "LVL=", "Severity=",
                        "{\"level\":\"", "\"lvl\":\"", "{\"log\":{\"severity\":\"",
                    ]).prop_map(str::to_string),
                    "[a-zA-Z0-9 ]{0,6}",
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
    fn every_level_field_is_seen_by_the_plain_line_test() {
        for f in detect::LEVEL_FIELDS {
            assert_eq!(plain_line_level(f.as_bytes()), None, "{f}");
        }
        assert_eq!(plain_line_level(b"lev el sever ity lv"), Some("unknown"));
        assert_eq!(plain_line_level(b"x WARN: disk"), Some("warn"));
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
