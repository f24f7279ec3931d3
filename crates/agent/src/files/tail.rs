//! One file being followed: reads what was appended, splits it into lines, parses the
//! container format, joins partial lines and hands finished lines to the batcher.
//!
//! The file is held open by descriptor, so when the kubelet renames it (rotation) or the
//! pod's directory is removed (deletion), reading goes on to the end of what the container
//! wrote: the last lines of a dead container are not lost. A file that shrinks was
//! truncated in place and is read again from its start.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::deliver::MARK_ONLY;
use crate::entry::{Entry, Mark, SharedPath, Stream, line_from_bytes};
use crate::format::{Assembler, Format, Line, Output, cri, docker};
use crate::metrics::{ErrorKind, Metrics};
use crate::pods::{ContainerRef, PodCache, container_stream};

/// After a file was renamed or unlinked, it is closed once it has been quiet this long
/// (the runtime may still write a few lines before it reopens its log).
const DRAIN_GRACE: Duration = Duration::from_secs(1);
/// Chunks read from one file per round before the other files get their turn.
const CHUNKS_PER_ROUND: usize = 16;
/// Extra room for a CRI header on a physical line that is cut at the size limit.
const HEADER_SLACK: usize = 4096;

/// What a file's lines belong to.
#[derive(Debug)]
pub enum Source {
    /// A pod's container log: labels come from the path and the pod's metadata.
    Pod(ContainerRef),
    /// A `--files` match: fixed labels, each line stamped when read.
    Static(Arc<Stream>),
}

/// What the reader shares with every tailer.
pub struct Ctx<'a> {
    pub tx: &'a mpsc::Sender<Entry>,
    pub metrics: &'a Metrics,
    pub cache: &'a PodCache,
    pub node: Option<&'a str>,
    pub max_line: usize,
    pub chunk: &'a mut Vec<u8>,
}

/// The batcher is gone: the agent is stopping.
#[derive(Debug)]
pub struct Stopped;

#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// Read to the end for now.
    Idle,
    /// Stopped for fairness with data left.
    More,
    /// Renamed or deleted and read to its end: drop it.
    Closed,
}

pub struct Tailer {
    pub path: PathBuf,
    path_shared: SharedPath,
    pub id: (u64, u64),
    file: File,
    /// Next byte to read.
    offset: u64,
    /// Where a restart may resume: after the last complete line.
    committed: u64,
    last_mark: u64,
    pending: Vec<u8>,
    skipping: bool,
    format: Option<Format>,
    assembler: Assembler,
    scratch: Vec<u8>,
    source: Source,
    streams: [Option<Arc<Stream>>; 3],
    generation: u64,
    pub gone_since: Option<Instant>,
    quiet_since: Option<Instant>,
    warned_parse: bool,
    /// Lines of the physical line being processed, sent once the read position after
    /// them is known so the last one can carry it.
    staged: Vec<Entry>,
}

impl Tailer {
    /// Starts following `file` (found at `path`, identity `id`) from byte `offset`.
    pub fn new(
        path: PathBuf,
        id: (u64, u64),
        mut file: File,
        offset: u64,
        source: Source,
        max_line: usize,
    ) -> std::io::Result<Tailer> {
        file.seek(SeekFrom::Start(offset))?;
        let format = match source {
            Source::Static(_) => Some(Format::Plain),
            Source::Pod(_) => None,
        };
        Ok(Tailer {
            path_shared: SharedPath::from(path.to_string_lossy().as_ref()),
            path,
            id,
            file,
            offset,
            committed: offset,
            last_mark: offset,
            pending: Vec::new(),
            skipping: false,
            format,
            assembler: Assembler::new(max_line),
            scratch: Vec::new(),
            source,
            streams: [None, None, None],
            generation: u64::MAX,
            gone_since: None,
            quiet_since: None,
            warned_parse: false,
            staged: Vec::new(),
        })
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    /// Notices whether the path still leads to this file; once it does not (rotated or
    /// deleted), the file is drained and closed.
    pub fn check_path(&mut self) {
        if self.gone_since.is_some() {
            return;
        }
        let same = std::fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()) == self.id)
            .unwrap_or(false);
        if !same {
            tracing::debug!(path = %self.path.display(), "file renamed or deleted; reading it to its end");
            self.gone_since = Some(Instant::now());
        }
    }

    pub fn poll(&mut self, ctx: &mut Ctx<'_>) -> Result<Poll, Stopped> {
        match self.file.metadata() {
            Ok(m) if m.len() < self.offset => {
                tracing::warn!(path = %self.path.display(), size = m.len(), offset = self.offset,
                    "file was truncated; reading it again from the start");
                self.offset = 0;
                self.committed = 0;
                self.pending.clear();
                self.skipping = false;
                self.assembler.reset();
                if let Err(e) = self.file.seek(SeekFrom::Start(0)) {
                    return self.read_failed(ctx, e);
                }
            }
            Ok(_) => {}
            Err(e) => return self.read_failed(ctx, e),
        }
        let mut chunk = std::mem::take(ctx.chunk);
        let mut result = Ok(Poll::Idle);
        let mut read_any = false;
        for round in 0..CHUNKS_PER_ROUND {
            match self.file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    read_any = true;
                    if let Err(s) = self.consume(&chunk[..n], ctx) {
                        *ctx.chunk = chunk;
                        return Err(s);
                    }
                    if n < chunk.len() {
                        break;
                    }
                    if round + 1 == CHUNKS_PER_ROUND {
                        result = Ok(Poll::More);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    *ctx.chunk = chunk;
                    return self.read_failed(ctx, e);
                }
            }
        }
        *ctx.chunk = chunk;
        self.send_mark(ctx)?;
        if read_any {
            self.quiet_since = None;
        } else if let Some(gone) = self.gone_since {
            let quiet = *self.quiet_since.get_or_insert_with(Instant::now);
            if gone.elapsed() >= DRAIN_GRACE && quiet.elapsed() >= DRAIN_GRACE {
                self.finish(ctx)?;
                return Ok(Poll::Closed);
            }
        }
        result
    }

    fn read_failed(&mut self, ctx: &mut Ctx<'_>, e: std::io::Error) -> Result<Poll, Stopped> {
        ctx.metrics.error(ErrorKind::FileRead);
        tracing::error!(path = %self.path.display(), error = %e, "cannot read log file; closing it");
        Ok(Poll::Closed)
    }

    /// A closed file's last line may lack its newline (plain files): send it as is.
    fn finish(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Stopped> {
        if !self.pending.is_empty() && !self.skipping {
            let p = std::mem::take(&mut self.pending);
            self.line(&p, ctx)?;
            self.committed = self.offset;
            self.release(ctx)?;
        }
        self.send_mark(ctx)
    }

    fn file_mark(&self) -> Mark {
        Mark::File {
            path: self.path_shared.clone(),
            dev: self.id.0,
            ino: self.id.1,
            offset: self.committed,
        }
    }

    /// Sends the staged lines; the last carries the read position after it, so every
    /// batch holding lines of this file also holds where a restart resumes after them.
    fn release(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Stopped> {
        if self.staged.is_empty() {
            return Ok(());
        }
        let mut staged = std::mem::take(&mut self.staged);
        if self.committed != self.last_mark
            && let Some(last) = staged.last_mut()
        {
            last.mark = Some(self.file_mark());
            self.last_mark = self.committed;
        }
        let mut result = Ok(());
        for e in staged.drain(..) {
            if ctx.tx.blocking_send(e).is_err() {
                result = Err(Stopped);
                break;
            }
        }
        staged.clear();
        self.staged = staged;
        result
    }

    fn send_mark(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Stopped> {
        if self.committed == self.last_mark {
            return Ok(());
        }
        self.last_mark = self.committed;
        let stream = self.stream(None, ctx);
        ctx.tx
            .blocking_send(Entry {
                stream,
                ts: MARK_ONLY,
                line: String::new(),
                mark: Some(self.file_mark()),
            })
            .map_err(|_| Stopped)
    }

    fn consume(&mut self, mut data: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Stopped> {
        while !data.is_empty() {
            let nl = memchr::memchr(b'\n', data);
            if self.skipping {
                match nl {
                    Some(i) => {
                        self.skipping = false;
                        self.offset += i as u64 + 1;
                        data = &data[i + 1..];
                        if !self.assembler.pending() {
                            self.committed = self.offset;
                        }
                        self.release(ctx)?;
                    }
                    None => {
                        self.offset += data.len() as u64;
                        return Ok(());
                    }
                }
                continue;
            }
            match nl {
                Some(i) => {
                    if self.pending.is_empty() {
                        self.line(&data[..i], ctx)?;
                    } else {
                        let mut p = std::mem::take(&mut self.pending);
                        p.extend_from_slice(&data[..i]);
                        let r = self.line(&p, ctx);
                        p.clear();
                        if p.capacity() > 64 * 1024 {
                            p.shrink_to(64 * 1024);
                        }
                        self.pending = p;
                        r?;
                    }
                    self.offset += i as u64 + 1;
                    data = &data[i + 1..];
                    if !self.assembler.pending() {
                        self.committed = self.offset;
                    }
                    self.release(ctx)?;
                }
                None => {
                    self.pending.extend_from_slice(data);
                    self.offset += data.len() as u64;
                    if self.pending.len() > ctx.max_line + HEADER_SLACK {
                        // A physical line larger than any line we send: send its start,
                        // skip the rest up to its newline, never holding it all.
                        tracing::warn!(path = %self.path.display(), limit = ctx.max_line,
                            "line longer than --max-line-bytes; sending its start only");
                        let p = std::mem::take(&mut self.pending);
                        let r = self.line(&p, ctx);
                        self.pending = Vec::new();
                        self.skipping = true;
                        r?;
                        self.release(ctx)?;
                    }
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// One physical line, without its newline.
    fn line(&mut self, raw: &[u8], ctx: &mut Ctx<'_>) -> Result<(), Stopped> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let format = *self.format.get_or_insert_with(|| Format::detect(raw));
        let parsed = match format {
            Format::Plain => {
                let truncated = raw.len() > ctx.max_line;
                let line = Line {
                    ts: now_nanos(),
                    output: Output::Stdout,
                    msg: &raw[..raw.len().min(ctx.max_line)],
                    truncated,
                };
                return self.emit(None, line, ctx);
            }
            Format::Cri => cri::parse(raw),
            Format::Docker => docker::parse(raw, &mut self.scratch),
        };
        match parsed {
            Ok(rec) => {
                // The assembler borrows its own buffer for the finished line, so finished
                // lines are turned into entries inside the callback.
                let Tailer {
                    assembler,
                    streams,
                    source,
                    generation,
                    staged,
                    ..
                } = self;
                assembler.feed(rec, |l| {
                    let stream = stream_for(streams, generation, source, Some(l.output), ctx);
                    stage(staged, stream, l, ctx);
                });
                Ok(())
            }
            Err(e) => {
                ctx.metrics.error(ErrorKind::Parse);
                if !self.warned_parse {
                    self.warned_parse = true;
                    tracing::warn!(path = %self.path.display(), error = %e,
                        "line is not in the file's format; sending it as it is (counted in kiroku_agent_errors_total{{kind=\"parse\"}}, said once per file)");
                }
                let truncated = raw.len() > ctx.max_line;
                let line = Line {
                    ts: now_nanos(),
                    output: Output::Stdout,
                    msg: &raw[..raw.len().min(ctx.max_line)],
                    truncated,
                };
                self.emit(None, line, ctx)
            }
        }
    }

    fn emit(
        &mut self,
        output: Option<Output>,
        l: Line<'_>,
        ctx: &mut Ctx<'_>,
    ) -> Result<(), Stopped> {
        let stream = self.stream(output, ctx);
        stage(&mut self.staged, stream, l, ctx);
        Ok(())
    }

    fn stream(&mut self, output: Option<Output>, ctx: &Ctx<'_>) -> Arc<Stream> {
        stream_for(
            &mut self.streams,
            &mut self.generation,
            &self.source,
            output,
            ctx,
        )
    }
}

fn stage(staged: &mut Vec<Entry>, stream: Arc<Stream>, l: Line<'_>, ctx: &Ctx<'_>) {
    ctx.metrics.lines_read.inc();
    ctx.metrics.bytes_read.add(l.msg.len() as u64);
    if l.truncated {
        ctx.metrics.lines_truncated.inc();
    }
    staged.push(Entry {
        stream,
        ts: l.ts,
        line: line_from_bytes(l.msg, ctx.metrics),
        mark: None,
    });
}

/// The stream of an output, rebuilt only when pod metadata changed.
fn stream_for(
    streams: &mut [Option<Arc<Stream>>; 3],
    generation: &mut u64,
    source: &Source,
    output: Option<Output>,
    ctx: &Ctx<'_>,
) -> Arc<Stream> {
    let g = ctx.cache.generation();
    if *generation != g {
        *streams = [None, None, None];
        *generation = g;
    }
    let slot = match output {
        Some(Output::Stdout) => 0,
        Some(Output::Stderr) => 1,
        None => 2,
    };
    streams[slot]
        .get_or_insert_with(|| match source {
            Source::Static(s) => s.clone(),
            Source::Pod(c) => {
                let meta = ctx.cache.get(&c.uid);
                container_stream(c, output.map(Output::as_str), ctx.node, meta.as_deref())
            }
        })
        .clone()
}

pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
