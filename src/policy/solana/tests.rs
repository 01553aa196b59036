//! The Solana rules on hand-built transactions and on the solders / solana-py fixtures.

use super::super::test_support::*;
use super::super::{Subject, Totals};
use super::*;
use crate::chains::solana::{parse_transaction, SPL_TOKEN_PROGRAM_ID, SYSTEM_PROGRAM_ID};

const WALLET: Pubkey = [1; 32];
const UNKNOWN: Pubkey = [0x55; 32];
const MINT: Pubkey = [0x66; 32];

/// A legacy transaction paid by `payer` (the only signer) with `ixs` as
/// (program, accounts, data).
fn tx(payer: Pubkey, ixs: &[(Pubkey, Vec<Pubkey>, Vec<u8>)]) -> Subject {
    let mut accounts = vec![payer];
    for (_, accts, _) in ixs {
        for a in accts {
            if !accounts.contains(a) {
                accounts.push(*a);
            }
        }
    }
    let mut programs = Vec::new();
    for (p, _, _) in ixs {
        if !programs.contains(p) && !accounts.contains(p) {
            programs.push(*p);
        }
    }
    let keys: Vec<Pubkey> = accounts.iter().chain(programs.iter()).copied().collect();
    let idx = |k: &Pubkey| keys.iter().position(|x| x == k).unwrap() as u8;
    let mut m = vec![1u8, 0, programs.len() as u8, keys.len() as u8];
    for k in &keys {
        m.extend_from_slice(k);
    }
    m.extend_from_slice(&[9; 32]);
    m.push(ixs.len() as u8);
    for (p, accts, data) in ixs {
        m.push(idx(p));
        m.push(accts.len() as u8);
        m.extend(accts.iter().map(&idx));
        m.push(data.len() as u8);
        m.extend_from_slice(data);
    }
    let mut raw = vec![1u8];
    raw.extend_from_slice(&[0; 64]);
    raw.extend(m);
    Subject::SolanaTransaction {
        tx: Box::new(parse_transaction(&raw).expect("parses")),
        wallet: WALLET,
    }
}

fn transfer(lamports: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let mut d = 2u32.to_le_bytes().to_vec();
    d.extend(lamports.to_le_bytes());
    (SYSTEM_PROGRAM_ID, vec![WALLET, [7; 32]], d)
}

fn spl_checked(amount: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let mut d = vec![12u8];
    d.extend(amount.to_le_bytes());
    d.push(6);
    (
        SPL_TOKEN_PROGRAM_ID,
        vec![[2; 32], MINT, [3; 32], WALLET],
        d,
    )
}

fn spl_plain(amount: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let mut d = vec![3u8];
    d.extend(amount.to_le_bytes());
    (SPL_TOKEN_PROGRAM_ID, vec![[2; 32], [3; 32], WALLET], d)
}

fn run(text: &str, s: &Subject, totals: &Totals) -> super::super::Decision {
    decide(&policy(text), "c", "solana", s, totals)
}

#[test]
fn unknown_program_is_refused() {
    let p = "[[rule]]\nid = \"s\"\nsolana = { programs = [\"system\"] }\n";
    assert!(run(p, &tx(WALLET, &[transfer(5)]), &Totals::new()).allowed());
    let d = run(
        p,
        &tx(WALLET, &[transfer(5), (UNKNOWN, vec![], vec![1])]),
        &Totals::new(),
    );
    let den = d.denial.unwrap();
    assert_eq!(den.rule, "s");
    assert!(den.reason.contains(&to_base58(&UNKNOWN)), "{}", den.reason);
}

#[test]
fn fee_payer_requirement() {
    let p =
        "[[rule]]\nid = \"s\"\nsolana = { programs = [\"system\"], require_fee_payer = true }\n";
    assert!(run(p, &tx(WALLET, &[transfer(5)]), &Totals::new()).allowed());
    let d = run(p, &tx([8; 32], &[transfer(5)]), &Totals::new());
    assert!(d.denial.unwrap().reason.contains("fee payer"));
}

#[test]
fn lamport_caps_per_tx_and_window() {
    let p = "[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"system\"]\nmax_lamports_per_tx = \"100\"\n[[rule.solana.spend]]\nwindow = \"1h\"\nmax = \"150\"\n";
    // two transfers in one transaction add up
    assert!(run(
        p,
        &tx(WALLET, &[transfer(50), transfer(50)]),
        &Totals::new()
    )
    .allowed());
    assert!(!run(
        p,
        &tx(WALLET, &[transfer(50), transfer(51)]),
        &Totals::new()
    )
    .allowed());
    let s = tx(WALLET, &[transfer(100)]);
    let d = run(p, &s, &Totals::new());
    let q = d.queries();
    let mut t = Totals::new();
    t.insert(q[0].clone(), U256::from(50));
    assert!(run(p, &s, &t).allowed());
    t.insert(q[0].clone(), U256::from(51));
    assert!(run(p, &s, &t)
        .denial
        .unwrap()
        .reason
        .contains("rolling 1h cap"));
}

#[test]
fn token_caps_need_the_mint() {
    let mint = to_base58(&MINT);
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"token\"]\n[[rule.solana.token]]\nmint = \"{mint}\"\nmax_per_tx = \"10\"\nwindow = \"24h\"\nmax_per_window = \"15\"\n");
    assert!(run(&p, &tx(WALLET, &[spl_checked(10)]), &Totals::new()).allowed());
    assert!(run(&p, &tx(WALLET, &[spl_checked(11)]), &Totals::new())
        .denial
        .unwrap()
        .reason
        .contains("max_per_tx"));
    assert!(run(&p, &tx(WALLET, &[spl_plain(1)]), &Totals::new())
        .denial
        .unwrap()
        .reason
        .contains("TransferChecked"));
    let s = tx(WALLET, &[spl_checked(10)]);
    let q = run(&p, &s, &Totals::new()).queries();
    assert_eq!(q[0].0.asset, format!("spl:{mint}"));
    let mut t = Totals::new();
    t.insert(q[0].clone(), U256::from(6));
    assert!(!run(&p, &s, &t).allowed());
}

// --- every System / token instruction family, on bytes built by solders and
// solana-py (tests/fixtures/solana_instructions.json); the wallet there is [1; 32] ---

const FIXTURES: &str = include_str!("../../../tests/fixtures/solana_instructions.json");
const FX_MINT: Pubkey = [3; 32];

fn fixture(name: &str) -> Subject {
    use base64::Engine as _;
    let f: serde_json::Value = serde_json::from_str(FIXTURES).unwrap();
    let c = f["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture {name}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(c["transaction"].as_str().unwrap())
        .unwrap();
    Subject::SolanaTransaction {
        tx: Box::new(parse_transaction(&bytes).unwrap()),
        wallet: WALLET,
    }
}

const ALL: &str = "programs = [\"system\", \"token\", \"token-2022\", \"compute-budget\", \"associated-token\", \"memo\"]";

fn capped(extra: &str) -> String {
    let mint = to_base58(&FX_MINT);
    format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\nmax_lamports_per_tx = \"5000000\"\n{extra}\n[[rule.solana.token]]\nmint = \"{mint}\"\nmax_per_tx = \"1000000\"\nwindow = \"24h\"\nmax_per_window = \"1500000\"\n")
}

fn outcome(p: &str, name: &str) -> Result<(), (String, String)> {
    let d = run(p, &fixture(name), &Totals::new());
    match d.denial {
        None => Ok(()),
        Some(x) => Err((x.rule, x.reason)),
    }
}

fn lamports_of(name: &str) -> U256 {
    let Subject::SolanaTransaction { tx, wallet } = fixture(name) else {
        unreachable!()
    };
    spend(&tx, &wallet)
        .into_iter()
        .filter(|(_, a, _)| a == "lamports")
        .map(|(_, _, x)| x)
        .sum()
}

#[test]
fn every_lamport_moving_system_instruction_is_priced() {
    for (name, lamports) in [
        ("system.transfer", 5_000u64),
        ("system.create_account", 7_000_000),
        ("system.create_account_with_seed", 9_000_000),
        ("system.withdraw_nonce_account", 1_234_567),
        ("system.transfer_with_seed", 3_000_000),
        ("system.create_account_allow_prefund", 11),
    ] {
        assert_eq!(lamports_of(name), U256::from(lamports), "{name}");
        let over = lamports > 5_000_000;
        let r = outcome(&capped(""), name);
        assert_eq!(r.is_err(), over, "{name}: {r:?}");
        if over {
            let (rule, reason) = r.unwrap_err();
            assert_eq!(rule, "s");
            assert!(reason.contains("max_lamports_per_tx"), "{reason}");
        }
    }
}

#[test]
fn transfer_with_seed_is_counted_against_its_base_not_the_derived_account() {
    // the fixture's `from` is a derived account; the wallet signs as `base`
    assert_eq!(
        lamports_of("system.transfer_with_seed"),
        U256::from(3_000_000)
    );
}

#[test]
fn authority_changes_are_refused_unless_listed() {
    for (name, what) in [
        ("system.assign", "Assign"),
        ("system.assign_with_seed", "AssignWithSeed"),
        ("system.authorize_nonce_account", "AuthorizeNonceAccount"),
        ("system.allocate", "Allocate"),
        ("system.allocate_with_seed", "AllocateWithSeed"),
    ] {
        let (rule, reason) = outcome(&capped(""), name).unwrap_err();
        assert_eq!(rule, UNPRICED_INSTRUCTION, "{name}");
        assert!(reason.contains(what), "{reason}");
        assert!(
            reason.contains("11111111111111111111111111111111"),
            "{reason}"
        );
        let allow = format!("instructions = {{ system = [\"{what}\"] }}");
        assert_eq!(outcome(&capped(&allow), name), Ok(()), "{name}");
    }
    for (name, what) in [
        ("token.set_authority", "SetAuthority"),
        ("token.set_authority_none", "SetAuthority"),
        ("token.close_account", "CloseAccount"),
        ("token.freeze_account", "FreezeAccount"),
        ("token.thaw_account", "ThawAccount"),
        ("token.mint_to", "MintTo"),
        ("token.mint_to_checked", "MintToChecked"),
        ("token-2022.set_authority", "SetAuthority"),
        ("token-2022.close_account", "CloseAccount"),
    ] {
        let (rule, reason) = outcome(&capped(""), name).unwrap_err();
        assert_eq!(rule, UNPRICED_INSTRUCTION, "{name}");
        assert!(reason.contains(what), "{reason}");
        let program = if name.starts_with("token-2022") {
            "token-2022"
        } else {
            "token"
        };
        let allow = format!("instructions = {{ {program} = [\"{what}\"] }}");
        assert_eq!(outcome(&capped(&allow), name), Ok(()), "{name}");
        // listing it for the other token program does not lift it
        let other = if program == "token" {
            "token-2022"
        } else {
            "token"
        };
        let wrong = format!("instructions = {{ {other} = [\"{what}\"] }}");
        assert!(outcome(&capped(&wrong), name).is_err(), "{name}");
    }
    // Token-2022 extension instructions are named by tag/sub-tag, lifted by hex prefix
    let (rule, reason) =
        outcome(&capped(""), "token-2022.withdraw_withheld_tokens_from_mint").unwrap_err();
    assert_eq!(rule, UNPRICED_INSTRUCTION);
    assert!(reason.contains("26/2"), "{reason}");
    let allow = "instructions = { token-2022 = [\"1a02\"] }";
    assert_eq!(
        outcome(
            &capped(allow),
            "token-2022.withdraw_withheld_tokens_from_mint"
        ),
        Ok(())
    );
}

#[test]
fn inert_instructions_pass_a_capped_rule() {
    for name in [
        "system.initialize_nonce_account",
        "system.upgrade_nonce_account",
        "token.revoke",
        "token.sync_native",
        "token.initialize_account3",
        "token-2022.harvest_withheld_tokens_to_mint",
        "associated-token.create",
        "associated-token.create_idempotent",
        "memo",
        "compute_budget.set_compute_unit_limit",
        "compute_budget.request_heap_frame",
    ] {
        assert_eq!(outcome(&capped(""), name), Ok(()), "{name}");
    }
}

#[test]
fn token_moves_and_approvals_are_priced_by_mint() {
    let mint = to_base58(&FX_MINT);
    for name in [
        "token.transfer_checked",
        "token-2022.transfer_checked",
        "token-2022.transfer_checked_with_fee",
    ] {
        // over max_per_tx 1_000_000 (the with-fee transfer debits exactly 1_000_000)
        let r = outcome(&capped(""), name);
        if name.ends_with("with_fee") {
            assert_eq!(r, Ok(()), "{name}");
            let d = run(&capped(""), &fixture(name), &Totals::new());
            assert_eq!(d.spend[0].1, U256::from(1_000_000));
            assert_eq!(d.spend[0].0.asset, format!("spl:{mint}"));
        } else {
            let (rule, reason) = r.unwrap_err();
            assert_eq!(rule, "s");
            assert!(reason.contains("max_per_tx"), "{reason}");
        }
    }
    for name in ["token.burn", "token.burn_checked", "token.approve_checked"] {
        let d = run(&capped(""), &fixture(name), &Totals::new());
        if name == "token.approve_checked" {
            // u64::MAX: an unlimited approval, refused by the rule
            let den = d.denial.unwrap();
            assert_eq!(den.rule, "s");
            assert!(den.reason.contains("unlimited"), "{}", den.reason);
        } else {
            assert!(d.allowed(), "{name}");
            assert_eq!(d.spend[0].0.asset, format!("spl:{mint}"), "{name}");
        }
    }
}

#[test]
fn unlimited_spl_approval_needs_the_mints_permission() {
    let mint = to_base58(&FX_MINT);
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\n[[rule.solana.token]]\nmint = \"{mint}\"\nmax_per_tx = \"10\"\nunlimited_approval = true\n");
    let d = run(&p, &fixture("token.approve_checked"), &Totals::new());
    assert!(d.allowed(), "{d:?}");
    // allowed explicitly, and then not counted against the caps
    assert!(d.spend.is_empty());
    // no token entry at all: still refused
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\n");
    assert!(outcome(&p, "token.approve_checked")
        .unwrap_err()
        .1
        .contains("unlimited"));
}

#[test]
fn finite_approvals_count_against_per_tx_and_rolling_caps() {
    let approve = |amount: u64| {
        let mut d = vec![13u8];
        d.extend(amount.to_le_bytes());
        d.push(6);
        (
            SPL_TOKEN_PROGRAM_ID,
            vec![[4; 32], FX_MINT, [8; 32], WALLET],
            d,
        )
    };
    let p = capped("");
    assert!(run(&p, &tx(WALLET, &[approve(1_000_000)]), &Totals::new()).allowed());
    let d = run(&p, &tx(WALLET, &[approve(1_000_001)]), &Totals::new());
    assert!(d.denial.unwrap().reason.contains("max_per_tx"));
    // the rolling window: 600_000 already sent or approved, 1_000_000 more exceeds 1_500_000
    let s = tx(WALLET, &[approve(1_000_000)]);
    let q = run(&p, &s, &Totals::new()).queries();
    let q = q.iter().find(|(k, _)| k.asset.starts_with("spl:")).unwrap();
    let mut t = Totals::new();
    t.insert(q.clone(), U256::from(500_000));
    assert!(run(&p, &s, &t).allowed());
    t.insert(q.clone(), U256::from(500_001));
    assert!(run(&p, &s, &t).denial.unwrap().reason.contains("rolling"));
}

#[test]
fn mintless_token_instructions_are_unpriced_under_token_caps() {
    for name in [
        "token.transfer",
        "token.approve",
        "token-2022.transfer_multisig",
    ] {
        let (rule, reason) = outcome(&capped(""), name).unwrap_err();
        assert_eq!(rule, UNPRICED_INSTRUCTION, "{name}");
        assert!(reason.contains("mint"), "{reason}");
    }
    // without token caps there is nothing to price them against
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\n");
    assert_eq!(outcome(&p, "token.transfer"), Ok(()));
}

#[test]
fn another_signers_token_moves_are_not_the_wallets() {
    // the wallet is neither the owner nor a multisig signer
    let mut d = vec![12u8];
    d.extend(5_000u64.to_le_bytes());
    d.push(6);
    let ix = (
        SPL_TOKEN_PROGRAM_ID,
        vec![[4; 32], FX_MINT, [5; 32], [9; 32]],
        d,
    );
    let s = tx(WALLET, &[ix]);
    let d = run(&capped(""), &s, &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert!(d.spend.is_empty());
}

fn budget(tag: u8, value: &[u8]) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let mut d = vec![tag];
    d.extend_from_slice(value);
    (crate::chains::solana::COMPUTE_BUDGET_PROGRAM_ID, vec![], d)
}

#[test]
fn priority_fee_is_price_times_limit() {
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\nmax_priority_fee = \"1000\"\n");
    // 5_000 micro-lamports per CU × 200_000 CU = 1_000 lamports: at the cap
    let ok = tx(
        WALLET,
        &[
            budget(2, &200_000u32.to_le_bytes()),
            budget(3, &5_000u64.to_le_bytes()),
            transfer(1),
        ],
    );
    let d = run(&p, &ok, &Totals::new());
    assert!(d.allowed(), "{d:?}");
    let over = tx(
        WALLET,
        &[
            budget(2, &200_001u32.to_le_bytes()),
            budget(3, &5_000u64.to_le_bytes()),
            transfer(1),
        ],
    );
    let d = run(&p, &over, &Totals::new());
    let den = d.denial.unwrap();
    assert_eq!(den.rule, "s");
    assert!(den.reason.contains("1001 lamports"), "{}", den.reason);
    // no limit given: 200_000 per other instruction is assumed, so 2 transfers = 400_000
    let implicit = tx(
        WALLET,
        &[budget(3, &5_000u64.to_le_bytes()), transfer(1), transfer(1)],
    );
    assert!(run(&p, &implicit, &Totals::new())
        .denial
        .unwrap()
        .reason
        .contains("2000 lamports"));
    // an unknown compute-budget tag cannot be priced
    let odd = tx(WALLET, &[budget(9, &[1, 2, 3, 4])]);
    assert_eq!(
        run(&p, &odd, &Totals::new()).denial.unwrap().rule,
        UNPRICED_INSTRUCTION
    );
}

#[test]
fn other_programs_under_caps_need_an_instruction_allowlist() {
    let prog = to_base58(&UNKNOWN);
    let ix = (UNKNOWN, vec![WALLET], vec![0xe5, 0x17, 0xcb, 0x97, 1, 2]);
    let s = tx(WALLET, &[ix]);
    // trusted wholesale by a rule that caps nothing
    let p = format!("[[rule]]\nid = \"s\"\nsolana = {{ programs = [\"{prog}\"] }}\n");
    assert!(run(&p, &s, &Totals::new()).allowed());
    // a capped rule refuses it by name
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"{prog}\"]\nmax_lamports_per_tx = \"1\"\n");
    let den = run(&p, &s, &Totals::new()).denial.unwrap();
    assert_eq!(den.rule, UNPRICED_INSTRUCTION);
    assert!(den.reason.contains(&prog), "{}", den.reason);
    assert!(den.reason.contains("e517cb97"), "{}", den.reason);
    // listed by discriminator: accepted; another discriminator: refused
    let ok = format!("{p}instructions = {{ \"{prog}\" = [\"e517cb97\"] }}\n");
    assert!(run(&ok, &s, &Totals::new()).allowed());
    let no = format!("{p}instructions = {{ \"{prog}\" = [\"e517cb98\"] }}\n");
    assert_eq!(
        run(&no, &s, &Totals::new()).denial.unwrap().rule,
        UNPRICED_INSTRUCTION
    );
}

#[test]
fn instruction_allowlist_entries_are_validated() {
    for bad in ["\"zz\"", "\"\"", "\"Transfer\""] {
        let text = format!(
            "[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\ninstructions = {{ system = [{bad}] }}\n"
        );
        let e = crate::policy::PolicySection::parse_file(&text)
            .unwrap()
            .compile()
            .unwrap_err();
        assert_eq!(e.key, "rule[0](s).solana.instructions.system", "{bad}");
    }
}

mod fees;
mod side_doors;
