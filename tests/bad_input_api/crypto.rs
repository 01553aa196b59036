//! Bad-input cases: crypto fields: what the bytes to be signed say.

use super::*;

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("crypto fields", cases);
    c.post(
        "from another address",
        Who::Test,
        &r.tx,
        tx_with("from", json!("0x3535353535353535353535353535353535353535")),
        (400, "from_mismatch"),
    );
    c.post(
        "from another wallet of ours",
        Who::Test,
        &r.tx,
        tx_with("from", json!(w.other_evm.address.clone().unwrap())),
        (400, "from_mismatch"),
    );
    c.post(
        "not a signer",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(&common::solana_tx(&[5u8; 32], None, false))}),
        (422, "not_a_signer"),
    );
    let mut v1 = common::solana_tx(&r.sol_pk, None, true);
    v1[65] = 0x81; // message version 1
    c.post(
        "message version 1",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(&v1)}),
        (400, "unsupported_version"),
    );
    let it = (400, "invalid_transaction");
    c.post(
        "three bytes",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(&[1, 2, 3])}),
        it,
    );
    c.post(
        "empty transaction",
        Who::Test,
        &r.stx,
        json!({"transaction": ""}),
        it,
    );
    let mut short_sigs = r.good_stx.clone();
    short_sigs[0] = 2; // claims two signatures, carries one
    c.post(
        "signature count above the message's",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(&short_sigs)}),
        it,
    );
    let truncated = &r.good_stx[..r.good_stx.len() - 5];
    c.post(
        "truncated transaction",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(truncated)}),
        it,
    );
    let mut trailing = r.good_stx.clone();
    trailing.extend_from_slice(b"tail");
    c.post(
        "transaction with trailing bytes",
        Who::Test,
        &r.stx,
        json!({"transaction": b64(&trailing)}),
        it,
    );
    let is_tx = (400, "message_is_transaction");
    c.post(
        "message that is a transaction",
        Who::Test,
        &r.smsg,
        json!({"message": b64(&r.good_stx), "encoding": "base64"}),
        is_tx,
    );
    c.post(
        "message that is a transaction message",
        Who::Test,
        &r.smsg,
        json!({"message": b64(&r.good_stx[65..]), "encoding": "base64"}),
        is_tx,
    );
    c.post(
        "message that is a transaction, hex",
        Who::Test,
        &r.smsg,
        json!({"message": hex::encode(&r.good_stx[65..]), "encoding": "hex"}),
        is_tx,
    );
    let itd = (400, "invalid_typed_data");
    for (name, t) in [
        (
            "primaryType undeclared",
            typed(
                json!({"P": [{"name": "a", "type": "bool"}]}),
                "Q",
                json!({"a": true}),
            ),
        ),
        (
            "recursive struct",
            typed(json!({"P": [{"name": "p", "type": "P"}]}), "P", json!({})),
        ),
        (
            "tuple field type",
            typed(
                json!({"P": [{"name": "a", "type": "(uint256,bool)"}]}),
                "P",
                json!({}),
            ),
        ),
        (
            "type name not an identifier",
            typed(
                json!({"P Q": [{"name": "a", "type": "bool"}]}),
                "P Q",
                json!({}),
            ),
        ),
        (
            "address value short",
            typed(
                json!({"P": [{"name": "a", "type": "address"}]}),
                "P",
                json!({"a": "0x12"}),
            ),
        ),
        (
            "uint8 value out of range",
            typed(
                json!({"P": [{"name": "a", "type": "uint8"}]}),
                "P",
                json!({"a": 256}),
            ),
        ),
        (
            "bytes32 value short",
            typed(
                json!({"P": [{"name": "a", "type": "bytes32"}]}),
                "P",
                json!({"a": "0x12"}),
            ),
        ),
        (
            "undeclared field type",
            typed(
                json!({"P": [{"name": "a", "type": "Nope"}]}),
                "P",
                json!({}),
            ),
        ),
    ] {
        c.post(name, Who::Test, &r.td, t, itd);
    }
}
