//! Solana transaction rules: program allowlist over top-level instructions, fee payer,
//! durable nonces, lamport and SPL token caps per transaction and rolling windows, the
//! priority-fee cap, and per-program instruction allowlists.
//!
//! Must never: price an instruction it cannot decode as zero. Every instruction of the
//! System Program and the token programs is classified by what it does to the wallet:
//! moves lamports or tokens (priced), grants or changes authority over the wallet's
//! accounts (refused unless `solana.instructions` lists it), or inert; one instruction
//! may do more than one of these (`CreateAccountAllowPrefund` of the wallet, funded by
//! it). Approvals are spend: an SPL `Approve*` counts its amount like a transfer. What
//! cannot be priced is refused with [`UNPRICED_INSTRUCTION`]. The priority fee is priced
//! with the limit the runtime would set ([`runtime::default_compute_unit_limit`]).

use alloy_primitives::U256;

use super::rules::SolanaRule;
use super::{Cap, Refuse, SpendKey, UNPRICED_INSTRUCTION};
use crate::chains::solana::runtime::{self, MAX_COMPUTE_UNIT_LIMIT};
use crate::chains::solana::{
    instruction_name, to_base58, Acct, ComputeBudgetInstruction, Instruction, ParsedTransaction,
    Pubkey, SystemInstruction, TokenInstruction,
};

const CHAIN: &str = "solana";

/// Approvals at or above 2^63 are "unlimited": wallets send `u64::MAX`, and nothing that
/// large is a deliberate finite amount.
fn unlimited(amount: u64) -> bool {
    amount >= 1 << 63
}

fn is_wallet(who: Acct, wallet: &Pubkey) -> bool {
    // an account from a lookup table could be the wallet: count it
    who.is_none_or(|w| w == *wallet)
}

/// What one instruction does to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    /// Lamports leave the wallet (or an account only the wallet controls).
    Lamports(u64),
    /// Tokens leave, or a delegate may take them (`approval`); `mint` is `None` when the
    /// instruction does not name it (or names it through a lookup table).
    Tokens {
        mint: Option<Pubkey>,
        amount: u64,
        approval: bool,
    },
    /// Compute budget: priced by `max_priority_fee`.
    Budget(ComputeBudgetInstruction),
    /// Moves nothing of the wallet's.
    Inert,
    /// Hands over an account or authority, or cannot be priced: refused unless the rule
    /// lists it in `solana.instructions`. The text says what it does.
    Restricted(String),
    /// A program this engine does not decode.
    Foreign,
}

/// What one instruction does to the wallet: its effects, none when it touches nothing of
/// the wallet's.
fn effects(ix: &Instruction, wallet: &Pubkey) -> Vec<Effect> {
    use TokenInstruction as T;
    let restricted = |who: bool, what: String| {
        if who {
            Effect::Restricted(what)
        } else {
            Effect::Inert
        }
    };
    let one = match ix {
        Instruction::System(s) => return system_effects(s, wallet),
        Instruction::Token {
            ix,
            authority,
            signers,
            ..
        } => {
            // a multisig owner is the wallet's when the wallet is one of its signers
            let by_wallet =
                is_wallet(*authority, wallet) || signers.iter().any(|s| is_wallet(*s, wallet));
            let tokens = |mint: Option<Pubkey>, amount: u64, approval: bool| {
                if by_wallet {
                    Effect::Tokens {
                        mint,
                        amount,
                        approval,
                    }
                } else {
                    Effect::Inert
                }
            };
            match ix {
                T::Transfer { amount, .. } => tokens(None, *amount, false),
                T::TransferChecked { mint, amount, .. }
                | T::TransferCheckedWithFee { mint, amount, .. }
                | T::Burn { mint, amount, .. } => tokens(*mint, *amount, false),
                T::Approve { amount, .. } => tokens(None, *amount, true),
                T::ApproveChecked { mint, amount, .. } => tokens(*mint, *amount, true),
                T::SetAuthority {
                    new_authority,
                    authority_type,
                    ..
                } => restricted(
                    by_wallet,
                    format!(
                        "changes authority type {authority_type} to {}",
                        new_authority.map_or("none".into(), |a| to_base58(&a))
                    ),
                ),
                T::CloseAccount { destination, .. } => restricted(
                    by_wallet,
                    format!(
                        "closes a token account, its lamports going to {}",
                        destination.map_or("a lookup-table account".into(), |a| to_base58(&a))
                    ),
                ),
                T::FreezeOrThaw { .. } => {
                    restricted(by_wallet, "uses the mint's freeze authority".into())
                }
                T::MintTo { .. } => restricted(by_wallet, "uses the mint authority".into()),
                T::Extension { tag, sub } => Effect::Restricted(format!(
                    "is Token-2022 extension instruction {tag}{}, which is not priced",
                    sub.map_or(String::new(), |s| format!("/{s}"))
                )),
                T::Revoke { .. }
                | T::Initialize { .. }
                | T::SyncNative { .. }
                | T::ReadOnly { .. }
                | T::HarvestWithheldTokensToMint => Effect::Inert,
            }
        }
        Instruction::ComputeBudget(c) => Effect::Budget(*c),
        Instruction::AssociatedToken(_) | Instruction::Memo => Effect::Inert,
        Instruction::Undecoded { reason, .. } => {
            Effect::Restricted(format!("does not decode ({reason})"))
        }
        Instruction::Other { .. } => Effect::Foreign,
    };
    vec![one]
}

/// A System instruction's effects. Every instruction that gives an account to a program
/// (`Assign*`, `Allocate*` — `AllocateWithSeed` assigns too — and `CreateAccount*`) is
/// Allocate + Assign of that account, refused when the account is one the wallet
/// controls: its own address, or an address derived from it with a seed (the wallet signs
/// for those as their base, and they may hold its lamports). `CreateAccount` and
/// `CreateAccountWithSeed` refuse an account that already holds lamports (Agave
/// `programs/system/src/system_processor.rs`, `create_account`: "already in use"), so of
/// the accounts they create only the wallet's own address is the wallet's; SIMD-0312's
/// `CreateAccountAllowPrefund` drops that check, and hands over what the account holds.
fn system_effects(s: &SystemInstruction, wallet: &Pubkey) -> Vec<Effect> {
    use SystemInstruction as S;
    let mut out = Vec::new();
    let lamports = |who: Acct, amount: u64, out: &mut Vec<Effect>| {
        if is_wallet(who, wallet) {
            out.push(Effect::Lamports(amount));
        }
    };
    let own = |account: Acct| is_wallet(account, wallet);
    let hand_over = |what: &str, owner: &Pubkey, after: &str| {
        Effect::Restricted(format!("{what} program {}{after}", to_base58(owner)))
    };
    match s {
        S::Transfer {
            from, lamports: l, ..
        } => lamports(*from, *l, &mut out),
        S::CreateAccount {
            funder,
            account,
            lamports: l,
            owner,
            ..
        }
        | S::CreateAccountWithSeed {
            funder,
            account,
            lamports: l,
            owner,
            ..
        } => {
            lamports(*funder, *l, &mut out);
            if own(*account) {
                out.push(hand_over(
                    "creates the wallet's own account for",
                    owner,
                    ": what is sent to the wallet afterwards would be that program's",
                ));
            }
        }
        S::CreateAccountAllowPrefund {
            account,
            funder,
            lamports: l,
            owner,
            ..
        } => {
            if let Some(funder) = funder {
                lamports(*funder, *l, &mut out);
            }
            if own(*account) {
                out.push(hand_over(
                    "hands the wallet's own account, with the lamports it holds, to",
                    owner,
                    "",
                ));
            }
        }
        // the derived account is the base's: the base signs for it
        S::TransferWithSeed {
            base, lamports: l, ..
        } => lamports(*base, *l, &mut out),
        S::WithdrawNonceAccount {
            authority,
            lamports: l,
            ..
        } => lamports(*authority, *l, &mut out),
        S::Assign { account, owner } if own(*account) => {
            out.push(hand_over("hands the wallet's own account to", owner, ""));
        }
        S::AssignWithSeed { base, owner, .. } | S::AllocateWithSeed { base, owner, .. }
            if base == wallet =>
        {
            out.push(hand_over(
                "hands an account derived from the wallet, with the lamports it holds, to",
                owner,
                "",
            ));
        }
        S::AuthorizeNonceAccount {
            authority,
            new_authority,
            ..
        } if is_wallet(*authority, wallet) => out.push(Effect::Restricted(format!(
            "gives a nonce account to {}",
            to_base58(new_authority)
        ))),
        // allocating data in the wallet's own account leaves it unable to pay fees or
        // send lamports; in another account it is harmless
        S::Allocate { account, .. } if own(*account) => out.push(Effect::Restricted(
            "allocates data in the wallet's own account".into(),
        )),
        S::Assign { .. }
        | S::AssignWithSeed { .. }
        | S::AllocateWithSeed { .. }
        | S::AuthorizeNonceAccount { .. }
        | S::Allocate { .. }
        | S::AdvanceNonceAccount { .. }
        | S::InitializeNonceAccount { .. }
        | S::UpgradeNonceAccount { .. } => {}
    }
    out
}

/// `(chain, asset, amount)` the wallet sends or approves in `tx`. Unlimited approvals
/// are not counted: they are refused, or allowed explicitly and then exempt from caps.
/// The priority fee is lamports leaving the wallet when the wallet is the fee payer: it
/// counts against the lamport caps too (the base fee, 5,000 lamports a signature, does
/// not).
pub(super) fn spend(tx: &ParsedTransaction, wallet: &Pubkey) -> Vec<(String, String, U256)> {
    let mut out = Vec::new();
    let mut budget = Vec::new();
    for i in 0..tx.instructions().len() {
        for e in effects(&tx.decode_instruction(i), wallet) {
            match e {
                Effect::Lamports(l) => out.push((CHAIN.into(), "lamports".into(), U256::from(l))),
                Effect::Budget(c) => budget.push(c),
                Effect::Tokens {
                    mint: Some(mint),
                    amount,
                    approval,
                } if !(approval && unlimited(amount)) => {
                    out.push((CHAIN.into(), spl_key(&mint), U256::from(amount)));
                }
                _ => {}
            }
        }
    }
    if tx.fee_payer() == *wallet {
        let fee = priority_fee(tx, &budget).lamports;
        out.push((CHAIN.into(), "lamports".into(), fee));
    }
    out
}

fn spl_key(mint: &Pubkey) -> String {
    format!("spl:{}", to_base58(mint))
}

fn total(spend: &[(SpendKey, U256)], asset: &str) -> U256 {
    spend
        .iter()
        .filter(|(k, _)| k.asset == asset)
        .map(|(_, a)| *a)
        .fold(U256::ZERO, U256::saturating_add)
}

/// The hex of an instruction's leading data bytes, for refusal messages.
fn data_prefix(tx: &ParsedTransaction, i: usize) -> String {
    let data = &tx.instructions()[i].data;
    hex::encode(&data[..data.len().min(8)])
}

fn listed(rule: &SolanaRule, program: &Pubkey, data: &[u8]) -> Option<bool> {
    rule.instructions
        .iter()
        .find(|(p, _)| p == program)
        .map(|(_, prefixes)| prefixes.iter().any(|d| data.starts_with(d)))
}

/// The priority fee in lamports and how it was reached: `ceil(price × limit / 10^6)`
/// (Agave `compute_budget_limits.rs`, `get_prioritization_fee`) plus the deprecated
/// request's flat fee. The limit is the requested one, capped at 1,400,000, or the
/// runtime's default for these instructions when none is requested. Duplicate requests
/// make the runtime refuse the transaction; the largest of each is taken here.
fn priority_fee(tx: &ParsedTransaction, budget: &[ComputeBudgetInstruction]) -> PriorityFee {
    let mut price: u64 = 0;
    let mut limit: Option<u64> = None;
    let mut flat: u64 = 0;
    for c in budget {
        match *c {
            ComputeBudgetInstruction::SetComputeUnitPrice(p) => price = price.max(p),
            ComputeBudgetInstruction::SetComputeUnitLimit(l) => {
                limit = Some(limit.unwrap_or(0).max(u64::from(l)));
            }
            // refused by today's runtimes; older ones took `units` as the limit and
            // charged `additional_fee` on top
            ComputeBudgetInstruction::RequestUnitsDeprecated {
                units,
                additional_fee,
            } => {
                limit = Some(limit.unwrap_or(0).max(u64::from(units)));
                flat = flat.max(u64::from(additional_fee));
            }
            ComputeBudgetInstruction::RequestHeapFrame(_)
            | ComputeBudgetInstruction::SetLoadedAccountsDataSizeLimit(_) => {}
        }
    }
    let requested = limit.is_some();
    let limit = limit
        .unwrap_or_else(|| {
            runtime::default_compute_unit_limit(
                (0..tx.instructions().len()).filter_map(|i| tx.program_id(i)),
            )
        })
        .min(MAX_COMPUTE_UNIT_LIMIT);
    let micro = u128::from(price) * u128::from(limit);
    PriorityFee {
        lamports: U256::from(micro.div_ceil(1_000_000)) + U256::from(flat),
        price,
        limit,
        requested,
    }
}

struct PriorityFee {
    lamports: U256,
    price: u64,
    limit: u64,
    requested: bool,
}

pub(super) fn check(
    rule: &SolanaRule,
    rule_id: &str,
    wallet_id: &str,
    tx: &ParsedTransaction,
    wallet: &Pubkey,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    if rule.require_fee_payer && tx.fee_payer() != *wallet {
        return Err(format!(
            "the fee payer is {}, not this wallet (solana.require_fee_payer)",
            to_base58(&tx.fee_payer())
        )
        .into());
    }
    if tx.message().uses_durable_nonce() && !rule.allow_durable_nonce {
        return Err(
            "the transaction uses a durable nonce (its first instruction is System AdvanceNonceAccount): its signature stays valid until the nonce is advanced, past rolling windows, policy changes and locks; refused unless solana.allow_durable_nonce is true"
                .into(),
        );
    }
    let mut budget = Vec::new();
    for i in 0..tx.instructions().len() {
        let Some(program) = tx.program_id(i) else {
            return Err(format!("instruction {i} names no program").into());
        };
        let p58 = to_base58(&program);
        if !rule.programs.contains(&program) {
            return Err(format!(
                "instruction {i} calls program {p58}, which is not in solana.programs"
            )
            .into());
        }
        let ix = tx.decode_instruction(i);
        let data = &tx.instructions()[i].data;
        let unpriced = |what: String| {
            Refuse::builtin(
                UNPRICED_INSTRUCTION,
                format!(
                    "instruction {i} ({} of program {p58}, data 0x{}) {what}; it is refused unless solana.instructions lists it for this program",
                    instruction_name(&ix),
                    data_prefix(tx, i)
                ),
            )
        };
        for e in effects(&ix, wallet) {
            match e {
                Effect::Restricted(what) => {
                    if listed(rule, &program, data) != Some(true) {
                        return Err(unpriced(what));
                    }
                }
                Effect::Foreign => match listed(rule, &program, data) {
                    Some(true) => {}
                    Some(false) => {
                        return Err(unpriced("is not in solana.instructions".into()));
                    }
                    // an unknown program signed for by the wallet can move its lamports and
                    // tokens itself (CPI), past every cap: only a rule that caps nothing may
                    // trust it wholesale
                    None if rule.caps_anything() => {
                        return Err(unpriced(
                            "cannot be priced, and this rule caps lamports, tokens or fees".into(),
                        ));
                    }
                    None => {}
                },
                Effect::Tokens {
                    mint: None,
                    amount,
                    approval,
                } if !rule.tokens.is_empty() => {
                    let _ = (amount, approval);
                    return Err(Refuse::builtin(
                        UNPRICED_INSTRUCTION,
                        format!(
                            "instruction {i} ({} of program {p58}) moves or approves tokens without naming its mint in the transaction's own keys; token caps cannot apply (use TransferChecked / ApproveChecked with the mint as a static account)",
                            instruction_name(&ix)
                        ),
                    ));
                }
                Effect::Tokens {
                    mint,
                    amount,
                    approval: true,
                } if unlimited(amount) => {
                    let allowed = mint.is_some_and(|m| {
                        rule.tokens
                            .iter()
                            .any(|t| t.mint == m && t.unlimited_approval)
                    });
                    if !allowed {
                        return Err(format!(
                            "instruction {i} approves an unlimited amount ({amount}) of mint {}; refused unless solana.token.unlimited_approval is true for it",
                            mint.map_or("(not named)".into(), |m| to_base58(&m))
                        )
                        .into());
                    }
                }
                Effect::Budget(c) => budget.push(c),
                Effect::Lamports(_) | Effect::Tokens { .. } | Effect::Inert => {}
            }
        }
    }
    if let Some(max) = rule.max_priority_fee {
        let fee = priority_fee(tx, &budget);
        if fee.lamports > max {
            return Err(format!(
                "priority fee of {} lamports (compute unit price {} micro-lamports × limit {}{}) exceeds solana.max_priority_fee {max}",
                fee.lamports,
                fee.price,
                fee.limit,
                if fee.requested {
                    ""
                } else {
                    ", the runtime's default for these instructions"
                }
            )
            .into());
        }
    }
    let lamports = total(spend, "lamports");
    if let Some(max) = rule.max_lamports_per_tx {
        if lamports > max {
            return Err(format!(
                "{lamports} lamports leaving the wallet (what it sends, and the priority fee when it pays the fees) exceeds solana.max_lamports_per_tx {max}"
            )
            .into());
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
        let asset = spl_key(&t.mint);
        let amount = total(spend, &asset);
        if let Some(max) = t.max_per_tx {
            if amount > max {
                return Err(format!(
                    "{amount} of token {} sent or approved exceeds solana.token.max_per_tx {max}",
                    to_base58(&t.mint)
                )
                .into());
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
mod tests;
