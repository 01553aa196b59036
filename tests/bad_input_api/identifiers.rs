//! Bad-input cases: identifiers: which wallet, and whether it can sign.

use super::*;

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let nf = (404, "route_not_found");
    let body = br#"{"message":"hi"}"#;
    let mut c = Class::new("identifiers", cases);
    for id in [
        "..",
        ".",
        "%2e%2e",
        "a%20b",
        "tab%09id",
        "x".repeat(129).as_str(),
        "wallet;drop",
        "%C3%BCber",
    ] {
        let p = format!("/v1/wallets/{id}/evm/message");
        // a path segment that cannot be a wallet id never reaches a handler
        c.raw(
            format!("wallet id {id:.20}"),
            Who::Test,
            Method::POST,
            &p,
            Some("application/json"),
            &body[..],
            nf,
        );
    }
    c.post(
        "unknown wallet",
        Who::Test,
        "/v1/wallets/no-such-wallet/evm/message",
        json!({"message": "hi"}),
        (404, "wallet_not_found"),
    );
    c.post(
        "unknown wallet (solana)",
        Who::Test,
        "/v1/wallets/0c0ffee0-0000-4000-8000-000000000000/solana/transaction",
        json!({"transaction": b64(&r.good_stx)}),
        (404, "wallet_not_found"),
    );
    c.raw(
        "GET unknown wallet",
        Who::Test,
        Method::GET,
        "/v1/wallets/no-such-wallet",
        None,
        "",
        (404, "wallet_not_found"),
    );
    let wrong = (409, "wrong_chain");
    for (name, p, body) in [
        (
            "solana wallet, evm message",
            path(&w.sol, "evm/message"),
            json!({"message": "hi"}),
        ),
        (
            "solana wallet, evm transaction",
            path(&w.sol, "evm/transaction"),
            json!({"transaction": base_tx()}),
        ),
        (
            "solana wallet, typed data",
            path(&w.sol, "evm/typed-data"),
            json!({"typedData": common::fixtures::mail_typed_data()}),
        ),
        (
            "evm wallet, solana message",
            path(&w.evm, "solana/message"),
            json!({"message": "hi"}),
        ),
        (
            "evm wallet, solana transaction",
            path(&w.evm, "solana/transaction"),
            json!({"transaction": b64(&r.good_stx)}),
        ),
    ] {
        c.post(name, Who::Test, &p, body, wrong);
    }
    let gone = (410, "wallet_revoked");
    c.post(
        "revoked wallet message",
        Who::Test,
        &path(&w.revoked, "evm/message"),
        json!({"message": "hi"}),
        gone,
    );
    c.post(
        "revoked wallet transaction",
        Who::Test,
        &path(&w.revoked, "evm/transaction"),
        json!({"transaction": base_tx()}),
        gone,
    );
    let engine = (409, "engine_unavailable");
    c.post(
        "mpc wallet message",
        Who::Test,
        &path(&w.mpc, "evm/message"),
        json!({"message": "hi"}),
        engine,
    );
    c.post(
        "mpc wallet typed data",
        Who::Test,
        &path(&w.mpc, "evm/typed-data"),
        json!({"typedData": common::fixtures::mail_typed_data()}),
        engine,
    );
}
