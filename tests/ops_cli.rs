//! `keyward audit search` and `keyward status` against a real store written by a live
//! daemon (delegations, signatures, a lock, refusals). The search's answers are checked
//! against `audit export` filtered here by the documented rule, per filter.

mod common;

use common::daemon::{keyward, keyward_ok, sign, simulate, text, Daemon};
use common::Env;
use serde_json::Value;

const CLIENTS: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message"]
"#;

/// Which exported records a filter must answer.
type Keep<'a> = Box<dyn Fn(&Value) -> bool + 'a>;

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn search(env: &Env, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["audit", "search"];
    all.extend_from_slice(args);
    lines(&keyward_ok(env, &all))
}

/// A store with two wallets, signatures allowed and refused, and a lock and unlock.
fn populated() -> (Env, Daemon, String, String) {
    let env = Env::with_extra(CLIENTS);
    let d = Daemon::start(&env);
    let w1 = simulate(&env, &d, "delegation", None);
    let w2 = simulate(&env, &d, "delegation", None);
    assert_eq!(sign(&env, &d, &w1), (200, String::new()));
    keyward_ok(&env, &["lock", "--reason", "search test"]);
    assert_eq!(sign(&env, &d, &w1), (423, "appliance_locked".to_owned()));
    assert_eq!(sign(&env, &d, &w2), (423, "appliance_locked".to_owned()));
    keyward_ok(&env, &["unlock"]);
    assert_eq!(sign(&env, &d, &w2), (200, String::new()));
    (env, d, w1, w2)
}

#[test]
fn audit_search_answers_exactly_the_records_each_filter_names() {
    let (env, _d, w1, _w2) = populated();
    let all = lines(&keyward_ok(&env, &["audit", "export"]));
    assert_eq!(
        search(&env, &[]),
        all,
        "no filter: the whole chain, in order"
    );
    let actor = all
        .iter()
        .find(|r| r["action"] == "sign")
        .map(|r| r["actor"].as_str().unwrap().to_owned())
        .expect("a sign record");
    let middle = all[all.len() / 2]["at"].as_str().unwrap()[..19].to_owned();
    let cases: Vec<(Vec<String>, Keep<'_>)> = vec![
        (
            vec!["--wallet".into(), w1.clone()],
            Box::new(|r: &Value| r["walletId"] == w1.as_str()),
        ),
        (
            vec!["--client".into(), actor.clone()],
            Box::new(|r: &Value| r["actor"] == actor.as_str()),
        ),
        (
            vec!["--decision".into(), "denied".into()],
            Box::new(|r: &Value| r["decision"] == "denied"),
        ),
        (
            vec!["--operation".into(), "appliance.lock".into()],
            Box::new(|r: &Value| r["action"] == "appliance.lock"),
        ),
        (
            vec!["--operation".into(), "evm.message".into()],
            Box::new(|r: &Value| r["operation"] == "evm.message"),
        ),
        (
            vec!["--since".into(), format!("{middle}Z")],
            Box::new(|r: &Value| r["at"].as_str().unwrap()[..19] >= *middle.as_str()),
        ),
        (
            vec!["--until".into(), format!("{middle}Z")],
            Box::new(|r: &Value| r["at"].as_str().unwrap()[..19] < *middle.as_str()),
        ),
        (
            vec![
                "--wallet".into(),
                w1.clone(),
                "--decision".into(),
                "denied".into(),
                "--client".into(),
                actor.clone(),
            ],
            Box::new(|r: &Value| {
                r["walletId"] == w1.as_str()
                    && r["decision"] == "denied"
                    && r["actor"] == actor.as_str()
            }),
        ),
    ];
    for (args, keep) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected: Vec<Value> = all.iter().filter(|r| keep(r)).cloned().collect();
        let got = search(&env, &args);
        assert_eq!(got, expected, "{args:?}");
        // every filter here selects something, and not everything (`--until` of the
        // middle record can be empty only if all records share one second)
        if args[0] != "--until" {
            assert!(!got.is_empty(), "{args:?} matched nothing");
        }
        assert!(
            got.len() < all.len() || args[0] == "--since",
            "{args:?} filtered nothing"
        );
    }
    // the lock drill's three refusals and one lock, exactly
    assert_eq!(search(&env, &["--decision", "denied"]).len(), 2);
    assert_eq!(search(&env, &["--operation", "appliance.lock"]).len(), 1);
    // a time zone offset is converted to UTC before comparing
    assert_eq!(
        search(&env, &["--since", "2999-01-01T01:00:00+01:00"]),
        Vec::<Value>::new()
    );
}

#[test]
fn audit_search_refuses_bad_filters_precisely_and_prints_a_table_on_request() {
    let (env, _d, w1, _w2) = populated();
    for (args, status, needle) in [
        (
            vec!["--since", "yesterday"],
            1,
            "--since \"yesterday\" is not an RFC 3339 time",
        ),
        (
            vec!["--until", "2026-13-01T00:00:00Z"],
            1,
            "--until \"2026-13-01T00:00:00Z\" is not an RFC 3339 time",
        ),
        (
            vec![
                "--since",
                "2026-02-01T00:00:00Z",
                "--until",
                "2026-01-01T00:00:00Z",
            ],
            1,
            "is not before --until",
        ),
        (vec!["--wallet", " "], 1, "--wallet is empty"),
        (
            vec!["--decision", "maybe"],
            2,
            "invalid value 'maybe' for '--decision",
        ),
    ] {
        let mut all = vec!["audit", "search"];
        all.extend_from_slice(&args);
        let out = keyward(&env, &all);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(needle), "{args:?}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
    let table = keyward_ok(
        &env,
        &["audit", "search", "--wallet", &w1, "--format", "table"],
    );
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("SEQ") && rows[0].contains("DECISION"),
        "{table}"
    );
    let expected = search(&env, &["--wallet", &w1]).len();
    assert_eq!(rows.len(), expected + 1, "{table}");
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.contains(&w1[..w1.len().min(37)])),
        "{table}"
    );
    assert!(table.contains("appliance_locked"), "{table}");
}

#[test]
fn status_shows_service_lock_token_store_keys_certificates_and_deliveries() {
    let (env, d, _w1, _w2) = populated();
    let out = keyward_ok(&env, &["status"]);
    for needle in [
        &format!("serving (pid {})", d.pid()),
        "unlocked",
        "token      ok (label",
        "keyward-rsa-1",
        "keyward-wrap-1",
        "wallets    evm 2 active",
        "in use     wrap v1: 2 wallets",
        "api        server certificate expires",
        "api        client CA expires",
        "webhook    server certificate expires",
        "delivery   ",
    ] {
        assert!(out.contains(needle), "no {needle:?} in\n{out}");
    }
    assert!(!out.contains("EXPIRED"), "{out}");
    keyward_ok(&env, &["lock", "--reason", "status check"]);
    let out = keyward_ok(&env, &["status"]);
    assert!(out.contains("LOCKED: status check"), "{out}");
    assert!(out.lines().count() <= 24, "one screen:\n{out}");
}
