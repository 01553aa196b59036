//! ERC-4337 (`keyward::chains::evm::user_op`): user operation JSON for EntryPoint v0.6
//! and v0.7, and account call data (SimpleAccount, Kernel v3 `execute(mode, calldata)`),
//! from raw bytes and from calls built with `arbitrary`.
//!
//! Invariants: an accepted v0.7 operation has every packed field within 128 bits and a
//! priority fee not above its max fee; its `paymasterAndData` starts with the paymaster;
//! the hash depends on the entry point and the chain. Kernel single and batch call data
//! built here decode to exactly the calls encoded; the batch the policy prices
//! (`as_batch`) unwraps to the same calls; arbitrary call data never panics.

use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall, SolValue};
use arbitrary::Arbitrary;
use keyward::chains::evm::user_op::{
    self, AccountCall, AccountKind, ENTRY_POINT_V06, ENTRY_POINT_V07,
};
use keyward::chains::evm::wrappers;
use serde_json::Value;

sol! {
    struct Exec { address target; uint256 value; bytes callData; }
    function execute(bytes32 mode, bytes executionCalldata);
}

#[derive(Arbitrary, Debug)]
enum Input {
    Json(Vec<u8>),
    CallData {
        kind: u8,
        data: Vec<u8>,
    },
    Kernel {
        single: bool,
        calls: Vec<([u8; 20], u64, Vec<u8>)>,
    },
}

pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Json(bytes) => {
            let Ok(v) = serde_json::from_slice::<Value>(&bytes) else {
                return;
            };
            for version in [6, 7] {
                let Ok(op) = user_op::parse_user_operation(&v, version) else {
                    continue;
                };
                assert!(op.max_priority_fee_per_gas <= op.max_fee_per_gas);
                if version == 7 {
                    for q in [
                        op.call_gas_limit,
                        op.verification_gas_limit,
                        op.max_fee_per_gas,
                        op.max_priority_fee_per_gas,
                        op.paymaster_verification_gas_limit,
                        op.paymaster_post_op_gas_limit,
                    ] {
                        assert!(q <= U256::from(u128::MAX));
                    }
                }
                if let Some(p) = op.paymaster {
                    assert_eq!(&op.paymaster_and_data[..20], p.as_slice());
                } else {
                    assert!(op.paymaster_and_data.is_empty());
                }
                let ep = if version == 6 {
                    ENTRY_POINT_V06
                } else {
                    ENTRY_POINT_V07
                };
                assert_ne!(op.hash(ep, 1), op.hash(ep, 2));
                assert_ne!(op.hash(ep, 1), op.hash(Address::ZERO, 1));
            }
        }
        Input::CallData { kind, data } => {
            let kind = match kind % 3 {
                0 => AccountKind::KernelV3,
                1 => AccountKind::SimpleAccount,
                _ => AccountKind::Safe4337,
            };
            if let Ok(calls) = user_op::account_calls(kind, Address::ZERO, &data) {
                round_trip(&calls);
            }
        }
        Input::Kernel { single, calls } => {
            let calls: Vec<AccountCall> = calls
                .into_iter()
                .take(if single { 1 } else { 16 })
                .map(|(to, value, data)| AccountCall {
                    to: Address::from(to),
                    value: U256::from(value),
                    data,
                    delegate: false,
                })
                .collect();
            let (mode, exec) = if single {
                let Some(c) = calls.first() else { return };
                let mut e = c.to.to_vec();
                e.extend_from_slice(&c.value.to_be_bytes::<32>());
                e.extend_from_slice(&c.data);
                ([0u8; 32], e)
            } else {
                let mut m = [0u8; 32];
                m[0] = 1;
                let execs: Vec<Exec> = calls
                    .iter()
                    .map(|c| Exec {
                        target: c.to,
                        value: c.value,
                        callData: c.data.clone().into(),
                    })
                    .collect();
                (m, execs.abi_encode())
            };
            let data = executeCall {
                mode: mode.into(),
                executionCalldata: exec.into(),
            }
            .abi_encode();
            let got = user_op::account_calls(AccountKind::KernelV3, Address::ZERO, &data)
                .expect("Kernel call data built here decodes");
            assert_eq!(got, calls);
            round_trip(&got);
        }
    }
}

/// What the policy prices is the same calls.
fn round_trip(calls: &[AccountCall]) {
    if calls.is_empty() {
        return;
    }
    let batch = user_op::as_batch(calls);
    let back = wrappers::unwrap(Address::ZERO, &batch)
        .expect("a wrapper")
        .expect("decodes");
    let want: Vec<(Address, U256, Vec<u8>)> = calls
        .iter()
        .map(|c| (c.to, c.value, c.data.clone()))
        .collect();
    assert_eq!(back, want);
}
