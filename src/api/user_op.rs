//! `POST /v1/wallets/{id}/evm/user-operation`: an ERC-4337 user operation in, its
//! `userOpHash` signed the way the named account validates it, out. Parsing and hashing
//! are `chains::evm::user_op`; this file maps the API shape and builds what the policy
//! prices: the account's decoded calls as one batch from the account.
//!
//! Signing rule per account kind (docs/smart-accounts.md): `kernel-v3` (ZeroDev
//! `ECDSAValidator.validateUserOp` recovers over the userOpHash, then over its EIP-191
//! hash; the SDK signs the latter) and `simple-account` (eth-infinitism
//! `SimpleAccount._validateSignature`: EIP-191 of the userOpHash) both sign
//! `personal_sign(userOpHash)`. `safe-4337` is refused (`unsupported_account`).

use alloy_primitives::{Address, B256, U256};
use serde::Deserialize;
use serde_json::{json, Value};

use super::errors::{self, refuse};
use super::parse_body;
use crate::chains::evm::user_op::{self, AccountCall, AccountKind};
use crate::chains::evm::{self, UnsignedTx};
use crate::http::Refusal;
use crate::policy::{Subject, UserOpSubject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UserOpReq {
    user_operation: Value,
    entry_point: String,
    chain_id: Value,
    account: String,
}

/// What the route prepares: the EIP-191 digest signed, the userOpHash, audit detail,
/// the policy subject.
pub struct PreparedOp {
    /// `keccak256("\x19Ethereum Signed Message:\n32" ‖ userOpHash)`.
    pub digest: B256,
    /// The userOpHash (the message signed).
    pub user_op_hash: B256,
    /// Audit detail.
    pub detail: Value,
    /// Policy subject.
    pub subject: Subject,
}

fn sat_u64(v: U256) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}

fn sat_u128(v: U256) -> u128 {
    u128::try_from(v).unwrap_or(u128::MAX)
}

/// Parses the body and builds the userOpHash and the priced subject.
pub fn prepare(body: Value) -> Result<PreparedOp, Refusal> {
    let e = |err: evm::EvmError| errors::evm(&err);
    let req: UserOpReq = parse_body(body)?;
    let kind = AccountKind::parse(&req.account).ok_or_else(|| {
        refuse(
            "invalid_user_operation",
            format!(
                "`account` {:?} is not kernel-v3, simple-account or safe-4337",
                req.account.chars().take(64).collect::<String>()
            ),
        )
    })?;
    if kind == AccountKind::Safe4337 {
        return Err(refuse(
            "unsupported_account",
            "safe-4337 is not signed yet: the Safe4337Module validates an EIP-712 SafeOp (with validAfter / validUntil), not the userOpHash, so a userOpHash signature would not validate",
        ));
    }
    let entry_point = evm::parse_address("entryPoint", &req.entry_point).map_err(e)?;
    let version = user_op::entry_point_version(entry_point).map_err(e)?;
    let chain_id = match &req.chain_id {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s
            .strip_prefix("0x")
            .map_or_else(|| s.parse().ok(), |h| u64::from_str_radix(h, 16).ok()),
        _ => None,
    }
    .filter(|c| *c > 0)
    .ok_or_else(|| {
        refuse(
            "invalid_quantity",
            "`chainId` must be a chain id above 0 and below 2^64 (integer, decimal or 0x hex)",
        )
    })?;
    let op = user_op::parse_user_operation(&req.user_operation, version).map_err(e)?;
    let user_op_hash = op.hash(entry_point, chain_id);
    let digest = evm::personal_message_digest(user_op_hash.as_slice());
    let decoded = user_op::account_calls(kind, op.sender, &op.call_data);
    let (calls, undecoded) = match decoded {
        Ok(c) => (c, None),
        Err(why) => (Vec::new(), Some(why)),
    };
    // what the transaction rules price: the decoded calls as one batch from the account,
    // or, when the call data does not decode for this account, the call data itself
    // (unknown call data: refused under a rule that caps anything)
    let data = match &undecoded {
        None if calls.is_empty() => Vec::new(),
        None => user_op::as_batch(&calls),
        Some(_) => op.call_data.clone(),
    };
    let priced = UnsignedTx::priced_call(
        chain_id,
        op.sender,
        data,
        sat_u64(op.total_gas()),
        sat_u128(op.max_fee_per_gas),
        sat_u128(op.max_priority_fee_per_gas),
    );
    let detail = json!({
        "entryPoint": format!("{entry_point:#x}"),
        "entryPointVersion": format!("0.{version}"),
        "chainId": chain_id,
        "account": kind.as_str(),
        "sender": format!("{:#x}", op.sender),
        "nonce": op.nonce.to_string(),
        "userOpHash": format!("{user_op_hash:#x}"),
        "calls": calls.len(),
        "callDataDecoded": undecoded.is_none(),
        "paymaster": op.paymaster.map(|p| format!("{p:#x}")),
        "delegatecalls": calls.iter().filter(|c| c.delegate).map(|c| format!("{:#x}", c.to)).collect::<Vec<_>>(),
    });
    let delegatecalls: Vec<Address> = calls
        .iter()
        .filter(|c: &&AccountCall| c.delegate)
        .map(|c| c.to)
        .collect();
    Ok(PreparedOp {
        digest,
        user_op_hash,
        detail,
        subject: Subject::EvmUserOperation(Box::new(UserOpSubject {
            priced,
            delegatecalls,
            undecoded,
        })),
    })
}
