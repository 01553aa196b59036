//! EIP-7702 delegations: which contracts an account may hand its code to.
//!
//! An authorization is the most powerful signature an EOA gives: once included on
//! chain, the delegate's code runs as the account, with every asset in it. So it is
//! allowlisted, per chain, by `[rule.evm.delegations]`, standalone
//! (`evm.authorization`) or as a tuple of a type-4 transaction; and refused by the
//! built-in [`DELEGATION`] when no covering rule writes that table at all (also with
//! no `[policy]`).
//!
//! Semantics: a tuple for chain `c` is allowed when its delegate is in the list for
//! `"c"`, or, when there is none, in the list for `"*"`. A tuple for chain 0 is valid on
//! every chain: it is refused unless `allow_any_chain`, and then its delegate must be
//! allowed on every chain (in `"*"` and in every per-chain list). The zero address
//! revokes a delegation: `allow_revocation` (default true) decides it, whatever the
//! lists say. A rule's `evm.chain_ids` bounds the tuples' chains too, and its
//! `evm.to_deny` refuses a delegate whatever the lists say.
//!
//! Must never: allow a delegate by partial match, or treat an absent table as "any".

use std::collections::BTreeMap;

use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};

use super::rules::{err, EvmRule, PolicyError};
use super::Refuse;

/// Built-in rule refusing an EIP-7702 authorization no covering rule's
/// `evm.delegations` judges.
pub const DELEGATION: &str = "builtin.delegation";

fn yes() -> bool {
    true
}

/// `[rule.evm.delegations]`: delegate contracts per chain id (`"1" = ["0x…"]`,
/// `"*" = […]`) and two switches.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DelegationsConfig {
    /// Authorizations with chain id 0 (valid on every chain). Default false.
    #[serde(default)]
    pub allow_any_chain: bool,
    /// Authorizations to the zero address (revoking a delegation). Default true.
    #[serde(default = "yes")]
    pub allow_revocation: bool,
    /// Delegate allowlists per chain id, `"*"` = chains without their own list.
    #[serde(flatten)]
    pub chains: BTreeMap<String, Vec<String>>,
}

/// The compiled table.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delegations {
    any_chain: bool,
    revocation: bool,
    /// The `"*"` list (empty when absent).
    star: Vec<Address>,
    /// Per-chain lists.
    chains: Vec<(u64, Vec<Address>)>,
}

/// Compiles `[rule.evm.delegations]` at key path `at` (`rule[0](id).evm.delegations`).
pub(crate) fn compile(c: &DelegationsConfig, at: &str) -> Result<Delegations, PolicyError> {
    let mut d = Delegations {
        any_chain: c.allow_any_chain,
        revocation: c.allow_revocation,
        ..Delegations::default()
    };
    for (chain, list) in &c.chains {
        let k = format!("{at}.{chain}");
        let addrs = list
            .iter()
            .map(|a| super::rules::address(a, &k))
            .collect::<Result<Vec<_>, _>>()?;
        if chain == "*" {
            d.star = addrs;
            continue;
        }
        match chain.parse::<u64>() {
            Ok(id) if id > 0 && id.to_string() == *chain => d.chains.push((id, addrs)),
            _ => return Err(err(
                k,
                "expected a decimal chain id above 0, \"*\", allow_any_chain or allow_revocation",
            )),
        }
    }
    Ok(d)
}

impl Delegations {
    /// The list a tuple for `chain` (not 0) is judged by.
    fn list_for(&self, chain: U256) -> (&[Address], String) {
        let exact = u64::try_from(chain)
            .ok()
            .and_then(|c| self.chains.iter().find(|(id, _)| *id == c));
        match exact {
            Some((id, list)) => (list, format!("evm.delegations.\"{id}\"")),
            None => (&self.star, "evm.delegations.\"*\"".to_owned()),
        }
    }
}

/// Judges one authorization (`what` names it in the reason: "authorization",
/// "authorizationList[2]") against a covering rule's `evm` section.
pub(crate) fn check(rule: &EvmRule, auth: &Authorization, what: &str) -> Result<(), Refuse> {
    let delegate = auth.address;
    let chain = auth.chain_id;
    let Some(d) = rule.delegations.as_ref() else {
        return Err(format!(
            "{what} delegates the account to {delegate:#x}; this rule has no evm.delegations table, so it allows no EIP-7702 authorization"
        )
        .into());
    };
    if chain.is_zero() {
        if !d.any_chain {
            return Err(format!(
                "{what} has chain id 0, valid on every chain; refused unless evm.delegations.allow_any_chain is true"
            )
            .into());
        }
    } else if !rule.chain_ids.is_empty()
        && !u64::try_from(chain).is_ok_and(|c| rule.chain_ids.contains(&c))
    {
        return Err(format!(
            "{what} is for chain id {chain}, not in evm.chain_ids {:?}",
            rule.chain_ids
        )
        .into());
    }
    // an address the operator refuses to send to is not handed the whole account either
    if rule.to_deny.contains(&delegate) {
        return Err(format!(
            "{what} delegates the account to {delegate:#x}, which is in evm.to_deny"
        )
        .into());
    }
    if delegate == Address::ZERO {
        if d.revocation {
            return Ok(());
        }
        return Err(format!(
            "{what} revokes the account's delegation (zero address); evm.delegations.allow_revocation is false"
        )
        .into());
    }
    if chain.is_zero() {
        // valid on every chain: allowed on every chain, or not at all
        let everywhere =
            d.star.contains(&delegate) && d.chains.iter().all(|(_, l)| l.contains(&delegate));
        if !everywhere {
            return Err(format!(
                "{what} delegates the account to {delegate:#x} on every chain (chain id 0); the delegate must be in evm.delegations.\"*\" and in every per-chain list"
            )
            .into());
        }
        return Ok(());
    }
    let (list, key) = d.list_for(chain);
    if !list.contains(&delegate) {
        return Err(format!(
            "{what} delegates the account to {delegate:#x} on chain {chain}, which is not in {key}"
        )
        .into());
    }
    Ok(())
}

/// True when `rule` writes a delegations table (so it, not [`DELEGATION`], judges).
pub(crate) fn written(rule: Option<&EvmRule>) -> bool {
    rule.is_some_and(|r| r.delegations.is_some())
}

#[cfg(test)]
mod tests;
