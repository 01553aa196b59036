//! The bad-input corpus of the signing API, through the real listener (mTLS on loopback,
//! SoftHSM2 token, SQLite file). Each case is (request, expected status, expected code);
//! for every case the harness checks that the answer carries exactly that status and
//! code with a message, that nothing in the store changed (every table but the audit
//! chain, see `common::store::state`), and the audit trail: a request that reached a
//! sign route with an identity has exactly one new record naming the client, wallet,
//! operation, decision and code (and its id is the answer's `auditId`); any other
//! refusal has none.

mod common;

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use common::api::{path, Client};
use common::corpus::{self, Expect, Tap};
use common::store::AuditRow;
use hyper::Method;
use keyward::api::routes::{self, Matched, RouteId};
use keyward::appliance::LOCK_KEY;
use keyward::pki::Validity;
use keyward::store::state;
use keyward::store::wallets::{self as rows, Chain, Wallet};
use serde_json::{json, Value};

/// Who sends a case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Who {
    /// `test-client`: every operation but `evm.hash`, every wallet.
    Test,
    /// `hash-client`: `evm.hash` and `evm.message` on `label:hot`.
    Hash,
    /// A valid certificate without any grant.
    Stranger,
    /// The URI-SAN identity: `solana.message` on `chain:solana`.
    Spiffe,
    /// A certificate whose subject CN is empty and that has no URI SAN.
    Nameless,
}

/// A request of the API corpus.
struct Req {
    who: Who,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

type Case = corpus::Case<Req>;
type Class<'a> = corpus::Class<'a, Req>;

impl Class<'_> {
    #[allow(
        clippy::too_many_arguments,
        reason = "a case is one call, its fields in table order"
    )]
    fn raw(
        &mut self,
        name: impl Into<String>,
        who: Who,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) {
        let req = Req {
            who,
            method,
            path: path.to_owned(),
            content_type,
            body: body.into(),
        };
        self.push(name, req, expect);
    }

    /// A POST of `body` as JSON from `who`.
    fn post(&mut self, name: impl Into<String>, who: Who, path: &str, body: Value, expect: Expect) {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.raw(
            name,
            who,
            Method::POST,
            path,
            Some("application/json"),
            bytes,
            expect,
        );
    }

    /// A POST of raw bytes as JSON from `test-client`.
    fn bytes(&mut self, name: &str, path: &str, body: &[u8], expect: Expect) {
        self.raw(
            name,
            Who::Test,
            Method::POST,
            path,
            Some("application/json"),
            body,
            expect,
        );
    }
}

/// The wallets the cases address.
struct Wallets {
    evm: Wallet,
    sol: Wallet,
    other_evm: Wallet,
    revoked: Wallet,
    mpc: Wallet,
}

fn base_tx() -> Value {
    json!({"chainId": "1", "nonce": "0", "gas": "21000", "gasPrice": "1",
        "to": "0x3535353535353535353535353535353535353535", "value": "0"})
}

fn tx_with(k: &str, v: Value) -> Value {
    let mut tx = base_tx();
    tx[k] = v;
    json!({ "transaction": tx })
}

fn tx_without(k: &str) -> Value {
    let mut tx = base_tx();
    tx.as_object_mut().unwrap().remove(k);
    json!({ "transaction": tx })
}

fn eip1559(extra: &[(&str, Value)]) -> Value {
    let mut tx = json!({"type": "0x2", "chainId": "1", "nonce": "0", "gas": "21000",
        "maxFeePerGas": "2", "maxPriorityFeePerGas": "1",
        "to": "0x3535353535353535353535353535353535353535"});
    for (k, v) in extra {
        tx[*k] = v.clone();
    }
    json!({ "transaction": tx })
}

fn typed(types: Value, primary: &str, message: Value) -> Value {
    json!({"typedData": {"types": types, "primaryType": primary, "domain": {}, "message": message}})
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

const BAD: (u16, &str) = (400, "invalid_request");
const JSON_: (u16, &str) = (400, "invalid_json");

fn corpus(w: &Wallets) -> Vec<Case> {
    let mut cases = Vec::new();
    let msg = path(&w.evm, "evm/message");
    let td = path(&w.evm, "evm/typed-data");
    let tx = path(&w.evm, "evm/transaction");
    let hash = path(&w.evm, "evm/hash");
    let smsg = path(&w.sol, "solana/message");
    let stx = path(&w.sol, "solana/transaction");
    let sol_pk = keyward::chains::solana::parse_pubkey(w.sol.address.as_deref().unwrap()).unwrap();
    let good_stx = common::solana_tx(&sol_pk, None, false);

    // --- framing: routes, methods, media types, sizes, JSON syntax, the query
    let mut c = Class::new("framing", &mut cases);
    let nf = (404, "route_not_found");
    let na = (405, "method_not_allowed");
    for p in [
        "/",
        "/v1",
        "/v1/",
        "/v1/nothing",
        "/v2/wallets",
        "/v1/wallets/",
        "/V1/WALLETS",
        "/v1/wallets/x/evm",
        "/v1/wallets/x/evm/messages",
        "/v1/wallets/x/evm/message/",
        "/v1/wallets/x/evm/message/extra",
        "/v1/wallets//evm/message",
        "/v1/wallets/x/solana/hash",
        "/v1/wallets/x/bitcoin/message",
    ] {
        c.raw(
            format!("POST {p}"),
            Who::Test,
            Method::POST,
            p,
            None,
            "",
            nf,
        );
    }
    for (m, p) in [
        (Method::GET, msg.as_str()),
        (Method::PUT, tx.as_str()),
        (Method::DELETE, smsg.as_str()),
        (Method::PATCH, stx.as_str()),
        (Method::POST, "/v1/whoami"),
        (Method::POST, "/v1/wallets"),
        (Method::DELETE, "/v1/wallets"),
        (Method::PUT, &format!("/v1/wallets/{}", w.evm.id)),
        (Method::POST, "/v1/openapi.json"),
    ] {
        c.raw(format!("{m} {p}"), Who::Test, m.clone(), p, None, "", na);
    }
    let body = br#"{"message":"hi"}"#;
    let media = (415, "unsupported_media_type");
    for (name, ct) in [
        ("no content type", None),
        ("text/plain", Some("text/plain")),
        ("application/jsonp", Some("application/jsonp")),
        ("form", Some("application/x-www-form-urlencoded")),
        ("multipart", Some("multipart/form-data; boundary=x")),
        ("json-seq", Some("application/json-seq")),
    ] {
        c.raw(name, Who::Test, Method::POST, &msg, ct, &body[..], media);
    }
    c.bytes(
        "body over 256 KiB",
        &msg,
        &vec![b' '; 300 * 1024],
        (413, "body_too_large"),
    );
    for (name, b) in [
        ("empty body", &b""[..]),
        ("not JSON", b"{not json"),
        ("array", b"[1,2]"),
        ("string", b"\"hi\""),
        ("number", b"7"),
        ("null", b"null"),
        ("true", b"true"),
        ("trailing bytes", b"{\"message\":\"hi\"} x"),
        ("two objects", b"{\"message\":\"hi\"}{\"message\":\"x\"}"),
        ("byte order mark", b"\xef\xbb\xbf{\"message\":\"hi\"}"),
        ("invalid UTF-8", b"{\"message\":\"\xff\xfe\"}"),
        ("trailing comma", b"{\"message\":\"hi\",}"),
        ("single quotes", b"{'message':'hi'}"),
        ("unterminated string", b"{\"message\":\"hi}"),
        ("lone surrogate escape", b"{\"message\":\"\\ud800\"}"),
        ("control character in string", b"{\"message\":\"a\x01b\"}"),
        ("NaN", b"{\"message\":NaN}"),
    ] {
        c.bytes(name, &msg, b, JSON_);
    }
    let q = (400, "invalid_query");
    for query in [
        "dryRun=yes",
        "dryRun=",
        "dryRun",
        "dryRun=TRUE",
        "dryRun=1",
        "verbose=1",
        "dryRun=true&dryRun=maybe",
        "dry%52un=true",
    ] {
        c.post(
            format!("?{query}"),
            Who::Test,
            &format!("{msg}?{query}"),
            json!({"message": "hi"}),
            q,
        );
    }

    // --- JSON shape: missing, extra and misnamed fields per route
    let mut c = Class::new("JSON shape", &mut cases);
    for (name, p, who, body) in [
        ("evm message {}", &msg, Who::Test, json!({})),
        (
            "evm message extra",
            &msg,
            Who::Test,
            json!({"message": "hi", "extra": 1}),
        ),
        (
            "evm message misnamed",
            &msg,
            Who::Test,
            json!({"msg": "hi"}),
        ),
        ("typed data {}", &td, Who::Test, json!({})),
        (
            "typed data snake_case",
            &td,
            Who::Test,
            json!({"typed_data": {}}),
        ),
        ("transaction {}", &tx, Who::Test, json!({})),
        (
            "transaction extra",
            &tx,
            Who::Test,
            json!({"transaction": base_tx(), "sign": true}),
        ),
        ("hash {}", &hash, Who::Hash, json!({})),
        (
            "hash extra",
            &hash,
            Who::Hash,
            json!({"digest": format!("0x{}", "11".repeat(32)), "x": 1}),
        ),
        ("solana message {}", &smsg, Who::Test, json!({})),
        (
            "solana message extra",
            &smsg,
            Who::Test,
            json!({"message": "x", "signer": "me"}),
        ),
        ("solana transaction {}", &stx, Who::Test, json!({})),
        (
            "solana transaction extra",
            &stx,
            Who::Test,
            json!({"transaction": b64(&good_stx), "skipPreflight": true}),
        ),
    ] {
        c.post(name, who, p, body, BAD);
    }
    c.post(
        "transaction field unknown",
        Who::Test,
        &tx,
        tx_with("bogus", json!("1")),
        (400, "unknown_field"),
    );
    c.post(
        "transaction field in other case",
        Who::Test,
        &tx,
        tx_with("ChainId", json!("1")),
        (400, "unknown_field"),
    );
    c.post(
        "access list entry unknown field",
        Who::Test,
        &tx,
        tx_with(
            "accessList",
            json!([{"address": "0x3535353535353535353535353535353535353535", "storageKeys": [], "x": 1}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "unknown_field"),
    );
    c.post(
        "transaction missing nonce",
        Who::Test,
        &tx,
        tx_without("nonce"),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction missing gas",
        Who::Test,
        &tx,
        tx_without("gas"),
        (400, "invalid_transaction"),
    );
    c.post(
        "legacy missing gasPrice",
        Who::Test,
        &tx,
        tx_without("gasPrice"),
        (400, "invalid_transaction"),
    );
    c.post(
        "1559 missing priority fee",
        Who::Test,
        &tx,
        eip1559(&[]).tap(|v| {
            v["transaction"]
                .as_object_mut()
                .unwrap()
                .remove("maxPriorityFeePerGas");
        }),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction missing chainId",
        Who::Test,
        &tx,
        tx_without("chainId"),
        (400, "missing_chain_id"),
    );
    c.post(
        "typed data without primaryType",
        Who::Test,
        &td,
        json!({"typedData": {"types": {"P": []}, "domain": {}, "message": {}}}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data without types",
        Who::Test,
        &td,
        json!({"typedData": {"primaryType": "P", "domain": {}, "message": {}}}),
        (400, "invalid_typed_data"),
    );

    // --- types: the right field with the wrong JSON type
    let mut c = Class::new("types", &mut cases);
    for (name, v) in [
        ("number", json!(7)),
        ("null", json!(null)),
        ("array", json!(["hi"])),
        ("object", json!({"text": "hi"})),
        ("bool", json!(true)),
    ] {
        c.post(
            format!("evm message {name}"),
            Who::Test,
            &msg,
            json!({ "message": v }),
            BAD,
        );
    }
    c.post(
        "typed data number",
        Who::Test,
        &td,
        json!({"typedData": 7}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data string not JSON",
        Who::Test,
        &td,
        json!({"typedData": "not json"}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "typed data array",
        Who::Test,
        &td,
        json!({"typedData": []}),
        (400, "invalid_typed_data"),
    );
    c.post(
        "transaction string",
        Who::Test,
        &tx,
        json!({"transaction": "0xf86c"}),
        (400, "invalid_transaction"),
    );
    c.post(
        "transaction array",
        Who::Test,
        &tx,
        json!({"transaction": [base_tx()]}),
        (400, "invalid_transaction"),
    );
    c.post(
        "nonce bool",
        Who::Test,
        &tx,
        tx_with("nonce", json!(true)),
        (400, "invalid_quantity"),
    );
    c.post(
        "value object",
        Who::Test,
        &tx,
        tx_with("value", json!({"wei": 1})),
        (400, "invalid_quantity"),
    );
    c.post(
        "to number",
        Who::Test,
        &tx,
        tx_with("to", json!(5)),
        (400, "invalid_transaction"),
    );
    c.post(
        "data number",
        Who::Test,
        &tx,
        tx_with("data", json!(12)),
        (400, "invalid_transaction"),
    );
    c.post(
        "access list string",
        Who::Test,
        &tx,
        tx_with("accessList", json!("none")).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "invalid_transaction"),
    );
    c.post(
        "access list entry string",
        Who::Test,
        &tx,
        tx_with("accessList", json!(["0x35"])).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "invalid_transaction"),
    );
    c.post("digest number", Who::Hash, &hash, json!({"digest": 1}), BAD);
    c.post(
        "solana message number",
        Who::Test,
        &smsg,
        json!({"message": 1}),
        BAD,
    );
    c.post(
        "solana encoding number",
        Who::Test,
        &smsg,
        json!({"message": "x", "encoding": 5}),
        BAD,
    );
    c.post(
        "solana encoding base58",
        Who::Test,
        &smsg,
        json!({"message": "x", "encoding": "base58"}),
        BAD,
    );
    c.post(
        "solana encoding upper case",
        Who::Test,
        &smsg,
        json!({"message": "x", "encoding": "HEX"}),
        BAD,
    );
    c.post(
        "solana format unknown",
        Who::Test,
        &smsg,
        json!({"message": "x", "format": "weird"}),
        BAD,
    );
    c.post(
        "solana transaction number",
        Who::Test,
        &stx,
        json!({"transaction": 5}),
        BAD,
    );
    c.post(
        "solana transaction byte array",
        Who::Test,
        &stx,
        json!({"transaction": good_stx}),
        BAD,
    );

    // --- ranges: quantities, sizes and limits
    let mut c = Class::new("ranges", &mut cases);
    let qty = (400, "invalid_quantity");
    for (name, k, v) in [
        ("nonce 2^64", "nonce", json!("18446744073709551616")),
        ("gas 2^64", "gas", json!("0x10000000000000000")),
        (
            "gasPrice 2^128",
            "gasPrice",
            json!("0x100000000000000000000000000000000"),
        ),
        (
            "value 2^256",
            "value",
            json!(format!("0x1{}", "0".repeat(64))),
        ),
        ("value negative", "value", json!("-1")),
        ("value fraction", "value", json!("1.5")),
        ("value exponent", "value", json!("1e18")),
        ("value leading space", "value", json!(" 1")),
        ("value JSON float", "value", json!(1.5)),
        ("value JSON negative", "value", json!(-1)),
        ("value empty", "value", json!("")),
        ("value bare 0x", "value", json!("0x")),
        ("chainId zero", "chainId", json!("0")),
        (
            "chainId above legacy",
            "chainId",
            json!("9223372036854775790"),
        ),
        ("type as word", "type", json!("legacy")),
    ] {
        c.post(name, Who::Test, &tx, tx_with(k, v), qty);
    }
    let ty = (400, "unsupported_tx_type");
    for (name, body) in [
        ("type 3", tx_with("type", json!("0x3"))),
        ("type 4", tx_with("type", json!(4))),
        ("type 0x7e", tx_with("type", json!("0x7e"))),
        ("blob fee field", tx_with("maxFeePerBlobGas", json!("1"))),
        (
            "authorization list",
            tx_with("authorizationList", json!([])),
        ),
    ] {
        c.post(name, Who::Test, &tx, body, ty);
    }
    let fee = (400, "fee_inconsistent");
    c.post(
        "1559 with gasPrice",
        Who::Test,
        &tx,
        eip1559(&[("gasPrice", json!("1"))]),
        fee,
    );
    c.post(
        "legacy with maxFeePerGas",
        Who::Test,
        &tx,
        tx_with("type", json!(0)).tap(|v| v["transaction"]["maxFeePerGas"] = json!("2")),
        fee,
    );
    c.post(
        "priority above max fee",
        Who::Test,
        &tx,
        eip1559(&[("maxPriorityFeePerGas", json!("3"))]),
        fee,
    );
    c.post(
        "legacy with access list",
        Who::Test,
        &tx,
        tx_with("type", json!(0)).tap(|v| v["transaction"]["accessList"] = json!([])),
        (400, "invalid_transaction"),
    );
    c.post(
        "gas and gasLimit differ",
        Who::Test,
        &tx,
        tx_with("gasLimit", json!("21001")),
        (400, "invalid_transaction"),
    );
    c.post(
        "data and input differ",
        Who::Test,
        &tx,
        tx_with("data", json!("0x01")).tap(|v| v["transaction"]["input"] = json!("0x02")),
        (400, "invalid_transaction"),
    );
    c.post(
        "data over 128 KiB",
        Who::Test,
        &tx,
        tx_with("data", json!(format!("0x{}", "00".repeat(128 * 1024 + 1)))),
        // 128 KiB of data is 256 KiB of hex: the body limit is reached first, so
        // `data_too_large` cannot be answered through this API (see the report)
        (413, "body_too_large"),
    );
    let entry = json!({"address": "0x0000000000000000000000000000000000000001", "storageKeys": []});
    c.post(
        "257 access list entries",
        Who::Test,
        &tx,
        tx_with("accessList", json!(vec![entry; 257])).tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "access_list_too_large"),
    );
    c.post(
        "257 storage keys",
        Who::Test,
        &tx,
        tx_with(
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001",
                "storageKeys": vec![format!("0x{}", "00".repeat(32)); 257]}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        (400, "access_list_too_large"),
    );
    let complex = (400, "typed_data_too_complex");
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("T{i}"), json!([]))).collect();
    c.post(
        "65 types",
        Who::Test,
        &td,
        typed(Value::Object(many), "T0", json!({})),
        complex,
    );
    let fields: Vec<Value> = (0..65)
        .map(|i| json!({"name": format!("f{i}"), "type": "bool"}))
        .collect();
    c.post(
        "65 fields",
        Who::Test,
        &td,
        typed(json!({ "P": fields }), "P", json!({})),
        complex,
    );
    c.post(
        "field name of 129 bytes",
        Who::Test,
        &td,
        typed(
            json!({"P": [{"name": "n".repeat(129), "type": "bool"}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    c.post(
        "9 array dimensions",
        Who::Test,
        &td,
        typed(
            json!({"P": [{"name": "a", "type": format!("bool{}", "[]".repeat(9))}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    c.post(
        "fixed array of 10,001",
        Who::Test,
        &td,
        typed(
            json!({"P": [{"name": "a", "type": "bool[10001]"}]}),
            "P",
            json!({}),
        ),
        complex,
    );
    let mut deep = json!(true);
    for _ in 0..40 {
        deep = json!([deep]);
    }
    c.post(
        "message nested 40 deep",
        Who::Test,
        &td,
        typed(
            json!({"P": [{"name": "a", "type": "bool"}]}),
            "P",
            json!({ "a": deep }),
        ),
        complex,
    );
    c.post(
        "solana message empty",
        Who::Test,
        &smsg,
        json!({"message": ""}),
        (400, "invalid_message"),
    );
    c.post(
        "off-chain message over 65535 bytes",
        Who::Test,
        &smsg,
        json!({"message": "a".repeat(70_000), "format": "offchain"}),
        (400, "invalid_message"),
    );
    c.post(
        "off-chain message not UTF-8",
        Who::Test,
        &smsg,
        json!({"message": b64(&[0xff; 2000]), "encoding": "base64", "format": "offchain"}),
        (400, "invalid_message"),
    );

    // --- encodings: hex, base64, base58, checksums
    let mut c = Class::new("encodings", &mut cases);
    for m in ["0xzz", "0x1", "0x 12", "0x0g"] {
        c.post(
            format!("evm message {m:?}"),
            Who::Test,
            &msg,
            json!({ "message": m }),
            (400, "invalid_message"),
        );
    }
    let dig = (400, "invalid_digest");
    for d in [
        "11".repeat(32),
        "0x11".into(),
        format!("0x{}", "11".repeat(33)),
        format!("0x{}", "zz".repeat(32)),
        String::new(),
        format!("0X{}", "11".repeat(32)),
        format!("0x{}1", "11".repeat(31)),
    ] {
        c.post(
            format!("digest {d:.12}… ({} chars)", d.len()),
            Who::Hash,
            &hash,
            json!({ "digest": d }),
            dig,
        );
    }
    let enc = (400, "invalid_encoding");
    for (name, m, e) in [
        ("hex not hex", "zz", "hex"),
        ("hex odd length", "abc", "hex"),
        ("base64 garbage", "%%%", "base64"),
        ("base64 unpadded", "YQ", "base64"),
        ("base64url alphabet", "-_-_", "base64"),
        ("base64 whitespace", "aGVs bG8=", "base64"),
    ] {
        c.post(
            name,
            Who::Test,
            &smsg,
            json!({"message": m, "encoding": e}),
            enc,
        );
    }
    c.post(
        "transaction base64 garbage",
        Who::Test,
        &stx,
        json!({"transaction": "%%%"}),
        enc,
    );
    c.post(
        "transaction base64url",
        Who::Test,
        &stx,
        json!({"transaction": B64URL.encode([0xfb; 90])}),
        enc,
    );
    let addr = (400, "invalid_address");
    for (name, k, v) in [
        ("to short", "to", "0x12"),
        (
            "to bad checksum",
            "to",
            "0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
        ),
        (
            "to 21 bytes",
            "to",
            "0x353535353535353535353535353535353535353535",
        ),
        (
            "to not hex",
            "to",
            "0x35353535353535353535353535353535353535zz",
        ),
        ("from short", "from", "0x1234"),
    ] {
        c.post(name, Who::Test, &tx, tx_with(k, json!(v)), addr);
    }
    c.post(
        "access list address bad",
        Who::Test,
        &tx,
        tx_with(
            "accessList",
            json!([{"address": "0x12", "storageKeys": []}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        addr,
    );
    let bad_tx = (400, "invalid_transaction");
    for (name, d) in [
        ("data not hex", "0xzz"),
        ("data odd length", "0x123"),
        ("data without 0x", "1234"),
    ] {
        c.post(name, Who::Test, &tx, tx_with("data", json!(d)), bad_tx);
    }
    c.post(
        "storage key short",
        Who::Test,
        &tx,
        tx_with(
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001", "storageKeys": ["0x12"]}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        bad_tx,
    );

    // --- identifiers: which wallet, and whether it can sign
    let mut c = Class::new("identifiers", &mut cases);
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
        json!({"transaction": b64(&good_stx)}),
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
            json!({"transaction": b64(&good_stx)}),
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

    // --- crypto fields: what the bytes to be signed say
    let mut c = Class::new("crypto fields", &mut cases);
    c.post(
        "from another address",
        Who::Test,
        &tx,
        tx_with("from", json!("0x3535353535353535353535353535353535353535")),
        (400, "from_mismatch"),
    );
    c.post(
        "from another wallet of ours",
        Who::Test,
        &tx,
        tx_with("from", json!(w.other_evm.address.clone().unwrap())),
        (400, "from_mismatch"),
    );
    c.post(
        "not a signer",
        Who::Test,
        &stx,
        json!({"transaction": b64(&common::solana_tx(&[5u8; 32], None, false))}),
        (422, "not_a_signer"),
    );
    let mut v1 = common::solana_tx(&sol_pk, None, true);
    v1[65] = 0x81; // message version 1
    c.post(
        "message version 1",
        Who::Test,
        &stx,
        json!({"transaction": b64(&v1)}),
        (400, "unsupported_version"),
    );
    let it = (400, "invalid_transaction");
    c.post(
        "three bytes",
        Who::Test,
        &stx,
        json!({"transaction": b64(&[1, 2, 3])}),
        it,
    );
    c.post(
        "empty transaction",
        Who::Test,
        &stx,
        json!({"transaction": ""}),
        it,
    );
    let mut short_sigs = good_stx.clone();
    short_sigs[0] = 2; // claims two signatures, carries one
    c.post(
        "signature count above the message's",
        Who::Test,
        &stx,
        json!({"transaction": b64(&short_sigs)}),
        it,
    );
    let truncated = &good_stx[..good_stx.len() - 5];
    c.post(
        "truncated transaction",
        Who::Test,
        &stx,
        json!({"transaction": b64(truncated)}),
        it,
    );
    let mut trailing = good_stx.clone();
    trailing.extend_from_slice(b"tail");
    c.post(
        "transaction with trailing bytes",
        Who::Test,
        &stx,
        json!({"transaction": b64(&trailing)}),
        it,
    );
    let is_tx = (400, "message_is_transaction");
    c.post(
        "message that is a transaction",
        Who::Test,
        &smsg,
        json!({"message": b64(&good_stx), "encoding": "base64"}),
        is_tx,
    );
    c.post(
        "message that is a transaction message",
        Who::Test,
        &smsg,
        json!({"message": b64(&good_stx[65..]), "encoding": "base64"}),
        is_tx,
    );
    c.post(
        "message that is a transaction, hex",
        Who::Test,
        &smsg,
        json!({"message": hex::encode(&good_stx[65..]), "encoding": "hex"}),
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
        c.post(name, Who::Test, &td, t, itd);
    }

    // --- identity and grants
    let mut c = Class::new("identity/grants", &mut cases);
    let nope = (403, "not_authorized");
    c.post(
        "stranger, evm message",
        Who::Stranger,
        &msg,
        json!({"message": "hi"}),
        nope,
    );
    c.post(
        "stranger, solana transaction",
        Who::Stranger,
        &stx,
        json!({"transaction": b64(&good_stx)}),
        nope,
    );
    c.post(
        "stranger, bad body",
        Who::Stranger,
        &msg,
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
        &hash,
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
        &tx,
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
        &stx,
        json!({"transaction": b64(&good_stx)}),
        nope,
    );
    c.post(
        "URI identity, evm message",
        Who::Spiffe,
        &msg,
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
        &msg,
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
    cases
}

/// The typed identity each sender's certificate names (as audit records carry it).
fn identity(who: Who) -> &'static str {
    match who {
        Who::Test => "cn:test-client",
        Who::Hash => "cn:hash-client",
        Who::Stranger => "cn:stranger",
        Who::Spiffe => "uri:spiffe://keyward.test/svc/payments",
        Who::Nameless => "",
    }
}

/// The API under the corpus: each case from its sender's client; a sign request's
/// refusal is audited once (as denied, or as an error for a 5xx), anything else not
/// at all.
struct Api<'a> {
    clients: &'a BTreeMap<String, Client>,
}

impl corpus::Face<Req> for Api<'_> {
    async fn send(&self, req: &Req) -> Result<corpus::Answer, String> {
        let a = self.clients[&format!("{:?}", req.who)]
            .send(
                req.method.as_str(),
                &req.path,
                req.content_type,
                req.body.clone(),
            )
            .await?;
        Ok(corpus::Answer {
            status: a.status.as_u16(),
            code: a.code().to_owned(),
            message: a.body["error"]["message"].as_str().map(str::to_owned),
            audit_id: a.body["auditId"].as_str().map(str::to_owned),
            shown: a.body.to_string(),
        })
    }

    fn audited(&self, case: &Case, a: &corpus::Answer, written: &[AuditRow]) -> Result<(), String> {
        let req = &case.input;
        let route_path = req.path.split('?').next().unwrap();
        let sign = match routes::route(&req.method, route_path) {
            Matched::Route {
                id: RouteId::Sign(op),
                wallet_id,
                ..
            } if req.who != Who::Nameless => Some((op, wallet_id.unwrap().to_owned())),
            _ => None,
        };
        let Some((op, wallet_id)) = sign else {
            return match written.is_empty() && a.audit_id.is_none() {
                true => Ok(()),
                false => Err(format!("audited: {written:?} {}", a.shown)),
            };
        };
        let decision = if case.status >= 500 {
            "error"
        } else {
            "denied"
        };
        let want = (
            a.audit_id.clone(),
            identity(req.who).to_owned(),
            if req.path.ends_with("?dryRun=true") {
                "sign.dry_run"
            } else {
                "sign"
            }
            .to_owned(),
            Some(wallet_id),
            Some(op.as_str().to_owned()),
            decision.to_owned(),
            case.code.to_owned(),
        );
        let got: Vec<_> = written
            .iter()
            .map(|r| {
                (
                    Some(r.id.clone()),
                    r.actor.clone(),
                    r.action.clone(),
                    r.wallet_id.clone(),
                    r.operation.clone(),
                    r.decision.clone(),
                    r.result.clone(),
                )
            })
            .collect();
        match got == vec![want.clone()] {
            true => Ok(()),
            false => Err(format!("audit: want exactly {want:?}, got {got:?}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_has_its_code_changes_nothing_and_is_audited() {
    let s = common::api::start(common::api::CLIENTS).await;
    let evm = keyward::wallets::create(&s.app, Chain::Evm, Some("hot")).unwrap();
    let other_evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    let revoked = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let id = revoked.id.clone();
    s.app
        .store
        .write_blocking(move |ctx| rows::mark_revoked(ctx.conn, &id, 1, "now"))
        .unwrap();
    let (_, mpc_address) = keyward::wallet_key::generate(Chain::Evm);
    let mpc = s.put_mpc(Chain::Evm, mpc_address, &[0x42; 48], None);
    let w = Wallets {
        evm,
        sol,
        other_evm,
        revoked,
        mpc,
    };
    let ca = &s.env.pki.ca;
    let mut clients = BTreeMap::new();
    for (who, cn, uri, serial) in [
        (Who::Test, "test-client", None, 70),
        (Who::Hash, "hash-client", None, 71),
        (Who::Stranger, "stranger", None, 72),
        (
            Who::Spiffe,
            "ignored-cn",
            Some("spiffe://keyward.test/svc/payments"),
            73,
        ),
        (Who::Nameless, "", None, 74),
    ] {
        let cert = ca.client(cn, uri, Validity::Current, serial).unwrap();
        clients.insert(format!("{who:?}"), Client::new(&s.env, s.addr, Some(&cert)));
    }

    let cases = corpus(&w);
    corpus::assert_distinct(&cases);
    let api = Api { clients: &clients };
    let mut per_class = corpus::run(&api, s.db(), &cases).await;

    // ordering and state: while an operator's lock is in force every sign request is
    // refused (423, audited) whatever it carries; reads still answer
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, Some("bad-input corpus")))
        .unwrap();
    let mut locked = Vec::new();
    let mut c = Class::new("ordering/state", &mut locked);
    let lock = (423, "appliance_locked");
    c.post(
        "locked, valid message",
        Who::Test,
        &path(&w.evm, "evm/message"),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, dry run",
        Who::Test,
        &format!("{}?dryRun=true", path(&w.evm, "evm/message")),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, solana transaction",
        Who::Test,
        &path(&w.sol, "solana/transaction"),
        json!({"transaction": b64(&common::solana_tx(
            &keyward::chains::solana::parse_pubkey(w.sol.address.as_deref().unwrap()).unwrap(),
            None,
            false,
        ))}),
        lock,
    );
    c.post(
        "locked, stranger",
        Who::Stranger,
        &path(&w.evm, "evm/message"),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, unknown wallet",
        Who::Test,
        "/v1/wallets/no-such-wallet/evm/message",
        json!({"message": "hi"}),
        lock,
    );
    c.bytes(
        "locked, not JSON",
        &path(&w.evm, "evm/message"),
        b"{not json",
        lock,
    );
    for (class, n) in corpus::run(&api, s.db(), &locked).await {
        *per_class.entry(class).or_insert(0) += n;
    }
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, None))
        .unwrap();

    // the same server still signs, and the chain of all those records verifies
    let a = clients["Test"]
        .post(&path(&w.evm, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.body);
    let n = s
        .app
        .store
        .read(keyward::store::audit::verify)
        .unwrap()
        .unwrap();
    let total: usize = per_class.values().sum();
    eprintln!("bad-input corpus (API): {total} cases {per_class:?}; {n} audit records");
    assert!(total >= 150, "{total} cases");
}
