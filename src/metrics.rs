//! Prometheus metrics, one process-wide registry rendered by the admin listener.
//!
//! Labels are low-cardinality by construction: routes, operations, codes, never wallet
//! ids or client identities.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric keyward exports.
pub struct Metrics {
    registry: Registry,
    /// Requests by face, route and status.
    pub requests: IntCounterVec,
    /// Signing latency by operation.
    pub sign_seconds: HistogramVec,
    /// Webhook events by name and result.
    pub webhook_events: IntCounterVec,
    /// Token operation latency by operation.
    pub token_seconds: HistogramVec,
    /// Token sessions: size and in use.
    pub token_pool: IntGaugeVec,
    /// Jobs in the last commit batch.
    pub audit_queue_depth: IntGauge,
    /// Commit latency.
    pub audit_commit_seconds: HistogramVec,
    /// Wallets by chain, engine and status.
    pub wallets: IntGaugeVec,
    /// Connections closed at accept, before TLS, by face and reason.
    pub connections_refused: IntCounterVec,
    /// Connections open, by face.
    pub connections_open: IntGaugeVec,
    /// Seconds since each loaded CRL's thisUpdate, by file name.
    pub crl_age_seconds: IntGaugeVec,
    /// Vendor co-signing rounds started (feature `dynamic-mpc`; zero otherwise).
    pub mpc_rounds_started: IntCounter,
    /// Vendor co-signing rounds whose request gave up (timeout, client gone) while the
    /// round was still running.
    pub mpc_rounds_aborted: IntCounter,
    /// Vendor co-signing rounds holding a slot of `engines.dynamic.max_concurrent_rounds`.
    pub mpc_rounds_running: IntGauge,
    /// Of those, rounds still running after their request gave up (the vendor library's
    /// blocking call has not returned yet).
    pub mpc_rounds_abandoned: IntGauge,
    /// Vendor co-signing requests waiting for a free slot.
    pub mpc_rounds_waiting: IntGauge,
}

fn build() -> Metrics {
    let registry = Registry::new_custom(Some("keyward".into()), None).expect("registry");
    let latency = vec![
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    let m = Metrics {
        requests: IntCounterVec::new(
            Opts::new("requests_total", "Requests by face, route and status"),
            &["face", "route", "status"],
        )
        .expect("metric"),
        sign_seconds: HistogramVec::new(
            HistogramOpts::new("sign_seconds", "Signing request latency").buckets(latency.clone()),
            &["operation"],
        )
        .expect("metric"),
        webhook_events: IntCounterVec::new(
            Opts::new("webhook_events_total", "Webhook events by name and result"),
            &["event", "result"],
        )
        .expect("metric"),
        token_seconds: HistogramVec::new(
            HistogramOpts::new("token_op_seconds", "Token operation latency")
                .buckets(latency.clone()),
            &["op"],
        )
        .expect("metric"),
        token_pool: IntGaugeVec::new(
            Opts::new("token_sessions", "Token sessions in the pool"),
            &["state"],
        )
        .expect("metric"),
        audit_queue_depth: IntGauge::new(
            "audit_batch_jobs",
            "Jobs folded into the last store commit",
        )
        .expect("metric"),
        audit_commit_seconds: HistogramVec::new(
            HistogramOpts::new("store_commit_seconds", "Store group-commit latency")
                .buckets(latency),
            &[],
        )
        .expect("metric"),
        wallets: IntGaugeVec::new(
            Opts::new("wallets", "Wallets by chain, engine and status"),
            &["chain", "engine", "status"],
        )
        .expect("metric"),
        connections_refused: IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "Connections closed at accept, before any TLS byte, by face and reason (source, total_cap, source_cap)",
            ),
            &["face", "reason"],
        )
        .expect("metric"),
        connections_open: IntGaugeVec::new(
            Opts::new("connections_open", "Connections open, by face"),
            &["face"],
        )
        .expect("metric"),
        crl_age_seconds: IntGaugeVec::new(
            Opts::new(
                "crl_age_seconds",
                "Seconds since each loaded CRL's thisUpdate, when it was last loaded (start, SIGHUP)",
            ),
            &["crl"],
        )
        .expect("metric"),
        mpc_rounds_started: IntCounter::new(
            "mpc_rounds_started_total",
            "Vendor co-signing rounds started",
        )
        .expect("metric"),
        mpc_rounds_aborted: IntCounter::new(
            "mpc_rounds_aborted_total",
            "Vendor co-signing rounds whose request gave up while the round was running",
        )
        .expect("metric"),
        mpc_rounds_running: IntGauge::new(
            "mpc_rounds_running",
            "Vendor co-signing rounds holding a slot (engines.dynamic.max_concurrent_rounds)",
        )
        .expect("metric"),
        mpc_rounds_abandoned: IntGauge::new(
            "mpc_rounds_abandoned",
            "Vendor co-signing rounds still running after their request gave up",
        )
        .expect("metric"),
        mpc_rounds_waiting: IntGauge::new(
            "mpc_rounds_waiting",
            "Vendor co-signing requests waiting for a free slot",
        )
        .expect("metric"),
        registry,
    };
    for c in [
        Box::new(m.requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(m.sign_seconds.clone()),
        Box::new(m.webhook_events.clone()),
        Box::new(m.token_seconds.clone()),
        Box::new(m.token_pool.clone()),
        Box::new(m.audit_queue_depth.clone()),
        Box::new(m.audit_commit_seconds.clone()),
        Box::new(m.wallets.clone()),
        Box::new(m.connections_refused.clone()),
        Box::new(m.connections_open.clone()),
        Box::new(m.crl_age_seconds.clone()),
        Box::new(m.mpc_rounds_started.clone()),
        Box::new(m.mpc_rounds_aborted.clone()),
        Box::new(m.mpc_rounds_running.clone()),
        Box::new(m.mpc_rounds_abandoned.clone()),
        Box::new(m.mpc_rounds_waiting.clone()),
    ] {
        m.registry.register(c).expect("unique metric names");
    }
    m
}

/// The process-wide metrics.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(build)
}

/// Prometheus text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let _ = TextEncoder::new().encode(&get().registry.gather(), &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

pub(crate) fn record_commit(_jobs: usize, took: Duration) {
    get()
        .audit_commit_seconds
        .with_label_values(&[] as &[&str])
        .observe(took.as_secs_f64());
}

pub(crate) fn audit_queue_depth(jobs: usize) {
    get().audit_queue_depth.set(jobs as i64);
}
