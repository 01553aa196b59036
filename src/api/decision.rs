//! The one decision path every sign request takes, whichever face it came through (the
//! REST routes, the JSON-RPC methods): lock check → operation grant → request input →
//! wallet → wallet grant → rate limit → engine → parse → policy → sign → audited commit,
//! with the release re-check of [`policy_gate::commit`]. The faces only translate their
//! wire format into a [`SignCall`] and the [`Decided`] answer back.
//!
//! Must never: release a signature before its audit record is durable, or answer a sign
//! request that has no audit record (the only answer without one is `store_unavailable`,
//! when the record itself could not be written).

use std::future::Future;
use std::time::Instant;

use alloy_primitives::Address;
use serde_json::{json, Value};

use super::errors::{self, refuse};
use super::grants::Grants;
use super::{chain_of, evm, no_grant, policy_gate, solana, Api};
use crate::config::Operation;
use crate::http::{self, Refusal};
use crate::signer;
use crate::store::audit::AuditEvent;
use crate::store::wallets::{self as rows, Chain, Wallet};

/// Which face a sign request came through; its audit record says so (`detail.face`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// The REST sign routes (`POST /v1/wallets/{walletId}/…`).
    Rest,
    /// The JSON-RPC face (`POST /v1/rpc`), with the method called.
    Rpc(&'static str),
}

/// How a sign request names its wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalletKey {
    /// By wallet id (the REST path).
    Id(String),
    /// The active EVM wallet holding this address (the JSON-RPC face), found through the
    /// store's address index.
    EvmAddress(Address),
}

/// One sign request, as a face hands it to [`Api::decide`].
#[derive(Debug)]
pub struct SignCall<'a> {
    /// The client identity from its certificate.
    pub identity: &'a str,
    /// Where it came from.
    pub face: Face,
    /// What it asks for.
    pub operation: Operation,
    /// Which wallet.
    pub wallet: WalletKey,
    /// Whether only the decision is asked for; a malformed dry-run request is a refusal
    /// of its own, audited before anything else is looked at.
    pub dry_run: Result<bool, Refusal>,
}

/// A refusal with what the policy said about it.
#[derive(Debug)]
pub struct Refused {
    /// Code, status, message.
    pub refusal: Refusal,
    /// The policy rule or rate limit that refused.
    pub rule: Option<String>,
    /// The policy rules that covered the request (policy refusals).
    pub matched: Option<Vec<String>>,
    /// Seconds until a rate-limited request can succeed.
    pub retry_after: Option<u64>,
}

/// The answer to a sign request whose audit record is durable.
#[derive(Debug)]
pub struct Decided {
    /// Id of the audit record.
    pub audit_id: String,
    /// It was a dry run.
    pub dry_run: bool,
    /// The REST-shaped answer (signature, digest, …) or the refusal.
    pub outcome: Result<Value, Refused>,
}

/// What the audit record of a sign request says, filled in as the request progresses.
struct Draft {
    /// Known from the start (REST) or once the address is resolved (JSON-RPC).
    wallet_id: Option<String>,
    operation: Operation,
    digest: Option<String>,
    detail: Option<Value>,
    dry_run: bool,
    policy: Option<policy_gate::Outcome>,
    rule: Option<String>,
    matched: Option<Vec<String>>,
    retry_after: Option<u64>,
}

impl Draft {
    /// The wallet id for messages and logs (the address while it is not resolved).
    fn wallet_name(&self, key: &WalletKey) -> String {
        match (&self.wallet_id, key) {
            (Some(id), _) => id.clone(),
            (None, WalletKey::Id(id)) => id.clone(),
            (None, WalletKey::EvmAddress(a)) => format!("{a:#x}"),
        }
    }
}

impl Api {
    /// Decides a sign request, signs it if allowed, and commits its audit record; the
    /// answer is released only after that commit (and its re-check of lock, wallet status
    /// and rolling caps). `input` yields the request body in the REST shape
    /// (`{"message": …}`, `{"transaction": …}`, …); it is awaited only after the lock and
    /// the operation grant are checked, so an unauthorised caller costs no parsing and no
    /// upstream query. `Err` only when the audit record could not be made durable.
    pub async fn decide(
        &self,
        call: SignCall<'_>,
        input: impl Future<Output = Result<Value, Refusal>>,
    ) -> Result<Decided, Refusal> {
        let started = Instant::now();
        let op = call.operation;
        let identity = call.identity;
        let mut draft = Draft {
            wallet_id: match &call.wallet {
                WalletKey::Id(id) => Some(id.clone()),
                WalletKey::EvmAddress(_) => None,
            },
            operation: op,
            digest: None,
            detail: None,
            dry_run: false,
            policy: None,
            rule: None,
            matched: None,
            retry_after: None,
        };
        // a panic below is still audited (as internal_error) and answered 500
        let outcome = http::catch_panic(self.decide_and_sign(&call, &mut draft, input))
            .await
            .and_then(|r| r);
        let (decision, result) = match &outcome {
            Ok(_) if draft.dry_run => ("allowed", "dry_run"),
            Ok(_) => ("allowed", "ok"),
            Err(r) if r.status.is_server_error() => ("error", r.code),
            Err(r) => ("denied", r.code),
        };
        if let Err(r) = &outcome {
            if r.status.is_server_error() {
                tracing::warn!(client = identity, wallet = %draft.wallet_name(&call.wallet), operation = op.as_str(), code = r.code, message = %r.message, "sign request failed");
            }
        }
        let mut detail = draft.detail.take().unwrap_or_else(|| json!({}));
        let policy = draft.policy.take();
        if let Value::Object(m) = &mut detail {
            if let Some(p) = &policy {
                m.insert("policy".into(), p.summary());
            }
            if draft.dry_run {
                m.insert("dryRun".into(), Value::Bool(true));
            }
            match call.face {
                Face::Rest => {
                    m.insert("face".into(), json!("rest"));
                }
                Face::Rpc(method) => {
                    m.insert("face".into(), json!("rpc"));
                    m.insert("rpcMethod".into(), json!(method));
                }
            }
            if let WalletKey::EvmAddress(a) = &call.wallet {
                m.insert("address".into(), json!(format!("{a:#x}")));
            }
        }
        let event = AuditEvent {
            actor: identity.to_owned(),
            action: if draft.dry_run {
                "sign.dry_run"
            } else {
                "sign"
            }
            .into(),
            wallet_id: draft.wallet_id.clone(),
            chain: Some(chain_of(op).as_str().into()),
            operation: Some(op.as_str().into()),
            digest: draft.digest.take(),
            decision: decision.into(),
            result: result.into(),
            detail: Some(detail),
        };
        // the answer (and any signature in it) waits for the durable commit; rolling caps
        // are re-checked inside it (see `policy_gate::commit`)
        let counted = policy.filter(|p| !p.spend.is_empty() || !p.caps.is_empty());
        let matched = counted.as_ref().map(|p| p.matched.clone());
        // a signature is released only if the lock and the wallet still allow it when its
        // record commits: an operator's lock or a revocation may have landed meanwhile
        let releasing = outcome.is_ok() && !draft.dry_run;
        let wallet_name = draft.wallet_name(&call.wallet);
        let committed = self
            .app
            .store
            .write(move |ctx| policy_gate::commit(ctx, event, counted, releasing))
            .await;
        crate::metrics::get()
            .sign_seconds
            .with_label_values(&[op.as_str()])
            .observe(started.elapsed().as_secs_f64());
        let (audit_id, late) = match committed {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, wallet = %wallet_name, "audit record not durable; answer withheld");
                return Err(refuse(
                    "store_unavailable",
                    "the audit record could not be made durable; nothing was signed or returned",
                ));
            }
        };
        let mut rule = draft.rule.take();
        let outcome = match late {
            // signed, but no longer releasable (a concurrent request used up the cap first,
            // a lock, a revocation): the signature is dropped
            Some(policy_gate::Late::Policy(d)) => {
                rule = Some(d.rule.clone());
                draft.matched = matched;
                Err(policy_gate::denied(&d))
            }
            Some(late) => {
                tracing::warn!(client = identity, wallet = %wallet_name, "signature withheld: the appliance was locked or the wallet revoked while it was being made");
                Err(late.refusal(&wallet_name))
            }
            None => outcome,
        };
        if let Err(r) = &outcome {
            crate::metrics::sign_refused(
                op.as_str(),
                r.code,
                rule.as_deref(),
                &self.app.config().compiled_policy,
            );
        }
        Ok(Decided {
            audit_id,
            dry_run: draft.dry_run,
            outcome: outcome.map_err(|refusal| Refused {
                refusal,
                rule,
                matched: draft.matched.take(),
                retry_after: draft.retry_after,
            }),
        })
    }

    /// Runs the policy; a refusal carries its rule, and the matched rules go to the audit
    /// record either way.
    async fn judge(
        &self,
        identity: &str,
        policy: &crate::policy::Policy,
        wallet: &crate::policy::WalletRef<'_>,
        subject: &crate::policy::Subject,
        pending_nonce: Option<u64>,
        draft: &mut Draft,
    ) -> Result<(), Refusal> {
        let req = crate::policy::Request {
            client: identity,
            wallet: *wallet,
            subject,
            pending_nonce,
        };
        let (outcome, denial) = policy_gate::evaluate(&self.app.store, policy, &req).await?;
        draft.matched = Some(outcome.matched.clone());
        draft.policy = Some(outcome);
        match denial {
            Some(d) => {
                draft.rule = Some(d.rule.clone());
                Err(policy_gate::denied(&d))
            }
            None => Ok(()),
        }
    }

    /// The wallet's pending nonce, asked of the `[rpc] upstream` node when a rule covering
    /// the request bounds `evm.max_nonce_gap` (else `None`, and no call). A node that
    /// cannot answer refuses the request (`upstream_unavailable` and kin): nothing is
    /// signed unbounded. The audit record notes the nonce asked.
    async fn pending_nonce(
        &self,
        identity: &str,
        config: &crate::config::Config,
        wallet: &crate::policy::WalletRef<'_>,
        subject: &crate::policy::Subject,
        address: Address,
        draft: &mut Draft,
    ) -> Result<Option<u64>, Refusal> {
        let req = crate::policy::Request {
            client: identity,
            wallet: *wallet,
            subject,
            pending_nonce: None,
        };
        if !config.compiled_policy.needs_pending_nonce(&req) {
            return Ok(None);
        }
        let up = self.nodes.upstream(&config.rpc).map_err(|e| {
            refuse(
                "upstream_unavailable",
                format!("the upstream node is not usable: {e}"),
            )
        })?;
        // a loaded config has an upstream whenever a gap applies; without one the policy
        // refuses the unknown pending nonce
        let Some(up) = up else { return Ok(None) };
        let budget = self.nodes.budget(&config.rpc);
        let node = super::upstream::Node {
            upstream: &up,
            budget: &budget,
        };
        let pending = super::upstream::pending_nonce(&node, address).await?;
        if let Some(Value::Object(m)) = &mut draft.detail {
            m.insert("pendingNonce".into(), json!(pending));
        }
        Ok(Some(pending))
    }

    /// The wallet `key` names.
    async fn find_wallet(&self, key: &WalletKey) -> Result<Wallet, Refusal> {
        match key {
            WalletKey::Id(id) => self.load_wallet(id).await,
            WalletKey::EvmAddress(a) => {
                let address = format!("{a:#x}");
                let lookup = address.clone();
                // the active holder of the address; failing that, a revoked one, so that the
                // answer is wallet_revoked rather than "no such wallet"
                let found = self
                    .app
                    .store
                    .read_async(
                        move |c| match rows::active_by_address(c, Chain::Evm, &lookup)? {
                            Some(w) => Ok(Some(w)),
                            None => rows::latest_by_address(c, Chain::Evm, &lookup),
                        },
                    )
                    .await;
                match found {
                    Ok(Some(w)) => Ok(w),
                    Ok(None) => Err(no_wallet_at(a)),
                    Err(e) => Err(errors::store(&e)),
                }
            }
        }
    }

    async fn decide_and_sign(
        &self,
        call: &SignCall<'_>,
        draft: &mut Draft,
        input: impl Future<Output = Result<Value, Refusal>>,
    ) -> Result<Value, Refusal> {
        let op = draft.operation;
        let identity = call.identity;
        draft.dry_run = call.dry_run.clone()?;
        match self.app.lock_reason_async().await {
            Ok(Some(reason)) => {
                return Err(refuse(
                    "appliance_locked",
                    format!("the appliance is locked ({reason}); nothing is signed until an operator unlocks it"),
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(errors::store(&e)),
        }
        let config = self.app.config();
        let g = Grants::of(&config, identity);
        if !g.has_operation(op) {
            let mut r = no_grant(identity);
            r.message = if op == Operation::EvmHash {
                format!("client {identity} may not sign raw digests: the operator must grant `evm.hash` explicitly")
            } else {
                format!("client {identity} has no grant for {}", op.as_str())
            };
            return Err(r);
        }
        let body = input.await?;
        let wallet = self.find_wallet(&call.wallet).await?;
        draft.wallet_id = Some(wallet.id.clone());
        // a wallet the client may not see (no operation of its on that wallet) is
        // answered exactly as one that does not exist, on both faces: by address (the
        // JSON-RPC face) as an address no wallet holds, by id (REST) as an unknown id. A
        // face tells a client nothing about wallets outside its grants (not that one
        // exists, nor its id or chain); the audit record still names it
        if g.operations_for(&wallet).is_empty() {
            return Err(match &call.wallet {
                WalletKey::EvmAddress(a) => no_wallet_at(a),
                WalletKey::Id(id) => refuse("wallet_not_found", format!("no wallet with id {id}")),
            });
        }
        if !g.allows(&wallet, op) {
            return Err(refuse(
                "not_authorized",
                format!(
                    "client {identity} has no grant for {} on wallet {}",
                    op.as_str(),
                    wallet.id
                ),
            ));
        }
        let policy = config.compiled_policy.clone();
        let wref = crate::policy::WalletRef {
            id: &wallet.id,
            chain: wallet.chain.as_str(),
            label: wallet.label.as_deref(),
        };
        if let Err((limit, secs)) = self.limiter.check(
            &policy,
            config.cluster.nodes,
            identity,
            &wref,
            crate::store::spend::now_ms(),
        ) {
            draft.rule = Some(limit.clone());
            draft.retry_after = Some(secs);
            return Err(refuse(
                "rate_limited",
                format!("rate limit `{limit}` reached for client {identity} on wallet {}; retry after {secs} s", wallet.id),
            ));
        }
        let chain = chain_of(op);
        self.signer
            .engine_for(&wallet, chain)
            .map_err(|e| errors::sign(&e))?;
        match chain {
            Chain::Evm => {
                let address = signer::evm_address(&wallet).map_err(|e| errors::sign(&e))?;
                // a co-signing engine shows the vendor the message itself, not its digest
                let message = (op == Operation::EvmMessage)
                    .then(|| body.get("message").and_then(Value::as_str))
                    .flatten()
                    .and_then(|m| crate::chains::evm::parse_message(m).ok());
                let p = evm::prepare(op, body, address)?;
                draft.digest = Some(p.digest.clone());
                draft.detail = Some(p.detail.clone());
                let pending = self
                    .pending_nonce(identity, &config, &wref, &p.subject, address, draft)
                    .await?;
                self.judge(identity, &policy, &wref, &p.subject, pending, draft)
                    .await?;
                if draft.dry_run {
                    return Ok(dry_answer(&p.digest, draft));
                }
                let tx = match &p.finish {
                    evm::Finish::Tx(tx) => Some(&**tx),
                    _ => None,
                };
                let request = match &p.finish {
                    // the account validates personal_sign(userOpHash): a co-signer sees
                    // the 32-byte message, as it would from the account's own SDK
                    evm::Finish::UserOp { hash } => {
                        signer::EvmRequest::message(p.payload, hash.to_vec())
                    }
                    _ => signer::EvmRequest::new(op, p.payload, message, tx),
                };
                let sig = self
                    .signer
                    .sign_evm(&wallet, &request)
                    .await
                    .map_err(|e| errors::sign(&e))?;
                evm::answer(&p.payload, p.finish, &sig, address)
            }
            Chain::Solana => {
                let pubkey = signer::solana_pubkey(&wallet).map_err(|e| errors::sign(&e))?;
                let p = solana::prepare(op, body, &pubkey)?;
                draft.digest = Some(p.digest.clone());
                draft.detail = Some(p.detail.clone());
                self.judge(identity, &policy, &wref, &p.subject, None, draft)
                    .await?;
                if draft.dry_run {
                    return Ok(dry_answer(&p.digest, draft));
                }
                let kind = match op {
                    Operation::SolanaTransaction => signer::SolanaKind::Transaction,
                    _ => signer::SolanaKind::Message,
                };
                let sig = self
                    .signer
                    .sign_solana_bytes(&wallet, kind, &p.payload)
                    .await
                    .map_err(|e| errors::sign(&e))?;
                solana::answer(&p.payload, p.finish, &sig, &pubkey)
            }
        }
    }
}

/// The refusal for an EVM address no wallet the client may see holds.
fn no_wallet_at(a: &alloy_primitives::Address) -> Refusal {
    refuse(
        "wallet_not_found",
        format!("no active EVM wallet holds address {a:#x}"),
    )
}

fn dry_answer(digest: &str, draft: &Draft) -> Value {
    let matched = draft
        .policy
        .as_ref()
        .map(|p| p.matched.clone())
        .unwrap_or_default();
    json!({ "dryRun": true, "decision": "allowed", "digest": digest, "matchedRules": matched })
}
