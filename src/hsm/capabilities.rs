//! What the token offers, asked once per connection (`C_GetMechanismList` and
//! `C_GetMechanismInfo`), and what keyward needs of it in the configured mode.
//!
//! Why: tokens differ (FIPS-mode HSMs refuse raw RSA; opencryptoki's soft token and the
//! YubiHSM 2 have no AES-GCM for `C_Encrypt`); a gap found at the first webhook delivery
//! costs a delivery, a gap found at start costs one clear line. Must never: guess a
//! capability from the token's name.

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::MechanismType;
use cryptoki::slot::Slot;

use super::error::{classify, HsmError};
use super::keys::KeyKind;
use crate::config::OaepMode;

/// The mechanisms keyward uses, as the token reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `CKM_RSA_PKCS_OAEP` with `CKF_DECRYPT` (the SHA-256 parameters themselves are only
    /// known by trying: see `rsa_oaep = "auto"`).
    pub rsa_oaep: bool,
    /// `CKM_RSA_X_509` with `CKF_DECRYPT` (`rsa_oaep = "raw"`).
    pub rsa_raw: bool,
    /// `CKM_AES_GCM` with `CKF_ENCRYPT` and `CKF_DECRYPT` (every seal and open).
    pub aes_gcm: bool,
    /// `CKM_AES_KEY_GEN` for 32-byte keys (`init`, `keys rotate-wrapping`).
    pub aes_keygen: bool,
    /// `CKM_RSA_PKCS_KEY_PAIR_GEN` (`init`, `keys rotate-rsa`).
    pub rsa_keygen: bool,
}

impl Capabilities {
    /// Asks the token in `slot`.
    pub(crate) fn probe(ctx: &Pkcs11, slot: Slot) -> Result<Capabilities, HsmError> {
        // C_GetMechanismInfo per mechanism rather than C_GetMechanismList: the list makes
        // cryptoki log an error for every vendor mechanism it has no name for
        let mut failure = None;
        let mut info = |m: MechanismType| match ctx.get_mechanism_info(slot, m) {
            Ok(i) => Some(i),
            Err(cryptoki::error::Error::Pkcs11(cryptoki::error::RvError::MechanismInvalid, _)) => {
                None
            }
            Err(e) => {
                failure.get_or_insert(e);
                None
            }
        };
        let caps = Capabilities {
            rsa_oaep: info(MechanismType::RSA_PKCS_OAEP).is_some_and(|i| i.decrypt()),
            rsa_raw: info(MechanismType::RSA_X_509).is_some_and(|i| i.decrypt()),
            aes_gcm: info(MechanismType::AES_GCM).is_some_and(|i| i.encrypt() && i.decrypt()),
            // key sizes are in bytes for AES (PKCS#11 2.40, CK_MECHANISM_INFO)
            aes_keygen: info(MechanismType::AES_KEY_GEN)
                .is_some_and(|i| i.generate() && i.max_key_size() >= 32),
            rsa_keygen: info(MechanismType::RSA_PKCS_KEY_PAIR_GEN)
                .is_some_and(|i| i.generate_key_pair()),
        };
        match failure {
            // a token that cannot answer is an outage, not a missing mechanism
            Some(e) => Err(classify(e)),
            None => Ok(caps),
        }
    }

    /// The first thing the token lacks for serving in `mode`, as one line that names the
    /// setting that fixes it (or says none does); `None` when nothing is missing.
    pub fn serving_gap(&self, mode: OaepMode) -> Option<String> {
        if !self.aes_gcm {
            return Some(
                "the token has no CKM_AES_GCM for C_Encrypt/C_Decrypt, which keyward seals every \
                 share and API key with; no setting works around it: use a token that offers \
                 AES-GCM (docs/hsms.md)"
                    .into(),
            );
        }
        match mode {
            OaepMode::Raw if !self.rsa_raw => Some(
                "the token refuses raw RSA (CKM_RSA_X_509), which pkcs11.rsa_oaep = \"raw\" needs \
                 (FIPS-mode tokens do): set pkcs11.rsa_oaep = \"native\" or \"auto\""
                    .into(),
            ),
            OaepMode::Native if !self.rsa_oaep => Some(
                "the token has no CKM_RSA_PKCS_OAEP for C_Decrypt, which pkcs11.rsa_oaep = \
                 \"native\" needs: set pkcs11.rsa_oaep = \"raw\" or \"auto\""
                    .into(),
            ),
            OaepMode::Auto if !self.rsa_oaep && !self.rsa_raw => Some(
                "the token offers neither CKM_RSA_PKCS_OAEP nor CKM_RSA_X_509 for C_Decrypt: \
                 webhook envelopes cannot be decrypted on it"
                    .into(),
            ),
            _ => None,
        }
    }

    /// What generating a key of `kind` needs that the token lacks, as one line.
    pub fn keygen_gap(&self, kind: KeyKind) -> Option<String> {
        match kind {
            KeyKind::Rsa if !self.rsa_keygen => Some(
                "the token has no CKM_RSA_PKCS_KEY_PAIR_GEN: generate the RSA key pair with the \
                 vendor's tools, labelled as docs/hsms.md says"
                    .into(),
            ),
            KeyKind::Wrap if !self.aes_keygen => Some(
                "the token has no CKM_AES_KEY_GEN for 256-bit keys: generate the wrapping key \
                 with the vendor's tools, labelled as docs/hsms.md says"
                    .into(),
            ),
            _ => None,
        }
    }

    /// `name: yes|no` pairs for `keyward keys list`.
    pub fn table(&self) -> [(&'static str, bool); 5] {
        [
            ("CKM_AES_GCM (encrypt+decrypt)", self.aes_gcm),
            ("CKM_RSA_PKCS_OAEP (decrypt)", self.rsa_oaep),
            ("CKM_RSA_X_509 (decrypt)", self.rsa_raw),
            ("CKM_AES_KEY_GEN (256-bit)", self.aes_keygen),
            ("CKM_RSA_PKCS_KEY_PAIR_GEN", self.rsa_keygen),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Capabilities {
        Capabilities {
            rsa_oaep: true,
            rsa_raw: true,
            aes_gcm: true,
            aes_keygen: true,
            rsa_keygen: true,
        }
    }

    #[test]
    fn each_gap_names_the_setting_that_fixes_it() {
        assert_eq!(all().serving_gap(OaepMode::Raw), None);
        let fips = Capabilities {
            rsa_raw: false,
            ..all()
        };
        assert!(fips
            .serving_gap(OaepMode::Raw)
            .unwrap()
            .contains("set pkcs11.rsa_oaep = \"native\""));
        assert_eq!(fips.serving_gap(OaepMode::Auto), None);
        let no_gcm = Capabilities {
            aes_gcm: false,
            ..all()
        };
        assert!(no_gcm
            .serving_gap(OaepMode::Auto)
            .unwrap()
            .contains("no CKM_AES_GCM"));
        let no_oaep = Capabilities {
            rsa_oaep: false,
            ..all()
        };
        assert!(no_oaep
            .serving_gap(OaepMode::Native)
            .unwrap()
            .contains("\"raw\" or \"auto\""));
        let no_aes_gen = Capabilities {
            aes_keygen: false,
            ..all()
        };
        assert!(no_aes_gen
            .keygen_gap(KeyKind::Wrap)
            .unwrap()
            .contains("CKM_AES_KEY_GEN"));
        assert_eq!(no_aes_gen.keygen_gap(KeyKind::Rsa), None);
    }
}
