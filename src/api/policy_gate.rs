//! Where the signing API meets the policy engine: rate-limit buckets (kept here, in
//! memory, per process), evaluation with window totals read from the store, and the
//! re-check of rolling caps inside the audit record's write transaction.
//!
//! Must never: count spend for a dry run or a refused request, or let a spend be recorded
//! without re-checking its caps in the same transaction (concurrent requests would each
//! see the old totals and overrun the cap together).

use std::collections::HashMap;
use std::sync::Mutex;

use alloy_primitives::U256;
use serde_json::{json, Value};

use super::errors::{self, refuse};
use crate::http::Refusal;
use crate::policy::{self, Bucket, Cap, Denial, Policy, Request, SpendKey, WalletRef};
use crate::store::audit::{self, AuditEvent};
use crate::store::spend;
use crate::store::{Store, StoreError, WriteCtx};

/// What the policy said about a request, carried to its audit record.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Rules that covered the request.
    pub matched: Vec<String>,
    /// Refusing rule.
    pub rule: Option<String>,
    /// Amounts to record once signed.
    pub spend: Vec<(SpendKey, U256)>,
    /// Caps to re-check in the write transaction.
    pub caps: Vec<Cap>,
}

impl Outcome {
    /// The audit/answer summary.
    pub fn summary(&self) -> Value {
        let mut v = json!({ "matchedRules": self.matched });
        if let Some(r) = &self.rule {
            v["rule"] = Value::String(r.clone());
        }
        v
    }
}

/// Token buckets per (limit, client or wallet).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// Takes a token from every bucket that applies; refuses with the limit id and the
    /// whole seconds until a retry can succeed.
    pub fn check(
        &self,
        policy: &Policy,
        client: &str,
        wallet: &WalletRef<'_>,
        now_ms: u64,
    ) -> Result<(), (String, u64)> {
        let limits = policy.rate_limits_for(client, wallet);
        if limits.is_empty() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        for (limit, key) in limits {
            let b = buckets
                .entry(key)
                .or_insert_with(|| Bucket::full(limit, now_ms));
            if let Err(secs) = b.take(limit, now_ms) {
                return Err((limit.id.clone(), secs));
            }
        }
        Ok(())
    }
}

/// The refusal for a denial.
pub fn denied(d: &Denial) -> Refusal {
    refuse(
        "policy_denied",
        format!("refused by policy rule `{}`: {}", d.rule, d.reason),
    )
}

/// Decides `req`, reading the window totals its caps need.
pub fn evaluate(
    store: &Store,
    policy: &Policy,
    req: &Request<'_>,
) -> Result<(Outcome, Option<Denial>), Refusal> {
    let mut d = policy.decide(req);
    if d.allowed() && !d.caps.is_empty() {
        let queries = d.queries();
        let now = spend::now_ms();
        let totals = store
            .read(move |c| spend::totals(c, &queries, now))
            .map_err(|e| errors::store(&e))?;
        d.check_caps(&totals);
    }
    let outcome = Outcome {
        matched: d.matched,
        rule: d.denial.as_ref().map(|x| x.rule.clone()),
        spend: if policy.records_spend() {
            d.spend
        } else {
            Vec::new()
        },
        caps: d.caps,
    };
    Ok((outcome, d.denial))
}

/// The write job of a sign request: re-checks caps against the totals inside this
/// transaction; if one would be exceeded the record says so and nothing is counted,
/// otherwise the spend is recorded with the audit record. Returns the audit id and the
/// late denial, if any.
pub fn commit(
    ctx: &mut WriteCtx<'_>,
    mut event: AuditEvent,
    outcome: Option<Outcome>,
) -> Result<(String, Option<Denial>), StoreError> {
    let Some(outcome) = outcome.filter(|_| event.decision == "allowed" && event.result == "ok")
    else {
        return Ok((audit::append(ctx, event)?, None));
    };
    let now = spend::now_ms();
    let totals = spend::totals(ctx.conn, &policy::windows::queries(&outcome.caps), now)?;
    if let Err(d) = policy::windows::check(&outcome.caps, &totals) {
        event.decision = "denied".into();
        event.result = "policy_denied".into();
        if let Some(Value::Object(m)) = &mut event.detail {
            m.insert(
                "policy".into(),
                json!({ "matchedRules": outcome.matched, "rule": d.rule, "reason": d.reason }),
            );
        }
        return Ok((audit::append(ctx, event)?, Some(d)));
    }
    let id = audit::append(ctx, event)?;
    spend::record(ctx.conn, &outcome.spend, now, &id)?;
    Ok((id, None))
}
