//! No answer without its audit record, on both backends: a sign request whose commit
//! cannot happen answers 503 `store_unavailable` and carries no signature, and a webhook
//! delivery in the same state answers 503 and stores nothing. (A build that released the
//! signature when the commit failed would answer 200 here.)

mod common;

use common::daemon::{json_of, simulate, simulate_output, text, Daemon};
use common::https::mtls_request;
use common::{pg, Env};

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message"]
"#;

fn sign_once(env: &Env, d: &Daemon, wallet: &str) -> (u16, serde_json::Value) {
    let (status, t) = mtls_request(
        env,
        &d.api,
        "POST",
        &format!("/v1/wallets/{wallet}/evm/message"),
        Some(r#"{"message":"audit first"}"#),
    )
    .unwrap();
    (status, json_of(&t))
}

fn refused_while_blocked(env: &Env, d: &Daemon, wallet: &str) {
    let (status, body) = sign_once(env, d, wallet);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    assert!(body.get("signature").is_none(), "{body}");
    let out = simulate_output(env, d, "delegation", None);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains(" 503"), "{}", text(&out));
}

#[test]
fn sqlite_a_commit_that_cannot_happen_returns_no_signature() {
    let env = Env::with_extra(CLIENTS);
    let d = Daemon::start(&env);
    let wallet = simulate(&env, &d, "delegation", None);
    let db = env.path("keyward.db");
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    let (audit, wallets) = (
        count("SELECT COUNT(*) FROM audit"),
        count("SELECT COUNT(*) FROM wallets"),
    );
    // another process holds the write lock past the writer's busy timeout
    let blocker = rusqlite::Connection::open(&db).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    refused_while_blocked(&env, &d, &wallet);
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        count("SELECT COUNT(*) FROM wallets"),
        wallets,
        "the delivery stored nothing"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit"),
        audit,
        "nothing was audited"
    );
    assert_eq!(sign_once(&env, &d, &wallet).0, 200);
}

#[test]
fn postgres_a_commit_that_cannot_happen_returns_no_signature() {
    let env = Env::with_extra(CLIENTS);
    let db = pg::use_postgres(&env);
    let d = Daemon::start(&env);
    let wallet = simulate(&env, &d, "delegation", None);
    let cluster = pg::shared();
    let count = |sql: &str| -> i64 { cluster.sql(&db, sql).parse().unwrap() };
    let (audit, wallets) = (
        count("SELECT COUNT(*) FROM audit"),
        count("SELECT COUNT(*) FROM wallets"),
    );
    // another session holds the audit table past the statement timeout
    let holder = cluster.hold_table_lock(&db, "audit", 20);
    refused_while_blocked(&env, &d, &wallet);
    assert!(holder.join().unwrap().status.success());
    assert_eq!(
        count("SELECT COUNT(*) FROM wallets"),
        wallets,
        "the delivery stored nothing"
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM audit"),
        audit,
        "nothing was audited"
    );
    assert_eq!(sign_once(&env, &d, &wallet).0, 200);
}
