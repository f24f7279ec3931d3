//! Parts in object storage: the `storage_*` options turned into the store's
//! [`ObjectStoreConfig`], and the probe at startup that proves the bucket exists and the
//! credentials may list, write and delete in it, failing fast with a message that names the
//! bucket, the endpoint and what to do.
//!
//! The bucket is never created here: who owns it (lifecycle rules, encryption, access
//! policy) is the operator's choice, and a typo in its name should stop the server rather
//! than scatter data over a new bucket.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use serde::{Deserialize, Serialize};
use store::backend::ObjectStoreConfig;

use super::Config;

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
    fn credentials_hint(self) -> &'static str {
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

    fn create_hint(self, bucket: &str) -> String {
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

fn parse_url(raw: &str) -> Result<(url::Url, Scheme), StorageError> {
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

/// The `AWS_*`, `GOOGLE_*` and `AZURE_*` environment, then the explicit options: what the
/// store's backend reads, in the same order (later wins).
fn effective_options(o: &ObjectStoreConfig) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_") || k.starts_with("GOOGLE_") || k.starts_with("AZURE_")
        })
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    all.extend(o.options.iter().cloned());
    all
}

/// What the probe talks to, for messages.
struct Target {
    scheme: Scheme,
    bucket: String,
    endpoint: String,
}

/// How long the whole probe may take before the server gives up starting.
const PROBE_DEADLINE: Duration = Duration::from_secs(30);

/// Lists the bucket, then writes and deletes a small object under the prefix: proves the
/// bucket exists and the credentials may do what the store does. Few retries, so that a
/// wrong endpoint fails in seconds rather than after the store's minutes of retrying.
pub async fn probe(o: &ObjectStoreConfig) -> Result<(), StorageError> {
    // reqwest is built without a default TLS provider (the store installs the same one).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (url, scheme) = parse_url(&o.url)?;
    let options = effective_options(o);
    let (bucket_store, prefix, target) = build(&url, scheme, &options)?;
    let unreachable = |detail: String| StorageError::Unreachable {
        bucket: target.bucket.clone(),
        endpoint: target.endpoint.clone(),
        detail,
    };
    let work = async {
        bucket_store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| classify(&target, "list objects", &e))?;
        let name = format!(
            ".kiroku-startup-check-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        let probe = prefix.clone().join(name.as_str());
        bucket_store
            .put(&probe, PutPayload::from_static(b"kiroku"))
            .await
            .map_err(|e| classify(&target, "write objects", &e))?;
        bucket_store
            .delete(&probe)
            .await
            .map_err(|e| classify(&target, "delete objects", &e))?;
        Ok(())
    };
    tokio::time::timeout(PROBE_DEADLINE, work)
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", PROBE_DEADLINE.as_secs())))?
}

fn build(
    url: &url::Url,
    scheme: Scheme,
    options: &[(String, String)],
) -> Result<(Box<dyn ObjectStore>, ObjectPath, Target), StorageError> {
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..RetryConfig::default()
    };
    let bucket = url.host_str().unwrap_or_default().to_string();
    let config_err = |e: object_store::Error| StorageError::Config {
        url: url.to_string(),
        detail: e.to_string(),
    };
    let prefix = ObjectPath::from_url_path(url.path()).map_err(|e| StorageError::BadUrl {
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    let (bucket_store, endpoint): (Box<dyn ObjectStore>, String) = match scheme {
        Scheme::S3 => {
            let mut b = AmazonS3Builder::new().with_url(url.as_str());
            for (k, v) in options {
                if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let endpoint = b
                .get_config_value(&AmazonS3ConfigKey::Endpoint)
                .unwrap_or_else(|| {
                    let region = b
                        .get_config_value(&AmazonS3ConfigKey::Region)
                        .unwrap_or_else(|| "us-east-1".into());
                    format!("https://s3.{region}.amazonaws.com")
                });
            let s = b.with_retry(retry).build().map_err(config_err)?;
            (Box::new(s), endpoint)
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::new().with_url(url.as_str());
            for (k, v) in options {
                if let Ok(key) = k.parse::<GoogleConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let s = b.with_retry(retry).build().map_err(config_err)?;
            (Box::new(s), "https://storage.googleapis.com".into())
        }
        Scheme::Azure => {
            let mut b = MicrosoftAzureBuilder::new().with_url(url.as_str());
            for (k, v) in options {
                if let Ok(key) = k.parse::<AzureConfigKey>() {
                    b = b.with_config(key, v.clone());
                }
            }
            let endpoint = b
                .get_config_value(&AzureConfigKey::Endpoint)
                .unwrap_or_else(|| {
                    let account = b
                        .get_config_value(&AzureConfigKey::AccountName)
                        .unwrap_or_else(|| "<account>".into());
                    format!("https://{account}.blob.core.windows.net")
                });
            let s = b.with_retry(retry).build().map_err(config_err)?;
            (Box::new(s), endpoint)
        }
        Scheme::File => {
            let dir = url.to_file_path().map_err(|()| StorageError::BadUrl {
                url: url.to_string(),
                reason: "not an absolute local path".into(),
            })?;
            let target = Target {
                scheme,
                bucket: dir.display().to_string(),
                endpoint: "the local filesystem".into(),
            };
            if !dir.is_dir() {
                return Err(StorageError::NoBucket {
                    hint: scheme.create_hint(&target.bucket),
                    bucket: target.bucket,
                    endpoint: target.endpoint,
                });
            }
            return Ok((Box::new(LocalFileSystem::new()), prefix, target));
        }
    };
    let target = Target {
        scheme,
        bucket,
        endpoint,
    };
    Ok((bucket_store, prefix, target))
}

/// Turns a failed request into what the operator must fix. S3 list errors come back as
/// generic errors with the status and XML body in their text, so the text is read too.
fn classify(t: &Target, op: &'static str, e: &object_store::Error) -> StorageError {
    let text = chain_text(e);
    let code = xml_tag(&text, "Code");
    let detail = match (&code, xml_tag(&text, "Message")) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.clone(),
        _ => text.clone(),
    };
    let code = code.unwrap_or_default();
    let missing_bucket = matches!(
        code.as_str(),
        "NoSuchBucket" | "ContainerNotFound" | "NoSuchContainer"
    ) || (op == "list objects"
        && (matches!(e, object_store::Error::NotFound { .. }) || text.contains("404 Not Found")));
    if missing_bucket {
        return StorageError::NoBucket {
            bucket: t.bucket.clone(),
            endpoint: t.endpoint.clone(),
            hint: t.scheme.create_hint(&t.bucket),
        };
    }
    // No credentials anywhere: object_store falls back to the EC2 metadata service.
    if text.contains("169.254.169.254") {
        return StorageError::NoCredentials {
            bucket: t.bucket.clone(),
            endpoint: t.endpoint.clone(),
            detail: text,
            hint: t.scheme.credentials_hint(),
        };
    }
    if matches!(
        code.as_str(),
        "AuthorizationHeaderMalformed" | "PermanentRedirect" | "IllegalLocationConstraintException"
    ) || text.contains("incorrectly configured region")
    {
        return StorageError::WrongRegion {
            bucket: t.bucket.clone(),
            endpoint: t.endpoint.clone(),
            detail,
        };
    }
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || matches!(
        code.as_str(),
        "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "AuthenticationFailed"
            | "AuthorizationFailure"
    ) || text.contains("403 Forbidden")
        || text.contains("401 Unauthorized");
    if denied {
        return StorageError::Denied {
            op,
            bucket: t.bucket.clone(),
            endpoint: t.endpoint.clone(),
            detail,
            hint: t.scheme.credentials_hint(),
        };
    }
    if let Some(h) = http_error(e)
        && matches!(h.kind(), HttpErrorKind::Connect | HttpErrorKind::Timeout)
    {
        return StorageError::Unreachable {
            bucket: t.bucket.clone(),
            endpoint: t.endpoint.clone(),
            detail: chain_text(h),
        };
    }
    StorageError::Failed {
        op,
        bucket: t.bucket.clone(),
        endpoint: t.endpoint.clone(),
        detail,
    }
}

fn http_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a HttpError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return Some(h);
        }
        cur = c.source();
    }
    None
}

/// An error and its sources as one line, each cause once.
fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    let raw = text[start..end].trim();
    Some(
        raw.replace("&apos;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
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

    #[test]
    fn s3_error_bodies_are_read() {
        let t = Target {
            scheme: Scheme::S3,
            bucket: "logs".into(),
            endpoint: "http://s3".into(),
        };
        let generic = |body: &str| object_store::Error::Generic {
            store: "S3",
            source: format!("Server returned non-2xx status code: {body}").into(),
        };
        let e = classify(
            &t,
            "list objects",
            &generic("404 Not Found: <Error><Code>NoSuchBucket</Code></Error>"),
        );
        assert!(matches!(e, StorageError::NoBucket { .. }), "{e}");
        assert!(e.to_string().contains("garage bucket create logs"), "{e}");
        let e = classify(
            &t,
            "list objects",
            &generic(
                "403 Forbidden: <Error><Code>InvalidAccessKeyId</Code><Message>No such key</Message></Error>",
            ),
        );
        assert!(matches!(e, StorageError::Denied { .. }), "{e}");
        assert!(
            e.to_string().contains("InvalidAccessKeyId: No such key"),
            "{e}"
        );
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
        let e = classify(
            &t,
            "list objects",
            &generic(
                "400 Bad Request: <Error><Code>AuthorizationHeaderMalformed</Code><Message>unexpected scope: &apos;eu&apos;</Message></Error>",
            ),
        );
        assert!(e.to_string().contains("set --storage-region"), "{e}");
        assert!(e.to_string().contains("scope: 'eu'"), "{e}");
        let e = classify(
            &t,
            "list objects",
            &generic("Error performing PUT http://169.254.169.254/latest/api/token"),
        );
        assert!(matches!(e, StorageError::NoCredentials { .. }), "{e}");
        let e = classify(
            &t,
            "write objects",
            &generic("500 Internal Server Error: boom"),
        );
        assert!(matches!(e, StorageError::Failed { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("failed to write objects in bucket \"logs\""),
            "{e}"
        );
    }
}
