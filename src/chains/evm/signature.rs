//! Recoverable secp256k1 signatures: the 65-byte `r || s || v` form, recovery and the
//! check that a signature belongs to an address.

use super::*;

/// A secp256k1 signature in Ethereum form: low-s, with the y-parity needed
/// for `ecrecover`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoverableSig {
    pub r: [u8; 32],
    pub s: [u8; 32],
    pub y_parity: bool,
}

impl RecoverableSig {
    /// Normalises to low-s (EIP-2 rejects high-s transactions). Negating `s`
    /// reflects the nonce point, so the y-parity flips with it.
    pub fn from_k256(sig: &k256::ecdsa::Signature, recid: k256::ecdsa::RecoveryId) -> Self {
        let (sig, y_parity) = match sig.normalize_s() {
            Some(low) => (low, !recid.is_y_odd()),
            None => (*sig, recid.is_y_odd()),
        };
        let (r, s) = sig.split_bytes();
        Self {
            r: r.into(),
            s: s.into(),
            y_parity,
        }
    }

    /// For HSMs that return only `(r, s)`: normalises to low-s and finds the
    /// parity under which the signature recovers to `expected`, failing if
    /// neither does (wrong key, wrong digest, or corrupted response).
    pub fn from_rs_recovering(
        digest: &B256,
        r: [u8; 32],
        s: [u8; 32],
        expected: Address,
    ) -> Result<Self, EvmError> {
        let sig = k256::ecdsa::Signature::from_scalars(r, s)
            .map_err(|_| EvmError::InvalidSignature("r or s out of range".into()))?;
        let (r, s) = sig.normalize_s().unwrap_or(sig).split_bytes();
        let mut last = None;
        for y_parity in [false, true] {
            let cand = Self {
                r: r.into(),
                s: s.into(),
                y_parity,
            };
            match verify_signer(digest, &cand, expected) {
                Ok(()) => return Ok(cand),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| EvmError::InvalidSignature("unrecoverable".into())))
    }

    /// `r ‖ s ‖ v` with `v ∈ {27, 28}`, the form `personal_sign` and
    /// `eth_signTypedData_v4` return.
    pub fn to_rsv_65(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        out[..32].copy_from_slice(&self.r);
        out[32..64].copy_from_slice(&self.s);
        out[64] = 27 + u8::from(self.y_parity);
        out
    }

    pub fn to_alloy(self) -> Signature {
        Signature::new(
            U256::from_be_bytes(self.r),
            U256::from_be_bytes(self.s),
            self.y_parity,
        )
    }
}

/// Recovers the signer address of a prehashed digest.
pub fn recover_address(digest: &B256, sig: &RecoverableSig) -> Result<Address, EvmError> {
    sig.to_alloy()
        .recover_address_from_prehash(digest)
        .map_err(|_| EvmError::InvalidSignature("public key recovery failed".into()))
}

pub(super) fn verify_signer(
    digest: &B256,
    sig: &RecoverableSig,
    expected: Address,
) -> Result<(), EvmError> {
    let recovered = recover_address(digest, sig)?;
    if recovered != expected {
        return Err(EvmError::SignerMismatch {
            expected,
            recovered,
        });
    }
    Ok(())
}

pub fn address_of(vk: &k256::ecdsa::VerifyingKey) -> Address {
    Address::from_public_key(vk)
}

/// Software signing for development keys and tests; production keys sign in
/// the HSM and come back through [`RecoverableSig::from_rs_recovering`].
pub fn sign_digest(sk: &k256::ecdsa::SigningKey, digest: &B256) -> RecoverableSig {
    // RFC 6979 retries internally; with a 32-byte prehash the only error path
    // (prehash shorter than half the field) cannot occur.
    let (sig, recid) = sk
        .sign_prehash_recoverable(digest.as_slice())
        .expect("32-byte prehash is always signable");
    RecoverableSig::from_k256(&sig, recid)
}
