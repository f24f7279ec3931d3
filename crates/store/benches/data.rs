//! The benchmark data set: loghub lines replayed with fresh timestamps and varied numbers,
//! spread over streams, as the targets are measured (2M lines, 100 streams).

use protocol::Labels;

/// A small deterministic generator (xorshift64*), so runs compare.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// The loghub sample files, one vector of lines per system.
pub fn loghub() -> Vec<Vec<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/loghub");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect()
        })
        .collect()
}

/// `line` with its numbers varied: the last three digits of every run of digits are
/// random (ids and counters drift, their magnitude stays), or with
/// `KIROKU_BENCH_VARY=all` every digit (the harshest case: random digits do not compress).
pub fn vary(line: &str, rng: &mut Rng, out: &mut String) {
    static ALL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let all = *ALL.get_or_init(|| std::env::var("KIROKU_BENCH_VARY").is_ok_and(|v| v == "all"));
    out.clear();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let keep = if all {
                0
            } else {
                (i - start).saturating_sub(3)
            };
            out.push_str(&line[start..start + keep]);
            for _ in start + keep..i {
                out.push((b'0' + (rng.next_u64() % 10) as u8) as char);
            }
        } else {
            let start = i;
            while i < b.len() && !b[i].is_ascii_digit() {
                i += 1;
            }
            out.push_str(&line[start..i]);
        }
    }
}

pub struct Stream {
    pub labels: Labels,
    pub entries: Vec<(i64, String)>,
}

/// `streams` streams holding `lines` lines in all, timestamps from `start` about every
/// `step` nanoseconds per stream (with nanosecond jitter), each stream replaying one loghub
/// system.
pub fn generate(lines: usize, streams: usize, start: i64, step: i64) -> Vec<Stream> {
    let systems = loghub();
    let mut rng = Rng::new(42);
    let per = lines / streams;
    let mut buf = String::new();
    (0..streams)
        .map(|s| {
            let sys = &systems[s % systems.len()];
            let labels = Labels::from_pairs([
                ("app", format!("app-{}", s % 16)),
                ("namespace", format!("ns-{}", s % 4)),
                ("pod", format!("pod-{s}")),
                ("service_name", format!("app-{}", s % 16)),
            ]);
            let mut ts = start + (rng.next_u64() % step as u64) as i64;
            let entries = (0..per)
                .map(|i| {
                    vary(&sys[(i + s * 7) % sys.len()], &mut rng, &mut buf);
                    ts += step / 2 + (rng.next_u64() % step as u64) as i64;
                    (ts, buf.clone())
                })
                .collect();
            Stream { labels, entries }
        })
        .collect()
}
