//! Bad deliveries: crypto fields: the HMAC header, then the envelope's cryptography.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("crypto fields", cases);
    let json_ct = ("content-type".to_string(), "application/json".to_string());
    let mac = hmac_header(&x.good.body, common::HMAC_SECRET);
    let hex_mac = mac.strip_prefix("sha256=").unwrap().to_owned();
    let missing = (401, "signature_missing");
    for (name, value) in [
        ("md5 scheme", "md5=abc".to_string()),
        ("empty", String::new()),
        ("no hex", "sha256=".into()),
        ("63 hex digits", format!("sha256={}", &hex_mac[..63])),
        ("65 hex digits", format!("sha256={hex_mac}0")),
        ("not hex", format!("sha256={}", "zz".repeat(32))),
        ("upper-case scheme", format!("SHA256={hex_mac}")),
        ("no scheme", hex_mac.clone()),
        ("two MACs", format!("sha256={hex_mac},sha256={hex_mac}")),
        (
            "base64 MAC",
            format!("sha256={}", b64(&hex::decode(&hex_mac).unwrap())),
        ),
    ] {
        c.post(
            format!("signature {name}"),
            &x.url,
            x.good.body.clone(),
            vec![json_ct.clone(), ("x-dynamic-signature-256".into(), value)],
            missing,
        );
    }
    c.post(
        "no signature header",
        &x.url,
        x.good.body.clone(),
        vec![json_ct.clone()],
        missing,
    );
    let invalid = (401, "signature_invalid");
    let mut tampered = x.good.body.clone();
    let n = tampered.len();
    tampered[n - 3] ^= 1;
    let mut newline = x.good.body.clone();
    newline.push(b'\n');
    for (name, body, header) in [
        (
            "wrong secret",
            x.good.body.clone(),
            hmac_header(&x.good.body, "dyn_wrong_secret"),
        ),
        ("tampered body", tampered, mac.clone()),
        ("body with a newline added", newline, mac.clone()),
        (
            "MAC of the empty body",
            x.good.body.clone(),
            hmac_header(b"", common::HMAC_SECRET),
        ),
        (
            "another delivery's MAC",
            x.good.body.clone(),
            x.seed_ping.signature.clone(),
        ),
        (
            "secret with a trailing newline",
            x.good.body.clone(),
            hmac_header(&x.good.body, &format!("{}\n", common::HMAC_SECRET)),
        ),
    ] {
        c.post(
            name,
            &x.url,
            body,
            vec![json_ct.clone(), ("x-dynamic-signature-256".into(), header)],
            invalid,
        );
    }
    let foreign_pub = common::fixtures::foreign_rsa_public();
    let alg = (422, "envelope_alg_unsupported");
    for a in ["A256GCMKW", "none", "", "rsa-oaep-256", "RSA1_5", "dir"] {
        c.json(
            format!("alg {a:?}"),
            &x.url,
            &x.m.created(|d| {
                d["encryptedDelegatedShare"] = x.m.enc(
                    &x.m.share,
                    &Enc {
                        alg: a,
                        ..Default::default()
                    },
                )
            }),
            alg,
        );
    }
    c.json(
        "ek under another RSA key",
        &x.url,
        &x.m.created(|d| {
            d["encryptedDelegatedShare"] = encrypt(&foreign_pub, &x.m.share, &Enc::default())
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "api key ek under another RSA key",
        &x.url,
        &x.m.created(|d| {
            d["encryptedWalletApiKey"] = encrypt(&foreign_pub, b"dyn_api", &Enc::default())
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek random bytes",
        &x.url,
        &x.m.created(|d| d["encryptedDelegatedShare"]["ek"] = b64(&[0x5a; 384]).into()),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek of another envelope's length",
        &x.url,
        &x.m.created(|d| d["encryptedDelegatedShare"]["ek"] = b64(&[0x5a; 256]).into()),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "tag flipped",
        &x.url,
        &x.m.created(|d| {
            d["encryptedDelegatedShare"] = x.m.enc(
                &x.m.share,
                &Enc {
                    flip_tag: true,
                    ..Default::default()
                },
            )
        }),
        (422, "envelope_decrypt_failed"),
    );
    let share = x.m.enc(&x.m.share, &Enc::default());
    let mut ct = B64URL.decode(share["ct"].as_str().unwrap()).unwrap();
    ct[0] ^= 0x80;
    c.json(
        "ciphertext flipped",
        &x.url,
        &x.m.created(|d| {
            d["encryptedDelegatedShare"] = share.clone();
            d["encryptedDelegatedShare"]["ct"] = b64(&ct).into();
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "iv of another envelope",
        &x.url,
        &x.m.created(|d| {
            d["encryptedDelegatedShare"]["iv"] = x.m.enc(b"x", &Enc::default())["iv"].clone()
        }),
        (422, "envelope_decrypt_failed"),
    );
    c.json(
        "ek of the other field",
        &x.url,
        &x.m.created(|d| {
            d["encryptedDelegatedShare"]["ek"] = d["encryptedWalletApiKey"]["ek"].clone()
        }),
        (422, "envelope_decrypt_failed"),
    );
    for len in [0, 16, 31, 33, 64] {
        c.json(
            format!("content key of {len} bytes"),
            &x.url,
            &x.m.created(|d| {
                d["encryptedDelegatedShare"] = x.m.enc(
                    &x.m.share,
                    &Enc {
                        content_key_len: len,
                        ..Default::default()
                    },
                )
            }),
            (422, "envelope_decrypt_failed"),
        );
    }
    let (_, other_address) = wallet_key::generate(Chain::Evm);
    c.json(
        "share for another address",
        &x.url,
        &x.m.created(|d| d["publicKey"] = other_address.clone().into()),
        (422, "share_address_mismatch"),
    );
    for (name, api) in [("empty", &b""[..]), ("not UTF-8", &[0xff, 0xfe, 0x00][..])] {
        c.json(
            format!("api key {name}"),
            &x.url,
            &x.m.created(|d| d["encryptedWalletApiKey"] = x.m.enc(api, &Enc::default())),
            (422, "api_key_invalid"),
        );
    }
}
