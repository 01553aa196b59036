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

use alloy_primitives::{Address, B256};
use common::fixtures::{mail_typed_data, recover, COW_KEY, EIP155_KEY};
use keyward::store::wallets::Wallet;

/// A server with the standard grants ([`common::api::CLIENTS`]).
async fn start() -> common::api::Server {
    common::api::start(common::api::CLIENTS).await
}

fn b256(s: &str) -> B256 {
    s.parse().unwrap()
}

fn addr(w: &Wallet) -> Address {
    w.address.as_deref().unwrap().parse().unwrap()
}

fn solana_key(w: &Wallet) -> [u8; 32] {
    keyward::chains::solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap()
}
