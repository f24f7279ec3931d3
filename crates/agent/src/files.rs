//! The node's log files: finds pod log files under the pods directory (and `--files`
//! globs) every poll, follows each with a [`tail::Tailer`], all on one thread. Blocking
//! file I/O stays off the async runtime; when the batcher's channel is full (the disk
//! buffer is full), this thread waits and the files wait on disk.

pub mod tail;

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use protocol::Labels;
use tokio::sync::mpsc;

use crate::entry::{Entry, Stream};
use crate::metrics::{ErrorKind, Metrics};
use crate::pods::{ContainerRef, PodCache};
use crate::positions::Positions;
use tail::{Ctx, Poll, Source, Tailer};

/// How long a pod's files wait for its metadata before they are read without it.
const METADATA_WAIT: Duration = Duration::from_secs(3);
/// How long all pod files wait at start for the API's first list of pods.
const FIRST_SYNC_WAIT: Duration = Duration::from_secs(10);
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// `None` when not tailing pod logs (`--mode api`).
    pub pods_dir: Option<PathBuf>,
    pub globs: Vec<String>,
    pub static_labels: Vec<(String, String)>,
    pub node: Option<String>,
    pub max_line: usize,
    pub poll: Duration,
}

pub struct FileSource {
    cfg: FilesConfig,
    cache: Arc<PodCache>,
    metrics: Arc<Metrics>,
    tailers: Vec<Tailer>,
    open: HashSet<(u64, u64)>,
    /// Positions from the last run, used for the files present at start only (`present`):
    /// a file created later is new and read from its start, even if it reuses an inode.
    start_positions: Option<Positions>,
    present: Option<HashSet<(u64, u64)>>,
    warned: HashSet<PathBuf>,
    first_seen: HashMap<PathBuf, Instant>,
    started: Instant,
}

impl FileSource {
    pub fn new(
        cfg: FilesConfig,
        positions: Positions,
        cache: Arc<PodCache>,
        metrics: Arc<Metrics>,
    ) -> FileSource {
        if let Some(d) = &cfg.pods_dir
            && !d.is_dir()
        {
            tracing::warn!(pods_dir = %d.display(),
                "pods directory does not exist (yet); pod logs are collected once it does");
        }
        FileSource {
            cfg,
            cache,
            metrics,
            tailers: Vec::new(),
            open: HashSet::new(),
            start_positions: Some(positions),
            present: None,
            warned: HashSet::new(),
            first_seen: HashMap::new(),
            started: Instant::now(),
        }
    }

    /// Follows files until `stop` is set or the batcher is gone.
    pub fn run(mut self, tx: mpsc::Sender<Entry>, stop: Arc<AtomicBool>) {
        let mut chunk = vec![0u8; CHUNK];
        let node = self.cfg.node.clone();
        while !stop.load(Ordering::Relaxed) {
            let round = Instant::now();
            self.scan();
            let mut more = false;
            let mut closed = Vec::new();
            let mut ctx = Ctx {
                tx: &tx,
                metrics: &self.metrics,
                cache: &self.cache,
                node: node.as_deref(),
                max_line: self.cfg.max_line,
                chunk: &mut chunk,
            };
            for (i, t) in self.tailers.iter_mut().enumerate() {
                t.check_path();
                match t.poll(&mut ctx) {
                    Ok(Poll::Idle) => {}
                    Ok(Poll::More) => more = true,
                    Ok(Poll::Closed) => closed.push(i),
                    Err(tail::Stopped) => return,
                }
            }
            for i in closed.into_iter().rev() {
                let t = self.tailers.remove(i);
                self.open.remove(&t.id);
                tracing::debug!(path = %t.path.display(), "closed log file");
            }
            self.metrics.files_open.set(self.tailers.len() as u64);
            if !more {
                let spent = round.elapsed();
                if spent < self.cfg.poll {
                    std::thread::sleep(self.cfg.poll - spent);
                }
            }
        }
    }

    fn scan(&mut self) {
        let mut found: Vec<(PathBuf, Option<ContainerRef>, bool)> = Vec::new();
        let mut unreadable: Vec<(PathBuf, std::io::Error)> = Vec::new();
        if let Some(dir) = self.cfg.pods_dir.clone() {
            scan_pods_dir(&dir, &mut found, &mut unreadable);
        }
        for g in &self.cfg.globs {
            match glob::glob(g) {
                Ok(paths) => {
                    for p in paths {
                        match p {
                            Ok(p) => found.push((p, None, false)),
                            Err(e) => unreadable.push((e.path().to_path_buf(), e.into())),
                        }
                    }
                }
                Err(e) => {
                    if self.warned.insert(PathBuf::from(g)) {
                        tracing::error!(glob = %g, error = %e, "invalid --files glob; ignoring it");
                    }
                }
            }
        }
        for (dir, e) in unreadable {
            if self.warned.insert(dir.clone()) {
                self.metrics.error(ErrorKind::FileRead);
                tracing::error!(
                    path = %dir.display(),
                    error = %e,
                    "cannot read a log directory, so the logs under it are not collected; the agent needs read and search permission (r-x) on it: run it as root or in the group that owns it; will retry"
                );
            }
        }
        if self.present.is_none() {
            self.present = Some(
                found
                    .iter()
                    .filter_map(|(p, _, _)| std::fs::metadata(p).ok())
                    .map(|m| (m.dev(), m.ino()))
                    .collect(),
            );
        }
        let mut added = false;
        for (path, container, only_if_known) in found {
            added |= self.consider(path, container, only_if_known);
        }
        if self.present.as_ref().is_some_and(|p| p.is_empty())
            || self.started.elapsed() > FIRST_SYNC_WAIT + METADATA_WAIT * 4
        {
            self.start_positions = None;
            self.present = Some(HashSet::new());
        }
        if added {
            // Rotated files first, then by path (0.log before 1.log), so a container's
            // lines go out in the order it wrote them.
            self.tailers.sort_by(|a, b| {
                (a.gone_since.is_none(), &a.path).cmp(&(b.gone_since.is_none(), &b.path))
            });
        }
        self.first_seen
            .retain(|_, t| t.elapsed() < Duration::from_secs(600));
    }

    /// Opens `path` unless it is already followed. Returns whether it was opened.
    fn consider(
        &mut self,
        path: PathBuf,
        container: Option<ContainerRef>,
        only_if_known: bool,
    ) -> bool {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(_) => return false, // gone between listing and looking: nothing to read
        };
        if !meta.is_file() {
            if self.warned.insert(path.clone()) {
                self.metrics.error(ErrorKind::NotAFile);
                tracing::error!(path = %path.display(),
                    "expected a log file but found a directory or special file; skipping it");
            }
            return false;
        }
        let id = (meta.dev(), meta.ino());
        if self.open.contains(&id) {
            return false;
        }
        let path_str = path.to_string_lossy();
        let was_present = self.present.as_ref().is_some_and(|p| p.contains(&id));
        let known = self
            .start_positions
            .as_ref()
            .filter(|_| was_present)
            .and_then(|p| p.file_offset(&path_str, id.0, id.1))
            .filter(|o| *o <= meta.len());
        if only_if_known && known.is_none_or(|o| o >= meta.len()) {
            return false;
        }
        if let Some(c) = &container
            && self.cache.enabled()
        {
            let first = *self
                .first_seen
                .entry(path.clone())
                .or_insert_with(Instant::now);
            let waiting_sync = !self.cache.synced() && self.started.elapsed() < FIRST_SYNC_WAIT;
            let waiting_pod = self.cache.get(&c.uid).is_none() && first.elapsed() < METADATA_WAIT;
            if waiting_sync || waiting_pod {
                return false;
            }
        }
        let file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                if self.warned.insert(path.clone()) {
                    self.metrics.error(ErrorKind::FileRead);
                    tracing::error!(path = %path.display(), error = %e, "cannot open log file; will retry");
                }
                return false;
            }
        };
        let source = match container {
            Some(c) => Source::Pod(c),
            None => Source::Static(self.static_stream(&path)),
        };
        let offset = known.unwrap_or(0);
        match Tailer::new(path.clone(), id, file, offset, source, self.cfg.max_line) {
            Ok(t) => {
                tracing::info!(path = %path.display(), offset, "following log file");
                if let Some(p) = self.present.as_mut() {
                    p.remove(&id);
                }
                self.warned.remove(&path);
                self.open.insert(id);
                self.tailers.push(t);
                true
            }
            Err(e) => {
                self.metrics.error(ErrorKind::FileRead);
                tracing::error!(path = %path.display(), error = %e, "cannot seek in log file");
                false
            }
        }
    }

    fn static_stream(&self, path: &Path) -> Arc<Stream> {
        let mut pairs: Vec<(String, String)> = self.cfg.static_labels.clone();
        if !pairs.iter().any(|(k, _)| k == "filename") {
            pairs.push(("filename".into(), path.to_string_lossy().into_owned()));
        }
        if let Some(n) = &self.cfg.node
            && !pairs.iter().any(|(k, _)| k == "node")
        {
            pairs.push(("node".into(), n.clone()));
        }
        Stream::new(&Labels::from_pairs(pairs), Vec::new())
    }
}

/// `<pods_dir>/<ns>_<pod>_<uid>/<container>/<n>.log`, plus rotated leftovers
/// (`<n>.log.<timestamp>`, not yet compressed) which are read only if the last run was
/// reading them. Directories that exist but cannot be read go to `unreadable`; those
/// that vanished meanwhile (a deleted pod) are passed over.
fn scan_pods_dir(
    dir: &Path,
    found: &mut Vec<(PathBuf, Option<ContainerRef>, bool)>,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
) {
    let mut list = |path: PathBuf| match std::fs::read_dir(&path) {
        Ok(entries) => Some(entries),
        // Gone meanwhile, or a stray file where a directory was expected.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            None
        }
        Err(e) => {
            unreadable.push((path, e));
            None
        }
    };
    let Some(pods) = list(dir.to_path_buf()) else {
        return;
    };
    for pod in pods.filter_map(|e| e.ok()) {
        let Some(containers) = list(pod.path()) else {
            continue;
        };
        for c in containers.filter_map(|e| e.ok()) {
            let Some(files) = list(c.path()) else {
                continue;
            };
            for f in files.filter_map(|e| e.ok()) {
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                let current = name
                    .strip_suffix(".log")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let rotated = !current && name.contains(".log.") && !name.ends_with(".gz");
                if !current && !rotated {
                    continue;
                }
                let path = f.path();
                if let Some(cref) = ContainerRef::from_path(dir, &path) {
                    found.push((path, Some(cref), rotated));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_directories_are_reported_and_vanished_ones_are_not() {
        let dir = crate::testkit::TempDir::new("scan-pods");
        let pods = dir.path().join("pods");
        let log = pods.join("ns_a_uid-a/app/0.log");
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "x\n").unwrap();
        // A directory that cannot be listed (a symlink loop fails as root too, where
        // missing permissions would not), and a stray file where a pod directory goes.
        let looped = pods.join("ns_b_uid-b");
        std::os::unix::fs::symlink(&looped, &looped).unwrap();
        std::fs::write(pods.join("stray"), "").unwrap();
        let (mut found, mut unreadable) = (Vec::new(), Vec::new());
        scan_pods_dir(&pods, &mut found, &mut unreadable);
        let found: Vec<&PathBuf> = found.iter().map(|(p, _, _)| p).collect();
        assert_eq!(found, [&log]);
        let unreadable: Vec<&PathBuf> = unreadable.iter().map(|(p, _)| p).collect();
        assert_eq!(unreadable, [&looped]);
        // A pods directory that is not there is not an error of this kind.
        let (mut found, mut unreadable) = (Vec::new(), Vec::new());
        scan_pods_dir(&dir.path().join("none"), &mut found, &mut unreadable);
        assert!(found.is_empty() && unreadable.is_empty());
    }
}
