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
///
/// `share` is the number of nodes that each hold a bucket for the same limit
/// (`cluster.nodes`): a request then costs `share` tokens' worth of units, so each node
/// refills at `requests / share` per period and holds `burst / share` (at least one
/// request, or a small burst would refuse everything). The nodes together never admit
/// more than the configured rate; a balancer that spreads a client's requests evenly
/// lets it reach that rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    units: u128,
    at_ms: u64,
}

impl Bucket {
    /// A full bucket at `now_ms`.
    pub fn full(limit: &RateLimit, share: u32, now_ms: u64) -> Bucket {
        Bucket {
            units: capacity(limit, share),
            at_ms: now_ms,
        }
    }

    /// Takes one token, or says after how many whole seconds one will be there.
    pub fn take(&mut self, limit: &RateLimit, share: u32, now_ms: u64) -> Result<(), u64> {
        let one = cost(limit, share);
        let cap = capacity(limit, share);
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

/// Units one request costs on a node holding one of `share` buckets.
fn cost(limit: &RateLimit, share: u32) -> u128 {
    u128::from(limit.per_ms.max(1)) * u128::from(share.max(1))
}

/// Units a full bucket holds: `burst / share` requests, but never less than one.
fn capacity(limit: &RateLimit, share: u32) -> u128 {
    (u128::from(limit.burst) * u128::from(limit.per_ms.max(1))).max(cost(limit, share))
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
        let mut b = Bucket::full(&l, 1, 0);
        for _ in 0..3 {
            b.take(&l, 1, 0).unwrap();
        }
        assert_eq!(b.take(&l, 1, 0), Err(10));
        assert_eq!(b.take(&l, 1, 9_999), Err(1));
        b.take(&l, 1, 10_000).unwrap();
        assert!(b.take(&l, 1, 10_000).is_err());
    }

    #[test]
    fn never_exceeds_burst_after_idling() {
        let l = limit(10, 1000, 2);
        let mut b = Bucket::full(&l, 1, 0);
        b.take(&l, 1, 1_000_000).unwrap();
        b.take(&l, 1, 1_000_000).unwrap();
        assert!(b.take(&l, 1, 1_000_000).is_err());
    }

    #[test]
    fn clock_going_backwards_does_not_mint_tokens() {
        let l = limit(1, 1000, 1);
        let mut b = Bucket::full(&l, 1, 5000);
        b.take(&l, 1, 5000).unwrap();
        assert!(b.take(&l, 1, 1000).is_err());
        assert!(b.take(&l, 1, 5500).is_err());
        b.take(&l, 1, 6000).unwrap();
    }

    /// Two nodes each holding half admit, over any timeline, what one bucket alone
    /// admits (within one request per node for rounding), never more.
    #[test]
    fn two_shares_admit_what_one_bucket_admits() {
        let l = limit(30, 1000, 10);
        let (mut one, mut a, mut b) = (
            Bucket::full(&l, 1, 0),
            Bucket::full(&l, 2, 0),
            Bucket::full(&l, 2, 0),
        );
        let (mut alone, mut split) = (0u32, 0u32);
        // A request every 7 ms for 10 s, alternating between the two nodes.
        for i in 0..1430u64 {
            let now = i * 7;
            alone += u32::from(one.take(&l, 1, now).is_ok());
            let node = if i % 2 == 0 { &mut a } else { &mut b };
            split += u32::from(node.take(&l, 2, now).is_ok());
        }
        // 10 burst + 30/s for 10 s.
        assert_eq!(alone, 10 + 300);
        assert!(split <= alone, "split {split} > alone {alone}");
        assert!(split + 2 >= alone, "split {split} far below alone {alone}");
    }

    /// A burst smaller than the share still lets one request through per node.
    #[test]
    fn a_burst_below_the_share_keeps_one_request_per_node() {
        let l = limit(1, 60_000, 1);
        let mut b = Bucket::full(&l, 3, 0);
        b.take(&l, 3, 0).unwrap();
        // The next token on this node comes after three periods (1/3 of the rate).
        assert_eq!(b.take(&l, 3, 0), Err(180));
    }
}
