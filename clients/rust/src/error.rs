//! The one error type of the kit: keyward's refusals keep their `code`, `rule` and
//! `auditId`; transport failures say which layer failed.

use std::fmt;

/// What went wrong talking to keyward.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// keyward answered with an error body (`{"error":{"code","message","rule"?},"auditId"?}`).
    #[error("keyward refused: {0}")]
    Api(Box<ApiError>),
    /// The TLS handshake failed or the server ended the session with an alert: a client
    /// certificate keyward does not accept (unknown CA, expired, revoked), or a server
    /// certificate this client does not trust. Nothing was signed.
    #[error("TLS with keyward failed: {0}")]
    Tls(String),
    /// No TCP connection to keyward.
    #[error("cannot connect to keyward: {0}")]
    Connect(#[source] std::io::Error),
    /// The connect or the request took longer than its configured timeout. The request
    /// may or may not have been signed: retry with the same `Idempotency-Key`.
    #[error("keyward did not answer within {0:?} ({1})")]
    Timeout(std::time::Duration, &'static str),
    /// The HTTP exchange broke (connection reset mid-answer, malformed HTTP).
    #[error("HTTP exchange with keyward failed: {0}")]
    Http(String),
    /// keyward answered 2xx with a body this client cannot use, or a signature that does
    /// not verify for the wallet over what this client asked to sign (fail closed).
    #[error("unexpected answer from keyward: {0}")]
    Answer(String),
    /// Bad client configuration (URL, PEM files).
    #[error("keyward client configuration: {0}")]
    Config(String),
}

/// An error answer of keyward's signing API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The stable snake_case code (`policy_denied`, `wallet_not_found`, …).
    pub code: String,
    /// keyward's human message.
    pub message: String,
    /// The refusing policy rule or rate limit (`policy_denied`, `rate_limited`).
    pub rule: Option<String>,
    /// The rules that covered the request (`policy_denied`).
    pub matched_rules: Vec<String>,
    /// The audit record of the request (sign routes).
    pub audit_id: Option<String>,
    /// `Retry-After` in seconds (`rate_limited`).
    pub retry_after: Option<u64>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl Error {
    /// keyward's error answer, if this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(a) => Some(a),
            _ => None,
        }
    }

    /// keyward's error code (`policy_denied`, `wallet_not_found`, …), if keyward answered.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|a| a.code.as_str())
    }

    /// The refusing policy rule or rate limit, if any.
    pub fn rule(&self) -> Option<&str> {
        self.api().and_then(|a| a.rule.as_deref())
    }

    /// The audit record id of the refused request, if any.
    pub fn audit_id(&self) -> Option<&str> {
        self.api().and_then(|a| a.audit_id.as_deref())
    }

    /// A refusal by keyward's policy (`policy_denied`).
    pub fn is_policy_denied(&self) -> bool {
        self.code() == Some("policy_denied")
    }

    /// The keyward error inside an alloy signer error (what [`crate::KeywardSigner`]
    /// returns through alloy's traits).
    pub fn from_alloy(e: &alloy_signer::Error) -> Option<&Error> {
        match e {
            alloy_signer::Error::Other(inner) => inner.downcast_ref::<Error>(),
            _ => None,
        }
    }

    pub(crate) fn answer(what: impl fmt::Display) -> Error {
        Error::Answer(what.to_string())
    }
}

/// Classifies a failure of the connection: a rustls error anywhere in the chain (handshake
/// failure, an alert from the server) is [`Error::Tls`], anything else `other`.
pub(crate) fn classify(
    e: &(dyn std::error::Error + 'static),
    other: impl FnOnce(String) -> Error,
) -> Error {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Error::Tls(tls_message(tls));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Error::Tls(tls_message(tls));
            }
        }
        cur = err.source();
    }
    other(e.to_string())
}

fn tls_message(e: &rustls::Error) -> String {
    match e {
        rustls::Error::AlertReceived(alert) => format!(
            "keyward ended the handshake with alert {alert:?}: it does not accept this client certificate (unknown CA, expired, revoked or missing)"
        ),
        other => other.to_string(),
    }
}
