//! EIP-712 families that move or hand over assets, recognised by primary type, and
//! priced when their fields are the canonical ones.
//!
//! A contract verifies a signature against its own type hash, so a message whose
//! primary type is `Permit` but whose fields differ from EIP-2612's cannot be used as an
//! EIP-2612 permit; it can still be some other contract's permit. Hence: a known
//! spending name with the canonical fields is priced, with other fields it is
//! [`TypedFamily::Unpriced`]. A name the lists do not know is judged by what it
//! references and by its fields (see [`classify`]); only what no signal marks is
//! [`TypedFamily::Other`]. Names are one signal among several: a contract can call its
//! permit anything. Canonical
//! type strings come from alloy `sol!` structs, compared with alloy's own `encodeType`
//! of the request.

use alloy_dyn_abi::{DynSolValue, TypedData};
use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolStruct};
use serde_json::Value;

use super::erc20::{PermitBatch, PermitSingle};

sol! {
    /// EIP-2612 (<https://eips.ethereum.org/EIPS/eip-2612>).
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
    /// Permit2 `ISignatureTransfer` (<https://github.com/Uniswap/permit2/blob/main/src/interfaces/ISignatureTransfer.sol>).
    struct TokenPermissions { address token; uint256 amount; }
    struct PermitTransferFrom { TokenPermissions permitted; address spender; uint256 nonce; uint256 deadline; }
    struct PermitBatchTransferFrom { TokenPermissions[] permitted; address spender; uint256 nonce; uint256 deadline; }
    /// EIP-3009 (<https://eips.ethereum.org/EIPS/eip-3009>), USDC and EURC among others.
    struct TransferWithAuthorization { address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce; }
    struct ReceiveWithAuthorization { address from; address to; uint256 value; uint256 validAfter; uint256 validBefore; bytes32 nonce; }
}

mod dai {
    alloy_sol_types::sol! {
        /// DAI's pre-EIP-2612 permit: `allowed = true` grants `type(uint256).max`
        /// (<https://github.com/makerdao/dss/blob/master/src/dai.sol>).
        struct Permit { address holder; address spender; uint256 nonce; uint256 expiry; bool allowed; }
    }
}

/// A transfer or allowance a typed-data signature authorises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedMove {
    /// Token contract.
    pub token: Address,
    /// Amount (for an unlimited allowance, the amount as signed).
    pub amount: U256,
    /// Recipient or spender.
    pub party: Address,
    /// An allowance rather than a transfer.
    pub approval: bool,
    /// An allowance at its type's maximum.
    pub unlimited: bool,
}

/// What a typed-data message is, for policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypedFamily {
    /// Not a known asset-moving family.
    Other,
    /// A known family with canonical fields: what it moves, on the domain's chain.
    Priced {
        /// Family name, for messages.
        family: &'static str,
        /// Domain `chainId`.
        chain_id: u64,
        /// Transfers and allowances.
        moves: Vec<TypedMove>,
    },
    /// A known asset-moving family the engine cannot price.
    Unpriced {
        /// Family name and why, for messages.
        family: &'static str,
    },
}

impl TypedFamily {
    /// True for every known asset-moving family.
    pub fn moves_assets(&self) -> bool {
        !matches!(self, TypedFamily::Other)
    }
}

/// Asset-moving primary types the engine recognises by name but cannot price, with the
/// family and its source.
pub const UNPRICED_FAMILIES: &[(&str, &str)] = &[
    // Seaport 1.x: a listing transfers the offer items on fulfilment
    // (https://github.com/ProjectOpenSea/seaport-types/blob/main/src/lib/ConsiderationConstants.sol)
    ("OrderComponents", "Seaport order"),
    ("BulkOrder", "Seaport bulk order"),
    // ERC-2771 forwarders execute any call as the signer
    // (OpenZeppelin ERC2771Forwarder / MinimalForwarder)
    ("ForwardRequest", "ERC-2771 forward request"),
    ("ForwardRequestData", "ERC-2771 forward request"),
    // Biconomy / Polygon NativeMetaTransaction: executeMetaTransaction as the signer
    ("MetaTransaction", "meta-transaction"),
    // Safe: a transaction of the Safe, or a message the Safe then signs (EIP-1271)
    // (https://github.com/safe-global/safe-smart-account/blob/main/contracts/Safe.sol)
    ("SafeTx", "Safe transaction"),
    ("SafeMessage", "Safe message"),
    // CoW Protocol GPv2Order, 1inch Limit Order Protocol v3/v4, 0x v3, Rarible, Blur:
    // all name their order `Order`
    (
        "Order",
        "exchange order (CoW / 1inch / 0x v3 / Rarible / Blur)",
    ),
    ("OrderRFQ", "1inch RFQ order"),
    // 0x v4 (https://github.com/0xProject/protocol/tree/development/contracts/zero-ex)
    ("LimitOrder", "0x v4 limit order"),
    ("RfqOrder", "0x v4 RFQ order"),
    ("OtcOrder", "0x v4 OTC order"),
    // LooksRare v1 / v2
    ("MakerOrder", "LooksRare maker order"),
    ("Maker", "LooksRare maker order"),
    // ERC-721 / ERC-1155 operator permits: Uniswap v4 PositionManager `PermitForAll`
    // (https://github.com/Uniswap/v4-periphery/blob/main/src/libraries/ERC721PermitHash.sol)
    ("PermitForAll", "ERC-721 operator permit"),
    // ERC-7739 nested typed data: the account signs the `contents` it wraps
    // (https://eips.ethereum.org/EIPS/eip-7739)
    ("TypedDataSign", "ERC-7739 wrapped typed data"),
    // OpenGSN: a relayed call executed as the signer
    // (https://github.com/opengsn/gsn/blob/master/packages/contracts/src/utils/GsnEip712Library.sol)
    ("RelayRequest", "OpenGSN relay request"),
    // ERC-4337 v0.8 user operations are EIP-712 (EntryPoint `PackedUserOperation`)
    ("PackedUserOperation", "ERC-4337 user operation"),
    ("UserOperation", "ERC-4337 user operation"),
    // MetaMask delegation framework: a delegate may act for the signer
    ("Delegation", "delegation"),
];

/// Field names that say who receives an asset or may move it.
const PARTY_FIELDS: &[&str] = &[
    "spender",
    "operator",
    "delegate",
    "delegatee",
    "to",
    "target",
    "recipient",
    "receiver",
    "taker",
    "beneficiary",
    "destination",
    "dest",
    "payee",
    "approved",
];

/// `bytes` field names that carry a call to execute.
const CALL_FIELDS: &[&str] = &[
    "data",
    "calldata",
    "execution",
    "executiondata",
    "payload",
    "initcode",
    "func",
    "call",
];

/// Primary types refused by the built-in guard unless a rule lists them: every family
/// [`classify`] knows. (Permit2's witness types are matched by prefix in [`classify`].)
pub const PRICED_FAMILY_NAMES: &[&str] = &[
    "Permit",
    "PermitSingle",
    "PermitBatch",
    "PermitTransferFrom",
    "PermitBatchTransferFrom",
    "PermitWitnessTransferFrom",
    "PermitBatchWitnessTransferFrom",
    "TransferWithAuthorization",
    "ReceiveWithAuthorization",
];

fn field<'a>(v: &'a DynSolValue, name: &str) -> Option<&'a DynSolValue> {
    match v {
        DynSolValue::CustomStruct {
            prop_names, tuple, ..
        } => prop_names
            .iter()
            .position(|p| p == name)
            .and_then(|i| tuple.get(i)),
        _ => None,
    }
}

fn addr(v: &DynSolValue, name: &str) -> Option<Address> {
    field(v, name)?.as_address()
}

fn uint(v: &DynSolValue, name: &str) -> Option<U256> {
    field(v, name)?.as_uint().map(|(u, _)| u)
}

/// The `(name, type)` fields the request declares for `type_name`.
fn declared<'a>(types: &'a Value, type_name: &str) -> Option<Vec<(&'a str, &'a str)>> {
    types
        .get(type_name)?
        .as_array()?
        .iter()
        .map(|p| Some((p.get("name")?.as_str()?, p.get("type")?.as_str()?)))
        .collect()
}

fn is<S: SolStruct>(td: &TypedData) -> bool {
    td.encode_type().ok().as_deref() == Some(S::eip712_encode_type().as_ref())
}

/// Classifies parsed typed data; `types` is the request's `types` object.
///
/// Three signals, any of which makes a message asset-moving: its primary type's name (a
/// known family, priced when its fields are canonical); the name of any struct type it
/// references (a wrapper such as ERC-7739's `TypedDataSign` or a forwarder's request is
/// what it wraps); and its structure: any referenced struct with a field naming a party
/// (spender, operator, recipient, target, ...) next to an amount, an approval flag or
/// call data, or any `bytes` field carrying a call.
pub fn classify(td: &TypedData, types: &Value) -> TypedFamily {
    let primary = td.primary_type.as_str();
    if let Some((_, family)) = UNPRICED_FAMILIES.iter().find(|(n, _)| *n == primary) {
        return TypedFamily::Unpriced { family };
    }
    let witness =
        primary == "PermitWitnessTransferFrom" || primary == "PermitBatchWitnessTransferFrom";
    if !PRICED_FAMILY_NAMES.contains(&primary) && !witness {
        return by_structure(types, primary);
    }
    let unpriced = |family| TypedFamily::Unpriced { family };
    let Ok(msg) = td.coerce() else {
        return unpriced("spending type whose message does not coerce");
    };
    let Some(chain_id) = td.domain.chain_id.and_then(|c| u64::try_from(c).ok()) else {
        return unpriced("spending type without a domain chainId");
    };
    let contract = td.domain.verifying_contract;
    let priced = |family, moves: Option<Vec<TypedMove>>| match moves {
        Some(moves) => TypedFamily::Priced {
            family,
            chain_id,
            moves,
        },
        None => unpriced("spending type whose fields do not decode"),
    };
    let approval = |token, amount: U256, party, bits: usize| TypedMove {
        token,
        amount,
        party,
        approval: true,
        unlimited: amount.bit(bits - 1) || amount.bit(255),
    };
    let transfer = |token, amount, party| TypedMove {
        token,
        amount,
        party,
        approval: false,
        unlimited: false,
    };
    let permissions = |v: &DynSolValue| -> Option<(Address, U256)> {
        Some((addr(v, "token")?, uint(v, "amount")?))
    };
    match primary {
        "Permit" if is::<Permit>(td) => priced(
            "EIP-2612 Permit",
            (|| {
                Some(vec![approval(
                    contract?,
                    uint(&msg, "value")?,
                    addr(&msg, "spender")?,
                    256,
                )])
            })(),
        ),
        "Permit" if is::<dai::Permit>(td) => priced(
            "DAI Permit",
            (|| {
                let allowed = field(&msg, "allowed")?.as_bool()?;
                // `allowed = false` revokes: nothing moves
                Some(if allowed {
                    vec![approval(contract?, U256::MAX, addr(&msg, "spender")?, 256)]
                } else {
                    Vec::new()
                })
            })(),
        ),
        "Permit" => unpriced("Permit with non-EIP-2612 fields (e.g. an ERC-721 / EIP-4494 permit)"),
        "PermitSingle" if is::<PermitSingle>(td) => priced(
            "Permit2 PermitSingle",
            (|| {
                let d = field(&msg, "details")?;
                Some(vec![approval(
                    addr(d, "token")?,
                    uint(d, "amount")?,
                    addr(&msg, "spender")?,
                    160,
                )])
            })(),
        ),
        "PermitBatch" if is::<PermitBatch>(td) => priced(
            "Permit2 PermitBatch",
            (|| {
                let spender = addr(&msg, "spender")?;
                field(&msg, "details")?
                    .as_array()?
                    .iter()
                    .map(|d| {
                        Some(approval(
                            addr(d, "token")?,
                            uint(d, "amount")?,
                            spender,
                            160,
                        ))
                    })
                    .collect()
            })(),
        ),
        "PermitTransferFrom" if is::<PermitTransferFrom>(td) => priced(
            "Permit2 PermitTransferFrom",
            (|| {
                let (token, amount) = permissions(field(&msg, "permitted")?)?;
                Some(vec![transfer(token, amount, addr(&msg, "spender")?)])
            })(),
        ),
        "PermitBatchTransferFrom" if is::<PermitBatchTransferFrom>(td) => priced(
            "Permit2 PermitBatchTransferFrom",
            batch_transfer(&msg, permissions),
        ),
        _ if witness && witness_prefix_ok(types, primary) => priced(
            "Permit2 witness transfer",
            if primary == "PermitWitnessTransferFrom" {
                (|| {
                    let (token, amount) = permissions(field(&msg, "permitted")?)?;
                    Some(vec![transfer(token, amount, addr(&msg, "spender")?)])
                })()
            } else {
                batch_transfer(&msg, permissions)
            },
        ),
        "TransferWithAuthorization" if is::<TransferWithAuthorization>(td) => priced(
            "EIP-3009 TransferWithAuthorization",
            (|| {
                Some(vec![transfer(
                    contract?,
                    uint(&msg, "value")?,
                    addr(&msg, "to")?,
                )])
            })(),
        ),
        "ReceiveWithAuthorization" if is::<ReceiveWithAuthorization>(td) => priced(
            "EIP-3009 ReceiveWithAuthorization",
            (|| {
                Some(vec![transfer(
                    contract?,
                    uint(&msg, "value")?,
                    addr(&msg, "to")?,
                )])
            })(),
        ),
        _ => unpriced("spending type with non-canonical fields"),
    }
}

/// The struct types reachable from `primary` (itself included), by name; `types` has
/// passed `typed_data_limits`, so the walk is bounded by its type count.
fn reachable<'a>(types: &'a Value, primary: &'a str) -> Vec<&'a str> {
    let mut seen: Vec<&str> = vec![primary];
    let mut at = 0;
    while let Some(name) = seen.get(at).copied() {
        at += 1;
        for (_, ty) in declared(types, name).unwrap_or_default() {
            let base = ty.split('[').next().unwrap_or(ty);
            if types.get(base).is_some() && !seen.contains(&base) {
                seen.push(base);
            }
        }
    }
    seen
}

fn normalized(field: &str) -> String {
    field.trim_start_matches('_').to_ascii_lowercase()
}

/// A struct whose fields name a party together with an amount, an approval flag or call
/// data, or that carries call data: what asset-moving messages look like, whatever
/// their name.
fn moves_by_fields(fields: &[(&str, &str)]) -> bool {
    let base = |t: &str| t.split('[').next().unwrap_or(t).to_owned();
    let party = fields
        .iter()
        .any(|(n, t)| base(t) == "address" && PARTY_FIELDS.contains(&normalized(n).as_str()));
    let call = fields
        .iter()
        .any(|(n, t)| base(t) == "bytes" && CALL_FIELDS.contains(&normalized(n).as_str()));
    let amount_or_flag = fields.iter().any(|(_, t)| {
        let t = base(t);
        t.starts_with("uint") || t.starts_with("int") || t == "bool" || t == "bytes"
    });
    call || (party && amount_or_flag)
}

/// Classification of a primary type no family list names.
fn by_structure(types: &Value, primary: &str) -> TypedFamily {
    let all = reachable(types, primary);
    let known = |n: &&str| {
        PRICED_FAMILY_NAMES.contains(n)
            || UNPRICED_FAMILIES.iter().any(|(f, _)| f == n)
            || n.starts_with("PermitWitnessTransferFrom")
            || n.starts_with("PermitBatchWitnessTransferFrom")
    };
    if all.iter().skip(1).any(known) {
        return TypedFamily::Unpriced {
            family: "message wrapping a known asset-moving type",
        };
    }
    if all
        .iter()
        .any(|n| declared(types, n).is_some_and(|f| moves_by_fields(&f)))
    {
        return TypedFamily::Unpriced {
            family: "message shaped like an asset-moving one (a spender, operator, recipient or target with an amount, approval flag or call data)",
        };
    }
    TypedFamily::Other
}

fn batch_transfer(
    msg: &DynSolValue,
    permissions: impl Fn(&DynSolValue) -> Option<(Address, U256)>,
) -> Option<Vec<TypedMove>> {
    let spender = addr(msg, "spender")?;
    field(msg, "permitted")?
        .as_array()?
        .iter()
        .map(|p| {
            let (token, amount) = permissions(p)?;
            Some(TypedMove {
                token,
                amount,
                party: spender,
                approval: false,
                unlimited: false,
            })
        })
        .collect()
}

/// Permit2 witness types: the canonical fields, then one witness field of the
/// integrator's type, with `TokenPermissions` canonical.
fn witness_prefix_ok(types: &Value, primary: &str) -> bool {
    let permitted = if primary == "PermitWitnessTransferFrom" {
        "TokenPermissions"
    } else {
        "TokenPermissions[]"
    };
    let want = [
        ("permitted", permitted),
        ("spender", "address"),
        ("nonce", "uint256"),
        ("deadline", "uint256"),
    ];
    let Some(fields) = declared(types, primary) else {
        return false;
    };
    fields.len() == 5
        && fields[..4] == want
        && declared(types, "TokenPermissions").as_deref()
            == Some(&[("token", "address"), ("amount", "uint256")][..])
}

#[cfg(test)]
mod tests {
    //! Structural classification: shapes built by hand, and the EIP's own Mail example.

    use super::*;
    use serde_json::json;

    fn family(types: Value, primary: &str, message: Value) -> TypedFamily {
        let mut t = types;
        t["EIP712Domain"] = json!([{"name": "name", "type": "string"}]);
        let v = json!({"types": t, "primaryType": primary, "domain": {"name": "X"}, "message": message});
        let td: TypedData = serde_json::from_value(v.clone()).unwrap();
        classify(&td, &v["types"])
    }

    fn moving(f: &TypedFamily) -> bool {
        f.moves_assets()
    }

    #[test]
    fn structure_and_references_mark_asset_moving_messages() {
        let a = "0x00000000000000000000000000000000000000b0";
        // a party with an amount, a flag or call data, at any depth, under any name
        for (types, primary, msg) in [
            (
                json!({"A": [{"name": "spender", "type": "address"}, {"name": "n", "type": "uint8"}]}),
                "A",
                json!({"spender": a, "n": 1}),
            ),
            (
                json!({"A": [{"name": "_Operator", "type": "address"}, {"name": "ok", "type": "bool"}]}),
                "A",
                json!({"_Operator": a, "ok": true}),
            ),
            (
                json!({"A": [{"name": "x", "type": "B[]"}], "B": [{"name": "targets", "type": "address[]"}, {"name": "to", "type": "address"}, {"name": "v", "type": "int256"}]}),
                "A",
                json!({"x": [{"targets": [a], "to": a, "v": 1}]}),
            ),
            (
                json!({"A": [{"name": "callData", "type": "bytes"}]}),
                "A",
                json!({"callData": "0x01"}),
            ),
            // a known family referenced, not primary: the wrapper is what it wraps
            (
                json!({"A": [{"name": "m", "type": "SafeTx"}], "SafeTx": [{"name": "nonce", "type": "uint256"}]}),
                "A",
                json!({"m": {"nonce": 1}}),
            ),
        ] {
            let f = family(types.clone(), primary, msg);
            assert!(moving(&f), "{types}: {f:?}");
        }
        // the EIP's Mail example and a login move nothing
        let mail: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/eip712_mail.json")).unwrap();
        let td: TypedData = serde_json::from_value(mail.clone()).unwrap();
        assert_eq!(classify(&td, &mail["types"]), TypedFamily::Other);
        let login = family(
            json!({"Login": [{"name": "user", "type": "address"}, {"name": "nonce", "type": "uint256"}, {"name": "note", "type": "string"}]}),
            "Login",
            json!({"user": a, "nonce": 1, "note": "hi"}),
        );
        assert_eq!(login, TypedFamily::Other);
        // a party alone, or an amount alone, is not enough
        let party_only = family(
            json!({"A": [{"name": "to", "type": "address"}, {"name": "note", "type": "string"}]}),
            "A",
            json!({"to": a, "note": "x"}),
        );
        assert_eq!(party_only, TypedFamily::Other);
    }
}
