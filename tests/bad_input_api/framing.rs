//! Bad-input cases: framing: routes, methods, media types, sizes, JSON syntax, the query.

use super::*;

pub fn cases(w: &Wallets, r: &Routes, cases: &mut Vec<Case>) {
    let mut c = Class::new("framing", cases);
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
        (Method::GET, r.msg.as_str()),
        (Method::PUT, r.tx.as_str()),
        (Method::DELETE, r.smsg.as_str()),
        (Method::PATCH, r.stx.as_str()),
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
        c.raw(name, Who::Test, Method::POST, &r.msg, ct, &body[..], media);
    }
    c.bytes(
        "body over 256 KiB",
        &r.msg,
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
        c.bytes(name, &r.msg, b, JSON_);
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
            &format!("{}?{query}", r.msg),
            json!({"message": "hi"}),
            q,
        );
    }
}
