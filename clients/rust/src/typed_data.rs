//! A `SolStruct` and its domain as `eth_signTypedData_v4` JSON, so that alloy's
//! `sign_typed_data` (which gives a signer no JSON, only the struct) still reaches keyward
//! as typed data its policy can read, not as a digest.

use alloy_dyn_abi::{DynSolType, DynSolValue, Resolver, TypedData};
use alloy_sol_types::{Eip712Domain, SolStruct, SolType};
use serde_json::{json, Map, Value};

use crate::error::Error;

pub(crate) fn from_sol_struct<T: SolStruct>(
    payload: &T,
    domain: &Eip712Domain,
) -> Result<TypedData, Error> {
    let mut resolver = Resolver::from_struct::<T>();
    resolver
        .ingest_string(domain.encode_type())
        .map_err(|e| Error::Config(format!("EIP-712 domain: {e}")))?;
    // the struct's ABI encoding, decoded against its own EIP-712 type description
    let ty = resolver
        .resolve(T::NAME)
        .map_err(|e| Error::Config(format!("EIP-712 type {}: {e}", T::NAME)))?;
    let encoded = abi_encode::<T>(payload);
    let value = ty
        .abi_decode(&encoded)
        .map_err(|e| Error::Config(format!("EIP-712 value of {}: {e}", T::NAME)))?;
    Ok(TypedData {
        domain: domain.clone(),
        resolver,
        primary_type: T::NAME.to_owned(),
        message: to_json(&value, &ty)?,
    })
}

/// JSON as wallets write it: addresses checksummed, integers as decimal strings (no
/// precision loss in any reader), bytes as 0x hex.
fn to_json(v: &DynSolValue, ty: &DynSolType) -> Result<Value, Error> {
    Ok(match (v, ty) {
        (DynSolValue::Bool(b), _) => json!(b),
        (DynSolValue::Int(i, _), _) => json!(i.to_string()),
        (DynSolValue::Uint(u, _), _) => json!(u.to_string()),
        (DynSolValue::FixedBytes(w, n), _) => {
            json!(format!("0x{}", alloy_primitives::hex::encode(&w[..*n])))
        }
        (DynSolValue::Address(a), _) => json!(a.to_checksum(None)),
        (DynSolValue::Bytes(b), _) => json!(format!("0x{}", alloy_primitives::hex::encode(b))),
        (DynSolValue::String(s), _) => json!(s),
        (DynSolValue::Array(xs), DynSolType::Array(t))
        | (DynSolValue::FixedArray(xs), DynSolType::FixedArray(t, _)) => {
            Value::Array(xs.iter().map(|x| to_json(x, t)).collect::<Result<_, _>>()?)
        }
        (
            DynSolValue::CustomStruct {
                prop_names, tuple, ..
            },
            DynSolType::CustomStruct { tuple: types, .. },
        ) => {
            let mut m = Map::new();
            for ((name, x), t) in prop_names.iter().zip(tuple).zip(types) {
                m.insert(name.clone(), to_json(x, t)?);
            }
            Value::Object(m)
        }
        (
            DynSolValue::Tuple(xs),
            DynSolType::CustomStruct {
                prop_names,
                tuple: types,
                ..
            },
        ) => {
            let mut m = Map::new();
            for ((name, x), t) in prop_names.iter().zip(xs).zip(types) {
                m.insert(name.clone(), to_json(x, t)?);
            }
            Value::Object(m)
        }
        (v, t) => {
            return Err(Error::Config(format!(
                "EIP-712 value {v:?} of type {t}: not representable as typed-data JSON"
            )))
        }
    })
}

/// Through the associated type, whose `SolTypeValue` bound the compiler knows (it does not
/// carry it over to `T` itself once `RustType = T` is normalized).
fn abi_encode<S: SolType>(value: &S::RustType) -> Vec<u8> {
    S::abi_encode(value)
}
