//! What happens before the first request: logging, and a data directory the server can
//! really write to, with a message that says how to fix it when it cannot.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::config::{Config, LogFormat};

/// Why the server cannot start. The messages are quoted by the deployment docs: keep them
/// stable.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "data directory {dir} is not writable by uid {uid}: mount it with fsGroup {gid} or run the chart with persistence.fixPermissions=true"
    )]
    NotWritable { dir: PathBuf, uid: u32, gid: u32 },
    #[error(
        "data directory {dir} cannot be created: {source}: create it, or point --data-dir at a writable directory"
    )]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {dir} is not a directory: point --data-dir at a directory")]
    NotADirectory { dir: PathBuf },
    #[error("data directory {dir} cannot be written: {source}")]
    Write {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot listen on {addr}: {source}: stop whatever holds the address or choose another with --listen"
    )]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Creates the data directory when missing and proves it writable by creating and removing
/// a file in it.
pub fn check_data_dir(dir: &Path) -> Result<(), StartupError> {
    let not_writable = || StartupError::NotWritable {
        dir: dir.to_path_buf(),
        uid: rustix::process::getuid().as_raw(),
        gid: rustix::process::getgid().as_raw(),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(match e.kind() {
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => not_writable(),
            ErrorKind::AlreadyExists | ErrorKind::NotADirectory => StartupError::NotADirectory {
                dir: dir.to_path_buf(),
            },
            _ => StartupError::Create {
                dir: dir.to_path_buf(),
                source: e,
            },
        });
    }
    if !dir.is_dir() {
        return Err(StartupError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let probe = dir.join(format!(".kiroku-write-check-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(not_writable())
        }
        Err(e) => Err(StartupError::Write {
            dir: dir.to_path_buf(),
            source: e,
        }),
    }
}

/// Sends the server's logs to stderr at the configured level and format.
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests run several servers in one process) is not an error.
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_accepts_a_writable_dir() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("a/b");
        check_data_dir(&d).unwrap();
        assert!(d.is_dir());
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0);
    }

    #[test]
    fn refuses_a_file() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let e = check_data_dir(&f).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
    }

    #[test]
    fn not_writable_message_is_the_documented_one() {
        let e = StartupError::NotWritable {
            dir: PathBuf::from("/var/lib/kiroku"),
            uid: 10001,
            gid: 10001,
        };
        assert_eq!(
            e.to_string(),
            "data directory /var/lib/kiroku is not writable by uid 10001: mount it with fsGroup 10001 or run the chart with persistence.fixPermissions=true"
        );
    }
}
