//! `kiroku bench agent`: the agent's cost while it follows many files. Writes CRI lines
//! into `--files` pod log files at `--rate` lines/s in total for `--duration`, runs the
//! real `kiroku agent` as a child process pushing to an in-bench Loki push receiver (real
//! HTTP, snappy protobuf decoded and counted), samples the child's CPU time and RSS from
//! `/proc`, and prints lines/s delivered, cores used, and peak and steady RSS.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::testkit::{Process, PushReceiver, TempDir, cri_line, free_port, http_get, wait_for};

/// `kiroku bench agent` options.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Number of pod log files written to at once.
    #[arg(long, default_value_t = 100)]
    pub files: usize,
    /// Lines per second written in total.
    #[arg(long, default_value_t = 5000)]
    pub rate: u64,
    /// How long lines are written.
    #[arg(long, default_value = "30s", value_parser = crate::args::parse_duration)]
    pub duration: Duration,
    /// Bytes of each line's message.
    #[arg(long, default_value_t = 120)]
    pub line_bytes: usize,
    /// The kiroku binary to run as the agent (default: this one).
    #[arg(long)]
    pub agent_bin: Option<PathBuf>,
}

/// One `/proc` sample of the agent.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ticks: u64,
    rss_kib: u64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.files > 0 && args.rate > 0,
        "--files and --rate must be above zero"
    );
    let bin = match args.agent_bin.clone() {
        Some(b) => b,
        None => std::env::current_exe().context("cannot find the kiroku binary")?,
    };
    let dir = TempDir::new("bench-agent");
    let recv = PushReceiver::start().context("cannot start the push receiver")?;
    recv.count_only();
    let mut files = Vec::with_capacity(args.files);
    for i in 0..args.files {
        let d = dir
            .path()
            .join(format!("pods/bench_pod-{i}_uid-{i:04}/app"));
        std::fs::create_dir_all(&d)?;
        files.push(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(d.join("0.log"))?,
        );
    }
    let listen = format!("127.0.0.1:{}", free_port());
    let agent_args: Vec<String> = vec![
        "agent".into(),
        "--url".into(),
        recv.url(),
        "--pods-dir".into(),
        dir.path().join("pods").to_string_lossy().into_owned(),
        "--positions".into(),
        dir.path()
            .join("state/positions.json")
            .to_string_lossy()
            .into_owned(),
        "--buffer-dir".into(),
        dir.path()
            .join("state/buffer")
            .to_string_lossy()
            .into_owned(),
        "--listen".into(),
        listen.clone(),
        "--log-level".into(),
        "warn".into(),
    ];
    let mut agent = Process::start(
        &bin,
        &agent_args,
        &[("HOME", dir.path().to_string_lossy().into_owned())],
        &dir.path().join("agent.log"),
    )?;
    wait_for(Duration::from_secs(30), || {
        http_get(&format!("http://{listen}/ready"))
            .ok()
            .filter(|(s, _)| *s == 200)
    })
    .with_context(|| format!("the agent did not become ready:\n{}", agent.output()))?;
    let pid = agent.pid();
    let tick_hz = clock_ticks_per_second();

    println!(
        "kiroku bench agent: {} files, {} lines/s in total, {} bytes per line, {:?}; sink: in-bench push receiver",
        args.files, args.rate, args.line_bytes, args.duration
    );
    let msg_pad: String = "x".repeat(args.line_bytes.saturating_sub(24));
    let start = Instant::now();
    let mut samples = vec![sample(pid)?];
    let mut written: u64 = 0;
    let mut next_sample = start + Duration::from_secs(1);
    let mut line = String::with_capacity(args.line_bytes + 64);
    // Write in 10 ms slices so the load is even, not bursts once a second.
    while start.elapsed() < args.duration {
        let due = (start.elapsed().as_secs_f64() * args.rate as f64) as u64;
        while written < due {
            let f = &mut files[(written % args.files as u64) as usize];
            line.clear();
            line.push_str(&cri_line(
                crate::files::tail::now_nanos(),
                "stdout",
                false,
                &format!("seq={written:010} {msg_pad}"),
            ));
            f.write_all(line.as_bytes())?;
            written += 1;
        }
        if Instant::now() >= next_sample {
            samples.push(sample(pid)?);
            next_sample += Duration::from_secs(1);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let write_end = Instant::now();
    let delivered_at_end = recv.count();
    let caught_up = wait_for(Duration::from_secs(30), || {
        (recv.count() >= written).then(Instant::now)
    });
    let last = sample(pid)?;
    samples.push(last);
    let peak_kib = peak_rss_kib(pid).unwrap_or(0);
    agent.terminate(Duration::from_secs(10));

    let secs = write_end.duration_since(start).as_secs_f64();
    // CPU and steady RSS over the writing period after a 2 s warm-up.
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at >= start + Duration::from_secs(2) && s.at <= write_end)
        .collect();
    let (cores, steady_rss) = match (steady.first(), steady.last()) {
        (Some(a), Some(b)) if b.at > a.at => {
            let cpu = (b.cpu_ticks - a.cpu_ticks) as f64 / tick_hz as f64;
            let rss = steady.iter().map(|s| s.rss_kib).sum::<u64>() / steady.len() as u64;
            (cpu / b.at.duration_since(a.at).as_secs_f64(), rss)
        }
        _ => (0.0, last.rss_kib),
    };
    let delivered = recv.count();
    println!(
        "lines written:       {written} ({:.0} lines/s)",
        written as f64 / secs
    );
    println!(
        "lines delivered:     {delivered} ({:.0} lines/s while writing; {} when writing stopped)",
        delivered_at_end as f64 / secs,
        delivered_at_end
    );
    match caught_up {
        Some(t) => println!(
            "caught up:           {:.2} s after writing stopped",
            t.duration_since(write_end).as_secs_f64()
        ),
        None => println!(
            "caught up:           NO: {} lines missing after 30 s",
            written.saturating_sub(delivered)
        ),
    }
    println!("agent CPU:           {cores:.3} cores (target < 0.1)");
    println!(
        "agent RSS:           peak {:.1} MiB, steady {:.1} MiB (target < 32 MiB)",
        peak_kib as f64 / 1024.0,
        steady_rss as f64 / 1024.0
    );
    println!("push requests:       {}", recv.requests());
    anyhow::ensure!(
        delivered >= written,
        "the agent lost lines: {delivered} of {written} delivered"
    );
    Ok(())
}

fn sample(pid: u32) -> anyhow::Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat: did the agent exit?"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: indexes 11 and 12 after the `)`.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok(Sample {
        at: Instant::now(),
        cpu_ticks: ticks(11) + ticks(12),
        rss_kib: status_kib(pid, "VmRSS:").unwrap_or(0),
    })
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}
