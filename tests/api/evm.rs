//! EVM routes: EIP-191, EIP-712, transactions and raw digests, each signature checked
//! with alloy, each audit record read back.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_eips::eip2718::Decodable2718;
use hyper::StatusCode;
use keyward::store::wallets::Chain;
use serde_json::json;

use super::*;
use crate::common::api::{path, Server};
use keyward::store::wallets as rows;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_routes_sign_and_verify_end_to_end() {
    let s = start().await;
    let c = s.client();
    let eip155 = s.import(Chain::Evm, EIP155_KEY, Some("hot"));
    let cow = s.import(Chain::Evm, COW_KEY, None);
    assert_eq!(
        eip155.address.as_deref(),
        Some("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f")
    );
    assert_eq!(
        cow.address.as_deref(),
        Some("0xcd2a3d9f938e13cd947ec05abc7fe734df8dd826")
    );

    // EIP-191: text and hex forms
    for (message, bytes) in [
        (json!("hello keyward"), b"hello keyward".to_vec()),
        (json!("0xdeadbeef"), vec![0xde, 0xad, 0xbe, 0xef]),
    ] {
        let a = c
            .post(&path(&eip155, "evm/message"), json!({ "message": message }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let digest = alloy_primitives::eip191_hash_message(&bytes);
        assert_eq!(a.body["digest"], format!("{digest:#x}"));
        assert_eq!(
            recover(a.body["signature"].as_str().unwrap(), &digest),
            addr(&eip155)
        );
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.actor, "cn:test-client");
        assert_eq!(rec.action, "sign");
        assert_eq!(rec.decision, "allowed");
        assert_eq!(rec.result, "ok");
        assert_eq!(rec.operation.as_deref(), Some("evm.message"));
        assert_eq!(rec.wallet_id.as_deref(), Some(eip155.id.as_str()));
        assert_eq!(rec.digest.as_deref(), Some(format!("{digest:#x}").as_str()));
    }

    // EIP-712 "Mail": the spec's digest and (RFC 6979 deterministic) signature
    let a = signs_mail(&c, &cow).await;
    // the typed data may also come as a JSON string, as eth_signTypedData_v4 sends it
    let a2 = c
        .post(
            &path(&cow, "evm/typed-data"),
            json!({ "typedData": mail_typed_data().to_string() }),
        )
        .await;
    assert_eq!(a2.body["signature"], a.body["signature"]);

    // EIP-155's example transaction, byte for byte
    let a = c
        .post(
            &path(&eip155, "evm/transaction"),
            json!({ "transaction": {
                "type": "0x0", "chainId": "1", "nonce": "9", "gasPrice": "20000000000", "gas": "21000",
                "to": "0x3535353535353535353535353535353535353535", "value": "1000000000000000000", "data": "0x"
            }}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["rawTransaction"],
        "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
    );
    assert_eq!(a.body["signature"]["v"], "0x25");

    // EIP-1559 and EIP-2930: decode the raw transaction with alloy and recover its signer
    for tx in [
        json!({
            "type": "0x2", "chainId": "0x1", "nonce": "0x0", "maxFeePerGas": "0x4a817c800",
            "maxPriorityFeePerGas": "0x3b9aca00", "gas": "0x5208",
            "to": "0x3535353535353535353535353535353535353535", "value": "0x1", "data": "0x",
            "from": eip155.address.clone().unwrap()
        }),
        json!({
            "type": "0x1", "chainId": "0x89", "nonce": "0x7", "gasPrice": "0x4a817c800", "gas": "0x10000",
            "to": "0x3535353535353535353535353535353535353535", "value": "0x0", "input": "0xa9059cbb",
            "accessList": [{"address": "0x3535353535353535353535353535353535353535", "storageKeys": []}]
        }),
    ] {
        let a = c
            .post(
                &path(&eip155, "evm/transaction"),
                json!({ "transaction": tx }),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let raw = hex::decode(&a.body["rawTransaction"].as_str().unwrap()[2..]).unwrap();
        let env = alloy_consensus::TxEnvelope::decode_2718(&mut raw.as_slice()).unwrap();
        assert_eq!(env.recover_signer().unwrap(), addr(&eip155));
        assert_eq!(a.body["hash"], format!("{:#x}", env.tx_hash()));
        let rec = s.record(a.body["auditId"].as_str().unwrap());
        assert_eq!(rec.operation.as_deref(), Some("evm.transaction"));
        assert_eq!(rec.digest.as_deref(), a.body["digest"].as_str());
    }

    // raw digests: test-client lacks the explicit grant; hash-client has it (label:hot)
    let digest = "0x1111111111111111111111111111111111111111111111111111111111111111";
    let a = c
        .post(&path(&eip155, "evm/hash"), json!({ "digest": digest }))
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.body["error"]["code"], "not_authorized");
    assert!(a.body["auditId"].is_string());
    let hc = s.client_as("hash-client", None, 40);
    let a = hc
        .post(&path(&eip155, "evm/hash"), json!({ "digest": digest }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &b256(digest)),
        addr(&eip155)
    );
    // …but not on a wallet outside its selector, which it is answered about exactly as
    // about an id no wallet has (no existence oracle on the sign routes either)
    let a = hc
        .post(&path(&cow, "evm/hash"), json!({ "digest": digest }))
        .await;
    let cow_id = cow.id.clone();
    let unknown = hc
        .post(
            &format!("/v1/wallets/{}/evm/hash", "0".repeat(cow_id.len())),
            json!({ "digest": digest }),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "wallet_not_found");
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    assert_eq!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&cow_id, "<id>"),
        unknown.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&"0".repeat(cow_id.len()), "<id>")
    );

    // dry run: decision and digest, nothing signed, audited as such
    let a = c
        .post(
            &format!("{}?dryRun=true", path(&eip155, "evm/message")),
            json!({ "message": "hi" }),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["dryRun"], true);
    assert!(a.body.get("signature").is_none());
    let rec = s.record(a.body["auditId"].as_str().unwrap());
    assert_eq!(
        (rec.action.as_str(), rec.result.as_str()),
        ("sign.dry_run", "dry_run")
    );

    // the imported keys never reach the database file unwrapped
    let files = common::all_bytes_under(s.env.dir.path());
    for key in [EIP155_KEY, COW_KEY] {
        assert!(!common::contains(&files, &hex::decode(key).unwrap()));
        assert!(!common::contains(&files, key.as_bytes()));
    }
}
/// The EIP-155 example key's public key, uncompressed SEC1, computed with k256 (not the
/// library keyward signs with).
fn eip155_public_key() -> Vec<u8> {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let secret = k256::SecretKey::from_slice(&hex::decode(EIP155_KEY).unwrap()).unwrap();
    secret
        .public_key()
        .to_encoded_point(false)
        .as_bytes()
        .to_vec()
}

/// Waits (bounded) until `wallet`'s row has a public key; the signer records it in the
/// background after the answer.
async fn stored_public_key(s: &Server, wallet: &str) -> Option<Vec<u8>> {
    for _ in 0..200 {
        let id = wallet.to_owned();
        let row = s
            .app
            .store
            .read(move |c| rows::get(c, &id))
            .unwrap()
            .unwrap();
        if row.public_key.is_some() {
            return row.public_key;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_public_keys_are_stored_and_signatures_verified_under_them() {
    let s = start().await;
    let c = s.client();
    // stored at creation for EVM; Solana's public key is its address
    let w = s.import(Chain::Evm, EIP155_KEY, None);
    assert_eq!(w.public_key, Some(eip155_public_key()));
    let sol = s.import(Chain::Solana, COW_KEY, None);
    assert_eq!(sol.public_key, None);
    let created = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    assert_eq!(created.public_key.as_ref().map(Vec::len), Some(65));

    // a row without one (older schema, a delegation): signs by recovery, then has it
    s.put(Wallet {
        public_key: None,
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let digest = keyward::chains::evm::personal_message_digest(b"hi");
    assert_eq!(
        recover(a.body["signature"].as_str().unwrap(), &digest),
        addr(&w)
    );
    assert_eq!(
        stored_public_key(&s, &w.id).await,
        Some(eip155_public_key())
    );
    // and signs under it afterwards, with the same bytes (RFC 6979)
    let b = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    assert_eq!(a.body["signature"], b.body["signature"]);

    // a stored key that does not derive the row's address: fail closed, nothing signed
    s.put(Wallet {
        public_key: created.public_key.clone(),
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("custody_mismatch"))
    );
    assert!(a.body.get("signature").is_none());
    // a row whose address and stored key agree but whose blob holds another key: the
    // signature does not verify under the stored key (`created` revoked first: one active
    // wallet per address)
    let created_id = created.id.clone();
    s.app
        .store
        .write_blocking(move |ctx| rows::mark_revoked(ctx.conn, &created_id, 1, "t"))
        .unwrap();
    s.put(Wallet {
        address: created.address.clone(),
        public_key: created.public_key.clone(),
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("custody_mismatch"))
    );
    assert!(a.body.get("signature").is_none());
    // ... nor, without a stored key, recover to the address, and nothing is recorded
    s.put(Wallet {
        address: created.address.clone(),
        public_key: None,
        ..w.clone()
    });
    let a = c
        .post(&path(&w, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.body["error"]["code"], "custody_mismatch");
    // (a key is recorded only after a signature proved it, so there is nothing to wait for)
    let id = w.id.clone();
    let row = s
        .app
        .store
        .read(move |c| rows::get(c, &id))
        .unwrap()
        .unwrap();
    assert_eq!(row.public_key, None);
}
