//! The server under test: `kiroku server` as a child process on a free port, its start-up
//! time, and its CPU time and memory from `/proc/<pid>`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// A running `kiroku server`; dropping it kills the process.
pub struct Server {
    child: Child,
    pub addr: String,
    /// From spawning the process to the first `200` from `/ready`.
    pub ready_after: Duration,
    log: PathBuf,
    /// The flags it was started with beyond `--listen`, `--data-dir` and logging.
    pub flags: Vec<String>,
}

/// The server's flags that shape the figures.
pub fn server_flags(fsync: bool) -> Vec<String> {
    [
        "--retention",
        "0",
        "--retention-max-disk",
        "0%",
        "--fsync",
        if fsync { "true" } else { "false" },
    ]
    .map(String::from)
    .to_vec()
}

/// CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcStats {
    /// User + system CPU time, seconds.
    pub cpu_s: f64,
    /// Resident set size now, bytes.
    pub rss: u64,
    /// Peak resident set size since the start (`VmHWM`), bytes.
    pub peak_rss: u64,
}

impl Server {
    /// Starts `bin server` on `data_dir` and waits until it is ready. It keeps everything:
    /// `--retention 0` (the data set's timestamps stay acceptable when `kiroku bench query`
    /// reuses it days later) and `--retention-max-disk 0%` (the default keeps 10% of the
    /// volume free and would delete data on a full disk, skewing bytes per line).
    pub fn start(bin: &Path, data_dir: &Path, fsync: bool) -> anyhow::Result<Server> {
        let flags = server_flags(fsync);
        let log = data_dir.with_extension("server.log");
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create the server log {}", log.display()))?;
        let began = Instant::now();
        let mut child = Command::new(bin)
            .arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log-format")
            .arg("json")
            .arg("--log-level")
            .arg("info")
            .args(&flags)
            .env_remove("KIROKU_CONFIG")
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stderr = child.stderr.take().context("the server's stderr")?;
        let (tx, rx) = mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::OpenOptions::new()
                .append(true)
                .open(&log_path)
                .ok();
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent
                    && line.contains("kiroku server ready")
                    && let Some(addr) = json_str(&line, "addr")
                {
                    let _ = tx.send(addr);
                    sent = true;
                }
                if let Some(f) = out.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(60)).with_context(|| {
            format!(
                "the server did not start; its log: {}\n{}",
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })?;
        let url = format!("http://{addr}/ready");
        let agent = crate::http::agent();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = agent.get(&url).call()
                && r.status() == 200
            {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not answer /ready within 60 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(Server {
            ready_after: began.elapsed(),
            child,
            addr,
            log,
            flags,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stats(&self) -> anyhow::Result<ProcStats> {
        proc_stats(self.pid())
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Stops the server with SIGTERM (it flushes and exits), waiting at most `wait`.
    pub fn stop(mut self, wait: Duration) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process's CPU time and memory now.
pub fn proc_stats(pid: u32) -> anyhow::Result<ProcStats> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the name.
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let cpu_s = (ticks(11) + ticks(12)) as f64 / hz;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(ProcStats {
        cpu_s,
        rss: kib("VmRSS:") * 1024,
        peak_rss: kib("VmHWM:") * 1024,
    })
}

/// Bytes of all files under `dir` (their lengths).
pub fn disk_usage(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// A string field of a JSON log line.
fn json_str(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)
        .or_else(|| v.get("fields").and_then(|f| f.get(key)))
        .and_then(|a| a.as_str())
        .map(str::to_string)
}
