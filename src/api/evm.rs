//! EVM sign requests: JSON bodies in, the digest to sign out, and the answer assembled
//! from the signature. All encoding is `chains::evm`; this file only maps the API shape.

use alloy_primitives::{Address, B256};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{self, refuse};
use super::{parse_body, Prepared};
use alloy_eips::eip7702::Authorization;

use crate::chains::evm::{self, RecoverableSig, UnsignedTx};
use crate::config::Operation;
use crate::http::Refusal;
use crate::policy::Subject;

/// Largest `data`/`input` of a transaction, in bytes (the body limit bounds it too).
pub const MAX_TX_DATA: usize = 128 * 1024;

/// What to build once the digest is signed.
#[derive(Debug)]
pub enum Finish {
    /// A 65-byte `r‖s‖v` answer (message, typed data, hash).
    Rsv,
    /// A signed transaction.
    Tx(Box<UnsignedTx>),
    /// An EIP-7702 authorization (`{r, s, yParity, authorization}`).
    Authorization(Authorization),
    /// An ERC-4337 user operation: the EIP-191 signature over its userOpHash.
    UserOp {
        /// The userOpHash (the message signed).
        hash: B256,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageReq {
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct TypedDataReq {
    typed_data: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransactionReq {
    transaction: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashReq {
    digest: String,
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

/// Parses the body of an EVM sign route into the digest to sign.
pub fn prepare(
    op: Operation,
    body: Value,
    wallet: Address,
) -> Result<Prepared<B256, Finish>, Refusal> {
    let e = |err: evm::EvmError| errors::evm(&err);
    let (digest, detail, finish, subject): (B256, Value, Finish, Subject) = match op {
        Operation::EvmMessage => {
            let req: MessageReq = parse_body(body)?;
            let bytes = evm::parse_message(&req.message).map_err(e)?;
            let digest = evm::personal_message_digest(&bytes);
            (
                digest,
                json!({ "messageLen": bytes.len() }),
                Finish::Rsv,
                Subject::EvmMessage { len: bytes.len() },
            )
        }
        Operation::EvmTypedData => {
            let req: TypedDataReq = parse_body(body)?;
            let info = evm::typed_data(&req.typed_data).map_err(e)?;
            // the domain name is the client's text: bounded before it enters the audit row
            let domain_name = info
                .domain_name
                .as_ref()
                .map(|n| n.chars().take(128).collect::<String>());
            let detail = json!({
                "primaryType": info.primary_type,
                "domainName": domain_name,
                "domainChainId": info.domain_chain_id,
                "verifyingContract": info.domain_verifying_contract.map(|a| format!("{a:#x}")),
            });
            (
                info.digest,
                detail,
                Finish::Rsv,
                Subject::EvmTypedData(Box::new(info)),
            )
        }
        Operation::EvmTransaction => {
            let req: TransactionReq = parse_body(body)?;
            let tx = evm::parse_transaction(&req.transaction, MAX_TX_DATA).map_err(e)?;
            if let Some(from) = tx.from() {
                if from != wallet {
                    return Err(refuse(
                        "from_mismatch",
                        format!("`from` is {from:#x}, but this wallet is {wallet:#x}"),
                    ));
                }
            }
            let mut detail = json!({
                "type": tx.tx_type(),
                "chainId": tx.chain_id(),
                "nonce": tx.nonce(),
                "to": tx.to().map(|a| format!("{a:#x}")),
                "value": tx.value().to_string(),
                "dataLen": tx.data().len(),
            });
            if !tx.authorizations().is_empty() {
                // what each tuple hands over, as the standalone route's audit names it
                detail["authorizations"] = tx
                    .authorizations()
                    .iter()
                    .map(|a| json!({ "delegate": format!("{:#x}", a.address), "authChainId": a.chain_id.to_string(), "nonce": a.nonce }))
                    .collect();
            }
            let subject = Subject::EvmTransaction(Box::new(tx.clone()));
            (
                tx.signature_hash(),
                detail,
                Finish::Tx(Box::new(tx)),
                subject,
            )
        }
        Operation::EvmAuthorization => {
            // the body is the authorization itself: `{chainId, address, nonce}`
            let auth = evm::parse_authorization(&body).map_err(|err| match err {
                evm::EvmError::InvalidTransaction { field, reason } => refuse(
                    "invalid_authorization",
                    format!("invalid authorization field `{field}`: {reason}"),
                ),
                other => errors::evm(&other),
            })?;
            let detail = json!({
                "delegate": format!("{:#x}", auth.address),
                "authChainId": auth.chain_id.to_string(),
                "nonce": auth.nonce,
            });
            (
                auth.signature_hash(),
                detail,
                Finish::Authorization(auth.clone()),
                Subject::EvmAuthorization(auth),
            )
        }
        Operation::EvmUserOperation => {
            let p = super::user_op::prepare(body)?;
            (
                p.digest,
                p.detail,
                Finish::UserOp {
                    hash: p.user_op_hash,
                },
                p.subject,
            )
        }
        Operation::EvmHash => {
            let req: HashReq = parse_body(body)?;
            let digest = evm::parse_digest(&req.digest).map_err(e)?;
            (digest, json!({}), Finish::Rsv, Subject::EvmHash)
        }
        other => {
            return Err(refuse(
                "internal_error",
                format!("{} is not an EVM operation", other.as_str()),
            ))
        }
    };
    Ok(Prepared {
        digest: hex0x(digest.as_slice()),
        detail,
        payload: digest,
        finish,
        subject,
    })
}

/// The answer for a signature over `digest` by `wallet`. `sig` must come from the
/// [`crate::signer::Signer`], which has proven it over `digest` for the wallet before
/// returning it; it is not checked again here (a second recovery cost more than the
/// signing itself).
pub fn answer(
    digest: &B256,
    finish: Finish,
    sig: &RecoverableSig,
    wallet: Address,
) -> Result<Value, Refusal> {
    match finish {
        Finish::Rsv => Ok(json!({
            "signature": hex0x(&sig.to_rsv_65()),
            "digest": hex0x(digest.as_slice()),
            "address": format!("{wallet:#x}"),
        })),
        Finish::UserOp { hash } => {
            if evm::personal_message_digest(hash.as_slice()) != *digest {
                return Err(refuse(
                    "custody_mismatch",
                    "the signature is not over this user operation's hash",
                ));
            }
            Ok(json!({
                "signature": hex0x(&sig.to_rsv_65()),
                "userOpHash": hex0x(hash.as_slice()),
                "digest": hex0x(digest.as_slice()),
                "address": format!("{wallet:#x}"),
            }))
        }
        Finish::Authorization(auth) => {
            if auth.signature_hash() != *digest {
                return Err(refuse(
                    "custody_mismatch",
                    "the signature is not over this authorization's digest",
                ));
            }
            let signed = auth.into_signed(sig.to_alloy());
            let r = hex0x(&sig.r);
            let s = hex0x(&sig.s);
            Ok(json!({
                "r": r,
                "s": s,
                "yParity": u8::from(sig.y_parity),
                "digest": hex0x(digest.as_slice()),
                "authorization": evm::authorization_json(&signed),
                "address": format!("{wallet:#x}"),
            }))
        }
        Finish::Tx(tx) => {
            // the signature was proven over `digest`: it must be this transaction's
            if tx.signature_hash() != *digest {
                return Err(refuse(
                    "custody_mismatch",
                    "the signature is not over this transaction's signing hash",
                ));
            }
            let signed = tx.encode_signed(sig);
            let parity = u64::from(sig.y_parity);
            // in 128 bits: parsing bounds a legacy chain id, but an answer never overflows
            let v = match tx.tx_type() {
                0 => u128::from(tx.chain_id()) * 2 + 35 + u128::from(parity),
                _ => u128::from(parity),
            };
            Ok(json!({
                "rawTransaction": hex0x(&signed.raw),
                "hash": hex0x(signed.hash.as_slice()),
                "digest": hex0x(digest.as_slice()),
                "signature": {
                    "r": hex0x(&sig.r),
                    "s": hex0x(&sig.s),
                    "yParity": format!("{parity:#x}"),
                    "v": format!("{v:#x}"),
                },
                "address": format!("{wallet:#x}"),
            }))
        }
    }
}
