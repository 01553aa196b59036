//! The operator CLI as a user runs it: the real binary against a real token and file.

mod common;

use common::daemon::{keyward, keyward_ok, text};
use common::Env;
use keyward::store::StoreError;

#[test]
fn config_errors_exit_2_and_name_file_and_key() {
    let env = Env::new();
    env.edit_config("pool_size = 4", "pool_size = 4\npool_sise = 5");
    let out = keyward(&env, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains(&env.config_path.display().to_string()) && t.contains("pool_sise"),
        "{t}"
    );
}

#[test]
fn config_check_redacts_and_checks_secret_modes() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // `serve` refuses a config file others can read, and so does `config check`
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = keyward(&env, &["config", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "refusing to start: {} has mode 0644",
            env.config_path.display()
        )),
        "{}",
        text(&out)
    );
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = keyward(&env, &["config", "check"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("<redacted>")
            && !t.contains(common::USER_PIN)
            && !t.contains(common::HMAC_SECRET),
        "{t}"
    );
    // the OK says what it could not know without the token
    assert!(
        t.contains(": OK: ")
            && t.contains(": not checked (only the token or the database can tell): ")
            && t.contains("the PIN is accepted"),
        "{t}"
    );
    std::fs::set_permissions(env.path("pin"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = keyward(&env, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("0644"), "{}", text(&out));
}

#[test]
fn init_is_idempotent_and_keys_commands_show_no_secrets() {
    let env = Env::new();
    let first = keyward(&env, &["init"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("created: keyward-rsa-1, keyward-wrap-1"),
        "{}",
        text(&first)
    );
    let second = keyward(&env, &["init"]);
    assert!(text(&second).contains("nothing to do"), "{}", text(&second));

    let public = keyward(&env, &["keys", "public"]);
    let pem = String::from_utf8_lossy(&public.stdout).to_string();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    use rsa::pkcs8::DecodePublicKey;
    rsa::RsaPublicKey::from_public_key_pem(&pem).expect("SPKI PEM parses");
    assert!(String::from_utf8_lossy(&public.stderr).contains("sha256:"));

    let list = text(&keyward(&env, &["keys", "list"]));
    assert!(
        list.contains("keyward-rsa-1") && list.contains("CKA_EXTRACTABLE=false"),
        "{list}"
    );
    assert!(!list.contains(common::USER_PIN));
}

#[test]
fn rotation_and_retire_rules() {
    let env = Env::new();
    assert!(keyward(&env, &["init"]).status.success());
    let only = keyward(&env, &["keys", "retire", "keyward-rsa-1"]);
    assert_eq!(only.status.code(), Some(1));
    assert!(
        text(&only).contains("only webhook RSA key"),
        "{}",
        text(&only)
    );
    assert!(keyward(&env, &["keys", "rotate-rsa"]).status.success());
    let ok = keyward(&env, &["keys", "retire", "keyward-rsa-1"]);
    assert!(ok.status.success(), "{}", text(&ok));
    let current = keyward(&env, &["keys", "retire", "keyward-wrap-1"]);
    assert!(
        text(&current).contains("current wrapping key"),
        "{}",
        text(&current)
    );
}

/// `keys retire` of a wrapping key races with a running service that wrapped under it
/// just before: the wrap is stored before the retire (which then sees it and refuses:
/// `bad_input_cli`), or after, which this pins: the store refuses material under a
/// retired version, so nothing lands that no key can open.
#[test]
fn a_wrap_under_a_key_retired_meanwhile_is_refused_not_stored() {
    use keyward::custody::{self, Binding, Purpose};
    use keyward::store::wallets::{self, Chain};
    let env = Env::new();
    let app = env.appliance();
    let template = keyward::wallets::create(&app, Chain::Evm, None).unwrap();
    let id = uuid::Uuid::new_v4().to_string();
    let binding = Binding {
        wallet_id: &id,
        chain: "evm",
        purpose: Purpose::Share,
    };
    // wrapped by the service under version 1, not stored yet
    let share = custody::wrap(&app.token, &binding, 1, &[7; 32]).unwrap();
    // the operator rotates, moves the one wallet, and retires version 1
    keyward_ok(&env, &["keys", "rotate-wrapping"]);
    keyward_ok(&env, &["wallets", "rewrap"]);
    let out = keyward_ok(&env, &["keys", "retire", "keyward-wrap-1"]);
    assert!(out.contains("destroyed"), "{out}");
    // now the service's transaction
    let row = wallets::Wallet {
        id: id.clone(),
        key_version: Some(1),
        wrapped_share: Some(share),
        ..template
    };
    let stored = app
        .store
        .write_blocking(move |ctx| wallets::upsert(ctx.conn, &row));
    assert!(
        matches!(stored, Err(StoreError::KeyRetired(1))),
        "{stored:?}"
    );
    let id2 = id.clone();
    let row = app.store.read(move |c| wallets::get(c, &id2)).unwrap();
    assert!(row.is_none(), "{row:?}");
    // material under the current version still stores
    let w = keyward::wallets::create(&app, Chain::Evm, None).unwrap();
    assert_eq!(w.key_version, Some(2));
}

/// A retire whose destroy the token refuses leaves the key in place, so it must not leave
/// the version marked retired either (nothing wrapped under it could be stored).
#[test]
fn a_retire_the_token_refuses_to_destroy_leaves_no_mark() {
    let env = common::Env::with(common::EnvOptions {
        oaep: "raw",
        ..Default::default()
    });
    keyward_ok(&env, &["init"]);
    keyward_ok(&env, &["keys", "rotate-wrapping"]);
    env.use_fault_shim(&[("KW_SHIM_FAIL_DESTROY", "1")]);
    let out = keyward(&env, &["keys", "retire", "keyward-wrap-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let marks = common::store::count(
        &env.path("keyward.db"),
        "SELECT COUNT(*) FROM appliance_state WHERE key LIKE 'wrap.retired.%'",
    );
    assert_eq!(marks, 0, "{}", text(&out));
    let list = keyward_ok(&env, &["keys", "list"]);
    assert!(list.contains("keyward-wrap-1"), "{list}");
}

#[test]
fn lock_unlock_backup_and_audit_verify() {
    let env = Env::new();
    assert!(keyward(&env, &["init"]).status.success());
    assert!(keyward(&env, &["lock", "--reason", "incident 42"])
        .status
        .success());
    assert!(keyward(&env, &["unlock"]).status.success());
    let v = keyward(&env, &["audit", "verify"]);
    assert!(
        text(&v).contains("audit chain OK: 2 records"),
        "{}",
        text(&v)
    );
    let export = keyward(
        &env,
        &["audit", "export", "--since", "2000-01-01T00:00:00Z"],
    );
    let lines: Vec<_> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["action"], "appliance.lock");
    let dest = env.path("backup.db");
    let b = keyward(&env, &["backup", "--to", dest.to_str().unwrap()]);
    assert!(b.status.success(), "{}", text(&b));
    let copy = keyward::store::Store::open(&dest, 1).unwrap();
    assert_eq!(copy.read(keyward::store::audit::verify).unwrap(), Ok(2));
    let again = keyward(&env, &["backup", "--to", dest.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "refuses to overwrite");
    assert!(text(&again).contains("exists"), "{}", text(&again));
}
