//! A token that tells a bad RSA-OAEP padding as `CKR_GENERAL_ERROR` (some real HSMs do),
//! in front of a real SoftHSM2 token: a fault-injecting PKCS#11 module
//! (tests/fixtures/pkcs11_fault_shim.c, built by `Env::use_fault_shim`) that
//! forwards everything else to SoftHSM2. Through a real daemon: the delivery is refused
//! as undecryptable (422), every RSA key is tried, and nothing reads it as an outage.

mod common;

use common::daemon::{http_get, keyward, keyward_ok, Daemon};
use common::Env;

#[test]
fn an_oaep_failure_told_as_a_general_error_is_422_and_every_key_is_tried() {
    let env = Env::new();
    // keys made through SoftHSM2 itself (in `auto` mode: SoftHSM2 refuses the `native`
    // probe), two RSA keys so that "every key" means two; then `native` on the shim
    keyward_ok(&env, &["init"]);
    keyward_ok(&env, &["keys", "rotate-rsa"]);
    env.edit_config("rsa_oaep = \"auto\"", "rsa_oaep = \"native\"");
    let log = env.path("shim.log");
    env.use_fault_shim(&[]);
    // the shim logs for the service only (not for `simulate`, which opens the token too)
    let d = Daemon::start_with_env(&env, &[("KW_SHIM_LOG", log.to_str().unwrap())]);

    // The named key is tried first, then every other key, unless the ciphertext is out
    // of that key's range (c >= n: refused before the token, see `Token::rsa_decrypt`).
    // For two moduli of one length that happens to fewer than half of all envelopes, so
    // a few fresh deliveries (bounded) see both keys tried; a decrypt path that stopped
    // at the first key never would.
    // what the start-up probes of `native` (init's and serve's) tried is not counted
    let mut tried: Vec<String> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let first_delivery = tried.len();
    let mut both = None;
    for _ in 0..20 {
        let out = keyward(
            &env,
            &[
                "simulate",
                "delegation",
                "--to",
                &d.webhook_url(),
                "--ca",
                env.path("ca.pem").to_str().unwrap(),
            ],
        );
        let answer = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{answer}");
        assert!(
            answer.contains("answered 422") && answer.contains("envelope_decrypt_failed"),
            "{answer}"
        );
        let all = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<String> = all.lines().map(str::to_owned).collect();
        let this = &lines[tried.len()..];
        assert!(matches!(this.len(), 1 | 2), "{all}");
        // the key the envelope names comes first, every time
        assert_eq!(this[0], lines[first_delivery], "{all}");
        if this.len() == 2 {
            assert_ne!(this[0], this[1], "{all}");
            both = Some(this.to_vec());
        }
        tried = lines;
        if both.is_some() {
            break;
        }
    }
    assert!(both.is_some(), "the second key was never tried: {tried:?}");
    // and nothing took it for an outage: no reconnect, still ready
    assert!(!d.log().contains("token unavailable"), "{}", d.log());
    let (status, body) = http_get(&d.admin, "/readyz");
    assert_eq!(status, 200, "{body}");
}
