//! No secret reaches a log line, even at TRACE, and every request's lines carry its id.
//! (A process-wide log capture, hence its own test binary.)

mod common;

use common::Env;
use keyward::store::wallets::Chain;

#[test]
fn signing_at_trace_level_logs_no_secret_and_tags_requests() {
    let capture = common::logs::capture();

    let env = Env::with_extra(common::grant(
        "test-client",
        &["*"],
        &["evm.message", "solana.message"],
    ));
    let evm_key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    let sol_key = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    let (evm, sol) = {
        let app = env.appliance();
        let e = keyward::wallets::import(
            &app,
            Chain::Evm,
            keyward::wallet_key::parse_secret_hex(evm_key).unwrap(),
            None,
        )
        .unwrap();
        let s = keyward::wallets::import(
            &app,
            Chain::Solana,
            keyward::wallet_key::parse_secret_hex(sol_key).unwrap(),
            None,
        )
        .unwrap();
        (e.id, s.id)
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let running = rt.block_on(keyward::server::start(env.config())).unwrap();
    let api = running.bound.api.to_string();
    for (id, route, body, want) in [
        (&evm, "evm/message", r#"{"message":"hello"}"#, 200),
        (&sol, "solana/message", r#"{"message":"hello"}"#, 200),
        (&evm, "evm/message", r#"{"message":0}"#, 400),
    ] {
        let (status, text) = common::https::mtls_request(
            &env,
            &api,
            "POST",
            &format!("/v1/wallets/{id}/{route}"),
            Some(body),
        )
        .unwrap();
        assert_eq!(status, want, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("x-request-id: "),
            "{text}"
        );
    }
    rt.block_on(running.shutdown());

    let logs = capture.text();
    assert!(
        logs.contains("request{id="),
        "request spans missing:\n{logs}"
    );
    let secrets: Vec<Vec<u8>> = vec![
        evm_key.as_bytes().to_vec(),
        hex::decode(evm_key).unwrap(),
        sol_key.as_bytes().to_vec(),
        hex::decode(sol_key).unwrap(),
        common::USER_PIN.as_bytes().to_vec(),
        common::HMAC_SECRET.as_bytes().to_vec(),
    ];
    for s in &secrets {
        assert!(
            !common::contains(logs.as_bytes(), s),
            "a secret reached the logs"
        );
    }
    let files = common::all_bytes_under(env.dir.path());
    for s in &secrets[..4] {
        assert!(
            !common::contains(&files, s),
            "a key reached the database files unwrapped"
        );
    }
}
