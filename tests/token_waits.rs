//! A sign request that finds every token session busy waits for one off the async
//! workers (`LocalEngine`: `try_unwrap`, else the blocking pool). On a runtime with one
//! thread — the server's and the client's — another connection is answered while the
//! sign request waits, and the sign request then succeeds. The only session is held by a
//! wrapping-key generation that the fault-injecting module slows to a known time
//! (`KW_SHIM_GENKEY_DELAY_MS`, tests/fixtures/pkcs11_fault_shim.c).
//!
//! Its own binary: `[pkcs11] environment` is set into this process when the module loads.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::api::{path, Client};
use common::daemon::keyward_ok;
use common::{Env, EnvOptions};
use hyper::StatusCode;
use keyward::appliance::Appliance;
use keyward::hsm::KeyKind;
use keyward::store::wallets::Chain;
use serde_json::json;

/// How long the generation holds the session: well inside the pool's 5 s checkout wait,
/// so the waiting sign request is served, not refused.
const HOLD_MS: &str = "3000";

#[tokio::test(flavor = "current_thread")]
async fn a_sign_request_waiting_for_a_session_does_not_stall_other_connections() {
    let env = Env::with(EnvOptions {
        // no OAEP probe through the shim (it fakes OAEP failures for tests/token_faults.rs)
        oaep: "raw",
        extra: common::grant("test-client", &["*"], &["evm.message"]),
        ..Default::default()
    });
    // the keys, made through SoftHSM2 itself
    keyward_ok(&env, &["init"]);
    env.edit_config("pool_size = 4", "pool_size = 1");
    env.use_fault_shim(&[("KW_SHIM_GENKEY_DELAY_MS", HOLD_MS)]);
    let app = Arc::new(Appliance::open(env.config()).expect("appliance opens"));
    let wallet = keyward::wallets::create(&app, Chain::Evm, None).unwrap();
    let addr = common::api::serve(app.clone(), keyward::api::Api::new(app.clone())).await;
    let client = Client::new(&env, addr, Some(&env.pki.client));

    // hold the only session
    let holding = Arc::new(AtomicBool::new(true));
    let (token, flag) = (app.token.clone(), holding.clone());
    let generation = std::thread::spawn(move || {
        let label = token.generate(KeyKind::Wrap);
        flag.store(false, Ordering::SeqCst);
        label
    });
    for _ in 0..500 {
        if app.token.pool_usage().1 == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        app.token.pool_usage(),
        (1, 1),
        "the generation holds the session"
    );

    // the sign request reaches the token and finds no session; the pause lets this one
    // thread run it that far (a worker blocked in the wait would not come back from it
    // before the session is free)
    let c = client.clone();
    let p = path(&wallet, "evm/message");
    let sign = tokio::spawn(async move { c.post(&p, json!({"message": "waits"})).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let who = client.get("/v1/whoami").await;
    let answered_while_held = holding.load(Ordering::SeqCst);
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert!(
        answered_while_held,
        "whoami was answered only after the session was free: the sign request's wait \
         blocked the runtime's thread"
    );
    assert!(
        !sign.is_finished(),
        "the sign request waits for the session"
    );

    // then the session comes free and the request signs
    let a = sign.await.unwrap();
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert!(a.body["signature"].is_string(), "{}", a.body);
    assert!(generation.join().unwrap().is_ok());
}
