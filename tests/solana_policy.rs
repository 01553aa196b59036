//! Solana policy through the real REST face (mTLS on loopback, SoftHSM2, SQLite): the
//! example policy's Solana rule decides every golden Solana case as `keyward policy test`
//! does, and the priority fee, account handovers and durable nonces are refused with
//! their rule, reason and nothing signed or counted.

mod common;

use common::api::{path, Answer, Server};
use common::fixtures::{golden_cases, golden_solana_tx};
use common::Env;
use hyper::StatusCode;
use keyward::chains::solana;
use keyward::store::wallets::{Chain, Wallet};
use serde_json::{json, Value};

/// The example config's `solana-payouts` rule (config/keyward.example.toml), granted to
/// the API tests' `test-client` for wallets labelled `golden`, in a policy file.
fn example_solana_policy() -> String {
    let example: toml::Table = toml::from_str(include_str!("../config/keyward.example.toml"))
        .expect("the example config parses");
    let mut rule = example["policy"]["rule"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"].as_str() == Some("solana-payouts"))
        .expect("the example has the solana-payouts rule")
        .as_table()
        .unwrap()
        .clone();
    rule.insert(
        "clients".into(),
        toml::Value::Array(vec!["test-client".into()]),
    );
    rule.insert(
        "wallets".into(),
        toml::Value::Array(vec!["label:golden".into()]),
    );
    // a rule that caps lamports and not the fee: the fee the wallet pays is lamports too
    let lamports_only: toml::Table = toml::from_str(
        r#"
id = "lamports-only"
clients = ["test-client"]
wallets = ["label:lamports-only"]
[solana]
programs = ["system", "compute-budget"]
max_lamports_per_tx = "1000000"
[[solana.spend]]
window = "24h"
max = "1500000"
"#,
    )
    .unwrap();
    let mut policy = toml::Table::new();
    policy.insert("default".into(), "deny".into());
    policy.insert(
        "rule".into(),
        toml::Value::Array(vec![rule.into(), lamports_only.into()]),
    );
    toml::to_string(&policy).unwrap()
}

async fn start() -> Server {
    let env =
        Env::with_extra(["[policy]\nfile = \"policy.toml\"\n", common::api::CLIENTS].concat());
    std::fs::write(env.path("policy.toml"), example_solana_policy()).unwrap();
    common::api::start_in(env).await
}

fn wallet(s: &Server) -> (Wallet, [u8; 32]) {
    labelled(s, "golden")
}

fn labelled(s: &Server, label: &str) -> (Wallet, [u8; 32]) {
    let w = keyward::wallets::create(&s.app, Chain::Solana, Some(label)).unwrap();
    let pk = solana::parse_pubkey(w.address.as_deref().unwrap()).unwrap();
    (w, pk)
}

fn spend_rows(s: &Server, w: &Wallet) -> i64 {
    common::store::count(
        s.db(),
        &format!("SELECT COUNT(*) FROM spend WHERE wallet_id = '{}'", w.id),
    )
}

async fn send(s: &Server, w: &Wallet, pk: &[u8; 32], case: &str) -> Answer {
    let (_, c) = golden_cases(&format!("solana.{case}"))
        .into_iter()
        .find(|(n, _)| n == &format!("solana.{case}"))
        .unwrap_or_else(|| panic!("no golden case solana.{case}"));
    s.post(
        &path(w, "solana/transaction"),
        json!({ "transaction": golden_solana_tx(&c, pk) }),
    )
    .await
}

/// Refused by `rule` with 403 `policy_denied`, the message containing `says`; no
/// signature in the answer.
fn refused(a: &Answer, rule: &str, says: &str) {
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.body);
    assert_eq!(a.body["error"]["code"], "policy_denied", "{}", a.body);
    assert_eq!(a.body["error"]["rule"], rule, "{}", a.body);
    let m = a.body["error"]["message"].as_str().unwrap();
    assert!(m.contains(says), "{m}");
    assert!(a.body.get("signature").is_none(), "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_solana_case_is_decided_the_same_through_the_rest_face() {
    let s = start().await;
    let (w, pk) = wallet(&s);
    let cases: Vec<(String, Value)> = golden_cases("solana.")
        .into_iter()
        .filter(|(_, c)| c["operation"] == "solana.transaction")
        .collect();
    assert!(cases.len() >= 40, "{}", cases.len());
    for (name, c) in cases {
        let a = s
            .post(
                &path(&w, "solana/transaction"),
                json!({ "transaction": golden_solana_tx(&c, &pk) }),
            )
            .await;
        match c["expect"].as_str().unwrap() {
            "allow" => assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body),
            rule => {
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{name}: {}", a.body);
                assert_eq!(a.body["error"]["rule"], rule, "{name}: {}", a.body);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compute_unit_price_alone_is_priced_at_the_runtimes_default_limit() {
    let s = start().await;
    let (w, pk) = wallet(&s);
    // [SetComputeUnitPrice(u64::MAX)], the wallet the fee payer: 3,000 units (a Compute
    // Budget instruction, SIMD-0170) × u64::MAX micro-lamports, far over 0.001 sol
    let a = send(&s, &w, &pk, "compute_budget.price_alone_u64_max").await;
    refused(
        &a,
        "solana-payouts",
        "priority fee of 55340232221128655 lamports (compute unit price 18446744073709551615 micro-lamports × limit 3000, the runtime's default for these instructions) exceeds solana.max_priority_fee 1000000",
    );
    // the same with a heap request (6,000 units) and with a System transfer (200,000)
    let a = send(&s, &w, &pk, "compute_budget.price_and_heap_frame_over_cap").await;
    refused(&a, "solana-payouts", "priority fee of 1000001 lamports");
    let a = send(&s, &w, &pk, "compute_budget.price_and_transfer_over_cap").await;
    refused(
        &a,
        "solana-payouts",
        "× limit 200000, the runtime's default",
    );
    assert_eq!(spend_rows(&s, &w), 0);
    // at the cap exactly: signed
    let a = send(&s, &w, &pk, "compute_budget.price_alone_at_cap").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let a = send(&s, &w, &pk, "compute_budget.price_alone_over_cap").await;
    refused(&a, "solana-payouts", "priority fee of 1000001 lamports");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_instructions_that_give_a_wallet_account_to_a_program_are_refused() {
    let s = start().await;
    let (w, pk) = wallet(&s);
    for (case, ix, says) in [
        (
            "system.create_account_allow_prefund_of_the_wallet",
            "CreateAccountAllowPrefund",
            "hands the wallet's own account, with the lamports it holds, to program",
        ),
        (
            "system.create_account_allow_prefund_of_the_wallet_unfunded",
            "CreateAccountAllowPrefund",
            "hands the wallet's own account, with the lamports it holds, to program",
        ),
        (
            "system.create_account_of_the_wallet",
            "CreateAccount",
            "creates the wallet's own account for program",
        ),
        (
            "system.allocate_with_seed",
            "AllocateWithSeed",
            "hands an account derived from the wallet, with the lamports it holds, to program",
        ),
        (
            "system.assign_with_seed",
            "AssignWithSeed",
            "hands an account derived from the wallet, with the lamports it holds, to program",
        ),
        (
            "system.assign",
            "Assign",
            "hands the wallet's own account to program",
        ),
    ] {
        let a = send(&s, &w, &pk, case).await;
        refused(&a, "builtin.unpriced_instruction", says);
        let m = a.body["error"]["message"].as_str().unwrap();
        assert!(
            m.contains(&format!(
                "({ix} of program 11111111111111111111111111111111"
            )),
            "{case}: {m}"
        );
        assert!(m.contains("solana.instructions"), "{case}: {m}");
    }
    assert_eq!(spend_rows(&s, &w), 0);
    // what hands over nothing of the wallet's is priced by its funding and signed
    for case in [
        "system.create_account_allow_prefund_of_another_account",
        "system.create_account_with_seed",
        "system.allocate_with_seed_of_another_base",
    ] {
        let a = send(&s, &w, &pk, case).await;
        assert_eq!(a.status, StatusCode::OK, "{case}: {}", a.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_nonce_transactions_are_refused_under_a_capped_rule() {
    let s = start().await;
    let (w, pk) = wallet(&s);
    let a = send(&s, &w, &pk, "system.advance_nonce_account").await;
    refused(
        &a,
        "solana-payouts",
        "the transaction uses a durable nonce (its first instruction is System AdvanceNonceAccount)",
    );
    assert!(a.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("solana.allow_durable_nonce"));
    assert_eq!(spend_rows(&s, &w), 0);
    // AdvanceNonceAccount later in the transaction does not make it durable
    let a = send(&s, &w, &pk, "system.advance_nonce_account_not_first").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(spend_rows(&s, &w), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_priority_fee_the_wallet_pays_counts_against_its_lamport_caps() {
    let s = start().await;
    let (w, pk) = labelled(&s, "lamports-only");
    // no max_priority_fee in the rule: [SetComputeUnitPrice(u64::MAX)] is still refused,
    // by the lamport cap
    let a = send(&s, &w, &pk, "compute_budget.price_alone_u64_max").await;
    refused(
        &a,
        "lamports-only",
        "55340232221128655 lamports leaving the wallet (what it sends, and the priority fee when it pays the fees) exceeds solana.max_lamports_per_tx 1000000",
    );
    let a = send(&s, &w, &pk, "compute_budget.price_alone_over_cap").await;
    refused(&a, "lamports-only", "1000001 lamports leaving the wallet");
    assert_eq!(spend_rows(&s, &w), 0);
    // 1,000,000 lamports of fee: within the transaction cap, and counted in the window
    let a = send(&s, &w, &pk, "compute_budget.price_alone_at_cap").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(spend_rows(&s, &w), 1);
    let a = send(&s, &w, &pk, "compute_budget.price_alone_at_cap").await;
    refused(&a, "lamports-only", "rolling");
    assert_eq!(spend_rows(&s, &w), 1);
}
