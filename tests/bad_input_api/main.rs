//! The bad-input corpus of the signing API, through the real listener (mTLS on loopback,
//! SoftHSM2 token, SQLite file). Each case is (request, expected status, expected code);
//! for every case the harness checks that the answer carries exactly that status and
//! code with a message, that nothing in the store changed (every table but the audit
//! chain, see `common::store::state`), and the audit trail: a request that reached a
//! sign route with an identity has exactly one new record naming the client, wallet,
//! operation, decision and code (and its id is the answer's `auditId`); any other
//! refusal has none.

#[path = "../common/mod.rs"]
mod common;
mod crypto;
mod encodings;
mod framing;
mod grants;
mod identifiers;
mod ranges;
mod shape;
mod smart;
mod types;

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine as _;
use common::api::{path, Client};
use common::corpus::{self, Expect, Tap};
use common::store::AuditRow;
use hyper::Method;
use keyward::api::routes::{self, Matched, RouteId};
use keyward::appliance::LOCK_KEY;
use keyward::pki::Validity;
use keyward::store::state;
use keyward::store::wallets::{self as rows, Chain, Wallet};
use serde_json::{json, Value};

/// Who sends a case.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Who {
    /// `test-client`: every operation but `evm.hash` and `rpc.forward`, every wallet.
    Test,
    /// `hash-client`: `evm.hash` and `evm.message` on `label:hot`.
    Hash,
    /// A valid certificate without any grant.
    Stranger,
    /// The URI-SAN identity: `solana.message` on `chain:solana`.
    Spiffe,
    /// A certificate whose subject CN is empty and that has no URI SAN.
    Nameless,
}

/// A request of the API corpus.
struct Req {
    who: Who,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

type Case = corpus::Case<Req>;
type Class<'a> = corpus::Class<'a, Req>;

impl Class<'_> {
    #[allow(
        clippy::too_many_arguments,
        reason = "a case is one call, its fields in table order"
    )]
    fn raw(
        &mut self,
        name: impl Into<String>,
        who: Who,
        method: Method,
        path: &str,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
        expect: Expect,
    ) {
        let req = Req {
            who,
            method,
            path: path.to_owned(),
            content_type,
            body: body.into(),
        };
        self.push(name, req, expect);
    }

    /// A POST of `body` as JSON from `who`.
    fn post(&mut self, name: impl Into<String>, who: Who, path: &str, body: Value, expect: Expect) {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.raw(
            name,
            who,
            Method::POST,
            path,
            Some("application/json"),
            bytes,
            expect,
        );
    }

    /// A POST of raw bytes as JSON from `test-client`.
    fn bytes(&mut self, name: &str, path: &str, body: &[u8], expect: Expect) {
        self.raw(
            name,
            Who::Test,
            Method::POST,
            path,
            Some("application/json"),
            body,
            expect,
        );
    }
}

/// The wallets the cases address.
struct Wallets {
    evm: Wallet,
    sol: Wallet,
    other_evm: Wallet,
    revoked: Wallet,
    mpc: Wallet,
}

fn base_tx() -> Value {
    json!({"chainId": "1", "nonce": "0", "gas": "21000", "gasPrice": "1",
        "to": "0x3535353535353535353535353535353535353535", "value": "0"})
}

fn tx_with(k: &str, v: Value) -> Value {
    let mut tx = base_tx();
    tx[k] = v;
    json!({ "transaction": tx })
}

fn tx_without(k: &str) -> Value {
    let mut tx = base_tx();
    tx.as_object_mut().unwrap().remove(k);
    json!({ "transaction": tx })
}

fn eip1559(extra: &[(&str, Value)]) -> Value {
    let mut tx = json!({"type": "0x2", "chainId": "1", "nonce": "0", "gas": "21000",
        "maxFeePerGas": "2", "maxPriorityFeePerGas": "1",
        "to": "0x3535353535353535353535353535353535353535"});
    for (k, v) in extra {
        tx[*k] = v.clone();
    }
    json!({ "transaction": tx })
}

fn typed(types: Value, primary: &str, message: Value) -> Value {
    json!({"typedData": {"types": types, "primaryType": primary, "domain": {}, "message": message}})
}

fn b64(b: &[u8]) -> String {
    B64.encode(b)
}

const BAD: (u16, &str) = (400, "invalid_request");
const JSON_: (u16, &str) = (400, "invalid_json");

/// The paths and the valid Solana transaction the cases start from.
struct Routes {
    msg: String,
    td: String,
    tx: String,
    hash: String,
    smsg: String,
    stx: String,
    sol_pk: [u8; 32],
    good_stx: Vec<u8>,
}

/// Every case, class by class.
fn corpus(w: &Wallets) -> Vec<Case> {
    let msg = path(&w.evm, "evm/message");
    let td = path(&w.evm, "evm/typed-data");
    let tx = path(&w.evm, "evm/transaction");
    let hash = path(&w.evm, "evm/hash");
    let smsg = path(&w.sol, "solana/message");
    let stx = path(&w.sol, "solana/transaction");
    let sol_pk = keyward::chains::solana::parse_pubkey(w.sol.address.as_deref().unwrap()).unwrap();
    let good_stx = common::solana_tx(&sol_pk, None, false);
    let r = Routes {
        msg,
        td,
        tx,
        hash,
        smsg,
        stx,
        sol_pk,
        good_stx,
    };
    let mut cases = Vec::new();
    framing::cases(w, &r, &mut cases);
    shape::cases(w, &r, &mut cases);
    types::cases(w, &r, &mut cases);
    ranges::cases(w, &r, &mut cases);
    encodings::cases(w, &r, &mut cases);
    identifiers::cases(w, &r, &mut cases);
    crypto::cases(w, &r, &mut cases);
    grants::cases(w, &r, &mut cases);
    smart::cases(w, &r, &mut cases);
    cases
}

/// The typed identity each sender's certificate names (as audit records carry it).
fn identity(who: Who) -> &'static str {
    match who {
        Who::Test => "cn:test-client",
        Who::Hash => "cn:hash-client",
        Who::Stranger => "cn:stranger",
        Who::Spiffe => "uri:spiffe://keyward.test/svc/payments",
        Who::Nameless => "",
    }
}

/// The API under the corpus: each case from its sender's client; a sign request's
/// refusal is audited once (as denied, or as an error for a 5xx), anything else not
/// at all.
struct Api<'a> {
    clients: &'a BTreeMap<String, Client>,
}

impl corpus::Face<Req> for Api<'_> {
    async fn send(&self, req: &Req) -> Result<corpus::Answer, String> {
        let a = self.clients[&format!("{:?}", req.who)]
            .send(
                req.method.as_str(),
                &req.path,
                req.content_type,
                req.body.clone(),
            )
            .await?;
        Ok(corpus::Answer {
            status: a.status.as_u16(),
            code: a.code().to_owned(),
            message: a.body["error"]["message"].as_str().map(str::to_owned),
            audit_id: a.body.get("auditId").cloned(),
            shown: a.body.to_string(),
        })
    }

    fn audited(&self, case: &Case, a: &corpus::Answer, written: &[AuditRow]) -> Result<(), String> {
        let req = &case.input;
        let route_path = req.path.split('?').next().unwrap();
        let sign = match routes::route(&req.method, route_path) {
            Matched::Route {
                id: RouteId::Sign(op),
                wallet_id,
                ..
            } if req.who != Who::Nameless => Some((op, wallet_id.unwrap().to_owned())),
            _ => None,
        };
        let Some((op, wallet_id)) = sign else {
            return match written.is_empty() && a.audit_id.is_none() {
                true => Ok(()),
                false => Err(format!("audited: {written:?} {}", a.shown)),
            };
        };
        let decision = if case.status >= 500 {
            "error"
        } else {
            "denied"
        };
        let want = (
            a.audit_id
                .as_ref()
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            identity(req.who).to_owned(),
            if req.path.ends_with("?dryRun=true") {
                "sign.dry_run"
            } else {
                "sign"
            }
            .to_owned(),
            Some(wallet_id),
            Some(op.as_str().to_owned()),
            decision.to_owned(),
            case.code.to_owned(),
        );
        let got: Vec<_> = written
            .iter()
            .map(|r| {
                (
                    Some(r.id.clone()),
                    r.actor.clone(),
                    r.action.clone(),
                    r.wallet_id.clone(),
                    r.operation.clone(),
                    r.decision.clone(),
                    r.result.clone(),
                )
            })
            .collect();
        match got == vec![want.clone()] {
            true => Ok(()),
            false => Err(format!("audit: want exactly {want:?}, got {got:?}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_has_its_code_changes_nothing_and_is_audited() {
    let s = common::api::start(common::api::CLIENTS).await;
    let evm = keyward::wallets::create(&s.app, Chain::Evm, Some("hot")).unwrap();
    let other_evm = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let sol = keyward::wallets::create(&s.app, Chain::Solana, None).unwrap();
    let revoked = keyward::wallets::create(&s.app, Chain::Evm, None).unwrap();
    let id = revoked.id.clone();
    s.app
        .store
        .write_blocking(move |ctx| rows::mark_revoked(ctx.conn, &id, 1, "now"))
        .unwrap();
    let (_, mpc_address) = keyward::wallet_key::generate(Chain::Evm);
    let mpc = s.put_mpc(Chain::Evm, mpc_address, &[0x42; 48], None);
    let w = Wallets {
        evm,
        sol,
        other_evm,
        revoked,
        mpc,
    };
    let ca = &s.env.pki.ca;
    let mut clients = BTreeMap::new();
    for (who, cn, uri, serial) in [
        (Who::Test, "test-client", None, 70),
        (Who::Hash, "hash-client", None, 71),
        (Who::Stranger, "stranger", None, 72),
        (
            Who::Spiffe,
            "ignored-cn",
            Some("spiffe://keyward.test/svc/payments"),
            73,
        ),
        (Who::Nameless, "", None, 74),
    ] {
        let cert = ca.client(cn, uri, Validity::Current, serial).unwrap();
        clients.insert(format!("{who:?}"), Client::new(&s.env, s.addr, Some(&cert)));
    }

    let cases = corpus(&w);
    corpus::assert_distinct(&cases);
    let api = Api { clients: &clients };
    let mut per_class = corpus::run(&api, s.db(), &cases).await;

    // ordering and state: while an operator's lock is in force every sign request is
    // refused (423, audited) whatever it carries; reads still answer
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, Some("bad-input corpus")))
        .unwrap();
    let mut locked = Vec::new();
    let mut c = Class::new("ordering/state", &mut locked);
    let lock = (423, "appliance_locked");
    c.post(
        "locked, valid message",
        Who::Test,
        &path(&w.evm, "evm/message"),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, dry run",
        Who::Test,
        &format!("{}?dryRun=true", path(&w.evm, "evm/message")),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, solana transaction",
        Who::Test,
        &path(&w.sol, "solana/transaction"),
        json!({"transaction": b64(&common::solana_tx(
            &keyward::chains::solana::parse_pubkey(w.sol.address.as_deref().unwrap()).unwrap(),
            None,
            false,
        ))}),
        lock,
    );
    c.post(
        "locked, stranger",
        Who::Stranger,
        &path(&w.evm, "evm/message"),
        json!({"message": "hi"}),
        lock,
    );
    c.post(
        "locked, unknown wallet",
        Who::Test,
        "/v1/wallets/no-such-wallet/evm/message",
        json!({"message": "hi"}),
        lock,
    );
    c.bytes(
        "locked, not JSON",
        &path(&w.evm, "evm/message"),
        b"{not json",
        lock,
    );
    for (class, n) in corpus::run(&api, s.db(), &locked).await {
        *per_class.entry(class).or_insert(0) += n;
    }
    s.app
        .store
        .write_blocking(|ctx| state::set(ctx.conn, LOCK_KEY, None))
        .unwrap();

    // the same server still signs, and the chain of all those records verifies
    let a = clients["Test"]
        .post(&path(&w.evm, "evm/message"), json!({"message": "hi"}))
        .await;
    assert_eq!(a.status.as_u16(), 200, "{}", a.body);
    let n = s
        .app
        .store
        .read(keyward::store::audit::verify)
        .unwrap()
        .unwrap();
    let total: usize = per_class.values().sum();
    eprintln!("bad-input corpus (API): {total} cases {per_class:?}; {n} audit records");
    assert!(total >= 150, "{total} cases");
}
