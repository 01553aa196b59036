//! The token loses every session and its login (what an HSM restart or a network HSM
//! failover does to a client): operations report the token unavailable instead of
//! failing forever, and the pool reconnects, logs in and re-copies the wrapping key by
//! itself, without a restart of keyward.
//!
//! SoftHSM2 cannot stage a sustained outage (it serves session objects from memory
//! whatever happens to its token directory, and p11-kit 0.24's RPC, a real remote token
//! that can be killed, does not carry AES-GCM parameters): the shim in front of it does
//! (tests/fixtures/pkcs11_fault_shim.c, `KW_SHIM_OUTAGE_FILE`).

mod common;

use common::Env;
use keyward::custody::{self, Binding, Purpose};

#[test]
fn lost_login_and_sessions_recover_without_restart() {
    let env = Env::new();
    let app = env.appliance();
    let wallet = keyward::wallets::create(&app, keyward::store::wallets::Chain::Evm, None).unwrap();
    let b = Binding {
        wallet_id: &wallet.id,
        chain: "evm",
        purpose: Purpose::Share,
    };
    let blob = wallet.wrapped_share.clone().unwrap();
    assert!(custody::unwrap(&app.token, &b, &blob).is_ok());

    // Another session of this process logs the application out: every session of the
    // token loses its login, and private session objects become unusable.
    let ctx = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let slot = common::token_slot(&ctx, &env.token_label);
    let session = ctx.open_rw_session(slot).unwrap();
    session.logout().unwrap();
    drop(session);

    // the next call pays for it: its session fails, the retry on a fresh connection logs
    // in again and re-copies the wrapping key, and the call succeeds
    let before = app.token.reconnects();
    let secret = custody::unwrap(&app.token, &b, &blob).expect("recovered within the call");
    assert_eq!(secret.len(), 32);
    assert_eq!(
        app.token.reconnects(),
        before + 1,
        "the logout did not disturb the token: the test proves nothing"
    );
    assert!(app.token.ping().is_ok());
}

fn logout_everyone(env: &Env) {
    let ctx = cryptoki::context::Pkcs11::new(common::MODULE).unwrap();
    let slot = common::token_slot(&ctx, &env.token_label);
    ctx.open_rw_session(slot).unwrap().logout().unwrap();
}

#[test]
fn sign_requests_get_503_during_the_outage_and_200_after() {
    let env = Env::with(common::EnvOptions {
        extra: "[[clients]]\nidentity = \"test-client\"\nwallets = [\"*\"]\noperations = [\"evm.message\"]\n".into(),
        ..Default::default()
    });
    let outage = env.path("outage");
    env.use_fault_shim(&[("KW_SHIM_OUTAGE_FILE", outage.to_str().unwrap())]);
    let id = {
        let app = env.appliance();
        keyward::wallets::create(&app, keyward::store::wallets::Chain::Evm, None)
            .unwrap()
            .id
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt.block_on(keyward::server::start(env.config())).unwrap();
    let api = running.bound.api.to_string();
    let path = format!("/v1/wallets/{id}/evm/message");
    let sign = || {
        common::https::mtls_request(&env, &api, "POST", &path, Some(r#"{"message":"hi"}"#)).unwrap()
    };
    assert_eq!(sign().0, 200);

    // a logout behind keyward's back is absorbed within the request
    logout_everyone(&env);
    assert_eq!(sign().0, 200);

    // a token that stays away: every request is a 503 with its audit record
    std::fs::write(&outage, b"").unwrap();
    for _ in 0..3 {
        let (status, text) = sign();
        assert_eq!(status, 503, "{text}");
        assert!(
            text.contains("hsm_unavailable") && text.contains("auditId"),
            "{text}"
        );
    }
    std::fs::remove_file(&outage).unwrap();
    let mut last = (0, String::new());
    for _ in 0..50 {
        last = sign();
        if last.0 == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(last.0, 200, "service did not come back: {}", last.1);
    let audit = running
        .app
        .store
        .read(keyward::store::audit::verify)
        .unwrap();
    assert!(audit.is_ok());
    rt.block_on(running.shutdown());
}
