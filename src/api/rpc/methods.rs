//! The methods of the JSON-RPC face. Signing methods become the REST operation they
//! correspond to and go through [`Api::decide`]:
//!
//! | method | operation |
//! | --- | --- |
//! | `personal_sign [data, address]`, `eth_sign [address, data]` | `evm.message` |
//! | `eth_signTypedData_v4 [address, typedData]` (and `eth_signTypedData`) | `evm.typed_data` |
//! | `eth_signTransaction [tx]`, `eth_sendTransaction [tx]` (`from` selects the wallet) | `evm.transaction` |
//!
//! `eth_accounts` and `eth_chainId` are answered here; the methods `rpc.forward_methods`
//! names (matched exactly) go to the `[rpc] upstream` node when there is one, for a client
//! granted `rpc.forward`; anything else is "method not found".

use std::future::Future;

use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, TxKind};
use serde_json::{json, Map, Value};

use super::{fill, Ctx, Reply, RpcError};
use crate::api::errors::{self, refuse};
use crate::api::grants::Grants;
use crate::api::upstream::Node;
use crate::api::{no_grant, Face, SignCall, WalletKey};
use crate::config::Operation;
use crate::http::Refusal;
use crate::store::wallets::{self as rows, Chain};

/// Method → the REST operation it is → the grant it needs (the table in docs/json-rpc.md).
pub const TABLE: &[(&str, &str, &str)] = &[
    (
        "eth_accounts",
        "GET /v1/wallets (EVM wallets only)",
        "any evm.* operation on the wallet",
    ),
    (
        "eth_requestAccounts",
        "as eth_accounts",
        "any evm.* operation on the wallet",
    ),
    ("eth_chainId", "-", "any grant"),
    (
        "personal_sign [data, address]",
        "POST /v1/wallets/{id}/evm/message",
        "evm.message",
    ),
    (
        "eth_sign [address, data]",
        "POST /v1/wallets/{id}/evm/message",
        "evm.message",
    ),
    (
        "eth_signTypedData_v4 [address, typedData]",
        "POST /v1/wallets/{id}/evm/typed-data",
        "evm.typed_data",
    ),
    (
        "eth_signTypedData [address, typedData]",
        "POST /v1/wallets/{id}/evm/typed-data",
        "evm.typed_data",
    ),
    (
        "eth_signTransaction [tx]",
        "POST /v1/wallets/{id}/evm/transaction",
        "evm.transaction",
    ),
    (
        "eth_sendTransaction [tx] (upstream)",
        "POST /v1/wallets/{id}/evm/transaction, then eth_sendRawTransaction upstream",
        "evm.transaction",
    ),
    (
        "the methods of rpc.forward_methods (upstream)",
        "forwarded to the upstream node, its answer passed on unparsed",
        "rpc.forward",
    ),
];

/// Answers one call.
pub(crate) async fn dispatch(
    ctx: &Ctx<'_>,
    method: &str,
    params: Value,
) -> Result<Reply, RpcError> {
    if !served_here(method) {
        return forward(ctx, method, params).await.map(Reply::Raw);
    }
    local(ctx, method, params).await.map(Reply::Json)
}

/// Whether keyward answers `method` itself (never forwarded, whatever the config says).
fn served_here(method: &str) -> bool {
    matches!(
        method,
        "eth_chainId"
            | "eth_accounts"
            | "eth_requestAccounts"
            | "personal_sign"
            | "eth_sign"
            | "eth_signTypedData_v4"
            | "eth_signTypedData"
            | "eth_signTransaction"
            | "eth_sendTransaction"
    )
}

async fn local(ctx: &Ctx<'_>, method: &str, params: Value) -> Result<Value, RpcError> {
    match method {
        "eth_chainId" => chain_id(ctx).await,
        "eth_accounts" | "eth_requestAccounts" => accounts(ctx).await,
        "personal_sign" => {
            let [data, address] = positional(params, "[data, address]")?;
            let address = address_param(&address, "params[1] (address)")?;
            let data = data_param(data, "params[0] (data)")?;
            sign_message(ctx, "personal_sign", address, data).await
        }
        "eth_sign" => {
            let [address, data] = positional(params, "[address, data]")?;
            let address = address_param(&address, "params[0] (address)")?;
            let data = data_param(data, "params[1] (data)")?;
            sign_message(ctx, "eth_sign", address, data).await
        }
        "eth_signTypedData_v4" => sign_typed_data(ctx, "eth_signTypedData_v4", params).await,
        "eth_signTypedData" => sign_typed_data(ctx, "eth_signTypedData", params).await,
        "eth_signTransaction" => {
            let answer = sign_transaction(ctx, "eth_signTransaction", params).await?;
            if ctx.geth_compat {
                geth_signed(&answer)
            } else {
                Ok(answer["rawTransaction"].clone())
            }
        }
        "eth_sendTransaction" => send_transaction(ctx, params).await,
        other => Err(RpcError::method_not_found(other, "not served")),
    }
}

/// Refuses a client without any grant (calls that are not sign requests; a sign request
/// is refused, and audited, by the decision path).
fn require_grants(ctx: &Ctx<'_>) -> Result<(), RpcError> {
    let config = ctx.api.app.config();
    if Grants::of(&config, ctx.identity).is_empty() {
        return Err(RpcError::unaudited(&no_grant(ctx.identity)));
    }
    Ok(())
}

async fn chain_id(ctx: &Ctx<'_>) -> Result<Value, RpcError> {
    require_grants(ctx)?;
    match ctx.chain_id().await.map_err(|r| RpcError::unaudited(&r))? {
        Some(id) => Ok(json!(format!("{id:#x}"))),
        None => Err(RpcError::new(
            -32000,
            "no chain id is known: call /v1/rpc/{chainId}, or set rpc.chain_id or rpc.upstream",
        )
        .with_code("chain_id_unknown")),
    }
}

/// The active EVM wallets this client holds any `evm.*` grant for, checksummed. Listed
/// once per request (a batch of 100 `eth_accounts` reads the store once), without any
/// wrapped material, off the async workers.
async fn accounts(ctx: &Ctx<'_>) -> Result<Value, RpcError> {
    require_grants(ctx)?;
    let listed = ctx
        .accounts
        .get_or_try_init(|| async {
            let active = ctx
                .api
                .app
                .store
                .read_async(|c| rows::active_without_material(c, Chain::Evm))
                .await
                .map_err(|e| RpcError::unaudited(&errors::store(&e)))?;
            let config = ctx.api.app.config();
            let g = Grants::of(&config, ctx.identity);
            let addresses: Vec<Value> = active
                .iter()
                .filter(|w| !g.operations_for(w).is_empty())
                .filter_map(|w| w.address.as_deref()?.parse::<Address>().ok())
                .map(|a| json!(a.to_checksum(None)))
                .collect();
            Ok::<_, RpcError>(Value::Array(addresses))
        })
        .await?;
    Ok(listed.clone())
}

/// Exactly `N` positional parameters.
fn positional<const N: usize>(params: Value, shape: &str) -> Result<[Value; N], RpcError> {
    let Value::Array(items) = params else {
        return Err(RpcError::invalid_params(format!(
            "params must be an array {shape}"
        )));
    };
    let n = items.len();
    items
        .try_into()
        .map_err(|_| RpcError::invalid_params(format!("expected {N} params {shape}, got {n}")))
}

fn address_param(v: &Value, name: &str) -> Result<Address, RpcError> {
    let s = v.as_str().ok_or_else(|| {
        RpcError::invalid_params(format!("{name}: expected a 0x-prefixed address string"))
    })?;
    crate::chains::evm::parse_address(name, s)
        .map_err(|e| RpcError::invalid_params(format!("{name}: {e}")))
}

fn data_param(v: Value, name: &str) -> Result<String, RpcError> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(RpcError::invalid_params(format!(
            "{name}: expected 0x hex bytes or text"
        ))),
    }
}

/// One sign request through the decision path; the REST-shaped answer on success.
async fn sign(
    ctx: &Ctx<'_>,
    method: &'static str,
    operation: Operation,
    address: Address,
    input: impl Future<Output = Result<Value, Refusal>>,
) -> Result<Value, RpcError> {
    let call = SignCall {
        identity: ctx.identity,
        face: Face::Rpc(method),
        operation,
        wallet: WalletKey::EvmAddress(address),
        dry_run: Ok(false),
    };
    let decided = ctx
        .api
        .decide(call, input)
        .await
        .map_err(|r| RpcError::unaudited(&r))?;
    ctx.audited(&decided.audit_id);
    decided
        .outcome
        .map_err(|r| RpcError::refused(&r, &decided.audit_id))
}

async fn sign_message(
    ctx: &Ctx<'_>,
    method: &'static str,
    address: Address,
    data: String,
) -> Result<Value, RpcError> {
    let input = std::future::ready(Ok(json!({ "message": data })));
    let answer = sign(ctx, method, Operation::EvmMessage, address, input).await?;
    Ok(answer["signature"].clone())
}

async fn sign_typed_data(
    ctx: &Ctx<'_>,
    method: &'static str,
    params: Value,
) -> Result<Value, RpcError> {
    let [address, typed] = positional(params, "[address, typedData]")?;
    let address = address_param(&address, "params[0] (address)")?;
    if !typed.is_object() && !typed.is_string() {
        return Err(RpcError::invalid_params(
            "params[1] (typedData): expected an object or a JSON string",
        ));
    }
    let input = std::future::ready(Ok(json!({ "typedData": typed })));
    let answer = sign(ctx, method, Operation::EvmTypedData, address, input).await?;
    Ok(answer["signature"].clone())
}

/// `eth_signTransaction` / `eth_sendTransaction`: the REST answer (rawTransaction, hash,
/// signature) of the signed transaction.
async fn sign_transaction(
    ctx: &Ctx<'_>,
    method: &'static str,
    params: Value,
) -> Result<Value, RpcError> {
    let [tx] = positional(params, "[transaction]")?;
    let Value::Object(mut tx) = tx else {
        return Err(RpcError::invalid_params(
            "params[0]: expected a transaction object",
        ));
    };
    let from = match tx.get("from") {
        Some(v) if !v.is_null() => address_param(v, "params[0].from")?,
        _ => {
            return Err(RpcError::invalid_params(
                "params[0].from: required (it selects the signing wallet)",
            ))
        }
    };
    let input = async move {
        apply_chain_id(ctx, &mut tx).await?;
        if let Some(up) = ctx.upstream_node()? {
            let node = Node {
                upstream: &up,
                budget: &ctx.budget,
            };
            fill::fill(&node, &mut tx, from).await?;
        }
        Ok(json!({ "transaction": Value::Object(tx) }))
    };
    sign(ctx, method, Operation::EvmTransaction, from, input).await
}

/// A transaction without `chainId` takes the endpoint's; one with another chain's is
/// refused (signed for one chain, sent to another, it would be a surprise either way).
async fn apply_chain_id(ctx: &Ctx<'_>, tx: &mut Map<String, Value>) -> Result<(), Refusal> {
    let Some(chain) = ctx.chain_id().await? else {
        return Ok(());
    };
    match tx.get("chainId").filter(|v| !v.is_null()) {
        None => {
            tx.insert("chainId".into(), json!(format!("{chain:#x}")));
        }
        Some(v) => {
            if let Some(q) = fill::quantity(v) {
                if q != alloy_primitives::U256::from(chain) {
                    return Err(refuse(
                        "invalid_transaction",
                        format!("invalid transaction field `chainId`: {q} is not this endpoint's chain ({chain})"),
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn send_transaction(ctx: &Ctx<'_>, params: Value) -> Result<Value, RpcError> {
    let Some(up) = ctx.upstream_node().map_err(|r| RpcError::unaudited(&r))? else {
        return Err(RpcError::method_not_found(
            "eth_sendTransaction",
            "it needs an [rpc] upstream node to send to, and none is configured",
        ));
    };
    let answer = sign_transaction(ctx, "eth_sendTransaction", params).await?;
    let audit_id = ctx.last_audit_id().unwrap_or_default();
    let raw = answer["rawTransaction"].clone();
    let node = Node {
        upstream: &up,
        budget: &ctx.budget,
    };
    match node.forward("eth_sendRawTransaction", json!([raw])).await {
        Ok(Ok(hash)) => serde_json::from_str(hash.get()).map_err(|_| {
            RpcError::unaudited(&refuse(
                "upstream_unavailable",
                "signed and sent, but the node's answer is not JSON",
            ))
        }),
        // the node's own error (nonce too low, insufficient funds, …) as it gave it, with
        // the audit id of the signature it refused
        Ok(Err(e)) => {
            let data = match e.data {
                None => json!({ "auditId": audit_id }),
                Some(Value::Object(mut m)) => {
                    m.entry("auditId").or_insert(json!(audit_id));
                    Value::Object(m)
                }
                Some(other) => other,
            };
            Err(RpcError {
                code: e.code,
                message: e.message,
                data: Some(data),
            })
        }
        Err(e) => {
            let r = fill::refusal(&e);
            let mut err = RpcError::unaudited(&r);
            err.message = format!("signed but not sent: {}", r.message);
            err.data = Some(json!({ "code": r.code, "auditId": audit_id }));
            Err(err)
        }
    }
}

/// Forwards `method` when `rpc.forward_methods` names it exactly (an allowlist: a method
/// is forwarded because the operator listed it, never because keyward failed to
/// recognise it) and the client holds `rpc.forward`. The node's result is passed on as
/// its JSON text.
async fn forward(
    ctx: &Ctx<'_>,
    method: &str,
    params: Value,
) -> Result<Box<serde_json::value::RawValue>, RpcError> {
    let listed = {
        let config = ctx.api.app.config();
        // exact bytes: `ETH_CALL`, ` eth_call` or `eth_call\u0000` are other methods
        config.rpc.forward_methods.iter().any(|m| m == method)
            && !crate::config::rpc::never_forwarded(method)
    };
    if !listed {
        return Err(RpcError::method_not_found(
            method,
            "keyward serves eth_accounts, eth_chainId, eth_sign, personal_sign, eth_signTypedData_v4 (eth_signTypedData), eth_signTransaction and eth_sendTransaction, and forwards only the methods rpc.forward_methods lists (exact names)",
        ));
    }
    let Some(up) = ctx.upstream_node().map_err(|r| RpcError::unaudited(&r))? else {
        return Err(RpcError::method_not_found(
            method,
            "keyward does not serve it and no [rpc] upstream is configured",
        ));
    };
    require_grants(ctx)?;
    {
        let config = ctx.api.app.config();
        if !Grants::of(&config, ctx.identity).has_operation(Operation::RpcForward) {
            return Err(RpcError::unaudited(&refuse(
                "not_authorized",
                format!(
                    "client {} may not use the upstream node: forwarding needs the `rpc.forward` operation",
                    ctx.identity
                ),
            )));
        }
    }
    let node = Node {
        upstream: &up,
        budget: &ctx.budget,
    };
    match node.forward(method, params).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(RpcError {
            code: e.code,
            message: e.message,
            data: e.data,
        }),
        Err(e) => Err(RpcError::unaudited(&fill::refusal(&e))),
    }
}

/// geth's `eth_signTransaction` answer, `{raw, tx}` (what web3.py expects), from the
/// REST answer.
fn geth_signed(answer: &Value) -> Result<Value, RpcError> {
    let internal = |m: &str| {
        RpcError::unaudited(&refuse(
            "internal_error",
            format!("the signed transaction cannot be described: {m}"),
        ))
    };
    let raw_hex = answer["rawTransaction"]
        .as_str()
        .ok_or_else(|| internal("no rawTransaction"))?;
    let raw = hex::decode(raw_hex.trim_start_matches("0x")).map_err(|_| internal("hex"))?;
    let env = TxEnvelope::decode_2718(&mut raw.as_slice()).map_err(|e| internal(&e.to_string()))?;
    let q = |n: u128| json!(format!("{n:#x}"));
    let to = |k: &TxKind| match k {
        TxKind::Call(a) => json!(a.to_checksum(None)),
        TxKind::Create => Value::Null,
    };
    let access = |l: &alloy_eips::eip2930::AccessList| {
        Value::Array(
            l.iter()
                .map(|i| {
                    json!({
                        "address": i.address.to_checksum(None),
                        "storageKeys": i.storage_keys.iter().map(|k| format!("{k:#x}")).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    };
    let sig = &answer["signature"];
    let mut tx = json!({
        "hash": answer["hash"],
        "r": sig["r"], "s": sig["s"], "v": sig["v"],
    });
    let from = answer["address"]
        .as_str()
        .and_then(|a| a.parse::<Address>().ok())
        .ok_or_else(|| internal("address"))?;
    tx["from"] = json!(from.to_checksum(None));
    let fields = match &env {
        TxEnvelope::Legacy(s) => {
            let t = s.tx();
            json!({
                "type": "0x0", "chainId": t.chain_id.map(|c| q(c.into())), "nonce": q(t.nonce.into()),
                "gasPrice": q(t.gas_price), "gas": q(t.gas_limit.into()), "to": to(&t.to),
                "value": format!("{:#x}", t.value), "input": format!("{:#x}", t.input),
            })
        }
        TxEnvelope::Eip2930(s) => {
            let t = s.tx();
            json!({
                "type": "0x1", "chainId": q(t.chain_id.into()), "nonce": q(t.nonce.into()),
                "gasPrice": q(t.gas_price), "gas": q(t.gas_limit.into()), "to": to(&t.to),
                "value": format!("{:#x}", t.value), "input": format!("{:#x}", t.input),
                "accessList": access(&t.access_list), "yParity": sig["yParity"],
            })
        }
        TxEnvelope::Eip1559(s) => {
            let t = s.tx();
            json!({
                "type": "0x2", "chainId": q(t.chain_id.into()), "nonce": q(t.nonce.into()),
                "maxFeePerGas": q(t.max_fee_per_gas), "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas),
                "gas": q(t.gas_limit.into()), "to": to(&t.to),
                "value": format!("{:#x}", t.value), "input": format!("{:#x}", t.input),
                "accessList": access(&t.access_list), "yParity": sig["yParity"],
            })
        }
        TxEnvelope::Eip7702(s) => {
            let t = s.tx();
            let list: Vec<Value> = t
                .authorization_list
                .iter()
                .map(|a| {
                    json!({
                        "chainId": format!("{:#x}", a.chain_id), "address": a.address.to_checksum(None),
                        "nonce": q(a.nonce.into()), "yParity": q(a.y_parity().into()),
                        "r": format!("{:#x}", a.r()), "s": format!("{:#x}", a.s()),
                    })
                })
                .collect();
            json!({
                "type": "0x4", "chainId": q(t.chain_id.into()), "nonce": q(t.nonce.into()),
                "maxFeePerGas": q(t.max_fee_per_gas), "maxPriorityFeePerGas": q(t.max_priority_fee_per_gas),
                "gas": q(t.gas_limit.into()), "to": json!(t.to.to_checksum(None)),
                "value": format!("{:#x}", t.value), "input": format!("{:#x}", t.input),
                "accessList": access(&t.access_list), "authorizationList": list,
                "yParity": sig["yParity"],
            })
        }
        _ => {
            return Err(internal(
                "not a legacy, EIP-2930, EIP-1559 or EIP-7702 transaction",
            ))
        }
    };
    if let (Value::Object(t), Value::Object(f)) = (&mut tx, fields) {
        t.extend(f);
    }
    Ok(json!({ "raw": raw_hex, "tx": tx }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positional_params() {
        let [a, b] = positional::<2>(json!(["x", "y"]), "[a, b]").unwrap();
        assert_eq!((a, b), (json!("x"), json!("y")));
        let e = positional::<2>(json!(["x"]), "[a, b]").unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(e.message.contains("expected 2 params [a, b], got 1"));
        assert_eq!(
            positional::<1>(json!({"a": 1}), "[tx]").unwrap_err().code,
            -32602
        );
    }

    #[test]
    fn address_params_name_the_field() {
        let e = address_param(&json!("0x12"), "params[1] (address)").unwrap_err();
        assert_eq!(e.code, -32602);
        assert!(
            e.message.starts_with("params[1] (address)"),
            "{}",
            e.message
        );
        // a mixed-case address must carry its EIP-55 checksum
        let e = address_param(
            &json!("0x9D8A62F656A8D1615C1294FD71E9CFB3E4855A4f"),
            "params[0] (address)",
        )
        .unwrap_err();
        assert!(e.message.contains("checksum"), "{}", e.message);
        assert!(address_param(&json!(7), "p").is_err());
    }

    #[test]
    fn signing_methods_are_never_forwarded() {
        for m in [
            "eth_sign",
            "eth_signTypedData_v3",
            "eth_signTransaction",
            "eth_sendTransaction",
            "eth_accounts",
            "eth_decrypt",
            "personal_sign",
            "personal_unlockAccount",
        ] {
            assert!(
                served_here(m) || crate::config::rpc::never_forwarded(m),
                "{m}"
            );
        }
        assert!(!crate::config::rpc::never_forwarded(
            "eth_sendRawTransaction"
        ));
        assert!(!crate::config::rpc::never_forwarded("eth_getBalance"));
        // the default list holds nothing that is never forwarded or served here
        for m in crate::config::rpc::DEFAULT_FORWARD_METHODS {
            assert!(
                !crate::config::rpc::never_forwarded(m) && !served_here(m),
                "{m}"
            );
        }
    }
}
