//! What Loki 3 adds to every pushed stream and entry, so queries see the same labels:
//! a `service_name` stream label ([`service_name`]) and a `detected_level` structured
//! metadata field ([`detected_level`]).
//!
//! Both run on the ingest path for every stream and line, so they borrow, allocate only
//! for the value they return, and scan each line at most twice.

use std::borrow::Cow;

use protocol::Labels;

mod words;

/// The stream label Loki derives when a stream has no `service_name`.
pub const SERVICE_NAME: &str = "service_name";
/// The structured metadata field Loki adds to every entry.
pub const DETECTED_LEVEL: &str = "detected_level";
/// `service_name` when no label names a service.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// The labels that name a service, in Loki's default order (`discover_service_name`).
pub const SERVICE_NAME_LABELS: &[&str] = &[
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// The fields that hold a level, in Loki's default order (`log_level_fields`).
pub const LEVEL_FIELDS: &[&str] = &[
    "level",
    "LEVEL",
    "Level",
    "log.level",
    "severity",
    "SEVERITY",
    "Severity",
    "SeverityText",
    "lvl",
    "LVL",
    "Lvl",
    "severity_text",
    "Severity_Text",
    "SEVERITY_TEXT",
];

/// Loki's level names.
pub mod level {
    pub const TRACE: &str = "trace";
    pub const DEBUG: &str = "debug";
    pub const INFO: &str = "info";
    pub const WARN: &str = "warn";
    pub const ERROR: &str = "error";
    pub const CRITICAL: &str = "critical";
    pub const FATAL: &str = "fatal";
    pub const UNKNOWN: &str = "unknown";
    /// Every level [`super::line_level`] gives.
    pub const ALL: [&str; 8] = [TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL, FATAL, UNKNOWN];
}

/// The `service_name` Loki adds to a stream: `None` when the stream already has one,
/// else the value of the first of [`SERVICE_NAME_LABELS`] that is set and not empty, else
/// [`UNKNOWN_SERVICE`].
pub fn service_name(labels: &Labels) -> Option<&str> {
    if labels.get(SERVICE_NAME).is_some() {
        return None;
    }
    for name in SERVICE_NAME_LABELS {
        if let Some(v) = labels.get(name)
            && !v.is_empty()
        {
            return Some(v);
        }
    }
    Some(UNKNOWN_SERVICE)
}

/// The `detected_level` Loki stores for an entry.
///
/// When `metadata` already has `detected_level`, the result is that value normalised
/// (`WARNING` becomes `warn`; unknown words are kept) and the caller replaces it.
/// Otherwise the level comes from the first of [`LEVEL_FIELDS`] among the stream labels,
/// then the metadata, then the line: a JSON object's string field (up to two levels deep)
/// or a logfmt field, normalised; else the first level word in the line (`error`,
/// `WARN`, ...) standing on its own; else `unknown`.
pub fn detected_level<'a>(
    labels: &'a Labels,
    metadata: &[(&'a str, &'a str)],
    line: &str,
) -> Cow<'a, str> {
    if let Some((_, v)) = metadata.iter().find(|(n, _)| *n == DETECTED_LEVEL) {
        return normalize(v);
    }
    // On the push path both are usually empty: skip the dozen lookups per line.
    if !labels.is_empty() {
        for f in LEVEL_FIELDS {
            if let Some(v) = labels.get(f) {
                return normalize(v);
            }
        }
    }
    if !metadata.is_empty() {
        for f in LEVEL_FIELDS {
            if let Some((_, v)) = metadata.iter().find(|(n, _)| n == f) {
                return normalize(v);
            }
        }
    }
    Cow::Borrowed(level_from_line(line))
}

/// Loki's level names for the spellings it knows, else the value itself.
fn normalize(v: &str) -> Cow<'_, str> {
    match known_level(v.as_bytes()) {
        Some(l) => Cow::Borrowed(l),
        None => Cow::Borrowed(v),
    }
}

fn known_level(v: &[u8]) -> Option<&'static str> {
    let eq = |w: &str| v.eq_ignore_ascii_case(w.as_bytes());
    Some(if eq("trace") || eq("trc") {
        level::TRACE
    } else if eq("debug") || eq("dbg") {
        level::DEBUG
    } else if eq("info") || eq("inf") || eq("information") {
        level::INFO
    } else if eq("warn") || eq("wrn") || eq("warning") {
        level::WARN
    } else if eq("error") || eq("err") {
        level::ERROR
    } else if eq("critical") {
        level::CRITICAL
    } else if eq("fatal") {
        level::FATAL
    } else {
        return None;
    })
}

/// The `detected_level` of an entry whose stream labels and metadata name no level: the
/// line's alone, one of Loki's level names.
///
/// Runs of decimal digits only ever stand between other bytes here (no level word,
/// field name or boundary holds a digit), so a line and its template (each run of digits
/// replaced by one `0`, see the store's lines column) have the same level: the store
/// derives it once per template when it writes a block.
pub fn line_level(line: &[u8]) -> &'static str {
    match plain_level(line) {
        Some(level) => level,
        None => level_from_line(&String::from_utf8_lossy(line)),
    }
}

fn level_from_line(line: &str) -> &'static str {
    let b = line.as_bytes();
    let value = if is_json(line) {
        json_level(b)
    } else if b.contains(&b'=') {
        logfmt_level(b)
    } else {
        None
    };
    value
        .and_then(known_level)
        .unwrap_or_else(|| keyword_level(b))
}

fn is_json(line: &str) -> bool {
    let t = line.trim();
    t.starts_with('{') && t.ends_with('}')
}

/// The first level word that stands alone in the line (case-insensitive, with Loki's
/// boundaries on both sides), by position; `unknown` if none.
pub fn keyword_level(b: &[u8]) -> &'static str {
    words::scan(b, false).unwrap_or(level::UNKNOWN)
}

/// The level of a line that names no level field (`level`, `lvl` or `severity`, in any
/// case, anywhere in the line): its [`keyword_level`], found in the same pass. `None` when
/// the line names one; then only [`detected_level`] knows. Most text lines, and many
/// logfmt ones, get their level here without a UTF-8 check or the JSON and logfmt probes.
pub fn plain_level(b: &[u8]) -> Option<&'static str> {
    words::scan(b, true)
}

/// The value of the first level field (by [`LEVEL_FIELDS`] order) in a logfmt line; keys
/// compare case-insensitively, as Loki does.
fn logfmt_level(b: &[u8]) -> Option<&[u8]> {
    let mut best: Option<(usize, &[u8])> = None;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        let key = &b[ks..i];
        if key.is_empty() {
            if i < b.len() && b[i] != b'=' {
                return best.map(|x| x.1); // a stray quote: the decoder stops
            }
            if i < b.len() {
                i += 1;
            }
            continue;
        }
        let mut value: &[u8] = b"";
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && b[i] == b'"' {
                let vs = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    return best.map(|x| x.1);
                }
                value = &b[vs..i];
                i += 1;
            } else {
                let vs = i;
                while i < b.len() && b[i] > b' ' {
                    i += 1;
                }
                value = &b[vs..i];
            }
        }
        for (x, f) in LEVEL_FIELDS.iter().enumerate() {
            if key.eq_ignore_ascii_case(f.as_bytes()) && best.is_none_or(|(bx, _)| x < bx) {
                if x == 0 {
                    return Some(value);
                }
                best = Some((x, value));
            }
        }
    }
    best.map(|x| x.1)
}

/// The first string field named like a level in a JSON object, searching nested objects
/// up to two levels deep, in document order.
fn json_level(b: &[u8]) -> Option<&[u8]> {
    let mut s = JsonScan { b, i: 0 };
    s.ws();
    s.object_level(0)
}

struct JsonScan<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> JsonScan<'a> {
    fn ws(&mut self) {
        while self.i < self.b.len() && self.b[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string's raw contents (escapes left as written).
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        self.i += 1;
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'\\' => self.i += 2,
                b'"' => {
                    let s = &self.b[start..self.i];
                    self.i += 1;
                    return Some(s);
                }
                _ => self.i += 1,
            }
        }
        None
    }

    /// Skips any value.
    fn skip(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            b'{' | b'[' => {
                let mut depth = 0usize;
                while self.i < self.b.len() {
                    match self.b[self.i] {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
                None
            }
            _ => {
                while self.i < self.b.len() && !matches!(self.b[self.i], b',' | b'}' | b']') {
                    self.i += 1;
                }
                Some(())
            }
        }
    }

    fn object_level(&mut self, depth: usize) -> Option<&'a [u8]> {
        if depth >= 2 || self.peek()? != b'{' {
            return None;
        }
        self.i += 1;
        loop {
            self.ws();
            match self.peek()? {
                b'}' => return None,
                b',' => {
                    self.i += 1;
                    continue;
                }
                _ => {}
            }
            let key = self.string()?;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            match self.peek()? {
                b'"' => {
                    let v = self.string()?;
                    if LEVEL_FIELDS.iter().any(|f| f.as_bytes() == key) {
                        return Some(v);
                    }
                }
                b'{' => {
                    let start = self.i;
                    if let Some(v) = self.object_level(depth + 1) {
                        return Some(v);
                    }
                    self.i = start;
                    self.skip()?;
                }
                _ => self.skip()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_boundary(c: u8) -> bool {
        matches!(
            c,
            b' ' | b'\t' | b'\n' | b'[' | b'(' | b'{' | b'"' | b'\'' | b'=' | b'|'
        )
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

    /// Loki's rule as written: the earliest bounded match of each level word in turn.
    fn keyword_level_by_word(b: &[u8]) -> &'static str {
        const PATTERNS: &[(&str, &str)] = &[
            ("trace", level::TRACE),
            ("debug", level::DEBUG),
            ("fatal", level::FATAL),
            ("critical", level::CRITICAL),
            ("error", level::ERROR),
            ("err", level::ERROR),
            ("warning", level::WARN),
            ("warn", level::WARN),
            ("info", level::INFO),
        ];
        let mut best = (b.len(), level::UNKNOWN);
        for (word, lvl) in PATTERNS {
            if let Some(pos) = bounded_index(b, word.as_bytes())
                && pos < best.0
            {
                best = (pos, lvl);
                if pos == 0 {
                    break;
                }
            }
        }
        best.1
    }

    /// The first case-insensitive occurrence of `word` with a boundary on both sides.
    fn bounded_index(b: &[u8], word: &[u8]) -> Option<usize> {
        let n = word.len();
        if b.len() < n {
            return None;
        }
        let first = word[0];
        let mut i = 0;
        while i + n <= b.len() {
            let c = b[i].to_ascii_lowercase();
            if c == first
                && b[i..i + n].eq_ignore_ascii_case(word)
                && (i == 0 || left_boundary(b[i - 1]))
                && (i + n == b.len() || right_boundary(b[i + n]))
            {
                return Some(i);
            }
            i += 1;
        }
        None
    }

    use proptest::prelude::*;

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The one-pass scan finds what one search per level word finds, on lines made of
        /// level words, boundaries and noise.
        #[test]
        fn one_pass_keyword_scan_matches_the_rule(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "trace", "DEBUG", "Fatal", "critical", "error", "err", "ERR",
                        "warning", "Warn", "info", "INFO", "inform", "errors", "xerror",
                    ]).prop_map(str::to_string),
                    proptest::sample::select(vec![
                        " ", "\t", "[", "]", "(", ")", ":", ",", "!", "\"", "'", "|", "}",
                        "-", ".", "/", "\n", "=", "{",
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
            prop_assert_eq!(
                keyword_level(line.as_bytes()),
                keyword_level_by_word(line.as_bytes()),
                "line {:?}", line
            );
        }
    }

    /// Lines made of level words, boundaries, JSON and logfmt pieces with and without
    /// level fields, digits, and noise.
    fn mixed_lines() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            proptest::prop_oneof![
                proptest::sample::select(vec![
                    "trace", "DEBUG", "Fatal", "critical", "error", "err", "ERR", "warning",
                    "Warn", "info", "INFO", "inform", "errors", "xerror",
                ])
                .prop_map(str::to_string),
                proptest::sample::select(vec![
                    " ", "\t", "[", "]", "(", ")", ":", ",", "!", "\"", "'", "|", "}", "-", ".",
                    "/", "\n", "{", "=", "\\", "\\u00", "\u{e9}",
                ])
                .prop_map(str::to_string),
                proptest::sample::select(vec![
                    "level=",
                    "LVL=warn ",
                    "Severity=",
                    "lvl",
                    "\"level\":\"",
                    "{\"msg\":\"",
                    "{\"severity\":\"error\"}",
                    "\"}",
                    "{\"log\":{\"level\":\"debug\"}}",
                    "x=1 ",
                    "status=500 ",
                    "severity_text=fatal",
                    "\"n\":12,",
                ])
                .prop_map(str::to_string),
                "[a-zA-Z0-9 ]{0,6}",
                "[0-9]{1,25}",
                // Long runs, so lines cross the scan's 64-byte chunks.
                "[a-z]{50,70}",
                proptest::collection::vec(any::<u8>(), 0..4)
                    .prop_map(|b: Vec<u8>| String::from_utf8_lossy(&b).into_owned()),
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    /// `line` with each run of digits replaced by one `0`, as the store's templates are.
    fn template(line: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for (i, &c) in line.iter().enumerate() {
            if !c.is_ascii_digit() {
                t.push(c);
            } else if i == 0 || !line[i - 1].is_ascii_digit() {
                t.push(b'0');
            }
        }
        t
    }

    proptest::proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// The shortcut finds the level the full rules find, and a line's template has
        /// the line's level.
        #[test]
        fn line_level_follows_the_rules_and_ignores_digits(line in mixed_lines()) {
            let want = detected_level(&Labels::new(), &[], &line).into_owned();
            prop_assert_eq!(line_level(line.as_bytes()), want.as_str(), "line {:?}", line);
            let t = template(line.as_bytes());
            prop_assert_eq!(line_level(&t), want.as_str(), "line {:?}", line);
        }

        /// Invalid UTF-8 around digits does not change a template's level either.
        #[test]
        fn line_level_ignores_digits_in_any_bytes(
            b in proptest::collection::vec(
                proptest::prop_oneof![
                    any::<u8>(),
                    proptest::sample::select(b"0123456789 e=\"{}lv".to_vec()),
                ],
                0..80,
            ),
        ) {
            prop_assert_eq!(line_level(&template(&b)), line_level(&b), "line {:?}", b);
        }
    }

    fn lvl(line: &str) -> String {
        detected_level(&Labels::new(), &[], line).into_owned()
    }

    #[test]
    fn levels_from_lines() {
        assert_eq!(lvl(r#"{"level": "WARNING", "msg": "x"}"#), "warn");
        assert_eq!(lvl(r#"{"a": {"severity": "err"}}"#), "error");
        assert_eq!(lvl(r#"{"a": {"b": {"level": "dbg"}}}"#), "unknown");
        assert_eq!(lvl("ts=1 level=debug msg=\"x y\""), "debug");
        assert_eq!(lvl("ts=1 LVL=info level=error"), "error");
        assert_eq!(lvl("2015-07-29 17:41:44,747 - INFO  [main] - x"), "info");
        assert_eq!(lvl("nothing here misc:error"), "unknown");
        assert_eq!(lvl("[ERROR] then info"), "error");
        assert_eq!(lvl(""), "unknown");
    }

    #[test]
    fn levels_from_labels_and_metadata() {
        let l = Labels::from_pairs([("level", "WARN")]);
        assert_eq!(detected_level(&l, &[], "error"), "warn");
        assert_eq!(
            detected_level(&Labels::new(), &[("severity", "Fatal")], "info"),
            "fatal"
        );
        assert_eq!(
            detected_level(&Labels::new(), &[("detected_level", "custom")], "info"),
            "custom"
        );
    }

    #[test]
    fn service_names() {
        let l = Labels::from_pairs([("container", "c"), ("app", "a")]);
        assert_eq!(service_name(&l), Some("a"));
        let l = Labels::from_pairs([("service_name", "s"), ("app", "a")]);
        assert_eq!(service_name(&l), None);
        assert_eq!(service_name(&Labels::new()), Some("unknown_service"));
    }
}
