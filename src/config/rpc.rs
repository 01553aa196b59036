//! `[rpc]`: the Ethereum JSON-RPC face of the signing API (`POST /v1/rpc`).
//!
//! Everything here is optional: without the section, `/v1/rpc/{chainId}` still signs
//! (`/v1/rpc` then has no chain id to answer `eth_chainId` with), and methods keyward does
//! not serve itself answer "method not found". With `upstream`, non-signing methods are
//! forwarded to that node and `eth_sendTransaction` / missing transaction fields use it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest accepted `upstream` URL.
pub const MAX_UPSTREAM_URL: usize = 2048;

/// `[rpc]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    /// The chain id `POST /v1/rpc` answers `eth_chainId` with and puts into transactions
    /// that carry none (`/v1/rpc/{chainId}` overrides it per request).
    #[serde(default)]
    pub chain_id: Option<u64>,
    /// An Ethereum node (`https://…`; plain `http://` only on a loopback address) that
    /// non-signing methods are forwarded to and transaction fields filled from.
    #[serde(default)]
    pub upstream: Option<String>,
    /// PEM CA bundle the upstream's certificate must chain to, instead of the built-in
    /// web PKI roots (a node behind a private CA).
    #[serde(default)]
    pub upstream_ca: Option<PathBuf>,
    /// Bound on one upstream request (connect, TLS, answer).
    #[serde(default = "default_upstream_timeout", with = "super::duration")]
    pub upstream_timeout: Duration,
    /// The methods forwarded to `upstream`, matched exactly (no case or whitespace
    /// folding). Everything else keyward does not serve itself is "method not found".
    #[serde(default = "default_forward_methods")]
    pub forward_methods: Vec<String>,
    /// Most bytes of upstream answers one request (a whole batch) may hold.
    #[serde(default = "default_max_upstream_response_bytes")]
    pub max_upstream_response_bytes: usize,
    /// Most bytes of upstream answers all requests together may hold at once.
    #[serde(default = "default_max_upstream_inflight_bytes")]
    pub max_upstream_inflight_bytes: usize,
}

/// The read methods forwarded by default, plus `eth_sendRawTransaction` (a transaction
/// someone already signed: the node only relays it). Nothing here signs, holds node-side
/// state for the caller (filters, subscriptions) or touches the node's accounts.
pub const DEFAULT_FORWARD_METHODS: &[&str] = &[
    "eth_blockNumber",
    "eth_call",
    "eth_estimateGas",
    "eth_feeHistory",
    "eth_gasPrice",
    "eth_getBalance",
    "eth_getBlockByHash",
    "eth_getBlockByNumber",
    "eth_getBlockReceipts",
    "eth_getBlockTransactionCountByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getCode",
    "eth_getLogs",
    "eth_getProof",
    "eth_getStorageAt",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByHash",
    "eth_getTransactionCount",
    "eth_getTransactionReceipt",
    "eth_maxPriorityFeePerGas",
    "eth_sendRawTransaction",
    "eth_syncing",
    "net_version",
    "web3_clientVersion",
];

/// Methods never forwarded whatever `forward_methods` says: they sign with, or reveal,
/// the node's own accounts, or are answered by keyward itself.
pub fn never_forwarded(method: &str) -> bool {
    method.starts_with("eth_sign")
        || method.starts_with("personal_")
        || method.starts_with("eth_decrypt")
        || method.starts_with("eth_getEncryptionPublicKey")
        || matches!(
            method,
            "eth_sendTransaction" | "eth_accounts" | "eth_requestAccounts" | "eth_chainId"
        )
}

fn default_forward_methods() -> Vec<String> {
    DEFAULT_FORWARD_METHODS
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

/// Default `max_upstream_response_bytes`: 16 MiB, room for a large `eth_getLogs`.
pub const DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Default `max_upstream_inflight_bytes`: 64 MiB (four full-size answers at once).
pub const DEFAULT_MAX_UPSTREAM_INFLIGHT_BYTES: usize = 64 * 1024 * 1024;

/// Bounds of the two byte limits: at least 64 KiB (a filled transaction's answers fit),
/// at most 1 GiB.
const BYTES_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1024 * 1024 * 1024;

fn default_max_upstream_response_bytes() -> usize {
    DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES
}

fn default_max_upstream_inflight_bytes() -> usize {
    DEFAULT_MAX_UPSTREAM_INFLIGHT_BYTES
}

fn default_upstream_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            chain_id: None,
            upstream: None,
            upstream_ca: None,
            upstream_timeout: default_upstream_timeout(),
            forward_methods: default_forward_methods(),
            max_upstream_response_bytes: DEFAULT_MAX_UPSTREAM_RESPONSE_BYTES,
            max_upstream_inflight_bytes: DEFAULT_MAX_UPSTREAM_INFLIGHT_BYTES,
        }
    }
}

impl RpcConfig {
    /// Resolves `upstream_ca` against the config file's directory.
    pub(super) fn resolve_paths(&mut self, base: &std::path::Path) {
        if let Some(p) = &mut self.upstream_ca {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = base.join(&*p);
            }
        }
    }

    /// What is wrong with the section, as `(key, message)`.
    pub(super) fn problem(&self) -> Option<(&'static str, String)> {
        if let Some(id) = self.chain_id {
            if id == 0 || id > crate::chains::evm::MAX_LEGACY_CHAIN_ID {
                return Some((
                    "rpc.chain_id",
                    format!(
                        "expected a chain id from 1 to {}",
                        crate::chains::evm::MAX_LEGACY_CHAIN_ID
                    ),
                ));
            }
        }
        if let Some(u) = &self.upstream {
            if let Some(p) = upstream_problem(u) {
                return Some(("rpc.upstream", format!("{p}: expected an https URL such as https://node.example:8545 (plain http only to a loopback address: 127.0.0.0/8, ::1, localhost)")));
            }
        }
        if let Some(ca) = &self.upstream_ca {
            if self.upstream.is_none() {
                return Some(("rpc.upstream_ca", "is set but rpc.upstream is not".into()));
            }
            if let Err(e) = crate::tls::load_certs(ca) {
                return Some(("rpc.upstream_ca", format!("expected a PEM CA bundle: {e}")));
            }
        }
        if self.upstream_timeout < Duration::from_millis(100)
            || self.upstream_timeout > Duration::from_secs(300)
        {
            return Some((
                "rpc.upstream_timeout",
                "expected a duration from 100ms to 5m".into(),
            ));
        }
        for (i, m) in self.forward_methods.iter().enumerate() {
            let shape = !m.is_empty()
                && m.len() <= 64
                && m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !shape {
                return Some((
                    "rpc.forward_methods",
                    format!("entry {i}: expected a method name of letters, digits and `_` (1 to 64), as the node spells it"),
                ));
            }
            if never_forwarded(m) {
                return Some((
                    "rpc.forward_methods",
                    format!("{m:?} is never forwarded: it signs with or reveals the node's accounts, or keyward answers it itself"),
                ));
            }
        }
        for (key, v) in [
            (
                "rpc.max_upstream_response_bytes",
                self.max_upstream_response_bytes,
            ),
            (
                "rpc.max_upstream_inflight_bytes",
                self.max_upstream_inflight_bytes,
            ),
        ] {
            if !BYTES_RANGE.contains(&v) {
                return Some((
                    key,
                    "expected a byte count from 65536 (64 KiB) to 1073741824 (1 GiB)".into(),
                ));
            }
        }
        if self.max_upstream_inflight_bytes < self.max_upstream_response_bytes {
            return Some((
                "rpc.max_upstream_inflight_bytes",
                "is smaller than rpc.max_upstream_response_bytes: no request could use its own bound".into(),
            ));
        }
        None
    }
}

/// Why `url` cannot be an upstream, if it cannot.
pub fn upstream_problem(url: &str) -> Option<&'static str> {
    if url.len() > MAX_UPSTREAM_URL {
        return Some("too long");
    }
    let Ok(uri) = url.parse::<hyper::Uri>() else {
        return Some("not a URL");
    };
    let Some(authority) = uri.authority() else {
        return Some("no host");
    };
    // credentials in the URL would be shown by `config show` and sent in clear logs
    if authority.as_str().contains('@') {
        return Some("user:password@ is not supported");
    }
    if uri.host().is_none_or(str::is_empty) {
        return Some("no host");
    }
    match uri.scheme_str() {
        Some("https") => None,
        Some("http") if super::engines::is_loopback_url(&uri) => None,
        Some("http") => Some("plain http to a non-loopback host"),
        _ => Some("not an http(s) URL"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        for ok in [
            "https://node.example:8545",
            "https://node.example/rpc/path",
            "http://127.0.0.1:8545",
            "http://[::1]:8545",
            "http://localhost:8545",
        ] {
            assert_eq!(upstream_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            (
                "http://node.example:8545",
                "plain http to a non-loopback host",
            ),
            ("ftp://node.example", "not an http(s) URL"),
            ("node.example:8545", "not an http(s) URL"),
            (
                "https://user:pw@node.example",
                "user:password@ is not supported",
            ),
            ("/just/a/path", "no host"),
            ("https://exa mple", "not a URL"),
        ] {
            assert_eq!(upstream_problem(bad), Some(why), "{bad}");
        }
        assert_eq!(
            upstream_problem(&format!("https://a.example/{}", "x".repeat(3000))),
            Some("too long")
        );
    }

    #[test]
    fn section_checks() {
        let ok = RpcConfig::default();
        assert!(ok.problem().is_none());
        let bad_chain = RpcConfig {
            chain_id: Some(0),
            ..ok.clone()
        };
        assert_eq!(bad_chain.problem().unwrap().0, "rpc.chain_id");
        let ca_alone = RpcConfig {
            upstream_ca: Some("ca.pem".into()),
            ..ok.clone()
        };
        assert_eq!(ca_alone.problem().unwrap().0, "rpc.upstream_ca");
        let ca_missing = RpcConfig {
            upstream: Some("https://node.example".into()),
            upstream_ca: Some("/nonexistent/ca.pem".into()),
            ..ok.clone()
        };
        assert_eq!(ca_missing.problem().unwrap().0, "rpc.upstream_ca");
        let fast = RpcConfig {
            upstream_timeout: Duration::from_millis(1),
            ..ok.clone()
        };
        assert_eq!(fast.problem().unwrap().0, "rpc.upstream_timeout");
        let plain = RpcConfig {
            upstream: Some("http://10.0.0.1:8545".into()),
            ..ok.clone()
        };
        assert_eq!(plain.problem().unwrap().0, "rpc.upstream");
        for bad in [
            "eth_sign",
            "eth_signTypedData_v4",
            "personal_sign",
            "eth_accounts",
            "eth_decrypt",
            "eth_sendTransaction",
            "eth_call ",
            "ETH_CALL\u{0}",
            "",
        ] {
            let c = RpcConfig {
                forward_methods: vec!["eth_call".into(), bad.into()],
                ..ok.clone()
            };
            assert_eq!(c.problem().unwrap().0, "rpc.forward_methods", "{bad:?}");
        }
        let small = RpcConfig {
            max_upstream_response_bytes: 1000,
            ..ok.clone()
        };
        assert_eq!(
            small.problem().unwrap().0,
            "rpc.max_upstream_response_bytes"
        );
        let inverted = RpcConfig {
            max_upstream_response_bytes: 2 << 20,
            max_upstream_inflight_bytes: 1 << 20,
            ..ok
        };
        assert_eq!(
            inverted.problem().unwrap().0,
            "rpc.max_upstream_inflight_bytes"
        );
    }
}
