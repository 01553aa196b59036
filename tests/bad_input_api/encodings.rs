//! Bad-input cases: encodings: hex, base64, base58, checksums.

use super::*;

pub fn cases(_w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("encodings", cases);
    for m in ["0xzz", "0x1", "0x 12", "0x0g"] {
        c.post(
            format!("evm message {m:?}"),
            Who::Test,
            &r.msg,
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
            &r.hash,
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
            &r.smsg,
            json!({"message": m, "encoding": e}),
            enc,
        );
    }
    c.post(
        "transaction base64 garbage",
        Who::Test,
        &r.stx,
        json!({"transaction": "%%%"}),
        enc,
    );
    c.post(
        "transaction base64url",
        Who::Test,
        &r.stx,
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
        c.post(name, Who::Test, &r.tx, tx_with(k, json!(v)), addr);
    }
    c.post(
        "access list address bad",
        Who::Test,
        &r.tx,
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
        c.post(name, Who::Test, &r.tx, tx_with("data", json!(d)), bad_tx);
    }
    c.post(
        "storage key short",
        Who::Test,
        &r.tx,
        tx_with(
            "accessList",
            json!([{"address": "0x0000000000000000000000000000000000000001", "storageKeys": ["0x12"]}]),
        )
        .tap(|v| v["transaction"]["type"] = json!(1)),
        bad_tx,
    );
}
