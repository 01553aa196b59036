//! rustls server configurations for both faces, and client identity from a certificate.
//!
//! TLS 1.3 is preferred; TLS 1.2 is offered only with the provider's AEAD suites (ring's
//! TLS 1.2 suites are all ECDHE with AES-GCM or ChaCha20-Poly1305). The signing API
//! requires a client certificate chaining to the configured CA, checked against CRLs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

mod dates;

pub use dates::{CrlDates, TlsDates};

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
    /// A CRL is past its `nextUpdate` (and `api.crl_expired = "refuse"`).
    #[error("{path}: the CRL expired at {next_update} (nextUpdate); fetch a fresh one from the CA, or set api.crl_expired = \"warn\" to accept stale CRLs")]
    CrlExpired {
        /// The CRL file.
        path: PathBuf,
        /// Its nextUpdate.
        next_update: String,
    },
}

/// What to do with a CRL past its `nextUpdate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CrlExpired {
    /// Refuse to load it (start and reload fail), and fail handshakes once it expires.
    #[default]
    Refuse,
    /// Load it with a warning.
    Warn,
}

/// How client certificates are judged beyond the chain and the CRLs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCertPolicy {
    /// Stale CRLs.
    pub crl_expired: CrlExpired,
    /// Accept a certificate with several URI SANs (the first one is the identity).
    pub allow_multiple_uri_sans: bool,
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

fn load_crls(
    paths: &[PathBuf],
    expired: CrlExpired,
) -> Result<(Vec<CertificateRevocationListDer<'static>>, Vec<CrlDates>), TlsError> {
    let mut out = Vec::new();
    let mut dates = Vec::new();
    for path in paths {
        let crls = read_crls(path)?;
        for crl in &crls {
            dates.push(check_crl_freshness(path, crl, expired)?);
        }
        out.extend(crls);
    }
    Ok((out, dates))
}

/// The CRLs in a file: PEM (one or more) or a single DER.
fn read_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let pem: Vec<_> = rustls_pemfile::crls(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    Ok(if pem.is_empty() {
        vec![CertificateRevocationListDer::from(bytes)]
    } else {
        pem
    })
}

/// The dates of TLS files as they are on disk, without building a configuration or
/// judging them (`keyward status`; the listener's own dates are [`ReloadableTls::dates`]).
pub fn dates_of_files(
    cert: Option<&Path>,
    client_ca: &[PathBuf],
    crls: &[PathBuf],
) -> Result<TlsDates, TlsError> {
    let mut dates = TlsDates::default();
    if let Some(cert) = cert {
        dates.server_not_after = dates::earliest_not_after(&load_certs(cert)?);
    }
    for path in client_ca {
        if let Some(t) = dates::earliest_not_after(&load_certs(path)?) {
            dates.client_ca_not_after = Some(dates.client_ca_not_after.map_or(t, |e| e.min(t)));
        }
    }
    for path in crls {
        for crl in read_crls(path)? {
            use x509_parser::prelude::*;
            let (_, parsed) = CertificateRevocationList::from_der(crl.as_ref())
                .map_err(|e| file_err(path, format!("not a CRL: {e}")))?;
            dates.crls.push(CrlDates {
                file: path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                this_update: parsed.last_update().timestamp(),
                next_update: parsed.next_update().map(|n| n.timestamp()),
            });
        }
    }
    Ok(dates)
}

/// Refuses (or warns about) a CRL past `nextUpdate`: a CRL nobody refreshes stops
/// revoking the certificates revoked after it was issued. Returns its dates, for the
/// age and expiry metrics.
fn check_crl_freshness(
    path: &Path,
    crl: &CertificateRevocationListDer<'_>,
    expired: CrlExpired,
) -> Result<CrlDates, TlsError> {
    use x509_parser::prelude::*;
    let (_, parsed) = CertificateRevocationList::from_der(crl.as_ref())
        .map_err(|e| file_err(path, format!("not a CRL: {e}")))?;
    let now = x509_parser::time::ASN1Time::now();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dates = CrlDates {
        file: name,
        this_update: parsed.last_update().timestamp(),
        next_update: parsed.next_update().map(|n| n.timestamp()),
    };
    let Some(next) = parsed.next_update() else {
        return Ok(dates);
    };
    if next.timestamp() >= now.timestamp() {
        return Ok(dates);
    }
    let next_update = next.to_string();
    match expired {
        CrlExpired::Refuse => Err(TlsError::CrlExpired {
            path: path.to_path_buf(),
            next_update,
        }),
        CrlExpired::Warn => {
            tracing::warn!(crl = %path.display(), %next_update, "CRL is past its nextUpdate; accepted because api.crl_expired = \"warn\"");
            Ok(dates)
        }
    }
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
    Ok(ReloadableTls::webhook(cert, key)?.server_config())
}

/// Mutual TLS for the signing API: a client certificate from `client_ca` is required.
pub fn api_server(
    cert: &Path,
    key: &Path,
    client_ca: &[PathBuf],
    crls: &[PathBuf],
    tls12: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    Ok(ReloadableTls::api(
        cert,
        key,
        client_ca,
        crls,
        tls12,
        ClientCertPolicy::default(),
    )?
    .server_config())
}

/// The served certificate and key, and the chain's earliest `notAfter`.
fn certified_key(cert: &Path, key: &Path) -> Result<(Arc<CertifiedKey>, Option<i64>), TlsError> {
    let signing = provider()
        .key_provider
        .load_private_key(load_key(key)?)
        .map_err(|e| file_err(key, e))?;
    let chain = load_certs(cert)?;
    let not_after = dates::earliest_not_after(&chain);
    Ok((Arc::new(CertifiedKey::new(chain, signing)), not_after))
}

/// A client verifier and the dates of what it trusts (CAs) and revokes (CRLs).
type Verifier = (Arc<dyn ClientCertVerifier>, Option<i64>, Vec<CrlDates>);

fn client_verifier(
    client_ca: &[PathBuf],
    crls: &[PathBuf],
    policy: ClientCertPolicy,
) -> Result<Verifier, TlsError> {
    if client_ca.is_empty() {
        return Err(TlsError::Missing(
            "api.client_ca must name at least one CA bundle",
        ));
    }
    let mut roots = RootCertStore::empty();
    let mut ca_not_after: Option<i64> = None;
    for path in client_ca {
        let certs = load_certs(path)?;
        if let Some(t) = dates::earliest_not_after(&certs) {
            ca_not_after = Some(ca_not_after.map_or(t, |e| e.min(t)));
        }
        for c in certs {
            roots.add(c).map_err(|e| file_err(path, e))?;
        }
    }
    let (crls, crl_dates) = load_crls(crls, policy.crl_expired)?;
    let mut builder =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).with_crls(crls);
    if policy.crl_expired == CrlExpired::Refuse {
        // a CRL that expires while serving stops admitting clients rather than silently
        // no longer revoking
        builder = builder.enforce_revocation_expiration();
    }
    let verifier = builder
        .build()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    Ok((verifier, ca_not_after, crl_dates))
}

/// A face's TLS material that SIGHUP can replace while the listener keeps running:
/// new connections use the new certificate, CA bundle and CRLs; open ones are untouched.
#[derive(Debug)]
pub struct ReloadableTls {
    cert: Arc<CertSlot>,
    verifier: Option<Arc<VerifierSlot>>,
    config: Arc<ServerConfig>,
    dates: RwLock<TlsDates>,
}

#[derive(Debug)]
struct CertSlot(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[derive(Debug)]
struct VerifierSlot(RwLock<(Arc<dyn ClientCertVerifier>, ClientCertPolicy)>);

impl VerifierSlot {
    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    fn policy(&self) -> ClientCertPolicy {
        self.0.read().unwrap_or_else(|p| p.into_inner()).1
    }
}

impl ClientCertVerifier for VerifierSlot {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // The hint list cannot be borrowed through the lock; it is optional (clients with a
    // single certificate ignore it), so none is sent.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .current()
            .verify_client_cert(end_entity, intermediates, now)?;
        // an identity must be unambiguous: which of several URIs would the grants mean?
        if !self.policy().allow_multiple_uri_sans && uri_sans(end_entity).len() > 1 {
            return Err(rustls::Error::General(
                "the client certificate has more than one URI SAN (set api.allow_multiple_uri_sans to accept it)".into(),
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

impl ReloadableTls {
    /// Server-auth TLS (webhook face).
    pub fn webhook(cert: &Path, key: &Path) -> Result<ReloadableTls, TlsError> {
        let (certified, not_after) = certified_key(cert, key)?;
        let slot = Arc::new(CertSlot(RwLock::new(certified)));
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(true))
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(slot.clone());
        let dates = TlsDates {
            server_not_after: not_after,
            ..TlsDates::default()
        };
        Ok(ReloadableTls::finish(cfg, slot, None, dates))
    }

    /// Mutual TLS (signing API).
    pub fn api(
        cert: &Path,
        key: &Path,
        client_ca: &[PathBuf],
        crls: &[PathBuf],
        tls12: bool,
        policy: ClientCertPolicy,
    ) -> Result<ReloadableTls, TlsError> {
        let (certified, server_not_after) = certified_key(cert, key)?;
        let slot = Arc::new(CertSlot(RwLock::new(certified)));
        let (client, client_ca_not_after, crls) = client_verifier(client_ca, crls, policy)?;
        let verifier = Arc::new(VerifierSlot(RwLock::new((client, policy))));
        let dates = TlsDates {
            server_not_after,
            client_ca_not_after,
            crls,
        };
        let cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions(tls12))
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier.clone())
            .with_cert_resolver(slot.clone());
        Ok(ReloadableTls::finish(cfg, slot, Some(verifier), dates))
    }

    fn finish(
        mut cfg: ServerConfig,
        cert: Arc<CertSlot>,
        verifier: Option<Arc<VerifierSlot>>,
        dates: TlsDates,
    ) -> ReloadableTls {
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        ReloadableTls {
            cert,
            verifier,
            config: Arc::new(cfg),
            dates: RwLock::new(dates),
        }
    }

    /// The validity dates of the material in force (for the expiry metrics).
    pub fn dates(&self) -> TlsDates {
        self.dates.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The rustls config to accept with (it follows reloads).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    /// Loads new material; on any error nothing changes.
    pub fn reload(
        &self,
        cert: &Path,
        key: &Path,
        client_ca: &[PathBuf],
        crls: &[PathBuf],
        policy: ClientCertPolicy,
    ) -> Result<(), TlsError> {
        let (new_cert, server_not_after) = certified_key(cert, key)?;
        let new_verifier = match &self.verifier {
            Some(_) => Some(client_verifier(client_ca, crls, policy)?),
            None => None,
        };
        *self.cert.0.write().unwrap_or_else(|p| p.into_inner()) = new_cert;
        let mut dates = TlsDates {
            server_not_after,
            ..TlsDates::default()
        };
        if let (Some(slot), Some((v, ca_not_after, crl_dates))) = (&self.verifier, new_verifier) {
            *slot.0.write().unwrap_or_else(|p| p.into_inner()) = (v, policy);
            dates.client_ca_not_after = ca_not_after;
            dates.crls = crl_dates;
        }
        *self.dates.write().unwrap_or_else(|p| p.into_inner()) = dates;
        Ok(())
    }
}

fn uri_sans(cert: &CertificateDer<'_>) -> Vec<String> {
    use x509_parser::prelude::*;
    let Ok((_, parsed)) = X509Certificate::from_der(cert.as_ref()) else {
        return Vec::new();
    };
    match parsed.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::URI(uri) => Some(uri.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// The typed identity of a verified client certificate: `uri:<URI SAN>` (e.g. a SPIFFE
/// id) when it has one, else `cn:<subject CN>`. The kind is part of the identity, so a
/// certificate whose CN spells a URI can never be taken for the holder of that URI. An
/// empty (or blank) CN is no identity: such a client is `unauthenticated`, not a client
/// named "" with audit records whose actor is empty.
pub fn client_identity(cert: &CertificateDer<'_>) -> Option<String> {
    use x509_parser::prelude::*;
    if let Some(uri) = uri_sans(cert).into_iter().next() {
        return Some(crate::identity::Identity::Uri(uri).to_string());
    }
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).ok()?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .filter(|cn| !cn.trim().is_empty())?;
    Some(crate::identity::Identity::Cn(cn.to_owned()).to_string())
}
