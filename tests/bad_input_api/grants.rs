//! Bad-input cases: identity and grants.

use super::*;

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let Routes {
        msg,
        tx,
        hash,
        stx,
        good_stx,
        ..
    } = r;
    let mut c = Class::new("identity/grants", cases);
    let nope = (403, "not_authorized");
    c.post(
        "stranger, evm message",
        Who::Stranger,
        msg,
        json!({"message": "hi"}),
        nope,
    );
    c.post(
        "stranger, solana transaction",
        Who::Stranger,
        stx,
        json!({"transaction": b64(good_stx)}),
        nope,
    );
    c.post(
        "stranger, bad body",
        Who::Stranger,
        msg,
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
        hash,
        json!({"digest": format!("0x{}", "11".repeat(32))}),
        nope,
    );
    c.post(
        "raw digest outside the label",
        Who::Hash,
        &path(&w.other_evm, "evm/hash"),
        json!({"digest": format!("0x{}", "11".repeat(32))}),
        nope,
    );
    c.post(
        "hash client, transaction",
        Who::Hash,
        tx,
        json!({"transaction": base_tx()}),
        nope,
    );
    c.post(
        "hash client, message outside the label",
        Who::Hash,
        &path(&w.other_evm, "evm/message"),
        json!({"message": "hi"}),
        nope,
    );
    c.raw(
        "hash client reads a wallet outside the label",
        Who::Hash,
        Method::GET,
        &format!("/v1/wallets/{}", w.sol.id),
        None,
        "",
        nope,
    );
    c.post(
        "URI identity, solana transaction",
        Who::Spiffe,
        stx,
        json!({"transaction": b64(good_stx)}),
        nope,
    );
    c.post(
        "URI identity, evm message",
        Who::Spiffe,
        msg,
        json!({"message": "hi"}),
        nope,
    );
    c.post(
        "URI identity, solana message on an evm wallet",
        Who::Spiffe,
        &path(&w.evm, "solana/message"),
        json!({"message": "hi"}),
        nope,
    );
    let anon = (401, "unauthenticated");
    c.post(
        "nameless certificate, sign",
        Who::Nameless,
        msg,
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
