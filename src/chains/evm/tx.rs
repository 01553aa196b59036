//! EVM transactions as `eth_signTransaction` takes them: strict JSON (unknown fields
//! refused, bounded data and access lists) into legacy (EIP-155), EIP-2930, EIP-1559 and
//! EIP-7702 set-code transactions, and the signed encoding.

use super::*;

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
    "authorizationList",
];

/// Most entries in an access list. Real ones name a handful of contracts; every entry
/// is parsed, hashed and audited, so the count is bounded rather than left to the body.
pub const MAX_ACCESS_LIST_ENTRIES: usize = 256;
/// Most storage keys in one access-list entry.
pub const MAX_STORAGE_KEYS_PER_ENTRY: usize = 256;
/// Largest chain id of a legacy transaction: its EIP-155 `v` (`2 * chainId + 35 +
/// parity`) must fit the 64 bits wallets and keyward's answer carry it in.
pub const MAX_LEGACY_CHAIN_ID: u64 = (u64::MAX - 36) / 2;

/// Fields that only make sense for blob (type 3) transactions; reported as an
/// unsupported type rather than an unknown field.
const UNSUPPORTED_TYPE_FIELDS: &[&str] = &[
    "maxFeePerBlobGas",
    "blobVersionedHashes",
    "blobs",
    "sidecar",
];

/// One of the transaction kinds keyward is willing to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvmTx {
    Legacy(TxLegacy),
    Eip2930(TxEip2930),
    Eip1559(TxEip1559),
    /// EIP-7702 set-code: EIP-1559 fees plus a list of signed authorizations.
    Eip7702(TxEip7702),
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
            EvmTx::Eip7702($t) => $body,
        }
    };
}

impl UnsignedTx {
    /// An EIP-1559 call that is never signed: what the transaction rules price for a
    /// user operation (`crate::chains::evm::user_op`), the account as `to`.
    pub fn priced_call(
        chain_id: u64,
        to: Address,
        input: Vec<u8>,
        gas_limit: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    ) -> UnsignedTx {
        UnsignedTx {
            tx: EvmTx::Eip1559(TxEip1559 {
                chain_id,
                nonce: 0,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to: TxKind::Call(to),
                value: U256::ZERO,
                access_list: AccessList::default(),
                input: input.into(),
            }),
            from: None,
        }
    }

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
            EvmTx::Eip7702(t) => t.chain_id,
        }
    }

    pub fn nonce(&self) -> u64 {
        each_tx!(self, t => t.nonce)
    }

    /// `None` means contract creation.
    pub fn to(&self) -> Option<Address> {
        match &self.tx {
            // a set-code transaction always calls: it cannot create a contract
            EvmTx::Eip7702(t) => Some(t.to),
            EvmTx::Legacy(t) => t.to.to().copied(),
            EvmTx::Eip2930(t) => t.to.to().copied(),
            EvmTx::Eip1559(t) => t.to.to().copied(),
        }
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
            EvmTx::Eip7702(t) => t.max_fee_per_gas,
        }
    }

    pub fn max_priority_fee_per_gas(&self) -> Option<u128> {
        match &self.tx {
            EvmTx::Eip1559(t) => Some(t.max_priority_fee_per_gas),
            EvmTx::Eip7702(t) => Some(t.max_priority_fee_per_gas),
            _ => None,
        }
    }

    pub fn access_list(&self) -> Option<&AccessList> {
        match &self.tx {
            EvmTx::Legacy(_) => None,
            EvmTx::Eip2930(t) => Some(&t.access_list),
            EvmTx::Eip1559(t) => Some(&t.access_list),
            EvmTx::Eip7702(t) => Some(&t.access_list),
        }
    }

    /// The signed authorizations of a set-code (type 4) transaction; empty otherwise.
    pub fn authorizations(&self) -> &[alloy_eips::eip7702::SignedAuthorization] {
        match &self.tx {
            EvmTx::Eip7702(t) => &t.authorization_list,
            _ => &[],
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
            EvmTx::Eip7702(_) => 4,
        }
    }

    fn typed(&self) -> TypedTransaction {
        match &self.tx {
            EvmTx::Legacy(t) => t.clone().into(),
            EvmTx::Eip2930(t) => t.clone().into(),
            EvmTx::Eip1559(t) => t.clone().into(),
            EvmTx::Eip7702(t) => t.clone().into(),
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
pub(super) fn parse_quantity(field: &str, v: &Value) -> Result<U256, EvmError> {
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
    if ty != 4 && f.has("authorizationList") {
        return Err(tx_err(
            "authorizationList",
            &format!("not valid on a type {ty} transaction (only on set-code, type 4)"),
        ));
    }
    let common = Common::parse(&f, max_data_len)?;
    let tx = match ty {
        0 => EvmTx::Legacy(legacy(&f, common)?),
        1 => EvmTx::Eip2930(eip2930(&f, common)?),
        4 => EvmTx::Eip7702(eip7702(&f, common)?),
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

/// Returns 0, 1, 2 or 4. Inference mirrors how wallets fill in a missing type.
fn tx_type(f: &Fields<'_>) -> Result<u8, EvmError> {
    let Some(ty) = f.quantity("type")? else {
        return Ok(if f.has("authorizationList") {
            4
        } else if f.has("maxFeePerGas") || f.has("maxPriorityFeePerGas") {
            2
        } else if f.has("accessList") {
            1
        } else {
            0
        });
    };
    match u8::try_from(ty) {
        Ok(t @ (0..=2 | 4)) => Ok(t),
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

/// EIP-1559 fields, a call (`to` required: EIP-7702 forbids creation) and a non-empty
/// list of signed authorizations.
fn eip7702(f: &Fields<'_>, c: Common) -> Result<TxEip7702, EvmError> {
    let TxKind::Call(to) = c.to else {
        return Err(tx_err(
            "to",
            "a set-code (type 4) transaction cannot create a contract",
        ));
    };
    let list = f
        .get("authorizationList")
        .ok_or_else(|| tx_err("authorizationList", "required field is missing"))?;
    let authorization_list = parse_authorization_list(list)?;
    let base = eip1559(
        f,
        Common {
            to: TxKind::Call(to),
            ..c
        },
    )?;
    Ok(TxEip7702 {
        chain_id: base.chain_id,
        nonce: base.nonce,
        gas_limit: base.gas_limit,
        max_fee_per_gas: base.max_fee_per_gas,
        max_priority_fee_per_gas: base.max_priority_fee_per_gas,
        to,
        value: base.value,
        access_list: base.access_list,
        authorization_list,
        input: base.input,
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
