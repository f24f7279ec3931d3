//! A `kiroku agent` child process for end-to-end tests, its state under one directory.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::process::{Process, free_port, http_get, metric, wait_for};

/// A running `kiroku agent`: reads `<dir>/pods`, keeps its positions and buffer under
/// `<dir>/state`, serves `/metrics` and `/ready` on `listen`, and sends a batch 100 ms
/// after its first line.
pub struct TestAgent {
    pub proc: Process,
    pub listen: String,
}

impl TestAgent {
    /// Starts `bin agent --url url …` with `extra` arguments after the common ones; does
    /// not wait for it.
    pub fn spawn(bin: &Path, dir: &Path, url: &str, extra: &[&str]) -> TestAgent {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args: Vec<String> = [
            "agent",
            "--url",
            url,
            "--pods-dir",
            &dir.join("pods").to_string_lossy(),
            "--positions",
            &dir.join("state/positions.json").to_string_lossy(),
            "--buffer-dir",
            &dir.join("state/buffer").to_string_lossy(),
            "--listen",
            &listen,
            "--batch-wait",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        let proc = Process::start(
            bin,
            &args,
            &[("HOME", dir.to_string_lossy().into_owned())],
            &dir.join(format!("agent-{port}.log")),
        )
        .expect("start kiroku agent");
        TestAgent { proc, listen }
    }

    /// [`TestAgent::spawn`], then waits until `/ready` answers 200; panics with the
    /// agent's output when it does not within `timeout`.
    pub fn start(
        bin: &Path,
        dir: &Path,
        url: &str,
        extra: &[&str],
        timeout: Duration,
    ) -> TestAgent {
        let a = TestAgent::spawn(bin, dir, url, extra);
        let ready = wait_for(timeout, || {
            http_get(&format!("http://{}/ready", a.listen))
                .ok()
                .filter(|(s, _)| *s == 200)
        });
        assert!(
            ready.is_some(),
            "agent never became ready:\n{}",
            a.proc.output()
        );
        a
    }

    /// A metric's value from `/metrics`; -1 when it cannot be read.
    pub fn metric(&self, name: &str) -> f64 {
        http_get(&format!("http://{}/metrics", self.listen))
            .ok()
            .and_then(|(_, body)| metric(&body, name))
            .unwrap_or(-1.0)
    }

    /// Stops the agent with SIGTERM and asserts a clean exit within `timeout`.
    pub fn stop(mut self, timeout: Duration) {
        assert!(
            self.proc.terminate(timeout).is_some_and(|s| s.success()),
            "{}",
            self.proc.output()
        );
    }
}

/// Appends `text` to the file at `path`, creating it and its directories.
pub fn append(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create the file's directory");
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open the file to append");
    f.write_all(text.as_bytes()).expect("append to the file");
}
