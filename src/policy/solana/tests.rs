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

// --- System instructions that give an account to a program: Allocate + Assign of it ---

const FUNDER: Pubkey = [0x22; 32];
const OWNER: Pubkey = [0x66; 32];

fn sys(tag: u32, fields: &[&[u8]]) -> Vec<u8> {
    let mut d = tag.to_le_bytes().to_vec();
    for f in fields {
        d.extend_from_slice(f);
    }
    d
}

fn seed(s: &str) -> Vec<u8> {
    let mut d = (s.len() as u64).to_le_bytes().to_vec();
    d.extend_from_slice(s.as_bytes());
    d
}

/// CreateAccount (0): [funder, account], lamports, space, owner.
fn create_account(
    funder: Pubkey,
    account: Pubkey,
    lamports: u64,
) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let d = sys(0, &[&lamports.to_le_bytes(), &8u64.to_le_bytes(), &OWNER]);
    (SYSTEM_PROGRAM_ID, vec![funder, account], d)
}

/// CreateAccountAllowPrefund (13): [account, funder?], lamports, space, owner.
fn allow_prefund(
    account: Pubkey,
    funder: Option<Pubkey>,
    lamports: u64,
) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let d = sys(13, &[&lamports.to_le_bytes(), &8u64.to_le_bytes(), &OWNER]);
    let mut accounts = vec![account];
    accounts.extend(funder);
    (SYSTEM_PROGRAM_ID, accounts, d)
}

/// CreateAccountWithSeed (3): [funder, account, base], base, seed, lamports, space, owner.
fn create_with_seed(funder: Pubkey, base: Pubkey, lamports: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let d = sys(
        3,
        &[
            &base,
            &seed("vault"),
            &lamports.to_le_bytes(),
            &0u64.to_le_bytes(),
            &OWNER,
        ],
    );
    (SYSTEM_PROGRAM_ID, vec![funder, [0x44; 32], base], d)
}

/// AllocateWithSeed (9): [account, base], base, seed, space, owner.
fn allocate_with_seed(base: Pubkey) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    let d = sys(9, &[&base, &seed("vault"), &8u64.to_le_bytes(), &OWNER]);
    (SYSTEM_PROGRAM_ID, vec![[0x44; 32], base], d)
}

fn lamport_rule(extra: &str) -> String {
    format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\nmax_lamports_per_tx = \"1000\"\n{extra}\n")
}

fn refused_as_handover(d: &super::super::Decision, what: &str) {
    let den = d.denial.as_ref().expect("refused");
    assert_eq!(den.rule, UNPRICED_INSTRUCTION, "{}", den.reason);
    assert!(den.reason.contains(what), "{}", den.reason);
    assert!(den.reason.contains(&to_base58(&OWNER)), "{}", den.reason);
}

#[test]
fn every_system_instruction_that_gives_a_wallet_account_to_a_program_is_refused() {
    let p = lamport_rule("");
    // the wallet's own address, created for a program by someone else's lamports
    let d = run(
        &p,
        &tx(WALLET, &[create_account(FUNDER, WALLET, 1)]),
        &Totals::new(),
    );
    refused_as_handover(&d, "creates the wallet's own account");
    // SIMD-0312: the wallet's own funded account handed over, with or without a funder
    for funder in [None, Some(FUNDER), Some(WALLET)] {
        let d = run(
            &p,
            &tx(WALLET, &[allow_prefund(WALLET, funder, 1)]),
            &Totals::new(),
        );
        refused_as_handover(
            &d,
            "hands the wallet's own account, with the lamports it holds",
        );
    }
    // an account derived from the wallet: AllocateWithSeed assigns it too
    let d = run(
        &p,
        &tx(WALLET, &[allocate_with_seed(WALLET)]),
        &Totals::new(),
    );
    refused_as_handover(&d, "AllocateWithSeed");
    // also under a rule that caps nothing: a handover is never priced
    let uncapped = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\n");
    for ix in [
        allow_prefund(WALLET, None, 0),
        allocate_with_seed(WALLET),
        create_account(FUNDER, WALLET, 0),
    ] {
        assert_eq!(
            run(&uncapped, &tx(WALLET, &[ix]), &Totals::new())
                .denial
                .unwrap()
                .rule,
            UNPRICED_INSTRUCTION
        );
    }
}

#[test]
fn accounts_the_wallet_does_not_control_may_be_given_to_programs() {
    let p = lamport_rule("");
    // new accounts other than the wallet: CreateAccount refuses an account that holds
    // lamports, so nothing of the wallet's goes with them; only the funding is priced
    for ix in [
        create_account(WALLET, [0x44; 32], 1000),
        allow_prefund([0x44; 32], Some(WALLET), 1000),
        create_with_seed(WALLET, WALLET, 1000),
        allocate_with_seed(FUNDER),
    ] {
        let d = run(&p, &tx(WALLET, std::slice::from_ref(&ix)), &Totals::new());
        assert!(d.allowed(), "{ix:?}: {d:?}");
    }
    let d = run(
        &p,
        &tx(WALLET, &[create_with_seed(WALLET, WALLET, 1001)]),
        &Totals::new(),
    );
    assert!(d.denial.unwrap().reason.contains("max_lamports_per_tx"));
}

#[test]
fn a_listed_handover_still_counts_the_lamports_it_moves() {
    // the wallet funds its own CreateAccountAllowPrefund: listing the instruction lifts the
    // handover, not the cap on what it moves
    let p = lamport_rule("instructions = { system = [\"CreateAccountAllowPrefund\"] }");
    let ok = tx(WALLET, &[allow_prefund(WALLET, Some(WALLET), 1000)]);
    let d = run(&p, &ok, &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.spend[0].1, U256::from(1000));
    let over = tx(WALLET, &[allow_prefund(WALLET, Some(WALLET), 1001)]);
    let den = run(&p, &over, &Totals::new()).denial.unwrap();
    assert_eq!(den.rule, "s");
    assert!(den.reason.contains("max_lamports_per_tx"), "{}", den.reason);
    // CreateAccount and CreateAccountWithSeed are named the same way
    for (name, ix) in [
        ("CreateAccount", create_account(FUNDER, WALLET, 0)),
        ("AllocateWithSeed", allocate_with_seed(WALLET)),
    ] {
        let p = lamport_rule(&format!("instructions = {{ system = [\"{name}\"] }}"));
        assert!(
            run(&p, &tx(WALLET, &[ix]), &Totals::new()).allowed(),
            "{name}"
        );
    }
}

// --- durable nonces ---

/// AdvanceNonceAccount (4): [nonce, recent blockhashes sysvar, authority].
fn advance_nonce(authority: Pubkey) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    (
        SYSTEM_PROGRAM_ID,
        vec![[0x77; 32], [0x78; 32], authority],
        sys(4, &[]),
    )
}

#[test]
fn durable_nonce_transactions_are_refused_under_a_capped_rule_unless_allowed() {
    let durable = tx(WALLET, &[advance_nonce(WALLET), transfer(1)]);
    let den = run(&lamport_rule(""), &durable, &Totals::new())
        .denial
        .unwrap();
    assert_eq!(den.rule, "s");
    assert!(
        den.reason.contains("solana.allow_durable_nonce"),
        "{}",
        den.reason
    );
    // whoever the nonce authority is: the wallet's signature is what lasts
    let theirs = tx(WALLET, &[advance_nonce(FUNDER), transfer(1)]);
    assert_eq!(
        run(&lamport_rule(""), &theirs, &Totals::new())
            .denial
            .unwrap()
            .rule,
        "s"
    );
    // trailing bytes after the tag still make the runtime treat it as durable
    let mut ix = advance_nonce(WALLET);
    ix.2.extend_from_slice(&[9, 9]);
    let d = run(
        &lamport_rule(""),
        &tx(WALLET, &[ix, transfer(1)]),
        &Totals::new(),
    );
    assert!(d.denial.unwrap().reason.contains("durable nonce"));
    // explicitly allowed
    let p = lamport_rule("allow_durable_nonce = true");
    assert!(run(&p, &durable, &Totals::new()).allowed());
    // AdvanceNonceAccount anywhere but first does not make the transaction durable
    let later = tx(WALLET, &[transfer(1), advance_nonce(WALLET)]);
    assert!(run(&lamport_rule(""), &later, &Totals::new()).allowed());
    // a rule that caps nothing allows it by default, and may refuse it
    let uncapped = format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\n");
    assert!(run(&uncapped, &durable, &Totals::new()).allowed());
    let p = format!("{uncapped}allow_durable_nonce = false\n");
    assert_eq!(run(&p, &durable, &Totals::new()).denial.unwrap().rule, "s");
}

// --- the priority fee at the runtime's limit ---

fn fee_rule(max: &str) -> String {
    format!("[[rule]]\nid = \"s\"\n[rule.solana]\n{ALL}\nmax_priority_fee = \"{max}\"\n")
}

/// The largest fee `ixs` passes under: the fee itself, found by the cap's edge.
fn fee_edge(ixs: &[(Pubkey, Vec<Pubkey>, Vec<u8>)], fee: u64) {
    let s = tx(WALLET, ixs);
    let d = run(&fee_rule(&fee.to_string()), &s, &Totals::new());
    assert!(d.allowed(), "{fee}: {d:?}");
    if fee > 0 {
        let d = run(&fee_rule(&(fee - 1).to_string()), &s, &Totals::new());
        let den = d.denial.unwrap();
        assert_eq!(den.rule, "s");
        assert!(
            den.reason
                .contains(&format!("priority fee of {fee} lamports")),
            "{}",
            den.reason
        );
    }
}

fn price(micro_lamports: u64) -> (Pubkey, Vec<Pubkey>, Vec<u8>) {
    budget(3, &micro_lamports.to_le_bytes())
}

#[test]
fn a_price_without_a_limit_is_priced_at_the_runtimes_default_limit() {
    // Agave compute_budget_instruction_details.rs (`calculate_default_compute_unit_limit`,
    // `test_try_from_compute_unit_price`): the Compute Budget program is a builtin,
    // reserved 3,000 units per instruction when no limit is requested
    fee_edge(&[price(1_000_000)], 3_000);
    // 3,000 units × u64::MAX micro-lamports: 55,340,232,221,128,655 lamports, not 0
    let den = run(
        &fee_rule("0.001 sol"),
        &tx(WALLET, &[price(u64::MAX)]),
        &Totals::new(),
    )
    .denial
    .unwrap();
    assert_eq!(den.rule, "s");
    assert!(
        den.reason
            .contains("priority fee of 55340232221128655 lamports")
            && den.reason.contains("limit 3000, the runtime's default"),
        "{}",
        den.reason
    );
    // with a heap request (another Compute Budget instruction): 6,000 units
    fee_edge(
        &[price(1_000_000), budget(1, &(64u32 * 1024).to_le_bytes())],
        6_000,
    );
    // with a System transfer: the pre-SIMD-0170 rule's 200,000 beats 3,000 + 3,000
    fee_edge(&[price(1_000_000), transfer(1)], 200_000);
    // eight instructions of another program: 1,600,000 capped at 1,400,000
    let other = (UNKNOWN, vec![], vec![1]);
    let mut ixs = vec![price(1_000_000)];
    ixs.extend(std::iter::repeat_n(other, 8));
    let p = format!("[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"compute-budget\", \"{}\"]\nmax_priority_fee = \"1400000\"\ninstructions = {{ \"{}\" = [\"01\"] }}\n", to_base58(&UNKNOWN), to_base58(&UNKNOWN));
    assert!(run(&p, &tx(WALLET, &ixs), &Totals::new()).allowed());
    let p = p.replace("1400000", "1399999");
    assert!(run(&p, &tx(WALLET, &ixs), &Totals::new())
        .denial
        .unwrap()
        .reason
        .contains("1400000 lamports"));
}

#[test]
fn a_requested_limit_is_used_as_the_runtime_uses_it() {
    // requested: capped at 1,400,000 (`sanitize_and_convert_to_compute_budget_limits`)
    fee_edge(
        &[budget(2, &u32::MAX.to_le_bytes()), price(1_000_000)],
        1_400_000,
    );
    // the deprecated request: its units are the limit, its fee is added (older runtimes;
    // today's refuse the transaction)
    let mut units = 10_000u32.to_le_bytes().to_vec();
    units.extend(7u32.to_le_bytes());
    fee_edge(&[price(1_000_000), budget(0, &units)], 10_007);
    // an explicit limit of 0 is accepted by the runtime (the same test's "requested
    // compute unit limit Some((1, 0))") and `get_prioritization_fee(price, 0)` is 0: the
    // transaction can execute nothing, and pays no priority fee
    fee_edge(&[budget(2, &0u32.to_le_bytes()), price(u64::MAX)], 0);
    // rounding up: 333,333,334 × 3,000 / 10^6 = 1,000,000.002
    fee_edge(&[price(333_333_333)], 1_000_000);
    fee_edge(&[price(333_333_334)], 1_000_001);
}

#[test]
fn the_priority_fee_the_wallet_pays_counts_against_its_lamport_caps() {
    // no max_priority_fee: the fee is still lamports leaving the wallet
    let p = "[[rule]]\nid = \"s\"\n[rule.solana]\nprograms = [\"system\", \"compute-budget\"]\nmax_lamports_per_tx = \"3000\"\n[[rule.solana.spend]]\nwindow = \"1h\"\nmax = \"5000\"\n";
    // 3,000 units (the runtime's default for one Compute Budget instruction) × 10^6
    let at = tx(WALLET, &[price(1_000_000)]);
    let d = run(p, &at, &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.spend[0].0.asset, "lamports");
    assert_eq!(d.spend[0].1, U256::from(3_000));
    // with a transfer: 200,000 units × 10^6 = 200,000 lamports, plus the 1 sent
    let den = run(
        p,
        &tx(WALLET, &[price(1_000_000), transfer(1)]),
        &Totals::new(),
    )
    .denial
    .unwrap();
    assert_eq!(den.rule, "s");
    assert!(
        den.reason.starts_with("200001 lamports leaving the wallet"),
        "{}",
        den.reason
    );
    // and in the rolling window: 2,001 already counted, 3,000 more exceeds 5,000
    let q = run(p, &at, &Totals::new()).queries();
    let mut t = Totals::new();
    t.insert(q[0].clone(), U256::from(2_000));
    assert!(run(p, &at, &t).allowed());
    t.insert(q[0].clone(), U256::from(2_001));
    assert!(run(p, &at, &t).denial.unwrap().reason.contains("rolling"));
    // another fee payer pays it: nothing of the wallet's
    let d = run(p, &tx([8; 32], &[price(u64::MAX)]), &Totals::new());
    assert!(d.allowed(), "{d:?}");
    assert!(d.spend.is_empty());
}
