//! System instructions that give a wallet account to a program, and durable nonces.

use super::*;

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

fn refused_as_handover(d: &crate::policy::Decision, what: &str) {
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
