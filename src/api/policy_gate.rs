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
    /// whole seconds until a retry can succeed. `nodes` is `cluster.nodes`: each node
    /// holds its share of every limit.
    pub fn check(
        &self,
        policy: &Policy,
        nodes: u32,
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
                .or_insert_with(|| Bucket::full(limit, nodes, now_ms));
            if let Err(secs) = b.take(limit, nodes, now_ms) {
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
pub async fn evaluate(
    store: &Store,
    policy: &Policy,
    req: &Request<'_>,
) -> Result<(Outcome, Option<Denial>), Refusal> {
    let mut d = policy.decide(req);
    if d.allowed() && !d.caps.is_empty() {
        let queries = d.queries();
        let now = spend::now_ms();
        let totals = store
            .read_async(move |c| spend::totals(c, &queries, now))
            .await
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

/// Why a decision taken before signing no longer holds when the signature is released.
#[derive(Debug, Clone)]
pub enum Late {
    /// A concurrent request used up a rolling cap first.
    Policy(Denial),
    /// An operator (or failsafe) locked the appliance while the request was in flight.
    Locked(String),
    /// The wallet was revoked (or removed) while the request was in flight.
    Revoked,
}

impl Late {
    /// The refusal the client gets instead of the signature.
    pub fn refusal(&self, wallet_id: &str) -> Refusal {
        match self {
            Late::Policy(d) => denied(d),
            Late::Locked(reason) => refuse(
                "appliance_locked",
                format!("the appliance was locked ({reason}) while this request was signed; the signature is withheld"),
            ),
            Late::Revoked => refuse(
                "wallet_revoked",
                format!("wallet {wallet_id} was revoked while this request was signed; the signature is withheld"),
            ),
        }
    }
}

/// Reads, inside the releasing transaction, what another process or request may have
/// changed since the decision: the lock and the wallet's status.
fn recheck(ctx: &WriteCtx<'_>, wallet_id: &str) -> Result<Option<Late>, StoreError> {
    // one statement: this runs for every released signature, under the write lock
    let (lock, status) =
        crate::store::wallets::lock_and_status(ctx.conn, crate::appliance::LOCK_KEY, wallet_id)?;
    if let Some(reason) = lock {
        return Ok(Some(Late::Locked(reason)));
    }
    match status {
        Some(crate::store::wallets::Status::Active) => Ok(None),
        _ => Ok(Some(Late::Revoked)),
    }
}

fn withhold(event: &mut AuditEvent, code: &str, detail: Value) {
    event.decision = "denied".into();
    event.result = code.into();
    if let Some(Value::Object(m)) = &mut event.detail {
        m.insert("late".into(), detail);
    }
}

/// The write job of a sign request. For a signature about to be released (`releasing`),
/// re-reads the lock and the wallet's status and re-checks rolling caps against the
/// totals, all inside this transaction; if any no longer allows it, the record says so,
/// nothing is counted and the late refusal is returned (the caller drops the signature).
/// Otherwise the spend is recorded with the audit record. Returns the audit id and the
/// late refusal, if any.
pub fn commit(
    ctx: &mut WriteCtx<'_>,
    mut event: AuditEvent,
    outcome: Option<Outcome>,
    releasing: bool,
) -> Result<(String, Option<Late>), StoreError> {
    let signed = event.decision == "allowed" && event.result == "ok";
    if releasing && signed {
        let wallet_id = event.wallet_id.clone().unwrap_or_default();
        if let Some(late) = recheck(ctx, &wallet_id)? {
            let (code, detail) = match &late {
                Late::Locked(reason) => ("appliance_locked", json!({ "locked": reason })),
                _ => ("wallet_revoked", json!({ "revoked": true })),
            };
            withhold(&mut event, code, detail);
            return Ok((audit::append(ctx, event)?, Some(late)));
        }
    }
    let Some(outcome) = outcome.filter(|_| signed) else {
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
        return Ok((audit::append(ctx, event)?, Some(Late::Policy(d))));
    }
    let id = audit::append(ctx, event)?;
    spend::record(ctx.conn, &outcome.spend, now, &id)?;
    Ok((id, None))
}
