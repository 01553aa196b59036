//! `evm.max_nonce_gap`: how far ahead of the wallet's pending nonce a transaction may be.
//!
//! Rolling caps count a spend when it is signed. An EVM transaction whose nonce is ahead
//! of the account's stays valid until the nonces before it are used, so transactions
//! signed in many windows could be held and broadcast together, past every window's cap.
//! Bounding the nonce to `pending + gap` bounds how many signed, not yet sent
//! transactions can be held: at most `gap + 1` distinct nonces.
//!
//! The policy stays pure: the caller asks the `[rpc] upstream` node for the pending nonce
//! (`eth_getTransactionCount(address, "pending")`) before deciding and passes it in
//! ([`crate::policy::Request::pending_nonce`]); here it is only compared.

use super::{Policy, Refuse, Request, Rule, Subject};
use crate::policy::rules::{err, PolicyError};

/// Largest `evm.max_nonce_gap` accepted.
pub const MAX_NONCE_GAP: u64 = 1000;

/// The gap a rule that caps value or tokens gets when `[rpc] upstream` is configured and
/// it sets no `evm.max_nonce_gap`: 0, the nonce must not be ahead of the pending one (a
/// replacement of a pending transaction, at the same or a lower nonce, passes). A client
/// that signs a sequence before sending any sets a larger gap explicitly.
pub const DEFAULT_CAPPED_NONCE_GAP: u64 = 0;

impl Policy {
    /// Ties the policy to the configured node. Without an upstream, a rule that sets
    /// `evm.max_nonce_gap` cannot be checked: an error naming its key. With one, a rule
    /// that caps value or tokens and sets no gap gets [`DEFAULT_CAPPED_NONCE_GAP`].
    pub fn apply_upstream(&mut self, upstream: bool) -> Result<(), PolicyError> {
        for (i, r) in self.rules.iter_mut().enumerate() {
            let Some(e) = r.evm.as_mut() else { continue };
            if !upstream && e.nonce_gap_written {
                return Err(err(
                    format!("rule[{i}]({}).evm.max_nonce_gap", r.id),
                    "needs `[rpc] upstream`: the wallet's pending nonce is asked of that node (eth_getTransactionCount \"pending\"); without one it cannot be checked",
                ));
            }
            if upstream && e.max_nonce_gap.is_none() && e.caps_anything() {
                e.max_nonce_gap = Some(DEFAULT_CAPPED_NONCE_GAP);
            }
        }
        Ok(())
    }

    /// True when a rule covering `req` bounds the nonce gap: the caller must then ask the
    /// node for the wallet's pending nonce and pass it in `req.pending_nonce`.
    pub fn needs_pending_nonce(&self, req: &Request<'_>) -> bool {
        matches!(req.subject, Subject::EvmTransaction(_))
            && self
                .rules
                .iter()
                .any(|r| r.covers(req) && r.evm.as_ref().is_some_and(|e| e.max_nonce_gap.is_some()))
    }
}

/// Refuses `nonce` when it is more than the rule's gap above `pending`; with a gap and no
/// pending nonce (nobody asked the node) it is refused too, never let through unbounded.
pub(crate) fn check(rule: &Rule, nonce: u64, pending: Option<u64>) -> Result<(), Refuse> {
    let Some(gap) = rule.evm.as_ref().and_then(|e| e.max_nonce_gap) else {
        return Ok(());
    };
    let Some(pending) = pending else {
        return Err(format!(
            "evm.max_nonce_gap is {gap} but the wallet's pending nonce is unknown (no upstream node was asked); nonce {nonce} cannot be bounded"
        )
        .into());
    };
    if nonce > pending.saturating_add(gap) {
        return Err(format!(
            "nonce {nonce} is {} above the wallet's pending nonce {pending}; evm.max_nonce_gap is {gap}",
            nonce - pending
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::rules::PolicySection;

    fn policy(extra: &str) -> Policy {
        let text = format!("[[rule]]\nid = \"r\"\n[rule.evm]\n{extra}");
        let section: PolicySection = toml::from_str(&text).unwrap();
        section.compile().unwrap()
    }

    fn gap(p: &Policy) -> Option<u64> {
        p.rules[0].evm.as_ref().unwrap().max_nonce_gap
    }

    #[test]
    fn compares_against_pending_plus_gap() {
        let p = policy("max_nonce_gap = 2\n");
        let r = &p.rules[0];
        assert_eq!(check(r, 7, Some(5)), Ok(()));
        assert_eq!(check(r, 3, Some(5)), Ok(()));
        let e = check(r, 8, Some(5)).unwrap_err();
        assert_eq!(e.builtin, None);
        assert_eq!(
            e.reason,
            "nonce 8 is 3 above the wallet's pending nonce 5; evm.max_nonce_gap is 2"
        );
        assert!(check(r, 0, None).is_err_and(|e| e.reason.contains("pending nonce is unknown")));
        // no overflow at the top of the range
        assert_eq!(check(r, u64::MAX, Some(u64::MAX - 1)), Ok(()));
    }

    #[test]
    fn bounds_and_defaults() {
        let text = "[[rule]]\nid = \"r\"\n[rule.evm]\nmax_nonce_gap = 1001\n";
        let section: PolicySection = toml::from_str(text).unwrap();
        let e = section.compile().unwrap_err();
        assert_eq!(e.key, "rule[0](r).evm.max_nonce_gap");
        // written, no upstream: an error naming the key
        let e = policy("max_nonce_gap = 0\n")
            .apply_upstream(false)
            .unwrap_err();
        assert_eq!(e.key, "rule[0](r).evm.max_nonce_gap");
        // capped, unset: the default only with an upstream
        let mut p = policy("max_value = { \"*\" = \"1 ether\" }\n");
        p.apply_upstream(false).unwrap();
        assert_eq!(gap(&p), None);
        p.apply_upstream(true).unwrap();
        assert_eq!(gap(&p), Some(DEFAULT_CAPPED_NONCE_GAP));
        // capping nothing: unbounded unless written
        let mut p = policy("chain_ids = [1]\n");
        p.apply_upstream(true).unwrap();
        assert_eq!(gap(&p), None);
        let mut p = policy("max_nonce_gap = 9\nmax_value = { \"*\" = \"1\" }\n");
        p.apply_upstream(true).unwrap();
        assert_eq!(gap(&p), Some(9));
    }
}
