//! The startup probe: one listing of the bucket, then a small object written and deleted,
//! with few retries, so that a missing bucket, refused credentials, a wrong region or an
//! endpoint that does not answer stop the server in seconds with a message that names the
//! bucket and the endpoint and says what to fix.

use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::client::{HttpError, HttpErrorKind};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};
use store::backend::ObjectStoreConfig;

use super::{Scheme, StorageError, parse_url};

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

#[cfg(test)]
mod tests {
    use super::*;

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
