//! secp256k1 ECDSA for the local engine and the signer's check, on Bitcoin Core's
//! libsecp256k1 (the `secp256k1` crate, which vendors and builds the C library).
//!
//! Why not `k256` here: on the request path libsecp256k1 signs a prehash in about half
//! the time and recovers a public key in about a fifth (see BENCHMARKS.md), and it is
//! constant-time and the most reviewed secp256k1 implementation there is. `k256` stays
//! where alloy's types need it (parsing, transaction encoding, wallet creation).
//!
//! One context serves the whole process: creating one builds its tables (tens of µs
//! and a few KiB), and libsecp256k1's contexts are safe to share between threads for
//! signing and verification. It is randomized once from the OS CSPRNG, which blinds
//! the signing arithmetic against side channels.
//!
//! Must never: keep a secret key past the call, or put secret bytes in an error.

use std::sync::LazyLock;

use alloy_primitives::{Address, B256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use zeroize::Zeroizing;

use crate::chains::evm::RecoverableSig;

static CONTEXT: LazyLock<Secp256k1<All>> = LazyLock::new(|| {
    let mut ctx = Secp256k1::new();
    let mut seed = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
    ctx.seeded_randomize(&seed);
    ctx
});

/// The process-wide libsecp256k1 context (built on first use).
pub fn context() -> &'static Secp256k1<All> {
    &CONTEXT
}

/// Why bytes could not be used as an EVM key or a signature. Carries no secret bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EcdsaError {
    /// Not 32 bytes, zero, or not below the group order.
    #[error("not a secp256k1 private key")]
    InvalidKey,
    /// libsecp256k1 produced a signature whose nonce point's x overflowed the group
    /// order (probability about 2^-127): Ethereum's `v` cannot express it.
    #[error("the signature cannot be expressed with an Ethereum v")]
    Unexpressible,
    /// `r`/`s` out of range, or no public key recovers from them.
    #[error("public key recovery failed")]
    Unrecoverable,
    /// `(r, s)` is not a valid signature of the digest under the public key.
    #[error("the signature does not verify under the public key")]
    BadSignature,
    /// Not a 65-byte uncompressed SEC1 point on the curve.
    #[error("not an uncompressed secp256k1 public key")]
    InvalidPublicKey,
}

/// A libsecp256k1 secret key made from `secret` for the length of `f`, then erased.
///
/// Residual risk, accepted: `secp256k1::SecretKey` is `Copy` and is built from an array
/// passed by value, so the compiler may leave copies of the 32 bytes in stack slots that
/// neither `non_secure_erase` nor `Zeroizing` reach (they are overwritten by later
/// calls, not wiped). The bytes this module is given stay in the caller's zeroizing
/// buffer; the scalar libsecp256k1 expands internally is cleared by the library itself.
fn with_secret_key<T>(secret: &[u8], f: impl FnOnce(&SecretKey) -> T) -> Result<T, EcdsaError> {
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(secret.try_into().map_err(|_| EcdsaError::InvalidKey)?);
    let mut key = SecretKey::from_byte_array(*bytes).map_err(|_| EcdsaError::InvalidKey)?;
    let out = f(&key);
    key.non_secure_erase();
    Ok(out)
}

/// A recoverable signature of the 32-byte `digest` by the key `secret`, in Ethereum form.
///
/// RFC 6979 nonces, and libsecp256k1 always returns low-s (EIP-2), so no normalisation
/// is needed. Unverified: the caller proves it recovers to the wallet.
pub fn sign_prehash(secret: &[u8], digest: &B256) -> Result<RecoverableSig, EcdsaError> {
    let sig = with_secret_key(secret, |key| {
        context().sign_ecdsa_recoverable(Message::from_digest(digest.0), key)
    })?;
    let (recid, compact) = sig.serialize_compact();
    let y_parity = match recid {
        RecoveryId::Zero => false,
        RecoveryId::One => true,
        RecoveryId::Two | RecoveryId::Three => return Err(EcdsaError::Unexpressible),
    };
    let mut r = [0u8; 32];
    let mut s = [0u8; 32];
    r.copy_from_slice(&compact[..32]);
    s.copy_from_slice(&compact[32..]);
    Ok(RecoverableSig { r, s, y_parity })
}

/// The public key that `sig` recovers to over `digest` (what `ecrecover` computes).
pub fn recover(digest: &B256, sig: &RecoverableSig) -> Result<PublicKey, EcdsaError> {
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r);
    compact[32..].copy_from_slice(&sig.s);
    let recid = if sig.y_parity {
        RecoveryId::One
    } else {
        RecoveryId::Zero
    };
    let sig = RecoverableSignature::from_compact(&compact, recid)
        .map_err(|_| EcdsaError::Unrecoverable)?;
    context()
        .recover_ecdsa(Message::from_digest(digest.0), &sig)
        .map_err(|_| EcdsaError::Unrecoverable)
}

/// Checks `(r, s)` over `digest` under `public_key` (low-s only, as libsecp256k1 and
/// EIP-2 require). The y-parity is not part of this check.
pub fn verify(
    digest: &B256,
    sig: &RecoverableSig,
    public_key: &PublicKey,
) -> Result<(), EcdsaError> {
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r);
    compact[32..].copy_from_slice(&sig.s);
    let sig = secp256k1::ecdsa::Signature::from_compact(&compact)
        .map_err(|_| EcdsaError::BadSignature)?;
    context()
        .verify_ecdsa(Message::from_digest(digest.0), &sig, public_key)
        .map_err(|_| EcdsaError::BadSignature)
}

/// The address that `sig` recovers to over `digest`.
pub fn recover_address(digest: &B256, sig: &RecoverableSig) -> Result<Address, EcdsaError> {
    recover(digest, sig).map(|pk| address_of(&pk))
}

/// The Ethereum address of a public key: the last 20 bytes of keccak256(x ‖ y).
pub fn address_of(pk: &PublicKey) -> Address {
    Address::from_raw_public_key(&pk.serialize_uncompressed()[1..])
}

/// The uncompressed SEC1 public key (65 bytes, `04 ‖ x ‖ y`) of the key `secret`: what
/// a wallet row stores so no request has to derive it.
pub fn public_key_of_secret(secret: &[u8]) -> Result<[u8; 65], EcdsaError> {
    with_secret_key(secret, |key| {
        PublicKey::from_secret_key(context(), key).serialize_uncompressed()
    })
}

/// Parses a stored 65-byte uncompressed public key (checks it is on the curve).
pub fn parse_public_key(bytes: &[u8]) -> Result<PublicKey, EcdsaError> {
    if bytes.len() != 65 || bytes[0] != 4 {
        return Err(EcdsaError::InvalidPublicKey);
    }
    PublicKey::from_slice(bytes).map_err(|_| EcdsaError::InvalidPublicKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, keccak256};
    use k256::ecdsa::SigningKey;

    fn k256_sign(secret: &[u8; 32], digest: &B256) -> RecoverableSig {
        crate::chains::evm::sign_digest(&SigningKey::from_bytes(secret.into()).unwrap(), digest)
    }

    #[test]
    fn same_signature_as_k256_for_many_keys_and_digests() {
        // RFC 6979 is deterministic and both libraries normalise to low-s: the bytes must
        // be identical, so the known-answer tests written against k256 carry over
        for i in 0u8..64 {
            let secret = keccak256([i, 1]).0;
            let digest = keccak256([i, 2]);
            let ours = sign_prehash(&secret, &digest).unwrap();
            assert_eq!(ours, k256_sign(&secret, &digest), "key {i}");
            let expected = SigningKey::from_bytes((&secret).into()).unwrap();
            assert_eq!(
                recover_address(&digest, &ours).unwrap(),
                crate::chains::evm::address_of(expected.verifying_key())
            );
        }
    }

    #[test]
    fn eip155_example_key_signs_and_recovers() {
        // the EIP-155 example key 0x4646..46 and its address
        let secret = [0x46u8; 32];
        let digest = keccak256(b"keyward");
        let sig = sign_prehash(&secret, &digest).unwrap();
        assert_eq!(
            recover_address(&digest, &sig).unwrap(),
            address!("9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")
        );
        let pk = public_key_of_secret(&secret).unwrap();
        assert_eq!(
            address_of(&parse_public_key(&pk).unwrap()),
            address!("9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")
        );
    }

    #[test]
    fn verifies_under_its_own_key_only() {
        let digest = keccak256(b"keyward");
        let sig = sign_prehash(&[0x46u8; 32], &digest).unwrap();
        let mine = parse_public_key(&public_key_of_secret(&[0x46u8; 32]).unwrap()).unwrap();
        let other = parse_public_key(&public_key_of_secret(&[0x47u8; 32]).unwrap()).unwrap();
        assert_eq!(verify(&digest, &sig, &mine), Ok(()));
        assert_eq!(verify(&digest, &sig, &other), Err(EcdsaError::BadSignature));
        assert_eq!(
            verify(&keccak256(b"other"), &sig, &mine),
            Err(EcdsaError::BadSignature)
        );
    }

    #[test]
    fn wrong_parity_or_digest_recovers_another_address() {
        let secret = [0x46u8; 32];
        let digest = keccak256(b"keyward");
        let mut sig = sign_prehash(&secret, &digest).unwrap();
        let me = recover_address(&digest, &sig).unwrap();
        assert_ne!(recover_address(&keccak256(b"other"), &sig).unwrap(), me);
        sig.y_parity = !sig.y_parity;
        assert_ne!(recover_address(&digest, &sig).unwrap(), me);
    }

    #[test]
    fn bad_inputs_are_refused() {
        let digest = keccak256(b"keyward");
        assert_eq!(
            sign_prehash(&[0u8; 32], &digest),
            Err(EcdsaError::InvalidKey)
        );
        assert_eq!(
            sign_prehash(&[0xffu8; 32], &digest),
            Err(EcdsaError::InvalidKey)
        );
        assert_eq!(
            sign_prehash(&[1u8; 31], &digest),
            Err(EcdsaError::InvalidKey)
        );
        let zero = RecoverableSig {
            r: [0; 32],
            s: [0; 32],
            y_parity: false,
        };
        assert_eq!(recover(&digest, &zero), Err(EcdsaError::Unrecoverable));
        let over = RecoverableSig {
            r: [0xff; 32],
            s: [1; 32],
            y_parity: false,
        };
        assert_eq!(recover(&digest, &over), Err(EcdsaError::Unrecoverable));
        assert_eq!(
            parse_public_key(&[4u8; 65]).unwrap_err(),
            EcdsaError::InvalidPublicKey
        );
        let pk = public_key_of_secret(&[0x46u8; 32]).unwrap();
        assert_eq!(
            parse_public_key(&pk[..64]).unwrap_err(),
            EcdsaError::InvalidPublicKey
        );
    }
}
