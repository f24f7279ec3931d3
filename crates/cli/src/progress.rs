//! A spinner with the elapsed time on stderr while a request is in flight, so a long query
//! does not look hung. Drawn only when stderr is a terminal, and only after a short delay
//! so quick queries print nothing extra; erased before any output is written, so it never
//! mixes with lines on a shared terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const DELAY: Duration = Duration::from_millis(400);
const TICK: Duration = Duration::from_millis(100);
const CLEAR: &str = "\r\x1b[2K";

#[derive(Default)]
struct State {
    busy: bool,
    drawn: bool,
    stop: bool,
    pages: usize,
    lines: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    started: Instant,
    what: String,
}

/// The spinner of one command. Disabled (and free) when stderr is not a terminal.
pub struct Progress {
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
}

/// A request in flight; the spinner shows while one is held.
pub struct Busy<'a>(Option<&'a Shared>);

impl Progress {
    /// `what` names the work (`querying http://127.0.0.1:3100`).
    pub fn new(what: &str, quiet: bool) -> Progress {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress::disabled();
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            started: Instant::now(),
            what: what.to_string(),
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || draw_loop(&s))
            .ok();
        Progress {
            shared: thread.is_some().then_some(shared),
            thread,
        }
    }

    pub fn disabled() -> Progress {
        Progress {
            shared: None,
            thread: None,
        }
    }

    /// Marks a request in flight until the returned guard drops.
    pub fn busy(&self) -> Busy<'_> {
        if let Some(s) = &self.shared {
            s.state.lock().unwrap_or_else(PoisonError::into_inner).busy = true;
        }
        Busy(self.shared.as_deref())
    }

    /// Counts a page and its lines, shown next to the elapsed time.
    pub fn add_page(&self, lines: usize) {
        if let Some(s) = &self.shared {
            let mut st = s.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.pages += 1;
            st.lines += lines;
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            let mut st = s.state.lock().unwrap_or_else(PoisonError::into_inner);
            st.busy = false;
            if st.drawn {
                eprint!("{CLEAR}");
                let _ = std::io::stderr().flush();
                st.drawn = false;
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(s) = &self.shared {
            s.state.lock().unwrap_or_else(PoisonError::into_inner).stop = true;
            s.wake.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn draw_loop(s: &Shared) {
    let mut tick = 0usize;
    let mut st = s.state.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if st.stop {
            if st.drawn {
                eprint!("{CLEAR}");
            }
            return;
        }
        let elapsed = s.started.elapsed();
        if st.busy && elapsed >= DELAY {
            let f = frame(tick, &s.what, elapsed, st.pages, st.lines);
            eprint!("{CLEAR}{f}");
            let _ = std::io::stderr().flush();
            st.drawn = true;
            tick += 1;
        }
        st = s
            .wake
            .wait_timeout(st, TICK)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

/// One frame: `⠹ querying http://… 2.3s · 3 pages · 12,000 lines`.
pub fn frame(tick: usize, what: &str, elapsed: Duration, pages: usize, lines: usize) -> String {
    let mut s = format!(
        "{} {what} {:.1}s",
        FRAMES[tick % FRAMES.len()],
        elapsed.as_secs_f64()
    );
    if pages > 0 {
        let p = if pages == 1 { "page" } else { "pages" };
        s.push_str(&format!(" · {pages} {p} · {} lines", thousands(lines)));
    }
    s
}

/// `12000` → `12,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_show_time_and_progress() {
        assert_eq!(
            frame(0, "querying http://x", Duration::from_millis(2345), 0, 0),
            "⠋ querying http://x 2.3s"
        );
        assert_eq!(
            frame(11, "querying", Duration::from_secs(3), 3, 12_000),
            "⠙ querying 3.0s · 3 pages · 12,000 lines"
        );
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn disabled_progress_does_nothing() {
        let p = Progress::disabled();
        let b = p.busy();
        p.add_page(10);
        drop(b);
    }
}
