//! Solana routes: raw and off-chain messages, legacy and v0 transactions, signer slots,
//! URI-SAN identities; every signature verified with ed25519-dalek.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hyper::StatusCode;
use keyward::chains::solana;
use keyward::store::wallets::{Chain, Source};
use serde_json::json;

use super::*;
use crate::common::api::{path, Answer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_routes_sign_and_verify_end_to_end() {
    let s = start().await;
    let c = s.client();
    let w = keyward::wallets::create(&s.app, Chain::Solana, Some("sol")).unwrap();
    assert_eq!(w.source, Source::Generated);
    let pk = solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&pk).unwrap();
    let sig_of = |a: &Answer| {
        let raw = bs58::decode(a.body["signature"].as_str().unwrap())
            .into_vec()
            .unwrap();
        ed25519_dalek::Signature::from_slice(&raw).unwrap()
    };

    // raw message (default) and the off-chain envelope
    let a = c
        .post(
            &path(&w, "solana/message"),
            json!({ "message": "Sign in to example.com" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    vk.verify_strict(b"Sign in to example.com", &sig_of(&a))
        .unwrap();
    let a = c
        .post(
            &path(&w, "solana/message"),
            json!({ "message": "aGVsbG8=", "encoding": "base64", "format": "offchain" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let signed = B64
        .decode(a.body["signedMessage"].as_str().unwrap())
        .unwrap();
    assert_eq!(signed, solana::offchain_message_v0(b"hello").unwrap());
    assert!(signed.starts_with(b"\xffsolana offchain"));
    vk.verify_strict(&signed, &sig_of(&a)).unwrap();

    // a transaction (or its message) is never signed as a "message"
    let tx = common::solana_tx(&pk, None, false);
    for bytes in [tx.clone(), tx[65..].to_vec()] {
        let a = c
            .post(
                &path(&w, "solana/message"),
                json!({ "message": B64.encode(&bytes), "encoding": "base64" }),
            )
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"]["code"], "message_is_transaction");
        s.assert_audited(&a.body["auditId"], "denied", "message_is_transaction");
    }

    // legacy and v0 transactions, with the wallet as the only or the second signer
    let other = [5u8; 32];
    for (v0, second) in [(false, false), (true, false), (false, true), (true, true)] {
        let tx = if second {
            // the wallet is signer 1; signer 0 (the fee payer) is someone else
            common::solana_tx(&other, Some(pk), v0)
        } else {
            common::solana_tx(&pk, None, v0)
        };
        let a = c
            .post(
                &path(&w, "solana/transaction"),
                json!({ "transaction": B64.encode(&tx) }),
            )
            .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "v0={v0} second={second}: {}",
            a.body
        );
        let index = usize::from(second);
        assert_eq!(a.body["signerIndex"], index);
        let signed = B64.decode(a.body["transaction"].as_str().unwrap()).unwrap();
        let parsed = solana::parse_transaction(&signed).unwrap();
        assert_eq!(parsed.version(), v0.then_some(0));
        assert_eq!(
            parsed.message_bytes(),
            &tx[1 + 64 * parsed.num_required_signatures()..]
        );
        let placed = ed25519_dalek::Signature::from_bytes(parsed.signature(index).unwrap());
        assert_eq!(placed, sig_of(&a));
        vk.verify_strict(parsed.message_bytes(), &placed).unwrap();
        if second {
            assert_eq!(
                parsed.signature(0).unwrap(),
                &[0u8; 64],
                "other slot untouched"
            );
        }
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(
            rec.digest.as_deref().unwrap(),
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                parsed.message_bytes()
            ))
        );
    }

    // not a signer: 422; garbage: 400 with the chain code
    let a = c
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": B64.encode(common::solana_tx(&other, None, false)) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.body["error"]["code"], "not_a_signer");
    for (body, code) in [
        (json!({ "transaction": "%%%" }), "invalid_encoding"),
        (
            json!({ "transaction": B64.encode([1u8, 2, 3]) }),
            "invalid_transaction",
        ),
        (json!({ "transaction": 5 }), "invalid_request"),
    ] {
        let a = c.post(&path(&w, "solana/transaction"), body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_eq!(a.body["error"]["code"], code);
    }

    // an identity from a URI SAN, granted solana.message on chain:solana only
    let spiffe = s.client_as("ignored-cn", Some("spiffe://keyward.test/svc/payments"), 41);
    let who = spiffe.get("/v1/whoami").await;
    assert_eq!(
        who.body["identity"],
        "uri:spiffe://keyward.test/svc/payments"
    );
    let a = spiffe
        .post(&path(&w, "solana/message"), json!({ "message": "x" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = spiffe
        .post(
            &path(&w, "solana/transaction"),
            json!({ "transaction": B64.encode(&tx) }),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}
