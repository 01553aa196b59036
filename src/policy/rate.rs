//! Token-bucket arithmetic for rate limits. The buckets themselves live with the caller
//! (the API keeps them in memory); this module only says how one fills and drains.
//!
//! Must never: read the clock or keep state of its own.

use serde::Serialize;

use super::Scope;

/// A compiled `[[rate_limit]]`.
#[derive(Debug, Clone, Serialize)]
pub struct RateLimit {
    /// Id.
    pub id: String,
    /// Whose bucket.
    pub scope: Scope,
    pub(crate) clients: Vec<String>,
    pub(crate) wallets: Vec<String>,
    /// Refill period of `requests`.
    pub per_ms: u64,
    /// Tokens added per period.
    pub requests: u32,
    /// Bucket capacity.
    pub burst: u32,
}

/// One bucket. Tokens are counted in units of `1 / per_ms` token, so a refill of
/// `elapsed_ms * requests` units is exact and no fraction of a token is ever lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    units: u128,
    at_ms: u64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn full(limit: &RateLimit, now_ms: u64) -> Bucket {
        Bucket {
            units: u128::from(limit.burst) * u128::from(limit.per_ms),
            at_ms: now_ms,
        }
    }

    /// Takes one token, or says after how many whole seconds one will be there.
    pub fn take(&mut self, limit: &RateLimit, now_ms: u64) -> Result<(), u64> {
        let one = u128::from(limit.per_ms.max(1));
        let cap = u128::from(limit.burst) * one;
        let elapsed = u128::from(now_ms.saturating_sub(self.at_ms));
        self.units = cap.min(self.units + elapsed * u128::from(limit.requests));
        self.at_ms = self.at_ms.max(now_ms);
        if self.units >= one {
            self.units -= one;
            return Ok(());
        }
        let wait_ms = (one - self.units).div_ceil(u128::from(limit.requests.max(1)));
        Err(u64::try_from(wait_ms.div_ceil(1000))
            .unwrap_or(u64::MAX)
            .max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u32, per_ms: u64, burst: u32) -> RateLimit {
        RateLimit {
            id: "r".into(),
            scope: Scope::Client,
            clients: vec!["*".into()],
            wallets: vec!["*".into()],
            per_ms,
            requests,
            burst,
        }
    }

    #[test]
    fn burst_then_refill() {
        let l = limit(1, 10_000, 3);
        let mut b = Bucket::full(&l, 0);
        for _ in 0..3 {
            b.take(&l, 0).unwrap();
        }
        assert_eq!(b.take(&l, 0), Err(10));
        assert_eq!(b.take(&l, 9_999), Err(1));
        b.take(&l, 10_000).unwrap();
        assert!(b.take(&l, 10_000).is_err());
    }

    #[test]
    fn never_exceeds_burst_after_idling() {
        let l = limit(10, 1000, 2);
        let mut b = Bucket::full(&l, 0);
        b.take(&l, 1_000_000).unwrap();
        b.take(&l, 1_000_000).unwrap();
        assert!(b.take(&l, 1_000_000).is_err());
    }

    #[test]
    fn clock_going_backwards_does_not_mint_tokens() {
        let l = limit(1, 1000, 1);
        let mut b = Bucket::full(&l, 5000);
        b.take(&l, 5000).unwrap();
        assert!(b.take(&l, 1000).is_err());
        assert!(b.take(&l, 5500).is_err());
        b.take(&l, 6000).unwrap();
    }
}
