//! Completing a transaction from the upstream node, as wallets do before signing:
//! `nonce` (pending count of the sender), fees (EIP-1559 when the chain has a base fee,
//! else a gas price), and `gas` (the node's estimate). Only what the client left out is
//! asked for; a field the client set is never changed. Runs inside the decision path
//! (after the lock and grant checks), so every failure here is audited with the call.

use alloy_primitives::{Address, U256};
use serde_json::{json, Map, Value};

use crate::api::errors::refuse;
use crate::api::upstream::{Node, UpstreamError};
use crate::http::Refusal;

/// The priority fee used when the node does not implement `eth_maxPriorityFeePerGas`
/// (1 gwei, what ethers and viem fall back to).
pub const FALLBACK_PRIORITY_FEE: u64 = 1_000_000_000;

pub use crate::api::upstream::refusal;

/// A JSON quantity as clients send them (0x hex, decimal string, or integer); `None` if it
/// is none of those (the transaction parser then names the field).
pub fn quantity(v: &Value) -> Option<U256> {
    match v {
        Value::Number(n) => n.as_u64().map(U256::from),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) if !h.is_empty() => U256::from_str_radix(h, 16).ok(),
            Some(_) => None,
            None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                U256::from_str_radix(s, 10).ok()
            }
            None => None,
        },
        _ => None,
    }
}

fn hex(q: U256) -> Value {
    Value::String(format!("{q:#x}"))
}

fn present(tx: &Map<String, Value>, key: &str) -> bool {
    tx.get(key).is_some_and(|v| !v.is_null())
}

/// A quantity the node answered with.
fn node_quantity(method: &str, v: &Value) -> Result<U256, Refusal> {
    v.as_str()
        .filter(|s| s.starts_with("0x"))
        .and_then(|s| quantity(&Value::String(s.to_owned())))
        .ok_or_else(|| {
            refuse(
                "upstream_unavailable",
                format!("the upstream node's {method} answer is not a hex quantity"),
            )
        })
}

async fn ask(up: &Node<'_>, method: &str, params: Value) -> Result<U256, Refusal> {
    let v = up.call(method, params).await.map_err(|e| refusal(&e))?;
    node_quantity(method, &v)
}

/// Fills `nonce`, fees and `gas` of `tx` (sent by `from`) where the client left them out.
pub async fn fill(
    up: &Node<'_>,
    tx: &mut Map<String, Value>,
    from: Address,
) -> Result<(), Refusal> {
    let from_hex = format!("{from:#x}");
    if !present(tx, "nonce") {
        let n = ask(up, "eth_getTransactionCount", json!([from_hex, "pending"])).await?;
        tx.insert("nonce".into(), hex(n));
    }
    fill_fees(up, tx).await?;
    if !present(tx, "gas") && !present(tx, "gasLimit") {
        // the estimate is asked for what the transaction does, not what it pays
        let mut call = Map::new();
        call.insert("from".into(), Value::String(from_hex));
        for key in [
            "to",
            "value",
            "data",
            "input",
            "accessList",
            "authorizationList",
        ] {
            if let Some(v) = tx.get(key).filter(|v| !v.is_null()) {
                call.insert(key.into(), v.clone());
            }
        }
        let gas = ask(up, "eth_estimateGas", json!([Value::Object(call)])).await?;
        tx.insert("gas".into(), hex(gas));
    }
    Ok(())
}

async fn fill_fees(up: &Node<'_>, tx: &mut Map<String, Value>) -> Result<(), Refusal> {
    let has_price = present(tx, "gasPrice");
    let has_max = present(tx, "maxFeePerGas");
    let has_tip = present(tx, "maxPriorityFeePerGas");
    let ty = tx.get("type").and_then(quantity);
    let legacy_type = ty.is_some_and(|t| t < U256::from(2));
    if has_price || legacy_type {
        if !has_price && !has_max && !has_tip {
            let p = ask(up, "eth_gasPrice", json!([])).await?;
            tx.insert("gasPrice".into(), hex(p));
        }
        // anything inconsistent is the transaction parser's to name
        return Ok(());
    }
    if has_max && has_tip {
        return Ok(());
    }
    let block = up
        .call("eth_getBlockByNumber", json!(["latest", false]))
        .await
        .map_err(|e| refusal(&e))?;
    let base = match block.get("baseFeePerGas").filter(|v| !v.is_null()) {
        Some(v) => Some(node_quantity("eth_getBlockByNumber", v)?),
        None => None,
    };
    let wants_1559 = ty.is_some() || has_max || has_tip;
    let base = match base {
        Some(b) => b,
        // no base fee and no EIP-1559 field asked for: a legacy transaction
        None if !wants_1559 => {
            let p = ask(up, "eth_gasPrice", json!([])).await?;
            tx.insert("gasPrice".into(), hex(p));
            return Ok(());
        }
        // EIP-1559 asked for on a chain without a base fee: completed as if it were zero
        None => U256::ZERO,
    };
    let max_given = tx.get("maxFeePerGas").and_then(quantity);
    let tip = match tx.get("maxPriorityFeePerGas").and_then(quantity) {
        Some(t) => t,
        None => {
            let t = match up.call("eth_maxPriorityFeePerGas", json!([])).await {
                Ok(v) => node_quantity("eth_maxPriorityFeePerGas", &v)?,
                // an older node without the method
                Err(UpstreamError::Refused { .. }) => U256::from(FALLBACK_PRIORITY_FEE),
                Err(e) => return Err(refusal(&e)),
            };
            // a tip above the cap the client set would make the transaction invalid
            let t = max_given.map_or(t, |m| t.min(m));
            tx.insert("maxPriorityFeePerGas".into(), hex(t));
            t
        }
    };
    if !has_max {
        let max = base.saturating_mul(U256::from(2)).saturating_add(tip);
        tx.insert("maxFeePerGas".into(), hex(max));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("0x10")), Some(U256::from(16)));
        assert_eq!(quantity(&json!("16")), Some(U256::from(16)));
        assert_eq!(quantity(&json!(16)), Some(U256::from(16)));
        for bad in [
            json!("0x"),
            json!(""),
            json!("-1"),
            json!(1.5),
            json!(null),
            json!("0xzz"),
        ] {
            assert_eq!(quantity(&bad), None, "{bad}");
        }
    }

    #[test]
    fn refusals_name_the_upstream() {
        let r = refusal(&UpstreamError::Timeout(std::time::Duration::from_secs(1)));
        assert_eq!(r.code, "upstream_unavailable");
        let r = refusal(&UpstreamError::Refused {
            method: "eth_estimateGas".into(),
            error: super::super::upstream::RpcErrorObject {
                code: -32000,
                message: "insufficient funds for gas * price + value".into(),
                data: None,
            },
        });
        assert_eq!(r.code, "upstream_rejected");
        assert!(r.message.contains("eth_estimateGas"));
        assert!(r.message.contains("insufficient funds"));
    }
}
