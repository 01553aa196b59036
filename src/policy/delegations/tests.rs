use alloy_eips::eip7702::Authorization;
use alloy_primitives::{address, Address, U256};

use crate::policy::test_support::decide;
use crate::policy::{Subject, Totals, DELEGATION};

const KERNEL: Address = address!("d6cedde84be40893d153be9d467cd6ad37875b28");
const OTHER: Address = address!("1111111111111111111111111111111111111111");

fn auth(chain: u64, to: Address) -> Subject {
    Subject::EvmAuthorization(Authorization {
        chain_id: U256::from(chain),
        address: to,
        nonce: 0,
    })
}

fn policy(delegations: &str) -> crate::policy::Policy {
    crate::policy::test_support::policy(&format!(
        "[[rule]]\nid = \"smart\"\n[rule.evm]\n{delegations}"
    ))
}

fn rule_of(p: &crate::policy::Policy, s: &Subject) -> Option<String> {
    decide(p, "svc", "evm", s, &Totals::new())
        .denial
        .map(|d| d.rule)
}

#[test]
fn no_table_is_the_builtin_refusal_also_without_a_policy() {
    let none = crate::policy::Policy::permissive();
    assert_eq!(
        rule_of(&none, &auth(1, KERNEL)).as_deref(),
        Some(DELEGATION)
    );
    let no_table = policy("");
    assert_eq!(
        rule_of(&no_table, &auth(1, KERNEL)).as_deref(),
        Some(DELEGATION)
    );
    // revocations too: nothing written judges them
    assert_eq!(
        rule_of(&no_table, &auth(1, Address::ZERO)).as_deref(),
        Some(DELEGATION)
    );
}

#[test]
fn per_chain_list_wins_over_star() {
    let p = policy(&format!(
        "[rule.evm.delegations]\n\"1\" = [\"{KERNEL:#x}\"]\n\"*\" = [\"{OTHER:#x}\"]\n"
    ));
    assert_eq!(rule_of(&p, &auth(1, KERNEL)), None);
    assert_eq!(rule_of(&p, &auth(1, OTHER)).as_deref(), Some("smart"));
    assert_eq!(rule_of(&p, &auth(8453, OTHER)), None);
    assert_eq!(rule_of(&p, &auth(8453, KERNEL)).as_deref(), Some("smart"));
}

#[test]
fn chain_zero_needs_the_switch_and_every_list() {
    let off = policy(&format!(
        "[rule.evm.delegations]\n\"*\" = [\"{KERNEL:#x}\"]\n"
    ));
    assert_eq!(rule_of(&off, &auth(0, KERNEL)).as_deref(), Some("smart"));
    let on = policy(&format!(
        "[rule.evm.delegations]\nallow_any_chain = true\n\"*\" = [\"{KERNEL:#x}\"]\n\"10\" = [\"{OTHER:#x}\"]\n"
    ));
    // allowed on "*" but not on chain 10's own list: not on every chain
    assert_eq!(rule_of(&on, &auth(0, KERNEL)).as_deref(), Some("smart"));
    let on_all = policy(&format!(
        "[rule.evm.delegations]\nallow_any_chain = true\n\"*\" = [\"{KERNEL:#x}\"]\n"
    ));
    assert_eq!(rule_of(&on_all, &auth(0, KERNEL)), None);
}

#[test]
fn revocation_has_its_own_switch() {
    let p = policy("[rule.evm.delegations]\n\"*\" = []\n");
    assert_eq!(rule_of(&p, &auth(1, Address::ZERO)), None);
    let off = policy("[rule.evm.delegations]\nallow_revocation = false\n");
    assert_eq!(
        rule_of(&off, &auth(1, Address::ZERO)).as_deref(),
        Some("smart")
    );
}

#[test]
fn chain_ids_bound_the_tuples() {
    let p = policy(&format!(
        "chain_ids = [1]\n[rule.evm.delegations]\n\"*\" = [\"{KERNEL:#x}\"]\n"
    ));
    assert_eq!(rule_of(&p, &auth(1, KERNEL)), None);
    assert_eq!(rule_of(&p, &auth(5, KERNEL)).as_deref(), Some("smart"));
}

#[test]
fn bad_keys_and_addresses_do_not_compile() {
    for (text, key) in [
        (
            "[rule.evm.delegations]\n\"0\" = []\n",
            "rule[0](smart).evm.delegations.0",
        ),
        (
            "[rule.evm.delegations]\n\"01\" = []\n",
            "rule[0](smart).evm.delegations.01",
        ),
        (
            "[rule.evm.delegations]\nallow_any_chian = []\n",
            "rule[0](smart).evm.delegations.allow_any_chian",
        ),
        (
            "[rule.evm.delegations]\n\"1\" = [\"0x12\"]\n",
            "rule[0](smart).evm.delegations.1",
        ),
    ] {
        let e = crate::policy::PolicySection::parse_file(&format!(
            "[[rule]]\nid = \"smart\"\n[rule.evm]\n{text}"
        ))
        .expect("parses")
        .compile()
        .expect_err(text);
        assert_eq!(e.key, key, "{text}");
    }
}

#[test]
fn to_deny_wins_over_the_lists() {
    let p = policy(&format!(
        "to_deny = [\"{KERNEL:#x}\"]\n[rule.evm.delegations]\n\"*\" = [\"{KERNEL:#x}\"]\n"
    ));
    let d = decide(&p, "svc", "evm", &auth(1, KERNEL), &Totals::new());
    let denial = d.denial.expect("refused");
    assert_eq!(denial.rule, "smart");
    assert!(denial.reason.contains("evm.to_deny"), "{}", denial.reason);
}
