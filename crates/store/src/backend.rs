//! Where parts live: the [`PartStore`] the store reads and writes them through.
//!
//! [`LocalParts`] keeps them under `<data>/parts/<key>` and reads them with `pread`; the
//! object-store backend (S3, GCS, Azure) keeps them in a bucket and reads them through a
//! local cache. Either way parts are written to a local temporary file first, made durable,
//! and only then *published* under their key, so a crash never leaves half a part visible.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

pub mod remote;

pub use remote::{ObjectStoreConfig, RemoteParts};

use crate::StoreError;
use crate::part::{EXTENSION, PartKey};

pub trait PartStore: Send + Sync {
    /// Every part with its size in bytes.
    fn list(&self) -> Result<Vec<(PartKey, u64)>, StoreError>;
    /// Publishes the finished, synced local file `tmp` under `key` (the file is consumed).
    fn publish(&self, key: &PartKey, tmp: &Path) -> Result<(), StoreError>;
    /// Reads `len` bytes at `offset` of the part (of `size` bytes) into `out` (cleared).
    fn read_at(
        &self,
        key: &PartKey,
        size: u64,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError>;
    /// Deletes a part; deleting a missing part is not an error.
    fn delete(&self, key: &PartKey) -> Result<(), StoreError>;
    /// A short name for logs: `local` or the bucket URL.
    fn describe(&self) -> String;
    /// Whether parts take local disk space (the disk budget then applies to them).
    fn is_local(&self) -> bool;
}

/// Parts as files under a directory.
pub struct LocalParts {
    root: PathBuf,
    fsync: bool,
    files: Mutex<HashMap<PartKey, Arc<File>>>,
}

impl LocalParts {
    pub fn new(root: PathBuf, fsync: bool) -> Result<LocalParts, StoreError> {
        std::fs::create_dir_all(&root)
            .map_err(|e| StoreError::io("creating the parts directory", &root, e))?;
        Ok(LocalParts {
            root,
            fsync,
            files: Mutex::new(HashMap::new()),
        })
    }

    fn file(&self, key: &PartKey) -> Result<Arc<File>, StoreError> {
        if let Some(f) = self.files.lock().get(key) {
            return Ok(f.clone());
        }
        let path = self.root.join(key.path());
        let f = Arc::new(File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::PartGone(key.to_string())
            } else {
                StoreError::io("opening a part", &path, e)
            }
        })?);
        let mut files = self.files.lock();
        // Bounded: keep at most 4096 descriptors open.
        if files.len() >= 4096 {
            files.clear();
        }
        files.insert(key.clone(), f.clone());
        Ok(f)
    }
}

pub fn read_file_at(
    file: &File,
    path: impl FnOnce() -> PathBuf,
    offset: u64,
    len: u64,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    out.clear();
    let Ok(len) = usize::try_from(len) else {
        return Err(StoreError::Corrupt(format!(
            "read of {len} bytes from {}",
            path().display()
        )));
    };
    out.resize(len, 0);
    file.read_exact_at(out, offset)
        .map_err(|e| StoreError::io("reading a part", &path(), e))
}

impl PartStore for LocalParts {
    fn list(&self) -> Result<Vec<(PartKey, u64)>, StoreError> {
        let mut out = Vec::new();
        let walk_err = |p: &Path, e| StoreError::io("listing parts", p, e);
        for t in std::fs::read_dir(&self.root).map_err(|e| walk_err(&self.root, e))? {
            let t = t.map_err(|e| walk_err(&self.root, e))?;
            if !t.file_type().map_err(|e| walk_err(&t.path(), e))?.is_dir() {
                continue;
            }
            for d in std::fs::read_dir(t.path()).map_err(|e| walk_err(&t.path(), e))? {
                let d = d.map_err(|e| walk_err(&t.path(), e))?;
                if !d.file_type().map_err(|e| walk_err(&d.path(), e))?.is_dir() {
                    continue;
                }
                for f in std::fs::read_dir(d.path()).map_err(|e| walk_err(&d.path(), e))? {
                    let f = f.map_err(|e| walk_err(&d.path(), e))?;
                    let rel = format!(
                        "{}/{}/{}",
                        t.file_name().to_string_lossy(),
                        d.file_name().to_string_lossy(),
                        f.file_name().to_string_lossy()
                    );
                    if !rel.ends_with(EXTENSION) {
                        continue;
                    }
                    if let Some(k) = PartKey::parse(&rel) {
                        let size = f.metadata().map_err(|e| walk_err(&f.path(), e))?.len();
                        out.push((k, size));
                    }
                }
            }
        }
        Ok(out)
    }

    fn publish(&self, key: &PartKey, tmp: &Path) -> Result<(), StoreError> {
        let path = self.root.join(key.path());
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| StoreError::io("creating a partition directory", &dir, e))?;
        std::fs::rename(tmp, &path).map_err(|e| StoreError::io("publishing a part", &path, e))?;
        if self.fsync {
            crate::wal::sync_dir(&dir)?;
        }
        Ok(())
    }

    fn read_at(
        &self,
        key: &PartKey,
        _size: u64,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        let f = self.file(key)?;
        read_file_at(&f, || self.root.join(key.path()), offset, len, out)
    }

    fn delete(&self, key: &PartKey) -> Result<(), StoreError> {
        self.files.lock().remove(key);
        let path = self.root.join(key.path());
        match std::fs::remove_file(&path) {
            Ok(()) => {
                // Drop the partition directory when it is empty; failure is harmless.
                if let Some(dir) = path.parent() {
                    let _ = std::fs::remove_dir(dir);
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("deleting a part", &path, e)),
        }
    }

    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    fn is_local(&self) -> bool {
        true
    }
}
