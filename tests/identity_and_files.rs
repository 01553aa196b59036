//! Who a client is, and the files that decide it: typed identities through the real
//! listener (a CN cannot pose as a URI identity, several URI SANs are refused), and
//! client CAs and CRLs that others could change or that nobody refreshed, refused at
//! start and at reload.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::daemon::{keyward, keyward_ok, Daemon};
use common::https::mtls_request_as;
use common::Env;
use keyward::pki::Validity;

const CLIENTS: &str = r#"
[[clients]]
identity = "uri:spiffe://keyward.test/svc/payments"
wallets = ["*"]
operations = ["evm.message"]
"#;

fn env() -> Env {
    Env::with_extra(CLIENTS)
}

fn code(text: &str) -> String {
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or("").to_owned()
}

#[test]
fn a_cn_cannot_pose_as_a_uri_identity_and_ambiguous_certificates_are_refused() {
    let env = env();
    keyward_ok(&env, &["init"]);
    let wallet = keyward_ok(&env, &["wallets", "create", "--chain", "evm"]);
    let wallet = wallet.split_whitespace().next().unwrap().to_owned();
    let d = Daemon::start(&env);
    let path = format!("/v1/wallets/{wallet}/evm/message");
    let body = Some(r#"{"message":"who am I"}"#);
    let ca = &env.pki.ca;

    let holder = ca
        .client(
            "payments",
            Some("spiffe://keyward.test/svc/payments"),
            Validity::Current,
            50,
        )
        .unwrap();
    let (status, text) = mtls_request_as(&env, &holder, &d.api, "POST", &path, body).unwrap();
    assert_eq!(status, 200, "{text}");

    // same text as the URI, but in the CN: another identity, with no grant
    let poser = ca
        .client(
            "spiffe://keyward.test/svc/payments",
            None,
            Validity::Current,
            51,
        )
        .unwrap();
    let (status, text) = mtls_request_as(&env, &poser, &d.api, "GET", "/v1/whoami", None).unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(r#""identity":"cn:spiffe://keyward.test/svc/payments""#),
        "{text}"
    );
    let (status, text) = mtls_request_as(&env, &poser, &d.api, "POST", &path, body).unwrap();
    assert_eq!(
        (status, code(&text)),
        (403, "not_authorized".into()),
        "{text}"
    );

    // two URI SANs: which one would the grants mean? refused at the handshake
    let ambiguous = ca
        .client_with_uris(
            "payments",
            &[
                "spiffe://keyward.test/svc/payments",
                "spiffe://keyward.test/svc/other",
            ],
            Validity::Current,
            52,
        )
        .unwrap();
    let refused = mtls_request_as(&env, &ambiguous, &d.api, "POST", &path, body);
    // the client sees the handshake fail (an alert, a reset or a broken pipe, by timing);
    // the server's log names the reason, which is what this test pins
    assert!(refused.is_err(), "{refused:?}");
    d.expect_log("more than one URI SAN", Duration::from_secs(10));
}

#[test]
fn plain_identities_still_work_with_a_deprecation_warning() {
    let env = Env::with_extra(common::grant("test-client", &["*"], &["evm.message"]));
    keyward_ok(&env, &["init"]);
    let wallet = keyward_ok(&env, &["wallets", "create", "--chain", "evm"]);
    let wallet = wallet.split_whitespace().next().unwrap().to_owned();
    let d = Daemon::start(&env);
    assert!(
        d.log().contains("is read as \\\"cn:test-client\\\"")
            || d.log().contains("is read as \"cn:test-client\""),
        "{}",
        d.log()
    );
    let (status, text) = common::https::mtls_request(
        &env,
        &d.api,
        "POST",
        &format!("/v1/wallets/{wallet}/evm/message"),
        Some(r#"{"message":"x"}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
}

#[test]
fn a_group_writable_client_ca_is_refused_at_start_and_at_reload() {
    let env = env();
    keyward_ok(&env, &["init"]);
    let ca = env.path("ca.pem");
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o664)).unwrap();
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = keyward(&env, &["serve"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("ca.pem")
            && msg.contains("0664")
            && msg.contains("writable by group or others"),
        "{msg}"
    );

    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = Daemon::start(&env);
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o664)).unwrap();
    d.signal("HUP");
    d.expect_log("reload refused", Duration::from_secs(20));
    assert!(
        d.log().contains("writable by group or others"),
        "{}",
        d.log()
    );
}

#[test]
fn an_expired_crl_is_refused_unless_the_operator_accepts_it() {
    let env = env();
    keyward_ok(&env, &["init"]);
    keyward::pki::write_private(
        &env.path("crl.pem"),
        &env.pki.ca.expired_crl(&[99]).unwrap(),
    )
    .unwrap();
    env.edit_config(
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\ncrls = [\"crl.pem\"]",
    );
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = keyward(&env, &["serve"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(
        msg.contains("crl.pem") && msg.contains("CRL expired"),
        "{msg}"
    );

    env.edit_config(
        "crls = [\"crl.pem\"]",
        "crls = [\"crl.pem\"]\ncrl_expired = \"warn\"",
    );
    let d = Daemon::start(&env);
    assert!(
        d.log().contains("CRL is past its nextUpdate"),
        "{}",
        d.log()
    );
    let (_, metrics) = common::daemon::http_get(&d.admin, "/metrics");
    assert!(
        metrics.contains("keyward_tls_crl_age_seconds{crl=\"crl.pem\",face=\"api\"}"),
        "{metrics}"
    );
}
