//! Unit tests of the EVM encodings: known answers from the EIPs, refusals, bounds.

use super::*;
use alloy_consensus::transaction::SignerRecoverable;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{address, b256, hex, keccak256};
use k256::ecdsa::SigningKey;
use serde_json::json;

const MAX: usize = 1024;

fn key(bytes: [u8; 32]) -> SigningKey {
    SigningKey::from_bytes(&bytes.into()).unwrap()
}

fn test_key() -> SigningKey {
    key([0x11; 32])
}

fn code(r: Result<impl std::fmt::Debug, EvmError>) -> &'static str {
    r.unwrap_err().code()
}

// -- known-answer vectors ------------------------------------------------

#[test]
fn eip155_example_from_eip_text() {
    let tx = parse_transaction(
        &json!({
            "nonce": "0x9",
            "gasPrice": "20000000000",
            "gas": 21000,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000",
            "data": "0x",
            "chainId": 1
        }),
        MAX,
    )
    .unwrap();
    assert_eq!(tx.tx_type(), 0);
    assert_eq!(
        tx.signature_hash(),
        b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
    );
    let sk = key([0x46; 32]);
    let sig = sign_digest(&sk, &tx.signature_hash());
    let signed = tx
        .encode_signed_checked(&sig, address_of(sk.verifying_key()))
        .unwrap();
    assert_eq!(
        signed.raw,
        hex!("f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83")
    );
    assert_eq!(signed.hash, keccak256(&signed.raw));
}

/// EIP-712's own "Mail" example (tests/fixtures/eip712_mail.json, shared with the
/// integration tests, the load generator and the micro-benchmarks).
fn mail_typed_data() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/eip712_mail.json"
    )))
    .unwrap()
}

#[test]
fn eip712_mail_example_from_eip_text() {
    let info = typed_data(&mail_typed_data()).unwrap();
    assert_eq!(
        info.digest,
        b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
    );
    assert_eq!(info.primary_type, "Mail");
    assert_eq!(info.domain_name.as_deref(), Some("Ether Mail"));
    assert_eq!(info.domain_version.as_deref(), Some("1"));
    assert_eq!(info.domain_chain_id, Some(1));
    assert_eq!(
        info.domain_verifying_contract,
        Some(address!("CcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"))
    );

    let sk = key(keccak256("cow").0);
    assert_eq!(
        address_of(sk.verifying_key()),
        address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
    );
    let sig = sign_digest(&sk, &info.digest);
    assert_eq!(
        sig.r,
        hex!("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d")
    );
    assert_eq!(
        sig.s,
        hex!("07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562")
    );
    assert_eq!(sig.to_rsv_65()[64], 28);
}

#[test]
fn eip712_accepts_stringified_json() {
    let s = Value::String(mail_typed_data().to_string());
    assert_eq!(
        typed_data(&s).unwrap(),
        typed_data(&mail_typed_data()).unwrap()
    );
}

#[test]
fn eip712_nested_arrays() {
    let v = json!({
        "types": {
            "EIP712Domain": [{"name": "chainId", "type": "uint256"}],
            "Item": [{"name": "id", "type": "uint256"}, {"name": "tags", "type": "string[]"}],
            "Order": [{"name": "items", "type": "Item[]"}, {"name": "owner", "type": "address"}]
        },
        "primaryType": "Order",
        "domain": {"chainId": "0x89"},
        "message": {
            "items": [{"id": 1, "tags": ["a", "b"]}, {"id": "0x2", "tags": []}],
            "owner": "0x0000000000000000000000000000000000000001"
        }
    });
    let info = typed_data(&v).unwrap();
    assert_eq!(info.domain_chain_id, Some(137));
    assert_eq!(info.domain_name, None);
}

#[test]
fn eip712_errors() {
    assert_eq!(code(typed_data(&json!([1, 2]))), "invalid_typed_data");
    assert_eq!(code(typed_data(&json!("{not json"))), "invalid_typed_data");

    let mut v = mail_typed_data();
    v["message"]["from"]["wallet"] = json!("not an address");
    assert_eq!(code(typed_data(&v)), "invalid_typed_data");

    let mut v = mail_typed_data();
    v["domain"]["extra"] = json!("silently dropped by alloy");
    let err = typed_data(&v).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");

    // Declared order differs from the order alloy hashes in.
    let mut v = mail_typed_data();
    v["types"]["EIP712Domain"]
        .as_array_mut()
        .unwrap()
        .swap(0, 1);
    let err = typed_data(&v).unwrap_err();
    assert!(err.to_string().contains("EIP712Domain"), "{err}");

    // Declared field with no value in the domain.
    let mut v = mail_typed_data();
    v["domain"].as_object_mut().unwrap().remove("version");
    assert_eq!(code(typed_data(&v)), "invalid_typed_data");

    let mut v = mail_typed_data();
    v["primaryType"] = json!("Missing");
    assert_eq!(code(typed_data(&v)), "invalid_typed_data");
}

/// Runs `f` on a thread with the stack of a tokio worker (2 MiB), where requests run.
fn on_worker_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// `P` → `S1` → … → `S{k-1}`, each reference with `dims` array dimensions, the last
/// type holding `bool` with `last_dims`; and a message of that exact shape.
fn deepest(k: usize, dims: usize, last_dims: usize) -> Value {
    let name = |i: usize| {
        if i == 0 {
            "P".to_string()
        } else {
            format!("S{i}")
        }
    };
    let mut types = Map::new();
    types.insert("EIP712Domain".into(), json!([]));
    let mut leaf = json!(true);
    for _ in 0..last_dims {
        leaf = json!([leaf]);
    }
    let mut msg = json!({ "b": leaf });
    for i in (0..k).rev() {
        let field = if i + 1 == k {
            json!([{"name": "b", "type": format!("bool{}", "[]".repeat(last_dims))}])
        } else {
            json!([{"name": "n", "type": format!("{}{}", name(i + 1), "[]".repeat(dims))}])
        };
        types.insert(name(i), field);
        if i + 1 < k {
            let mut v = msg;
            for _ in 0..dims {
                v = json!([v]);
            }
            msg = json!({ "n": v });
        }
    }
    json!({"types": types, "primaryType": "P", "domain": {}, "message": msg})
}

#[test]
fn eip712_at_the_limits_hashes_on_a_worker_stack() {
    let l = typed_data_limits::Limits::DEFAULT;
    // deepest struct chain, and deepest struct + array nesting the limits allow
    for (k, dims, last) in [(l.max_struct_depth, 0, 8), (4, 8, 4)] {
        let v = deepest(k, dims, last);
        let got = on_worker_stack(move || typed_data(&v).map(|i| i.primary_type));
        assert_eq!(got, Ok("P".to_string()), "k={k} dims={dims} last={last}");
    }
    // one more level is refused before alloy
    let v = deepest(4, 8, 5);
    assert_eq!(
        on_worker_stack(move || typed_data(&v).map(|_| ()))
            .unwrap_err()
            .code(),
        "typed_data_too_complex"
    );
}

#[test]
fn eip712_hostile_shapes_are_refused_on_a_worker_stack() {
    let dims = format!("uint256{}", "[]".repeat(100_000));
    let mut chain = Map::new();
    for i in 0..200 {
        chain.insert(
            format!("S{i}"),
            json!([{"name": "n", "type": format!("S{}", i + 1)}]),
        );
    }
    chain.insert("S200".into(), json!([]));
    let many: Map<String, Value> = (0..5000).map(|i| (format!("T{i}"), json!([]))).collect();
    let fields: Vec<Value> = (0..100_000)
        .map(|i| json!({"name": format!("f{i}"), "type": "uint256"}))
        .collect();
    let cases = [
        json!({"types": {"P": [{"name": "a", "type": dims}]}, "primaryType": "P", "message": {}}),
        json!({"types": chain, "primaryType": "S0", "message": {}}),
        json!({"types": many, "primaryType": "T0", "message": {}}),
        json!({"types": {"P": fields}, "primaryType": "P", "message": {}}),
    ];
    for (i, v) in cases.into_iter().enumerate() {
        let got = on_worker_stack(move || typed_data(&v).map(|_| ()));
        assert_eq!(
            got.unwrap_err().code(),
            "typed_data_too_complex",
            "case {i}"
        );
    }
}

#[test]
fn eip191_hello_world() {
    assert_eq!(
        personal_message_digest(b"Hello World"),
        b256!("a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2")
    );
}

#[test]
fn personal_sign_roundtrip() {
    let sk = test_key();
    let digest = personal_message_digest(&parse_message("hello").unwrap());
    let sig = sign_digest(&sk, &digest);
    assert_eq!(
        recover_address(&digest, &sig).unwrap(),
        address_of(sk.verifying_key())
    );
    let alloy = Signature::from_raw(&sig.to_rsv_65()).unwrap();
    assert_eq!(
        alloy.recover_address_from_msg("hello").unwrap(),
        address_of(sk.verifying_key())
    );
}

#[test]
fn parse_message_forms() {
    assert_eq!(parse_message("0x48656c6c6f").unwrap(), b"Hello");
    assert_eq!(parse_message("0xABcd").unwrap(), vec![0xab, 0xcd]);
    assert_eq!(parse_message("0x").unwrap(), Vec::<u8>::new());
    assert_eq!(parse_message("Hello").unwrap(), b"Hello");
    assert_eq!(parse_message("").unwrap(), Vec::<u8>::new());
    assert_eq!(code(parse_message("0x123")), "invalid_message");
    assert_eq!(code(parse_message("0xhello")), "invalid_message");
}

#[test]
fn parse_digest_forms() {
    let d = "0x".to_owned() + &"ab".repeat(32);
    assert_eq!(parse_digest(&d).unwrap(), B256::repeat_byte(0xab));
    assert_eq!(code(parse_digest(&"ab".repeat(32))), "invalid_digest");
    assert_eq!(code(parse_digest(&d[..64])), "invalid_digest");
    assert_eq!(code(parse_digest(&(d.clone() + "00"))), "invalid_digest");
    assert_eq!(code(parse_digest("0xzz")), "invalid_digest");
}

// -- typed transaction round trips ----------------------------------------

fn roundtrip(tx: &UnsignedTx) -> TxEnvelope {
    let sk = test_key();
    let sig = sign_digest(&sk, &tx.signature_hash());
    let signed = tx.encode_signed(&sig);
    let env = TxEnvelope::decode_2718(&mut signed.raw.as_slice()).unwrap();
    assert_eq!(*env.tx_hash(), signed.hash);
    assert_eq!(env.signature_hash(), tx.signature_hash());
    assert_eq!(
        env.recover_signer().unwrap(),
        address_of(sk.verifying_key())
    );
    env
}

#[test]
fn eip1559_roundtrip() {
    let tx = parse_transaction(
        &json!({
            "type": "0x2",
            "chainId": "0x1",
            "nonce": "7",
            "from": "0x0000000000000000000000000000000000000001",
            "to": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC",
            "value": "0xde0b6b3a7640000",
            "input": "0xa9059cbb",
            "gasLimit": "0x5208",
            "maxFeePerGas": "30000000000",
            "maxPriorityFeePerGas": "0x3b9aca00",
            "accessList": []
        }),
        MAX,
    )
    .unwrap();
    assert_eq!(tx.tx_type(), 2);
    assert_eq!(tx.selector(), Some([0xa9, 0x05, 0x9c, 0xbb]));
    assert_eq!(tx.from(), Some(Address::with_last_byte(1)));
    let env = roundtrip(&tx);
    let signed = env.as_eip1559().unwrap();
    let inner = signed.tx();
    assert_eq!(EvmTx::Eip1559(inner.clone()), *tx.inner());
    assert_eq!(inner.chain_id, 1);
    assert_eq!(inner.nonce, 7);
    assert_eq!(inner.gas_limit, 21000);
    assert_eq!(inner.max_fee_per_gas, 30_000_000_000);
    assert_eq!(inner.max_priority_fee_per_gas, 1_000_000_000);
    assert_eq!(inner.value, U256::from(10u64.pow(18)));
    assert_eq!(inner.input.as_ref(), tx.data());
    assert_eq!(inner.to.to().copied(), tx.to());
    assert_eq!(
        tx.max_cost(),
        U256::from(21000u64 * 30_000_000_000 + 10u64.pow(18))
    );
}

#[test]
fn eip2930_roundtrip_with_access_list() {
    let key_hex = format!("0x{}", "01".repeat(32));
    let tx = parse_transaction(
        &json!({
            "chainId": 11155111,
            "nonce": 0,
            "gas": "0x10000",
            "gasPrice": "0x3b9aca00",
            "data": "0x6080",
            "accessList": [{
                "address": "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                "storageKeys": [key_hex]
            }]
        }),
        MAX,
    )
    .unwrap();
    assert_eq!(tx.tx_type(), 1);
    assert_eq!(tx.to(), None);
    assert_eq!(tx.max_fee_per_gas(), 1_000_000_000);
    let env = roundtrip(&tx);
    let inner = env.as_eip2930().unwrap().tx();
    assert_eq!(EvmTx::Eip2930(inner.clone()), *tx.inner());
    assert_eq!(inner.chain_id, 11155111);
    assert!(inner.to.is_create());
    assert_eq!(inner.access_list.0.len(), 1);
    assert_eq!(
        inner.access_list.0[0].storage_keys,
        vec![B256::repeat_byte(1)]
    );
    assert_eq!(inner.input.as_ref(), &[0x60, 0x80]);
}

#[test]
fn legacy_roundtrip_uses_eip155_v() {
    let tx = parse_transaction(
        &json!({"chainId": 5, "nonce": 1, "gas": 21000, "gasPrice": 1, "to": ""}),
        MAX,
    )
    .unwrap();
    let env = roundtrip(&tx);
    assert_eq!(env.as_legacy().unwrap().tx().chain_id, Some(5));
}

#[test]
fn type_inference() {
    let base = json!({"chainId": 1, "nonce": 0, "gas": 21000});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse_transaction(&v, MAX).map(|t| t.tx_type())
    };
    assert_eq!(with(json!({"gasPrice": 1})), Ok(0));
    assert_eq!(with(json!({"gasPrice": 1, "accessList": []})), Ok(1));
    assert_eq!(
        with(json!({"maxFeePerGas": 2, "maxPriorityFeePerGas": 1})),
        Ok(2)
    );
    assert_eq!(with(json!({"type": 1, "gasPrice": 1})), Ok(1));
    assert_eq!(
        with(json!({"type": "0x0", "gasPrice": 1, "gasLimit": 21000})),
        Ok(0)
    );
}

// -- signatures -------------------------------------------------------------

#[test]
fn high_s_is_normalized_with_parity_flip() {
    let sk = test_key();
    let digest = personal_message_digest(b"malleable");
    let (sig, recid) = sk.sign_prehash_recoverable(digest.as_slice()).unwrap();
    let low = RecoverableSig::from_k256(&sig, recid);
    // Build the high-s twin: s' = n - s, parity flipped.
    let high = k256::ecdsa::Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
    let high_recid = k256::ecdsa::RecoveryId::new(!recid.is_y_odd(), false);
    let (high, high_recid) = if sig.normalize_s().is_some() {
        (sig, recid)
    } else {
        (high, high_recid)
    };
    assert!(high.normalize_s().is_some());
    let normalized = RecoverableSig::from_k256(&high, high_recid);
    assert_eq!(normalized, low);
    assert_eq!(
        recover_address(&digest, &normalized).unwrap(),
        address_of(sk.verifying_key())
    );
}

#[test]
fn from_rs_recovering_finds_parity_and_rejects_wrong_key() {
    let sk = test_key();
    let me = address_of(sk.verifying_key());
    let digest = personal_message_digest(b"hsm");
    let sig = sign_digest(&sk, &digest);
    let got = RecoverableSig::from_rs_recovering(&digest, sig.r, sig.s, me).unwrap();
    assert_eq!(got, sig);
    let other = address_of(key([0x22; 32]).verifying_key());
    assert_eq!(
        code(RecoverableSig::from_rs_recovering(
            &digest, sig.r, sig.s, other
        )),
        "signer_mismatch"
    );
    assert_eq!(
        code(RecoverableSig::from_rs_recovering(
            &digest, [0; 32], sig.s, me
        )),
        "invalid_signature"
    );
}

#[test]
fn encode_signed_checked_rejects_wrong_signer() {
    let tx = parse_transaction(
        &json!({"chainId": 1, "nonce": 0, "gas": 21000, "gasPrice": 1}),
        MAX,
    )
    .unwrap();
    let sig = sign_digest(&test_key(), &tx.signature_hash());
    assert_eq!(
        code(tx.encode_signed_checked(&sig, Address::ZERO)),
        "signer_mismatch"
    );
}

// -- error codes ----------------------------------------------------------------

fn parse(v: Value) -> Result<UnsignedTx, EvmError> {
    parse_transaction(&v, 4)
}

#[test]
fn transaction_error_codes() {
    let cases = [
        (
            json!({"nonce": 0, "gas": 1, "gasPrice": 1}),
            "missing_chain_id",
        ),
        (
            json!({"chainId": 0, "nonce": 0, "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"type": 2, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "maxFeePerGas": 2, "maxPriorityFeePerGas": 1}),
            "fee_inconsistent",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1,
                "maxFeePerGas": 1, "maxPriorityFeePerGas": 2}),
            "fee_inconsistent",
        ),
        (
            json!({"type": 0, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "maxFeePerGas": 1}),
            "fee_inconsistent",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "data": "0x0102030405"}),
            "data_too_large",
        ),
        (
            json!({"chainId": 1, "nonce": "0xg", "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": -1, "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": 1.5, "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": "0x", "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": " 1", "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": "0x10000000000000000", "gas": 1, "gasPrice": 1}),
            "invalid_quantity",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "foo": 1}),
            "unknown_field",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "accessList": [{"address": "0x0000000000000000000000000000000000000001",
                                "storageKeys": [], "x": 1}]}),
            "unknown_field",
        ),
        (json!({"type": 3}), "unsupported_tx_type"),
        (
            json!({"type": "0x7e", "chainId": 1, "nonce": 0, "gas": 1}),
            "unsupported_tx_type",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "authorizationList": []}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "to": "0x1234"}),
            "invalid_address",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "to": "0xcCCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"}),
            "invalid_address",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "from": "nope"}),
            "invalid_address",
        ),
        (
            json!({"chainId": 1, "gas": 1, "gasPrice": 1}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gasPrice": 1}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "data": "0x01", "input": "0x02"}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasLimit": 2, "gasPrice": 1}),
            "invalid_transaction",
        ),
        (
            json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "data": "0x123"}),
            "invalid_transaction",
        ),
        (
            json!({"type": 0, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
                "accessList": []}),
            "invalid_transaction",
        ),
        (json!("not an object"), "invalid_transaction"),
    ];
    for (i, (v, want)) in cases.into_iter().enumerate() {
        let err = parse(v).unwrap_err();
        assert_eq!(err.code(), want, "case {i}: {err}");
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn legacy_chain_id_bound() {
    let legacy =
        |id: u64| parse(json!({"chainId": id.to_string(), "nonce": 0, "gas": 1, "gasPrice": 1}));
    let tx = legacy(MAX_LEGACY_CHAIN_ID).unwrap();
    // the largest v (2 * id + 35 + parity 1) fits 64 bits at the bound, not above it
    let v = |id: u64| u128::from(id) * 2 + 36;
    assert!(v(tx.chain_id()) <= u128::from(u64::MAX));
    assert!(v(MAX_LEGACY_CHAIN_ID + 1) > u128::from(u64::MAX));
    let err = legacy(MAX_LEGACY_CHAIN_ID + 1).unwrap_err();
    assert_eq!(err.code(), "invalid_quantity");
    assert!(err.to_string().contains("chainId"), "{err}");
    assert_eq!(legacy(u64::MAX).unwrap_err().code(), "invalid_quantity");
    // typed transactions carry parity, not v: any 64-bit chain id is fine
    let typed = parse(
        json!({"type": 2, "chainId": u64::MAX.to_string(), "nonce": 0, "gas": 1,
        "maxFeePerGas": 1, "maxPriorityFeePerGas": 1}),
    );
    assert_eq!(typed.unwrap().chain_id(), u64::MAX);
}

#[test]
fn access_list_bounds() {
    let key = json!(format!("0x{}", "11".repeat(32)));
    let entry = |keys: usize| {
        json!({"address": "0x0000000000000000000000000000000000000001",
               "storageKeys": vec![key.clone(); keys]})
    };
    let tx = |list: Vec<Value>| {
        parse(
            json!({"type": 1, "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
            "accessList": list}),
        )
    };
    let ok = tx(vec![entry(0); MAX_ACCESS_LIST_ENTRIES]).unwrap();
    assert_eq!(ok.access_list().unwrap().0.len(), MAX_ACCESS_LIST_ENTRIES);
    let err = tx(vec![entry(0); MAX_ACCESS_LIST_ENTRIES + 1]).unwrap_err();
    assert_eq!(err.code(), "access_list_too_large");
    assert!(tx(vec![entry(MAX_STORAGE_KEYS_PER_ENTRY)]).is_ok());
    let err = tx(vec![entry(0), entry(MAX_STORAGE_KEYS_PER_ENTRY + 1)]).unwrap_err();
    assert_eq!(err.code(), "access_list_too_large");
    assert!(
        err.to_string().contains("accessList[1].storageKeys"),
        "{err}"
    );
}

#[test]
fn accepted_tx_edge_cases() {
    // Identical data/input, identical gas/gasLimit, nulls as absent.
    let tx = parse(json!({
        "chainId": 1, "nonce": 0, "gas": 1, "gasLimit": "0x1", "gasPrice": 1,
        "data": "0x01", "input": "0x01", "to": null, "maxFeePerGas": null
    }))
    .unwrap();
    assert_eq!(tx.data(), &[1]);
    assert_eq!(tx.to(), None);
    assert_eq!(tx.selector(), None);
    let all_lower = parse(json!({
        "chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1,
        "to": "0xcccccccccccccccccccccccccccccccccccccccc"
    }))
    .unwrap();
    assert_eq!(all_lower.to(), Some(Address::repeat_byte(0xcc)));
}

#[test]
fn error_messages_name_the_field() {
    let err = parse(json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": "x"})).unwrap_err();
    assert!(err.to_string().contains("gasPrice"), "{err}");
    let err =
        parse(json!({"chainId": 1, "nonce": 0, "gas": 1, "gasPrice": 1, "bogus": 1})).unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
}

#[test]
fn every_code_is_snake_case_and_distinct() {
    let all = [
        EvmError::InvalidMessage(String::new()),
        EvmError::InvalidTypedData(String::new()),
        EvmError::TypedDataTooComplex(String::new()),
        tx_err("f", "r"),
        EvmError::UnknownField(String::new()),
        EvmError::MissingChainId,
        EvmError::FeeInconsistent(String::new()),
        EvmError::UnsupportedTxType(String::new()),
        EvmError::DataTooLarge {
            field: String::new(),
            len: 0,
            max: 0,
        },
        EvmError::AccessListTooLarge {
            field: String::new(),
            len: 0,
            max: 0,
        },
        qty_err("f", "r"),
        addr_err("f", "r"),
        EvmError::InvalidDigest(String::new()),
        EvmError::InvalidSignature(String::new()),
        EvmError::SignerMismatch {
            expected: Address::ZERO,
            recovered: Address::ZERO,
        },
    ];
    let mut codes: Vec<_> = all.iter().map(EvmError::code).collect();
    assert!(codes
        .iter()
        .all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}
