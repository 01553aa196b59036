//! The JSON-RPC client of the tests (tests/rpc.rs, tests/rpc_upstream.rs): calls over
//! mTLS to a signing API started with [`super::api::start`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::https::{client_config, request, Answer};

/// The grant most JSON-RPC tests start from: `test-client` with every EVM operation and
/// forwarding to the upstream node.
pub const EVM_CLIENT: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "rpc.forward"]
"#;

/// Their policy: allow, but `test-client`'s messages are at most 64 bytes (so a refusal
/// is one long message away).
pub const SHORT_MESSAGES: &str = r#"
[policy]
default = "allow"

[[policy.rule]]
id = "short-messages"
clients = ["test-client"]
message = { max_len = 64 }
"#;

pub struct Rpc {
    tls: Arc<rustls::ClientConfig>,
    addr: String,
    path: String,
}

impl Rpc {
    pub async fn post(&self, body: &Value) -> Answer {
        self.raw(Some("application/json"), serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn raw(&self, ct: Option<&str>, body: Vec<u8>) -> Answer {
        let headers: Vec<(&str, &str)> =
            ct.map(|ct| vec![("content-type", ct)]).unwrap_or_default();
        request(
            self.tls.clone(),
            &self.addr,
            "POST",
            &self.path,
            &headers,
            body,
        )
        .await
        .unwrap()
    }

    /// One call; the whole response object.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        let a = self
            .post(&json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }))
            .await;
        assert_eq!(
            a.status,
            200,
            "{method}: {}",
            String::from_utf8_lossy(&a.raw)
        );
        let v = a.json();
        assert_eq!(v["jsonrpc"], "2.0");
        assert_eq!(v["id"], 1);
        v
    }

    /// One call that must succeed.
    pub async fn ok(&self, method: &str, params: Value) -> Value {
        let v = self.call(method, params).await;
        assert!(v.get("error").is_none(), "{method}: {v}");
        v["result"].clone()
    }

    /// One call that must fail with `code`; the error object.
    pub async fn err(&self, method: &str, params: Value, code: i64) -> Value {
        let v = self.call(method, params).await;
        assert_eq!(v["error"]["code"], code, "{method}: {v}");
        assert!(v.get("result").is_none(), "{v}");
        v["error"].clone()
    }
}

impl super::api::Server {
    /// A JSON-RPC client at `path`, presenting a certificate for `cn` (the environment's own
    /// for `test-client`).
    pub fn rpc_as(&self, cn: &str, serial: u64, path: &str) -> Rpc {
        let ca = &self.env.pki.ca.cert_pem;
        let tls = if cn == "test-client" {
            client_config(ca, Some(&self.env.pki.client))
        } else {
            let cert = self
                .env
                .pki
                .ca
                .client(cn, None, keyward::pki::Validity::Current, serial)
                .unwrap();
            client_config(ca, Some(&cert))
        };
        Rpc {
            tls,
            addr: self.addr.to_string(),
            path: path.into(),
        }
    }

    /// A JSON-RPC client at `path` as `test-client`.
    pub fn rpc(&self, path: &str) -> Rpc {
        self.rpc_as("test-client", 0, path)
    }
}
