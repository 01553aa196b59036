//! Bad deliveries: replay and ordering: what the store already knows decides.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let Ctx {
        h,
        m,
        url,
        ping,
        evm_wid,
        sol_wid,
        tomb_wid,
        seed_created,
        seed_sol,
        seed_revoke,
        seed_ping,
        generated,
        ..
    } = x;
    let mut c = Class::new("replay/ordering", cases);
    for (name, d) in [
        ("created again", &seed_created),
        ("Solana created again", &seed_sol),
        ("revoked again", &seed_revoke),
        ("ping again", &seed_ping),
    ] {
        c.post(name, url, d.body.clone(), d.headers(), (200, "duplicate"));
    }
    let conflict = (409, "event_id_conflict");
    let now = time::OffsetDateTime::now_utc();
    for (name, d) in [
        (
            "created's eventId as its revoke",
            h.sim.delivery(
                &seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": evm_wid, "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId for another wallet",
            h.sim.delivery(
                &seed_created.event_id,
                "wallet.delegation.revoked",
                json!({"walletId": id(), "chain": "EVM"}),
                now,
            ),
        ),
        (
            "created's eventId as a ping",
            h.sim
                .delivery(&seed_created.event_id, "ping", json!({}), now),
        ),
        (
            "revoke's eventId as a created",
            h.sim.delivery(
                &seed_revoke.event_id,
                "wallet.delegation.created",
                m.data(),
                now,
            ),
        ),
        (
            "ping's eventId as an unknown event",
            h.sim
                .delivery(&seed_ping.event_id, "user.created", json!({}), now),
        ),
    ] {
        c.post(name, url, d.body.clone(), d.headers(), conflict);
    }
    let local = (409, "wallet_conflict");
    c.json(
        "created for a generated wallet",
        url,
        &m.created(|d| d["walletId"] = generated.id.clone().into()),
        local,
    );
    c.json(
        "revoked for a generated wallet",
        url,
        &envelope(
            "wallet.delegation.revoked",
            json!({"walletId": generated.id, "chain": "EVM"}),
        ),
        local,
    );
    let mismatch = (403, "environment_mismatch");
    let from_b = |v: Value| v.tap(|v| v["environmentId"] = "env-b".into());
    c.json(
        "created for a wallet of another environment",
        url,
        &from_b(m.created(|d| d["walletId"] = evm_wid.clone().into())),
        mismatch,
    );
    c.json(
        "revoked for a wallet of another environment",
        url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": sol_wid, "chain": "SVM"}),
        )),
        mismatch,
    );
    c.json(
        "revoked for a tombstone of another environment",
        url,
        &from_b(envelope(
            "wallet.delegation.revoked",
            json!({"walletId": tomb_wid, "chain": "EVM"}),
        )),
        mismatch,
    );
    let not_allowed = (403, "environment_not_allowed");
    c.json(
        "environment not configured",
        url,
        &ping.clone().tap(|p| p["environmentId"] = "env-c".into()),
        not_allowed,
    );
    c.json(
        "no environment",
        url,
        &remove(ping.clone(), "environmentId"),
        not_allowed,
    );
    c.json(
        "environment in another case",
        url,
        &ping.clone().tap(|p| p["environmentId"] = "ENV-A".into()),
        not_allowed,
    );
}
