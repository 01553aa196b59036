//! Rolling spend caps as arithmetic: which totals a decision needs, and whether a
//! request fits under every cap given those totals.
//!
//! A spend recorded at `t` counts in a window of length `w` ending at `now` while
//! `t > now - w`: exactly `w` later it has rolled off. The store implements the same
//! rule in SQL; [`Ledger`] implements it in memory for tests. Must never: read the clock
//! or the store.

use std::collections::BTreeSet;

use alloy_primitives::U256;

use super::{Cap, Denial, SpendKey, Totals};

/// The distinct (counter, window) pairs `caps` need totals for.
pub fn queries(caps: &[Cap]) -> Vec<(SpendKey, u64)> {
    caps.iter()
        .map(|c| (c.key.clone(), c.window_ms))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Human form of a window length.
pub fn window_name(ms: u64) -> String {
    humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
}

/// Refuses when `spent + amount > limit` for some cap (reaching the limit exactly is
/// allowed). A missing total counts as zero.
pub fn check(caps: &[Cap], totals: &Totals) -> Result<(), Denial> {
    for c in caps {
        let spent = totals
            .get(&(c.key.clone(), c.window_ms))
            .copied()
            .unwrap_or_default();
        let after = spent.saturating_add(c.amount);
        if after > c.limit {
            return Err(Denial {
                rule: c.rule.clone(),
                reason: format!(
                    "rolling {} cap on {} {} of wallet {}: {} already spent + {} requested exceeds {}",
                    window_name(c.window_ms),
                    c.key.chain,
                    c.key.asset,
                    c.key.wallet,
                    spent,
                    c.amount,
                    c.limit
                ),
            });
        }
    }
    Ok(())
}

/// An in-memory spend ledger with the store's window semantics.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    rows: Vec<(SpendKey, u64, U256)>,
}

impl Ledger {
    /// Records `amount` on `key` at `at_ms`.
    pub fn record(&mut self, key: &SpendKey, at_ms: u64, amount: U256) {
        self.rows.push((key.clone(), at_ms, amount));
    }

    /// Sum over the window of `window_ms` ending at `now_ms`.
    pub fn sum(&self, key: &SpendKey, window_ms: u64, now_ms: u64) -> U256 {
        let since = now_ms.saturating_sub(window_ms);
        self.rows
            .iter()
            .filter(|(k, at, _)| k == key && *at > since)
            .fold(U256::ZERO, |acc, (_, _, a)| acc.saturating_add(*a))
    }

    /// Totals for `queries` at `now_ms`.
    pub fn totals(&self, queries: &[(SpendKey, u64)], now_ms: u64) -> Totals {
        queries
            .iter()
            .map(|(k, w)| ((k.clone(), *w), self.sum(k, *w, now_ms)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SpendKey {
        SpendKey {
            wallet: "w".into(),
            chain: "eip155:1".into(),
            asset: "native".into(),
        }
    }

    fn cap(limit: u64, amount: u64, window_ms: u64) -> Cap {
        Cap {
            rule: "r".into(),
            key: key(),
            window_ms,
            limit: U256::from(limit),
            amount: U256::from(amount),
        }
    }

    #[test]
    fn reaching_the_cap_exactly_is_allowed_exceeding_is_not() {
        let mut t = Totals::new();
        t.insert((key(), 1000), U256::from(60));
        assert!(check(&[cap(100, 40, 1000)], &t).is_ok());
        let d = check(&[cap(100, 41, 1000)], &t).unwrap_err();
        assert_eq!(d.rule, "r");
        assert!(
            d.reason
                .contains("60 already spent + 41 requested exceeds 100"),
            "{}",
            d.reason
        );
    }

    #[test]
    fn window_rolls_over_exactly_at_its_length() {
        let mut l = Ledger::default();
        l.record(&key(), 10_000, U256::from(5));
        let hour = 3_600_000;
        assert_eq!(l.sum(&key(), hour, 10_000), U256::from(5));
        assert_eq!(l.sum(&key(), hour, 10_000 + hour - 1), U256::from(5));
        assert_eq!(l.sum(&key(), hour, 10_000 + hour), U256::ZERO);
    }

    #[derive(Debug, Clone)]
    struct Step {
        advance_ms: u64,
        amount: u64,
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        prop::collection::vec(
            (0u64..400_000, 0u64..700).prop_map(|(advance_ms, amount)| Step { advance_ms, amount }),
            1..120,
        )
    }

    proptest! {
        /// Whatever the order, size and timing of requests, the sum of accepted spends in
        /// every window ending at any accepted request never exceeds the cap.
        #[test]
        fn random_sequences_never_exceed_a_rolling_cap(seq in steps(), limit in 1u64..2000) {
            let window = 1_800_000u64;
            let mut ledger = Ledger::default();
            let mut now = 1_000_000u64;
            let mut accepted: Vec<(u64, u64)> = Vec::new();
            for s in seq {
                now += s.advance_ms;
                let caps = [cap(limit, s.amount, window)];
                let totals = ledger.totals(&queries(&caps), now);
                if check(&caps, &totals).is_ok() {
                    ledger.record(&key(), now, U256::from(s.amount));
                    accepted.push((now, s.amount));
                }
                let in_window: u64 = accepted
                    .iter()
                    .filter(|(t, _)| *t > now.saturating_sub(window))
                    .map(|(_, a)| a)
                    .sum();
                prop_assert!(in_window <= limit, "{in_window} > {limit} at {now}");
            }
        }
    }
}
