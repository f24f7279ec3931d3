//! The write-ahead log: every append is a record in a segment file under `<data>/wal/`
//! before it is acknowledged, so a `kill -9` (and with fsync on, a power cut) loses nothing
//! that was acknowledged.
//!
//! One segment per memtable generation, `<generation>.wal`: when the memtable is written out as
//! parts, its segment is deleted. A record is framed as `len u32 | crc32 u32 | payload`
//! (little-endian); the payload is one append (see [`record`]). Replay reads segments in
//! order and stops a segment at its first torn or corrupt record, truncating it there: the
//! writer acknowledged nothing past a torn write, because it acknowledges only after the
//! whole batch is written (and synced).

pub mod record;

use std::fs::{File, OpenOptions};
use std::io::{IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

const FRAME_HEADER: usize = 8;
/// A record larger than this is refused at append and treated as corruption at replay.
pub const MAX_RECORD: usize = 1 << 30;

pub fn segment_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{generation:020}.wal"))
}

/// The generations of the segments in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut generations = Vec::new();
    let rd =
        std::fs::read_dir(dir).map_err(|e| StoreError::io("listing the WAL directory", dir, e))?;
    for e in rd {
        let e = e.map_err(|e| StoreError::io("listing the WAL directory", dir, e))?;
        let name = e.file_name();
        if let Some(g) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
        {
            generations.push(g);
        }
    }
    generations.sort_unstable();
    Ok(generations)
}

/// Frames a record payload into `out`: `len | crc | payload`.
pub fn frame_into(out: &mut Vec<u8>, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// The segment being written.
pub struct Segment {
    pub generation: u64,
    path: PathBuf,
    file: File,
    len: u64,
}

impl Segment {
    pub fn create(dir: &Path, generation: u64, fsync: bool) -> Result<Segment, StoreError> {
        let path = segment_path(dir, generation);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| StoreError::io("creating a WAL segment", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::io("reading a WAL segment", &path, e))?
            .len();
        if fsync {
            sync_dir(dir)?;
        }
        Ok(Segment {
            generation,
            path,
            file,
            len,
        })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes framed records, in order, with as few `writev` calls as the kernel allows; on
    /// error the segment is cut back to where it was, so a failed batch leaves no partial
    /// record behind.
    pub fn write(&mut self, framed: &[&[u8]]) -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = framed.iter().map(|r| IoSlice::new(r)).collect();
        let total: usize = framed.iter().map(|r| r.len()).sum();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            match self.file.write_vectored(left) {
                Ok(0) => {
                    let _ = self.file.set_len(self.len);
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                Ok(n) => IoSlice::advance_slices(&mut left, n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = self.file.set_len(self.len);
                    return Err(e);
                }
            }
        }
        self.len += total as u64;
        Ok(())
    }

    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("syncing a directory", dir, e))
}

/// What replaying a segment found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    /// Records cut off (torn tail or bad checksum): at most one per segment.
    pub corrupt: u64,
    pub truncated_bytes: u64,
}

/// Reads every intact record of segment `generation` in order, handing each payload to `apply`;
/// a torn or corrupt record ends the segment, which is truncated there.
pub fn replay_segment(
    dir: &Path,
    generation: u64,
    mut apply: impl FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<ReplayStats, StoreError> {
    let path = segment_path(dir, generation);
    let mut buf = Vec::new();
    File::open(&path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| StoreError::io("reading a WAL segment", &path, e))?;
    let mut stats = ReplayStats::default();
    let mut pos = 0usize;
    while pos < buf.len() {
        let ok = buf.len() - pos >= FRAME_HEADER && {
            let len =
                u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
            let crc = u32::from_le_bytes([buf[pos + 4], buf[pos + 5], buf[pos + 6], buf[pos + 7]]);
            let end = pos + FRAME_HEADER + len;
            if len <= MAX_RECORD
                && end <= buf.len()
                && crc32fast::hash(&buf[pos + FRAME_HEADER..end]) == crc
            {
                match apply(&buf[pos + FRAME_HEADER..end]) {
                    Ok(()) => {
                        pos = end;
                        stats.records += 1;
                        true
                    }
                    // A record with a good checksum that does not decode: written by a
                    // different version or damaged before framing. Same treatment.
                    Err(StoreError::Corrupt(_)) => false,
                    Err(e) => return Err(e),
                }
            } else {
                false
            }
        };
        if !ok {
            stats.corrupt = 1;
            stats.truncated_bytes = (buf.len() - pos) as u64;
            tracing::warn!(
                segment = %path.display(),
                offset = pos,
                bytes = stats.truncated_bytes,
                "torn or corrupt WAL record: truncating the segment there"
            );
            OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| {
                    f.set_len(pos as u64)?;
                    f.sync_all()
                })
                .map_err(|e| StoreError::io("truncating a WAL segment", &path, e))?;
            break;
        }
    }
    Ok(stats)
}
