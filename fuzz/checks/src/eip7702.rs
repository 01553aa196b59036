//! EIP-7702 JSON (`keyward::chains::evm::parse_authorization`, the body of
//! `evm/authorization`, and `parse_authorization_list`, a type-4 transaction's
//! `authorizationList`), from raw bytes and from tuples built with `arbitrary`.
//!
//! Invariants: an accepted authorization has a chain id below 2^64 and its digest is
//! keccak256(0x05 ‖ rlp([chain_id, address, nonce])) computed here from alloy-rlp; an
//! accepted list has 1..=64 tuples, each with non-zero `r`/`s`, `s` at most
//! secp256k1n/2 and a parity of 0 or 1, carrying exactly the values the JSON spelled,
//! and its RLP decodes back to the same tuples.

use alloy_eips::eip7702::SignedAuthorization;
use alloy_primitives::{keccak256, Address, U256};
use arbitrary::Arbitrary;
use keyward::chains::evm::{self, MAX_AUTHORIZATIONS};
use serde_json::{json, Value};

/// secp256k1n / 2
const HALF_N: &str = "7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0";

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Built(Vec<GenTuple>),
}

#[derive(Arbitrary, Debug)]
struct GenTuple {
    chain_id: u64,
    /// adds 2^64 to the chain id (out of range)
    wide_chain: bool,
    address: [u8; 20],
    nonce: u64,
    parity: u8,
    r: [u8; 32],
    s: [u8; 32],
    hex_numbers: bool,
}

impl GenTuple {
    fn chain(&self) -> u128 {
        u128::from(self.chain_id) + (u128::from(self.wide_chain) << 64)
    }

    /// 0..=3: half the tuples have a valid parity
    fn parity(&self) -> u8 {
        self.parity % 4
    }

    fn render(&self) -> Value {
        let q = |v: U256| {
            if self.hex_numbers {
                json!(format!("{v:#x}"))
            } else {
                json!(v.to_string())
            }
        };
        json!({
            "chainId": q(U256::from(self.chain())),
            "address": format!("{:#x}", Address::from(self.address)),
            "nonce": q(U256::from(self.nonce)),
            "yParity": q(U256::from(self.parity())),
            "r": q(U256::from_be_bytes(self.r)),
            "s": q(U256::from_be_bytes(self.s)),
        })
    }
}

pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Raw(bytes) => {
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                return;
            };
            single(&v);
            list(&v);
            if let Some(items) = v.get("authorizationList") {
                list(items);
            }
        }
        Input::Built(tuples) => {
            let v = Value::Array(tuples.iter().map(GenTuple::render).collect());
            let accepted = list(&v);
            let half = U256::from_str_radix(HALF_N, 16).unwrap();
            let valid = !tuples.is_empty()
                && tuples.len() <= MAX_AUTHORIZATIONS
                && tuples.iter().all(|t| {
                    let (r, s) = (U256::from_be_bytes(t.r), U256::from_be_bytes(t.s));
                    !t.wide_chain && t.parity() <= 1 && !r.is_zero() && !s.is_zero() && s <= half
                });
            assert_eq!(accepted.is_some(), valid, "{v}");
            if let Some(got) = accepted {
                for (t, a) in tuples.iter().zip(&got) {
                    assert_eq!(a.chain_id, U256::from(t.chain()));
                    assert_eq!(a.address, Address::from(t.address));
                    assert_eq!(a.nonce, t.nonce);
                    assert_eq!(a.y_parity(), t.parity());
                    assert_eq!(a.r(), U256::from_be_bytes(t.r));
                    assert_eq!(a.s(), U256::from_be_bytes(t.s));
                }
            }
        }
    }
}

fn single(v: &Value) {
    let Ok(a) = evm::parse_authorization(v) else {
        return;
    };
    assert!(a.chain_id <= U256::from(u64::MAX));
    let mut pre = vec![0x05u8];
    alloy_rlp::Encodable::encode(&a, &mut pre);
    assert_eq!(a.signature_hash(), keccak256(&pre));
}

fn list(v: &Value) -> Option<Vec<SignedAuthorization>> {
    let got = evm::parse_authorization_list(v).ok()?;
    assert!(!got.is_empty() && got.len() <= MAX_AUTHORIZATIONS);
    let half = U256::from_str_radix(HALF_N, 16).unwrap();
    for a in &got {
        assert!(a.y_parity() <= 1);
        assert!(!a.r().is_zero() && !a.s().is_zero() && a.s() <= half);
        assert!(a.chain_id <= U256::from(u64::MAX));
    }
    let rlp = alloy_rlp::encode(&got);
    let back: Vec<SignedAuthorization> =
        alloy_rlp::Decodable::decode(&mut rlp.as_slice()).expect("own RLP decodes");
    assert_eq!(back, got);
    Some(got)
}
