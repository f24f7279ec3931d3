//! Colours for terminals: one per pod (or stream), picked by a stable hash so a pod keeps
//! its colour across runs, as `stern` does. Off when stdout is not a terminal or
//! `NO_COLOR` is set (<https://no-color.org>), unless `--color always`.

use std::io::IsTerminal;

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when stdout is a terminal and NO_COLOR is not set
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    pub fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
    }
}

pub const RESET: &str = "\x1b[0m";
pub const DIM: &str = "\x1b[2m";
pub const BOLD_RED: &str = "\x1b[1;31m";

/// Bright and normal forms of six hues; black and white are left out so every colour reads
/// on dark and light backgrounds.
const BRIGHT: [&str; 6] = [
    "\x1b[96m", "\x1b[92m", "\x1b[95m", "\x1b[93m", "\x1b[94m", "\x1b[91m",
];
const NORMAL: [&str; 6] = [
    "\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[33m", "\x1b[34m", "\x1b[31m",
];

/// The colour pair of `key`: bright for the pod, the same hue plain for its container.
pub fn pick(key: &str) -> (&'static str, &'static str) {
    let i = (fnv1a(key.as_bytes()) % BRIGHT.len() as u64) as usize;
    (BRIGHT[i], NORMAL[i])
}

/// FNV-1a, 64-bit: fixed by its definition, so colours do not change between versions
/// the way `DefaultHasher`'s output may.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stable_and_spread() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(pick("shop/web-1"), pick("shop/web-1"));
        let used: std::collections::HashSet<_> =
            (0..60).map(|i| pick(&format!("web-{i}")).0).collect();
        assert_eq!(used.len(), BRIGHT.len(), "sixty pods use every colour");
    }

    #[test]
    fn never_and_always_ignore_the_terminal() {
        assert!(ColorChoice::Always.enabled());
        assert!(!ColorChoice::Never.enabled());
    }
}
