//! What types alone cannot check: cross-field rules, ranges, identities, selectors and
//! the engines' endpoints. Every refusal names the key and what was expected.

use std::time::Duration;

use super::engines::{is_loopback_url, relay_problem};
use super::{Config, ConfigError, DYNAMIC_DEFAULT_DERIVATION_PATH};

impl Config {
    /// Checks the values that types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some((key, message)) = self.empty_path_problem() {
            return Err(self.invalid(&key, message));
        }
        if let Some(message) = log_level_problem(&self.log.level) {
            return Err(self.invalid("log.level", message));
        }
        let p = &self.pkcs11;
        if p.token_label.is_none() && p.token_serial.is_none() && p.slot_id.is_none() {
            return Err(self.invalid(
                "pkcs11.token_label",
                "expected a token label, pkcs11.token_serial or pkcs11.slot_id",
            ));
        }
        if !(1..=64).contains(&p.pool_size) {
            return Err(self.invalid("pkcs11.pool_size", "expected 1 to 64 sessions"));
        }
        if p.rsa_bits != 3072 && p.rsa_bits != 4096 {
            return Err(self.invalid("pkcs11.rsa_bits", "expected 3072 or 4096"));
        }
        if p.label_prefix.is_empty() || p.label_prefix.contains(char::is_whitespace) {
            return Err(self.invalid(
                "pkcs11.label_prefix",
                "expected a non-empty label without spaces",
            ));
        }
        if !(1..=64).contains(&self.store.read_connections) {
            return Err(self.invalid("store.read_connections", "expected 1 to 64"));
        }
        match (self.store.backend, &self.store.postgres) {
            (super::StoreBackend::Postgres, None) => {
                return Err(self.invalid(
                    "store.postgres",
                    "store.backend = \"postgres\" needs a [store.postgres] section with url",
                ))
            }
            (super::StoreBackend::Postgres, Some(pg)) => {
                if !(1..=128).contains(&pg.pool_size) {
                    return Err(self.invalid("store.postgres.pool_size", "expected 1 to 128"));
                }
                let second = std::time::Duration::from_secs(1);
                if pg.statement_timeout < second / 10 || pg.statement_timeout > 60 * second {
                    return Err(
                        self.invalid("store.postgres.statement_timeout", "expected 100ms to 60s")
                    );
                }
                if pg.connect_timeout < second / 10 || pg.connect_timeout > 60 * second {
                    return Err(
                        self.invalid("store.postgres.connect_timeout", "expected 100ms to 60s")
                    );
                }
            }
            (super::StoreBackend::Sqlite, Some(_)) => {
                return Err(self.invalid(
                    "store.postgres",
                    "a [store.postgres] section is only read with store.backend = \"postgres\"",
                ))
            }
            (super::StoreBackend::Sqlite, None) => {}
        }
        if !(1..=64).contains(&self.cluster.nodes) {
            return Err(self.invalid("cluster.nodes", "expected 1 to 64"));
        }
        if self.cluster.nodes > 1 && self.store.backend == super::StoreBackend::Sqlite {
            return Err(self.invalid(
                "cluster.nodes",
                "several nodes need store.backend = \"postgres\" (a SQLite file serves one node)",
            ));
        }
        if !self.webhook.path.starts_with('/') {
            return Err(self.invalid("webhook.path", "expected a path starting with '/'"));
        }
        if self.webhook.body_limit < 1024 || self.webhook.body_limit > 16 * 1024 * 1024 {
            return Err(self.invalid("webhook.body_limit", "expected 1024 to 16777216 bytes"));
        }
        if self.webhook.per_source_concurrency == 0 || self.webhook.per_source_rate == 0 {
            return Err(self.invalid("webhook.per_source_rate", "expected limits above zero"));
        }
        for (key, total, per_source) in [
            (
                "api.max_connections_per_source",
                self.api.max_connections,
                self.api.max_connections_per_source,
            ),
            (
                "webhook.max_connections_per_source",
                self.webhook.max_connections,
                self.webhook.max_connections_per_source,
            ),
        ] {
            if total == 0 || per_source == 0 || per_source > total || total > 1_000_000 {
                return Err(self.invalid(
                    key,
                    "expected 1 <= max_connections_per_source <= max_connections <= 1000000",
                ));
            }
        }
        if !self.admin.allow_non_loopback && !self.admin.listen.ip().is_loopback() {
            return Err(self.invalid(
                "admin.listen",
                "expected a loopback address (set admin.allow_non_loopback = true to override)",
            ));
        }
        self.validate_engines()?;
        if let Some((key, message)) = self.rpc.problem() {
            return Err(self.invalid(key, message));
        }
        self.policy.compile().map_err(|e| self.policy_error(e))?;
        self.validate_clients()
    }

    fn validate_engines(&self) -> Result<(), ConfigError> {
        let Some(d) = &self.engines.dynamic else {
            return Ok(());
        };
        let env = d.environment_id.trim();
        if env.is_empty()
            || env.len() > 128
            || !env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(self.invalid(
                "engines.dynamic.environment_id",
                "expected the vendor environment id (a UUID)",
            ));
        }
        // The API key travels in a header: only TLS may carry it, except to a loopback
        // stand-in (tests).
        let api_ok = d.api_base_url.parse::<hyper::Uri>().ok().is_some_and(|u| {
            u.host().is_some_and(|h| !h.is_empty())
                && match u.scheme_str() {
                    Some("https") => true,
                    Some("http") => is_loopback_url(&u),
                    _ => false,
                }
        });
        if !api_ok {
            return Err(self.invalid(
                "engines.dynamic.api_base_url",
                "expected an https URL such as https://app.dynamicauth.com (plain http only to a loopback address: 127.0.0.0/8, ::1, localhost)",
            ));
        }
        if let Some(r) = &d.relay_base_url {
            if let Some(problem) = relay_problem(r) {
                return Err(self.invalid(
                    "engines.dynamic.relay_base_url",
                    format!(
                        "{problem}: expected a bare relay host[:port] such as relay.dynamicauth.com, without a scheme (the vendor's MPC library always speaks TLS to the relay and refuses a URL)"
                    ),
                ));
            }
        }
        if d.max_concurrent_rounds == 0 || d.max_concurrent_rounds > 1024 {
            return Err(self.invalid(
                "engines.dynamic.max_concurrent_rounds",
                "expected 1 to 1024",
            ));
        }
        if let Err(e) = d.derivation_indices() {
            return Err(self.invalid(
                "engines.dynamic.derivation_path",
                format!("{e}: expected a BIP-32 path such as {DYNAMIC_DEFAULT_DERIVATION_PATH}"),
            ));
        }
        for (key, t) in [
            ("engines.dynamic.connect_timeout", d.connect_timeout),
            ("engines.dynamic.request_timeout", d.request_timeout),
        ] {
            if t < Duration::from_millis(50) || t > Duration::from_secs(600) {
                return Err(self.invalid(key, "expected a duration from 50ms to 10m"));
            }
        }
        Ok(())
    }

    fn validate_clients(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.clients.iter().enumerate() {
            let key = format!("clients[{i}].identity");
            let (id, _) = crate::identity::Identity::parse_config(&c.identity)
                .map_err(|m| self.invalid(&key, format!("{m}; expected uri:URI or cn:NAME")))?;
            if !seen.insert(id.to_string()) {
                return Err(self.invalid(
                    &key,
                    format!("identity {:?} ({id}) appears twice", c.identity),
                ));
            }
            if let Some(w) = c.wallets.iter().find(|w| !valid_selector(w)) {
                return Err(self.invalid(
                    &format!("clients[{i}].wallets"),
                    format!("{w:?} is not a wallet id, label:NAME, chain:evm|solana or *"),
                ));
            }
        }
        Ok(())
    }

    /// Identities written in the deprecated plain form, as warnings to log.
    pub(super) fn client_deprecations(&self) -> Vec<String> {
        self.clients
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match crate::identity::Identity::parse_config(&c.identity) {
                Ok((id, true)) => Some(format!(
                    "clients[{i}].identity = {:?} is read as \"{id}\"; write it that way (plain identities are deprecated)",
                    c.identity
                )),
                _ => None,
            })
            .collect()
    }
}

/// Why `level` would not log what the operator meant, if it would not. `serve` builds its
/// filter leniently (a bad directive is dropped, not refused), so this is where a typo is
/// caught; a bare word that is not a level is refused too, because the filter reads it as
/// a module name and would log nothing of keyward's (not even "keyward ready").
pub(super) fn log_level_problem(level: &str) -> Option<String> {
    const EXPECTED: &str = "expected a tracing filter: a level (trace, debug, info, warn, error, off) or TARGET=LEVEL, comma-separated, such as \"info\" or \"info,keyward=debug\"";
    let directives: Vec<&str> = level
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if directives.is_empty() {
        return Some(format!("is empty: {EXPECTED}"));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(level) {
        return Some(format!("{level:?} does not parse ({e}): {EXPECTED}"));
    }
    let bare = |d: &str| {
        !d.contains(['=', '['])
            && d.parse::<tracing_subscriber::filter::LevelFilter>()
                .is_err()
    };
    if let Some(word) = directives.into_iter().find(|d| bare(d)) {
        return Some(format!(
            "{word:?} is not a level (it would be read as a module name and enable only that module; write {word}=trace if that is meant): {EXPECTED}"
        ));
    }
    None
}

pub(super) fn valid_selector(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    if let Some(chain) = s.strip_prefix("chain:") {
        return chain == "evm" || chain == "solana";
    }
    if let Some(label) = s.strip_prefix("label:") {
        return !label.is_empty();
    }
    !s.is_empty() && !s.contains(char::is_whitespace)
}
