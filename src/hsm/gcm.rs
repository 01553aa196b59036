//! AES-256-GCM under a wrapping key, done the way every token allows: the IV the token
//! actually used is read back from the mechanism parameters after `C_Encrypt`, and a
//! freshly sealed blob is opened again in the token before anyone may store it.
//!
//! Why both: AWS CloudHSM (and FIPS-mode Luna, as NIST SP 800-38D asks of a module)
//! ignores the IV passed in and writes the one it generated into `CK_GCM_PARAMS.pIv`.
//! Storing the host's copy would make every blob unopenable while the webhook answered
//! 200. The open-after-seal check catches that and any other way a token's output could
//! differ from what it was given, before the vendor stops redelivering.
//!
//! Must never: return a sealed blob that did not open to the same plaintext.

use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use std::sync::atomic::{AtomicU8, Ordering};

use super::error::{classify, is_mechanism_refusal, HsmError};
use super::{GCM_IV_LEN, GCM_TAG_LEN};
use crate::config::GcmIvMode;

/// The largest plaintext keyward seals in one operation. AWS CloudHSM caps a single
/// AES-GCM `C_Encrypt` at 16,224 bytes; keyward keeps one limit on every token so that a
/// store written on one token can move to another (`wallets rewrap`).
pub const MAX_SEALED_PLAINTEXT: usize = 16_224;

fn tag_bits() -> cryptoki::types::Ulong {
    ((GCM_TAG_LEN * 8) as u64).into()
}

/// IV mode not decided yet (`gcm_iv = "auto"` before the first seal).
pub(crate) const IV_UNDECIDED: u8 = 0;
/// A random IV from the host.
pub(crate) const IV_HOST: u8 = 1;
/// A zeroed buffer the token fills.
pub(crate) const IV_TOKEN: u8 = 2;

pub(crate) fn iv_mode_of(mode: GcmIvMode) -> u8 {
    match mode {
        GcmIvMode::Auto => IV_UNDECIDED,
        GcmIvMode::Host => IV_HOST,
        GcmIvMode::Token => IV_TOKEN,
    }
}

/// One `C_EncryptInit` + `C_Encrypt` with `iv` as the IV buffer (read back after).
fn encrypt(
    session: &Session,
    key: ObjectHandle,
    aad: &[u8],
    plaintext: &[u8],
    iv: &mut [u8; GCM_IV_LEN],
) -> Result<Vec<u8>, cryptoki::error::Error> {
    let params = GcmParams::new(iv, aad, tag_bits())?;
    session.encrypt(&Mechanism::AesGcm(params), key, plaintext)
}

/// Seals `plaintext` with `key`; returns `iv || ct || tag`, where `iv` is the IV the
/// token used. The blob has been opened again in the token before it is returned.
///
/// `mode` says who picks the IV. Tokens disagree: SoftHSM2 uses the IV it is given, AWS
/// CloudHSM and Google's kmsp11 refuse any IV but a zeroed buffer and write their own
/// into it. Under `auto` the first seal tries a random IV and, if the token refuses the
/// parameters, a zeroed buffer; the answer is kept for the process.
pub(crate) fn seal(
    session: &Session,
    key: ObjectHandle,
    aad: &[u8],
    plaintext: &[u8],
    mode: &AtomicU8,
) -> Result<Vec<u8>, HsmError> {
    if plaintext.len() > MAX_SEALED_PLAINTEXT {
        return Err(HsmError::TooLarge {
            len: plaintext.len(),
            max: MAX_SEALED_PLAINTEXT,
        });
    }
    let mut iv = [0u8; GCM_IV_LEN];
    let decided = mode.load(Ordering::Relaxed);
    if decided != IV_TOKEN {
        rand::rngs::OsRng.fill_bytes(&mut iv);
    }
    let ct = match encrypt(session, key, aad, plaintext, &mut iv) {
        Ok(ct) => {
            if decided == IV_UNDECIDED {
                mode.store(IV_HOST, Ordering::Relaxed);
                tracing::info!("AES-GCM IVs: random from the host, accepted by the token");
            }
            ct
        }
        Err(e) if decided == IV_UNDECIDED && is_mechanism_refusal(&e) => {
            iv = [0u8; GCM_IV_LEN];
            let ct = encrypt(session, key, aad, plaintext, &mut iv).map_err(classify)?;
            mode.store(IV_TOKEN, Ordering::Relaxed);
            tracing::info!(
                "AES-GCM IVs: the token refused one from the host; it generates its own \
                 (pkcs11.gcm_iv = \"token\")"
            );
            ct
        }
        Err(e) => return Err(classify(e)),
    };
    // `iv` now holds what the token wrote through pIv: its own IV where it generates one.
    // An all-zero IV is what a broken token writes back, never a random one: refuse it
    // rather than risk reusing it under the same key.
    if iv.iter().all(|b| *b == 0) {
        return Err(HsmError::SealCheck);
    }
    let mut sealed = Vec::with_capacity(GCM_IV_LEN + ct.len());
    sealed.extend_from_slice(&iv);
    sealed.extend_from_slice(&ct);
    match open(session, key, aad, &sealed) {
        Ok(back) if bool::from(back.as_slice().ct_eq(plaintext)) => Ok(sealed),
        Ok(_) | Err(HsmError::DecryptFailed) => Err(HsmError::SealCheck),
        Err(e) => Err(e),
    }
}

/// Opens `iv || ct || tag` made by [`seal`] with the same `aad`.
pub(crate) fn open(
    session: &Session,
    key: ObjectHandle,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, HsmError> {
    if sealed.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err(HsmError::DecryptFailed);
    }
    let (iv, ct) = sealed.split_at(GCM_IV_LEN);
    let mut iv = <[u8; GCM_IV_LEN]>::try_from(iv).expect("split at IV length");
    let params = GcmParams::new(&mut iv, aad, tag_bits()).map_err(classify)?;
    match session.decrypt(&Mechanism::AesGcm(params), key, ct) {
        Ok(pt) => Ok(Zeroizing::new(pt)),
        // SoftHSM2 reports a bad tag as a generic failure; to the caller it is one thing.
        Err(CkError::Pkcs11(
            RvError::EncryptedDataInvalid | RvError::GeneralError | RvError::FunctionFailed,
            _,
        )) => Err(HsmError::DecryptFailed),
        Err(e) => Err(classify(e)),
    }
}
