//! Every error the signing API answers with: stable code, HTTP status, meaning.
//!
//! [`CODES`] is the single table: handlers build refusals through [`refuse`], which
//! looks the status up here, so a code cannot be sent with two different statuses, and
//! the OpenAPI document and docs/api.md list exactly this table. Messages never carry
//! secret bytes or request bodies.

use hyper::StatusCode;

use crate::chains::evm::EvmError;
use crate::chains::solana::SolanaError;
use crate::http::Refusal;
use crate::signer::SignError;

/// `(status, code, meaning)` for every error code.
pub const CODES: &[(u16, &str, &str)] = &[
    (400, "invalid_json", "the body is not a JSON object"),
    (400, "invalid_request", "a request field is missing, of the wrong type, or unknown"),
    (400, "invalid_query", "a query parameter is malformed (`dryRun` must be true or false)"),
    (400, "body_unreadable", "the request body could not be read"),
    (400, "invalid_encoding", "a base64/hex/base58 field does not decode"),
    (400, "invalid_message", "the message is malformed (EVM: bad 0x hex; Solana: empty, too long or not UTF-8 for the off-chain format)"),
    (400, "invalid_typed_data", "the EIP-712 typed data is malformed or cannot be hashed"),
    (400, "typed_data_too_complex", "the EIP-712 typed data exceeds a limit (types, fields, name length, array dimensions, nesting, message size); the message names it"),
    (400, "invalid_transaction", "a transaction field is malformed, or the Solana transaction bytes do not parse"),
    (400, "unknown_field", "the EVM transaction has a field keyward does not know"),
    (400, "missing_chain_id", "the EVM transaction has no chain id (pre-EIP-155 replayable transactions are refused)"),
    (400, "fee_inconsistent", "the EVM fee fields contradict each other or the transaction type"),
    (400, "unsupported_tx_type", "the EVM transaction type is not legacy, EIP-2930, EIP-1559 or EIP-7702 (type 4)"),
    (400, "data_too_large", "the EVM transaction data exceeds the limit"),
    (400, "access_list_too_large", "the EVM access list has more than 256 entries, or an entry more than 256 storage keys"),
    (400, "invalid_quantity", "an EVM quantity is not a valid hex/decimal number or is out of range"),
    (400, "invalid_address", "an EVM address is malformed or fails its EIP-55 checksum"),
    (400, "invalid_digest", "the digest is not 32 bytes of 0x hex"),
    (400, "invalid_authorization", "an EIP-7702 authorization field (`chainId`, `address`/`contractAddress`, `nonce`) is missing or malformed"),
    (400, "authorization_list_too_large", "a type-4 transaction's `authorizationList` has more than 64 tuples"),
    (400, "invalid_user_operation", "the ERC-4337 user operation is malformed, of the other EntryPoint version's shape, for an unknown entry point, or names an unknown account kind"),
    (400, "unsupported_account", "the account kind is known but keyward does not sign for it (safe-4337: its module validates an EIP-712 SafeOp, see docs/smart-accounts.md)"),
    (400, "invalid_signature", "a signature in the request (an `authorizationList` tuple) cannot recover: zero `r`/`s`, `s` above secp256k1n/2, or a parity other than 0/1"),
    (400, "from_mismatch", "the transaction's `from` is not this wallet's address"),
    (400, "unsupported_version", "the Solana transaction message version is not legacy or v0"),
    (400, "message_is_transaction", "the bytes to sign as a Solana message are, or begin with, a transaction or transaction message"),
    (401, "unauthenticated", "no client identity (certificate without a CN or URI SAN)"),
    (403, "not_authorized", "no grant for this client, wallet and operation"),
    (403, "policy_denied", "a policy rule refused the request; `error.rule` names it and `message` says why (see docs/policy.md)"),
    (404, "wallet_not_found", "no wallet with this id"),
    (404, "route_not_found", "no such route"),
    (405, "method_not_allowed", "the route exists with another method (see `Allow`)"),
    (409, "engine_unavailable", "the wallet holds a vendor MPC share and its co-signing engine is not built in (feature `dynamic-mpc`) or not configured (`[engines.dynamic]`)"),
    (409, "wrong_chain", "the wallet belongs to the other chain"),
    (410, "wallet_revoked", "the wallet's delegation was revoked; its key material is deleted"),
    (413, "body_too_large", "the request body exceeds the limit"),
    (415, "unsupported_media_type", "the request body is not `application/json`"),
    (422, "not_a_signer", "the wallet is not a required signer of the Solana transaction"),
    (423, "appliance_locked", "the appliance is locked by an operator or failsafe; nothing is signed"),
    (429, "rate_limited", "a policy rate limit is exhausted for this client or wallet; `error.rule` names it, `Retry-After` says when to retry"),
    (500, "custody_mismatch", "the wallet's key material does not derive or verify under its address; nothing was returned"),
    (500, "hsm_error", "the token failed the operation"),
    (500, "internal_error", "an unexpected internal failure"),
    (502, "cosigner_unavailable", "the vendor's MPC co-signer (API or relay) could not be reached, failed, answered garbage, or did not finish within the configured timeout (no round slot free in time included); nothing was signed"),
    (502, "cosigner_rejected", "the vendor refused the request: an HTTP 4xx from its API (not 408/429) or an error event on its stream (its message is included, without secrets); nothing was signed"),
    (502, "cosigner_bad_signature", "the vendor's co-signed signature does not verify under the wallet's address/public key; it was audited and not returned"),
    (502, "upstream_unavailable", "the `[rpc] upstream` node could not be reached, did not answer within `rpc.upstream_timeout`, or answered something that is not JSON-RPC; on the JSON-RPC face, and on both faces when a rule's `evm.max_nonce_gap` needs the wallet's pending nonce (nothing is signed; retry)"),
    (502, "upstream_answer_too_large", "JSON-RPC face: the `[rpc] upstream` node's answers to this request (a whole batch) exceed `rpc.max_upstream_response_bytes`; the rest was not read (JSON-RPC -32005)"),
    (502, "upstream_rejected", "the `[rpc] upstream` node answered a call keyward made while completing a transaction (nonce, fees, gas estimate) or asking the pending nonce for `evm.max_nonce_gap` with an error; its message is included"),
    (503, "hsm_unavailable", "the token is unavailable; retry later"),
    (503, "upstream_busy", "JSON-RPC face: the upstream answers all requests hold at once would exceed `rpc.max_upstream_inflight_bytes`; retry shortly (JSON-RPC -32005)"),
    (503, "store_unavailable", "the database is unavailable or the audit record could not be made durable; nothing was returned"),
];

/// The HTTP status of `code` (500 for a code missing from the table, caught by a test).
pub fn status_of(code: &str) -> StatusCode {
    CODES
        .iter()
        .find(|(_, c, _)| *c == code)
        .and_then(|(s, _, _)| StatusCode::from_u16(*s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A refusal with the status the table gives `code`.
pub fn refuse(code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(status_of(code), code, message)
}

/// A malformed EVM payload.
pub fn evm(e: &EvmError) -> Refusal {
    refuse(e.code(), e.to_string())
}

/// A malformed Solana payload.
pub fn solana(e: &SolanaError) -> Refusal {
    match e {
        // produced only by our own verification of our own signature
        SolanaError::BadSignature { .. } => refuse("custody_mismatch", e.to_string()),
        _ => refuse(e.code(), e.to_string()),
    }
}

/// A signing failure.
pub fn sign(e: &SignError) -> Refusal {
    refuse(e.code(), e.to_string())
}

/// The store failed.
pub fn store(e: &crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "store failure on the signing API");
    refuse("store_unavailable", "the database is unavailable")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_has_a_status() {
        let mut seen = std::collections::HashSet::new();
        for (status, code, meaning) in CODES {
            assert!(seen.insert(*code), "{code} twice");
            assert!(StatusCode::from_u16(*status).is_ok());
            assert!(!meaning.is_empty());
            assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn chain_codes_are_in_the_table() {
        let evm_errors = [
            EvmError::InvalidMessage(String::new()),
            EvmError::InvalidTypedData(String::new()),
            EvmError::TypedDataTooComplex(String::new()),
            EvmError::InvalidTransaction {
                field: String::new(),
                reason: String::new(),
            },
            EvmError::UnknownField(String::new()),
            EvmError::MissingChainId,
            EvmError::FeeInconsistent(String::new()),
            EvmError::UnsupportedTxType(String::new()),
            EvmError::DataTooLarge {
                field: String::new(),
                len: 0,
                max: 0,
            },
            EvmError::AccessListTooLarge {
                field: String::new(),
                len: 0,
                max: 0,
            },
            EvmError::InvalidQuantity {
                field: String::new(),
                reason: String::new(),
            },
            EvmError::InvalidAddress {
                field: String::new(),
                reason: String::new(),
            },
            EvmError::InvalidDigest(String::new()),
            EvmError::InvalidSignature(String::new()),
            EvmError::InvalidUserOperation(String::new()),
            EvmError::AuthorizationListTooLarge {
                field: String::new(),
                len: 0,
                max: 0,
            },
        ];
        for e in evm_errors {
            assert!(CODES.iter().any(|(_, c, _)| *c == e.code()), "{}", e.code());
        }
        for e in [
            SolanaError::UnsupportedVersion(1),
            SolanaError::NotASigner,
            SolanaError::MessageIsTransaction,
            SolanaError::InvalidMessage(""),
            SolanaError::BadSignature { index: 0 },
        ] {
            let r = solana(&e);
            assert!(CODES.iter().any(|(_, c, _)| *c == r.code), "{}", r.code);
        }
        assert_eq!(status_of("not_a_signer"), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
