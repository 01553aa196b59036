//! Operator commands against a live appliance: a real `keyward serve` process, a real
//! token, a real SQLite file, and every mutating CLI command run as a second process
//! while it serves. After each, a sign request, a `created` and a `revoked` webhook
//! answer as documented, and the audit chain verifies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::daemon::{json_of, keyward, keyward_ok, sign, simulate, Daemon};
use common::https::mtls_request;
use common::Env;

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "solana.message"]
"#;

fn env() -> Env {
    Env::with_extra(CLIENTS)
}

fn wallet_status(env: &Env, d: &Daemon, wallet: &str) -> String {
    let (status, text) =
        mtls_request(env, &d.api, "GET", &format!("/v1/wallets/{wallet}"), None).unwrap();
    assert_eq!(status, 200, "{text}");
    json_of(&text)["status"].as_str().unwrap().to_owned()
}

/// What every command must leave working: signing an existing wallet, a new delegation
/// (which then signs) and a revocation (after which the wallet answers 410).
fn still_whole(env: &Env, d: &Daemon, existing: &str, after: &str) {
    assert_eq!(
        sign(env, d, existing),
        (200, String::new()),
        "after {after}"
    );
    let fresh = simulate(env, d, "delegation", None);
    assert_eq!(sign(env, d, &fresh), (200, String::new()), "after {after}");
    simulate(env, d, "revoke", Some(&fresh));
    assert_eq!(
        sign(env, d, &fresh),
        (410, "wallet_revoked".to_owned()),
        "after {after}"
    );
    let verified = keyward_ok(env, &["audit", "verify"]);
    assert!(
        verified.contains("audit chain OK"),
        "after {after}: {verified}"
    );
}

fn first_word(out: &str) -> String {
    out.split_whitespace().next().unwrap().to_owned()
}

#[test]
fn lock_drill_on_a_live_appliance_keeps_revocations_flowing() {
    let env = env();
    let d = Daemon::start(&env);
    let w1 = simulate(&env, &d, "delegation", None);
    assert_eq!(sign(&env, &d, &w1), (200, String::new()));

    let out = keyward_ok(&env, &["lock", "--reason", "incident drill"]);
    assert!(out.contains("locked"), "{out}");
    assert_eq!(sign(&env, &d, &w1), (423, "appliance_locked".to_owned()));

    // webhooks keep being processed while locked: no revocation is lost
    let w2 = simulate(&env, &d, "delegation", None);
    simulate(&env, &d, "revoke", Some(&w1));
    assert_eq!(wallet_status(&env, &d, &w1), "revoked");
    assert_eq!(sign(&env, &d, &w2), (423, "appliance_locked".to_owned()));

    keyward_ok(&env, &["unlock"]);
    assert_eq!(sign(&env, &d, &w1), (410, "wallet_revoked".to_owned()));
    assert_eq!(sign(&env, &d, &w2), (200, String::new()));
    assert!(keyward_ok(&env, &["audit", "verify"]).contains("audit chain OK"));
    assert!(
        !d.log().contains("UNIQUE constraint"),
        "the service lost track of the chain:\n{}",
        d.log()
    );
}

#[test]
fn every_mutating_command_is_safe_against_a_running_service() {
    let env = env();
    let d = Daemon::start(&env);
    let w = simulate(&env, &d, "delegation", None);
    still_whole(&env, &d, &w, "start");

    keyward_ok(&env, &["lock", "--reason", "drill"]);
    keyward_ok(&env, &["unlock"]);
    still_whole(&env, &d, &w, "lock + unlock");

    let created = first_word(&keyward_ok(
        &env,
        &["wallets", "create", "--chain", "evm", "--label", "hot"],
    ));
    assert_eq!(sign(&env, &d, &created), (200, String::new()));
    still_whole(&env, &d, &w, "wallets create");

    let key_file = env.path("import.key");
    keyward::pki::write_private(
        &key_file,
        "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\n",
    )
    .unwrap();
    let imported = first_word(&keyward_ok(
        &env,
        &[
            "wallets",
            "import",
            "--chain",
            "evm",
            "--key-file",
            key_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(sign(&env, &d, &imported), (200, String::new()));
    still_whole(&env, &d, &w, "wallets import");

    // a new RSA key: deliveries encrypted to it decrypt without a restart
    keyward_ok(&env, &["keys", "rotate-rsa"]);
    still_whole(&env, &d, &w, "keys rotate-rsa");

    // a new wrapping key, every wallet moved to it by another process, the old key
    // destroyed: the service opens the moved wallets and wraps new ones under the new key
    keyward_ok(&env, &["keys", "rotate-wrapping"]);
    still_whole(&env, &d, &w, "keys rotate-wrapping");
    let out = keyward_ok(&env, &["wallets", "rewrap"]);
    assert!(out.contains("rewrapped"), "{out}");
    still_whole(&env, &d, &w, "wallets rewrap");
    for wallet in [&w, &created, &imported] {
        assert_eq!(sign(&env, &d, wallet), (200, String::new()), "{wallet}");
    }
    let out = keyward_ok(&env, &["keys", "retire", "keyward-wrap-1"]);
    assert!(out.contains("destroyed"), "{out}");
    still_whole(&env, &d, &w, "keys retire (wrapping)");
    let out = keyward_ok(&env, &["keys", "retire", "keyward-rsa-1"]);
    assert!(out.contains("destroyed"), "{out}");
    still_whole(&env, &d, &w, "keys retire (RSA)");
    let rows = common::daemon::keyward_ok(&env, &["wallets", "list"]);
    assert!(
        !rows
            .lines()
            .any(|l| l.contains("active") && l.contains(" v1 ")),
        "a wallet was wrapped under the retired key:\n{rows}"
    );

    let backup = env.path("backup.db");
    keyward_ok(&env, &["backup", "--to", backup.to_str().unwrap()]);
    let copy = rusqlite::Connection::open(&backup).unwrap();
    let n: i64 = copy
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert!(n > 10, "the backup holds the audit chain ({n} records)");
    still_whole(&env, &d, &w, "backup");

    let export = keyward_ok(&env, &["audit", "export"]);
    assert!(export.lines().count() as i64 >= n, "{export}");
    still_whole(&env, &d, &w, "audit export");
    assert!(!d.log().contains("UNIQUE constraint"), "{}", d.log());
}

#[test]
fn a_second_serve_on_the_same_database_refuses_and_names_the_first() {
    let env = env();
    let d = Daemon::start(&env);
    let second = keyward(&env, &["serve"]);
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let msg = String::from_utf8_lossy(&second.stderr);
    assert!(
        msg.contains("already serving") && msg.contains(&format!("pid {}", d.pid())),
        "{msg}"
    );
    // the first one is untouched
    let w = simulate(&env, &d, "delegation", None);
    assert_eq!(sign(&env, &d, &w), (200, String::new()));
}

#[test]
fn readiness_reports_a_commit_that_cannot_happen() {
    let env = env();
    let d = Daemon::start(&env);
    let ready = |d: &Daemon| {
        let (s, _) = common::daemon::http_get(&d.admin, "/readyz");
        s
    };
    assert_eq!(ready(&d), 200);
    // another process holds the database's write lock (as a stuck writer or a full disk
    // would stop commits): readiness must say so instead of answering 200
    let db = env.path("keyward.db");
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (status, body) = common::daemon::http_get(&d.admin, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("cannot commit") || body.contains("did not commit"),
        "{body}"
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(ready(&d), 200);
}

/// An engine that signs correctly but only when the test lets it: a request held in
/// flight (as a slow token or a 30 s MPC round would hold it).
struct Gate {
    key: k256::ecdsa::SigningKey,
    entered: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    release: Arc<tokio::sync::Semaphore>,
}

impl keyward::signer::Engine for Gate {
    fn name(&self) -> &'static str {
        "gate"
    }

    fn sign_evm<'a>(
        &'a self,
        _wallet: &'a keyward::store::wallets::Wallet,
        request: &'a keyward::signer::EvmRequest,
    ) -> keyward::signer::EngineFuture<'a, keyward::chains::evm::RecoverableSig> {
        Box::pin(async move {
            if let Some(tx) = self.entered.lock().unwrap().as_ref() {
                let _ = tx.send(());
            }
            // one permit lets exactly one call through: forgotten, not returned on drop
            self.release.acquire().await.expect("gate open").forget();
            Ok(keyward::chains::evm::sign_digest(
                &self.key,
                &request.digest,
            ))
        })
    }

    fn sign_solana<'a>(
        &'a self,
        _wallet: &'a keyward::store::wallets::Wallet,
        _kind: keyward::signer::SolanaKind,
        _message: &'a [u8],
    ) -> keyward::signer::EngineFuture<'a, [u8; 64]> {
        Box::pin(async {
            Err(keyward::signer::SignError::EngineUnavailable(
                "evm only".into(),
            ))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_or_revocation_committed_while_signing_withholds_the_signature() {
    use keyward::store::wallets::{self as rows, Chain, Engine as EngineKind};
    let env = env();
    std::fs::set_permissions(
        &env.config_path,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let app = Arc::new(env.appliance());
    // an `mpc` wallet whose engine is the gate; the key is the gate's, so the signature
    // it makes verifies and would be released
    let key = k256::ecdsa::SigningKey::random(&mut rand::rngs::OsRng);
    let address = keyward::chains::evm::address_of(key.verifying_key()).to_checksum(None);
    let template = keyward::wallets::create(&app, Chain::Evm, None).unwrap();
    let wallet = rows::Wallet {
        engine: EngineKind::Mpc,
        address: Some(address),
        ..template
    };
    let row = wallet.clone();
    app.store
        .write_blocking(move |ctx| rows::upsert(ctx.conn, &row))
        .unwrap();
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = Arc::new(Gate {
        key,
        entered: std::sync::Mutex::new(Some(entered_tx)),
        release: release.clone(),
    });
    let signer = keyward::signer::Signer::new(app.token.clone()).with_mpc_engine(gate);
    let addr = common::api::serve(
        app.clone(),
        keyward::api::Api::with_signer(app.clone(), signer),
    )
    .await
    .to_string();

    let request = |env: Arc<Env>| {
        let path = format!("/v1/wallets/{}/evm/message", wallet.id);
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            mtls_request(
                &env,
                &addr,
                "POST",
                &path,
                Some(r#"{"message":"in flight"}"#),
            )
            .unwrap()
        })
    };
    let env = Arc::new(env);
    let audit_of = |text: &str| -> keyward::store::AuditRecord {
        let id = json_of(text)["auditId"].as_str().unwrap().to_owned();
        app.store
            .read(move |c| keyward::store::audit::get(c, &id))
            .unwrap()
            .expect("audited")
    };

    // 1. the lock: committed by `keyward lock` (another process) while the engine holds
    let pending = request(env.clone());
    entered
        .recv_timeout(Duration::from_secs(30))
        .expect("request reached the engine");
    keyward_ok(&env, &["lock", "--reason", "mid-flight"]);
    release.add_permits(1);
    let (status, text) = pending.await.unwrap();
    assert_eq!(status, 423, "{text}");
    assert_eq!(json_of(&text)["error"]["code"], "appliance_locked");
    assert!(!text.contains("signature\""), "{text}");
    let rec = audit_of(&text);
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "appliance_locked")
    );
    keyward_ok(&env, &["unlock"]);

    // 2. unlocked, the same request goes through (the gate is not the refusal)
    let pending = request(env.clone());
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    release.add_permits(1);
    let (status, text) = pending.await.unwrap();
    assert_eq!(status, 200, "{text}");

    // 3. the revocation: committed while the engine holds
    let pending = request(env.clone());
    entered.recv_timeout(Duration::from_secs(30)).unwrap();
    let id = wallet.id.clone();
    app.store
        .write_blocking(move |ctx| {
            rows::mark_revoked(ctx.conn, &id, 1, &keyward::store::now_rfc3339()).map(|_| ())
        })
        .unwrap();
    release.add_permits(1);
    let (status, text) = pending.await.unwrap();
    assert_eq!(status, 410, "{text}");
    assert_eq!(json_of(&text)["error"]["code"], "wallet_revoked");
    let rec = audit_of(&text);
    assert_eq!(
        (rec.decision.as_str(), rec.result.as_str()),
        ("denied", "wallet_revoked")
    );
    assert!(keyward_ok(&env, &["audit", "verify"]).contains("audit chain OK"));
}

#[test]
fn rewrap_of_a_thousand_wallets_while_the_service_signs_under_load() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let env = Arc::new(env());
    let ids: Vec<String> = {
        let app = env.appliance();
        (0..1000)
            .map(|_| {
                keyward::wallets::create(&app, keyward::store::wallets::Chain::Evm, None)
                    .unwrap()
                    .id
            })
            .collect()
    };
    let d = Arc::new(Daemon::start(&env));
    keyward_ok(&env, &["keys", "rotate-wrapping"]);

    let stop = Arc::new(AtomicBool::new(false));
    let signed = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..2)
        .map(|n| {
            let (env, d, stop, signed, ids) = (
                env.clone(),
                d.clone(),
                stop.clone(),
                signed.clone(),
                ids.clone(),
            );
            std::thread::spawn(move || {
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    let w = &ids[(i * 37) % ids.len()];
                    assert_eq!(sign(&env, &d, w), (200, String::new()), "wallet {w}");
                    signed.fetch_add(1, Ordering::Relaxed);
                    i += 2;
                }
            })
        })
        .collect();
    let out = keyward_ok(&env, &["wallets", "rewrap"]);
    assert!(out.contains("rewrapped 1000 wallet(s)"), "{out}");
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.join()
            .expect("every request during the rewrap was signed");
    }
    assert!(signed.load(Ordering::Relaxed) > 0);
    assert!(keyward_ok(&env, &["audit", "verify"]).contains("audit chain OK"));
    for w in &ids {
        assert_eq!(
            sign(&env, &d, w),
            (200, String::new()),
            "wallet {w} after the rewrap"
        );
    }
}
