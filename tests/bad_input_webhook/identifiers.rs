//! Bad deliveries: identifiers: event and wallet ids, chains, addresses.

use super::*;

pub fn cases(x: &Ctx, cases: &mut Vec<Case>) {
    let mut c = Class::new("identifiers", cases);
    for wid in [
        "../../etc/passwd",
        "..",
        ".",
        "a b",
        "",
        "w/1",
        "wallet\u{e9}",
        "w".repeat(129).as_str(),
    ] {
        c.json(
            format!("created walletId {wid:.20?}"),
            &x.url,
            &x.m.created(|d| d["walletId"] = wid.into()),
            MALFORMED,
        );
        c.json(
            format!("revoked walletId {wid:.20?}"),
            &x.url,
            &envelope(
                "wallet.delegation.revoked",
                json!({"walletId": wid, "chain": "SVM"}),
            ),
            MALFORMED,
        );
    }
    for eid in ["../evil", "e/1", ".", "...", "e 1", "e\u{e9}", ""] {
        c.json(
            format!("eventId {eid:?}"),
            &x.url,
            &x.ping.clone().tap(|p| p["eventId"] = eid.into()),
            MALFORMED,
        );
    }
    let unsupported = (422, "chain_unsupported");
    for chain in ["BTC", "", "ETH", "EVM ", "SOLANA-DEVNET"] {
        c.json(
            format!("created chain {chain:?}"),
            &x.url,
            &x.m.created(|d| d["chain"] = chain.into()),
            unsupported,
        );
    }
    c.json(
        "revoked chain BTC",
        &x.url,
        &envelope(
            "wallet.delegation.revoked",
            json!({"walletId": id(), "chain": "BTC"}),
        ),
        unsupported,
    );
    let pk = (422, "public_key_invalid");
    let (_, sol_address) = wallet_key::generate(Chain::Solana);
    for (name, chain, key) in [
        ("EVM, short", "EVM", "0x1234".to_string()),
        ("EVM, empty", "EVM", String::new()),
        ("EVM, a Solana address", "EVM", sol_address.clone()),
        ("EVM, not hex", "EVM", format!("0x{}", "zz".repeat(20))),
        ("Solana, an EVM address", "SVM", x.m.address.clone()),
        ("Solana, not base58", "SVM", "0OIl".repeat(11)),
        (
            "Solana, 31 bytes",
            "SOL",
            bs58::encode([1u8; 31]).into_string(),
        ),
    ] {
        c.json(
            format!("publicKey {name}"),
            &x.url,
            &x.m.created(|d| {
                d["chain"] = chain.into();
                d["publicKey"] = key.clone().into();
            }),
            pk,
        );
    }
}
