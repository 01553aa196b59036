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
    /// TLS handshakes that failed, by face and reason (bounded: see `http::handshake_reason`).
    pub handshake_failures: IntCounterVec,
    /// Connections open, by face.
    pub connections_open: IntGaugeVec,
    /// Seconds since each CRL in force was issued (thisUpdate), by face and file name.
    pub crl_age_seconds: IntGaugeVec,
    /// Seconds until each CRL in force passes its nextUpdate (negative once it has).
    pub crl_expiry_seconds: IntGaugeVec,
    /// Seconds until the certificates in force expire, by face and which (`server`,
    /// `client_ca`; negative once expired).
    pub tls_cert_expiry_seconds: IntGaugeVec,
    /// 1 while the appliance is locked (the reason: `keyward status`, the lock's audit record,
    /// every 423 answer).
    pub locked: IntGauge,
    /// 1 while the token answers a session probe.
    pub token_up: IntGauge,
    /// 1 while a write through the audit path commits.
    pub store_up: IntGauge,
    /// Sign requests refused, by operation and error code.
    pub sign_refusals: IntCounterVec,
    /// Sign requests refused by a policy rule or rate limit, by rule id (ids from the
    /// config and the built-in ones; anything else counts as `other`).
    pub policy_refusals: IntCounterVec,
    /// Webhook deliveries refused, by error code.
    pub webhook_refusals: IntCounterVec,
    /// Always 1: version, git commit and cargo features of this binary.
    pub build_info: IntGaugeVec,
    /// Unix time the process started (a change means a restart).
    pub start_time_seconds: IntGauge,
    /// 1 per key on the token, by kind (`rsa`, `wrap`) and version.
    pub token_keys: IntGaugeVec,
    /// The newest version of each key kind (new wraps and deliveries use it).
    pub key_version_current: IntGaugeVec,
    /// Active wallets by the wrapping-key version their share is wrapped under.
    pub wallets_by_key_version: IntGaugeVec,
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
        handshake_failures: counter_vec(
            "tls_handshake_failures_total",
            "TLS handshakes that failed, by face and reason (revoked, expired, not_yet_valid, unknown_issuer, crl_expired, bad_certificate, no_certificate, protocol, io, timeout)",
            &["face", "reason"],
        ),
        connections_open: IntGaugeVec::new(
            Opts::new("connections_open", "Connections open, by face"),
            &["face"],
        )
        .expect("metric"),
        crl_age_seconds: gauge_vec(
            "tls_crl_age_seconds",
            "Seconds since each CRL in force was issued (thisUpdate)",
            &["face", "crl"],
        ),
        crl_expiry_seconds: gauge_vec(
            "tls_crl_expiry_seconds",
            "Seconds until each CRL in force passes its nextUpdate (negative once past)",
            &["face", "crl"],
        ),
        tls_cert_expiry_seconds: gauge_vec(
            "tls_cert_expiry_seconds",
            "Seconds until the certificates in force expire, by face and which (server, client_ca)",
            &["face", "which"],
        ),
        locked: IntGauge::new("locked", "1 while the appliance is locked").expect("metric"),
        token_up: IntGauge::new("token_up", "1 while the token answers a session probe")
            .expect("metric"),
        store_up: IntGauge::new("store_up", "1 while a write through the audit path commits")
            .expect("metric"),
        sign_refusals: counter_vec(
            "sign_refusals_total",
            "Sign requests refused, by operation and error code",
            &["operation", "code"],
        ),
        policy_refusals: counter_vec(
            "policy_refusals_total",
            "Sign requests refused by a policy rule or rate limit, by rule id (config and builtin ids; other)",
            &["rule"],
        ),
        webhook_refusals: counter_vec(
            "webhook_refusals_total",
            "Webhook deliveries refused, by error code",
            &["code"],
        ),
        build_info: gauge_vec(
            "build_info",
            "Always 1: version, git commit and cargo features of this binary",
            &["version", "git", "features"],
        ),
        start_time_seconds: IntGauge::new(
            "start_time_seconds",
            "Unix time the process started",
        )
        .expect("metric"),
        token_keys: gauge_vec(
            "token_keys",
            "1 per key on the token, by kind (rsa, wrap) and version",
            &["kind", "version"],
        ),
        key_version_current: gauge_vec(
            "key_version_current",
            "The newest version of each key kind on the token",
            &["kind"],
        ),
        wallets_by_key_version: gauge_vec(
            "wallets_by_key_version",
            "Active wallets by the wrapping-key version of their share",
            &["version"],
        ),
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
        Box::new(m.handshake_failures.clone()),
        Box::new(m.crl_age_seconds.clone()),
        Box::new(m.crl_expiry_seconds.clone()),
        Box::new(m.tls_cert_expiry_seconds.clone()),
        Box::new(m.locked.clone()),
        Box::new(m.token_up.clone()),
        Box::new(m.store_up.clone()),
        Box::new(m.sign_refusals.clone()),
        Box::new(m.policy_refusals.clone()),
        Box::new(m.webhook_refusals.clone()),
        Box::new(m.build_info.clone()),
        Box::new(m.start_time_seconds.clone()),
        Box::new(m.token_keys.clone()),
        Box::new(m.key_version_current.clone()),
        Box::new(m.wallets_by_key_version.clone()),
        Box::new(m.mpc_rounds_started.clone()),
        Box::new(m.mpc_rounds_aborted.clone()),
        Box::new(m.mpc_rounds_running.clone()),
        Box::new(m.mpc_rounds_abandoned.clone()),
        Box::new(m.mpc_rounds_waiting.clone()),
    ] {
        m.registry.register(c).expect("unique metric names");
    }
    // the series alerts use `increase()` on exist from the start at 0: a counter that
    // first appears at 1 has no earlier sample, and its first increment would be lost
    for code in [
        "signature_invalid",
        "signature_missing",
        "source_not_allowed",
        "rate_limited",
    ] {
        m.webhook_refusals.with_label_values(&[code]);
    }
    m.connections_refused
        .with_label_values(&["webhook", "source"]);
    m.handshake_failures.with_label_values(&["api", "revoked"]);
    m.build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION"), GIT_COMMIT, FEATURES])
        .set(1);
    m.start_time_seconds.set(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    );
    m
}

/// The git commit this binary was built from: `KEYWARD_GIT_COMMIT` at build time
/// (packaging sets it), `unknown` otherwise.
const GIT_COMMIT: &str = match option_env!("KEYWARD_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// The optional cargo features compiled in, comma-separated (empty: the default build).
const FEATURES: &str = if cfg!(feature = "dynamic-mpc") {
    "dynamic-mpc"
} else {
    ""
};

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("metric")
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("metric")
}

/// Counts a failed TLS handshake.
pub(crate) fn handshake_failed(face: &'static str, reason: &'static str) {
    get()
        .handshake_failures
        .with_label_values(&[face, reason])
        .inc();
}

/// Counts a refused sign request: by operation and code, and, when a policy rule or rate
/// limit refused, by its id. An id outside `policy`'s rules and limits and the built-in
/// ids is counted as `other`, so the label set stays the config's (a refusal's rule
/// string never becomes an unbounded label).
pub(crate) fn sign_refused(
    operation: &str,
    code: &'static str,
    rule: Option<&str>,
    policy: &crate::policy::Policy,
) {
    let m = get();
    m.sign_refusals.with_label_values(&[operation, code]).inc();
    if let Some(rule) = rule {
        m.policy_refusals
            .with_label_values(&[bounded_rule(rule, policy)])
            .inc();
    }
}

/// `rule` when the policy or the engine defines it, else `other`.
pub fn bounded_rule<'a>(rule: &'a str, policy: &crate::policy::Policy) -> &'a str {
    use crate::policy as p;
    let builtin = [
        "default",
        p::UNPRICED_INSTRUCTION,
        p::UNPRICED_CALL,
        p::UNPRICED_TYPED_DATA,
        p::SPENDING_TYPED_DATA,
        p::DIGEST_MESSAGE,
    ];
    let known = builtin.contains(&rule)
        || policy.rule_ids().any(|id| id == rule)
        || policy.rate_limits().iter().any(|l| l.id == rule);
    if known {
        rule
    } else {
        "other"
    }
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
