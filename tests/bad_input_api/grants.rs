//! Bad-input cases: identity and grants.

use super::*;

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("identity/grants", cases);
    let nope = (403, "not_authorized");
    // a wallet the client may not see is answered as an unknown id: no existence oracle
    let hidden = (404, "wallet_not_found");
    c.post(
        "stranger, evm message",
        Who::Stranger,
        &r.msg,
        json!({"message": "hi"}),
        nope,
    );
    c.post(
        "stranger, solana transaction",
        Who::Stranger,
        &r.stx,
        json!({"transaction": b64(&r.good_stx)}),
        nope,
    );
    c.post(
        "stranger, bad body",
        Who::Stranger,
        &r.msg,
        json!({"nonsense": 1}),
        nope,
    );
    c.raw(
        "stranger lists wallets",
        Who::Stranger,
        Method::GET,
        "/v1/wallets",
        None,
        "",
        nope,
    );
    c.raw(
        "stranger reads a wallet",
        Who::Stranger,
        Method::GET,
        &format!("/v1/wallets/{}", w.evm.id),
        None,
        "",
        nope,
    );
    c.post(
        "raw digest without the explicit grant",
        Who::Test,
        &r.hash,
        json!({"digest": format!("0x{}", "11".repeat(32))}),
        nope,
    );
    c.post(
        "raw digest outside the label",
        Who::Hash,
        &path(&w.other_evm, "evm/hash"),
        json!({"digest": format!("0x{}", "11".repeat(32))}),
        hidden,
    );
    c.post(
        "hash client, transaction",
        Who::Hash,
        &r.tx,
        json!({"transaction": base_tx()}),
        nope,
    );
    c.post(
        "hash client, message outside the label",
        Who::Hash,
        &path(&w.other_evm, "evm/message"),
        json!({"message": "hi"}),
        hidden,
    );
    // a wallet the client may not see is answered as one that does not exist
    let hidden = (404, "wallet_not_found");
    c.raw(
        "hash client reads a wallet outside the label",
        Who::Hash,
        Method::GET,
        &format!("/v1/wallets/{}", w.sol.id),
        None,
        "",
        hidden,
    );
    c.raw(
        "hash client reads an EVM wallet outside the label",
        Who::Hash,
        Method::GET,
        &format!("/v1/wallets/{}", w.other_evm.id),
        None,
        "",
        hidden,
    );
    c.raw(
        "hash client reads an unknown wallet",
        Who::Hash,
        Method::GET,
        "/v1/wallets/0b7e6f5e-3c1d-4a8b-9f2e-1d2c3b4a5f60",
        None,
        "",
        hidden,
    );
    c.post(
        "URI identity, solana transaction",
        Who::Spiffe,
        &r.stx,
        json!({"transaction": b64(&r.good_stx)}),
        nope,
    );
    c.post(
        "URI identity, evm message",
        Who::Spiffe,
        &r.msg,
        json!({"message": "hi"}),
        nope,
    );
    c.post(
        "URI identity, solana message on an evm wallet",
        Who::Spiffe,
        &path(&w.evm, "solana/message"),
        json!({"message": "hi"}),
        hidden,
    );
    let anon = (401, "unauthenticated");
    c.post(
        "nameless certificate, sign",
        Who::Nameless,
        &r.msg,
        json!({"message": "hi"}),
        anon,
    );
    c.raw(
        "nameless certificate, whoami",
        Who::Nameless,
        Method::GET,
        "/v1/whoami",
        None,
        "",
        anon,
    );
    c.raw(
        "nameless certificate, unknown route",
        Who::Nameless,
        Method::GET,
        "/v1/nothing",
        None,
        "",
        anon,
    );
}
