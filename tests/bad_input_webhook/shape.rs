//! Bad deliveries: JSON shape: the envelope and `data`.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("JSON shape", cases);
    for (name, body) in [
        ("not JSON", &b"{not json"[..]),
        ("empty body", b""),
        ("array", b"[]"),
        ("string", b"\"ping\""),
        ("null", b"null"),
        ("number", b"42"),
        ("truncated", b"{\"eventId\":\"e1\",\"eventName\":\"ping\""),
        ("object, then bytes", b"{} x"),
    ] {
        c.signed(name, &x.url, body.to_vec(), MALFORMED);
    }
    c.signed(
        "two envelopes",
        &x.url,
        format!("{0}{0}", x.ping_text).into_bytes(),
        MALFORMED,
    );
    c.signed(
        "eventId twice",
        &x.url,
        x.ping_text
            .replacen('{', &format!("{{\"eventId\":\"{}\",", id()), 1)
            .into_bytes(),
        MALFORMED,
    );
    for k in ["eventId", "eventName", "timestamp"] {
        c.json(
            format!("no {k}"),
            &x.url,
            &remove(x.ping.clone(), k),
            MALFORMED,
        );
    }
    for k in [
        "chain",
        "walletId",
        "publicKey",
        "encryptedDelegatedShare",
        "encryptedWalletApiKey",
    ] {
        c.json(
            format!("created without data.{k}"),
            &x.url,
            &envelope("wallet.delegation.created", remove(x.m.data(), k)),
            MALFORMED,
        );
    }
    for (name, data) in [
        ("created with data {}", json!({})),
        ("created with data null", json!(null)),
        ("created with data array", json!([x.m.data()])),
        ("created with data string", json!("data")),
    ] {
        c.json(
            name,
            &x.url,
            &envelope("wallet.delegation.created", data),
            MALFORMED,
        );
    }
    c.json(
        "created without data",
        &x.url,
        &remove(envelope("wallet.delegation.created", json!({})), "data"),
        MALFORMED,
    );
    for (name, data) in [
        ("revoked without walletId", json!({"chain": "EVM"})),
        ("revoked without chain", json!({"walletId": id()})),
        ("revoked with data null", json!(null)),
    ] {
        c.json(
            name,
            &x.url,
            &envelope("wallet.delegation.revoked", data),
            MALFORMED,
        );
    }
    for k in ["alg", "iv", "ct", "tag", "ek"] {
        c.json(
            format!("share envelope without {k}"),
            &x.url,
            &x.m.created(|d| {
                d["encryptedDelegatedShare"]
                    .as_object_mut()
                    .unwrap()
                    .remove(k);
            }),
            ENV_MALFORMED,
        );
    }
    for (name, v) in [
        ("share envelope a string", json!("eyJhbGciOi...")),
        ("share envelope null", json!(null)),
        ("share envelope an array", json!([])),
    ] {
        c.json(
            name,
            &x.url,
            &x.m.created(|d| d["encryptedDelegatedShare"] = v),
            ENV_MALFORMED,
        );
    }
}
