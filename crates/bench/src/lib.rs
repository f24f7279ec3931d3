//! `kiroku bench ingest` and `kiroku bench query`: the server measured from outside, as a
//! user would run it. A data set made from the loghub samples ([`dataset`]) is pushed
//! through the real HTTP push path of a `kiroku server` child process ([`server`],
//! [`push`]), then queried over HTTP ([`queries`]); the server's CPU time and memory come
//! from `/proc/<pid>`, its disk use from its data directory. [`report`] prints the figures
//! beside the targets and Loki's and VictoriaLogs' figures on the same kind of data.
//!
//! What it does not do: measure parts in isolation (the store and the LogQL crate have
//! criterion benches for that) or run Loki itself.
//!
//! Start reading from [`run_ingest`] and [`run_query`].

pub mod dataset;
mod http;
pub mod push;
pub mod queries;
pub mod report;
pub mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use dataset::DataSet;
use report::{Ingest, Report};
use server::Server;

/// Options shared by both benchmarks.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Lines in the data set, spread over 100 streams.
    #[arg(long, default_value_t = 2_000_000)]
    pub lines: usize,
    /// Seed of the data set's generator: the same seed gives the same lines.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Timed runs of each query, after one untimed warm-up run (the report gives median,
    /// min and max).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Run only these queries (repeat the flag; names as in the report).
    #[arg(long = "query", value_name = "NAME")]
    pub only: Vec<String>,
    /// Directory of the loghub samples (default: testdata/loghub or ../shared/data/loghub).
    #[arg(long)]
    pub loghub: Option<PathBuf>,
    /// The kiroku binary to run as the server (default: this one; build it with --release).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `kiroku bench ingest`.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub common: Common,
    /// Concurrent pushing clients, one request in flight each.
    #[arg(long, default_value_t = 4)]
    pub clients: usize,
    /// Bytes of lines per push request, as Promtail's `batchsize`.
    #[arg(long, default_value_t = 1 << 20)]
    pub batch_bytes: usize,
    /// Keep the server's data directory here (it must not exist) instead of a temporary
    /// one; `kiroku bench query --data-dir` can then reuse it.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// The server's `--fsync`: sync the write-ahead log before each 204, as in production.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub fsync: bool,
}

/// `kiroku bench query`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: Common,
    /// The data directory to query: reused when it holds this data set (same --lines and
    /// --seed), else made anew by an ingest (only in a missing or empty directory, or one
    /// an earlier bench made). Default: a directory under the system's temporary
    /// directory named after the data set.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// The data set's time span: the hour before the run.
const SPAN: Duration = Duration::from_secs(3600);
/// Written into a data directory the bench made, to recognise it later.
const MANIFEST: &str = "bench-dataset.json";

/// Ingest (and queries) on a fresh server: the whole benchmark.
pub fn run_ingest(args: IngestArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let bin = server_bin(c)?;
    let ds = plan_dataset(c, now_ns())?;
    let (dir, _tmp) = match &args.keep {
        Some(d) => {
            anyhow::ensure!(!d.exists(), "--keep {} already exists", d.display());
            (d.clone(), None)
        }
        None => {
            let t = tempdir()?;
            (t.path().join("data"), Some(t))
        }
    };
    let (ingest, srv) = ingest(&bin, &ds, &dir, &args, c.json)?;
    if args.keep.is_some() {
        write_manifest(&dir, &ds)?;
    }
    let timings = run_queries(&srv, &ds, c)?;
    let end = srv.stats()?;
    let srv_flags = srv.flags.clone();
    srv.stop(Duration::from_secs(30));
    let report = Report {
        ingest: Some(ingest),
        queries: timings,
        peak_rss_end: end.peak_rss,
        server_flags: srv_flags,
        data_dir: args.keep.clone(),
        reopened: None,
    };
    report.print(c.json);
    Ok(())
}

/// Queries only, over a data directory made once and reused.
pub fn run_query(args: QueryArgs) -> anyhow::Result<()> {
    let c = &args.common;
    let bin = server_bin(c)?;
    let dir = args.data_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kiroku-bench-{}-{}", c.lines, c.seed))
    });
    let (ds, srv, ingest, reopened) = match read_manifest(&dir) {
        Some(m) if m.lines == c.lines && m.seed == c.seed => {
            let ds = plan_dataset(c, m.end)?;
            if !c.json {
                eprintln!("reusing the data set in {}", dir.display());
            }
            let srv = Server::start(&bin, &dir, true)?;
            std::thread::sleep(Duration::from_secs(1));
            let reopened = report::Reopened {
                ready: srv.ready_after,
                idle_rss: srv.stats()?.rss,
            };
            (ds, srv, None, Some(reopened))
        }
        found => {
            if dir.exists() {
                let empty = std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                    .next()
                    .is_none();
                // Only ever delete what a bench made.
                anyhow::ensure!(
                    empty || found.is_some(),
                    "{} holds something else than a bench data set: give --data-dir a new or empty directory",
                    dir.display()
                );
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot empty {}", dir.display()))?;
            }
            let ds = plan_dataset(c, now_ns())?;
            let opts = IngestArgs {
                common: c.clone(),
                clients: 4,
                batch_bytes: 1 << 20,
                keep: None,
                fsync: true,
            };
            let (ing, srv) = ingest(&bin, &ds, &dir, &opts, c.json)?;
            write_manifest(&dir, &ds)?;
            (ds, srv, Some(ing), None)
        }
    };
    let timings = run_queries(&srv, &ds, c)?;
    let end = srv.stats()?;
    let server_flags = srv.flags.clone();
    srv.stop(Duration::from_secs(30));
    Report {
        ingest,
        queries: timings,
        peak_rss_end: end.peak_rss,
        server_flags,
        data_dir: Some(dir),
        reopened,
    }
    .print(c.json);
    Ok(())
}

/// Starts a server on the empty `dir`, pushes the data set, flushes; the server is left
/// running for the queries.
fn ingest(
    bin: &Path,
    ds: &DataSet,
    dir: &Path,
    opts: &IngestArgs,
    quiet: bool,
) -> anyhow::Result<(Ingest, Server)> {
    let say = |s: String| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    say(format!(
        "generating {} lines in {} streams...",
        ds.lines,
        ds.streams.len()
    ));
    let began = std::time::Instant::now();
    let plan = push::plan(ds, opts.clients, opts.batch_bytes);
    anyhow::ensure!(
        plan.lines == ds.lines,
        "made {} lines of the {} planned: a generator thread failed",
        plan.lines,
        ds.lines
    );
    say(format!(
        "  {} requests, {:.0} MiB of lines, {:.0} MiB of snappy protobuf, made in {:.1} s",
        plan.clients.iter().map(Vec::len).sum::<usize>(),
        plan.raw_bytes as f64 / 1048576.0,
        plan.body_bytes as f64 / 1048576.0,
        began.elapsed().as_secs_f64()
    ));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let srv = Server::start(bin, dir, opts.fsync)?;
    // Idle: what a started server holds before any data.
    std::thread::sleep(Duration::from_secs(1));
    let idle = srv.stats()?;
    say(format!(
        "server ready in {:.1} ms; pushing with {} clients...",
        srv.ready_after.as_secs_f64() * 1000.0,
        plan.clients.len()
    ));
    let before = srv.stats()?;
    let pushed = push::send(&srv.url("/loki/api/v1/push"), &plan)?;
    let after_push = srv.stats()?;
    let flush_began = std::time::Instant::now();
    let resp = http::agent()
        .post(&srv.url("/flush"))
        .send_empty()
        .context("POST /flush")?;
    let status = resp.status().as_u16();
    anyhow::ensure!(
        status == 204,
        "/flush answered {status}: {}",
        http::text(resp)?
    );
    let flush_time = flush_began.elapsed();
    let after = srv.stats()?;
    let disk = server::disk_usage(dir);
    Ok((
        Ingest {
            lines: plan.lines,
            streams: ds.streams.len(),
            raw_bytes: plan.raw_bytes,
            body_bytes: plan.body_bytes,
            requests: pushed.requests,
            retries: pushed.retries,
            clients: plan.clients.len(),
            ready: srv.ready_after,
            idle_rss: idle.rss,
            push_time: pushed.elapsed,
            flush_time,
            cpu_push_s: after_push.cpu_s - before.cpu_s,
            cpu_s: after.cpu_s - before.cpu_s,
            peak_rss: after.peak_rss,
            disk_bytes: disk,
        },
        srv,
    ))
}

fn run_queries(srv: &Server, ds: &DataSet, c: &Common) -> anyhow::Result<Vec<queries::Timing>> {
    let base = format!("http://{}", srv.addr);
    let mut out = Vec::new();
    for q in queries::all(ds) {
        if !c.only.is_empty() && !c.only.iter().any(|n| n == q.name) {
            continue;
        }
        if !c.json {
            eprintln!("query {}: {}", q.name, q.logql);
        }
        out.push(queries::time(&base, ds, &q, c.runs)?);
    }
    Ok(out)
}

fn plan_dataset(c: &Common, end: i64) -> anyhow::Result<DataSet> {
    let loghub = match &c.loghub {
        Some(d) => d.clone(),
        None => find_loghub().context(
            "cannot find the loghub samples: run from the repository root or pass --loghub",
        )?,
    };
    Ok(DataSet::new(
        &loghub,
        c.lines,
        c.seed,
        end,
        SPAN.as_nanos() as i64,
    )?)
}

fn find_loghub() -> Option<PathBuf> {
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/loghub");
    [
        PathBuf::from("testdata/loghub"),
        PathBuf::from("../shared/data/loghub"),
        compiled,
    ]
    .into_iter()
    .find(|p| p.join("HDFS_2k.log").is_file())
}

fn server_bin(c: &Common) -> anyhow::Result<PathBuf> {
    let bin = match &c.server_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe().context("cannot find the kiroku binary")?,
    };
    if bin.components().any(|p| p.as_os_str() == "debug") && !c.json {
        eprintln!(
            "warning: {} looks like a debug build; build with --release for real figures",
            bin.display()
        );
    }
    Ok(bin)
}

fn tempdir() -> anyhow::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("kiroku-bench-")
        .tempdir()
        .context("cannot create a temporary directory")
}

fn now_ns() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    // Whole seconds, a minute back: no entry is "in the future" for the server.
    (now / 1_000_000_000 - 60) * 1_000_000_000
}

/// What a data directory made by the bench holds: enough to make the same data set again
/// (its lines are needed to know the needle's place and the pods' names).
struct Manifest {
    lines: usize,
    seed: u64,
    end: i64,
}

/// Written once the data set is pushed and flushed, so a directory with a manifest is
/// complete. The server keeps everything (`--retention 0`), so it never goes stale.
fn write_manifest(dir: &Path, ds: &DataSet) -> anyhow::Result<()> {
    let m = serde_json::json!({ "lines": ds.lines, "seed": ds.seed, "end": ds.end });
    std::fs::write(dir.join(MANIFEST), m.to_string())
        .with_context(|| format!("cannot write {}", dir.join(MANIFEST).display()))
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(Manifest {
        lines: usize::try_from(v.get("lines")?.as_u64()?).ok()?,
        seed: v.get("seed")?.as_u64()?,
        end: v.get("end")?.as_i64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_set_ends_a_minute_before_now_on_a_whole_second() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let end = now_ns();
        assert_eq!(end % 1_000_000_000, 0);
        assert!(end <= now - 59_000_000_000 && end > now - 62_000_000_000);
    }

    #[test]
    fn a_manifest_names_the_data_set_it_describes() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_manifest(dir.path()).is_none());
        let ds = DataSet::new(
            &find_loghub().unwrap(),
            1000,
            5,
            1_763_700_000_000_000_000,
            SPAN.as_nanos() as i64,
        )
        .unwrap();
        write_manifest(dir.path(), &ds).unwrap();
        let m = read_manifest(dir.path()).unwrap();
        assert_eq!(
            (m.lines, m.seed, m.end),
            (1000, 5, 1_763_700_000_000_000_000)
        );
    }
}
