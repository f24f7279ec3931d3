//! `kiroku server`'s configuration: command-line flags, `KIROKU_*` environment variables
//! and a YAML file, with the same names everywhere (`--max-line-size`,
//! `KIROKU_MAX_LINE_SIZE`, `max_line_size:`). A flag wins over the environment, the
//! environment over the file, the file over the default.
//!
//! [`Args`] is what clap reads (every field optional, so an unset flag can fall through to
//! the file); [`FileConfig`] is what the YAML file may hold; [`Config`] is the effective
//! result that the server runs with and `GET /config` prints.

pub mod storage;
pub mod units;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use storage::{Addressing, StorageError, StorageOptions};
pub use units::{ByteSize, DiskLimit, Period};

/// Who may write and read which data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// One tenant (Loki's `fake`); an `X-Scope-OrgID` header is accepted and ignored.
    None,
    /// `X-Scope-OrgID` is required; tenants are stored apart; `a|b` reads several.
    Header,
}

/// How the server's own log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Declares the options once: the clap flags, the YAML keys and the effective values, with
/// their defaults and help, so the three can never drift apart.
macro_rules! options {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident : $ty:ty = $default:expr, env = $env:literal $(, $flag:ident)?;
    )*) => {
        /// `kiroku server` options. Every option can also be set in the environment
        /// (`KIROKU_<NAME>`) or in the YAML file given with `--config` (key `<name>`).
        #[derive(Debug, Clone, Default, clap::Args)]
        #[command(next_help_heading = "Server")]
        pub struct Args {
            /// YAML configuration file; its keys are the long flag names with `_` for `-`.
            #[arg(long, env = "KIROKU_CONFIG", value_name = "FILE")]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc])+
                #[arg(long, env = $env $(, $flag)?)]
                pub $name: Option<$ty>,
            )*
        }

        /// The keys a configuration file may hold; any other key is an error naming it.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct FileConfig {
            $( #[serde(default)] pub $name: Option<$ty>, )*
        }

        /// The configuration the server runs with.
        #[derive(Debug, Clone, Serialize)]
        pub struct Config {
            $( pub $name: $ty, )*
        }

        impl Default for Config {
            fn default() -> Config {
                Config { $( $name: $default, )* }
            }
        }

        impl Config {
            /// Merges the sources: flag or environment (clap has already chosen between
            /// those two), then file, then default.
            pub fn merge(args: &Args, file: FileConfig) -> Config {
                let d = Config::default();
                Config { $( $name: args.$name.clone().or(file.$name).unwrap_or(d.$name), )* }
            }
        }
    };
}

options! {
    /// Address to serve the HTTP API on [default: 127.0.0.1:3100].
    listen: String = "127.0.0.1:3100".to_string(), env = "KIROKU_LISTEN";
    /// Directory for the write-ahead log and the data files [default: ./data].
    data_dir: PathBuf = PathBuf::from("./data"), env = "KIROKU_DATA_DIR";
    /// Keep entries this long, and refuse older ones; `0` keeps everything and accepts
    /// entries of any age [default: 7d].
    retention: Period = Period::from_secs(7 * 86_400), env = "KIROKU_RETENTION";
    /// Disk the data may use: a size (`50GiB`) or a share of the volume to keep free
    /// (`10%`); the oldest data is deleted to stay within it [default: 10%].
    retention_max_disk: DiskLimit = DiskLimit::KeepFreePercent(10.0), env = "KIROKU_RETENTION_MAX_DISK";
    /// `none`: one tenant, `X-Scope-OrgID` ignored; `header`: `X-Scope-OrgID` required
    /// and tenants kept apart [default: none].
    auth: Auth = Auth::None, env = "KIROKU_AUTH", value_enum;
    /// Largest push body, both as received and once decompressed [default: 64MiB].
    max_request_bytes: ByteSize = ByteSize(64 << 20), env = "KIROKU_MAX_REQUEST_BYTES";
    /// Longest log line accepted [default: 256KiB].
    max_line_size: ByteSize = ByteSize(256 << 10), env = "KIROKU_MAX_LINE_SIZE";
    /// Most label names a stream may have, `service_name` not counted [default: 15].
    max_label_names_per_series: usize = 15, env = "KIROKU_MAX_LABEL_NAMES_PER_SERIES";
    /// Longest label name, in bytes [default: 1024].
    max_label_name_length: usize = 1024, env = "KIROKU_MAX_LABEL_NAME_LENGTH";
    /// Longest label value, in bytes [default: 2048].
    max_label_value_length: usize = 2048, env = "KIROKU_MAX_LABEL_VALUE_LENGTH";
    /// Largest structured metadata of one entry, names and values [default: 64KiB].
    max_structured_metadata_size: ByteSize = ByteSize(64 << 10), env = "KIROKU_MAX_STRUCTURED_METADATA_SIZE";
    /// Most structured-metadata pairs on one entry [default: 128].
    max_structured_metadata_entries_count: usize = 128, env = "KIROKU_MAX_STRUCTURED_METADATA_ENTRIES_COUNT";
    /// How far in the future an entry's timestamp may be [default: 10m].
    creation_grace_period: Period = Period::from_secs(600), env = "KIROKU_CREATION_GRACE_PERIOD";
    /// Most entries one log query may return (its `limit`) [default: 5000].
    max_entries_limit_per_query: usize = 5000, env = "KIROKU_MAX_ENTRIES_LIMIT_PER_QUERY";
    /// Most series one metric query may return [default: 500].
    max_query_series: usize = 500, env = "KIROKU_MAX_QUERY_SERIES";
    /// Longest time range one query may cover; `0` for no limit [default: 721h].
    max_query_length: Period = Period::from_secs(721 * 3600), env = "KIROKU_MAX_QUERY_LENGTH";
    /// Time one query may run before it is stopped [default: 1m].
    query_timeout: Period = Period::from_secs(60), env = "KIROKU_QUERY_TIMEOUT";
    /// Sync the write-ahead log to disk before acknowledging a push [default: true].
    fsync: bool = true, env = "KIROKU_FSYNC";
    /// Level of the server's own logs: error, warn, info, debug, trace, or a filter like
    /// `info,kiroku_store=debug` [default: info].
    log_level: String = "info".to_string(), env = "KIROKU_LOG_LEVEL";
    /// `text` or `json` [default: text].
    log_format: LogFormat = LogFormat::Text, env = "KIROKU_LOG_FORMAT", value_enum;
    /// Keep the data files in object storage: `s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix` or `file:///shared/dir`; the bucket must exist. Empty: under
    /// the data directory. The write-ahead log and a cache stay local [default: empty].
    storage_url: String = String::new(), env = "KIROKU_STORAGE_URL";
    /// S3 (or Azure) endpoint for servers other than AWS's, e.g. `http://minio:9000`
    /// [default: empty, the provider's own].
    storage_endpoint: String = String::new(), env = "KIROKU_STORAGE_ENDPOINT";
    /// S3 region [default: empty: AWS_REGION, else us-east-1].
    storage_region: String = String::new(), env = "KIROKU_STORAGE_REGION";
    /// S3 addressing: `path` (endpoint/bucket: MinIO, Garage, Ceph) or `virtual-hosted`
    /// (bucket.endpoint) [default: path].
    storage_addressing: Addressing = Addressing::Path, env = "KIROKU_STORAGE_ADDRESSING", value_enum;
    /// Allow plain-http object storage endpoints [default: false].
    storage_allow_http: bool = false, env = "KIROKU_STORAGE_ALLOW_HTTP";
    /// More object storage options by their `object_store` names, `key=value,...` (a map
    /// in YAML), e.g. `aws_session_token=...`; credentials also come from the standard
    /// AWS_*, GOOGLE_* and AZURE_* variables [default: none].
    storage_options: StorageOptions = StorageOptions::default(), env = "KIROKU_STORAGE_OPTIONS";
    /// How often to list the bucket for data files written by other instances sharing it
    /// (retention and compaction run then too) [default: 10s].
    storage_list_interval: Period = Period::from_secs(10), env = "KIROKU_STORAGE_LIST_INTERVAL";
    /// Local disk for data files downloaded from object storage, least recently used
    /// dropped first [default: 1GiB].
    cache_max_bytes: ByteSize = ByteSize(1 << 30), env = "KIROKU_CACHE_MAX_BYTES";
    /// Merge small data files in the background. Several instances on one bucket: leave it
    /// on for one of them only [default: true].
    compaction: bool = true, env = "KIROKU_COMPACTION";
}

/// Why the configuration could not be loaded. Each message names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}: check the path given with --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Config {
    /// Reads the file named by `--config` (if any) and merges it under the flags.
    pub fn load(args: &Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let cfg = Config::merge(args, file);
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_request_bytes.0 == 0 {
            return Err(ConfigError::Invalid(
                "max_request_bytes is 0: no push could ever be accepted; set it to a size like 64MiB".into(),
            ));
        }
        if self.max_entries_limit_per_query == 0 {
            return Err(ConfigError::Invalid(
                "max_entries_limit_per_query is 0: no log query could return lines; set it to a count like 5000".into(),
            ));
        }
        if self.query_timeout.is_zero() {
            return Err(ConfigError::Invalid(
                "query_timeout is 0: every query would time out; set it to a duration like 1m"
                    .into(),
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(ConfigError::Invalid(format!(
                "log_level {:?} is not a level: use error, warn, info, debug or trace",
                self.log_level
            )));
        }
        if !self.storage_url.trim().is_empty() && self.storage_list_interval.is_zero() {
            return Err(ConfigError::Invalid(
                "storage_list_interval is 0: instances would never see each other's data; set it to a duration like 10s".into(),
            ));
        }
        storage::object_store_config(self)?;
        Ok(())
    }

    /// Where the store keeps its parts: `None` under the data directory.
    pub fn object_store(&self) -> Result<Option<store::backend::ObjectStoreConfig>, StorageError> {
        storage::object_store_config(self)
    }

    /// Retention in nanoseconds, `None` when everything is kept.
    pub fn retention_nanos(&self) -> Option<i64> {
        (!self.retention.is_zero()).then_some(self.retention.nanos())
    }

    /// The configuration as YAML, for `GET /config`.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_saphyr::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn parse(argv: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("kiroku").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    fn file(yaml: &str) -> FileConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn defaults_match_loki() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:3100");
        assert_eq!(c.max_line_size, ByteSize(262144));
        assert_eq!(c.max_label_names_per_series, 15);
        assert_eq!(c.max_entries_limit_per_query, 5000);
        assert_eq!(c.max_query_series, 500);
        assert_eq!(c.retention, Period::from_secs(7 * 86400));
        assert_eq!(c.retention_max_disk, DiskLimit::KeepFreePercent(10.0));
        assert_eq!(c.auth, Auth::None);
        assert!(c.fsync);
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let args = parse(&["--max-line-size", "1KiB", "--auth", "header"]);
        let f = file("max_line_size: 2KiB\nretention: 0\nlisten: 0.0.0.0:9000\nfsync: false\n");
        let c = Config::merge(&args, f);
        assert_eq!(c.max_line_size, ByteSize(1024));
        assert_eq!(c.auth, Auth::Header);
        assert_eq!(c.retention, Period(0));
        assert_eq!(c.retention_nanos(), None);
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert!(!c.fsync);
        assert_eq!(c.max_query_series, 500);
    }

    #[test]
    fn numbers_and_strings_both_read_in_yaml() {
        let c = Config::merge(
            &Args::default(),
            file("max_request_bytes: 1048576\nretention_max_disk: 50GiB\nquery_timeout: 30s\n"),
        );
        assert_eq!(c.max_request_bytes, ByteSize(1 << 20));
        assert_eq!(c.retention_max_disk, DiskLimit::Bytes(ByteSize(50 << 30)));
        assert_eq!(c.query_timeout, Period::from_secs(30));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = serde_saphyr::from_str::<FileConfig>("listen: x\nmax_lien_size: 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_lien_size"), "{err}");
    }

    #[test]
    fn bad_values_say_what_is_expected() {
        let err = serde_saphyr::from_str::<FileConfig>("retention: forever\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a duration"), "{err}");
        assert!(Cli::try_parse_from(["kiroku", "--max-line-size", "big"]).is_err());
    }

    #[test]
    fn effective_config_prints_as_yaml_that_reads_back() {
        let c = Config::default();
        let y = c.to_yaml();
        assert!(y.contains("max_line_size: 256KiB"), "{y}");
        assert!(y.contains("retention: 7d"), "{y}");
        let back = Config::merge(&Args::default(), file(&y));
        assert_eq!(back.max_line_size, c.max_line_size);
        assert_eq!(back.retention_max_disk, c.retention_max_disk);
        assert_eq!(back.data_dir, c.data_dir);
    }
}
