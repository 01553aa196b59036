//! Helpers of the JSON-RPC face's tests (tests/rpc.rs, tests/rpc_upstream.rs): a signing
//! API with a given config on loopback, and a JSON-RPC client over mTLS.

use std::sync::Arc;

use alloy_primitives::{Address, Signature, B256};
use keyward::appliance::{Appliance, LOCK_KEY};
use keyward::store::audit;
use keyward::store::state;
use keyward::store::wallets::{self as rows, Chain, Wallet};
use keyward::wallet_key;
use serde_json::{json, Value};

use super::{Env, EnvOptions};

/// EIP-155's example key (0x9d8a…) and EIP-712's "cow" key (0xcd2a…).
pub const EIP155_KEY: &str = "4646464646464646464646464646464646464646464646464646464646464646";
pub const COW_KEY: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
pub const EIP155_ADDR: &str = "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F";
pub const COW_ADDR: &str = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826";

/// EIP-155's example transaction, without its chain id (the endpoint's is used).
pub fn eip155_tx() -> Value {
    json!({
        "from": EIP155_ADDR, "nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
        "to": "0x3535353535353535353535353535353535353535", "value": "0xde0b6b3a7640000", "data": "0x"
    })
}

/// Its signed bytes (the EIP's own).
pub const EIP155_RAW: &str = "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83";

pub struct Server {
    pub env: Env,
    pub app: Arc<Appliance>,
    pub addr: String,
}

/// The signing API with `config` (clients, policy, `[rpc]`) appended to the test config.
pub async fn start(config: &str) -> Server {
    let env = Env::with(EnvOptions {
        extra: config.to_owned(),
        ..Default::default()
    });
    let app = Arc::new(env.appliance());
    let addr = super::serve_api(app.clone(), keyward::api::Api::new(app.clone())).await;
    Server { env, app, addr }
}

pub struct Rpc {
    tls: Arc<rustls::ClientConfig>,
    addr: String,
    path: String,
}

impl Rpc {
    pub async fn post(&self, body: &Value) -> super::HttpAnswer {
        self.raw(Some("application/json"), serde_json::to_vec(body).unwrap())
            .await
    }

    pub async fn raw(&self, ct: Option<&str>, body: Vec<u8>) -> super::HttpAnswer {
        super::https_request(self.tls.clone(), &self.addr, "POST", &self.path, ct, body)
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
            String::from_utf8_lossy(&a.body)
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

impl Server {
    pub fn rpc_as(&self, cn: &str, serial: u64, path: &str) -> Rpc {
        let ca = &self.env.pki.ca.cert_pem;
        let tls = if cn == "test-client" {
            super::client_config(ca, Some(&self.env.pki.client))
        } else {
            let cert = self
                .env
                .pki
                .ca
                .client(cn, None, keyward::pki::Validity::Current, serial)
                .unwrap();
            super::client_config(ca, Some(&cert))
        };
        Rpc {
            tls,
            addr: self.addr.clone(),
            path: path.into(),
        }
    }

    pub fn rpc(&self, path: &str) -> Rpc {
        self.rpc_as("test-client", 0, path)
    }

    pub fn import(&self, hex_key: &str, label: Option<&str>) -> Wallet {
        keyward::wallets::import(
            &self.app,
            Chain::Evm,
            wallet_key::parse_secret_hex(hex_key).unwrap(),
            label,
        )
        .unwrap()
    }

    pub fn record(&self, id: &str) -> audit::AuditRecord {
        let id = id.to_owned();
        self.app
            .store
            .read(move |c| audit::get(c, &id))
            .unwrap()
            .expect("audit record exists")
    }

    pub fn detail(&self, id: &str) -> Value {
        serde_json::from_str(self.record(id).detail.as_deref().unwrap()).unwrap()
    }

    pub fn put(&self, w: Wallet) {
        self.app
            .store
            .write_blocking(move |ctx| rows::upsert(ctx.conn, &w))
            .unwrap();
    }

    pub fn lock(&self, reason: Option<&'static str>) {
        self.app
            .store
            .write_blocking(move |ctx| state::set(ctx.conn, LOCK_KEY, reason))
            .unwrap();
    }
}

pub fn recover(sig_hex: &str, digest: &B256) -> Address {
    let bytes = hex::decode(sig_hex.strip_prefix("0x").unwrap()).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27/28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(digest)
        .unwrap()
}
