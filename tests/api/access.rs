//! Who may connect and what they see: the mTLS handshake, the route table, listing by
//! grant, custody checks that fail closed, and wallet import rules.

use hyper::StatusCode;
use keyward::custody::{self, Binding, Purpose, SecretBytes};
use keyward::pki::Validity;
use keyward::store::audit;
use keyward::store::wallets::{Chain, Engine, Source, Status, Wallet};
use keyward::wallet_key;
use serde_json::json;

use super::*;
use crate::common::api::{path, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refused_without_a_valid_client_certificate() {
    let s = start().await;
    let ca = &s.env.pki.ca;
    let expired = ca
        .client("test-client", None, Validity::Expired, 50)
        .unwrap();
    let future = ca
        .client("test-client", None, Validity::NotYetValid, 51)
        .unwrap();
    let foreign = s
        .env
        .pki
        .other_ca
        .client("test-client", None, Validity::Current, 52)
        .unwrap();
    // the alert the server sends names the reason (rustls: RFC 8446 alert per error)
    for (name, cert, alert) in [
        ("no certificate", None, "CertificateRequired"),
        ("expired", Some(&expired), "CertificateExpired"),
        ("not yet valid", Some(&future), "CertificateExpired"),
        ("other CA", Some(&foreign), "UnknownCA"),
    ] {
        let c = Client::new(&s.env, s.addr, cert);
        let e = c.refusal().await;
        assert!(e.contains(alert), "{name}: {e}");
    }
    // the same server answers a valid certificate
    let c = s.client();
    let a = c.get("/v1/whoami").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["identity"], "cn:test-client");
    // OpenAPI is served and names every route
    let doc = c.get("/v1/openapi.json").await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    for r in keyward::api::routes::ROUTES {
        let m = r.method.as_str().to_ascii_lowercase();
        assert!(
            doc.body["paths"][r.template][&m].is_object(),
            "{}",
            r.template
        );
    }
    // and the router serves every route the table names: a wrong method is 405, not 404
    for r in keyward::api::routes::ROUTES {
        let p = r
            .template
            .replace("{walletId}", "nope")
            .replace("{chainId}", "1");
        let other = if r.method == hyper::Method::GET {
            "DELETE"
        } else {
            "GET"
        };
        let a = c.send(other, &p, None, Vec::new()).await.unwrap();
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{p}");
        assert_eq!(a.header("allow"), Some(r.method.as_str()));
    }
    let a = c.get("/v1/nothing").await;
    assert_eq!(
        (a.status, a.body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
}

/// What a client sees is what its grants allow; the bad-input corpus
/// (`tests/bad_input_api.rs`) has every refusal code, this the listing rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_shows_only_granted_wallets() {
    let s = start().await;
    let c = s.client();
    let evm = keyward::wallets::create(&s.app, Chain::Evm, Some("hot")).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    // hash-client's selector `label:hot` matches it, but hash-client holds no Solana
    // operation: it neither lists nor finds it
    let sol_hot = keyward::wallets::create(&s.app, Chain::Solana, Some("hot")).unwrap();

    let stranger = s.client_as("stranger", None, 60);
    let a = stranger.get("/v1/wallets").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::FORBIDDEN, "not_authorized")
    );

    let hc = s.client_as("hash-client", None, 61);
    let list = hc.get("/v1/wallets").await;
    let ids: Vec<&str> = list.body["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![evm.id.as_str()]);
    // a wallet the client may not see (no selector matches it; a selector matches but no
    // operation of its chain is granted) is answered as one that does not exist: same
    // status, code and message, so the route tells nothing about which ids exist
    let unknown = "0b7e6f5e-3c1d-4a8b-9f2e-1d2c3b4a5f60";
    let answer = |a: &crate::common::api::Answer, id: &str| {
        (
            a.status,
            a.code().to_owned(),
            a.body["error"]["message"]
                .as_str()
                .unwrap()
                .replace(id, "ID"),
        )
    };
    let none = answer(&hc.get(&format!("/v1/wallets/{unknown}")).await, unknown);
    assert_eq!(
        none,
        (
            StatusCode::NOT_FOUND,
            "wallet_not_found".to_owned(),
            "no wallet with id ID that client cn:hash-client may see".to_owned()
        )
    );
    for hidden in [&sol.id, &sol_hot.id] {
        let a = hc.get(&format!("/v1/wallets/{hidden}")).await;
        assert_eq!(answer(&a, hidden), none, "{hidden}");
    }
    let a = hc.get(&format!("/v1/wallets/{}", evm.id)).await;
    assert_eq!(
        (a.status, a.body["operations"].clone()),
        (StatusCode::OK, json!(["evm.hash", "evm.message"]))
    );
    let one = c.get(&format!("/v1/wallets/{}", sol.id)).await;
    assert_eq!(one.body["address"], sol.address.clone().unwrap());
    let a = c.get("/v1/wallets/unknown-id").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "wallet_not_found")
    );
}

/// Key material that does not match its row is never used: 500 `custody_mismatch`,
/// audited as an error, nothing returned.
/// Listing pages by wallet id and never carries key material: every wallet the client
/// may see appears exactly once across the pages, in id order, and the last page says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_by_id_without_key_material() {
    let s = start().await;
    let c = s.client();
    let mut created: Vec<String> = (0..25)
        .map(|i| {
            let chain = if i % 2 == 0 {
                Chain::Evm
            } else {
                Chain::Solana
            };
            keyward::wallets::create(&s.app, chain, None).unwrap().id
        })
        .collect();
    created.sort();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &after {
            Some(a) => format!("/v1/wallets?limit=7&after={a}"),
            None => "/v1/wallets?limit=7".to_owned(),
        };
        let page = c.get(&q).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let text = page.body.to_string();
        assert!(
            !text.contains("wrapped") && !text.contains("publicKey"),
            "{text}"
        );
        let ids: Vec<String> = page.body["wallets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.len() <= 7);
        seen.extend(ids);
        pages += 1;
        match page.body["next"].as_str() {
            Some(n) => after = Some(n.to_owned()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 4);
    // a bad cursor or limit is refused, not guessed at
    for q in ["limit=0", "limit=1001", "limit=x", "after=../x", "page=2"] {
        let a = c.get(&format!("/v1/wallets?{q}")).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{q}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custody_mismatch_fails_closed() {
    let s = start().await;
    let c = s.client();
    let evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();

    // (1) a row whose address is not its key's
    let (_, other_address) = wallet_key::generate(Chain::Evm);
    let liar = Wallet {
        address: Some(other_address),
        ..evm.clone()
    };
    s.put(liar);
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "custody_mismatch")
    );
    assert!(a.body.get("signature").is_none());
    s.assert_audited(&a.body["auditId"], "error", "custody_mismatch");
    s.put(evm.clone());
    // (2) a blob moved to another wallet's row does not open there
    let victim = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    s.put(Wallet {
        wrapped_share: evm.wrapped_share.clone(),
        ..victim.clone()
    });
    let a = c
        .post(&path(&victim, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::INTERNAL_SERVER_ERROR, "custody_mismatch")
    );
    assert!(a.body.get("signature").is_none());
    // and the original still signs
    let a = c
        .post(&path(&evm, "evm/message"), json!({ "message": "hi" }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    // after all of that, the chain is intact
    let n = s.app.store.read(audit::verify).unwrap().unwrap();
    assert_eq!(n, 5, "two creations, three sign requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_operations_wrap_at_once_and_refuse_duplicates() {
    let s = start().await;
    let w = s.import(Chain::Evm, EIP155_KEY, Some("imported"));
    assert_eq!(
        (w.source, w.engine, w.status),
        (Source::Imported, Engine::Local, Status::Active)
    );
    let again = keyward::wallets::import(
        &s.app,
        Chain::Evm,
        wallet_key::parse_secret_hex(EIP155_KEY).unwrap(),
        None,
    );
    assert!(matches!(
        again,
        Err(keyward::wallets::WalletError::Duplicate { .. })
    ));
    // zero is no secp256k1 scalar: refused as a key, before anything is wrapped
    let bad = keyward::wallets::import(&s.app, Chain::Evm, SecretBytes::new(vec![0u8; 32]), None);
    assert!(
        matches!(
            bad,
            Err(keyward::wallets::WalletError::Key(
                keyward::wallet_key::KeyError::InvalidKey("EVM")
            ))
        ),
        "{bad:?}"
    );
    let listed = keyward::wallets::list(&s.app).unwrap();
    assert_eq!(listed.len(), 1);
    let got = keyward::wallets::get(&s.app, &w.id).unwrap().unwrap();
    // the stored blob opens only for this wallet and yields the imported key
    let secret = custody::unwrap(
        &s.app.token,
        &Binding {
            wallet_id: &got.id,
            chain: "evm",
            purpose: Purpose::Share,
        },
        got.wrapped_share.as_deref().unwrap(),
    )
    .unwrap();
    assert_eq!(hex::encode(secret.expose()), EIP155_KEY);
    let records: Vec<audit::AuditRecord> = {
        let mut v = Vec::new();
        s.app
            .store
            .read(|c| {
                audit::export(c, None, |r| {
                    v.push(r.clone());
                    Ok(())
                })
            })
            .unwrap();
        v
    };
    assert_eq!(records.len(), 1);
    assert_eq!(
        (records[0].actor.as_str(), records[0].action.as_str()),
        ("operator", "wallet.import")
    );
    assert!(!records[0].detail.as_deref().unwrap().contains(EIP155_KEY));
}
