//! Per-source admission: a token bucket (sustained rate, burst twice that) and a cap on
//! requests in flight, so one flooding source cannot starve the appliance.
//!
//! Must never: hold its lock across an await, or grow without bound (idle entries are
//! pruned).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for an in-flight slot before it is refused: long enough for
/// a burst of concurrent redeliveries to pass, short enough to answer the vendor fast.
const SLOT_WAIT: Duration = Duration::from_secs(2);
const PRUNE_ABOVE: usize = 4096;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The source exceeded its request rate.
    Rate,
    /// The source kept too many requests in flight.
    Concurrency,
}

struct Entry {
    tokens: f64,
    last: Instant,
    slots: Arc<Semaphore>,
}

/// Admission state for every source seen recently.
#[derive(Default)]
pub struct Limits {
    sources: Mutex<HashMap<IpAddr, Entry>>,
}

impl Limits {
    /// Admits one request from `source`; the permit is held until the response is built.
    pub async fn admit(
        &self,
        source: IpAddr,
        rate: u32,
        concurrency: usize,
    ) -> Result<OwnedSemaphorePermit, Denied> {
        let slots = {
            let mut map = self.sources.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let burst = f64::from(rate) * 2.0;
            if map.len() > PRUNE_ABOVE {
                map.retain(|_, e| {
                    e.slots.available_permits() < concurrency
                        || now.duration_since(e.last) < Duration::from_secs(10)
                });
            }
            let e = map.entry(source).or_insert_with(|| Entry {
                tokens: burst,
                last: now,
                slots: Arc::new(Semaphore::new(concurrency)),
            });
            let elapsed = now.duration_since(e.last).as_secs_f64();
            e.tokens = (e.tokens + elapsed * f64::from(rate)).min(burst);
            e.last = now;
            if e.tokens < 1.0 {
                return Err(Denied::Rate);
            }
            e.tokens -= 1.0;
            e.slots.clone()
        };
        match tokio::time::timeout(SLOT_WAIT, slots.acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(Denied::Concurrency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rate_and_concurrency() {
        let l = Limits::default();
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(l.admit(ip, 1, 5).await.unwrap());
        }
        assert_eq!(l.admit(ip, 1, 5).await.unwrap_err(), Denied::Rate);
        let other: IpAddr = "127.0.0.10".parse().unwrap();
        let _p = l.admit(other, 100, 1).await.unwrap();
        assert_eq!(
            l.admit(other, 100, 1).await.unwrap_err(),
            Denied::Concurrency
        );
    }
}
