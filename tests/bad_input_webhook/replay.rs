//! Bad deliveries: replay and ordering: what the store already knows decides.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("replay/ordering", cases);
    for (name, d) in [
        ("created again", &x.seed_created),
        ("Solana created again", &x.seed_sol),
        ("revoked again", &x.seed_revoke),
        ("ping again", &x.seed_ping),
    ] {
        c.post(
            name,
            &x.url,
            d.body.clone(),
            d.headers(),
            (200, "duplicate"),
        );
    }
    let conflict = (409, "event_id_conflict");
    let now = time::OffsetDateTime::now_utc();
    for (name, d) in [
        (
            "created's eventId as its revoke",
            x.h.sim.delivery(
                &x.seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": &x.evm_wid, "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId for another wallet",
            x.h.sim.delivery(
                &x.seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": id(), "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId as a ping",
            x.h.sim
                .delivery(&x.seed_created.event_id, "ping", json!({}), now),
        ),
        (
            "revoke's eventId as a created",
            x.h.sim.delivery(
                &x.seed_revoke.event_id,
                "wallet.delegation.created",
                x.m.data(),
                now,
            ),
        ),
        (
            "ping's eventId as an unknown event",
            x.h.sim
                .delivery(&x.seed_ping.event_id, "user.created", json!({}), now),
        ),
    ] {
        c.post(name, &x.url, d.body.clone(), d.headers(), conflict);
    }
    let local = (409, "wallet_conflict");
    c.json(
        "created for a generated wallet",
        &x.url,
        &x.m.created(|d| d["walletId"] = x.generated.id.clone().into()),
        local,
    );
    c.json(
        "revoked for a generated wallet",
        &x.url,
        &envelope(
            "wallet.delegation.revoked",
            json!({"walletId": x.generated.id, "chain": "EVM"}),
        ),
        local,
    );
    // an address another active wallet holds: refused in the transaction that would store
    // it, whatever holds it and whatever the delivery carries
    let mpc_share = x.m.enc(
        br#"{"keyShareId":"ks","secretShare":"{\"x\":\"mpc\"}"}"#,
        &Enc::default(),
    );
    for (name, chain, address) in [
        (
            "created (mpc share) claiming a generated wallet's address",
            "EVM",
            x.generated.address.clone().unwrap(),
        ),
        (
            "created (mpc share) claiming a delegated wallet's address",
            "EVM",
            x.seed_created.address.clone().unwrap(),
        ),
        (
            "created claiming a delegated wallet's address in capitals",
            "EVM",
            x.seed_created
                .address
                .clone()
                .unwrap()
                .to_uppercase()
                .replace("0X", "0x"),
        ),
        (
            "created (mpc share) claiming a delegated Solana wallet's address",
            "SVM",
            x.seed_sol.address.clone().unwrap(),
        ),
    ] {
        c.json(
            name,
            &x.url,
            &x.m.created(|d| {
                d["chain"] = chain.into();
                d["publicKey"] = address.into();
                d["encryptedDelegatedShare"] = mpc_share.clone();
            }),
            local,
        );
    }
    let mismatch = (403, "environment_mismatch");
    let from_b = |v: Value| v.tap(|v| v["environmentId"] = "env-b".into());
    c.json(
        "created for a wallet of another environment",
        &x.url,
        &from_b(x.m.created(|d| d["walletId"] = x.evm_wid.clone().into())),
        mismatch,
    );
    c.json(
        "revoked for a wallet of another environment",
        &x.url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": &x.sol_wid, "chain": "SVM"}),
        )),
        mismatch,
    );
    c.json(
        "revoked for a tombstone of another environment",
        &x.url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": &x.tomb_wid, "chain": "EVM"}),
        )),
        mismatch,
    );
    let not_allowed = (403, "environment_not_allowed");
    c.json(
        "environment not configured",
        &x.url,
        &x.ping.clone().tap(|p| p["environmentId"] = "env-c".into()),
        not_allowed,
    );
    c.json(
        "no environment",
        &x.url,
        &remove(x.ping.clone(), "environmentId"),
        not_allowed,
    );
    c.json(
        "environment in another case",
        &x.url,
        &x.ping.clone().tap(|p| p["environmentId"] = "ENV-A".into()),
        not_allowed,
    );
}
