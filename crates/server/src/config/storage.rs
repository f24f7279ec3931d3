//! Parts in object storage: the `storage_*` options turned into the store's
//! [`ObjectStoreConfig`], checked for everything that can be checked without the network;
//! [`probe`] then proves at startup that the bucket exists and the credentials may list,
//! write and delete in it.
//!
//! The bucket is never created here: who owns it (lifecycle rules, encryption, access
//! policy) is the operator's choice, and a typo in its name should stop the server rather
//! than scatter data over a new bucket.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use object_store::aws::AmazonS3ConfigKey;
use object_store::azure::AzureConfigKey;
use object_store::gcp::GoogleConfigKey;
use serde::{Deserialize, Serialize};
use store::backend::ObjectStoreConfig;

use super::Config;

pub mod probe;

pub use probe::probe;

/// `--storage-addressing`: how an S3 bucket is named in requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Addressing {
    /// `https://endpoint/bucket/key`: MinIO, Garage, Ceph and most self-hosted servers.
    Path,
    /// `https://bucket.endpoint/key`: what AWS recommends.
    VirtualHosted,
}

/// `--storage-options`: more `object_store` options by their names (`aws_session_token`,
/// `google_service_account`, `azure_storage_account_key`, …): `key=value,key=value` on the
/// command line, a map in YAML. Printed with secret values hidden.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(pub BTreeMap<String, String>);

impl FromStr for StorageOptions {
    type Err = String;

    fn from_str(s: &str) -> Result<StorageOptions, String> {
        let mut map = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(format!("{pair:?} is not key=value"));
            };
            map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        Ok(StorageOptions(map))
    }
}

/// Values of these options are never printed (`/config`, logs).
fn is_secret(key: &str) -> bool {
    if key.ends_with("_key_id") || key.ends_with("client_id") {
        return false;
    }
    [
        "secret",
        "token",
        "password",
        "key",
        "sas",
        "credential",
        "service_account",
    ]
    .iter()
    .any(|s| key.contains(s))
}

pub const REDACTED: &str = "<hidden>";

impl Serialize for StorageOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let shown: BTreeMap<&str, &str> = self
            .0
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret(k) { REDACTED } else { v.as_str() }))
            .collect();
        shown.serialize(s)
    }
}

impl<'de> Deserialize<'de> for StorageOptions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StorageOptions, D::Error> {
        /// YAML reads `true` and `443` as a bool and a number; object_store wants text.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Bool(bool),
            Int(i64),
            Float(f64),
        }
        let map = BTreeMap::<String, Scalar>::deserialize(d)?;
        Ok(StorageOptions(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Scalar::Text(s) => s,
                        Scalar::Bool(b) => b.to_string(),
                        Scalar::Int(i) => i.to_string(),
                        Scalar::Float(f) => f.to_string(),
                    };
                    (k.to_ascii_lowercase(), v)
                })
                .collect(),
        ))
    }
}

/// The object stores the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
    Azure,
    /// A directory, for a filesystem every instance mounts (NFS).
    File,
}

impl Scheme {
    fn of(url: &url::Url) -> Option<Scheme> {
        Some(match url.scheme() {
            "s3" | "s3a" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" | "azure" | "abfs" | "abfss" | "adl" => Scheme::Azure,
            "file" => Scheme::File,
            _ => return None,
        })
    }

    /// Where its credentials come from, for error messages.
    pub(crate) fn credentials_hint(self) -> &'static str {
        match self {
            Scheme::S3 => {
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or aws_access_key_id and aws_secret_access_key in storage_options) to a key that may list, read, write and delete in the bucket"
            }
            Scheme::Gcs => {
                "set GOOGLE_SERVICE_ACCOUNT (a service account file) or google_service_account_key in storage_options to an account that may list, read, write and delete in the bucket"
            }
            Scheme::Azure => {
                "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS in storage_options) for an account that may list, read, write and delete in the container"
            }
            Scheme::File => "make the directory writable by the server's user",
        }
    }

    pub(crate) fn create_hint(self, bucket: &str) -> String {
        match self {
            Scheme::S3 => format!(
                "create it first (`aws s3 mb s3://{bucket}`, `garage bucket create {bucket}`, `mc mb <alias>/{bucket}`) and allow the key to read and write it"
            ),
            Scheme::Gcs => {
                format!("create it first (`gcloud storage buckets create gs://{bucket}`)")
            }
            Scheme::Azure => format!(
                "create the container first (`az storage container create --name {bucket}`)"
            ),
            Scheme::File => {
                format!("create the directory {bucket} first (every instance must mount it)")
            }
        }
    }
}

/// Why object storage cannot be used. Each message names the bucket and the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "storage_url {url:?} is not a URL ({reason}): write s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///directory"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "storage_url {url:?} has an unknown scheme {scheme:?}: use s3:// (AWS S3, Garage, MinIO, Ceph, R2 …; give the server with --storage-endpoint), gs://, az:// or file://"
    )]
    UnknownScheme { url: String, scheme: String },
    #[error("storage option {key:?} is not an option of {scheme:?} storage: {hint}")]
    UnknownOption {
        key: String,
        scheme: Scheme,
        hint: &'static str,
    },
    #[error("{option} applies to s3:// storage only, and storage_url is {url:?}")]
    S3Only { option: &'static str, url: String },
    #[error(
        "storage_endpoint {endpoint:?} is plain http: set --storage-allow-http true to allow it (credentials and data then cross the network unencrypted), or use https"
    )]
    HttpNotAllowed { endpoint: String },
    #[error("cannot configure object storage for {url}: {detail}")]
    Config { url: String, detail: String },
    #[error("bucket {bucket:?} does not exist at {endpoint}: kiroku never creates buckets; {hint}")]
    NoBucket {
        bucket: String,
        endpoint: String,
        hint: String,
    },
    #[error(
        "{endpoint} refused to {op} in bucket {bucket:?} with the configured credentials ({detail}): {hint}"
    )]
    Denied {
        op: &'static str,
        bucket: String,
        endpoint: String,
        detail: String,
        hint: &'static str,
    },
    #[error(
        "no credentials for bucket {bucket:?} at {endpoint}: none were given, and the instance metadata service a cloud VM has did not answer ({detail}): {hint}"
    )]
    NoCredentials {
        bucket: String,
        endpoint: String,
        detail: String,
        hint: &'static str,
    },
    #[error(
        "{endpoint} says bucket {bucket:?} is in another region ({detail}): set --storage-region to the bucket's region"
    )]
    WrongRegion {
        bucket: String,
        endpoint: String,
        detail: String,
    },
    #[error(
        "cannot reach {endpoint} for bucket {bucket:?} ({detail}): check --storage-endpoint, DNS and the network"
    )]
    Unreachable {
        bucket: String,
        endpoint: String,
        detail: String,
    },
    #[error("object storage {endpoint} failed to {op} in bucket {bucket:?}: {detail}")]
    Failed {
        op: &'static str,
        bucket: String,
        endpoint: String,
        detail: String,
    },
}

/// The store's object storage configuration, or `None` for parts under the data directory.
/// Checks everything that can be checked without the network.
pub fn object_store_config(cfg: &Config) -> Result<Option<ObjectStoreConfig>, StorageError> {
    let raw = cfg.storage_url.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let (url, scheme) = parse_url(raw)?;
    let s3_only = |option: &'static str| StorageError::S3Only {
        option,
        url: raw.to_string(),
    };
    let mut options: Vec<(String, String)> = Vec::new();
    for (k, v) in &cfg.storage_options.0 {
        check_option(scheme, k)?;
        options.push((k.clone(), v.clone()));
    }
    // The flags are the specific form: they win over the same key in storage_options.
    let endpoint = cfg.storage_endpoint.trim();
    if !endpoint.is_empty() {
        match scheme {
            Scheme::S3 => options.push(("aws_endpoint".into(), endpoint.to_string())),
            Scheme::Azure => options.push(("azure_storage_endpoint".into(), endpoint.to_string())),
            Scheme::Gcs | Scheme::File => return Err(s3_only("storage_endpoint")),
        }
        if endpoint.starts_with("http://") && !cfg.storage_allow_http {
            return Err(StorageError::HttpNotAllowed {
                endpoint: endpoint.to_string(),
            });
        }
    }
    let region = cfg.storage_region.trim();
    if !region.is_empty() {
        if scheme != Scheme::S3 {
            return Err(s3_only("storage_region"));
        }
        options.push(("aws_region".into(), region.to_string()));
    }
    if cfg.storage_addressing == Addressing::VirtualHosted {
        if scheme != Scheme::S3 {
            return Err(s3_only("storage_addressing"));
        }
        options.push(("aws_virtual_hosted_style_request".into(), "true".into()));
    }
    if cfg.storage_allow_http && scheme != Scheme::File {
        options.push(("allow_http".into(), "true".into()));
    }
    if scheme == Scheme::File && url.to_file_path().is_err() {
        return Err(StorageError::BadUrl {
            url: raw.to_string(),
            reason: "not an absolute local path".into(),
        });
    }
    let mut o = ObjectStoreConfig::new(raw);
    o.options = options;
    o.cache_bytes = cfg.cache_max_bytes.0;
    Ok(Some(o))
}

pub(crate) fn parse_url(raw: &str) -> Result<(url::Url, Scheme), StorageError> {
    let url = url::Url::parse(raw).map_err(|e| StorageError::BadUrl {
        url: raw.to_string(),
        reason: e.to_string(),
    })?;
    let scheme = Scheme::of(&url).ok_or_else(|| StorageError::UnknownScheme {
        url: raw.to_string(),
        scheme: url.scheme().to_string(),
    })?;
    if scheme != Scheme::File && url.host_str().is_none_or(str::is_empty) {
        return Err(StorageError::BadUrl {
            url: raw.to_string(),
            reason: "no bucket name".into(),
        });
    }
    Ok((url, scheme))
}

fn check_option(scheme: Scheme, key: &str) -> Result<(), StorageError> {
    let (known, hint) = match scheme {
        Scheme::S3 => (
            key.parse::<AmazonS3ConfigKey>().is_ok(),
            "see https://docs.rs/object_store/latest/object_store/aws/enum.AmazonS3ConfigKey.html",
        ),
        Scheme::Gcs => (
            key.parse::<GoogleConfigKey>().is_ok(),
            "see https://docs.rs/object_store/latest/object_store/gcp/enum.GoogleConfigKey.html",
        ),
        Scheme::Azure => (
            key.parse::<AzureConfigKey>().is_ok(),
            "see https://docs.rs/object_store/latest/object_store/azure/enum.AzureConfigKey.html",
        ),
        Scheme::File => (false, "file:// storage takes no options"),
    };
    if known {
        Ok(())
    } else {
        Err(StorageError::UnknownOption {
            key: key.to_string(),
            scheme,
            hint,
        })
    }
}

impl fmt::Display for Addressing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Addressing::Path => "path",
            Addressing::VirtualHosted => "virtual-hosted",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> Config {
        Config {
            storage_url: url.to_string(),
            ..Config::default()
        }
    }

    #[test]
    fn local_parts_by_default() {
        assert_eq!(object_store_config(&Config::default()).unwrap(), None);
    }

    #[test]
    fn flags_become_object_store_options() {
        let mut c = cfg("s3://logs/kiroku");
        c.storage_endpoint = "http://127.0.0.1:3900".into();
        c.storage_region = "garage".into();
        c.storage_allow_http = true;
        c.cache_max_bytes = super::super::ByteSize(5 << 20);
        c.storage_options = "aws_session_token=t".parse().unwrap();
        let o = object_store_config(&c).unwrap().unwrap();
        assert_eq!(o.url, "s3://logs/kiroku");
        assert_eq!(o.cache_bytes, 5 << 20);
        let has = |k: &str, v: &str| o.options.iter().any(|(a, b)| a == k && b == v);
        assert!(
            has("aws_endpoint", "http://127.0.0.1:3900"),
            "{:?}",
            o.options
        );
        assert!(has("aws_region", "garage"));
        assert!(has("allow_http", "true"));
        assert!(has("aws_session_token", "t"));
        assert!(!o.options.iter().any(|(k, _)| k.contains("virtual")));
    }

    #[test]
    fn mistakes_are_named_before_any_request() {
        let e = object_store_config(&cfg("ftp://logs"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown scheme \"ftp\""), "{e}");
        let e = object_store_config(&cfg("s3:/")).unwrap_err().to_string();
        assert!(e.contains("no bucket name"), "{e}");
        let mut c = cfg("s3://logs");
        c.storage_endpoint = "http://minio:9000".into();
        let e = object_store_config(&c).unwrap_err().to_string();
        assert!(e.contains("--storage-allow-http true"), "{e}");
        let mut c = cfg("gs://logs");
        c.storage_region = "eu".into();
        let e = object_store_config(&c).unwrap_err().to_string();
        assert!(e.contains("storage_region applies to s3://"), "{e}");
        let mut c = cfg("s3://logs");
        c.storage_options = "aws_secret_acces_key=x".parse().unwrap();
        let e = object_store_config(&c).unwrap_err().to_string();
        assert!(
            e.contains("\"aws_secret_acces_key\" is not an option"),
            "{e}"
        );
    }

    #[test]
    fn options_parse_from_flags_and_yaml_and_print_without_secrets() {
        let o: StorageOptions = "aws_access_key_id=AK, aws_secret_access_key=SK"
            .parse()
            .unwrap();
        assert_eq!(o.0["aws_secret_access_key"], "SK");
        assert!("novalue".parse::<StorageOptions>().is_err());
        let y: StorageOptions =
            serde_saphyr::from_str("aws_allow_http: true\nAWS_REGION: eu\n").unwrap();
        assert_eq!(y.0["aws_allow_http"], "true");
        assert_eq!(y.0["aws_region"], "eu");
        let printed = serde_saphyr::to_string(&o).unwrap();
        assert!(printed.contains("AK"), "{printed}");
        assert!(!printed.contains("SK"), "{printed}");
        assert!(printed.contains(REDACTED), "{printed}");
    }
}
