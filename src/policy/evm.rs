//! EVM transaction rules: chain ids, recipients, selectors, contract creation, value,
//! gas and fee caps, ERC-20 / Permit2 / NFT transfers and approvals, rolling caps on
//! `value` and tokens.
//!
//! Must never: treat call data it cannot decode as harmless, or judge a wrapper by its
//! name. Wrappers (multicalls, account `execute`) are judged by the calls they make
//! (`calls`). A known selector whose arguments do not decode is refused. Under a rule
//! that caps value or tokens every call is priced or refused with [`UNPRICED_CALL`]
//! (unknown call data, NFT transfers, tokens without an `[[evm.token]]` entry), unless
//! `evm.selectors` lists it for that contract; elsewhere the same holds at a capped
//! token and at Permit2. Approvals are spend: an allowance counts against the same caps
//! as a transfer of that amount, and one no cap bounds (NFT operator approvals
//! included) needs the spender allowlisted or `unlimited_approval`.

use alloy_primitives::{Address, U256};

use super::rules::{EvmRule, Token};
use super::{Cap, Refuse, SpendKey, UNPRICED_CALL};
use crate::chains::evm::{UnsignedTx, PERMIT2};

mod calls;

use calls::Effect;

/// Approvals with the top bit of their width set are "unlimited": wallets send the
/// type's maximum (`uint256` for tokens, `uint160` for Permit2), and nothing that large is
/// a deliberate finite amount.
pub(super) fn unlimited(amount: U256, bits: usize) -> bool {
    amount.bit(bits - 1) || amount.bit(255)
}

fn chain_key(tx: &UnsignedTx) -> String {
    format!("eip155:{}", tx.chain_id())
}

fn erc20_key(contract: Address) -> String {
    format!("erc20:{contract:#x}")
}

/// One token movement or allowance a call makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Movement {
    /// The token contract.
    pub(super) token: Address,
    /// Amount moved or allowed.
    pub(super) amount: U256,
    /// The recipient or spender (checked against `to_allow` / `to_deny`).
    pub(super) party: Address,
    /// An allowance rather than a transfer.
    pub(super) approval: bool,
    /// An allowance at the type's maximum.
    pub(super) unlimited: bool,
}

impl Movement {
    /// What it adds to the token's spend counter: nothing for an unlimited approval,
    /// which is refused or else explicitly exempt.
    pub(super) fn counted(&self) -> U256 {
        if self.unlimited {
            U256::ZERO
        } else {
            self.amount
        }
    }
}

/// `(chain, asset, amount)` moved out or approved by `tx`: its `value` and what wrapped
/// calls send from the account, and ERC-20 / Permit2 transfers and allowances, wrapped
/// calls' included.
pub(super) fn spend(tx: &UnsignedTx) -> Vec<(String, String, U256)> {
    let Some(to) = tx.to() else {
        return vec![(chain_key(tx), "native".to_owned(), tx.value())];
    };
    let Ok(found) = calls::calls(to, tx.value(), tx.data()) else {
        // refused by `check`
        return vec![(chain_key(tx), "native".to_owned(), tx.value())];
    };
    let mut out = vec![(chain_key(tx), "native".to_owned(), found.native)];
    for (_, m) in found.movements() {
        out.push((chain_key(tx), erc20_key(m.token), m.counted()));
    }
    out
}

fn token_for(rule: &EvmRule, contract: Address, chain: u64) -> Option<&Token> {
    rule.tokens
        .iter()
        .find(|t| t.contract == contract && t.chain_id.is_none_or(|c| c == chain))
}

fn spent(spend: &[(SpendKey, U256)], chain: &str, asset: &str) -> U256 {
    spend
        .iter()
        .filter(|(k, _)| k.chain == chain && k.asset == asset)
        .map(|(_, a)| *a)
        .fold(U256::ZERO, U256::saturating_add)
}

fn selector_listed(rule: &EvmRule, to: Address, sel: [u8; 4]) -> bool {
    rule.selectors
        .iter()
        .filter(|(t, _)| t.is_none_or(|t| t == to))
        .any(|(_, sels)| sels.contains(&sel))
}

/// Checks `tx` against `rule`; pushes the rolling caps it must also fit under.
pub(super) fn check(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    let chain = tx.chain_id();
    if !rule.chain_ids.is_empty() && !rule.chain_ids.contains(&chain) {
        return Err(format!(
            "chain id {chain} is not in evm.chain_ids {:?}",
            rule.chain_ids
        )
        .into());
    }
    let Some(to) = tx.to() else {
        if !rule.contract_creation {
            return Err("contract creation is refused (evm.contract_creation is false)".into());
        }
        return check_amounts(rule, rule_id, wallet, tx, tx.value(), &[], spend, caps);
    };
    check_party(rule, to, "recipient")?;
    let data = tx.data();
    if !rule.selectors.is_empty() && !data.is_empty() {
        let Some(sel) = tx.selector() else {
            return Err(format!("call data of {} bytes has no 4-byte selector", data.len()).into());
        };
        if !selector_listed(rule, to, sel) {
            return Err(format!(
                "function selector 0x{} is not allowed for {to:#x} (evm.selectors)",
                hex::encode(sel)
            )
            .into());
        }
    }
    let found =
        calls::calls(to, tx.value(), data).map_err(|r| Refuse::builtin(UNPRICED_CALL, r))?;
    let capped = rule.caps_anything();
    for leaf in &found.leaves {
        let listed = leaf
            .selector
            .is_some_and(|s| selector_listed(rule, leaf.to, s));
        if leaf.wrapped {
            check_party(
                rule,
                leaf.to,
                if leaf.data_len == 0 {
                    "recipient"
                } else {
                    "wrapped call target"
                },
            )?;
            if !rule.selectors.is_empty() && leaf.data_len > 0 && !listed {
                return Err(format!(
                    "wrapped call to {:#x} with {} is not allowed (evm.selectors)",
                    leaf.to,
                    what(leaf)
                )
                .into());
            }
        }
        match &leaf.effect {
            Effect::Plain => {}
            Effect::Unknown => {
                // a capping rule prices everything or refuses it; elsewhere a capped
                // token and Permit2 can still move the wallet's tokens through any function
                let guarded =
                    capped || leaf.to == PERMIT2 || token_for(rule, leaf.to, chain).is_some();
                if guarded && !listed {
                    let whom = if leaf.to == PERMIT2 {
                        "Permit2"
                    } else if token_for(rule, leaf.to, chain).is_some() {
                        "a token with an evm.token cap"
                    } else {
                        "under a rule that caps value or tokens"
                    };
                    return Err(Refuse::builtin(
                        UNPRICED_CALL,
                        format!(
                            "{}call to {:#x} ({whom}) with {} cannot be priced; it is refused unless evm.selectors lists it for that contract",
                            if leaf.wrapped { "wrapped " } else { "" },
                            leaf.to,
                            what(leaf)
                        ),
                    ));
                }
            }
            Effect::NftTransfer(recipient) => {
                check_party(rule, *recipient, "recipient")?;
                if capped && !listed {
                    return Err(Refuse::builtin(
                        UNPRICED_CALL,
                        format!(
                            "ERC-721 / ERC-1155 transfer at {:#x} ({}) to {recipient:#x} cannot be priced under a rule that caps value or tokens; it is refused unless evm.selectors lists it for that contract",
                            leaf.to,
                            what(leaf)
                        ),
                    ));
                }
            }
            Effect::Moves(moves) => {
                for m in moves {
                    check_movement(Some(rule), chain, m, listed)?;
                }
            }
        }
    }
    let moves: Vec<Movement> = found.movements().map(|(_, m)| m.clone()).collect();
    check_amounts(rule, rule_id, wallet, tx, found.native, &moves, spend, caps)
}

fn what(leaf: &calls::Leaf) -> String {
    leaf.selector.map_or_else(
        || format!("{} bytes of call data without a selector", leaf.data_len),
        |s| format!("selector 0x{}", hex::encode(s)),
    )
}

/// One decoded transfer or allowance (of a transaction or a typed-data message) on
/// `chain`, against `rule` (absent for a typed-data rule without an `evm` section):
/// the address lists; unlimited allowances; allowances no cap bounds; and, under a rule
/// that caps value or tokens, tokens without an `[[evm.token]]` entry (unless the call's
/// selector is `listed` in `evm.selectors`, the operator's explicit unpriced opt-out).
pub(super) fn check_movement(
    rule: Option<&EvmRule>,
    chain: u64,
    m: &Movement,
    listed: bool,
) -> Result<(), Refuse> {
    if let Some(rule) = rule {
        check_party(
            rule,
            m.party,
            if m.approval { "spender" } else { "recipient" },
        )?;
    }
    let entry = rule.and_then(|r| token_for(r, m.token, chain));
    let exempt = entry.is_some_and(|t| t.unlimited_approval);
    if m.approval && m.unlimited && !exempt {
        return Err(format!(
            "unlimited allowance of token {:#x} to {:#x} is refused (evm.token.unlimited_approval)",
            m.token, m.party
        )
        .into());
    }
    // an allowance that no cap bounds is as good as unlimited, whatever its size (2^255 - 1
    // is under the "unlimited" bit): it needs the spender on an allowlist, or the
    // operator's explicit unlimited_approval
    let bounded = entry.is_some_and(|t| t.max_per_tx.is_some() || t.window.is_some());
    let allowlisted = rule.is_some_and(|r| !r.to_allow.is_empty());
    if m.approval && !m.unlimited && !m.amount.is_zero() && !bounded && !exempt && !allowlisted {
        return Err(format!(
            "allowance of {} of token {:#x} to {:#x} is bounded by no cap (no evm.token max_per_tx or window for it on chain {chain}); refused unless the spender is in evm.to_allow or evm.token.unlimited_approval is true",
            m.amount, m.token, m.party
        )
        .into());
    }
    if rule.is_some_and(EvmRule::caps_anything) && entry.is_none() && !listed {
        return Err(Refuse::builtin(
            UNPRICED_CALL,
            format!(
                "{} of token {:#x} cannot be priced: it has no evm.token entry for chain {chain}, and this rule caps value or tokens",
                if m.approval { "allowance" } else { "transfer" },
                m.token
            ),
        ));
    }
    Ok(())
}

/// `to_deny` / `to_allow` for the transaction's `to` and for every decoded recipient and
/// spender.
fn check_party(rule: &EvmRule, who: Address, role: &str) -> Result<(), Refuse> {
    if rule.to_deny.contains(&who) {
        return Err(format!("{role} {who:#x} is in evm.to_deny").into());
    }
    if !rule.to_allow.is_empty() && !rule.to_allow.contains(&who) {
        return Err(format!("{role} {who:#x} is not in evm.to_allow").into());
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one call site; the values are the check's"
)]
fn check_amounts(
    rule: &EvmRule,
    rule_id: &str,
    wallet: &str,
    tx: &UnsignedTx,
    value: U256,
    moves: &[Movement],
    spend: &[(SpendKey, U256)],
    caps: &mut Vec<Cap>,
) -> Result<(), Refuse> {
    let chain = tx.chain_id();
    // a cap for this exact chain wins over "*"
    let cap = rule
        .max_value
        .iter()
        .find(|(c, _)| *c == Some(chain))
        .or_else(|| rule.max_value.iter().find(|(c, _)| c.is_none()));
    if let Some((_, max)) = cap {
        if value > *max {
            return Err(format!(
                "value {value} wei exceeds evm.max_value {max} wei for chain {chain}"
            )
            .into());
        }
    }
    if let Some(max) = rule.max_gas_limit {
        if tx.gas_limit() > max {
            return Err(format!(
                "gas limit {} exceeds evm.max_gas_limit {max}",
                tx.gas_limit()
            )
            .into());
        }
    }
    if let Some(max) = rule.max_fee_per_gas {
        let fee = U256::from(tx.max_fee_per_gas());
        if fee > max {
            return Err(
                format!("fee per gas {fee} wei exceeds evm.max_fee_per_gas {max} wei").into(),
            );
        }
    }
    let ck = chain_key(tx);
    for (c, window_ms, limit) in &rule.spend {
        if *c == chain {
            caps.push(Cap {
                rule: rule_id.to_owned(),
                key: SpendKey {
                    wallet: wallet.to_owned(),
                    chain: ck.clone(),
                    asset: "native".into(),
                },
                window_ms: *window_ms,
                limit: *limit,
                amount: spent(spend, &ck, "native"),
            });
        }
    }
    let mut seen: Vec<Address> = Vec::new();
    for m in moves {
        if seen.contains(&m.token) {
            continue;
        }
        seen.push(m.token);
        let Some(token) = token_for(rule, m.token, chain) else {
            continue;
        };
        let asset = erc20_key(m.token);
        // every transfer and allowance of this token in the transaction, together
        let amount = spent(spend, &ck, &asset);
        if let Some(max) = token.max_per_tx {
            if amount > max {
                return Err(format!(
                    "ERC-20 amount {amount} of token {:#x} (transfers and allowances) exceeds evm.token.max_per_tx {max}",
                    m.token
                )
                .into());
            }
        }
        if let Some((window_ms, limit)) = token.window {
            caps.push(Cap {
                rule: rule_id.to_owned(),
                amount,
                key: SpendKey {
                    wallet: wallet.to_owned(),
                    chain: ck.clone(),
                    asset,
                },
                window_ms,
                limit,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
