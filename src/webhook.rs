//! The webhook ingress face: the vendor's delegation deliveries over server-auth TLS.
//!
//! Owns the request pipeline, in this order: source allowlist (peer, or `X-Forwarded-For`
//! from a trusted proxy) before anything is read; per-source rate and concurrency; path,
//! method, content type and body size; the HMAC over the raw bytes; only then the strict
//! envelope parse, environment and time window, and the event itself ([`events`]).
//! Must never: read a body from a source that is not allowed, parse a body whose MAC did
//! not verify, change the store when it refuses, log a secret, or wait on the lock
//! failsafe (deliveries keep flowing while signing is locked). Never imports `api`.

pub mod events;
pub mod limits;
pub mod source;
pub mod verify;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::appliance::Appliance;
use crate::http::{self, Body, Conn, Refusal};
use crate::tls::TlsError;
use events::{Delivery, Processed};

/// Serves the webhook face on `listener` until `shutdown` turns true.
pub async fn serve(
    app: Arc<Appliance>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), TlsError> {
    let cfg = app.config();
    // reloadable: SIGHUP swaps the certificate under this acceptor
    let acceptor = TlsAcceptor::from(app.webhook_tls()?.server_config());
    let app_for_gate = app.clone();
    let face = Arc::new(Webhook::new(app));
    let handler = Arc::new(move |req: Request<Incoming>, conn: Arc<Conn>| {
        let face = face.clone();
        async move { face.handle(req, conn).await }
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, path = %cfg.webhook.path, "webhook face listening");
    }
    let gate_app = app_for_gate;
    let admission = http::admission::Admission::new(
        "webhook",
        http::admission::Caps {
            total: cfg.webhook.max_connections,
            per_source: cfg.webhook.max_connections_per_source,
        },
        // the config in force at each accept, so a reloaded allowlist applies at once; a
        // trusted proxy passes here and its X-Forwarded-For is judged per request
        Some(Box::new(move |ip| {
            let cfg = gate_app.config();
            let w = &cfg.webhook;
            w.allowed_sources.iter().any(|n| n.contains(&ip))
                || w.trusted_proxies.iter().any(|n| n.contains(&ip))
        })),
    );
    http::serve(listener, acceptor, admission, handler, shutdown).await;
    Ok(())
}

/// Largest refused body still read to its end, so the sender sees the 413 rather than a
/// connection reset while it is writing.
const DRAIN_LIMIT: u64 = 1024 * 1024;

/// The face's state: the appliance, per-source admission, in-flight event ids.
pub struct Webhook {
    app: Arc<Appliance>,
    limits: limits::Limits,
    inflight: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// What a log line and a metric can say about a request.
#[derive(Default)]
struct Seen {
    source: Option<IpAddr>,
    event_id: Option<String>,
    event_name: Option<String>,
}

/// Low-cardinality metric label for an event name.
fn event_label(name: Option<&str>) -> &'static str {
    match name {
        Some(events::CREATED) => "created",
        Some(events::REVOKED) => "revoked",
        Some("ping") => "ping",
        Some(_) => "other",
        None => "unknown",
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::new(status, code, message)
}

impl Webhook {
    /// A face over `app`.
    pub fn new(app: Arc<Appliance>) -> Webhook {
        Webhook {
            app,
            limits: limits::Limits::default(),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Handles one request; every outcome is logged and counted.
    pub async fn handle(&self, req: Request<Incoming>, conn: Arc<Conn>) -> Response<Body> {
        let mut seen = Seen::default();
        let result = self.pipeline(req, &conn, &mut seen).await;
        let m = crate::metrics::get();
        let label = event_label(seen.event_name.as_deref());
        let source = seen.source.map(|s| s.to_string()).unwrap_or_default();
        let event_id = seen.event_id.as_deref().unwrap_or("");
        match result {
            Ok(p) => {
                let result = if p.duplicate {
                    "duplicate"
                } else {
                    p.outcome.as_str()
                };
                m.webhook_events.with_label_values(&[label, result]).inc();
                m.requests
                    .with_label_values(&["webhook", "delivery", "200"])
                    .inc();
                tracing::info!(
                    %source,
                    event_id,
                    event = seen.event_name.as_deref().unwrap_or(""),
                    wallet_id = p.wallet_id.as_deref().unwrap_or(""),
                    outcome = %p.outcome,
                    duplicate = p.duplicate,
                    "webhook event accepted"
                );
                http::json(
                    StatusCode::OK,
                    &serde_json::json!({
                        "status": if p.duplicate { "duplicate" } else { "processed" },
                        "eventId": seen.event_id,
                        "outcome": p.outcome,
                        "walletId": p.wallet_id,
                    }),
                )
            }
            Err(r) => {
                m.webhook_events.with_label_values(&[label, r.code]).inc();
                m.webhook_refusals.with_label_values(&[r.code]).inc();
                m.requests
                    .with_label_values(&["webhook", "delivery", r.status.as_str()])
                    .inc();
                if r.status.is_server_error() {
                    tracing::error!(%source, event_id, code = r.code, status = r.status.as_u16(), message = %r.message, "webhook delivery failed");
                } else {
                    tracing::warn!(%source, event_id, code = r.code, status = r.status.as_u16(), message = %r.message, "webhook delivery refused");
                }
                r.into_response(None)
            }
        }
    }

    async fn pipeline(
        &self,
        req: Request<Incoming>,
        conn: &Conn,
        seen: &mut Seen,
    ) -> Result<Processed, Refusal> {
        let cfg = self.app.config();
        let wh = &cfg.webhook;

        // 1. who: nothing else is looked at for a source that is not allowed
        let src = source::effective_source(conn.peer.ip(), req.headers(), &wh.trusted_proxies)
            .ok_or_else(|| {
                refuse(
                    StatusCode::FORBIDDEN,
                    "source_not_allowed",
                    "X-Forwarded-For from the trusted proxy names no usable client address",
                )
            })?;
        seen.source = Some(src);
        if !source::allowed(src, &wh.allowed_sources) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "source_not_allowed",
                format!("deliveries from {src} are not allowed"),
            ));
        }
        let _permit = self
            .limits
            .admit(src, wh.per_source_rate, wh.per_source_concurrency)
            .await
            .map_err(|d| match d {
                limits::Denied::Rate => refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many deliveries from this source; retry later",
                ),
                limits::Denied::Concurrency => refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_concurrent",
                    "too many deliveries in flight from this source; retry later",
                ),
            })?;

        // 2. shape of the request, before the body
        if req.uri().path() != wh.path {
            return Err(refuse(StatusCode::NOT_FOUND, "not_found", "no such path"));
        }
        if req.method() != Method::POST {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "deliveries are POSTed",
            ));
        }
        let json = req
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Content-Type must be application/json",
            ));
        }
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(n) = declared.filter(|n| *n > wh.body_limit as u64) {
            // Read and discard a moderately oversized body so the sender sees the 413
            // instead of a reset while it is still writing; a huge one is cut off.
            if n <= DRAIN_LIMIT {
                let _ = http::read_body(req.into_body(), DRAIN_LIMIT as usize).await;
            }
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request body exceeds {} bytes", wh.body_limit),
            ));
        }
        let signature = req.headers().get(verify::SIGNATURE_HEADER).cloned();
        let body = http::read_body(req.into_body(), wh.body_limit).await?;

        // 3. the MAC over the raw bytes, before any parsing
        let secrets = self.app.webhook_secrets().map_err(|e| {
            tracing::error!(error = %e, "webhook secret unreadable");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook_secret_unavailable",
                "the webhook secret cannot be read; retry later",
            )
        })?;
        if secrets.is_empty() {
            return Err(refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook_secret_unavailable",
                "no webhook secret is configured",
            ));
        }
        verify::verify(signature.as_ref().map(|v| v.as_bytes()), &body, &secrets).map_err(|e| {
            match e {
                verify::SignatureError::Missing => refuse(
                    StatusCode::UNAUTHORIZED,
                    "signature_missing",
                    "x-dynamic-signature-256 must be sha256=<64 hex digits>",
                ),
                verify::SignatureError::Invalid => refuse(
                    StatusCode::UNAUTHORIZED,
                    "signature_invalid",
                    "the signature does not match the body under any configured secret",
                ),
            }
        })?;
        drop(secrets);

        // 4. the envelope
        let d = events::parse_delivery(&body)?;
        seen.event_id = Some(d.event_id.clone());
        seen.event_name = Some(d.event_name.clone());
        if !wh.environment_ids.is_empty()
            && !d
                .environment_id
                .as_ref()
                .is_some_and(|e| wh.environment_ids.contains(e))
        {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "environment_not_allowed",
                "the event's environmentId is not configured",
            ));
        }
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        if d.timestamp_ms > now_ms.saturating_add(wh.max_future_skew.as_millis() as i64) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "event_in_future",
                format!(
                    "the event timestamp is more than {} ahead",
                    humantime::format_duration(wh.max_future_skew)
                ),
            ));
        }
        if d.timestamp_ms < now_ms.saturating_sub(wh.max_event_age.as_millis() as i64) {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "event_too_old",
                format!(
                    "the event is older than {}",
                    humantime::format_duration(wh.max_event_age)
                ),
            ));
        }

        // 5. the event, once per eventId
        self.once(d).await
    }

    /// Serialises deliveries of one eventId in this process, so concurrent duplicates
    /// wait for the first instead of decrypting in parallel; the write transaction
    /// still decides (it also covers other processes and restarts).
    async fn once(&self, d: Delivery) -> Result<Processed, Refusal> {
        let id = d.event_id.clone();
        let lock = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_default()
            .clone();
        let guard = lock.lock().await;
        let result = self.dispatch(d).await;
        drop(guard);
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        // only the map and this task hold it: nobody else is waiting
        if Arc::strong_count(&lock) == 2 {
            map.remove(&id);
        }
        result
    }

    async fn dispatch(&self, d: Delivery) -> Result<Processed, Refusal> {
        let id = d.event_id.clone();
        let known = self
            .app
            .store
            .read_async(move |c| crate::store::events::get(c, &id))
            .await
            .map_err(|e| events::store_refusal(&e))?;
        if let Some(prev) = known {
            // a duplicate, or the same id reused for another event (409)
            return events::replayed(&d, prev);
        }
        let app = self.app.clone();
        match d.event_name.as_str() {
            events::CREATED => events::created(app, d).await,
            events::REVOKED => events::revoked(app, d).await,
            _ => events::ignored(app, d).await,
        }
    }
}
