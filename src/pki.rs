//! A small certificate authority for development and tests (`keyward dev pki`).
//!
//! Production deployments bring their own PKI; this exists so that `scripts/dev-up` and
//! the test suite use real X.509 and real mTLS without shelling out to openssl.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// PKI generation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// Writing files.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A CA that can issue server and client certificates and CRLs.
pub struct DevCa {
    params: CertificateParams,
    key: KeyPair,
    /// CA certificate, PEM.
    pub cert_pem: String,
}

/// An issued certificate with its key.
pub struct Issued {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 private key PEM.
    pub key_pem: String,
    /// Serial number (for CRLs).
    pub serial: u64,
}

/// Validity of an issued certificate.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// Valid from yesterday for ten years.
    Current,
    /// Expired yesterday.
    Expired,
    /// Valid only from next year.
    NotYetValid,
}

impl DevCa {
    /// A fresh CA named `name`.
    pub fn new(name: &str) -> Result<DevCa, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let key = KeyPair::generate()?;
        let cert_pem = params.self_signed(&key)?.pem();
        Ok(DevCa {
            params,
            key,
            cert_pem,
        })
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        cn: &str,
        validity: Validity,
        serial: u64,
    ) -> Result<Issued, PkiError> {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.serial_number = Some(SerialNumber::from(serial));
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (now - Duration::days(1), now + Duration::days(3650)),
            Validity::Expired => (now - Duration::days(30), now - Duration::days(1)),
            Validity::NotYetValid => (now + Duration::days(365), now + Duration::days(730)),
        };
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&self, names: &[&str], serial: u64) -> Result<Issued, PkiError> {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(
            params,
            names.first().copied().unwrap_or("keyward"),
            Validity::Current,
            serial,
        )
    }

    /// A client certificate with subject CN `cn` and, optionally, a URI SAN.
    pub fn client(
        &self,
        cn: &str,
        uri: Option<&str>,
        validity: Validity,
        serial: u64,
    ) -> Result<Issued, PkiError> {
        self.client_with_uris(cn, uri.as_slice(), validity, serial)
    }

    /// A client certificate with any number of URI SANs (tests of ambiguous identities).
    pub fn client_with_uris(
        &self,
        cn: &str,
        uris: &[&str],
        validity: Validity,
        serial: u64,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = uris
            .iter()
            .map(|u| Ok(SanType::URI((*u).try_into()?)))
            .collect::<Result<_, PkiError>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params, cn, validity, serial)
    }

    /// A CRL revoking `serials`, PEM, valid for the next 30 days.
    pub fn crl(&self, serials: &[u64]) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        self.crl_between(serials, now - Duration::hours(1), now + Duration::days(30))
    }

    /// A CRL whose `nextUpdate` passed yesterday (nobody refreshed it).
    pub fn expired_crl(&self, serials: &[u64]) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        self.crl_between(serials, now - Duration::days(8), now - Duration::days(1))
    }

    fn crl_between(
        &self,
        serials: &[u64],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, PkiError> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: now - Duration::hours(1),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        Ok(params.signed_by(&issuer)?.pem()?)
    }
}

/// Writes `text` to `path` with mode 0600.
pub fn write_private(path: &Path, text: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| PkiError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)
}

/// The dev layout: `ca.pem`, `server.pem`/`server.key`, `client.pem`/`client.key` (CN
/// `dev-client`). Existing files are kept.
pub fn write_dev_pki(dir: &Path) -> Result<bool, PkiError> {
    if dir.join("ca.pem").exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let ca = DevCa::new("keyward dev CA")?;
    let server = ca.server(&["localhost", "127.0.0.1", "::1"], 2)?;
    let client = ca.client("dev-client", None, Validity::Current, 3)?;
    write_private(&dir.join("ca.pem"), &ca.cert_pem)?;
    write_private(&dir.join("server.pem"), &server.cert_pem)?;
    write_private(&dir.join("server.key"), &server.key_pem)?;
    write_private(&dir.join("client.pem"), &client.cert_pem)?;
    write_private(&dir.join("client.key"), &client.key_pem)?;
    // the CA key is not kept: dev certificates are re-made by deleting the directory
    Ok(true)
}
