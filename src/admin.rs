//! The admin listener: `/healthz`, `/readyz`, `/metrics`, plain HTTP on loopback.
//!
//! Must never: expose anything but health and aggregate metrics (no wallet ids, no
//! client identities, no secrets). It binds loopback unless the operator overrides.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::appliance::Appliance;
use crate::http::{self, Body};
use crate::metrics;

/// Appliance-state key the readiness probe writes (the time of the last probe).
pub const READY_PROBE_KEY: &str = "readyz.probe";
const READY_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

mod scrape;

/// Probes the token, the audit path and the lock, each bounded in time.
async fn health(app: &Arc<Appliance>) -> scrape::Health {
    let token = app.token.clone();
    let ping = tokio::task::spawn_blocking(move || token.ping());
    let token = match tokio::time::timeout(READY_PROBE_TIMEOUT, ping).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("token: {e}")),
        Ok(Err(e)) => Err(format!("token probe failed: {e}")),
        Err(_) => Err(format!(
            "token: no answer within {} s",
            READY_PROBE_TIMEOUT.as_secs()
        )),
    };
    // a real write through the same writer, transaction and fsync as an audit record:
    // a stopped writer, a full disk or a database another process keeps locked all show
    // here, not only an unreadable file
    let probe = app.store.write(|ctx| {
        crate::store::state::set(
            ctx.conn,
            READY_PROBE_KEY,
            Some(&crate::store::now_rfc3339()),
        )
    });
    let store = match tokio::time::timeout(READY_PROBE_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("database: the audit path cannot commit: {e}")),
        Err(_) => Err(format!(
            "database: a write did not commit within {} s",
            READY_PROBE_TIMEOUT.as_secs()
        )),
    };
    let lock = app
        .lock_reason_async()
        .await
        .map_err(|e| format!("database: {e}"));
    scrape::Health { token, store, lock }
}

/// Why the appliance is not ready, if it is not.
pub async fn readiness(app: &Arc<Appliance>) -> Result<(), String> {
    let h = health(app).await;
    h.token?;
    h.store?;
    match h.lock? {
        Some(reason) => Err(format!("locked: {reason}")),
        None => Ok(()),
    }
}

async fn handle(app: Arc<Appliance>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    if req.method() != Method::GET {
        return http::Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "admin routes are GET only",
        )
        .into_response(None);
    }
    match req.uri().path() {
        "/healthz" => http::text(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" => match readiness(&app).await {
            Ok(()) => http::text(StatusCode::OK, "text/plain", "ready\n".into()),
            Err(reason) => http::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {reason}\n"),
            ),
        },
        "/metrics" => {
            let h = health(&app).await;
            // the wallet counts scan the table: off the async workers
            let a = app.clone();
            let _ = tokio::task::spawn_blocking(move || scrape::refresh(&a, &h)).await;
            http::text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics::render(),
            )
        }
        _ => http::Refusal::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "admin routes: /healthz, /readyz, /metrics",
        )
        .into_response(None),
    }
}

/// Serves the admin routes until `shutdown` flips.
pub async fn serve(
    app: Arc<Appliance>,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    // loopback-only monitoring: a small cap keeps a stuck scraper from holding sockets
    let admission = http::admission::Admission::new(
        "admin",
        http::admission::Caps {
            total: 64,
            per_source: 64,
        },
        None,
    );
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r { Ok(x) => x, Err(_) => continue },
            _ = shutdown.changed() => return,
        };
        let Ok(slot) = admission.admit(peer.ip()) else {
            continue;
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(handle(app, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(http::HEADER_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}
