//! The per-block text filter: a one-hash Bloom filter over the block's case-folded byte
//! trigrams, written at ingest and consulted before a block is decompressed.
//!
//! Why trigrams: LogQL's `|= "x"` is a substring test, so a filter over whole words would
//! miss `|= "rror"` in `error`; every line that contains a needle of three or more bytes
//! contains each of the needle's trigrams, so a block whose filter lacks one cannot match
//! (no false negatives, by construction). A single trigram is a weak test, but a needle of
//! length `n` brings `n - 2` of them and all must be present, so even a filter a quarter
//! full rejects a 12-byte needle absent from the block with probability near 1.
//!
//! Bytes are folded with `| 0x20` before hashing (ASCII letters to lower case; a few
//! punctuation and control bytes fold together too, which only adds false positives), so one
//! filter serves case-sensitive and case-insensitive needles and the fold needs no branch:
//! building reads eight bytes at a time and hashes six trigrams from each load. For
//! case-insensitive needles the trigrams that hold `k`, `s` or a non-ASCII byte are left out
//! of the test: Unicode folding matches `k` with the Kelvin sign and `s` with the long s,
//! which are not ASCII in the line.
//!
//! Since format 7 a block's filter is built from its templates and runs of digits rather
//! than its lines ([`crate::templated`] splits them so anyway): each of the block's
//! templates is hashed once, however many lines share it, and of the variables only runs
//! of three or more digits, which costs a fraction of hashing every line. A needle is
//! tested the same way: the trigrams of its template and of its runs of digits (see
//! `may_contain_templated`). Filters of earlier parts hold the lines' trigrams and are
//! tested as before.
//!
//! The bitmap is built at [`MAX_BITS`] and folded to the size that leaves it
//! [`TARGET_FILL`] full: the block's distinct trigrams are counted from the bits set, and
//! the size is a multiple of 64 bits, so that bit `b` of the built bitmap becomes bit
//! `b mod size`, which is an OR of word-aligned slices. A reader takes the trigram's bit
//! the same way. Filters of format-5 parts and before were folded in halves only (powers
//! of two, for which the modulo is the same mask), and so were up to half as full: often
//! larger than needed.

use logql::RequiredText;

/// The largest filter, in bits (16 KiB).
pub const MAX_BITS: usize = 1 << 17;
/// The smallest filter, in bits (64 bytes).
const MIN_BITS: usize = 1 << 9;
/// The share of bits a filter has set: the chance that an absent trigram passes.
pub const TARGET_FILL: f64 = 0.30;

const FOLD: u64 = 0x2020_2020_2020_2020;

/// The hash of a folded trigram given as its three bytes little-endian in the low 24 bits.
#[inline]
fn trigram_hash(t: u64) -> u64 {
    // Multiplicative hashing; bits 40.. are well mixed for a 24-bit key.
    (t & 0xff_ffff).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40
}

#[inline]
fn trigram_of(w: &[u8]) -> u64 {
    (u64::from(w[0] | 0x20)) | (u64::from(w[1] | 0x20) << 8) | (u64::from(w[2] | 0x20) << 16)
}

/// Builds a filter from the lines of one block.
pub struct FilterBuilder {
    /// A fixed-size array: every index is provably in bounds, so setting a bit compiles to
    /// no check (building filters is a tenth of ingest CPU).
    words: Box<[u64; MAX_BITS / 64]>,
}

impl Default for FilterBuilder {
    fn default() -> Self {
        FilterBuilder::new()
    }
}

impl FilterBuilder {
    pub fn new() -> FilterBuilder {
        FilterBuilder {
            words: Box::new([0u64; MAX_BITS / 64]),
        }
    }

    pub fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    /// Adds every trigram of `line`.
    #[inline]
    pub fn add_line(&mut self, line: &[u8]) {
        if line.len() < 3 {
            return;
        }
        let mask = (MAX_BITS - 1) as u64;
        let words = &mut *self.words;
        let mut set = |t: u64| {
            let bit = trigram_hash(t) & mask;
            words[(bit >> 6) as usize] |= 1u64 << (bit & 63);
        };
        // Six trigrams (starting at 0..6) from each 8-byte load.
        let mut i = 0;
        while i + 8 <= line.len() {
            let mut x = [0u8; 8];
            x.copy_from_slice(&line[i..i + 8]);
            let x = u64::from_le_bytes(x) | FOLD;
            set(x);
            set(x >> 8);
            set(x >> 16);
            set(x >> 24);
            set(x >> 32);
            set(x >> 40);
            i += 6;
        }
        for w in line[i..].windows(3) {
            set(trigram_of(w));
        }
    }

    /// The folded bitmap, as little-endian bytes; its length gives its size.
    pub fn finish_into(&self, out: &mut Vec<u8>) {
        let set: u32 = self.words.iter().map(|w| w.count_ones()).sum();
        // Distinct trigrams: a few of them share a bit even at the full size.
        let full = MAX_BITS as f64;
        let distinct = -full * (1.0 - f64::from(set) / (full + 1.0)).ln();
        let bits = distinct / -(1.0 - TARGET_FILL).ln();
        let n = ((bits / 64.0).ceil() as usize).clamp(MIN_BITS / 64, MAX_BITS / 64);
        let start = out.len();
        out.resize(start + n * 8, 0);
        let mut words = [0u64; MAX_BITS / 64];
        for chunk in self.words.chunks(n) {
            for (w, &c) in words.iter_mut().zip(chunk) {
                *w |= c;
            }
        }
        for (o, w) in out[start..].chunks_exact_mut(8).zip(&words[..n]) {
            o.copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// Whether a block whose filter is `bitmap` may hold a line satisfying `req`; `templates`
/// when the filter was built over the block's templates and runs of digits, not its lines.
/// Any malformed bitmap answers `true` (the filter is only a hint).
pub fn may_match(bitmap: &[u8], req: &RequiredText, templates: bool) -> bool {
    match req {
        RequiredText::Literal {
            text,
            case_insensitive,
        } => {
            let text = text.as_bytes();
            if templates {
                may_contain_templated(bitmap, text, *case_insensitive)
            } else {
                may_contain(bitmap, text, *case_insensitive)
            }
        }
        RequiredText::All(v) => v.iter().all(|r| may_match(bitmap, r, templates)),
        RequiredText::Any(v) => v.is_empty() || v.iter().any(|r| may_match(bitmap, r, templates)),
    }
}

/// A line that contains `needle` has a template that contains the needle's own template
/// (each run of digits a `0`, as [`crate::templated`] makes them: a run cut by the needle's
/// edge is still part of a run of the line), and each of the needle's runs of digits lies
/// within one of the line's. So the filter must hold the trigrams of both.
fn may_contain_templated(bitmap: &[u8], needle: &[u8], case_insensitive: bool) -> bool {
    let mut template = Vec::with_capacity(needle.len());
    let mut i = 0;
    while i < needle.len() {
        if needle[i].is_ascii_digit() {
            let run = needle[i..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if !may_contain(bitmap, &needle[i..i + run], false) {
                return false;
            }
            template.push(b'0');
            i += run;
        } else {
            template.push(needle[i]);
            i += 1;
        }
    }
    may_contain(bitmap, &template, case_insensitive)
}

fn may_contain(bitmap: &[u8], needle: &[u8], case_insensitive: bool) -> bool {
    let bits = bitmap.len() * 8;
    if needle.len() < 3 || !bits.is_multiple_of(64) || bits == 0 || bits > MAX_BITS {
        return true;
    }
    let mask = (MAX_BITS - 1) as u64;
    for w in needle.windows(3) {
        if case_insensitive
            && w.iter().any(|&c| {
                c >= 0x80 || c.eq_ignore_ascii_case(&b'k') || c.eq_ignore_ascii_case(&b's')
            })
        {
            continue;
        }
        let bit = (trigram_hash(trigram_of(w)) & mask) % bits as u64;
        if bitmap[(bit >> 3) as usize] & (1u8 << (bit & 7)) == 0 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn build(lines: &[&[u8]]) -> Vec<u8> {
        let mut f = FilterBuilder::new();
        for l in lines {
            f.add_line(l);
        }
        let mut out = Vec::new();
        f.finish_into(&mut out);
        out
    }

    /// A filter as format 7 builds it, from the lines' templates and runs of digits.
    fn build_templated(lines: &[&[u8]]) -> Vec<u8> {
        let (data, offsets) = crate::templated::tests::concat(lines);
        let mut enc = crate::templated::TemplateEncoder::default();
        enc.encode(&data, &offsets, &mut Default::default(), &mut Vec::new());
        let mut f = FilterBuilder::new();
        enc.add_to_filter(&data, &mut f);
        let mut out = Vec::new();
        f.finish_into(&mut out);
        out
    }

    fn lit(s: &str, ci: bool) -> RequiredText {
        RequiredText::Literal {
            text: s.to_string(),
            case_insensitive: ci,
        }
    }

    #[test]
    fn rejects_absent_needles_and_keeps_present_ones() {
        let bm = build(&[b"GET /api/users 200 12ms", b"connection reset by peer"]);
        assert!(
            bm.len() <= 1024,
            "a tiny block gets a small filter: {}",
            bm.len()
        );
        assert!(may_match(&bm, &lit("reset by", false), false));
        assert!(may_match(&bm, &lit("RESET", true), false));
        assert!(
            may_match(&bm, &lit("ab", false), false),
            "short needles cannot be tested"
        );
        assert!(!may_match(&bm, &lit("xylophone-7f3a9c", false), false));
        assert!(!may_match(
            &bm,
            &RequiredText::All(vec![lit("reset", false), lit("zebra-quartz", false)]),
            false
        ));
        assert!(may_match(
            &bm,
            &RequiredText::Any(vec![lit("reset", false), lit("zebra-quartz", false)]),
            false
        ));
    }

    #[test]
    fn filters_of_templates_reject_absent_needles_and_keep_present_ones() {
        let bm = build_templated(&[
            b"GET /api/users/4521 200 12ms",
            b"GET /api/users/77 404 3ms",
            b"connection reset by peer 10.1.2.3:5432",
        ]);
        for present in [
            "users/4521 200",
            "sers/45",
            "21 200",
            "5432",
            "543",
            "3:5432",
            "reset by",
            "/api/users/",
        ] {
            assert!(may_match(&bm, &lit(present, false), true), "{present}");
        }
        assert!(may_match(&bm, &lit("RESET BY", true), true));
        for absent in ["xylophone-7f3a9c", "9876", "status=200", "users/4521 2000x"] {
            assert!(!may_match(&bm, &lit(absent, false), true), "{absent}");
        }
    }

    #[test]
    fn filters_are_sized_to_the_target_fill() {
        let lines: Vec<String> = (0..3000)
            .map(|i| format!("user-{i:x} fetched /item/{}", i * 7919 % 10007))
            .collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        let bm = build(&refs);
        assert_eq!(bm.len() % 8, 0);
        assert!(!bm.len().is_power_of_two(), "{}", bm.len());
        let fill = bm.iter().map(|b| b.count_ones()).sum::<u32>() as f64 / (bm.len() * 8) as f64;
        assert!((0.25..=0.31).contains(&fill), "{fill}");
        for l in &lines {
            assert!(may_match(&bm, &lit(l, false), false));
        }
        let absent = (0..200)
            .filter(|i| may_match(&bm, &lit(&format!("zq{i}xv"), false), false))
            .count();
        assert!(absent < 40, "{absent} of 200 absent needles pass");
    }

    #[test]
    fn filters_folded_in_halves_still_work() {
        // Format 5 and before: folded in halves while at most 30% full.
        let lines = [&b"GET /api/users 200 12ms"[..], b"connection reset by peer"];
        let mut f = FilterBuilder::new();
        for l in lines {
            f.add_line(l);
        }
        let mut words = f.words.to_vec();
        while words.len() > 8 {
            let half = words.len() / 2;
            for i in 0..half {
                words[i] |= words[i + half];
            }
            words.truncate(half);
        }
        let bm: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert!(may_match(&bm, &lit("reset by", false), false));
        assert!(may_match(&bm, &lit("/API/users", true), false));
        assert!(!may_match(&bm, &lit("xylophone-7f3a9c", false), false));
    }

    #[test]
    fn case_insensitive_needles_skip_unicode_folded_letters() {
        // "oK" with a Kelvin sign matches (?i)"ok" though the line has no ASCII k.
        let bm = build(&["status: o\u{212A} done".as_bytes()]);
        assert!(may_match(&bm, &lit("s: ok", true), false));
    }

    proptest! {
        // No false negatives: every substring of every line passes, in both modes, in
        // filters of lines and of templates.
        #[test]
        fn never_rejects_a_present_substring(
            lines in proptest::collection::vec("[a-zA-Z0-9 _.:/\u{e9}\u{212a}-]{0,60}|[a-c0-9 ]{0,30}", 1..40),
            pick in any::<proptest::sample::Index>(),
            from in any::<proptest::sample::Index>(),
            len in 0usize..20,
            ci in any::<bool>(),
        ) {
            let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            for (bm, templates) in [(build(&refs), false), (build_templated(&refs), true)] {
                let line = refs[pick.index(refs.len())];
                if !line.is_empty() {
                    let s = from.index(line.len());
                    let e = (s + len).min(line.len());
                    let needle = String::from_utf8_lossy(&line[s..e]).into_owned();
                    if line.windows(needle.len().max(1)).any(|w| w == needle.as_bytes()) || needle.is_empty() {
                        prop_assert!(may_match(&bm, &lit(&needle, ci), templates));
                        prop_assert!(may_match(&bm, &lit(&needle.to_uppercase(), true), templates) || needle.to_uppercase().len() != needle.len());
                    }
                }
            }
        }
    }
}
