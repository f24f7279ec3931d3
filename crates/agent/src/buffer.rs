//! The disk buffer: an append-only log of encoded push batches, in numbered segment files,
//! with a head pointer to the oldest batch the server has not acknowledged.
//!
//! Every batch goes through it, so a server that is down or slow costs disk, not lines:
//! reading goes on until the buffer holds `max_bytes`, then pauses (the files stay on disk)
//! until pushes catch up. Each batch carries the read positions (marks) of the lines in it;
//! at start, the marks of batches still here tell the sources where to resume, so nothing
//! is read twice, and the positions file only advances when a batch is acknowledged.
//!
//! Frame: `u32 len | u32 crc32 | payload`; payload: `u32 marks_len | marks JSON | u32 lines
//! | snappy protobuf body`. A torn frame at the end (a crash mid-write) is cut off at start.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::entry::Mark;

/// A segment is closed and a new one started past this size; acknowledged segments are
/// deleted whole.
const SEGMENT_BYTES: u64 = 16 << 20;
const FRAME_HEADER: u64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    #[error(
        "disk buffer {dir}: {what}: {source}; check that the directory is writable and the disk has room"
    )]
    Io {
        dir: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
}

/// One batch as stored: what to send, how many lines it holds, where its sources stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub marks: Vec<Mark>,
    pub lines: u32,
    pub body: Vec<u8>,
}

impl Batch {
    fn encode(&self) -> Vec<u8> {
        let marks = serde_json::to_vec(&self.marks).unwrap_or_else(|_| b"[]".to_vec());
        let mut p = Vec::with_capacity(8 + marks.len() + self.body.len());
        p.extend_from_slice(&(marks.len() as u32).to_le_bytes());
        p.extend_from_slice(&marks);
        p.extend_from_slice(&self.lines.to_le_bytes());
        p.extend_from_slice(&self.body);
        p
    }

    fn decode(p: &[u8]) -> Option<Batch> {
        let ml = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
        let marks = serde_json::from_slice(p.get(4..4 + ml)?).ok()?;
        let lines = u32::from_le_bytes(p.get(4 + ml..8 + ml)?.try_into().ok()?);
        Some(Batch {
            marks,
            lines,
            body: p.get(8 + ml..)?.to_vec(),
        })
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    size: u64,
}

#[derive(Debug)]
pub struct Buffer {
    dir: PathBuf,
    max_bytes: u64,
    /// From the head's segment to the one being written.
    segments: VecDeque<Segment>,
    head_offset: u64,
    writer: Option<File>,
    reader: Option<(u64, File)>,
    /// Corrupt batches skipped by [`Buffer::head`] and not yet counted.
    corrupt: u64,
}

impl Buffer {
    /// The corrupt batches skipped since the last call, for the error count.
    pub fn take_corrupt(&mut self) -> u64 {
        std::mem::take(&mut self.corrupt)
    }

    /// Opens (or creates) the buffer in `dir` and returns it with the batches it still
    /// holds, oldest first, so their marks can be applied to the read positions.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<(Buffer, Vec<Batch>), BufferError> {
        let io = |what| {
            let dir = dir.to_owned();
            move |source| BufferError::Io { dir, what, source }
        };
        std::fs::create_dir_all(dir).map_err(io("cannot create the directory"))?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)
            .map_err(io("cannot list the directory"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let (head_id, mut head_offset) = read_head(dir).unwrap_or((0, 0));
        for id in ids.iter().filter(|id| **id < head_id) {
            let _ = std::fs::remove_file(seg_path(dir, *id));
        }
        ids.retain(|id| *id >= head_id);
        if ids.first() != Some(&head_id) {
            head_offset = 0;
        }
        let mut buf = Buffer {
            dir: dir.to_owned(),
            max_bytes,
            segments: VecDeque::new(),
            head_offset,
            writer: None,
            reader: None,
            corrupt: 0,
        };
        let mut pending = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let path = seg_path(dir, *id);
            let data = std::fs::read(&path).map_err(io("cannot read a segment"))?;
            let mut pos = if i == 0 { head_offset as usize } else { 0 };
            if pos > data.len() {
                pos = data.len();
                buf.head_offset = pos as u64;
            }
            let mut good_end = data.len();
            while pos < data.len() {
                match read_frame(&data[pos..]) {
                    Some((batch, len)) => {
                        pending.push(batch);
                        pos += len;
                    }
                    None => {
                        tracing::error!(segment = %path.display(), offset = pos,
                            "disk buffer segment ends in a torn or corrupt batch; cutting it off");
                        good_end = pos;
                        break;
                    }
                }
            }
            if good_end < data.len() {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io("cannot repair a segment"))?;
                f.set_len(good_end as u64)
                    .map_err(io("cannot repair a segment"))?;
            }
            buf.segments.push_back(Segment {
                id: *id,
                size: good_end as u64,
            });
        }
        if buf.segments.is_empty() {
            buf.segments.push_back(Segment {
                id: head_id.max(1),
                size: 0,
            });
            buf.head_offset = 0;
        }
        buf.write_head()?;
        Ok((buf, pending))
    }

    /// Bytes of batches not yet acknowledged.
    pub fn pending_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum::<u64>() - self.head_offset
    }

    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Whether a batch of `len` encoded bytes fits under the bound (an empty buffer takes
    /// any batch, so one larger than the bound still moves).
    pub fn has_room(&self, len: usize) -> bool {
        self.is_empty() || self.pending_bytes() + len as u64 + FRAME_HEADER <= self.max_bytes
    }

    /// Appends a batch. The caller checks [`Buffer::has_room`] first.
    pub fn append(&mut self, batch: &Batch) -> Result<(), BufferError> {
        let payload = batch.encode();
        let mut frame = Vec::with_capacity(payload.len() + 8);
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let tail = self
            .segments
            .back()
            .map(|s| (s.id, s.size))
            .unwrap_or((1, 0));
        if tail.1 >= SEGMENT_BYTES {
            self.segments.push_back(Segment {
                id: tail.0 + 1,
                size: 0,
            });
            self.writer = None;
            self.drop_consumed_segments()?;
        }
        let id = self.segments.back().map(|s| s.id).unwrap_or(1);
        if self.writer.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(seg_path(&self.dir, id))
                .map_err(|source| self.err("cannot open a segment for writing", source))?;
            self.writer = Some(f);
        }
        if let Some(w) = self.writer.as_mut()
            && let Err(source) = w.write_all(&frame)
        {
            self.writer = None;
            return Err(self.err("cannot append a batch", source));
        }
        if let Some(s) = self.segments.back_mut() {
            s.size += frame.len() as u64;
        }
        Ok(())
    }

    /// The oldest batch not yet acknowledged, and its size on disk for [`Buffer::ack`].
    pub fn head(&mut self) -> Result<Option<(Batch, u64)>, BufferError> {
        loop {
            let Some(seg) = self.segments.front() else {
                return Ok(None);
            };
            let (id, size) = (seg.id, seg.size);
            if self.head_offset >= size {
                if self.segments.len() == 1 {
                    return Ok(None);
                }
                self.drop_consumed_segments()?;
                continue;
            }
            if self.reader.as_ref().map(|r| r.0) != Some(id) {
                let f = File::open(seg_path(&self.dir, id))
                    .map_err(|source| self.err("cannot open a segment for reading", source))?;
                self.reader = Some((id, f));
            }
            let offset = self.head_offset;
            let frame = match self.reader.as_mut() {
                Some((_, f)) => read_frame_at(f, offset, size),
                None => Ok(None),
            };
            match frame {
                Ok(Some((batch, len))) => return Ok(Some((batch, len))),
                Ok(None) => {
                    tracing::error!(
                        segment = id,
                        offset,
                        "corrupt batch in the disk buffer; skipping the rest of its segment"
                    );
                    self.corrupt += 1;
                    self.head_offset = size;
                }
                Err(source) => return Err(self.err("cannot read a batch", source)),
            }
        }
    }

    /// Marks the head batch (of `len` bytes on disk) as acknowledged.
    pub fn ack(&mut self, len: u64) -> Result<(), BufferError> {
        self.head_offset += len;
        self.drop_consumed_segments()?;
        self.write_head()
    }

    fn drop_consumed_segments(&mut self) -> Result<(), BufferError> {
        while self.segments.len() > 1
            && self
                .segments
                .front()
                .is_some_and(|s| self.head_offset >= s.size)
        {
            if let Some(s) = self.segments.pop_front() {
                let _ = std::fs::remove_file(seg_path(&self.dir, s.id));
                if self.reader.as_ref().map(|r| r.0) == Some(s.id) {
                    self.reader = None;
                }
            }
            self.head_offset = 0;
            self.write_head()?;
        }
        Ok(())
    }

    fn write_head(&self) -> Result<(), BufferError> {
        let id = self.segments.front().map(|s| s.id).unwrap_or(1);
        let tmp = self.dir.join("head.tmp");
        std::fs::write(&tmp, format!("{id} {}\n", self.head_offset))
            .and_then(|()| std::fs::rename(&tmp, self.dir.join("head")))
            .map_err(|source| self.err("cannot write the head pointer", source))
    }

    fn err(&self, what: &'static str, source: std::io::Error) -> BufferError {
        BufferError::Io {
            dir: self.dir.clone(),
            what,
            source,
        }
    }
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

fn read_head(dir: &Path) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(dir.join("head")).ok()?;
    let (a, b) = s.trim().split_once(' ')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn read_frame(data: &[u8]) -> Option<(Batch, usize)> {
    let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(data.get(4..8)?.try_into().ok()?);
    let payload = data.get(8..8 + len)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    Some((Batch::decode(payload)?, 8 + len))
}

fn read_frame_at(f: &mut File, offset: u64, size: u64) -> std::io::Result<Option<(Batch, u64)>> {
    f.seek(SeekFrom::Start(offset))?;
    let mut hdr = [0u8; 8];
    f.read_exact(&mut hdr)?;
    let len = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as u64;
    if offset + FRAME_HEADER + len > size {
        return Ok(None);
    }
    let crc = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let mut payload = vec![0u8; len as usize];
    f.read_exact(&mut payload)?;
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    Ok(Batch::decode(&payload).map(|b| (b, FRAME_HEADER + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u32) -> Batch {
        Batch {
            marks: vec![Mark::ApiLog {
                container: "u/c".into(),
                ts: i64::from(n),
            }],
            lines: n,
            body: vec![n as u8; 100],
        }
    }

    #[test]
    fn keeps_unacknowledged_batches_across_reopen() {
        let dir = crate::testkit::TempDir::new("buffer");
        let (mut b, pending) = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert!(pending.is_empty() && b.is_empty());
        for n in 1..=3 {
            b.append(&batch(n)).unwrap();
        }
        let (first, len) = b.head().unwrap().unwrap();
        assert_eq!(first, batch(1));
        b.ack(len).unwrap();
        drop(b);
        let (mut b, pending) = Buffer::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(pending, vec![batch(2), batch(3)]);
        let (h, len) = b.head().unwrap().unwrap();
        assert_eq!(h, batch(2));
        b.ack(len).unwrap();
        let (h, len) = b.head().unwrap().unwrap();
        assert_eq!(h, batch(3));
        b.ack(len).unwrap();
        assert!(b.head().unwrap().is_none());
        assert_eq!(b.pending_bytes(), 0);
    }

    #[test]
    fn bounded_and_cuts_torn_tail() {
        let dir = crate::testkit::TempDir::new("buffer-torn");
        let (mut b, _) = Buffer::open(dir.path(), 300).unwrap();
        assert!(b.has_room(150));
        b.append(&batch(1)).unwrap();
        assert!(!b.has_room(200));
        b.append(&batch(2)).unwrap();
        drop(b);
        // A crash in the middle of writing the second batch.
        let seg = seg_path(dir.path(), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 10).unwrap();
        let (mut b, pending) = Buffer::open(dir.path(), 300).unwrap();
        assert_eq!(pending, vec![batch(1)]);
        b.append(&batch(3)).unwrap();
        let (h, len) = b.head().unwrap().unwrap();
        assert_eq!(h, batch(1));
        b.ack(len).unwrap();
        assert_eq!(b.head().unwrap().unwrap().0, batch(3));
    }

    #[test]
    fn corrupt_batches_are_skipped_and_counted() {
        let dir = crate::testkit::TempDir::new("buffer-corrupt");
        let (mut b, _) = Buffer::open(dir.path(), u64::MAX).unwrap();
        b.append(&batch(1)).unwrap();
        // Damaged behind the buffer's back (another process, a bad disk).
        let seg = seg_path(dir.path(), 1);
        let mut bytes = std::fs::read(&seg).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&seg, bytes).unwrap();
        assert!(b.head().unwrap().is_none());
        assert_eq!(b.take_corrupt(), 1);
        assert_eq!(b.take_corrupt(), 0);
        // Batches after it are delivered.
        b.append(&batch(2)).unwrap();
        assert_eq!(b.head().unwrap().unwrap().0, batch(2));
    }

    #[test]
    fn rolls_and_deletes_segments() {
        let dir = crate::testkit::TempDir::new("buffer-roll");
        let (mut b, _) = Buffer::open(dir.path(), u64::MAX).unwrap();
        let big = Batch {
            marks: vec![],
            lines: 1,
            body: vec![7; (SEGMENT_BYTES / 2 + 1) as usize],
        };
        for _ in 0..5 {
            b.append(&big).unwrap();
        }
        let segs = || {
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "seg")
                })
                .count()
        };
        assert_eq!(segs(), 3);
        for _ in 0..5 {
            let (_, len) = b.head().unwrap().unwrap();
            b.ack(len).unwrap();
        }
        assert!(b.head().unwrap().is_none());
        assert_eq!(segs(), 1);
    }
}
