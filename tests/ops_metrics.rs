//! The metrics an operator alerts on, read from a live daemon's `/metrics` after the
//! events that move them: a lock from another process, a policy refusal, a refused
//! webhook delivery, a delegation (key versions in use).

mod common;

use common::daemon::{keyward_ok, sign, simulate, Daemon};
use common::https::{mtls_request, mtls_request_as};
use common::metrics::{families, scrape, value};
use common::Env;
use keyward::pki::Validity;

/// The policy refuses every message with its default rule; `tight` is a configured rate
/// limit that never fills here (its id is in the bounded label set).
const CONFIG: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message"]

[policy]
default = "deny"

[[policy.rate_limit]]
id = "tight"
scope = "client"
requests = 1000
per = "1m"
"#;

#[test]
fn every_operator_metric_family_is_exported_and_moves_with_what_it_measures() {
    let env = Env::with_extra(CONFIG);
    // serial 99 is revoked
    std::fs::write(env.path("crl.pem"), env.pki.ca.crl(&[99]).unwrap()).unwrap();
    env.edit_config(
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\ncrls = [\"crl.pem\"]",
    );
    let d = Daemon::start(&env);
    let wallet = simulate(&env, &d, "delegation", None);

    let text = scrape(&d);
    for family in [
        "keyward_locked",
        "keyward_token_up",
        "keyward_store_up",
        "keyward_tls_cert_expiry_seconds",
        "keyward_build_info",
        "keyward_start_time_seconds",
        "keyward_token_keys",
        "keyward_key_version_current",
        "keyward_wallets_by_key_version",
        "keyward_store_commit_seconds",
        "keyward_audit_batch_jobs",
    ] {
        assert!(families(&text).contains(family), "no {family} in\n{text}");
    }
    assert_eq!(value(&text, "keyward_locked", ""), Some(0.0), "{text}");
    assert_eq!(value(&text, "keyward_token_up", ""), Some(1.0), "{text}");
    assert_eq!(value(&text, "keyward_store_up", ""), Some(1.0), "{text}");
    // the seconds left on the certificate the harness issued (scrape and this read are
    // moments apart: a minute's slack)
    let server = value(
        &text,
        "keyward_tls_cert_expiry_seconds",
        r#"face="api",which="server""#,
    )
    .unwrap_or_else(|| panic!("no api server expiry in\n{text}"));
    let left = seconds_left(&env.path("server.pem"));
    assert!((server - left).abs() < 60.0, "{server} vs {left}");
    for labels in [
        r#"face="api",which="client_ca""#,
        r#"face="webhook",which="server""#,
    ] {
        let left = value(&text, "keyward_tls_cert_expiry_seconds", labels)
            .unwrap_or_else(|| panic!("no {labels} in\n{text}"));
        assert!(left > 0.0, "{labels}: {left}");
    }
    let build = format!(
        r#"features="",git="unknown",version="{}""#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(
        value(&text, "keyward_build_info", &build),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "keyward_token_keys", r#"kind="rsa",version="1""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "keyward_key_version_current", r#"kind="wrap""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "keyward_wallets_by_key_version", r#"version="1""#),
        Some(1.0),
        "{text}"
    );

    // a policy refusal: counted by operation and code, and by the rule that refused
    assert_eq!(sign(&env, &d, &wallet), (403, "policy_denied".to_owned()));
    // a delivery without a signature: refused, counted by code
    let (status, answer) = mtls_request(
        &env,
        &d.webhook,
        "POST",
        "/webhooks/dynamic",
        Some(r#"{"eventName":"ping"}"#),
    )
    .unwrap();
    assert_eq!(status, 401, "{answer}");
    let code = common::daemon::json_of(&answer)["error"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    // locked by another process: the next scrape says so
    keyward_ok(&env, &["lock", "--reason", "metrics test"]);

    let text = scrape(&d);
    assert_eq!(value(&text, "keyward_locked", ""), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "keyward_sign_refusals_total",
            r#"code="policy_denied",operation="evm.message""#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "keyward_policy_refusals_total", r#"rule="default""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "keyward_webhook_refusals_total",
            &format!(r#"code="{code}""#)
        ),
        Some(1.0),
        "{text}"
    );
    // the commit latency histogram has observed the delegation, refusal and probes
    let commits = value(&text, "keyward_store_commit_seconds_count", "").unwrap_or(0.0);
    assert!(commits >= 2.0, "{text}");

    keyward_ok(&env, &["unlock"]);
    assert_eq!(value(&scrape(&d), "keyward_locked", ""), Some(0.0));

    // refused handshakes, by why: a revoked certificate, another CA's, an expired one
    // (what the client sees is the TLS library's business; the count is the operator's)
    let revoked = env
        .pki
        .ca
        .client("test-client", None, Validity::Current, 99)
        .unwrap();
    let foreign = env
        .pki
        .other_ca
        .client("test-client", None, Validity::Current, 5)
        .unwrap();
    let expired = env
        .pki
        .ca
        .client("test-client", None, Validity::Expired, 6)
        .unwrap();
    for (cert, reason) in [
        (&revoked, "revoked"),
        (&foreign, "unknown_issuer"),
        (&expired, "expired"),
    ] {
        let _ = mtls_request_as(&env, cert, &d.api, "GET", "/v1/whoami", None);
        let labels = format!(r#"face="api",reason="{reason}""#);
        // counted by the server's connection task once the handshake has failed: polled
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while value(&scrape(&d), "keyward_tls_handshake_failures_total", &labels) != Some(1.0) {
            assert!(
                std::time::Instant::now() < deadline,
                "no {labels} in\n{}",
                scrape(&d)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    let text = scrape(&d);
    for labels in [
        r#"face="api",reason="no_certificate""#,
        r#"face="api",reason="protocol""#,
    ] {
        assert_eq!(
            value(&text, "keyward_tls_handshake_failures_total", labels),
            None,
            "{text}"
        );
    }
    assert!(
        text.contains(r#"keyward_tls_crl_expiry_seconds{crl="crl.pem",face="api"}"#),
        "{text}"
    );
}

/// A rule id outside the config and the built-in ids is never a label: the set an
/// operator's Prometheus stores is the config's.
#[test]
fn an_unknown_rule_id_is_counted_as_other() {
    let policy = keyward::config::Config::load(&Env::with_extra(CONFIG).config_path)
        .unwrap()
        .compiled_policy;
    assert_eq!(keyward::metrics::bounded_rule("tight", &policy), "tight");
    assert_eq!(
        keyward::metrics::bounded_rule("default", &policy),
        "default"
    );
    assert_eq!(
        keyward::metrics::bounded_rule(keyward::policy::DIGEST_MESSAGE, &policy),
        keyward::policy::DIGEST_MESSAGE
    );
    assert_eq!(
        keyward::metrics::bounded_rule("wallet:0xabc / client:x", &policy),
        "other"
    );
}

/// Seconds from now until the `notAfter` of the PEM certificate at `path`.
fn seconds_left(path: &std::path::Path) -> f64 {
    use x509_parser::prelude::*;
    let pem = std::fs::read(path).unwrap();
    let (_, pem) = parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    (cert.validity().not_after.timestamp() - now) as f64
}
