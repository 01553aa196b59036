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

pub mod decision;
pub mod errors;
pub mod evm;
pub mod grants;
pub mod openapi;
pub mod policy_gate;
pub mod routes;
pub mod rpc;
pub mod solana;
pub mod upstream;
pub mod user_op;

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::appliance::Appliance;
use crate::config::Operation;
use crate::http::{self, Body, Conn, Refusal};
use crate::signer::Signer;
use crate::store::wallets::{self as rows, Chain, Wallet};
pub use decision::{Decided, Face, Refused, SignCall, WalletKey};
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
    nodes: upstream::Nodes,
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
            nodes: upstream::Nodes::default(),
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
            (
                Some(identity),
                Matched::Route {
                    id,
                    wallet_id,
                    chain_id,
                    ..
                },
            ) => match id {
                RouteId::Whoami => self.whoami(identity),
                RouteId::OpenApi => openapi::response(),
                RouteId::ListWallets => self.list_wallets(identity, parts.uri.query()).await,
                RouteId::GetWallet => {
                    self.get_wallet(identity, wallet_id.unwrap_or_default())
                        .await
                }
                RouteId::Sign(op) => {
                    let wallet_id = wallet_id.unwrap_or_default().to_owned();
                    self.sign(identity, op, wallet_id, &parts, body).await
                }
                RouteId::Rpc => Box::pin(self.rpc(identity, chain_id, &parts, body)).await,
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

    /// Whether `identity`'s grants show it `w`: a selector matches and at least one
    /// granted operation is of the wallet's chain (a client with only EVM operations does
    /// not see Solana wallets, whatever its selectors match).
    fn visible(g: &Grants<'_>, w: &Wallet) -> bool {
        !g.operations_for(w).is_empty()
    }

    /// A page of the wallets this client may see: `?limit=` (1-1000, default 100) and
    /// `?after=<walletId>` (the previous page's `next`). Rows are scanned in id order and
    /// filtered by the grants; one request scans at most `SCAN_PER_PAGE` rows, so a client
    /// with a narrow grant on a large appliance may get a short page with a `next` cursor.
    async fn list_wallets(&self, identity: &str, query: Option<&str>) -> Response<Body> {
        const SCAN_PER_PAGE: usize = 10_000;
        if Grants::of(&self.app.config(), identity).is_empty() {
            return no_grant(identity).into_response(None);
        }
        let (limit, mut after) = match page_query(query) {
            Ok(q) => q,
            Err(r) => return r.into_response(None),
        };
        let mut visible = Vec::new();
        let mut scanned = 0;
        let mut exhausted = false;
        'scan: while scanned < SCAN_PER_PAGE {
            let cursor = after.clone();
            let batch = limit.min(SCAN_PER_PAGE - scanned);
            let page = match self
                .app
                .store
                .read_async(move |c| rows::page_without_material(c, cursor.as_deref(), batch))
                .await
            {
                Ok(p) => p,
                Err(e) => return errors::store(&e).into_response(None),
            };
            let full = page.len() == batch;
            // the config in force for this page (a reload between pages applies at once)
            let config = self.app.config();
            let g = Grants::of(&config, identity);
            for w in &page {
                scanned += 1;
                after = Some(w.id.clone());
                if Self::visible(&g, w) {
                    visible.push(Self::wallet_json(&g, w));
                    if visible.len() == limit {
                        break 'scan;
                    }
                }
            }
            if !full {
                exhausted = true;
                break;
            }
        }
        let next = if exhausted { None } else { after };
        http::json(StatusCode::OK, &json!({ "wallets": visible, "next": next }))
    }

    /// One wallet. A wallet the client may not see is answered exactly as one that does
    /// not exist (same status, code and message): the route is no existence oracle.
    async fn get_wallet(&self, identity: &str, id: &str) -> Response<Body> {
        if Grants::of(&self.app.config(), identity).is_empty() {
            return no_grant(identity).into_response(None);
        }
        let found = self.load_wallet(id).await;
        let config = self.app.config();
        let g = Grants::of(&config, identity);
        match found {
            Ok(w) if Self::visible(&g, &w) => {
                http::json(StatusCode::OK, &Self::wallet_json(&g, &w))
            }
            Ok(_)
            | Err(Refusal {
                code: "wallet_not_found",
                ..
            }) => refuse(
                "wallet_not_found",
                format!("no wallet with id {id} that client {identity} may see"),
            )
            .into_response(None),
            Err(r) => r.into_response(None),
        }
    }

    async fn load_wallet(&self, id: &str) -> Result<Wallet, Refusal> {
        let owned = id.to_owned();
        match self
            .app
            .store
            .read_async(move |c| rows::get(c, &owned))
            .await
        {
            Ok(Some(w)) => Ok(w),
            Ok(None) => Err(refuse(
                "wallet_not_found",
                format!("no wallet with id {id}"),
            )),
            Err(e) => Err(errors::store(&e)),
        }
    }

    /// A REST sign request: decided, audited durably, then answered.
    async fn sign(
        &self,
        identity: &str,
        op: Operation,
        wallet_id: String,
        parts: &Parts,
        body: Incoming,
    ) -> Response<Body> {
        let call = SignCall {
            identity,
            face: Face::Rest,
            operation: op,
            wallet: WalletKey::Id(wallet_id),
            dry_run: dry_run(parts.uri.query()),
        };
        let input = async move {
            check_json_content_type(parts)?;
            let bytes: Bytes = http::read_body(body, BODY_LIMIT).await?;
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| refuse("invalid_json", format!("the body is not valid JSON: {e}")))?;
            if !body.is_object() {
                return Err(refuse("invalid_json", "the body must be a JSON object"));
            }
            Ok(body)
        };
        let decided = match self.decide(call, input).await {
            Ok(d) => d,
            Err(r) => return r.into_response(None),
        };
        let audit_id = decided.audit_id;
        match decided.outcome {
            Ok(Value::Object(mut m)) => {
                m.insert("auditId".into(), Value::String(audit_id));
                http::json(StatusCode::OK, &m)
            }
            Ok(other) => http::json(
                StatusCode::OK,
                &json!({ "result": other, "auditId": audit_id }),
            ),
            Err(refused) => {
                let r = refused.refusal;
                let mut error = json!({ "code": r.code, "message": r.message });
                if let Some(rule) = refused.rule {
                    error["rule"] = Value::String(rule);
                }
                let mut body = json!({ "error": error, "auditId": audit_id });
                if let Some(m) = refused.matched {
                    body["matchedRules"] = json!(m);
                }
                if decided.dry_run {
                    body["dryRun"] = Value::Bool(true);
                }
                let mut resp = http::json(r.status, &body);
                if let Some(secs) = refused.retry_after {
                    if let Ok(v) = secs.to_string().parse() {
                        resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
                    }
                }
                resp
            }
        }
    }
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

/// `limit` and `after` of a wallet listing.
fn page_query(query: Option<&str>) -> Result<(usize, Option<String>), Refusal> {
    let mut limit = 100;
    let mut after = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("limit", v) => {
                limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| {
                        refuse(
                            "invalid_query",
                            format!("limit must be 1 to 1000, not {:?}", truncate(v, 16)),
                        )
                    })?
            }
            ("after", v) if rows::is_valid_id(v) => after = Some(v.to_owned()),
            ("after", v) => {
                return Err(refuse(
                    "invalid_query",
                    format!("after must be a wallet id, not {:?}", truncate(v, 32)),
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
    Ok((limit, after))
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
