//! keyward on tokens that do not behave like SoftHSM2: the shim in front of SoftHSM2
//! (tests/fixtures/pkcs11_fault_shim.c) with the profiles of real HSMs, each running the
//! whole life of a wallet as an operator would: `init`, a delegation by webhook (decrypt,
//! wrap), signing, `keys rotate-rsa`, `keys rotate-wrapping` + `wallets rewrap`, a
//! revocation, and the audit chain.

mod common;

use std::time::Duration;

use common::daemon::{json_of, keyward, keyward_ok, sign, simulate, Daemon};
use common::https::mtls_request;
use common::Env;

fn new_env(pool_size: usize) -> Env {
    let env = Env::with_extra(common::grant("test-client", &["*"], &["evm.message"]));
    env.edit_config("pool_size = 4", &format!("pool_size = {pool_size}"));
    env
}

/// Signs for `wallet` and checks the signature recovers to the wallet's address.
fn signs_as_itself(env: &Env, d: &Daemon, wallet: &str) {
    let (status, text) = mtls_request(
        env,
        &d.api,
        "POST",
        &format!("/v1/wallets/{wallet}/evm/message"),
        Some(r#"{"message":"profile"}"#),
    )
    .unwrap();
    assert_eq!(status, 200, "{text}\n{}", d.log());
    let sig: alloy_primitives::Signature = json_of(&text)["signature"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, info) =
        mtls_request(env, &d.api, "GET", &format!("/v1/wallets/{wallet}"), None).unwrap();
    let address = json_of(&info)["address"].as_str().unwrap().to_owned();
    let signer = sig.recover_address_from_msg(b"profile").unwrap();
    assert_eq!(format!("{signer:#x}"), address);
}

/// The whole life of two wallets on the token the shim pretends to be.
fn whole_life(env: &Env) -> Daemon {
    let d = Daemon::start(env);
    let w1 = simulate(env, &d, "delegation", None);
    signs_as_itself(env, &d, &w1);

    keyward_ok(env, &["keys", "rotate-rsa"]);
    let w2 = simulate(env, &d, "delegation", None);
    signs_as_itself(env, &d, &w2);

    keyward_ok(env, &["keys", "rotate-wrapping"]);
    let out = keyward_ok(env, &["wallets", "rewrap"]);
    assert!(out.contains("rewrapped 2 wallet(s)"), "{out}");
    signs_as_itself(env, &d, &w1);
    signs_as_itself(env, &d, &w2);
    let created = keyward_ok(
        env,
        &["wallets", "create", "--chain", "evm", "--label", "hot"],
    );
    let created = created.split_whitespace().next().unwrap().to_owned();
    signs_as_itself(env, &d, &created);

    simulate(env, &d, "revoke", Some(&w1));
    assert_eq!(sign(env, &d, &w1), (410, "wallet_revoked".to_owned()));
    signs_as_itself(env, &d, &w2);
    assert!(keyward_ok(env, &["audit", "verify"]).contains("audit chain OK"));
    d
}

#[test]
fn fips_mode_token_generates_its_own_gcm_ivs_and_refuses_raw_rsa() {
    let env = new_env(4);
    env.use_fault_shim(&[("KW_SHIM_PROFILE", "fips")]);
    let d = whole_life(&env);
    // native OAEP was chosen: raw RSA is not there to fall back on
    let keys = keyward_ok(&env, &["keys", "list"]);
    assert!(keys.contains("RSA-OAEP mode: native"), "{keys}");
    assert!(
        keys.lines()
            .any(|l| l.contains("CKM_RSA_X_509") && l.trim_end().ends_with("no")),
        "{keys}"
    );
    drop(d);
}

#[test]
fn cloudhsm_style_token_with_failover() {
    let env = new_env(4);
    let failover = env.path("failover");
    env.use_fault_shim(&[
        ("KW_SHIM_PROFILE", "cloudhsm"),
        ("KW_SHIM_FAILOVER_FILE", failover.to_str().unwrap()),
    ]);
    let d = whole_life(&env);
    let w = simulate(&env, &d, "delegation", None);
    signs_as_itself(&env, &d, &w);
    // the HSM fails over: every session closed, every handle renumbered. The next
    // request finds the keys again on a fresh connection instead of failing.
    std::fs::write(&failover, b"").unwrap();
    signs_as_itself(&env, &d, &w);
    assert!(!failover.exists(), "the shim never saw the failover");
    d.expect_log("token connection re-established", Duration::from_secs(5));
    // the token refused a host IV (CloudHSM wants a zeroed buffer): `auto` moved to its IVs
    assert!(d.log().contains("it generates its own"), "{}", d.log());
    // no C_CopyObject on this token: the token key itself is used
    assert!(
        d.log().contains("does not copy keys to session objects"),
        "{}",
        d.log()
    );
    let w2 = simulate(&env, &d, "delegation", None);
    signs_as_itself(&env, &d, &w2);
}

#[test]
fn one_login_per_application_and_fewer_sessions_than_the_pool_asks() {
    // owner session + pool of 4 = 5 sessions wanted, 3 allowed
    let env = new_env(4);
    env.use_fault_shim(&[
        ("KW_SHIM_PROFILE", "one-login"),
        ("KW_SHIM_MAX_SESSIONS", "3"),
    ]);
    let d = whole_life(&env);
    assert!(
        d.log().contains("CKR_SESSION_COUNT"),
        "the smaller pool was not reported:\n{}",
        d.log()
    );
    let keys = keyward_ok(&env, &["keys", "list"]);
    assert!(keys.contains("sessions in the pool: 2"), "{keys}");
}

#[test]
fn slow_network_hsm() {
    let env = new_env(4);
    env.use_fault_shim(&[("KW_SHIM_PROFILE", "slow"), ("KW_SHIM_DELAY_US", "2000")]);
    whole_life(&env);
}

#[test]
fn a_token_that_hides_the_iv_it_used_stores_nothing() {
    let env = new_env(4);
    env.use_fault_shim(&[("KW_SHIM_PROFILE", "iv-not-reported")]);
    let d = Daemon::start(&env);
    let out = common::daemon::simulate_output(&env, &d, "delegation", None);
    let text = common::daemon::text(&out);
    // refused with a 5xx (the vendor redelivers), nothing stored
    assert!(
        text.contains(" 500") && text.contains("seal_check_failed"),
        "{text}"
    );
    d.expect_log("did not open to the same bytes", Duration::from_secs(5));
    let wallets = keyward_ok(&env, &["wallets", "list"]);
    assert!(!wallets.contains("active"), "{wallets}");
    // the operator's path refuses the same way
    let out = keyward(
        &env,
        &["wallets", "create", "--chain", "evm", "--label", "x"],
    );
    assert!(!out.status.success());
    assert!(
        common::daemon::text(&out).contains("did not open to the same plaintext"),
        "{}",
        common::daemon::text(&out)
    );
    let wallets = keyward_ok(&env, &["wallets", "list"]);
    assert!(!wallets.contains("active"), "{wallets}");
}

#[test]
fn start_names_what_the_token_lacks_and_the_setting_that_fixes_it() {
    // raw RSA configured on a token without it: one clear line at init and serve
    let env = new_env(4);
    env.use_fault_shim(&[("KW_SHIM_PROFILE", "fips")]);
    env.edit_config("rsa_oaep = \"auto\"", "rsa_oaep = \"raw\"");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    for cmd in [&["init"][..], &["serve"][..], &["keys", "list"][..]] {
        let out = keyward(&env, cmd);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {out:?}");
        let text = common::daemon::text(&out);
        assert!(
            text.contains("refuses raw RSA (CKM_RSA_X_509)")
                && text.contains("set pkcs11.rsa_oaep = \"native\" or \"auto\""),
            "{cmd:?}: {text}"
        );
    }

    // native OAEP-SHA256 configured on plain SoftHSM2, which refuses those parameters
    let env = new_env(4);
    keyward_ok(&env, &["init"]);
    env.edit_config("rsa_oaep = \"auto\"", "rsa_oaep = \"native\"");
    let out = keyward(&env, &["keys", "list"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        common::daemon::text(&out).contains("refuses RSA-OAEP with SHA-256 parameters"),
        "{}",
        common::daemon::text(&out)
    );
    env.edit_config("rsa_oaep = \"native\"", "rsa_oaep = \"auto\"");
    let keys = keyward_ok(&env, &["keys", "list"]);
    assert!(keys.contains("RSA-OAEP mode: raw"), "{keys}");
    for m in ["CKM_AES_GCM", "CKM_RSA_PKCS_OAEP", "CKM_RSA_X_509"] {
        assert!(
            keys.lines()
                .any(|l| l.contains(m) && l.trim_end().ends_with("yes")),
            "{m}: {keys}"
        );
    }
}

#[test]
fn a_slow_token_is_never_called_on_an_async_worker() {
    // 2 ms per operation: a network HSM. After a few unwraps the token is known to be
    // slow, and the non-blocking unwrap an async caller tries first declines, so the
    // call moves to the blocking pool (signer::local) instead of holding a worker.
    let env = new_env(4);
    env.use_fault_shim(&[("KW_SHIM_PROFILE", "slow"), ("KW_SHIM_DELAY_US", "2000")]);
    let app = env.appliance();
    let wallet = keyward::wallets::create(&app, keyward::store::wallets::Chain::Evm, None).unwrap();
    let binding = keyward::custody::Binding {
        wallet_id: &wallet.id,
        chain: "evm",
        purpose: keyward::custody::Purpose::Share,
    };
    let blob = wallet.wrapped_share.clone().unwrap();
    for _ in 0..8 {
        keyward::custody::unwrap(&app.token, &binding, &blob).unwrap();
    }
    assert!(!app.token.answers_inline());
    assert!(
        keyward::custody::try_unwrap(&app.token, &binding, &blob).is_none(),
        "a 2 ms unwrap was offered to run inline"
    );
}
