//! One rustls configuration for both the HTTP client and the tail WebSocket, so the two
//! trust the same certificates: the system's roots plus `--tls-ca-file`, an optional client
//! certificate, or no checking at all under `--tls-skip-verify`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::connection::Endpoint;
use crate::error::ClientError;

/// Builds the TLS configuration. Plain `http://` addresses get one with no roots: loading
/// the system's certificates costs start-up time and would never be used.
pub fn client_config(ep: &Endpoint) -> Result<Arc<ClientConfig>, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls_err = |why: String| ClientError::Tls {
        addr: ep.display.clone(),
        why,
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    let https = ep.base.scheme() == "https";
    let builder = if !https {
        // Unused over http://, but a CA file that cannot be read is still a mistake to
        // report (as logcli does), not to pass over.
        if let Some(path) = &ep.tls_ca_file {
            read_certs("TLS CA", path)?;
        }
        builder.with_root_certificates(RootCertStore::empty())
    } else if ep.tls_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(
                provider.signature_verification_algorithms,
            )))
    } else {
        let extra = match &ep.tls_ca_file {
            Some(path) => read_certs("TLS CA", path)?,
            None => Vec::new(),
        };
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
            .map_err(|e| tls_err(format!("cannot load the trusted certificates: {e}")))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
    };
    let config = match &ep.tls_identity {
        Some((cert, key)) if https => {
            let certs = read_certs("TLS client certificate", cert)?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| ClientError::File {
                what: "TLS client key",
                path: key.clone(),
                error: std::io::Error::other(e.to_string()),
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| tls_err(format!("the client certificate is not usable: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_certs(
    what: &'static str,
    path: &std::path::Path,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let file_err = |e: String| ClientError::File {
        what,
        path: path.to_owned(),
        error: std::io::Error::other(e),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// `--tls-skip-verify`: any certificate is accepted; signatures are still checked so the
/// handshake itself stays sound.
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
