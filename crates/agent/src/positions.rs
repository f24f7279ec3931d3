//! Where each source stands, kept in a JSON file written atomically (temporary file, fsync,
//! rename) so that a restart resumes where the agent stopped, never mid-write.
//!
//! The file holds only what the server acknowledged. At start the agent overlays the marks
//! of batches still in the disk buffer (see [`crate::buffer`]) to know where reading
//! resumes: those lines are sent from the buffer, not read again.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::entry::Mark;

/// How many reported terminations are remembered so a restart does not report them again.
const TERMINATED_KEPT: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum PositionsError {
    #[error("cannot read positions file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write positions file {path}: {source}; check that its directory exists and is writable"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilePos {
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsPos {
    pub resource_version: String,
    pub ts: i64,
}

/// Where the cluster's events stand, as acknowledged under the leader's `term`. The
/// leader copies it to the Lease so that the next leader resumes from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterEventsPos {
    pub resource_version: String,
    pub ts: i64,
    pub term: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    #[serde(default)]
    pub files: BTreeMap<String, FilePos>,
    #[serde(default)]
    pub events: Option<EventsPos>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_events: Option<ClusterEventsPos>,
    /// Per container (`<pod uid>/<container>`), the timestamp of the last line read
    /// through the API.
    #[serde(default)]
    pub api: BTreeMap<String, i64>,
    #[serde(default)]
    pub terminated: VecDeque<String>,
}

impl Positions {
    /// Reads the positions file. A missing file is an empty start; an unreadable one is
    /// moved aside to `<file>.corrupt` and reported, and the agent starts over (lines may
    /// be sent twice, none are lost).
    pub fn load(path: &Path) -> Result<Positions, PositionsError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Positions::default()),
            Err(source) => {
                return Err(PositionsError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(p) => Ok(p),
            Err(e) => {
                let aside = path.with_extension("corrupt");
                tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %e,
                    "positions file is not valid JSON; starting from the beginning of every source");
                let _ = std::fs::rename(path, &aside);
                Ok(Positions::default())
            }
        }
    }

    /// Writes atomically: a reader (or a crash) sees the old file or the new one.
    pub fn save(&self, path: &Path) -> Result<(), PositionsError> {
        let werr = |source| PositionsError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(werr)?;
        }
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec(self).map_err(|e| werr(std::io::Error::other(e)))?;
        let mut f = std::fs::File::create(&tmp).map_err(werr)?;
        f.write_all(&body).map_err(werr)?;
        f.sync_all().map_err(werr)?;
        std::fs::rename(&tmp, path).map_err(werr)
    }

    pub fn apply(&mut self, mark: &Mark) {
        match mark {
            Mark::File {
                path,
                dev,
                ino,
                offset,
            } => {
                self.files.insert(
                    path.to_string(),
                    FilePos {
                        dev: *dev,
                        ino: *ino,
                        offset: *offset,
                    },
                );
            }
            Mark::Events {
                resource_version,
                ts,
            } => {
                self.events = Some(EventsPos {
                    resource_version: resource_version.clone(),
                    ts: *ts,
                });
            }
            Mark::ClusterEvents {
                resource_version,
                ts,
                term,
            } => {
                self.cluster_events = Some(ClusterEventsPos {
                    resource_version: resource_version.clone(),
                    ts: *ts,
                    term: *term,
                });
            }
            Mark::ApiLog { container, ts } => {
                let e = self.api.entry(container.clone()).or_insert(*ts);
                *e = (*e).max(*ts);
            }
            Mark::Terminated { key } => {
                if !self.terminated.contains(key) {
                    self.terminated.push_back(key.clone());
                    while self.terminated.len() > TERMINATED_KEPT {
                        self.terminated.pop_front();
                    }
                }
            }
        }
    }

    /// Where to resume the file `(dev, ino)` found at `path`: its own entry, or the entry
    /// of the path it had before the kubelet renamed it when rotating.
    pub fn file_offset(&self, path: &str, dev: u64, ino: u64) -> Option<u64> {
        if let Some(p) = self.files.get(path)
            && p.dev == dev
            && p.ino == ino
        {
            return Some(p.offset);
        }
        let dir = Path::new(path).parent();
        self.files
            .iter()
            .find(|(k, p)| p.dev == dev && p.ino == ino && Path::new(k.as_str()).parent() == dir)
            .map(|(_, p)| p.offset)
    }

    /// Drops entries of files that no longer exist, so the file does not grow forever.
    pub fn forget_missing_files(&mut self) {
        self.files.retain(|path, _| Path::new(path).exists());
    }

    pub fn was_terminated(&self, key: &str) -> bool {
        self.terminated.iter().any(|k| k == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_resumes_rotated_files() {
        let dir = crate::testkit::TempDir::new("positions");
        let path = dir.path().join("sub/positions.json");
        let mut p = Positions::default();
        p.apply(&Mark::File {
            path: "/logs/c/0.log".into(),
            dev: 1,
            ino: 42,
            offset: 100,
        });
        p.apply(&Mark::Events {
            resource_version: "77".into(),
            ts: 5,
        });
        p.apply(&Mark::Terminated {
            key: "u/c/1".into(),
        });
        p.save(&path).unwrap();
        let q = Positions::load(&path).unwrap();
        assert_eq!(q, p);
        assert_eq!(q.file_offset("/logs/c/0.log", 1, 42), Some(100));
        assert_eq!(
            q.file_offset("/logs/c/0.log.20240501-100000", 1, 42),
            Some(100)
        );
        assert_eq!(q.file_offset("/logs/c/0.log", 1, 43), None);
        assert!(q.was_terminated("u/c/1"));
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = crate::testkit::TempDir::new("positions-corrupt");
        let path = dir.path().join("positions.json");
        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(Positions::load(&path).unwrap(), Positions::default());
        assert!(dir.path().join("positions.corrupt").exists());
    }
}
