//! Parts in object storage (S3 and compatibles, GCS, Azure, or any `object_store` backend)
//! with a local cache.
//!
//! A part is uploaded once, whole, when it is published, and the local copy is kept in the
//! cache; reads of a part not in the cache fetch the footer and index with ranged GETs and
//! download the whole part on the first block read (parts are immutable, so a cached copy
//! never goes stale). The cache is bounded by [`crate::StoreConfig`]'s `cache_bytes` and
//! evicts the least recently used parts. The store's threads are not async: calls run on a
//! small runtime of this backend's own and the caller waits for the answer.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parking_lot::Mutex;

use crate::StoreError;
use crate::backend::{PartStore, read_file_at};
use crate::part::PartKey;

/// Where the parts are: a URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `file:///…`,
/// `memory://`) and options as `object_store` names them (`aws_endpoint`,
/// `aws_access_key_id`, `aws_region`, `aws_allow_http`, …). `AWS_*`, `GOOGLE_*` and
/// `AZURE_*` environment variables are read too; explicit options win.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStoreConfig {
    pub url: String,
    pub options: Vec<(String, String)>,
    /// Local cache size for downloaded parts (default 1 GiB).
    pub cache_bytes: u64,
}

impl ObjectStoreConfig {
    pub fn new(url: impl Into<String>) -> ObjectStoreConfig {
        ObjectStoreConfig {
            url: url.into(),
            options: Vec::new(),
            cache_bytes: 1 << 30,
        }
    }
}

pub struct RemoteParts {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    url: String,
    rt: tokio::runtime::Runtime,
    cache_dir: PathBuf,
    cache_bytes: u64,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    files: HashMap<PartKey, Cached>,
    bytes: u64,
}

struct Cached {
    file: Arc<File>,
    size: u64,
    used: Instant,
}

fn backend_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("{what}: {e}"))
}

impl RemoteParts {
    pub fn open(cfg: &ObjectStoreConfig, cache_dir: PathBuf) -> Result<RemoteParts, StoreError> {
        // reqwest is built without a default TLS provider: use ring, once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = url::Url::parse(&cfg.url).map_err(|e| {
            StoreError::Backend(format!(
                "{:?} is not a URL ({e}): write s3://bucket/prefix, gs://bucket, az://container",
                cfg.url
            ))
        })?;
        let mut options: Vec<(String, String)> = std::env::vars()
            .filter(|(k, _)| {
                k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
            })
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        options.extend(cfg.options.iter().cloned());
        let (store, prefix) = object_store::parse_url_opts(&url, options)
            .map_err(|e| backend_err(&format!("configuring {}", cfg.url), e))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("kiroku-objstore")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("starting the object storage runtime", &cache_dir, e))?;
        std::fs::create_dir_all(&cache_dir)
            .map_err(|e| StoreError::io("creating the part cache", &cache_dir, e))?;
        // The cache starts empty: what is on disk from an earlier run is removed.
        let _ = std::fs::remove_dir_all(&cache_dir);
        std::fs::create_dir_all(&cache_dir)
            .map_err(|e| StoreError::io("creating the part cache", &cache_dir, e))?;
        Ok(RemoteParts {
            store: Arc::from(store),
            prefix,
            url: cfg.url.clone(),
            rt,
            cache_dir,
            cache_bytes: cfg.cache_bytes,
            cache: Mutex::new(Cache::default()),
        })
    }

    fn object(&self, key: &PartKey) -> ObjectPath {
        let mut p = self.prefix.clone();
        for seg in key.path().split('/') {
            p = p.clone().join(seg);
        }
        p
    }

    /// Runs `fut` on the backend's runtime and waits for it (from any thread, including a
    /// runtime's: the wait is a plain blocking receive).
    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| StoreError::Backend("the object storage runtime stopped".into()))
    }

    fn cached(&self, key: &PartKey) -> Option<Arc<File>> {
        let mut c = self.cache.lock();
        let e = c.files.get_mut(key)?;
        e.used = Instant::now();
        Some(e.file.clone())
    }

    fn cache_path(&self, key: &PartKey) -> PathBuf {
        self.cache_dir.join(key.path().replace('/', "_"))
    }

    /// Adds the local file at `path` (already in the cache directory) to the cache and
    /// evicts the least recently used parts beyond the budget.
    fn admit(&self, key: &PartKey, path: &Path, size: u64) -> Result<Arc<File>, StoreError> {
        let file = Arc::new(
            File::open(path).map_err(|e| StoreError::io("opening a cached part", path, e))?,
        );
        let mut c = self.cache.lock();
        if let Some(old) = c.files.insert(
            key.clone(),
            Cached {
                file: file.clone(),
                size,
                used: Instant::now(),
            },
        ) {
            c.bytes -= old.size;
        }
        c.bytes += size;
        while c.bytes > self.cache_bytes && c.files.len() > 1 {
            let Some(victim) = c
                .files
                .iter()
                .filter(|(k, _)| *k != key)
                .min_by_key(|(_, v)| v.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(v) = c.files.remove(&victim) {
                c.bytes -= v.size;
                let _ = std::fs::remove_file(self.cache_path(&victim));
            }
        }
        Ok(file)
    }

    fn download(&self, key: &PartKey, size: u64) -> Result<Arc<File>, StoreError> {
        let store = self.store.clone();
        let obj = self.object(key);
        let bytes = self
            .run(async move { store.get(&obj).await?.bytes().await })?
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => StoreError::PartGone(key.to_string()),
                e => backend_err(&format!("downloading part {key}"), e),
            })?;
        if bytes.len() as u64 != size {
            return Err(StoreError::Corrupt(format!(
                "part {key} is {} bytes in the bucket, {size} expected",
                bytes.len()
            )));
        }
        let path = self.cache_path(key);
        let tmp = path.with_extension("download");
        std::fs::write(&tmp, &bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| StoreError::io("caching a part", &path, e))?;
        self.admit(key, &path, size)
    }
}

/// Parts larger than this are uploaded in parts of this size.
const MULTIPART: u64 = 64 << 20;

impl PartStore for RemoteParts {
    fn list(&self) -> Result<Vec<(PartKey, u64)>, StoreError> {
        let store = self.store.clone();
        let prefix = self.prefix.clone();
        let metas = self
            .run(async move { store.list(Some(&prefix)).try_collect::<Vec<_>>().await })?
            .map_err(|e| backend_err(&format!("listing {}", self.url), e))?;
        let strip = self.prefix.as_ref();
        let mut out = Vec::new();
        for m in metas {
            let full = m.location.as_ref();
            let rel = if strip.is_empty() {
                full
            } else {
                match full.strip_prefix(strip).and_then(|r| r.strip_prefix('/')) {
                    Some(r) => r,
                    None => continue,
                }
            };
            if let Some(k) = PartKey::parse(rel) {
                out.push((k, m.size));
            }
        }
        Ok(out)
    }

    fn publish(&self, key: &PartKey, tmp: &Path) -> Result<(), StoreError> {
        let size = std::fs::metadata(tmp)
            .map_err(|e| StoreError::io("reading a part", tmp, e))?
            .len();
        let store = self.store.clone();
        let obj = self.object(key);
        let path = tmp.to_path_buf();
        let res = self.run(async move {
            if size <= MULTIPART {
                let data = std::fs::read(&path).map_err(|e| object_store::Error::Generic {
                    store: "local",
                    source: Box::new(e),
                })?;
                store.put(&obj, PutPayload::from(data)).await?;
                return Ok(());
            }
            let upload = store.put_multipart(&obj).await?;
            let mut w =
                object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART as usize);
            let mut f = File::open(&path).map_err(|e| object_store::Error::Generic {
                store: "local",
                source: Box::new(e),
            })?;
            let mut buf = vec![0u8; 8 << 20];
            loop {
                let n = std::io::Read::read(&mut f, &mut buf).map_err(|e| {
                    object_store::Error::Generic {
                        store: "local",
                        source: Box::new(e),
                    }
                })?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await?;
                w.write(&buf[..n]);
            }
            w.finish().await?;
            Ok::<(), object_store::Error>(())
        })?;
        res.map_err(|e| backend_err(&format!("uploading part {key} to {}", self.url), e))?;
        // Keep the local copy as the cached one: recent parts are the most read.
        let cached = self.cache_path(key);
        std::fs::rename(tmp, &cached).map_err(|e| StoreError::io("caching a part", &cached, e))?;
        self.admit(key, &cached, size)?;
        Ok(())
    }

    fn read_at(
        &self,
        key: &PartKey,
        size: u64,
        offset: u64,
        len: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        if let Some(f) = self.cached(key) {
            return read_file_at(&f, || self.cache_path(key), offset, len, out);
        }
        // The footer and index (read at open): a ranged GET, no download.
        if offset + len == size || offset + len + crate::part::index::FOOTER_LEN as u64 == size {
            let store = self.store.clone();
            let obj = self.object(key);
            let bytes = self
                .run(async move { store.get_range(&obj, offset..offset + len).await })?
                .map_err(|e| match e {
                    object_store::Error::NotFound { .. } => StoreError::PartGone(key.to_string()),
                    e => backend_err(&format!("reading part {key}"), e),
                })?;
            out.clear();
            out.extend_from_slice(&bytes);
            return Ok(());
        }
        let f = self.download(key, size)?;
        read_file_at(&f, || self.cache_path(key), offset, len, out)
    }

    fn delete(&self, key: &PartKey) -> Result<(), StoreError> {
        {
            let mut c = self.cache.lock();
            if let Some(v) = c.files.remove(key) {
                c.bytes -= v.size;
            }
        }
        let _ = std::fs::remove_file(self.cache_path(key));
        let store = self.store.clone();
        let obj = self.object(key);
        match self.run(async move { store.delete(&obj).await })? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend_err(&format!("deleting part {key}"), e)),
        }
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    fn is_local(&self) -> bool {
        false
    }
}
