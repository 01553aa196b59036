//! The Ethereum JSON-RPC face: `POST /v1/rpc` and `POST /v1/rpc/{chainId}` on the signing
//! API listener, so ethers, viem, web3.py (any client that can use a JSON-RPC signer)
//! sign through keyward with a URL and a TLS configuration.
//!
//! Owns: JSON-RPC 2.0 framing (single requests, batches of at most [`MAX_BATCH`],
//! notifications), the method table ([`methods`]), the mapping of keyward refusals onto
//! the error codes clients already handle ([`RpcError::refused`]), and the `[rpc]
//! upstream` node ([`upstream`], [`fill`]). Every signing method goes through
//! [`Api::decide`], the decision path of the REST routes: same grants, policy, rate
//! limits, audit record (its detail says `"face": "rpc"`). Must never: forward a signing
//! or account method to the upstream node (it would sign with the node's keys), or answer
//! a signing call before its audit record is durable.

pub mod fill;
pub mod methods;
/// The node client lives beside the faces (the decision path asks it for the pending
/// nonce); re-exported here where it was first written.
pub use super::upstream;

use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::{Api, Refused};
use crate::http::{self, Body, Refusal};
use upstream::{Budget, Upstream};

/// Most calls in one batch; a larger batch is refused whole (`-32600`).
pub const MAX_BATCH: usize = 100;

/// Largest request body (a whole batch).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// JSON-RPC error codes this face answers with: `(code, meaning)`.
pub const ERROR_CODES: &[(i64, &str)] = &[
    (-32700, "parse error: the body is not JSON"),
    (-32600, "invalid request: not a JSON-RPC 2.0 request object, an empty batch, a batch of more than 100 calls, or a query parameter this face does not take"),
    (-32601, "method not found: not served by keyward, and not forwarded (no `[rpc] upstream`, or not in `rpc.forward_methods`, matched exactly)"),
    (-32602, "invalid params: the message names the parameter; for a request keyward audited, `data.code` is the REST error code (invalid_message, invalid_typed_data, invalid_transaction, …)"),
    (4001, "refused by policy (EIP-1193 \"user rejected\"; the message starts with \"User denied\", which ethers maps to ACTION_REJECTED); `data.rule` names the rule"),
    (4100, "no grant for this client, wallet and method (forwarding needs `rpc.forward`), or no active wallet holds the address (EIP-1193 \"unauthorized\")"),
    (-32005, "a limit is exceeded (EIP-1474 \"limit exceeded\"): a policy rate limit (`data.code` rate_limited; `data.rule` names it, `data.retryAfter` says when to retry), or the upstream answers' byte bounds (`data.code` upstream_answer_too_large: this request's, rpc.max_upstream_response_bytes; upstream_busy: all requests', rpc.max_upstream_inflight_bytes)"),
    (-32000, "the appliance is locked, the wallet revoked, its engine unavailable, no chain id is known, or the upstream node refused a call keyward made for this one; `data.code` says which"),
    (-32603, "internal error: the token, the store, a co-signer or the upstream node failed; `data.code` says which"),
];

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// `error.code`.
    pub code: i64,
    /// `error.message`.
    pub message: String,
    /// `error.data`.
    pub data: Option<Value>,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32700`.
    pub fn parse(message: impl Into<String>) -> RpcError {
        RpcError::new(-32700, message)
    }

    /// `-32600`.
    pub fn invalid_request(message: impl Into<String>) -> RpcError {
        RpcError::new(-32600, message)
    }

    /// `-32601` for `method`.
    pub fn method_not_found(method: &str, why: &str) -> RpcError {
        let shown: String = method.chars().take(64).collect();
        RpcError::new(-32601, format!("method {shown:?} not found: {why}"))
    }

    /// `-32602`, the message naming the parameter.
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }

    /// With `data.code`.
    fn with_code(mut self, code: &str) -> RpcError {
        self.data = Some(json!({ "code": code }));
        self
    }

    /// A refusal that has no audit record (a call that is not a sign request).
    pub fn unaudited(r: &Refusal) -> RpcError {
        RpcError::new(code_for(r.code, r.status), message_for(r)).with_code(r.code)
    }

    /// A refusal of the decision path, with its audit record's id.
    pub fn refused(refused: &Refused, audit_id: &str) -> RpcError {
        let r = &refused.refusal;
        let mut data = json!({ "code": r.code, "auditId": audit_id });
        if let Some(rule) = &refused.rule {
            data["rule"] = json!(rule);
        }
        if let Some(m) = &refused.matched {
            data["matchedRules"] = json!(m);
        }
        if let Some(secs) = refused.retry_after {
            data["retryAfter"] = json!(secs);
        }
        RpcError {
            code: code_for(r.code, r.status),
            message: message_for(r),
            data: Some(data),
        }
    }

    fn to_json(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(d) = &self.data {
            e["data"] = d.clone();
        }
        e
    }
}

/// The JSON-RPC code for a keyward error code.
pub fn code_for(code: &str, status: StatusCode) -> i64 {
    match code {
        "policy_denied" => 4001,
        "not_authorized" | "wallet_not_found" | "unauthenticated" => 4100,
        "rate_limited" | "upstream_answer_too_large" | "upstream_busy" => -32005,
        // the node's own refusal (nonce too low, insufficient funds, reverted), as geth
        // reports those
        "upstream_rejected" => -32000,
        _ if status.is_server_error() => -32603,
        _ if status == StatusCode::BAD_REQUEST => -32602,
        _ => -32000,
    }
}

fn message_for(r: &Refusal) -> String {
    if r.code == "policy_denied" {
        // ethers' JsonRpcProvider maps an error to ACTION_REJECTED by this wording
        // (only its browser provider looks at the 4001 code)
        format!("User denied by keyward policy: {}", r.message)
    } else {
        r.message.clone()
    }
}

/// A call's result: built here, or the upstream node's JSON text passed on as it is.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum Reply {
    /// Built by keyward.
    Json(Value),
    /// Forwarded: never parsed into a `Value` (see [`upstream`]).
    Raw(Box<RawValue>),
}

/// The answer to one call: a result, an error, or nothing (a notification).
#[derive(Debug)]
pub(crate) struct Answer {
    id: Value,
    outcome: Result<Reply, RpcError>,
    notification: bool,
}

#[derive(Serialize)]
struct Wire<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Reply>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<Value>,
}

impl Answer {
    /// Appends the answer's JSON to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        let (result, error) = match &self.outcome {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e.to_json())),
        };
        let wire = Wire {
            jsonrpc: "2.0",
            id: &self.id,
            result,
            error,
        };
        // nothing in an answer can fail to serialize (a RawValue is valid JSON)
        if serde_json::to_writer(&mut *out, &wire).is_err() {
            out.extend_from_slice(br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"the answer cannot be written"}}"#);
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// One parsed request object.
#[derive(Debug)]
pub(crate) struct Call {
    id: Value,
    method: String,
    params: Value,
    notification: bool,
}

/// Parses one request object; a malformed one is answered with `id` null unless its id
/// itself was usable.
fn parse_call(v: Value) -> Result<Call, Answer> {
    let bad = |id: Value, m: &str| Answer {
        id,
        outcome: Err(RpcError::invalid_request(m.to_owned())),
        notification: false,
    };
    let Value::Object(mut m) = v else {
        return Err(bad(Value::Null, "a request must be a JSON object"));
    };
    let (id, notification) = match m.remove("id") {
        None => (Value::Null, true),
        Some(id @ (Value::Null | Value::String(_))) => (id, false),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => (Value::Number(n), false),
        Some(_) => {
            return Err(bad(
                Value::Null,
                "`id` must be a string, an integer or null",
            ))
        }
    };
    if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(bad(id, "`jsonrpc` must be \"2.0\""));
    }
    let method = match m.remove("method") {
        Some(Value::String(s)) => s,
        _ => return Err(bad(id, "`method` must be a string")),
    };
    let params = match m.remove("params") {
        None | Some(Value::Null) => Value::Array(Vec::new()),
        Some(p @ (Value::Array(_) | Value::Object(_))) => p,
        Some(_) => return Err(bad(id, "`params` must be an array or an object")),
    };
    Ok(Call {
        id,
        method,
        params,
        notification,
    })
}

/// What a call needs to know about its request.
pub(crate) struct Ctx<'a> {
    pub api: &'a Api,
    pub identity: &'a str,
    /// `{chainId}` of the path.
    pub path_chain: Option<u64>,
    /// `rpc.chain_id`.
    pub config_chain: Option<u64>,
    /// The upstream node, or why it cannot be used.
    pub upstream: Result<Option<Arc<Upstream>>, String>,
    /// `?compat=geth`: `eth_signTransaction` answers `{raw, tx}` as geth does.
    pub geth_compat: bool,
    /// Audit ids of the signing calls answered, in order.
    audit_ids: Mutex<Vec<String>>,
    /// The bytes of upstream answers this request may still hold.
    pub budget: Budget,
    /// `eth_accounts` of this request, listed once however many calls of a batch ask.
    pub accounts: tokio::sync::OnceCell<Value>,
}

/// Query parameters: only `compat=geth`.
fn parse_query(query: Option<&str>) -> Result<bool, RpcError> {
    let mut geth = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("compat", "geth") => geth = true,
            ("compat", "standard") => geth = false,
            ("dryRun", _) => return Err(RpcError::invalid_request(
                "dry runs are not offered on the JSON-RPC face; use the REST routes' ?dryRun=true",
            )),
            (k, _) => {
                let k: String = k.chars().take(32).collect();
                return Err(RpcError::invalid_request(format!(
                    "unknown query parameter {k:?} (this face takes only compat=geth)"
                )));
            }
        }
    }
    Ok(geth)
}

fn rpc_response(status: StatusCode, body: Vec<u8>, audit_id: Option<&str>) -> Response<Body> {
    let mut resp = hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::new(body.into()))
        .expect("static response parts");
    if let Some(id) = audit_id.and_then(|id| id.parse().ok()) {
        resp.headers_mut().insert("keyward-audit-id", id);
    }
    resp
}

fn error_response(status: StatusCode, e: RpcError) -> Response<Body> {
    let a = Answer {
        id: Value::Null,
        outcome: Err(e),
        notification: false,
    };
    rpc_response(status, a.to_bytes(), None)
}

impl Api {
    /// `POST /v1/rpc[/{chainId}]`.
    pub(crate) async fn rpc(
        &self,
        identity: &str,
        path_chain: Option<u64>,
        parts: &Parts,
        body: Incoming,
    ) -> Response<Body> {
        let geth_compat = match parse_query(parts.uri.query()) {
            Ok(g) => g,
            Err(e) => return error_response(StatusCode::OK, e),
        };
        if let Err(r) = super::check_json_content_type(parts) {
            return error_response(
                r.status,
                RpcError::invalid_request(r.message).with_code(r.code),
            );
        }
        let bytes = match http::read_body(body, BODY_LIMIT).await {
            Ok(b) => b,
            Err(r) => {
                return error_response(
                    r.status,
                    RpcError::invalid_request(r.message).with_code(r.code),
                )
            }
        };
        let request: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return error_response(
                    StatusCode::OK,
                    RpcError::parse(format!("the body is not valid JSON: {e}")),
                )
            }
        };
        let config = self.app.config();
        let ctx = Ctx {
            api: self,
            identity,
            path_chain,
            config_chain: config.rpc.chain_id,
            upstream: self.nodes.upstream(&config.rpc),
            geth_compat,
            audit_ids: Mutex::default(),
            budget: self.nodes.budget(&config.rpc),
            accounts: tokio::sync::OnceCell::new(),
        };
        drop(config);
        match request {
            Value::Array(calls) => {
                if calls.is_empty() {
                    return error_response(
                        StatusCode::OK,
                        RpcError::invalid_request("an empty batch"),
                    );
                }
                if calls.len() > MAX_BATCH {
                    return error_response(
                        StatusCode::OK,
                        RpcError::invalid_request(format!(
                            "a batch of {} calls; at most {MAX_BATCH} are accepted",
                            calls.len()
                        )),
                    );
                }
                // each answer is written out as it comes, and its own copy dropped
                let mut out = vec![b'['];
                // in order, one after the other: each call is decided (and its rolling
                // caps and rate limits counted) after the ones before it
                for call in calls {
                    let a = ctx.answer(call).await;
                    if !a.notification {
                        if out.len() > 1 {
                            out.push(b',');
                        }
                        a.write(&mut out);
                    }
                }
                if out.len() == 1 {
                    return no_content();
                }
                out.push(b']');
                rpc_response(StatusCode::OK, out, None)
            }
            single => {
                let a = ctx.answer(single).await;
                if a.notification {
                    return no_content();
                }
                let audit = ctx.last_audit_id();
                rpc_response(StatusCode::OK, a.to_bytes(), audit.as_deref())
            }
        }
    }
}

/// Nothing to answer (only notifications): JSON-RPC sends no body.
fn no_content() -> Response<Body> {
    let mut r = Response::new(Body::default());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

impl Ctx<'_> {
    async fn answer(&self, v: Value) -> Answer {
        let call = match parse_call(v) {
            Ok(c) => c,
            Err(a) => return a,
        };
        if call.notification {
            // every method keyward serves is a question: a notification (no `id`) asks
            // for no answer, so nothing is signed, forwarded or audited for it
            return Answer {
                id: Value::Null,
                outcome: Ok(Reply::Json(Value::Null)),
                notification: true,
            };
        }
        let outcome =
            match http::catch_panic(methods::dispatch(self, &call.method, call.params)).await {
                Ok(r) => r,
                Err(r) => Err(RpcError::unaudited(&r)),
            };
        Answer {
            id: call.id,
            outcome,
            notification: false,
        }
    }

    /// The chain id of this request: the path's, else `rpc.chain_id`, else the upstream
    /// node's (asked once per upstream client); `None` when none is known.
    pub async fn chain_id(&self) -> Result<Option<u64>, Refusal> {
        if let Some(id) = self.path_chain.or(self.config_chain) {
            return Ok(Some(id));
        }
        let Some(up) = self.upstream_node()? else {
            return Ok(None);
        };
        let id = up
            .chain_id(&self.budget)
            .await
            .map_err(|e| fill::refusal(&e))?;
        Ok(Some(id))
    }

    /// Notes the audit record of a signing call.
    pub fn audited(&self, id: &str) {
        let mut ids = self.audit_ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.push(id.to_owned());
    }

    /// The audit id of the last signing call.
    pub fn last_audit_id(&self) -> Option<String> {
        let ids = self.audit_ids.lock().unwrap_or_else(|p| p.into_inner());
        ids.last().cloned()
    }

    /// The upstream node (`None`: none configured).
    pub fn upstream_node(&self) -> Result<Option<Arc<Upstream>>, Refusal> {
        self.upstream.clone().map_err(|e| {
            super::errors::refuse(
                "upstream_unavailable",
                format!("the upstream node is not usable: {e}"),
            )
        })
    }
}

/// Parses the `{chainId}` path segment: decimal or 0x hex, 1 to the largest legacy id.
pub fn parse_chain_segment(s: &str) -> Option<u64> {
    let id = match s.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.len() <= 16 => u64::from_str_radix(h, 16).ok()?,
        Some(_) => return None,
        None if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()?
        }
        None => return None,
    };
    (id != 0 && id <= crate::chains::evm::MAX_LEGACY_CHAIN_ID).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_segments() {
        assert_eq!(parse_chain_segment("1"), Some(1));
        assert_eq!(parse_chain_segment("0x89"), Some(137));
        assert_eq!(parse_chain_segment("1337"), Some(1337));
        for bad in [
            "0",
            "0x0",
            "0x",
            "",
            "-1",
            "1e3",
            "x1",
            "0xzz",
            "+1",
            "99999999999999999999",
        ] {
            assert_eq!(parse_chain_segment(bad), None, "{bad}");
        }
    }

    #[test]
    fn request_objects() {
        let c = parse_call(json!({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId"})).unwrap();
        assert_eq!(
            (c.id, c.method.as_str(), c.params),
            (json!(7), "eth_chainId", json!([]))
        );
        let n = parse_call(json!({"jsonrpc": "2.0", "method": "x", "params": []})).unwrap();
        assert!(n.notification);
        let null_id = parse_call(json!({"jsonrpc": "2.0", "id": null, "method": "x"})).unwrap();
        assert!(!null_id.notification);
        for (bad, id) in [
            (json!(1), Value::Null),
            (json!({"jsonrpc": "1.0", "id": 1, "method": "x"}), json!(1)),
            (json!({"id": "a", "method": "x"}), json!("a")),
            (json!({"jsonrpc": "2.0", "id": 1, "method": 5}), json!(1)),
            (
                json!({"jsonrpc": "2.0", "id": 1, "method": "x", "params": "p"}),
                json!(1),
            ),
            (
                json!({"jsonrpc": "2.0", "id": [1], "method": "x"}),
                Value::Null,
            ),
            (
                json!({"jsonrpc": "2.0", "id": 1.5, "method": "x"}),
                Value::Null,
            ),
        ] {
            let a = parse_call(bad.clone()).unwrap_err();
            assert_eq!(a.id, id, "{bad}");
            assert_eq!(a.outcome.unwrap_err().code, -32600, "{bad}");
        }
    }

    #[test]
    fn refusals_map_onto_client_codes() {
        let st = |c: &str| super::super::errors::status_of(c);
        for (code, rpc) in [
            ("policy_denied", 4001),
            ("not_authorized", 4100),
            ("wallet_not_found", 4100),
            ("rate_limited", -32005),
            ("appliance_locked", -32000),
            ("wallet_revoked", -32000),
            ("engine_unavailable", -32000),
            ("invalid_message", -32602),
            ("invalid_typed_data", -32602),
            ("missing_chain_id", -32602),
            ("hsm_error", -32603),
            ("store_unavailable", -32603),
            ("upstream_unavailable", -32603),
            ("upstream_rejected", -32000),
        ] {
            assert_eq!(code_for(code, st(code)), rpc, "{code}");
        }
        let r = Refused {
            refusal: super::super::errors::refuse(
                "policy_denied",
                "refused by policy rule `cap`: over",
            ),
            rule: Some("cap".into()),
            matched: Some(vec!["cap".into()]),
            retry_after: None,
        };
        let e = RpcError::refused(&r, "a-1");
        assert_eq!(e.code, 4001);
        assert!(e.message.starts_with("User denied"));
        assert_eq!(
            e.data,
            Some(
                json!({"code": "policy_denied", "auditId": "a-1", "rule": "cap", "matchedRules": ["cap"]})
            )
        );
        for c in ERROR_CODES {
            assert!(!c.1.is_empty());
        }
    }

    #[test]
    fn query_parameters() {
        assert!(!parse_query(None).unwrap());
        assert!(parse_query(Some("compat=geth")).unwrap());
        assert_eq!(parse_query(Some("dryRun=true")).unwrap_err().code, -32600);
        assert_eq!(parse_query(Some("x=1")).unwrap_err().code, -32600);
    }
}
