//! Bad deliveries: types: the right field, the wrong JSON type.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("types", cases);
    for (k, v) in [
        ("eventId", json!(17)),
        ("eventName", json!(1)),
        ("timestamp", json!(1_700_000_000)),
        ("messageId", json!(5)),
        ("environmentId", json!(["env-a"])),
        ("userId", json!({"id": 1})),
        ("eventId", json!(null)),
        ("timestamp", json!(true)),
    ] {
        c.json(
            format!("{k} as {v}"),
            &x.url,
            &x.ping.clone().tap(|p| p[k] = v.clone()),
            MALFORMED,
        );
    }
    for (k, v) in [
        ("chain", json!(1)),
        ("walletId", json!(7)),
        ("publicKey", json!(["0x12"])),
        ("userId", json!(3)),
    ] {
        c.json(
            format!("data.{k} as {v}"),
            &x.url,
            &x.m.created(|d| d[k] = v.clone()),
            MALFORMED,
        );
    }
    for (k, v) in [
        ("alg", json!(256)),
        ("iv", json!(12)),
        ("ct", json!(null)),
        ("tag", json!([1, 2])),
        ("ek", json!({"n": 1})),
        ("kid", json!(1)),
    ] {
        c.json(
            format!("share envelope {k} as {v}"),
            &x.url,
            &x.m.created(|d| d["encryptedDelegatedShare"][k] = v.clone()),
            ENV_MALFORMED,
        );
    }
}
