//! Bad deliveries: encodings: base64url, UTF-8, printable ids.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("encodings", cases);
    for (k, v) in [
        ("iv", "AAAA+AAAAAAAAAAA"),
        ("ct", "not*base64"),
        ("tag", "AAAA AAAAAAAAAAAAAAAAAA"),
        ("ek", "a.b.c"),
        ("iv", "AAAAAAAAAAAAAAAA="),
        ("ct", "A"),
    ] {
        c.json(
            format!("{k} {v:?}"),
            &x.url,
            &x.m.created(|d| d["encryptedDelegatedShare"][k] = v.into()),
            ENV_MALFORMED,
        );
    }
    let ping_bytes = serde_json::to_vec(&x.ping).unwrap();
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(&ping_bytes);
    c.signed("byte order mark", &x.url, bom, MALFORMED);
    // in `eventName`, a field keyward reads (an ignored field's bytes are not decoded)
    let mut latin1 = x.ping_text.clone().into_bytes();
    let at = latin1.windows(6).position(|w| w == b"\"ping\"").unwrap();
    latin1[at + 1] = 0xe9; // a lone Latin-1 byte inside a string
    c.signed("invalid UTF-8", &x.url, latin1, MALFORMED);
    c.signed(
        "lone surrogate escape",
        &x.url,
        x.ping_text
            .replacen("\"ping\"", "\"\\ud800\"", 1)
            .into_bytes(),
        MALFORMED,
    );
    for (k, v) in [
        ("environmentId", "env a"),
        ("messageId", "m\u{e9}ssage"),
        ("userId", "user\n1"),
        ("environmentId", "env-a\u{0}"),
        ("messageId", "\u{200b}"),
    ] {
        c.json(
            format!("{k} {v:?}"),
            &x.url,
            &x.ping.clone().tap(|p| p[k] = v.into()),
            MALFORMED,
        );
    }
}
