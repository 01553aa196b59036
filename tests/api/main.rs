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
use common::api::{path, Answer, Client};
use common::fixtures::{
    mail_typed_data, recover, COW_KEY, EIP155_KEY, MAIL_DIGEST, MAIL_SIGNATURE,
};
use hyper::StatusCode;
use keyward::store::wallets::Wallet;
use serde_json::json;

/// A server with the standard grants ([`common::api::CLIENTS`]).
async fn start() -> common::api::Server {
    common::api::start(common::api::CLIENTS).await
}

fn b256(s: &str) -> B256 {
    s.parse().unwrap()
}

/// Signs EIP-712's Mail example with the "cow" wallet: the spec's digest, its known
/// signature, and the cow's address recovered from it.
async fn signs_mail(c: &Client, cow: &Wallet) -> Answer {
    let a = c
        .post(
            &path(cow, "evm/typed-data"),
            json!({ "typedData": mail_typed_data() }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        (a.body["digest"].as_str(), a.body["signature"].as_str()),
        (Some(MAIL_DIGEST), Some(MAIL_SIGNATURE))
    );
    assert_eq!(recover(MAIL_SIGNATURE, &b256(MAIL_DIGEST)), addr(cow));
    a
}

fn addr(w: &Wallet) -> Address {
    w.address.as_deref().unwrap().parse().unwrap()
}

fn solana_key(w: &Wallet) -> [u8; 32] {
    keyward::chains::solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap()
}
