//! Custody of delegated material: wrap and unwrap under the token's wrapping key, bound to
//! one wallet.
//!
//! Owns: the zeroizing secret types and the wrapped blob format. A blob is
//! `"KW" | format 1 | key_version u32 BE | iv 12 | ciphertext | tag 16`, sealed with
//! AES-256-GCM in the token, with the AAD binding purpose, wallet id, chain and key
//! version, so a blob copied to another row, another purpose or another key version fails
//! to open. Must never: let unwrapped bytes reach the store, a log line or `Debug`.

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::hsm::{HsmError, Token, GCM_IV_LEN, GCM_TAG_LEN};

const MAGIC: &[u8; 2] = b"KW";
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 2 + 1 + 4;

/// Secret bytes that are wiped on drop and never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// The bytes, for the one call that needs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    fn from(mut z: Zeroizing<Vec<u8>>) -> Self {
        SecretBytes(std::mem::take(&mut *z))
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// What a wrapped blob holds; part of the AAD so blobs cannot be swapped between roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The delegated key share (or complete key).
    Share,
    /// The per-wallet API key.
    ApiKey,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Purpose::Share => "share",
            Purpose::ApiKey => "api-key",
        }
    }
}

/// Which wallet a blob belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Wallet id.
    pub wallet_id: &'a str,
    /// Chain name (`evm`, `solana`).
    pub chain: &'a str,
    /// What the blob holds.
    pub purpose: Purpose,
}

/// Why custody failed. Never carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum CustodyError {
    /// The blob is not in a format this version understands.
    #[error("wrapped blob is malformed ({0})")]
    Malformed(&'static str),
    /// Authentication failed: wrong wallet, chain, purpose, key, or tampering.
    #[error("wrapped blob does not open for this wallet")]
    NotForThisWallet,
    /// The token failed.
    #[error(transparent)]
    Hsm(HsmError),
}

impl From<HsmError> for CustodyError {
    fn from(e: HsmError) -> Self {
        match e {
            HsmError::DecryptFailed => CustodyError::NotForThisWallet,
            other => CustodyError::Hsm(other),
        }
    }
}

fn aad(b: &Binding<'_>, key_version: u32) -> Vec<u8> {
    let mut a = Vec::with_capacity(64);
    a.extend_from_slice(b"keyward/custody/v1\0");
    for part in [b.purpose.tag(), b.wallet_id, b.chain] {
        a.extend_from_slice(&(part.len() as u32).to_be_bytes());
        a.extend_from_slice(part.as_bytes());
    }
    a.extend_from_slice(&key_version.to_be_bytes());
    a
}

/// The key version a blob was wrapped under, read from its header.
pub fn key_version_of(blob: &[u8]) -> Result<u32, CustodyError> {
    if blob.len() < HEADER_LEN + GCM_IV_LEN + GCM_TAG_LEN {
        return Err(CustodyError::Malformed("too short"));
    }
    if &blob[..2] != MAGIC {
        return Err(CustodyError::Malformed("bad magic"));
    }
    if blob[2] != FORMAT {
        return Err(CustodyError::Malformed("unknown format version"));
    }
    Ok(u32::from_be_bytes(blob[3..7].try_into().expect("4 bytes")))
}

/// Wraps `secret` for `binding` under wrapping key `key_version`.
pub fn wrap(
    token: &Token,
    binding: &Binding<'_>,
    key_version: u32,
    secret: &[u8],
) -> Result<Vec<u8>, CustodyError> {
    let sealed = token.seal(key_version, &aad(binding, key_version), secret)?;
    let mut blob = Vec::with_capacity(HEADER_LEN + sealed.len());
    blob.extend_from_slice(MAGIC);
    blob.push(FORMAT);
    blob.extend_from_slice(&key_version.to_be_bytes());
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Unwraps a blob made by [`wrap`] for the same binding.
pub fn unwrap(
    token: &Token,
    binding: &Binding<'_>,
    blob: &[u8],
) -> Result<SecretBytes, CustodyError> {
    let version = key_version_of(blob)?;
    let plain = token.open_sealed(version, &aad(binding, version), &blob[HEADER_LEN..])?;
    Ok(SecretBytes::from(plain))
}

/// [`unwrap`] if a token session is free right now; `None` otherwise (the caller moves
/// the wait off its async worker thread).
pub fn try_unwrap(
    token: &Token,
    binding: &Binding<'_>,
    blob: &[u8],
) -> Option<Result<SecretBytes, CustodyError>> {
    let version = match key_version_of(blob) {
        Ok(v) => v,
        Err(e) => return Some(Err(e)),
    };
    let plain = token.try_open_sealed(version, &aad(binding, version), &blob[HEADER_LEN..])?;
    Some(plain.map(SecretBytes::from).map_err(CustodyError::from))
}

/// Re-wraps a blob under `new_version` (wrapping-key rotation).
pub fn rewrap(
    token: &Token,
    binding: &Binding<'_>,
    blob: &[u8],
    new_version: u32,
) -> Result<Vec<u8>, CustodyError> {
    let secret = unwrap(token, binding, blob)?;
    wrap(token, binding, new_version, secret.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_bytes_debug_is_redacted() {
        let s = SecretBytes::new(b"super-secret-share".to_vec());
        let d = format!("{s:?}");
        assert!(!d.contains("super") && d.contains("18 bytes"), "{d}");
    }

    #[test]
    fn aad_separates_every_field() {
        let b = |w, c, p| Binding {
            wallet_id: w,
            chain: c,
            purpose: p,
        };
        let base = aad(&b("w1", "evm", Purpose::Share), 1);
        assert_ne!(base, aad(&b("w2", "evm", Purpose::Share), 1));
        assert_ne!(base, aad(&b("w1", "solana", Purpose::Share), 1));
        assert_ne!(base, aad(&b("w1", "evm", Purpose::ApiKey), 1));
        assert_ne!(base, aad(&b("w1", "evm", Purpose::Share), 2));
        // length prefixes stop "ab"+"c" from equalling "a"+"bc"
        assert_ne!(
            aad(&b("ab", "c", Purpose::Share), 1),
            aad(&b("a", "bc", Purpose::Share), 1)
        );
    }

    #[test]
    fn header_is_checked() {
        assert!(key_version_of(b"short").is_err());
        let mut blob = vec![b'K', b'W', 1, 0, 0, 0, 7];
        blob.extend([0u8; 28]);
        assert_eq!(key_version_of(&blob).unwrap(), 7);
        blob[2] = 9;
        assert!(key_version_of(&blob).is_err());
    }
}
