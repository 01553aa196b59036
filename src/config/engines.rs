//! `[engines]`: the optional signing engines' settings and the checks on them (the vendor
//! relay is a bare `host[:port]`; the vendor API is https except on loopback).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// `[engines]`: optional signing engines. Part of the schema whether or not they are built
/// in, so a config validates the same way in every build.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnginesConfig {
    /// `[engines.dynamic]`: the vendor's MPC co-signing round for `mpc` wallets (cargo
    /// feature `dynamic-mpc`). Absent: `mpc` wallets answer `engine_unavailable`.
    #[serde(default)]
    pub dynamic: Option<DynamicEngineConfig>,
}

/// The vendor's production API (the SDK's default).
pub const DYNAMIC_DEFAULT_API_BASE_URL: &str = "https://app.dynamicauth.com";

/// `[engines.dynamic]`. Holds no secret: the share and the per-wallet API key come from the
/// token, per request.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicEngineConfig {
    /// The vendor environment id (UUID) the delegated wallets belong to.
    pub environment_id: String,
    /// The vendor API base URL.
    #[serde(default = "default_dynamic_api_base_url")]
    pub api_base_url: String,
    /// The vendor MPC relay as a bare `host[:port]` (the vendor's native MPC library
    /// always speaks TLS to it and refuses a value with a scheme); absent: the SDK's
    /// default for the API URL's environment (production: `relay.dynamicauth.com`).
    #[serde(default)]
    pub relay_base_url: Option<String>,
    /// Bound on reaching the vendor API host (TCP connect) before a round starts.
    #[serde(default = "default_dynamic_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Bound on one whole signing request (waiting for a round slot, API request, event
    /// stream, relay ceremony).
    #[serde(default = "default_dynamic_request_timeout", with = "duration")]
    pub request_timeout: Duration,
    /// Most co-signing rounds running at once, counting rounds whose request already gave
    /// up but whose vendor library call has not returned yet.
    #[serde(default = "default_dynamic_max_concurrent_rounds")]
    pub max_concurrent_rounds: usize,
    /// BIP-32 path the EVM signature is derived at. The delegation webhook carries no
    /// path; this is what the vendor's own EVM SDK uses for a wallet without a stored one.
    #[serde(default = "default_dynamic_derivation_path")]
    pub derivation_path: String,
}

/// What the vendor's EVM SDK signs at for a wallet without a stored derivation path.
pub const DYNAMIC_DEFAULT_DERIVATION_PATH: &str = "m/44'/60'/0'/0/0";

impl DynamicEngineConfig {
    /// The derivation path as the indices the vendor SDK passes to its MPC library
    /// (`m/44'/60'/0'/0/0` is `[44, 60, 0, 0, 0]`, as in the SDK's `EVM_DERIVATION_PATH`).
    /// Validated at load, so this fails only on an unvalidated config.
    pub fn derivation_indices(&self) -> Result<Vec<u32>, String> {
        parse_derivation_path(&self.derivation_path)
    }
}

/// Parses `m/44'/60'/0'/0/0` into `[44, 60, 0, 0, 0]`. The hardened marks (`'` or `h`)
/// are notation only: the vendor SDK's paths are plain indices (its
/// `EVM_DERIVATION_PATH` is `[44, 60, 0, 0, 0]` for `m/44'/60'/0'/0/0`) and its MPC
/// library decides how each level is derived.
pub fn parse_derivation_path(path: &str) -> Result<Vec<u32>, String> {
    let rest = path
        .strip_prefix("m/")
        .ok_or_else(|| format!("{path:?} does not start with m/"))?;
    let mut out = Vec::new();
    for level in rest.split('/') {
        let digits = level
            .strip_suffix('\'')
            .or_else(|| level.strip_suffix('h'))
            .unwrap_or(level);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("level {level:?} is not a number"));
        }
        let index: u32 = digits
            .parse()
            .ok()
            .filter(|i| *i < 0x8000_0000)
            .ok_or_else(|| format!("level {level:?} is not below 2^31"))?;
        out.push(index);
    }
    if out.len() > 10 {
        return Err("more than 10 levels".into());
    }
    Ok(out)
}

/// Why `relay` is not a bare `host[:port]` (None when it is).
pub(super) fn relay_problem(relay: &str) -> Option<&'static str> {
    const NOT_HOST_PORT: &str = "is not a host[:port]";
    if relay.contains("://") {
        return Some("has a scheme");
    }
    if relay.is_empty()
        || relay
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b"/@?#\\".contains(&b))
    {
        return Some(NOT_HOST_PORT);
    }
    let Ok(authority) = relay.parse::<hyper::http::uri::Authority>() else {
        return Some(NOT_HOST_PORT);
    };
    let has_port = match relay.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, port)| !port.is_empty()),
        None => relay.contains(':'),
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    if host.is_empty() || (has_port && authority.port_u16().is_none_or(|p| p == 0)) {
        return Some(NOT_HOST_PORT);
    }
    None
}

/// True when `url`'s host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub(super) fn is_loopback_url(uri: &hyper::Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn default_dynamic_api_base_url() -> String {
    DYNAMIC_DEFAULT_API_BASE_URL.into()
}
fn default_dynamic_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_dynamic_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_dynamic_max_concurrent_rounds() -> usize {
    8
}
fn default_dynamic_derivation_path() -> String {
    DYNAMIC_DEFAULT_DERIVATION_PATH.into()
}
