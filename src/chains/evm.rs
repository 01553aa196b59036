//! EVM request parsing, hashing and signed-transaction encoding for keyward.
//!
//! This module owns everything chain-specific about Ethereum-compatible
//! signing: turning untrusted JSON-RPC payloads (`personal_sign`,
//! `eth_signTypedData_v4`, `eth_signTransaction`) into the exact 32-byte
//! digest the HSM will sign, exposing the fields policy needs to inspect, and
//! assembling signed transactions from a signature produced elsewhere.
//!
//! It is pure: no I/O, no logging, no clocks, no global state. Secret keys
//! never enter the public API except [`sign_digest`], which exists for
//! software keys and tests. RLP, EIP-2718 and EIP-712 encoding are delegated
//! to alloy so this module only decides *what* is encoded, never *how*.

use alloy_consensus::{
    SignableTransaction, TxEip1559, TxEip2930, TxEip7702, TxEnvelope, TxLegacy, TypedTransaction,
};
use alloy_dyn_abi::TypedData;
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use serde_json::{Map, Value};

pub mod authorization;
pub mod erc20;
pub mod nft;
mod signature;
mod tx;
pub mod typed_data;
pub mod typed_data_limits;
pub mod user_op;
pub mod wrappers;

pub use authorization::{
    authorization_json, parse_authorization, parse_authorization_list, MAX_AUTHORIZATIONS,
};
pub use erc20::{decode_erc20, decode_permit2, Erc20Call, Permit2Call, ERC20_SELECTORS, PERMIT2};
pub use nft::{decode_nft, NftCall, NFT_SELECTORS};
pub use signature::*;
pub use tx::*;
pub use typed_data::{TypedFamily, TypedMove};

/// Errors produced while interpreting EVM requests. Messages name the
/// offending field but never echo key material or large payloads.
#[allow(
    missing_docs,
    reason = "each variant is described by its #[error] text"
)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvmError {
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    #[error("invalid typed data: {0}")]
    InvalidTypedData(String),
    #[error("typed data too complex: {0}")]
    TypedDataTooComplex(String),
    #[error("invalid transaction field `{field}`: {reason}")]
    InvalidTransaction { field: String, reason: String },
    #[error("unknown transaction field `{0}`")]
    UnknownField(String),
    #[error(
        "transaction has no usable `chainId`; replayable pre-EIP-155 transactions are refused"
    )]
    MissingChainId,
    #[error("inconsistent fee fields: {0}")]
    FeeInconsistent(String),
    #[error("unsupported transaction type: {0}")]
    UnsupportedTxType(String),
    #[error("field `{field}` is {len} bytes, above the limit of {max}")]
    DataTooLarge {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("`{field}` has {len} entries, above the limit of {max}")]
    AccessListTooLarge {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("`{field}` has {len} tuples, above the limit of {max}")]
    AuthorizationListTooLarge {
        field: String,
        len: usize,
        max: usize,
    },
    #[error("invalid quantity in `{field}`: {reason}")]
    InvalidQuantity { field: String, reason: String },
    #[error("invalid address in `{field}`: {reason}")]
    InvalidAddress { field: String, reason: String },
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
    #[error("invalid user operation: {0}")]
    InvalidUserOperation(String),
    #[error("invalid signature: {0}")]
    InvalidSignature(String),
    #[error("signature recovers to {recovered}, expected {expected}")]
    SignerMismatch {
        expected: Address,
        recovered: Address,
    },
}

impl EvmError {
    /// Stable machine-readable code; part of the external API, never rename.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidMessage(_) => "invalid_message",
            Self::InvalidTypedData(_) => "invalid_typed_data",
            Self::TypedDataTooComplex(_) => "typed_data_too_complex",
            Self::InvalidTransaction { .. } => "invalid_transaction",
            Self::UnknownField(_) => "unknown_field",
            Self::MissingChainId => "missing_chain_id",
            Self::FeeInconsistent(_) => "fee_inconsistent",
            Self::UnsupportedTxType(_) => "unsupported_tx_type",
            Self::DataTooLarge { .. } => "data_too_large",
            Self::AccessListTooLarge { .. } => "access_list_too_large",
            Self::AuthorizationListTooLarge { .. } => "authorization_list_too_large",
            Self::InvalidQuantity { .. } => "invalid_quantity",
            Self::InvalidAddress { .. } => "invalid_address",
            Self::InvalidDigest(_) => "invalid_digest",
            Self::InvalidUserOperation(_) => "invalid_user_operation",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::SignerMismatch { .. } => "signer_mismatch",
        }
    }
}

fn tx_err(field: &str, reason: &str) -> EvmError {
    EvmError::InvalidTransaction {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn qty_err(field: &str, reason: &str) -> EvmError {
    EvmError::InvalidQuantity {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

fn addr_err(field: &str, reason: &str) -> EvmError {
    EvmError::InvalidAddress {
        field: field.to_owned(),
        reason: reason.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// Hex helpers
// ---------------------------------------------------------------------------

/// Decodes `0x`-prefixed hex. `None` when the prefix is missing or the hex is
/// malformed; callers attach the field-specific error.
fn decode_0x(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x")?).ok()
}

/// Parses a 20-byte address. Mixed-case input must carry a valid EIP-55
/// checksum: a checksum typo is the one address mistake we can detect.
pub fn parse_address(field: &str, s: &str) -> Result<Address, EvmError> {
    let body = s
        .strip_prefix("0x")
        .ok_or_else(|| addr_err(field, "missing 0x prefix"))?;
    if body.len() != 40 || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(addr_err(field, "expected 20 bytes of hex"));
    }
    let mixed = body.bytes().any(|b| b.is_ascii_lowercase())
        && body.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        return Address::parse_checksummed(s, None)
            .map_err(|_| addr_err(field, "EIP-55 checksum mismatch"));
    }
    s.parse::<Address>()
        .map_err(|_| addr_err(field, "expected 20 bytes of hex"))
}

/// Parses a digest that must be exactly 32 bytes of `0x`-prefixed hex.
pub fn parse_digest(hex: &str) -> Result<B256, EvmError> {
    let bytes =
        decode_0x(hex).ok_or_else(|| EvmError::InvalidDigest("expected 0x-prefixed hex".into()))?;
    if bytes.len() != 32 {
        return Err(EvmError::InvalidDigest(format!(
            "expected 32 bytes, got {}",
            bytes.len()
        )));
    }
    Ok(B256::from_slice(&bytes))
}

// ---------------------------------------------------------------------------
// EIP-191 personal_sign
// ---------------------------------------------------------------------------

/// Interprets a `personal_sign` payload the way wallets do: `0x` hex is raw
/// bytes, anything else is UTF-8 text. A `0x` prefix with bad hex is refused
/// rather than signed as text, because the caller almost certainly meant bytes.
pub fn parse_message(input: &str) -> Result<Vec<u8>, EvmError> {
    match input.strip_prefix("0x") {
        Some(body) => hex::decode(body).map_err(|_| {
            EvmError::InvalidMessage(
                "`message` starts with 0x but is not valid even-length hex".into(),
            )
        }),
        None => Ok(input.as_bytes().to_vec()),
    }
}

/// `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ msg)`.
pub fn personal_message_digest(msg: &[u8]) -> B256 {
    alloy_primitives::eip191_hash_message(msg)
}

// ---------------------------------------------------------------------------
// EIP-712 typed data (eth_signTypedData_v4)
// ---------------------------------------------------------------------------

/// What policy and the operator need to see about a typed-data request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedDataInfo {
    pub digest: B256,
    pub primary_type: String,
    pub domain_name: Option<String>,
    pub domain_version: Option<String>,
    pub domain_chain_id: Option<u64>,
    pub domain_verifying_contract: Option<Address>,
    pub domain_salt: Option<B256>,
    /// The asset-moving family, if any, and what it moves.
    pub family: TypedFamily,
}

/// Canonical domain field order and types. alloy hashes the domain in this
/// order using only the fields present; wallets hash it using the declared
/// `EIP712Domain` type. Requiring the declaration to match keeps both equal.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

fn td_err(reason: impl Into<String>) -> EvmError {
    EvmError::InvalidTypedData(reason.into())
}

/// Parses `eth_signTypedData_v4` JSON (an object, or a string holding one)
/// and computes its EIP-712 signing digest.
pub fn typed_data(json: &Value) -> Result<TypedDataInfo, EvmError> {
    let owned;
    let obj = match json {
        Value::String(s) => {
            owned =
                serde_json::from_str::<Value>(s).map_err(|e| td_err(format!("not JSON: {e}")))?;
            &owned
        }
        other => other,
    };
    if !obj.is_object() {
        return Err(td_err("expected a JSON object"));
    }
    // before alloy: its parsing, resolution and hashing recurse as deep as the input says
    typed_data_limits::check(obj, &typed_data_limits::Limits::DEFAULT)?;
    check_domain_declaration(obj)?;
    let td: TypedData =
        serde_json::from_value(obj.clone()).map_err(|e| td_err(format!("malformed: {e}")))?;
    let digest = td
        .eip712_signing_hash()
        .map_err(|e| td_err(format!("cannot hash `{}`: {e}", td.primary_type)))?;
    let family = typed_data::classify(&td, obj.get("types").unwrap_or(&Value::Null));
    typed_data_info(td, digest, family)
}

fn typed_data_info(
    td: TypedData,
    digest: B256,
    family: TypedFamily,
) -> Result<TypedDataInfo, EvmError> {
    let domain_chain_id = td
        .domain
        .chain_id
        .map(u64::try_from)
        .transpose()
        .map_err(|_| td_err("`domain.chainId` does not fit in 64 bits"))?;
    Ok(TypedDataInfo {
        digest,
        primary_type: td.primary_type,
        domain_name: td.domain.name.map(|c| c.into_owned()),
        domain_version: td.domain.version.map(|c| c.into_owned()),
        domain_chain_id,
        domain_verifying_contract: td.domain.verifying_contract,
        domain_salt: td.domain.salt,
        family,
    })
}

/// Rejects domains whose fields alloy would silently drop or hash in an
/// order different from the declared `EIP712Domain` type.
fn check_domain_declaration(obj: &Value) -> Result<(), EvmError> {
    let empty = Map::new();
    let domain = match obj.get("domain") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(td_err("`domain` must be an object")),
    };
    if let Some(unknown) = domain
        .keys()
        .find(|k| !DOMAIN_FIELDS.iter().any(|(n, _)| n == k))
    {
        return Err(td_err(format!("unknown domain field `{unknown}`")));
    }
    let Some(declared) = obj.get("types").and_then(|t| t.get("EIP712Domain")) else {
        // Without a declaration every signer (alloy, ethers, viem) derives the
        // domain type from the present fields, so there is nothing to compare.
        return Ok(());
    };
    let expected: Vec<(&str, &str)> = DOMAIN_FIELDS
        .iter()
        .copied()
        .filter(|(n, _)| domain.get(*n).is_some_and(|v| !v.is_null()))
        .collect();
    let declared = parse_domain_declaration(declared)?;
    if declared != expected {
        return Err(td_err(
            "`types.EIP712Domain` must declare exactly the present domain fields, in canonical order",
        ));
    }
    Ok(())
}

fn parse_domain_declaration(declared: &Value) -> Result<Vec<(&str, &str)>, EvmError> {
    let bad = || td_err("`types.EIP712Domain` must be a list of {name, type}");
    declared
        .as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|p| {
            let name = p.get("name").and_then(Value::as_str).ok_or_else(bad)?;
            let ty = p.get("type").and_then(Value::as_str).ok_or_else(bad)?;
            Ok((name, ty))
        })
        .collect()
}

#[cfg(test)]
mod tests;
