//! The whole appliance in one story, as an operator demos it: a delegation arrives by
//! webhook, the backend signs with it over mTLS, the revocation arrives, signing stops.

mod common;

use common::Env;
use keyward::simulator::{run_simulation, EventKind};
use keyward::store::wallets::Chain;

#[test]
fn delegate_sign_revoke_refuse() {
    let env = Env::with_extra(common::grant(
        "test-client",
        &["*"],
        &["evm.message", "solana.message"],
    ));
    drop(env.appliance()); // token keys
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt.block_on(keyward::server::start(env.config())).unwrap();
    let api = running.bound.api.to_string();
    let hook = format!(
        "https://127.0.0.1:{}/webhooks/dynamic",
        running.bound.webhook.port()
    );
    let config = env.config();

    for (chain, route) in [
        (Chain::Evm, "evm/message"),
        (Chain::Solana, "solana/message"),
    ] {
        let created = rt
            .block_on(run_simulation(
                &config,
                EventKind::Delegation,
                chain,
                None,
                Some(hook.clone()),
            ))
            .unwrap();
        assert_eq!(created.status, 200, "{}", created.response);
        let id = created.wallet_id.clone().unwrap();
        let path = format!("/v1/wallets/{id}/{route}");
        let (status, text) =
            common::https::mtls_request(&env, &api, "POST", &path, Some(r#"{"message":"pay 1"}"#))
                .unwrap();
        assert_eq!(status, 200, "{text}");
        let body: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        if chain == Chain::Evm {
            let sig: alloy_primitives::Signature =
                body["signature"].as_str().unwrap().parse().unwrap();
            let signer = sig.recover_address_from_msg(b"pay 1").unwrap();
            assert_eq!(format!("{signer:#x}"), created.address.clone().unwrap());
        } else {
            use ed25519_dalek::Verifier;
            let key =
                keyward::chains::solana::parse_pubkey(created.address.as_deref().unwrap()).unwrap();
            let sig = bs58::decode(body["signature"].as_str().unwrap())
                .into_vec()
                .unwrap();
            ed25519_dalek::VerifyingKey::from_bytes(&key)
                .unwrap()
                .verify(
                    b"pay 1",
                    &ed25519_dalek::Signature::from_slice(&sig).unwrap(),
                )
                .expect("independent Ed25519 verification");
        }

        let revoked = rt
            .block_on(run_simulation(
                &config,
                EventKind::Revoke,
                chain,
                Some(id.clone()),
                Some(hook.clone()),
            ))
            .unwrap();
        assert_eq!(revoked.status, 200, "{}", revoked.response);
        let (status, text) =
            common::https::mtls_request(&env, &api, "POST", &path, Some(r#"{"message":"pay 2"}"#))
                .unwrap();
        assert_eq!(status, 410, "{text}");
        assert!(text.contains("wallet_revoked"), "{text}");
    }
    assert!(running
        .app
        .store
        .read(keyward::store::audit::verify)
        .unwrap()
        .is_ok());
    rt.block_on(running.shutdown());
}
