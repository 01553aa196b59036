//! Bad deliveries: JSON shape: the envelope and `data`.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let Ctx {
        m,
        url,
        ping,
        ping_text,
        ..
    } = x;
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
        c.signed(name, url, body.to_vec(), MALFORMED);
    }
    c.signed(
        "two envelopes",
        url,
        format!("{ping_text}{ping_text}").into_bytes(),
        MALFORMED,
    );
    c.signed(
        "eventId twice",
        url,
        ping_text
            .replacen('{', &format!("{{\"eventId\":\"{}\",", id()), 1)
            .into_bytes(),
        MALFORMED,
    );
    for k in ["eventId", "eventName", "timestamp"] {
        c.json(format!("no {k}"), url, &remove(ping.clone(), k), MALFORMED);
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
            url,
            &envelope("wallet.delegation.created", remove(m.data(), k)),
            MALFORMED,
        );
    }
    for (name, data) in [
        ("created with data {}", json!({})),
        ("created with data null", json!(null)),
        ("created with data array", json!([m.data()])),
        ("created with data string", json!("data")),
    ] {
        c.json(
            name,
            url,
            &envelope("wallet.delegation.created", data),
            MALFORMED,
        );
    }
    c.json(
        "created without data",
        url,
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
            url,
            &envelope("wallet.delegation.revoked", data),
            MALFORMED,
        );
    }
    for k in ["alg", "iv", "ct", "tag", "ek"] {
        c.json(
            format!("share envelope without {k}"),
            url,
            &m.created(|d| {
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
            url,
            &m.created(|d| d["encryptedDelegatedShare"] = v),
            ENV_MALFORMED,
        );
    }
}
