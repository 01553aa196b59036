//! Token errors, and the one place PKCS#11 return values are classified.

use cryptoki::error::{Error as CkError, RvError};

/// What went wrong talking to the token. Never carries a PIN or key material.
#[derive(Debug, thiserror::Error)]
pub enum HsmError {
    /// The module could not be loaded or initialised.
    #[error("cannot load PKCS#11 module {path}: {reason}")]
    Module {
        /// Module path.
        path: String,
        /// Why.
        reason: String,
    },
    /// No token matched the configured label/serial.
    #[error("no token with {wanted} in module {module}")]
    TokenNotFound {
        /// What was looked for.
        wanted: String,
        /// Module path.
        module: String,
    },
    /// The user PIN was refused (wrong, locked or expired).
    #[error("login to the token failed: {reason}")]
    Login {
        /// The PKCS#11 return value's name.
        reason: String,
    },
    /// The token or its sessions are gone; the pool reconnects on the next call.
    #[error("token unavailable ({function}: {rv})")]
    Unavailable {
        /// The PKCS#11 function that failed.
        function: String,
        /// Its return value.
        rv: String,
    },
    /// A key keyward needs is not in the token.
    #[error("no {kind} key labelled {label} in the token (run `keyward init`)")]
    KeyMissing {
        /// Key kind.
        kind: &'static str,
        /// Expected label.
        label: String,
    },
    /// A key exists but its attributes are unsafe or unusable.
    #[error("key {label} has unacceptable attributes: {problem}")]
    KeyAttributes {
        /// Label.
        label: String,
        /// What is wrong.
        problem: String,
    },
    /// Ciphertext did not decrypt or authenticate. Deliberately without detail: no oracle.
    #[error("decryption failed")]
    DecryptFailed,
    /// The token does not support a mechanism with the given parameters.
    #[error("the token refused mechanism {mechanism}: {rv}")]
    MechanismRefused {
        /// Mechanism name.
        mechanism: &'static str,
        /// Return value.
        rv: String,
    },
    /// Every pooled session stayed busy for too long.
    #[error("no token session became free within {0:?}")]
    PoolExhausted(std::time::Duration),
    /// A blob the token sealed did not open again to the same plaintext (a token that
    /// used another IV than it reported, or any other fault): nothing may be stored.
    #[error(
        "the token's sealed output did not open to the same plaintext (checked before storing)"
    )]
    SealCheck,
    /// More bytes than one seal takes on every supported token.
    #[error("{len} bytes to seal; at most {max} are sealed in one operation")]
    TooLarge {
        /// Bytes given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token lacks a mechanism keyward needs in the configured mode (one line naming
    /// the setting that fixes it, or saying none does).
    #[error("{0}")]
    Capability(String),
    /// Any other PKCS#11 failure.
    #[error("{function}: {rv}")]
    Pkcs11 {
        /// The PKCS#11 function that failed.
        function: String,
        /// Its return value.
        rv: String,
    },
    /// A request the token layer cannot make sense of (bad length, unknown key).
    #[error("{0}")]
    Invalid(String),
}

/// How the pool should treat the session after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The session is fine; the operation failed.
    None,
    /// This session is dead; replace it.
    Session,
    /// The token is gone; rebuild everything.
    Token,
}

impl HsmError {
    /// True when retrying later (after the token comes back) may succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            HsmError::Unavailable { .. } | HsmError::PoolExhausted(_)
        )
    }

    pub(crate) fn fault(&self) -> Fault {
        match self {
            HsmError::Unavailable { rv, .. } if rv.starts_with("Session") => Fault::Session,
            HsmError::Unavailable { .. } => Fault::Token,
            _ => Fault::None,
        }
    }
}

/// Maps a cryptoki error to ours. The single place return values are interpreted.
pub(crate) fn classify(err: CkError) -> HsmError {
    match err {
        CkError::Pkcs11(rv, function) => {
            let function = format!("{function}");
            let rv_name = format!("{rv:?}");
            match rv {
                RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinExpired
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::UserPinNotInitialized => HsmError::Login { reason: rv_name },
                RvError::SessionHandleInvalid | RvError::SessionClosed => HsmError::Unavailable {
                    function,
                    rv: rv_name,
                },
                RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
                // our cached handles are gone (the session owning the key copies died,
                // or the token was re-initialised): rebuild the connection
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::GeneralError => HsmError::Unavailable {
                    function,
                    rv: rv_name,
                },
                RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange => HsmError::DecryptFailed,
                _ => HsmError::Pkcs11 {
                    function,
                    rv: rv_name,
                },
            }
        }
        other => HsmError::Pkcs11 {
            function: "cryptoki".into(),
            rv: other.to_string(),
        },
    }
}

/// Maps a failed `C_Decrypt` of ciphertext from outside (RSA-OAEP of a webhook
/// envelope) by what it means, not by its return value alone: tokens report a bad
/// padding as `CKR_GENERAL_ERROR` or `CKR_FUNCTION_FAILED` as readily as a real fault.
/// When the session still answers (`session_alive`), those are decryption failures;
/// only a session that no longer answers makes them an outage.
pub(crate) fn classify_decrypt(err: CkError, session_alive: impl FnOnce() -> bool) -> HsmError {
    let ambiguous = matches!(
        err,
        CkError::Pkcs11(RvError::GeneralError | RvError::FunctionFailed, _)
    );
    if ambiguous && session_alive() {
        return HsmError::DecryptFailed;
    }
    classify(err)
}

/// True when a mechanism was refused for its parameters rather than the data.
pub(crate) fn is_mechanism_refusal(err: &CkError) -> bool {
    matches!(
        err,
        CkError::Pkcs11(
            RvError::MechanismInvalid | RvError::MechanismParamInvalid | RvError::ArgumentsBad,
            _
        )
    )
}

#[cfg(test)]
mod decrypt_tests {
    use super::*;
    use cryptoki::context::Function;

    fn err(rv: RvError) -> CkError {
        CkError::Pkcs11(rv, Function::Decrypt)
    }

    #[test]
    fn a_general_error_from_a_live_session_is_a_decryption_failure() {
        assert!(matches!(
            classify_decrypt(err(RvError::GeneralError), || true),
            HsmError::DecryptFailed
        ));
        assert!(matches!(
            classify_decrypt(err(RvError::FunctionFailed), || true),
            HsmError::DecryptFailed
        ));
        // the same answer from a token that no longer answers is an outage
        let e = classify_decrypt(err(RvError::GeneralError), || false);
        assert!(e.is_unavailable(), "{e:?}");
        // unambiguous codes keep their meaning without a probe
        assert!(matches!(
            classify_decrypt(err(RvError::EncryptedDataInvalid), || panic!("no probe")),
            HsmError::DecryptFailed
        ));
        assert!(
            classify_decrypt(err(RvError::DeviceRemoved), || panic!("no probe")).is_unavailable()
        );
    }
}
