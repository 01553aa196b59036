//! The vendor's hybrid envelope (`ENCRYPTED` in PROTOCOL.md): strict parsing and
//! decryption.
//!
//! Owns: the accepted `alg` names, the base64url and length rules, RSA key selection by
//! `kid`, the RSA-OAEP unwrap of the content key (always inside the token) and the
//! AES-256-GCM opening of the payload on the host (12- or 16-byte IVs, no AAD).
//! Must never: hand back a plaintext other than as [`SecretBytes`], keep a copy of the
//! content key beyond the call, or say in an error which step of the cryptography failed
//! in a way that leaks more than "this envelope does not open".

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use zeroize::Zeroizing;

use crate::custody::SecretBytes;
use crate::hsm::{HsmError, Token};

/// Length of the AES-256 content key carried in `ek`.
pub const CONTENT_KEY_LEN: usize = 32;
/// GCM tag length the vendor uses.
pub const TAG_LEN: usize = 16;

/// The `alg` values the vendor has been seen to send (all the same scheme).
pub const ACCEPTED_ALGS: [&str; 3] = ["HYBRID-RSA-AES-256", "RSA-OAEP-256", "RSA-OAEP"];

/// An envelope that does not parse or does not open. Carries no secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// A field is missing, of the wrong type, not base64url, or of the wrong length.
    #[error("encrypted field is malformed: {0}")]
    Malformed(String),
    /// `alg` is not one of [`ACCEPTED_ALGS`].
    #[error("encryption algorithm {0:?} is not supported")]
    UnsupportedAlg(String),
    /// No RSA key is configured in the token.
    #[error("no RSA key is configured in the token")]
    NoKey,
    /// `ek` did not decrypt under any configured RSA key.
    #[error("the content key does not decrypt under any configured RSA key")]
    KeyUnwrapFailed,
    /// `ek` decrypted, but not to a 32-byte AES-256 key.
    #[error("the content key is not 32 bytes")]
    ContentKeyLength,
    /// The AES-GCM tag did not verify.
    #[error("the payload does not decrypt (authentication failed)")]
    PayloadDecryptFailed,
    /// The token failed for a reason other than the ciphertext.
    #[error("token: {0}")]
    Hsm(HsmError),
}

impl EnvelopeError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::Malformed(_) => "envelope_malformed",
            EnvelopeError::UnsupportedAlg(_) => "envelope_alg_unsupported",
            EnvelopeError::NoKey => "envelope_no_key",
            EnvelopeError::KeyUnwrapFailed => "envelope_key_unwrap_failed",
            EnvelopeError::ContentKeyLength => "envelope_content_key_invalid",
            EnvelopeError::PayloadDecryptFailed => "envelope_decrypt_failed",
            EnvelopeError::Hsm(e) if e.is_unavailable() => "hsm_unavailable",
            EnvelopeError::Hsm(_) => "hsm_error",
        }
    }

    /// True when the same delivery may succeed later (the token is coming back).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, EnvelopeError::Hsm(e) if e.is_unavailable())
    }
}

/// A parsed `ENCRYPTED` object. Holds only ciphertext.
#[derive(Debug, Clone)]
pub struct Encrypted {
    /// The `alg` as sent.
    pub alg: String,
    /// GCM nonce (12 or 16 bytes).
    pub iv: Vec<u8>,
    /// GCM ciphertext.
    pub ct: Vec<u8>,
    /// GCM tag.
    pub tag: [u8; TAG_LEN],
    /// RSA-OAEP-SHA256 encryption of the content key.
    pub ek: Vec<u8>,
    /// Which registered public key was used, if the vendor said.
    pub kid: Option<String>,
}

fn b64(name: &str, text: &str) -> Result<Vec<u8>, EnvelopeError> {
    // Tolerate trailing padding: the vendor documents none, but some encoders add it.
    let engine = if text.ends_with('=') {
        &URL_SAFE
    } else {
        &URL_SAFE_NO_PAD
    };
    engine
        .decode(text)
        .map_err(|_| EnvelopeError::Malformed(format!("`{name}` is not base64url")))
}

fn string_field<'a>(
    obj: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<&'a str, EnvelopeError> {
    match obj.get(name) {
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(_) => Err(EnvelopeError::Malformed(format!(
            "`{name}` is not a string"
        ))),
        None => Err(EnvelopeError::Malformed(format!("`{name}` is missing"))),
    }
}

/// Parses an `ENCRYPTED` object strictly: required fields present with the right types
/// and lengths, `alg` accepted. Unknown extra fields are tolerated, as at the envelope
/// level, so a vendor addition does not make deliveries fail forever.
pub fn parse(value: &serde_json::Value) -> Result<Encrypted, EnvelopeError> {
    let obj = value
        .as_object()
        .ok_or_else(|| EnvelopeError::Malformed("expected a JSON object".into()))?;
    let alg = string_field(obj, "alg")?;
    if !ACCEPTED_ALGS.contains(&alg) {
        return Err(EnvelopeError::UnsupportedAlg(
            alg.chars().take(40).collect::<String>(),
        ));
    }
    let iv = b64("iv", string_field(obj, "iv")?)?;
    if iv.len() != 12 && iv.len() != 16 {
        return Err(EnvelopeError::Malformed(format!(
            "`iv` is {} bytes; expected 12 or 16",
            iv.len()
        )));
    }
    let ct = b64("ct", string_field(obj, "ct")?)?;
    let tag = b64("tag", string_field(obj, "tag")?)?;
    let tag: [u8; TAG_LEN] = tag.as_slice().try_into().map_err(|_| {
        EnvelopeError::Malformed(format!("`tag` is {} bytes; expected 16", tag.len()))
    })?;
    let ek = b64("ek", string_field(obj, "ek")?)?;
    if ek.is_empty() {
        return Err(EnvelopeError::Malformed("`ek` is empty".into()));
    }
    let kid = match obj.get("kid") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(EnvelopeError::Malformed("`kid` is not a string".into())),
    };
    Ok(Encrypted {
        alg: alg.to_owned(),
        iv,
        ct,
        tag,
        ek,
        kid,
    })
}

/// The RSA key labels to try, in order: the one `kid` names (by label or fingerprint),
/// else every key, newest first. A vendor-assigned `kid` (e.g. `dynamic_rsa_…`) names
/// none of ours, hence the fallback.
fn candidate_labels(token: &Token, kid: Option<&str>) -> Result<Vec<String>, EnvelopeError> {
    // a key rotated in (or retired) by another process since start is seen here
    token.sync_keys().map_err(EnvelopeError::Hsm)?;
    let keys = token.rsa_keys().map_err(EnvelopeError::Hsm)?;
    if keys.is_empty() {
        return Err(EnvelopeError::NoKey);
    }
    let mut labels: Vec<String> = keys.iter().rev().map(|k| k.label.clone()).collect();
    // the key `kid` names goes first, but the others are still tried: a token may report
    // a bad padding in a way that reads like another failure, and a sender may name a
    // key loosely; a decryption failure with every key is the only "cannot decrypt"
    if let Some(kid) = kid {
        if let Some(pos) = keys
            .iter()
            .rev()
            .position(|k| k.label == kid || k.fingerprint().as_deref() == Some(kid))
        {
            let named = labels.remove(pos);
            labels.insert(0, named);
        }
    }
    Ok(labels)
}

/// Recovers the 32-byte content key from `ek` in the token.
fn unwrap_content_key(
    token: &Token,
    enc: &Encrypted,
) -> Result<Zeroizing<[u8; CONTENT_KEY_LEN]>, EnvelopeError> {
    for label in candidate_labels(token, enc.kid.as_deref())? {
        match token.rsa_decrypt(&label, &enc.ek) {
            Ok(key) => {
                if key.len() != CONTENT_KEY_LEN {
                    return Err(EnvelopeError::ContentKeyLength);
                }
                let mut out = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
                out.copy_from_slice(&key);
                return Ok(out);
            }
            Err(HsmError::DecryptFailed) => continue,
            Err(e) => return Err(EnvelopeError::Hsm(e)),
        }
    }
    Err(EnvelopeError::KeyUnwrapFailed)
}

/// Opens the GCM payload on the host with the recovered content key.
pub fn open_payload(
    key: &[u8; CONTENT_KEY_LEN],
    enc: &Encrypted,
) -> Result<SecretBytes, EnvelopeError> {
    let mut buf = Zeroizing::new(enc.ct.clone());
    let key = GenericArray::from_slice(key);
    let tag = GenericArray::from_slice(&enc.tag);
    let ok = match enc.iv.len() {
        12 => AesGcm::<Aes256, U12>::new(key)
            .decrypt_in_place_detached(GenericArray::from_slice(&enc.iv), b"", &mut buf, tag)
            .is_ok(),
        16 => AesGcm::<Aes256, U16>::new(key)
            .decrypt_in_place_detached(GenericArray::from_slice(&enc.iv), b"", &mut buf, tag)
            .is_ok(),
        _ => return Err(EnvelopeError::Malformed("`iv` length".into())),
    };
    if !ok {
        return Err(EnvelopeError::PayloadDecryptFailed);
    }
    Ok(SecretBytes::from(buf))
}

/// Decrypts `enc` (blocking: one or more RSA private operations in the token).
pub fn decrypt_blocking(token: &Token, enc: &Encrypted) -> Result<SecretBytes, EnvelopeError> {
    let key = unwrap_content_key(token, enc)?;
    open_payload(&key, enc)
}

/// Decrypts `enc` off the async executor (an RSA operation costs milliseconds).
pub async fn decrypt(token: Token, enc: Encrypted) -> Result<SecretBytes, EnvelopeError> {
    tokio::task::spawn_blocking(move || decrypt_blocking(&token, &enc))
        .await
        .map_err(|_| {
            EnvelopeError::Hsm(HsmError::Invalid("decryption task was cancelled".into()))
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes_gcm::aead::Aead;

    fn obj(iv: &[u8], tag: &[u8]) -> serde_json::Value {
        serde_json::json!({
            "alg": "HYBRID-RSA-AES-256",
            "iv": URL_SAFE_NO_PAD.encode(iv),
            "ct": URL_SAFE_NO_PAD.encode(b"ciphertext"),
            "tag": URL_SAFE.encode(tag),
            "ek": URL_SAFE_NO_PAD.encode([7u8; 384]),
            "kid": "dynamic_rsa_x",
            "extra": 1
        })
    }

    #[test]
    fn parses_both_iv_lengths_and_padding() {
        for iv in [12usize, 16] {
            let e = parse(&obj(&vec![1u8; iv], &[2u8; 16])).unwrap();
            assert_eq!(e.iv.len(), iv);
            assert_eq!(e.kid.as_deref(), Some("dynamic_rsa_x"));
        }
    }

    #[test]
    fn refuses_bad_fields() {
        assert!(matches!(
            parse(&obj(&[1u8; 8], &[2u8; 16])),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            parse(&obj(&[1u8; 12], &[2u8; 12])),
            Err(EnvelopeError::Malformed(_))
        ));
        let mut v = obj(&[1u8; 12], &[2u8; 16]);
        v["alg"] = "A256GCM".into();
        assert_eq!(parse(&v).unwrap_err().code(), "envelope_alg_unsupported");
        let mut v = obj(&[1u8; 12], &[2u8; 16]);
        v["ct"] = "not base64!".into();
        assert_eq!(parse(&v).unwrap_err().code(), "envelope_malformed");
        let mut v = obj(&[1u8; 12], &[2u8; 16]);
        v.as_object_mut().unwrap().remove("ek");
        assert!(
            matches!(parse(&v), Err(EnvelopeError::Malformed(ref m)) if m.contains("`ek` is missing"))
        );
        assert!(matches!(
            parse(&serde_json::json!("x")),
            Err(EnvelopeError::Malformed(ref m)) if m.contains("expected a JSON object")
        ));
    }

    #[test]
    fn opens_gcm_with_either_iv() {
        let key = [9u8; 32];
        for iv_len in [12usize, 16] {
            let iv = vec![3u8; iv_len];
            let sealed = if iv_len == 12 {
                AesGcm::<Aes256, U12>::new(GenericArray::from_slice(&key))
                    .encrypt(GenericArray::from_slice(&iv), b"hello".as_ref())
                    .unwrap()
            } else {
                AesGcm::<Aes256, U16>::new(GenericArray::from_slice(&key))
                    .encrypt(GenericArray::from_slice(&iv), b"hello".as_ref())
                    .unwrap()
            };
            let (ct, tag) = sealed.split_at(sealed.len() - 16);
            let mut enc = Encrypted {
                alg: "RSA-OAEP-256".into(),
                iv,
                ct: ct.to_vec(),
                tag: tag.try_into().unwrap(),
                ek: vec![1],
                kid: None,
            };
            assert_eq!(open_payload(&key, &enc).unwrap().expose(), b"hello");
            enc.tag[0] ^= 1;
            assert!(matches!(
                open_payload(&key, &enc),
                Err(EnvelopeError::PayloadDecryptFailed)
            ));
        }
    }
}
