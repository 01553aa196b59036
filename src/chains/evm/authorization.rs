//! EIP-7702 authorizations: the unsigned tuple a wallet is asked to sign
//! (`{chainId, address, nonce}`) and the signed tuples of a type-4 transaction's
//! `authorizationList`. Encoding and the digest
//! (`keccak256(0x05 ‖ rlp([chain_id, address, nonce]))`) are alloy-eips'; this file
//! only decides what is accepted.
//!
//! Must never: accept a tuple whose signature could not recover (high `s`, a parity
//! other than 0/1, a zero `r`/`s`): the chain would skip it silently, and the client
//! would believe a delegation was set that is not.

use alloy_eips::eip7702::{Authorization, SignedAuthorization};
use alloy_primitives::{Address, U256};
use serde_json::{Map, Value};

use super::tx::parse_quantity;
use super::{addr_err, parse_address, qty_err, tx_err, EvmError};

/// Most tuples in one `authorizationList`. Each one hands an account to a contract
/// and is priced by the policy; a real transaction carries one or a few.
pub const MAX_AUTHORIZATIONS: usize = 64;

/// secp256k1's order divided by two: EIP-7702 (like EIP-2) refuses a tuple with a
/// larger `s`.
const SECP256K1N_HALF: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

fn keys_known(obj: &Map<String, Value>, field: &str, known: &[&str]) -> Result<(), EvmError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(EvmError::UnknownField(format!(
            "{field}{}{}",
            if field.is_empty() { "" } else { "." },
            k.chars().take(64).collect::<String>()
        ))),
        None => Ok(()),
    }
}

fn get<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).filter(|v| !v.is_null())
}

fn quantity(obj: &Map<String, Value>, field: &str, name: &str) -> Result<U256, EvmError> {
    let path = join(field, name);
    let v = get(obj, name).ok_or_else(|| tx_err(&path, "required field is missing"))?;
    parse_quantity(&path, v)
}

fn join(field: &str, name: &str) -> String {
    if field.is_empty() {
        name.to_owned()
    } else {
        format!("{field}.{name}")
    }
}

/// The delegate: `address`, or viem's `contractAddress` (one of them, not both).
fn delegate(obj: &Map<String, Value>, field: &str) -> Result<Address, EvmError> {
    let pick = match (get(obj, "address"), get(obj, "contractAddress")) {
        (Some(_), Some(_)) => {
            return Err(tx_err(
                &join(field, "contractAddress"),
                "give `address` or `contractAddress`, not both",
            ))
        }
        (Some(a), None) => ("address", a),
        (None, Some(a)) => ("contractAddress", a),
        (None, None) => return Err(tx_err(&join(field, "address"), "required field is missing")),
    };
    let path = join(field, pick.0);
    match pick.1 {
        Value::String(s) => parse_address(&path, s),
        _ => Err(addr_err(&path, "expected an address string")),
    }
}

/// `{chainId, address | contractAddress, nonce}`: what `POST …/evm/authorization`
/// asks to sign. A `chainId` of 0 is accepted here (it is valid on every chain, a
/// policy decision), one above 64 bits is not (no chain has one).
pub fn parse_authorization(v: &Value) -> Result<Authorization, EvmError> {
    let obj = v
        .as_object()
        .ok_or_else(|| tx_err("authorization", "expected a JSON object"))?;
    keys_known(obj, "", &["chainId", "address", "contractAddress", "nonce"])?;
    unsigned(obj, "")
}

fn unsigned(obj: &Map<String, Value>, field: &str) -> Result<Authorization, EvmError> {
    let chain_id = quantity(obj, field, "chainId")?;
    if chain_id > U256::from(u64::MAX) {
        return Err(qty_err(&join(field, "chainId"), "exceeds 64 bits"));
    }
    let nonce = u64::try_from(quantity(obj, field, "nonce")?)
        .map_err(|_| qty_err(&join(field, "nonce"), "exceeds 64 bits"))?;
    Ok(Authorization {
        chain_id,
        address: delegate(obj, field)?,
        nonce,
    })
}

/// A type-4 transaction's `authorizationList`: 1 to [`MAX_AUTHORIZATIONS`] signed
/// tuples (`{chainId, address, nonce, yParity, r, s}`; `v` as 0/1 or 27/28 is taken
/// for `yParity` and must agree with it when both are given).
pub fn parse_authorization_list(v: &Value) -> Result<Vec<SignedAuthorization>, EvmError> {
    let items = v
        .as_array()
        .ok_or_else(|| tx_err("authorizationList", "expected an array"))?;
    if items.is_empty() {
        return Err(tx_err(
            "authorizationList",
            "a set-code (type 4) transaction needs at least one authorization",
        ));
    }
    if items.len() > MAX_AUTHORIZATIONS {
        return Err(EvmError::AuthorizationListTooLarge {
            field: "authorizationList".into(),
            len: items.len(),
            max: MAX_AUTHORIZATIONS,
        });
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| signed(&format!("authorizationList[{i}]"), item))
        .collect()
}

fn signed(field: &str, item: &Value) -> Result<SignedAuthorization, EvmError> {
    let obj = item
        .as_object()
        .ok_or_else(|| tx_err(field, "expected an object"))?;
    keys_known(
        obj,
        field,
        &[
            "chainId",
            "address",
            "contractAddress",
            "nonce",
            "yParity",
            "v",
            "r",
            "s",
        ],
    )?;
    let inner = unsigned(obj, field)?;
    let parity = parity(obj, field)?;
    let r = quantity(obj, field, "r")?;
    let s = quantity(obj, field, "s")?;
    let bad = |what: &str| EvmError::InvalidSignature(format!("{field}: {what}"));
    if r.is_zero() || s.is_zero() {
        return Err(bad("`r` and `s` must be non-zero"));
    }
    if s > U256::from_be_bytes(SECP256K1N_HALF) {
        return Err(bad(
            "`s` is above secp256k1n/2: EIP-7702 nodes skip such a tuple",
        ));
    }
    Ok(SignedAuthorization::new_unchecked(inner, parity, r, s))
}

fn parity(obj: &Map<String, Value>, field: &str) -> Result<u8, EvmError> {
    let from_y = get(obj, "yParity")
        .map(|v| parse_quantity(&join(field, "yParity"), v))
        .transpose()?;
    let from_v = get(obj, "v")
        .map(|v| parse_quantity(&join(field, "v"), v))
        .transpose()?;
    let bit = |q: U256, name: &str, legacy: bool| -> Result<u8, EvmError> {
        match u8::try_from(q) {
            Ok(p @ 0..=1) => Ok(p),
            Ok(p @ 27..=28) if legacy => Ok(p - 27),
            _ => Err(EvmError::InvalidSignature(format!(
                "{}: must be {}",
                join(field, name),
                if legacy { "0, 1, 27 or 28" } else { "0 or 1" }
            ))),
        }
    };
    match (from_y, from_v) {
        (None, None) => Err(tx_err(&join(field, "yParity"), "required field is missing")),
        (Some(y), None) => bit(y, "yParity", false),
        (None, Some(v)) => bit(v, "v", true),
        (Some(y), Some(v)) => {
            let y = bit(y, "yParity", false)?;
            if bit(v, "v", true)? != y {
                return Err(EvmError::InvalidSignature(format!(
                    "{}: disagrees with `yParity`",
                    join(field, "v")
                )));
            }
            Ok(y)
        }
    }
}

/// The `authorization` object of an answer, shaped as viem's `SignedAuthorization`
/// (numbers for `chainId`, `nonce` and `yParity`), usable as an `authorizationList`
/// entry as it stands.
pub fn authorization_json(a: &SignedAuthorization) -> Value {
    serde_json::json!({
        "address": format!("{:#x}", a.address),
        "chainId": u64::try_from(a.chain_id).unwrap_or(u64::MAX),
        "nonce": a.nonce,
        "r": format!("0x{}", hex::encode(a.r().to_be_bytes::<32>())),
        "s": format!("0x{}", hex::encode(a.s().to_be_bytes::<32>())),
        "yParity": a.y_parity(),
    })
}
