//! The signing API: the mTLS face through which backend services ask for signatures.
//!
//! Owns: the listener (client certificate required, verified against `api.client_ca` and
//! CRLs by [`crate::tls::api_server`]), identity → grants (deny by default), the routes of
//! [`routes::ROUTES`], request parsing into chain payloads, and the audit record of every
//! sign request that reached a handler — allowed or refused. A signature leaves only
//! after its audit record is durable (the store's group commit resolved); if the record
//! cannot be written, the signature is dropped and the client gets 503.
//!
//! Must never: import the webhook face, log or echo request bodies or secrets, answer a
//! sign request without an `auditId`, or sign while the appliance is locked.

pub mod errors;
pub mod evm;
pub mod grants;
pub mod openapi;
pub mod policy_gate;
pub mod routes;
pub mod solana;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::appliance::Appliance;
use crate::config::Operation;
use crate::http::{self, Body, Conn, Refusal};
use crate::signer::{self, Signer};
use crate::store::audit::AuditEvent;
use crate::store::wallets::{self as rows, Chain, Wallet};
use errors::refuse;
use grants::Grants;
use routes::{Matched, RouteId};

/// Largest request body accepted by the sign routes.
pub const BODY_LIMIT: usize = 256 * 1024;

/// A parsed sign request: what is audited, what is signed, and how to answer.
#[derive(Debug)]
pub struct Prepared<P, F> {
    /// Hex digest for the audit record (EVM: the signed digest; Solana: SHA-256 of the
    /// signed bytes).
    pub digest: String,
    /// Non-secret summary for the audit record.
    pub detail: Value,
    /// What the engine signs.
    pub payload: P,
    /// How to build the answer.
    pub finish: F,
    /// What the policy judges.
    pub subject: crate::policy::Subject,
}

/// Deserializes a request object strictly (unknown fields refused).
pub(crate) fn parse_body<T: DeserializeOwned>(body: Value) -> Result<T, Refusal> {
    serde_json::from_value(body).map_err(|e| refuse("invalid_request", e.to_string()))
}

/// The signing API service.
pub struct Api {
    app: Arc<Appliance>,
    signer: Signer,
    limiter: policy_gate::RateLimiter,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

/// Serves the signing API on `listener` until `shutdown` turns true.
pub async fn serve(
    app: Arc<Appliance>,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), crate::tls::TlsError> {
    let service = Api::new(app.clone());
    serve_with(app, service, listener, shutdown).await
}

/// Like [`serve`], with a prepared service (tests inject engines through
/// [`Api::with_signer`]).
pub async fn serve_with(
    app: Arc<Appliance>,
    service: Api,
    listener: tokio::net::TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), crate::tls::TlsError> {
    // reloadable: SIGHUP swaps certificate, client CAs and CRLs under this config
    let tls = app.api_tls()?.server_config();
    let service = Arc::new(service);
    let handler = Arc::new(move |req: Request<Incoming>, conn: Arc<Conn>| {
        let service = service.clone();
        async move { service.handle(req, conn).await }
    });
    let api = &app.config().api;
    let admission = http::admission::Admission::new(
        "api",
        http::admission::Caps {
            total: api.max_connections,
            per_source: api.max_connections_per_source,
        },
        None,
    );
    http::serve(
        listener,
        tokio_rustls::TlsAcceptor::from(tls),
        admission,
        handler,
        shutdown,
    )
    .await;
    Ok(())
}

/// What the audit record of a sign request says, filled in as the request progresses.
struct Draft {
    wallet_id: String,
    operation: Operation,
    digest: Option<String>,
    detail: Option<Value>,
    dry_run: bool,
    policy: Option<policy_gate::Outcome>,
    rule: Option<String>,
    matched: Option<Vec<String>>,
    retry_after: Option<u64>,
}

impl Api {
    /// The service over `app`.
    pub fn new(app: Arc<Appliance>) -> Api {
        let signer = Signer::with_engines(app.token.clone(), &app.config().engines)
            .with_store(app.store.clone());
        Api::with_signer(app, signer)
    }

    /// The service over `app`, signing with `signer`.
    pub fn with_signer(app: Arc<Appliance>, signer: Signer) -> Api {
        Api {
            app,
            signer,
            limiter: policy_gate::RateLimiter::default(),
        }
    }

    /// Answers one request.
    pub async fn handle(&self, req: Request<Incoming>, conn: Arc<Conn>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let matched = routes::route(&parts.method, parts.uri.path());
        let template = match &matched {
            Matched::Route { template, .. } => *template,
            _ => "unmatched",
        };
        let response = match (conn.identity.as_deref(), matched) {
            (None, _) => refuse(
                "unauthenticated",
                "the client certificate names no identity (CN or URI SAN)",
            )
            .into_response(None),
            (_, Matched::NotFound) => refuse(
                "route_not_found",
                format!("no route {} {}", parts.method, parts.uri.path()),
            )
            .into_response(None),
            (_, Matched::MethodNotAllowed { allow }) => {
                let mut r = refuse(
                    "method_not_allowed",
                    format!("{} is not allowed here", parts.method),
                )
                .into_response(None);
                if let Ok(v) = allow.join(", ").parse() {
                    r.headers_mut().insert(hyper::header::ALLOW, v);
                }
                r
            }
            (Some(identity), Matched::Route { id, wallet_id, .. }) => match id {
                RouteId::Whoami => self.whoami(identity),
                RouteId::OpenApi => openapi::response(),
                RouteId::ListWallets => self.list_wallets(identity),
                RouteId::GetWallet => self.get_wallet(identity, wallet_id.unwrap_or_default()),
                RouteId::Sign(op) => {
                    let started = Instant::now();
                    let wallet_id = wallet_id.unwrap_or_default().to_owned();
                    let r = self.sign(identity, op, wallet_id, &parts, body).await;
                    crate::metrics::get()
                        .sign_seconds
                        .with_label_values(&[op.as_str()])
                        .observe(started.elapsed().as_secs_f64());
                    r
                }
            },
        };
        crate::metrics::get()
            .requests
            .with_label_values(&["api", template, response.status().as_str()])
            .inc();
        response
    }

    fn whoami(&self, identity: &str) -> Response<Body> {
        let config = self.app.config();
        let g = Grants::of(&config, identity);
        let ops: Vec<&str> = g.operations().iter().map(|o| o.as_str()).collect();
        http::json(
            StatusCode::OK,
            &json!({ "identity": identity, "wallets": g.selectors(), "operations": ops }),
        )
    }

    fn wallet_json(g: &Grants<'_>, w: &Wallet) -> Value {
        let ops: Vec<&str> = g.operations_for(w).iter().map(|o| o.as_str()).collect();
        json!({
            "id": w.id,
            "chain": w.chain,
            "address": w.address,
            "label": w.label,
            "engine": w.engine,
            "status": w.status,
            "source": w.source,
            "operations": ops,
        })
    }

    fn list_wallets(&self, identity: &str) -> Response<Body> {
        let config = self.app.config();
        let g = Grants::of(&config, identity);
        if g.is_empty() {
            return no_grant(identity).into_response(None);
        }
        match self.app.store.read(rows::list) {
            Ok(all) => {
                let visible: Vec<Value> = all
                    .iter()
                    .filter(|w| g.can_see(w))
                    .map(|w| Self::wallet_json(&g, w))
                    .collect();
                http::json(StatusCode::OK, &json!({ "wallets": visible }))
            }
            Err(e) => errors::store(&e).into_response(None),
        }
    }

    fn get_wallet(&self, identity: &str, id: &str) -> Response<Body> {
        let config = self.app.config();
        let g = Grants::of(&config, identity);
        if g.is_empty() {
            return no_grant(identity).into_response(None);
        }
        match self.load_wallet(id) {
            Ok(w) if g.can_see(&w) => http::json(StatusCode::OK, &Self::wallet_json(&g, &w)),
            Ok(_) => refuse(
                "not_authorized",
                format!("client {identity} has no grant for wallet {id}"),
            )
            .into_response(None),
            Err(r) => r.into_response(None),
        }
    }

    fn load_wallet(&self, id: &str) -> Result<Wallet, Refusal> {
        let owned = id.to_owned();
        match self.app.store.read(move |c| rows::get(c, &owned)) {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err(refuse(
                "wallet_not_found",
                format!("no wallet with id {id}"),
            )),
            Err(e) => Err(errors::store(&e)),
        }
    }

    /// A sign request: decided, audited durably, then answered.
    async fn sign(
        &self,
        identity: &str,
        op: Operation,
        wallet_id: String,
        parts: &Parts,
        body: Incoming,
    ) -> Response<Body> {
        let mut draft = Draft {
            wallet_id,
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
        let outcome = http::catch_panic(self.decide_and_sign(identity, &mut draft, parts, body))
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
                tracing::warn!(client = identity, wallet = %draft.wallet_id, operation = op.as_str(), code = r.code, message = %r.message, "sign request failed");
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
        }
        let event = AuditEvent {
            actor: identity.to_owned(),
            action: if draft.dry_run {
                "sign.dry_run"
            } else {
                "sign"
            }
            .into(),
            wallet_id: Some(draft.wallet_id.clone()),
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
        let (audit_id, late) = match self
            .app
            .store
            .write(move |ctx| policy_gate::commit(ctx, event, counted, releasing))
            .await
        {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, wallet = %draft.wallet_id, "audit record not durable; answer withheld");
                return refuse(
                    "store_unavailable",
                    "the audit record could not be made durable; nothing was signed or returned",
                )
                .into_response(None);
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
                tracing::warn!(client = identity, wallet = %draft.wallet_id, "signature withheld: the appliance was locked or the wallet revoked while it was being made");
                Err(late.refusal(&draft.wallet_id))
            }
            None => outcome,
        };
        match outcome {
            Ok(Value::Object(mut m)) => {
                m.insert("auditId".into(), Value::String(audit_id));
                http::json(StatusCode::OK, &m)
            }
            Ok(other) => http::json(
                StatusCode::OK,
                &json!({ "result": other, "auditId": audit_id }),
            ),
            Err(r) => {
                let mut error = json!({ "code": r.code, "message": r.message });
                if let Some(rule) = rule {
                    error["rule"] = Value::String(rule);
                }
                let mut body = json!({ "error": error, "auditId": audit_id });
                if let Some(m) = draft.matched.take() {
                    body["matchedRules"] = json!(m);
                }
                if draft.dry_run {
                    body["dryRun"] = Value::Bool(true);
                }
                let mut resp = http::json(r.status, &body);
                if let Some(secs) = draft.retry_after {
                    if let Ok(v) = secs.to_string().parse() {
                        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                    }
                }
                resp
            }
        }
    }

    /// Runs the policy; a refusal carries its rule, and the matched rules go to the audit
    /// record either way.
    fn judge(
        &self,
        identity: &str,
        policy: &crate::policy::Policy,
        wallet: &crate::policy::WalletRef<'_>,
        subject: &crate::policy::Subject,
        draft: &mut Draft,
    ) -> Result<(), Refusal> {
        let req = crate::policy::Request {
            client: identity,
            wallet: *wallet,
            subject,
        };
        let (outcome, denial) = policy_gate::evaluate(&self.app.store, policy, &req)?;
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

    async fn decide_and_sign(
        &self,
        identity: &str,
        draft: &mut Draft,
        parts: &Parts,
        body: Incoming,
    ) -> Result<Value, Refusal> {
        let op = draft.operation;
        draft.dry_run = dry_run(parts.uri.query())?;
        match self.app.lock_reason() {
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
        check_json_content_type(parts)?;
        let bytes: Bytes = http::read_body(body, BODY_LIMIT).await?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| refuse("invalid_json", format!("the body is not valid JSON: {e}")))?;
        if !body.is_object() {
            return Err(refuse("invalid_json", "the body must be a JSON object"));
        }
        let wallet = self.load_wallet(&draft.wallet_id)?;
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
        if let Err((limit, secs)) =
            self.limiter
                .check(&policy, identity, &wref, crate::store::spend::now_ms())
        {
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
                self.judge(identity, &policy, &wref, &p.subject, draft)?;
                if draft.dry_run {
                    return Ok(dry_answer(&p.digest, draft));
                }
                let tx = match &p.finish {
                    evm::Finish::Tx(tx) => Some(&**tx),
                    evm::Finish::Rsv => None,
                };
                let request = signer::EvmRequest::new(op, p.payload, message, tx);
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
                self.judge(identity, &policy, &wref, &p.subject, draft)?;
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

fn dry_answer(digest: &str, draft: &Draft) -> Value {
    let matched = draft
        .policy
        .as_ref()
        .map(|p| p.matched.clone())
        .unwrap_or_default();
    json!({ "dryRun": true, "decision": "allowed", "digest": digest, "matchedRules": matched })
}

fn no_grant(identity: &str) -> Refusal {
    refuse(
        "not_authorized",
        format!("client {identity} has no grants on this appliance"),
    )
}

/// The chain an operation belongs to.
pub fn chain_of(op: Operation) -> Chain {
    match op {
        Operation::SolanaMessage | Operation::SolanaTransaction => Chain::Solana,
        _ => Chain::Evm,
    }
}

fn dry_run(query: Option<&str>) -> Result<bool, Refusal> {
    let mut dry = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("dryRun", "true") => dry = true,
            ("dryRun", "false") => dry = false,
            ("dryRun", v) => {
                return Err(refuse(
                    "invalid_query",
                    format!("dryRun must be true or false, not {:?}", truncate(v, 16)),
                ))
            }
            (k, _) => {
                return Err(refuse(
                    "invalid_query",
                    format!("unknown query parameter {:?}", truncate(k, 32)),
                ))
            }
        }
    }
    Ok(dry)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn check_json_content_type(parts: &Parts) -> Result<(), Refusal> {
    let ok = parts
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_query() {
        assert!(!dry_run(None).unwrap());
        assert!(dry_run(Some("dryRun=true")).unwrap());
        assert!(!dry_run(Some("dryRun=false")).unwrap());
        assert_eq!(dry_run(Some("dryRun=1")).unwrap_err().code, "invalid_query");
        assert_eq!(dry_run(Some("x=1")).unwrap_err().code, "invalid_query");
    }

    #[test]
    fn operations_map_to_chains() {
        assert_eq!(chain_of(Operation::EvmHash), Chain::Evm);
        assert_eq!(chain_of(Operation::SolanaTransaction), Chain::Solana);
    }
}
