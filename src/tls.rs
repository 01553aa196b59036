//! rustls server configurations for both faces, and client identity from a certificate.
//!
//! TLS 1.3 is preferred; TLS 1.2 is offered only with the provider's AEAD suites (ring's
//! TLS 1.2 suites are all ECDHE with AES-GCM or ChaCha20-Poly1305). The signing API
//! requires a client certificate chaining to the configured CA, checked against CRLs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// A TLS configuration that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{path}: {reason}")]
    File {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the material.
    #[error("TLS: {0}")]
    Rustls(String),
    /// A required setting is missing.
    #[error("{0}")]
    Missing(&'static str),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_err(path, e))
}

/// Certificates from a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no PEM certificate found"));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    crate::config::secret::check_private_mode(path).map_err(|e| file_err(path, e))?;
    let bytes = zeroize::Zeroizing::new(read(path)?);
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| file_err(path, e))?
        .ok_or_else(|| file_err(path, "no PEM private key found"))
}

fn load_crls(paths: &[PathBuf]) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = read(path)?;
        let pem: Vec<_> = rustls_pemfile::crls(&mut bytes.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| file_err(path, e))?;
        if pem.is_empty() {
            out.push(CertificateRevocationListDer::from(bytes));
        } else {
            out.extend(pem);
        }
    }
    Ok(out)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(tls12: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    if tls12 {
        &BOTH
    } else {
        &TLS13_ONLY
    }
}

/// Server-auth-only TLS for the webhook face (the vendor presents no client certificate).
pub fn webhook_server(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(true))
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Mutual TLS for the signing API: a client certificate from `client_ca` is required.
pub fn api_server(
    cert: &Path,
    key: &Path,
    client_ca: &[PathBuf],
    crls: &[PathBuf],
    tls12: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    if client_ca.is_empty() {
        return Err(TlsError::Missing(
            "api.client_ca must name at least one CA bundle",
        ));
    }
    let mut roots = RootCertStore::empty();
    for path in client_ca {
        for c in load_certs(path)? {
            roots.add(c).map_err(|e| file_err(path, e))?;
        }
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .with_crls(load_crls(crls)?)
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(tls12))
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The identity of a verified client certificate: its first URI SAN (e.g. a SPIFFE id),
/// else its subject common name.
pub fn client_identity(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::prelude::*;
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(uri) = name {
                return Some(uri.to_string());
            }
        }
    }
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    cn
}
