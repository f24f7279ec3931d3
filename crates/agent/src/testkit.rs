//! Real-socket stand-ins used by kiroku's end-to-end tests and `kiroku bench agent`: a
//! Loki push receiver, a Kubernetes API server speaking the real list/watch JSON, and a
//! temporary directory. Not used by the agent itself.

mod agent;
mod kube_api;
mod process;
mod receiver;

pub use agent::{TestAgent, append};
pub use kube_api::{FakeContainer, FakeEvent, FakeKube, FakePod, FakeState, FakeTerminated};
pub use process::{
    Process, cri_line, docker_line, free_port, http_get, http_request, metric, rfc3339, wait_for,
};
pub use receiver::{PushReceiver, Received};
/// Certificate and key types for [`PushReceiver::start_tls`].
pub use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system's temporary directory, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "kiroku-{name}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::create_dir_all(&p);
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
