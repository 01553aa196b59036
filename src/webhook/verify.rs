//! The delivery signature: `x-dynamic-signature-256: sha256=<hex>`, HMAC-SHA256 of the
//! raw body keyed with the webhook secret's UTF-8 bytes.
//!
//! Must never: parse the body before this check passes, compare MACs in variable time,
//! or put a secret or a computed MAC in an error or a log line.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-dynamic-signature-256";

/// Why a signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No header, or not `sha256=` followed by 64 hex digits.
    Missing,
    /// Well-formed, but no configured secret produced it.
    Invalid,
}

/// Parses the header value into the 32 MAC bytes.
fn parse_header(value: Option<&[u8]>) -> Result<[u8; 32], SignatureError> {
    let value = value.ok_or(SignatureError::Missing)?;
    let text = std::str::from_utf8(value).map_err(|_| SignatureError::Missing)?;
    let hex_part = text
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Missing)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| SignatureError::Missing)?;
    Ok(out)
}

/// Checks `header` against the HMAC of `body` under each secret; any one matching is
/// enough (rotation). Every secret is tried, so timing does not reveal which matched.
pub fn verify(
    header: Option<&[u8]>,
    body: &[u8],
    secrets: &[SecretString],
) -> Result<(), SignatureError> {
    let given = parse_header(header)?;
    let mut matched = false;
    for secret in secrets {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            .expect("HMAC accepts any key length");
        mac.update(body);
        // verify_slice compares in constant time
        matched |= mac.verify_slice(&given).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Invalid)
    }
}

/// The header value for `body` under `secret` (the vendor's computation).
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_secret_matches() {
        let body = br#"{"eventId":"x"}"#;
        let header = sign(body, "dyn_new");
        let secrets = vec![
            SecretString::from("dyn_old".to_owned()),
            SecretString::from("dyn_new".to_owned()),
        ];
        assert_eq!(verify(Some(header.as_bytes()), body, &secrets), Ok(()));
        assert_eq!(
            verify(Some(header.as_bytes()), b"{}", &secrets),
            Err(SignatureError::Invalid)
        );
        assert_eq!(verify(None, body, &secrets), Err(SignatureError::Missing));
        assert_eq!(
            verify(Some(b"sha1=abcd"), body, &secrets),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(Some(header.as_bytes()), body, &secrets[..1]),
            Err(SignatureError::Invalid)
        );
    }
}
