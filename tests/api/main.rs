//! The signing API end to end: real mTLS on loopback (hyper + tokio-rustls with test
//! client certificates), a real SoftHSM2 token, a real SQLite file. Every signature is
//! checked with an independent implementation (alloy recovery, ed25519-dalek, parsing
//! the signed Solana transaction back), and every sign request's audit record is read
//! back from the store. One binary, one module per concern; the bad-input corpus is
//! `tests/bad_input_api.rs`.

#[path = "../common/mod.rs"]
mod common;

mod access;
mod durability;
mod evm;
mod hostile;
mod solana;

use alloy_primitives::{Address, Signature, B256};
use keyward::store::wallets::Wallet;
use serde_json::Value;

/// EIP-155's example key (0x4646…46) and EIP-712's "cow" key.
const EIP155_KEY: &str = "4646464646464646464646464646464646464646464646464646464646464646";
const COW_KEY: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";

/// A server with the standard grants ([`common::api::CLIENTS`]).
async fn start() -> common::api::Server {
    common::api::start(common::api::CLIENTS).await
}

fn b256(s: &str) -> B256 {
    s.parse().unwrap()
}

/// The address that made `sig_hex` (65 bytes r‖s‖v, v = 27/28) over `digest`.
fn recover(sig_hex: &str, digest: &B256) -> Address {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27/28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(digest)
        .unwrap()
}

fn addr(w: &Wallet) -> Address {
    w.address.as_deref().unwrap().parse().unwrap()
}

fn solana_key(w: &Wallet) -> [u8; 32] {
    keyward::chains::solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap()
}

/// EIP-712's own "Mail" example (digest 0xbe609aee…).
fn mail_typed_data() -> Value {
    common::fixtures::mail_typed_data()
}
