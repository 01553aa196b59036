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
    SignableTransaction, TxEip1559, TxEip2930, TxEnvelope, TxLegacy, TypedTransaction,
};
use alloy_dyn_abi::TypedData;
use alloy_eips::eip2718::Encodable2718;
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use serde_json::{Map, Value};

pub mod erc20;
pub mod typed_data;
pub mod typed_data_limits;

pub use erc20::{decode_erc20, decode_permit2, Erc20Call, Permit2Call, ERC20_SELECTORS, PERMIT2};
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
    #[error("invalid quantity in `{field}`: {reason}")]
    InvalidQuantity { field: String, reason: String },
    #[error("invalid address in `{field}`: {reason}")]
    InvalidAddress { field: String, reason: String },
    #[error("invalid digest: {0}")]
    InvalidDigest(String),
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
            Self::InvalidQuantity { .. } => "invalid_quantity",
            Self::InvalidAddress { .. } => "invalid_address",
            Self::InvalidDigest(_) => "invalid_digest",
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

// ---------------------------------------------------------------------------
// Transactions (eth_signTransaction)
// ---------------------------------------------------------------------------

const KNOWN_TX_FIELDS: &[&str] = &[
    "type",
    "chainId",
    "nonce",
    "from",
    "to",
    "value",
    "data",
    "input",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "accessList",
];

/// Most entries in an access list. Real ones name a handful of contracts; every entry
/// is parsed, hashed and audited, so the count is bounded rather than left to the body.
pub const MAX_ACCESS_LIST_ENTRIES: usize = 256;
/// Most storage keys in one access-list entry.
pub const MAX_STORAGE_KEYS_PER_ENTRY: usize = 256;
/// Largest chain id of a legacy transaction: its EIP-155 `v` (`2 * chainId + 35 +
/// parity`) must fit the 64 bits wallets and keyward's answer carry it in.
pub const MAX_LEGACY_CHAIN_ID: u64 = (u64::MAX - 36) / 2;

/// Fields that only make sense for blob (type 3) or set-code (type 4)
/// transactions; reported as an unsupported type rather than an unknown field.
const UNSUPPORTED_TYPE_FIELDS: &[&str] = &[
    "maxFeePerBlobGas",
    "blobVersionedHashes",
    "blobs",
    "sidecar",
    "authorizationList",
];

/// One of the transaction kinds keyward is willing to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmTx {
    Legacy(TxLegacy),
    Eip2930(TxEip2930),
    Eip1559(TxEip1559),
}

/// A validated, not-yet-signed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsignedTx {
    tx: EvmTx,
    from: Option<Address>,
}

/// A signed transaction ready for `eth_sendRawTransaction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTx {
    pub raw: Vec<u8>,
    pub hash: B256,
}

macro_rules! each_tx {
    ($self:expr, $t:ident => $body:expr) => {
        match &$self.tx {
            EvmTx::Legacy($t) => $body,
            EvmTx::Eip2930($t) => $body,
            EvmTx::Eip1559($t) => $body,
        }
    };
}

impl UnsignedTx {
    pub fn inner(&self) -> &EvmTx {
        &self.tx
    }

    /// The `from` the client claimed, if any. Callers must compare it with
    /// the signing key's address; this module cannot know which key signs.
    pub fn from(&self) -> Option<Address> {
        self.from
    }

    pub fn signature_hash(&self) -> B256 {
        each_tx!(self, t => t.signature_hash())
    }

    pub fn chain_id(&self) -> u64 {
        match &self.tx {
            // Parsing refuses legacy transactions without a chain id.
            EvmTx::Legacy(t) => t.chain_id.unwrap_or_default(),
            EvmTx::Eip2930(t) => t.chain_id,
            EvmTx::Eip1559(t) => t.chain_id,
        }
    }

    pub fn nonce(&self) -> u64 {
        each_tx!(self, t => t.nonce)
    }

    /// `None` means contract creation.
    pub fn to(&self) -> Option<Address> {
        each_tx!(self, t => t.to.to().copied())
    }

    pub fn value(&self) -> U256 {
        each_tx!(self, t => t.value)
    }

    pub fn data(&self) -> &[u8] {
        each_tx!(self, t => t.input.as_ref())
    }

    /// The 4-byte function selector, when the call data has one.
    pub fn selector(&self) -> Option<[u8; 4]> {
        self.data().get(..4)?.try_into().ok()
    }

    pub fn gas_limit(&self) -> u64 {
        each_tx!(self, t => t.gas_limit)
    }

    /// Upper bound on the per-gas price: `gasPrice` for legacy and EIP-2930.
    pub fn max_fee_per_gas(&self) -> u128 {
        match &self.tx {
            EvmTx::Legacy(t) => t.gas_price,
            EvmTx::Eip2930(t) => t.gas_price,
            EvmTx::Eip1559(t) => t.max_fee_per_gas,
        }
    }

    pub fn max_priority_fee_per_gas(&self) -> Option<u128> {
        match &self.tx {
            EvmTx::Eip1559(t) => Some(t.max_priority_fee_per_gas),
            _ => None,
        }
    }

    pub fn access_list(&self) -> Option<&AccessList> {
        match &self.tx {
            EvmTx::Legacy(_) => None,
            EvmTx::Eip2930(t) => Some(&t.access_list),
            EvmTx::Eip1559(t) => Some(&t.access_list),
        }
    }

    /// Worst-case wei leaving the account: `gas_limit * max_fee + value`.
    /// Saturates instead of overflowing so policy comparisons stay safe.
    pub fn max_cost(&self) -> U256 {
        let fee = U256::from(self.gas_limit()).saturating_mul(U256::from(self.max_fee_per_gas()));
        fee.saturating_add(self.value())
    }

    pub fn tx_type(&self) -> u8 {
        match &self.tx {
            EvmTx::Legacy(_) => 0,
            EvmTx::Eip2930(_) => 1,
            EvmTx::Eip1559(_) => 2,
        }
    }

    fn typed(&self) -> TypedTransaction {
        match &self.tx {
            EvmTx::Legacy(t) => t.clone().into(),
            EvmTx::Eip2930(t) => t.clone().into(),
            EvmTx::Eip1559(t) => t.clone().into(),
        }
    }

    /// Assembles the network encoding (EIP-2718 envelope for typed
    /// transactions, EIP-155 RLP for legacy). The signature is not checked;
    /// use [`UnsignedTx::encode_signed_checked`] when it came from outside.
    pub fn encode_signed(&self, sig: &RecoverableSig) -> SignedTx {
        let env = TxEnvelope::new_unhashed(self.typed(), sig.to_alloy());
        SignedTx {
            raw: env.encoded_2718(),
            hash: *env.tx_hash(),
        }
    }

    /// Like [`UnsignedTx::encode_signed`], but first proves the signature
    /// recovers to `expected`, so a wrong-key or corrupted HSM response can
    /// never be broadcast.
    pub fn encode_signed_checked(
        &self,
        sig: &RecoverableSig,
        expected: Address,
    ) -> Result<SignedTx, EvmError> {
        verify_signer(&self.signature_hash(), sig, expected)?;
        Ok(self.encode_signed(sig))
    }
}

/// Read-only view over the request object that treats JSON `null` as absent,
/// since JSON-RPC clients use both for "not set".
struct Fields<'a>(&'a Map<String, Value>);

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    fn str(&self, name: &str) -> Result<Option<&'a str>, EvmError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(tx_err(name, "expected a string")),
        }
    }

    fn quantity(&self, name: &str) -> Result<Option<U256>, EvmError> {
        self.get(name).map(|v| parse_quantity(name, v)).transpose()
    }

    fn u64(&self, name: &str) -> Result<Option<u64>, EvmError> {
        self.quantity(name)?
            .map(|q| u64::try_from(q).map_err(|_| qty_err(name, "exceeds 64 bits")))
            .transpose()
    }

    fn u128(&self, name: &str) -> Result<Option<u128>, EvmError> {
        self.quantity(name)?
            .map(|q| u128::try_from(q).map_err(|_| qty_err(name, "exceeds 128 bits")))
            .transpose()
    }

    fn require<T>(name: &str, v: Option<T>) -> Result<T, EvmError> {
        v.ok_or_else(|| tx_err(name, "required field is missing"))
    }
}

/// Accepts `0x` hex, decimal strings, or non-negative JSON integers. Signs,
/// fractions, exponents and whitespace are refused: ambiguity in an amount is
/// not something a signer should resolve.
fn parse_quantity(field: &str, v: &Value) -> Result<U256, EvmError> {
    match v {
        Value::Number(n) => n.as_u64().map(U256::from).ok_or_else(|| {
            qty_err(
                field,
                "JSON number must be a non-negative integer below 2^64",
            )
        }),
        Value::String(s) => parse_quantity_str(field, s),
        _ => Err(qty_err(
            field,
            "expected a hex or decimal string or an integer",
        )),
    }
}

fn parse_quantity_str(field: &str, s: &str) -> Result<U256, EvmError> {
    let (digits, radix, ok): (&str, u64, fn(&u8) -> bool) = match s.strip_prefix("0x") {
        Some(h) => (h, 16, u8::is_ascii_hexdigit),
        None => (s, 10, u8::is_ascii_digit),
    };
    if digits.is_empty() || !digits.as_bytes().iter().all(ok) {
        return Err(qty_err(field, "not a valid hex or decimal quantity"));
    }
    U256::from_str_radix(digits, radix).map_err(|_| qty_err(field, "exceeds 256 bits"))
}

/// Parses `eth_signTransaction` JSON into a transaction keyward can sign.
/// Every field is validated; anything unrecognised is refused rather than
/// ignored so that a client can never believe it set something we dropped.
pub fn parse_transaction(json: &Value, max_data_len: usize) -> Result<UnsignedTx, EvmError> {
    let obj = json
        .as_object()
        .ok_or_else(|| tx_err("transaction", "expected a JSON object"))?;
    check_known_fields(obj)?;
    let f = Fields(obj);
    let from = f
        .str("from")?
        .map(|s| parse_address("from", s))
        .transpose()?;
    let ty = tx_type(&f)?;
    let common = Common::parse(&f, max_data_len)?;
    let tx = match ty {
        0 => EvmTx::Legacy(legacy(&f, common)?),
        1 => EvmTx::Eip2930(eip2930(&f, common)?),
        _ => EvmTx::Eip1559(eip1559(&f, common)?),
    };
    Ok(UnsignedTx { tx, from })
}

fn check_known_fields(obj: &Map<String, Value>) -> Result<(), EvmError> {
    for key in obj.keys() {
        if UNSUPPORTED_TYPE_FIELDS.contains(&key.as_str()) {
            return Err(EvmError::UnsupportedTxType(format!(
                "field `{key}` implies a blob or set-code transaction"
            )));
        }
        if !KNOWN_TX_FIELDS.contains(&key.as_str()) {
            return Err(EvmError::UnknownField(truncate(key, 64)));
        }
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Returns 0, 1 or 2. Inference mirrors how wallets fill in a missing type.
fn tx_type(f: &Fields<'_>) -> Result<u8, EvmError> {
    let Some(ty) = f.quantity("type")? else {
        return Ok(if f.has("maxFeePerGas") || f.has("maxPriorityFeePerGas") {
            2
        } else if f.has("accessList") {
            1
        } else {
            0
        });
    };
    match u8::try_from(ty) {
        Ok(t @ 0..=2) => Ok(t),
        _ => Err(EvmError::UnsupportedTxType(format!("type {ty}"))),
    }
}

/// Fields shared by every supported transaction type.
struct Common {
    chain_id: u64,
    nonce: u64,
    gas_limit: u64,
    to: TxKind,
    value: U256,
    input: Bytes,
}

impl Common {
    fn parse(f: &Fields<'_>, max_data_len: usize) -> Result<Self, EvmError> {
        Ok(Self {
            chain_id: chain_id(f)?,
            nonce: Fields::require("nonce", f.u64("nonce")?)?,
            gas_limit: gas_limit(f)?,
            to: to_kind(f)?,
            value: f.quantity("value")?.unwrap_or_default(),
            input: input(f, max_data_len)?,
        })
    }
}

/// A missing or zero chain id would make the signature valid on every chain.
fn chain_id(f: &Fields<'_>) -> Result<u64, EvmError> {
    match f.u64("chainId")? {
        None => Err(EvmError::MissingChainId),
        Some(0) => Err(qty_err("chainId", "must be non-zero")),
        Some(id) => Ok(id),
    }
}

fn gas_limit(f: &Fields<'_>) -> Result<u64, EvmError> {
    match (f.u64("gas")?, f.u64("gasLimit")?) {
        (Some(a), Some(b)) if a != b => Err(tx_err("gasLimit", "conflicts with `gas`")),
        (a, b) => Fields::require("gas", a.or(b)),
    }
}

fn to_kind(f: &Fields<'_>) -> Result<TxKind, EvmError> {
    match f.str("to")? {
        None | Some("") => Ok(TxKind::Create),
        Some(s) => parse_address("to", s).map(TxKind::Call),
    }
}

fn input(f: &Fields<'_>, max_len: usize) -> Result<Bytes, EvmError> {
    let data = hex_field(f, "data", max_len)?;
    let input = hex_field(f, "input", max_len)?;
    match (data, input) {
        (Some(a), Some(b)) if a != b => Err(tx_err("input", "conflicts with `data`")),
        (a, b) => Ok(a.or(b).unwrap_or_default()),
    }
}

fn hex_field(f: &Fields<'_>, name: &str, max_len: usize) -> Result<Option<Bytes>, EvmError> {
    let Some(s) = f.str(name)? else {
        return Ok(None);
    };
    // Checked before decoding so oversized payloads cost no allocation.
    let len = s.len().saturating_sub(2) / 2;
    if len > max_len {
        return Err(EvmError::DataTooLarge {
            field: name.to_owned(),
            len,
            max: max_len,
        });
    }
    if s.is_empty() {
        return Ok(Some(Bytes::new()));
    }
    decode_0x(s)
        .map(|b| Some(b.into()))
        .ok_or_else(|| tx_err(name, "expected 0x-prefixed even-length hex"))
}

fn gas_price(f: &Fields<'_>, ty: u8) -> Result<u128, EvmError> {
    if f.has("maxFeePerGas") || f.has("maxPriorityFeePerGas") {
        return Err(EvmError::FeeInconsistent(format!(
            "`maxFeePerGas`/`maxPriorityFeePerGas` are not valid on a type {ty} transaction"
        )));
    }
    Fields::require("gasPrice", f.u128("gasPrice")?)
}

fn legacy(f: &Fields<'_>, c: Common) -> Result<TxLegacy, EvmError> {
    if f.has("accessList") {
        return Err(tx_err("accessList", "not valid on a legacy transaction"));
    }
    if c.chain_id > MAX_LEGACY_CHAIN_ID {
        return Err(qty_err(
            "chainId",
            &format!("above {MAX_LEGACY_CHAIN_ID}: the EIP-155 `v` of a legacy transaction would not fit 64 bits (use type 1 or 2)"),
        ));
    }
    Ok(TxLegacy {
        chain_id: Some(c.chain_id),
        nonce: c.nonce,
        gas_price: gas_price(f, 0)?,
        gas_limit: c.gas_limit,
        to: c.to,
        value: c.value,
        input: c.input,
    })
}

fn eip2930(f: &Fields<'_>, c: Common) -> Result<TxEip2930, EvmError> {
    Ok(TxEip2930 {
        chain_id: c.chain_id,
        nonce: c.nonce,
        gas_price: gas_price(f, 1)?,
        gas_limit: c.gas_limit,
        to: c.to,
        value: c.value,
        access_list: access_list(f)?,
        input: c.input,
    })
}

fn eip1559(f: &Fields<'_>, c: Common) -> Result<TxEip1559, EvmError> {
    if f.has("gasPrice") {
        return Err(EvmError::FeeInconsistent(
            "`gasPrice` is not valid on a type 2 transaction".into(),
        ));
    }
    let max_fee = Fields::require("maxFeePerGas", f.u128("maxFeePerGas")?)?;
    let priority = Fields::require("maxPriorityFeePerGas", f.u128("maxPriorityFeePerGas")?)?;
    if priority > max_fee {
        return Err(EvmError::FeeInconsistent(
            "`maxPriorityFeePerGas` exceeds `maxFeePerGas`".into(),
        ));
    }
    Ok(TxEip1559 {
        chain_id: c.chain_id,
        nonce: c.nonce,
        gas_limit: c.gas_limit,
        max_fee_per_gas: max_fee,
        max_priority_fee_per_gas: priority,
        to: c.to,
        value: c.value,
        access_list: access_list(f)?,
        input: c.input,
    })
}

fn access_list(f: &Fields<'_>) -> Result<AccessList, EvmError> {
    let Some(v) = f.get("accessList") else {
        return Ok(AccessList::default());
    };
    let items = v
        .as_array()
        .ok_or_else(|| tx_err("accessList", "expected an array"))?;
    if items.len() > MAX_ACCESS_LIST_ENTRIES {
        return Err(EvmError::AccessListTooLarge {
            field: "accessList".into(),
            len: items.len(),
            max: MAX_ACCESS_LIST_ENTRIES,
        });
    }
    let items = items
        .iter()
        .enumerate()
        .map(|(i, item)| access_list_item(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(AccessList(items))
}

fn access_list_item(i: usize, item: &Value) -> Result<AccessListItem, EvmError> {
    let field = format!("accessList[{i}]");
    let obj = item
        .as_object()
        .ok_or_else(|| tx_err(&field, "expected an object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "address" && *k != "storageKeys") {
        return Err(EvmError::UnknownField(format!(
            "{field}.{}",
            truncate(k, 64)
        )));
    }
    let addr_field = format!("{field}.address");
    let address = match obj.get("address") {
        Some(Value::String(s)) => parse_address(&addr_field, s)?,
        _ => return Err(tx_err(&addr_field, "expected an address string")),
    };
    let keys_field = format!("{field}.storageKeys");
    let storage_keys = match obj.get("storageKeys") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(keys)) => storage_keys(&keys_field, keys)?,
        Some(_) => return Err(tx_err(&keys_field, "expected an array")),
    };
    Ok(AccessListItem {
        address,
        storage_keys,
    })
}

fn storage_keys(field: &str, keys: &[Value]) -> Result<Vec<B256>, EvmError> {
    if keys.len() > MAX_STORAGE_KEYS_PER_ENTRY {
        return Err(EvmError::AccessListTooLarge {
            field: field.to_owned(),
            len: keys.len(),
            max: MAX_STORAGE_KEYS_PER_ENTRY,
        });
    }
    keys.iter()
        .map(|k| {
            k.as_str()
                .and_then(decode_0x)
                .filter(|b| b.len() == 32)
                .map(|b| B256::from_slice(&b))
                .ok_or_else(|| tx_err(field, "storage keys must be 32 bytes of 0x hex"))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

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

    fn to_alloy(self) -> Signature {
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

fn verify_signer(digest: &B256, sig: &RecoverableSig, expected: Address) -> Result<(), EvmError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_consensus::transaction::SignerRecoverable;
    use alloy_eips::eip2718::Decodable2718;
    use alloy_primitives::{address, b256, hex, keccak256};
    use k256::ecdsa::SigningKey;
    use serde_json::json;

    const MAX: usize = 1024;

    fn key(bytes: [u8; 32]) -> SigningKey {
        SigningKey::from_bytes(&bytes.into()).unwrap()
    }

    fn test_key() -> SigningKey {
        key([0x11; 32])
    }

    fn code(r: Result<impl std::fmt::Debug, EvmError>) -> &'static str {
        r.unwrap_err().code()
    }

    // -- known-answer vectors ------------------------------------------------

    #[test]
    fn eip155_example_from_eip_text() {
        let tx = parse_transaction(
            &json!({
                "nonce": "0x9",
                "gasPrice": "20000000000",
                "gas": 21000,
                "to": "0x3535353535353535353535353535353535353535",
                "value": "1000000000000000000",
                "data": "0x",
                "chainId": 1
            }),
            MAX,
        )
        .unwrap();
        assert_eq!(tx.tx_type(), 0);
        assert_eq!(
            tx.signature_hash(),
            b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
        );
        let sk = key([0x46; 32]);
        let sig = sign_digest(&sk, &tx.signature_hash());
        let signed = tx
            .encode_signed_checked(&sig, address_of(sk.verifying_key()))
            .unwrap();
        assert_eq!(
            signed.raw,
            hex!("f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
        );
        assert_eq!(signed.hash, keccak256(&signed.raw));
    }

    fn mail_typed_data() -> Value {
        json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"}
                ],
                "Person": [
                    {"name": "name", "type": "string"},
                    {"name": "wallet", "type": "address"}
                ],
                "Mail": [
                    {"name": "from", "type": "Person"},
                    {"name": "to", "type": "Person"},
                    {"name": "contents", "type": "string"}
                ]
            },
            "primaryType": "Mail",
            "domain": {
                "name": "Ether Mail",
                "version": "1",
                "chainId": 1,
                "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
            },
            "message": {
                "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
                "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
                "contents": "Hello, Bob!"
            }
        })
    }

    #[test]
    fn eip712_mail_example_from_eip_text() {
        let info = typed_data(&mail_typed_data()).unwrap();
        assert_eq!(
            info.digest,
            b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
        );
        assert_eq!(info.primary_type, "Mail");
        assert_eq!(info.domain_name.as_deref(), Some("Ether Mail"));
        assert_eq!(info.domain_version.as_deref(), Some("1"));
        assert_eq!(info.domain_chain_id, Some(1));
        assert_eq!(
            info.domain_verifying_contract,
            Some(address!("CcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"))
        );

        let sk = key(keccak256("cow").0);
        assert_eq!(
            address_of(sk.verifying_key()),
            address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
        );
        let sig = sign_digest(&sk, &info.digest);
        assert_eq!(
            sig.r,
            hex!("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d")
        );
        assert_eq!(
            sig.s,
            hex!("07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562")
        );
        assert_eq!(sig.to_rsv_65()[64], 28);
    }

    #[test]
    fn eip712_accepts_stringified_json() {
        let s = Value::String(mail_typed_data().to_string());
        assert_eq!(
            typed_data(&s).unwrap(),
            typed_data(&mail_typed_data()).unwrap()
        );
    }

    #[test]
    fn eip712_nested_arrays() {
        let v = json!({
            "types": {
                "EIP712Domain": [{"name": "chainId", "type": "uint256"}],
                "Item": [{"name": "id", "type": "uint256"}, {"name": "tags", "type": "string[]"}],
                "Order": [{"name": "items", "type": "Item[]"}, {"name": "owner", "type": "address"}]
            },
            "primaryType": "Order",
            "domain": {"chainId": "0x89"},
            "message": {
                "items": [{"id": 1, "tags": ["a", "b"]}, {"id": "0x2", "tags": []}],
                "owner": "0x0000000000000000000000000000000000000001"
            }
        });
        let info = typed_data(&v).unwrap();
        assert_eq!(info.domain_chain_id, Some(137));
        assert_eq!(info.domain_name, None);
    }

    #[test]
    fn eip712_errors() {
        assert_eq!(code(typed_data(&json!([1, 2]))), "invalid_typed_data");
        assert_eq!(code(typed_data(&json!("{not json"))), "invalid_typed_data");

        let mut v = mail_typed_data();
        v["message"]["from"]["wallet"] = json!("not an address");
        assert_eq!(code(typed_data(&v)), "invalid_typed_data");

        let mut v = mail_typed_data();
        v["domain"]["extra"] = json!("silently dropped by alloy");
        let err = typed_data(&v).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");

        // Declared order differs from the order alloy hashes in.
        let mut v = mail_typed_data();
        v["types"]["EIP712Domain"]
            .as_array_mut()
            .unwrap()
            .swap(0, 1);
        let err = typed_data(&v).unwrap_err();
        assert!(err.to_string().contains("EIP712Domain"), "{err}");

        // Declared field with no value in the domain.
        let mut v = mail_typed_data();
        v["domain"].as_object_mut().unwrap().remove("version");
        assert_eq!(code(typed_data(&v)), "invalid_typed_data");

        let mut v = mail_typed_data();
        v["primaryType"] = json!("Missing");
        assert_eq!(code(typed_data(&v)), "invalid_typed_data");
    }

    /// Runs `f` on a thread with the stack of a tokio worker (2 MiB), where requests run.
    fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// `P` → `S1` → … → `S{k-1}`, each reference with `dims` array dimensions, the last
    /// type holding `bool` with `last_dims`; and a message of that exact shape.
    fn deepest(k: usize, dims: usize, last_dims: usize) -> Value {
        let name = |i: usize| {
            if i == 0 {
                "P".to_string()
            } else {
                format!("S{i}")
            }
        };
        let mut types = Map::new();
        types.insert("EIP712Domain".into(), json!([]));
        let mut leaf = json!(true);
        for _ in 0..last_dims {
            leaf = json!([leaf]);
        }
        let mut msg = json!({ "b": leaf });
        for i in (0..k).rev() {
            let field = if i + 1 == k {
                json!([{"name": "b", "type": format!("bool{}", "[]".repeat(last_dims))}])
            } else {
                json!([{"name": "n", "type": format!("{}{}", name(i + 1), "[]".repeat(dims))}])
            };
            types.insert(name(i), field);
            if i + 1 < k {
                let mut v = msg;
                for _ in 0..dims {
                    v = json!([v]);
                }
                msg = json!({ "n": v });
            }
        }
        json!({"types": types, "primaryType": "P", "domain": {}, "message": msg})
    }

    #[test]
    fn eip712_at_the_limits_hashes_on_a_worker_stack() {
        let l = typed_data_limits::Limits::DEFAULT;
        // deepest struct chain, and deepest struct + array nesting the limits allow
        for (k, dims, last) in [(l.max_struct_depth, 0, 8), (4, 8, 4)] {
            let v = deepest(k, dims, last);
            let got = on_worker_stack(move || typed_data(&v).map(|i| i.primary_type));
            assert_eq!(got, Ok("P".to_string()), "k={k} dims={dims} last={last}");
        }
        // one more level is refused before alloy
        let v = deepest(4, 8, 5);
        assert_eq!(
            on_worker_stack(move || typed_data(&v).map(|_| ()))
                .unwrap_err()
                .code(),
            "typed_data_too_complex"
        );
    }

    #[test]
    fn eip712_hostile_shapes_are_refused_on_a_worker_stack() {
        let dims = format!("uint256{}", "[]".repeat(100_000));
        let mut chain = Map::new();
        for i in 0..200 {
            chain.insert(
                format!("S{i}"),
                json!([{"name": "n", "type": format!("S{}", i + 1)}]),
            );
        }
        chain.insert("S200".into(), json!([]));
        let many: Map<String, Value> = (0..5000).map(|i| (format!("T{i}"), json!([]))).collect();
        let fields: Vec<Value> = (0..100_000)
            .map(|i| json!({"name": format!("f{i}"), "type": "uint256"}))
            .collect();
        let cases = [
            json!({"types": {"P": [{"name": "a", "type": dims}]}, "primaryType": "P", "message": {}}),
            json!({"types": chain, "primaryType": "S0", "message": {}}),
            json!({"types": many, "primaryType": "T0", "message": {}}),
            json!({"types": {"P": fields}, "primaryType": "P", "message": {}}),
        ];
        for (i, v) in cases.into_iter().enumerate() {
            let got = on_worker_stack(move || typed_data(&v).map(|_| ()));
            assert_eq!(
                got.unwrap_err().code(),
                "typed_data_too_complex",
                "case {i}"
            );
        }
    }

    #[test]
    fn eip191_hello_world() {
        assert_eq!(
            personal_message_digest(b"Hello World"),
            b256!("a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2")
        );
    }

    #[test]
    fn personal_sign_roundtrip() {
        let sk = test_key();
        let digest = personal_message_digest(&parse_message("hello").unwrap());
        let sig = sign_digest(&sk, &digest);
        assert_eq!(
            recover_address(&digest, &sig).unwrap(),
            address_of(sk.verifying_key())
        );
        let alloy = Signature::from_raw(&sig.to_rsv_65()).unwrap();
        assert_eq!(
            alloy.recover_address_from_msg("hello").unwrap(),
            address_of(sk.verifying_key())
        );
    }

    #[test]
    fn parse_message_forms() {
        assert_eq!(parse_message("0x48656c6c6f").unwrap(), b"Hello");
        assert_eq!(parse_message("0xABcd").unwrap(), vec![0xab, 0xcd]);
        assert_eq!(parse_message("0x").unwrap(), Vec::<u8>::new());
        assert_eq!(parse_message("Hello").unwrap(), b"Hello");
        assert_eq!(parse_message("").unwrap(), Vec::<u8>::new());
        assert_eq!(code(parse_message("0x123")), "invalid_message");
        assert_eq!(code(parse_message("0xhello")), "invalid_message");
    }

    #[test]
    fn parse_digest_forms() {
        let d = "0x".to_owned() + &"ab".repeat(32);
        assert_eq!(parse_digest(&d).unwrap(), B256::repeat_byte(0xab));
        assert_eq!(code(parse_digest(&"ab".repeat(32))), "invalid_digest");
        assert_eq!(code(parse_digest(&d[..64])), "invalid_digest");
        assert_eq!(code(parse_digest(&(d.clone() + "00"))), "invalid_digest");
        assert_eq!(code(parse_digest("0xzz")), "invalid_digest");
    }

    // -- typed transaction round trips ----------------------------------------

    fn roundtrip(tx: &UnsignedTx) -> TxEnvelope {
        let sk = test_key();
        let sig = sign_digest(&sk, &tx.signature_hash());
        let signed = tx.encode_signed(&sig);
        let env = TxEnvelope::decode_2718(&mut signed.raw.as_slice()).unwrap();
        assert_eq!(*env.tx_hash(), signed.hash);
        assert_eq!(env.signature_hash(), tx.signature_hash());
        assert_eq!(
            env.recover_signer().unwrap(),
            address_of(sk.verifying_key())
        );
        env
    }

    #[test]
    fn eip1559_roundtrip() {
        let tx = parse_transaction(
            &json!({
                "type": "0x2",
                "chainId": "0x1",
                "nonce": "7",
                "from": "0x0000000000000000000000000000000000000001",
                "to": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
                "value": "0xde0b6b3a7640000",
                "input": "0xa9059cbb",
                "gasLimit": "0x5208",
                "maxFeePerGas": "30000000000",
                "maxPriorityFeePerGas": "0x3b9aca00",
                "accessList": []
            }),
            MAX,
        )
        .unwrap();
        assert_eq!(tx.tx_type(), 2);
        assert_eq!(tx.selector(), Some([0xa9, 0x05, 0x9c, 0xbb]));
        assert_eq!(tx.from(), Some(Address::with_last_byte(1)));
        let env = roundtrip(&tx);
        let signed = env.as_eip1559().unwrap();
        let inner = signed.tx();
        assert_eq!(EvmTx::Eip1559(inner.clone()), *tx.inner());
        assert_eq!(inner.chain_id, 1);
        assert_eq!(inner.nonce, 7);
        assert_eq!(inner.gas_limit, 21000);
        assert_eq!(inner.max_fee_per_gas, 30_000_000_000);
        assert_eq!(inner.max_priority_fee_per_gas, 1_000_000_000);
        assert_eq!(inner.value, U256::from(10u64.pow(18)));
        assert_eq!(inner.input.as_ref(), tx.data());
        assert_eq!(inner.to.to().copied(), tx.to());
        assert_eq!(
            tx.max_cost(),
            U256::from(21000u64 * 30_000_000_000 + 10u64.pow(18))
        );
    }

    #[test]
    fn eip2930_roundtrip_with_access_list() {
        let key_hex = format!("0x{}", "01".repeat(32));
        let tx = parse_transaction(
            &json!({
                "chainId": 11155111,
                "nonce": 0,
                "gas": "0x10000",
                "gasPrice": "0x3b9aca00",
                "data": "0x6080",
                "accessList": [{
                    "address": "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                    "storageKeys": [key_hex]
                }]
            }),
            MAX,
        )
        .unwrap();
        assert_eq!(tx.tx_type(), 1);
        assert_eq!(tx.to(), None);
        assert_eq!(tx.max_fee_per_gas(), 1_000_000_000);
        let env = roundtrip(&tx);
        let inner = env.as_eip2930().unwrap().tx();
        assert_eq!(EvmTx::Eip2930(inner.clone()), *tx.inner());
        assert_eq!(inner.chain_id, 11155111);
        assert!(inner.to.is_create());
        assert_eq!(inner.access_list.0.len(), 1);
        assert_eq!(
            inner.access_list.0[0].storage_keys,
            vec![B256::repeat_byte(1)]
        );
        assert_eq!(inner.input.as_ref(), &[0x60, 0x80]);
    }

    #[test]
    fn legacy_roundtrip_uses_eip155_v() {
        let tx = parse_transaction(
            &json!({"chainId": 5, "nonce": 1, "gas": 21000, "gasPrice": 1, "to": ""}),
            MAX,
        )
        .unwrap();
        let env = roundtrip(&tx);
        assert_eq!(env.as_legacy().unwrap().tx().chain_id, Some(5));
    }

    #[test]
    fn type_inference() {
        let base = json!({"chainId": 1, "nonce": 0, "gas": 21000});
        let with = |extra: Value| {
            let mut v = base.clone();
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            parse_transaction(&v, MAX).map(|t| t.tx_type())
        };
        assert_eq!(with(json!({"gasPrice": 1})), Ok(0));
        assert_eq!(with(json!({"gasPrice": 1, "accessList": []})), Ok(1));
        assert_eq!(
            with(json!({"maxFeePerGas": 2, "maxPriorityFeePerGas": 1})),
            Ok(2)
        );
        assert_eq!(with(json!({"type": 1, "gasPrice": 1})), Ok(1));
        assert_eq!(
            with(json!({"type": "0x0", "gasPrice": 1, "gasLimit": 21000})),
            Ok(0)
        );
    }

    // -- signatures -------------------------------------------------------------

    #[test]
    fn high_s_is_normalized_with_parity_flip() {
        let sk = test_key();
        let digest = personal_message_digest(b"malleable");
        let (sig, recid) = sk.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let low = RecoverableSig::from_k256(&sig, recid);
        // Build the high-s twin: s' = n - s, parity flipped.
        let high = k256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        let high_recid = k256::ecdsa::RecoveryId::new(!recid.is_y_odd(), false);
        let (high, high_recid) = if sig.normalize_s().is_some() {
            (sig, recid)
        } else {
            (high, high_recid)
        };
        assert!(high.normalize_s().is_some());
        let normalized = RecoverableSig::from_k256(&high, high_recid);
        assert_eq!(normalized, low);
        assert_eq!(
            recover_address(&digest, &normalized).unwrap(),
            address_of(sk.verifying_key())
        );
    }

    #[test]
    fn from_rs_recovering_finds_parity_and_rejects_wrong_key() {
        let sk = test_key();
        let me = address_of(sk.verifying_key());
        let digest = personal_message_digest(b"hsm");
        let sig = sign_digest(&sk, &digest);
        let got = RecoverableSig::from_rs_recovering(&digest, sig.r, sig.s, me).unwrap();
        assert_eq!(got, sig);
        let other = address_of(key([0x22; 32]).verifying_key());
        assert_eq!(
            code(RecoverableSig::from_rs_recovering(
                &digest, sig.r, sig.s, other
            )),
            "signer_mismatch"
        );
        assert_eq!(
            code(RecoverableSig::from_rs_recovering(
                &digest, [0; 32], sig.s, me
            )),
            "invalid_signature"
        );
    }

    #[test]
    fn encode_signed_checked_rejects_wrong_signer() {
        let tx = parse_transaction(
            &json!({"chainId": 1, "nonce": 0, "gas": 21000, "gasPrice": 1}),
            MAX,
        )
        .unwrap();
        let sig = sign_digest(&test_key(), &tx.signature_hash());
        assert_eq!(
            code(tx.encode_signed_checked(&sig, Address::ZERO)),
            "signer_mismatch"
        );
    }

    // -- error codes ----------------------------------------------------------------

    fn parse(v: Value) -> Result<UnsignedTx, EvmError> {
        parse_transaction(&v, 4)
    }

    #[test]
    fn transaction_error_codes() {
        let cases = [
            (
                json!({"nonce": 0, "gas": 1, "gasPrice": 1}),
                "missing_chain_id",
            ),
            (
                json!({"chainId": 0, "nonce": 0, "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"type": 2, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}),
                "fee_inconsistent",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1,
                    "maxFeePerGas": 1, "maxPriorityFeePerGas": 2}),
                "fee_inconsistent",
            ),
            (
                json!({"type": 0, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "maxFeePerGas": 1}),
                "fee_inconsistent",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "data": "0x0102030405"}),
                "data_too_large",
            ),
            (
                json!({"chainId": 1, "nonce": "0xg", "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": -1, "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": 1.5, "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": "0x", "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": " 1", "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": "0x10000000000000000", "gas": 1, "gasPrice": 1}),
                "invalid_quantity",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "foo": 1}),
                "unknown_field",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "accessList": [{"address": "0x0000000000000000000000000000000000000001",
                                    "storageKeys": [], "x": 1}]}),
                "unknown_field",
            ),
            (json!({"type": 3}), "unsupported_tx_type"),
            (
                json!({"type": "0x7e", "chainId": 1, "nonce": 0, "gas": 1}),
                "unsupported_tx_type",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "authorizationList": []}),
                "unsupported_tx_type",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "to": "0x1234"}),
                "invalid_address",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "to": "0xcCCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}),
                "invalid_address",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "from": "nope"}),
                "invalid_address",
            ),
            (
                json!({"chainId": 1, "gas": 1, "gasPrice": 1}),
                "invalid_transaction",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gasPrice": 1}),
                "invalid_transaction",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1}),
                "invalid_transaction",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "data": "0x01", "input": "0x02"}),
                "invalid_transaction",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasLimit": 2, "gasPrice": 1}),
                "invalid_transaction",
            ),
            (
                json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "data": "0x123"}),
                "invalid_transaction",
            ),
            (
                json!({"type": 0, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                    "accessList": []}),
                "invalid_transaction",
            ),
            (json!("not an object"), "invalid_transaction"),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            let err = parse(v).unwrap_err();
            assert_eq!(err.code(), want, "case {i}: {err}");
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn legacy_chain_id_bound() {
        let legacy = |id: u64| {
            parse(json!({"chainId": id.to_string(), "nonce": 0, "gas": 1, "gasPrice": 1}))
        };
        let tx = legacy(MAX_LEGACY_CHAIN_ID).unwrap();
        // the largest v (2 * id + 35 + parity 1) fits 64 bits at the bound, not above it
        let v = |id: u64| u128::from(id) * 2 + 36;
        assert!(v(tx.chain_id()) <= u128::from(u64::MAX));
        assert!(v(MAX_LEGACY_CHAIN_ID + 1) > u128::from(u64::MAX));
        let err = legacy(MAX_LEGACY_CHAIN_ID + 1).unwrap_err();
        assert_eq!(err.code(), "invalid_quantity");
        assert!(err.to_string().contains("chainId"), "{err}");
        assert_eq!(legacy(u64::MAX).unwrap_err().code(), "invalid_quantity");
        // typed transactions carry parity, not v: any 64-bit chain id is fine
        let typed = parse(
            json!({"type": 2, "chainId": u64::MAX.to_string(), "nonce": 0, "gas": 1,
            "maxFeePerGas": 1, "maxPriorityFeePerGas": 1}),
        );
        assert_eq!(typed.unwrap().chain_id(), u64::MAX);
    }

    #[test]
    fn access_list_bounds() {
        let key = json!(format!("0x{}", "11".repeat(32)));
        let entry = |keys: usize| {
            json!({"address": "0x0000000000000000000000000000000000000001",
                   "storageKeys": vec![key.clone(); keys]})
        };
        let tx = |list: Vec<Value>| {
            parse(
                json!({"type": 1, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "accessList": list}),
            )
        };
        let ok = tx(vec![entry(0); MAX_ACCESS_LIST_ENTRIES]).unwrap();
        assert_eq!(ok.access_list().unwrap().0.len(), MAX_ACCESS_LIST_ENTRIES);
        let err = tx(vec![entry(0); MAX_ACCESS_LIST_ENTRIES + 1]).unwrap_err();
        assert_eq!(err.code(), "access_list_too_large");
        assert!(tx(vec![entry(MAX_STORAGE_KEYS_PER_ENTRY)]).is_ok());
        let err = tx(vec![entry(0), entry(MAX_STORAGE_KEYS_PER_ENTRY + 1)]).unwrap_err();
        assert_eq!(err.code(), "access_list_too_large");
        assert!(
            err.to_string().contains("accessList[1].storageKeys"),
            "{err}"
        );
    }

    #[test]
    fn accepted_tx_edge_cases() {
        // Identical data/input, identical gas/gasLimit, nulls as absent.
        let tx = parse(json!({
            "chainId": 1, "nonce": 0, "gas": 1, "gasLimit": "0x1", "gasPrice": 1,
            "data": "0x01", "input": "0x01", "to": null, "maxFeePerGas": null
        }))
        .unwrap();
        assert_eq!(tx.data(), &[1]);
        assert_eq!(tx.to(), None);
        assert_eq!(tx.selector(), None);
        let all_lower = parse(json!({
            "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
            "to": "0xcccccccccccccccccccccccccccccccccccccccc"
        }))
        .unwrap();
        assert_eq!(all_lower.to(), Some(Address::repeat_byte(0xcc)));
    }

    #[test]
    fn error_messages_name_the_field() {
        let err = parse(json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": "x"})).unwrap_err();
        assert!(err.to_string().contains("gasPrice"), "{err}");
        let err = parse(json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "bogus": 1}))
            .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn every_code_is_snake_case_and_distinct() {
        let all = [
            EvmError::InvalidMessage(String::new()),
            EvmError::InvalidTypedData(String::new()),
            EvmError::TypedDataTooComplex(String::new()),
            tx_err("f", "r"),
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
            qty_err("f", "r"),
            addr_err("f", "r"),
            EvmError::InvalidDigest(String::new()),
            EvmError::InvalidSignature(String::new()),
            EvmError::SignerMismatch {
                expected: Address::ZERO,
                recovered: Address::ZERO,
            },
        ];
        let mut codes: Vec<_> = all.iter().map(EvmError::code).collect();
        assert!(codes
            .iter()
            .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }
}
