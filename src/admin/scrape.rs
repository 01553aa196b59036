//! The gauges a scrape refreshes: what the appliance is (lock, token, store), what it
//! holds (wallets, key versions) and what it serves (certificate and CRL dates), read at
//! scrape time so a lock set by `keyward lock` in another process, a token that stopped
//! answering or a certificate that crept closer to expiry show without a restart.

use std::sync::Arc;

use crate::appliance::Appliance;
use crate::metrics;

/// Health as the probes see it; each part is judged on its own, so one failure does not
/// hide another (readiness reports the first).
pub(super) struct Health {
    pub token: Result<(), String>,
    pub store: Result<(), String>,
    pub lock: Result<Option<String>, String>,
}

/// Sets every scrape-time gauge from `health` and the appliance.
pub(super) fn refresh(app: &Arc<Appliance>, health: &Health) {
    let m = metrics::get();
    m.token_up.set(i64::from(health.token.is_ok()));
    m.store_up.set(i64::from(health.store.is_ok()));
    // an unreadable lock state is not "unlocked": the store alert covers it, and the
    // gauge keeps its last value rather than claiming either
    if let Ok(lock) = &health.lock {
        m.locked.set(i64::from(lock.is_some()));
    }
    let (size, in_use) = app.token.pool_usage();
    m.token_pool.with_label_values(&["size"]).set(size as i64);
    m.token_pool
        .with_label_values(&["in_use"])
        .set(in_use as i64);
    keys(app);
    wallets(app);
    tls_dates(app);
}

fn keys(app: &Appliance) {
    let m = metrics::get();
    let (Ok(rsa), Ok(wrap)) = (app.token.rsa_keys(), app.token.wrap_keys()) else {
        return;
    };
    m.token_keys.reset();
    for (kind, list) in [("rsa", &rsa), ("wrap", &wrap)] {
        for k in list.iter() {
            m.token_keys
                .with_label_values(&[kind, &k.version.to_string()])
                .set(1);
        }
        if let Some(newest) = list.iter().map(|k| k.version).max() {
            m.key_version_current
                .with_label_values(&[kind])
                .set(i64::from(newest));
        }
    }
}

fn wallets(app: &Appliance) {
    let m = metrics::get();
    let counts = app.store.read(crate::store::wallets::count_by_kind);
    if let Ok(counts) = counts {
        m.wallets.reset();
        for (chain, engine, status, n) in counts {
            m.wallets
                .with_label_values(&[&chain, &engine, &status])
                .set(n);
        }
    }
    // key versions are small integers the operator creates one at a time: bounded
    let versions = app.store.read(crate::store::wallets::count_by_version);
    if let Ok(versions) = versions {
        m.wallets_by_key_version.reset();
        for (version, n) in versions {
            m.wallets_by_key_version
                .with_label_values(&[&version.to_string()])
                .set(n);
        }
    }
}

fn tls_dates(app: &Appliance) {
    let m = metrics::get();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    m.tls_cert_expiry_seconds.reset();
    m.crl_age_seconds.reset();
    m.crl_expiry_seconds.reset();
    for (face, tls) in app.installed_tls() {
        let Some(tls) = tls else { continue };
        let dates = tls.dates();
        for (which, not_after) in [
            ("server", dates.server_not_after),
            ("client_ca", dates.client_ca_not_after),
        ] {
            if let Some(t) = not_after {
                m.tls_cert_expiry_seconds
                    .with_label_values(&[face, which])
                    .set(t - now);
            }
        }
        for crl in &dates.crls {
            m.crl_age_seconds
                .with_label_values(&[face, &crl.file])
                .set(now - crl.this_update);
            if let Some(next) = crl.next_update {
                m.crl_expiry_seconds
                    .with_label_values(&[face, &crl.file])
                    .set(next - now);
            }
        }
    }
}
