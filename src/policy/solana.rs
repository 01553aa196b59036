//! Solana transaction rules: program allowlist over top-level instructions, fee payer,
//! lamport and SPL token caps per transaction and rolling windows.
//!
//! Must never: price an instruction it cannot decode as zero when a cap depends on it.
//! A plain SPL `Transfer` (no mint in the bytes) is refused when the rule caps tokens.

use alloy_primitives::U256;

use super::rules::SolanaRule;
use super::{Cap, SpendKey};
use crate::chains::solana::{to_base58, KnownInstruction, ParsedTransaction, Pubkey};

const CHAIN: &str = "solana";

fn from_wallet(who: Option<Pubkey>, wallet: &Pubkey) -> bool {
    // an account from a lookup table could be the wallet: count it
    who.is_none_or(|w| w == *wallet)
}

/// `(chain, asset, amount)` the wallet sends in `tx`.
pub(super) fn spend(tx: &ParsedTransaction, wallet: &Pubkey) -> Vec<(String, String, U256)> {
    let mut out = Vec::new();
    for i in 0..tx.instructions().len() {
        match tx.decode_instruction(i) {
            KnownInstruction::SystemTransfer { from, lamports, .. }
            | KnownInstruction::SystemTransferWithSeed { from, lamports, .. }
                if from_wallet(from, wallet) =>
            {
                out.push((CHAIN.into(), "lamports".into(), U256::from(lamports)));
            }
            KnownInstruction::SplTransferChecked {
                mint: Some(mint),
                authority,
                amount,
                ..
            } if from_wallet(authority, wallet) => {
                out.push((
                    CHAIN.into(),
                    format!("spl:{}", to_base58(&mint)),
                    U256::from(amount),
                ));
            }
            _ => {}
        }
    }
    out
}

fn total(spend: &[(SpendKey, U256)], asset: &str) -> U256 {
    spend
        .iter()
        .filter(|(k, _)| k.asset == asset)
        .map(|(_, a)| *a)
        .fold(U256::ZERO, U256::saturating_add)
}

pub(super) fn check(
    rule: &SolanaRule,
    rule_id: &str,
    wallet_id: &str,
    tx: &ParsedTransaction,
    wallet: &Pubkey,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), String> {
    if rule.require_fee_payer && tx.fee_payer() != *wallet {
        return Err(format!(
            "the fee payer is {}, not this wallet (solana.require_fee_payer)",
            to_base58(&tx.fee_payer())
        ));
    }
    for i in 0..tx.instructions().len() {
        let Some(program) = tx.program_id(i) else {
            return Err(format!("instruction {i} names no program"));
        };
        if !rule.programs.contains(&program) {
            return Err(format!(
                "instruction {i} calls program {}, which is not in solana.programs",
                to_base58(&program)
            ));
        }
        if !rule.tokens.is_empty() {
            match tx.decode_instruction(i) {
                KnownInstruction::SplTransfer { authority, .. }
                    if from_wallet(authority, wallet) =>
                {
                    return Err(format!(
                        "instruction {i} is an SPL Transfer without its mint; use TransferChecked so token caps can apply"
                    ));
                }
                KnownInstruction::SplTransferChecked {
                    mint: None,
                    authority,
                    ..
                } if from_wallet(authority, wallet) => {
                    return Err(format!(
                        "instruction {i} loads its mint from a lookup table; token caps cannot apply"
                    ));
                }
                _ => {}
            }
        }
    }
    let lamports = total(spend, "lamports");
    if let Some(max) = rule.max_lamports_per_tx {
        if lamports > max {
            return Err(format!(
                "{lamports} lamports transferred exceeds solana.max_lamports_per_tx {max}"
            ));
        }
    }
    for (window_ms, limit) in &rule.spend {
        caps.push(Cap {
            rule: rule_id.into(),
            key: SpendKey {
                wallet: wallet_id.to_owned(),
                chain: CHAIN.into(),
                asset: "lamports".into(),
            },
            window_ms: *window_ms,
            limit: *limit,
            amount: lamports,
        });
    }
    for t in &rule.tokens {
        let asset = format!("spl:{}", to_base58(&t.mint));
        let amount = total(spend, &asset);
        if let Some(max) = t.max_per_tx {
            if amount > max {
                return Err(format!(
                    "{amount} of token {} exceeds solana.token.max_per_tx {max}",
                    to_base58(&t.mint)
                ));
            }
        }
        if let Some((window_ms, limit)) = t.window {
            caps.push(Cap {
                rule: rule_id.into(),
                key: SpendKey {
                    wallet: wallet_id.to_owned(),
                    chain: CHAIN.into(),
                    asset,
                },
                window_ms,
                limit,
                amount,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
        let p = "[[rule]]\nid = \"s\"\nsolana = { programs = [\"system\"], require_fee_payer = true }\n";
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
}
