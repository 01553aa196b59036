//! The validity dates a face's TLS material carries (certificate `notAfter`, CRL
//! `thisUpdate`/`nextUpdate`), kept with the material in force so the expiry metrics
//! describe what the listener serves, not what lies on disk waiting for a SIGHUP.

use rustls::pki_types::CertificateDer;

/// Dates of one face's TLS material, in Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsDates {
    /// The earliest `notAfter` of the served certificate chain.
    pub server_not_after: Option<i64>,
    /// The earliest `notAfter` among the client-CA bundles (signing API only).
    pub client_ca_not_after: Option<i64>,
    /// Each loaded CRL (signing API only).
    pub crls: Vec<CrlDates>,
}

/// One loaded CRL's dates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlDates {
    /// The CRL's file name (not its path: a bounded, non-secret label).
    pub file: String,
    /// `thisUpdate`.
    pub this_update: i64,
    /// `nextUpdate`, when the CRL has one.
    pub next_update: Option<i64>,
}

/// The earliest `notAfter` of `certs` (None when none parses: the handshake code judges
/// such a certificate; the metric only has nothing to say about it).
pub(super) fn earliest_not_after(certs: &[CertificateDer<'_>]) -> Option<i64> {
    use x509_parser::prelude::*;
    certs
        .iter()
        .filter_map(|c| X509Certificate::from_der(c.as_ref()).ok())
        .map(|(_, parsed)| parsed.validity().not_after.timestamp())
        .min()
}
