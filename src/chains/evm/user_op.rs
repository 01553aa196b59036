//! ERC-4337 user operations: the JSON a bundler takes (EntryPoint v0.6, and v0.7 in its
//! unpacked RPC form), the `userOpHash` exactly as the EntryPoint's `getUserOpHash`
//! computes it, and the calls the account's `callData` makes, per account kind.
//!
//! Sources: eth-infinitism `EntryPoint.sol` / `UserOperationLib.sol` v0.6.0 and v0.7.0
//! (`getUserOpHash` = keccak256(abi.encode(keccak256(pack(userOp)), entryPoint,
//! chainid))); v0.7 `PackedUserOperation` (`accountGasLimits` = verificationGasLimit ‖
//! callGasLimit, `gasFees` = maxPriorityFeePerGas ‖ maxFeePerGas, 16 bytes each;
//! `initCode` = factory ‖ factoryData; `paymasterAndData` = paymaster ‖
//! paymasterVerificationGasLimit ‖ paymasterPostOpGasLimit ‖ paymasterData). Account
//! call data: eth-infinitism `SimpleAccount.sol` (`execute`, `executeBatch`), ZeroDev
//! Kernel v3 `Kernel.sol` `execute(ExecMode, bytes)` with ERC-7579 `ExecutionLib`
//! encodings (single: target ‖ value ‖ callData packed; batch: `abi.encode(Execution[])`;
//! delegatecall: target ‖ callData packed).
//!
//! Must never: compute a hash for an entry point whose version it does not know (the
//! signature would be valid for whatever that contract is), or report call data it could
//! not decode as "no calls".

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::{sol, SolCall, SolValue};
use serde_json::{Map, Value};

use super::tx::parse_quantity;
use super::wrappers::{self, Wrapped};
use super::{parse_address, EvmError};

/// EntryPoint v0.6.0 (the canonical CREATE2 deployment on every chain).
pub const ENTRY_POINT_V06: Address =
    alloy_primitives::address!("5FF137D4b0FDCD49DcA30c7CF57E578a026d2789");
/// EntryPoint v0.7.0.
pub const ENTRY_POINT_V07: Address =
    alloy_primitives::address!("0000000071727De22E5E9d8BAf0edAc6f37da032");

/// Largest `callData`, `initCode`/`factoryData`, `paymasterAndData`/`paymasterData`.
pub const MAX_USER_OP_BYTES: usize = 64 * 1024;

sol! {
    struct Execution { address target; uint256 value; bytes callData; }
    interface IKernel {
        function execute(bytes32 mode, bytes executionCalldata);
    }
}

/// The smart account that validates the signature and runs the call data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// ZeroDev Kernel v3 with its ECDSA validator as root validator.
    KernelV3,
    /// eth-infinitism SimpleAccount (v0.6 / v0.7).
    SimpleAccount,
    /// Safe with the Safe4337Module (refused: it signs an EIP-712 SafeOp).
    Safe4337,
}

impl AccountKind {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::KernelV3 => "kernel-v3",
            AccountKind::SimpleAccount => "simple-account",
            AccountKind::Safe4337 => "safe-4337",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<AccountKind> {
        [
            AccountKind::KernelV3,
            AccountKind::SimpleAccount,
            AccountKind::Safe4337,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One call an account makes for a user operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCall {
    /// Target.
    pub to: Address,
    /// Wei the account sends.
    pub value: U256,
    /// Call data.
    pub data: Vec<u8>,
    /// A DELEGATECALL: the target's code runs as the account.
    pub delegate: bool,
}

/// A parsed user operation, both versions in one shape (v0.6 has no split fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOperation {
    /// 6 or 7.
    pub version: u8,
    pub sender: Address,
    pub nonce: U256,
    /// v0.6 `initCode`, v0.7 `factory ‖ factoryData`.
    pub init_code: Vec<u8>,
    pub call_data: Vec<u8>,
    pub call_gas_limit: U256,
    pub verification_gas_limit: U256,
    pub pre_verification_gas: U256,
    pub max_fee_per_gas: U256,
    pub max_priority_fee_per_gas: U256,
    /// v0.7 paymaster gas limits (zero in v0.6, where they are inside the paymaster's data).
    pub paymaster_verification_gas_limit: U256,
    pub paymaster_post_op_gas_limit: U256,
    /// v0.6 `paymasterAndData`, v0.7 packed as the EntryPoint packs it.
    pub paymaster_and_data: Vec<u8>,
    /// The paymaster (first 20 bytes of `paymasterAndData`), if any.
    pub paymaster: Option<Address>,
}

fn op_err(field: &str, reason: impl Into<String>) -> EvmError {
    EvmError::InvalidUserOperation(format!("`userOperation.{field}`: {}", reason.into()))
}

const V06_FIELDS: &[&str] = &[
    "sender",
    "nonce",
    "initCode",
    "callData",
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "paymasterAndData",
    "signature",
];

const V07_FIELDS: &[&str] = &[
    "sender",
    "nonce",
    "factory",
    "factoryData",
    "callData",
    "callGasLimit",
    "verificationGasLimit",
    "preVerificationGas",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "paymaster",
    "paymasterVerificationGasLimit",
    "paymasterPostOpGasLimit",
    "paymasterData",
    "signature",
];

/// v0.7's `PackedUserOperation`, as the EntryPoint takes it on chain.
const V07_PACKED_FIELDS: &[&str] = &[
    "sender",
    "nonce",
    "initCode",
    "callData",
    "accountGasLimits",
    "preVerificationGas",
    "gasFees",
    "paymasterAndData",
    "signature",
];

struct F<'a>(&'a Map<String, Value>);

impl F<'_> {
    fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null())
    }

    fn qty(&self, k: &str) -> Result<U256, EvmError> {
        let v = self
            .get(k)
            .ok_or_else(|| op_err(k, "required field is missing"))?;
        parse_quantity(&format!("userOperation.{k}"), v)
    }

    fn opt_qty(&self, k: &str) -> Result<U256, EvmError> {
        match self.get(k) {
            None => Ok(U256::ZERO),
            Some(_) => self.qty(k),
        }
    }

    fn u128(&self, k: &str) -> Result<U256, EvmError> {
        let q = self.opt_qty(k)?;
        if q > U256::from(u128::MAX) {
            return Err(op_err(k, "exceeds 128 bits (v0.7 packs it in 16 bytes)"));
        }
        Ok(q)
    }

    fn bytes(&self, k: &str, required: bool) -> Result<Vec<u8>, EvmError> {
        let Some(v) = self.get(k) else {
            return match required {
                true => Err(op_err(k, "required field is missing")),
                false => Ok(Vec::new()),
            };
        };
        let s = v
            .as_str()
            .ok_or_else(|| op_err(k, "expected a 0x hex string"))?;
        if s.len().saturating_sub(2) / 2 > MAX_USER_OP_BYTES {
            return Err(EvmError::DataTooLarge {
                field: format!("userOperation.{k}"),
                len: s.len().saturating_sub(2) / 2,
                max: MAX_USER_OP_BYTES,
            });
        }
        super::decode_0x(s).ok_or_else(|| op_err(k, "expected 0x-prefixed even-length hex"))
    }

    fn address(&self, k: &str) -> Result<Option<Address>, EvmError> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => parse_address(&format!("userOperation.{k}"), s).map(Some),
            Some(_) => Err(op_err(k, "expected an address string")),
        }
    }
}

/// The version an entry point implements: v0.6.0 or v0.7.0 at their canonical
/// addresses; any other address is refused.
pub fn entry_point_version(ep: Address) -> Result<u8, EvmError> {
    match ep {
        ENTRY_POINT_V06 => Ok(6),
        ENTRY_POINT_V07 => Ok(7),
        other => Err(EvmError::InvalidUserOperation(format!(
            "`entryPoint` {other:#x} is neither EntryPoint v0.6.0 ({ENTRY_POINT_V06:#x}) nor v0.7.0 ({ENTRY_POINT_V07:#x}); a userOpHash for another contract is not signed"
        ))),
    }
}

/// Parses `userOperation` for the entry point of `version` (6: `initCode` /
/// `paymasterAndData`; 7: the unpacked RPC form, `factory` / `paymaster…`, or the packed
/// `PackedUserOperation`, `accountGasLimits` / `gasFees`). A field of another form is
/// refused rather than ignored.
pub fn parse_user_operation(v: &Value, version: u8) -> Result<UserOperation, EvmError> {
    let obj = v.as_object().ok_or_else(|| {
        EvmError::InvalidUserOperation("`userOperation` must be an object".into())
    })?;
    // v0.7 in the packed form: told apart by its packed fields
    let packed =
        version == 7 && (obj.contains_key("accountGasLimits") || obj.contains_key("gasFees"));
    let known = match (version, packed) {
        (6, _) => V06_FIELDS,
        (_, true) => V07_PACKED_FIELDS,
        _ => V07_FIELDS,
    };
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(EvmError::UnknownField(format!(
            "userOperation.{} (not a field of an EntryPoint v0.{version} user operation)",
            k.chars().take(64).collect::<String>()
        )));
    }
    let f = F(obj);
    let sender = f
        .address("sender")?
        .ok_or_else(|| op_err("sender", "required field is missing"))?;
    let common = |init_code, paymaster_and_data: Vec<u8>, pvgl, ppogl, paymaster| {
        Ok::<_, EvmError>(UserOperation {
            version,
            sender,
            nonce: f.qty("nonce")?,
            init_code,
            call_data: f.bytes("callData", true)?,
            call_gas_limit: f.qty("callGasLimit")?,
            verification_gas_limit: f.qty("verificationGasLimit")?,
            pre_verification_gas: f.qty("preVerificationGas")?,
            max_fee_per_gas: f.qty("maxFeePerGas")?,
            max_priority_fee_per_gas: f.qty("maxPriorityFeePerGas")?,
            paymaster_verification_gas_limit: pvgl,
            paymaster_post_op_gas_limit: ppogl,
            paymaster_and_data,
            paymaster,
        })
    };
    let op = if packed {
        packed_v07(&f, sender)?
    } else if version == 6 {
        let pnd = f.bytes("paymasterAndData", true)?;
        let paymaster = match pnd.len() {
            0 => None,
            n if n >= 20 => Some(Address::from_slice(&pnd[..20])),
            _ => {
                return Err(op_err(
                    "paymasterAndData",
                    "shorter than a paymaster address",
                ))
            }
        };
        common(
            f.bytes("initCode", true)?,
            pnd,
            U256::ZERO,
            U256::ZERO,
            paymaster,
        )?
    } else {
        let mut init = Vec::new();
        match (f.address("factory")?, f.bytes("factoryData", false)?) {
            (Some(factory), data) => {
                init.extend_from_slice(factory.as_slice());
                init.extend_from_slice(&data);
            }
            (None, data) if data.is_empty() => {}
            (None, _) => return Err(op_err("factoryData", "given without `factory`")),
        }
        let pvgl = f.u128("paymasterVerificationGasLimit")?;
        let ppogl = f.u128("paymasterPostOpGasLimit")?;
        let pdata = f.bytes("paymasterData", false)?;
        let paymaster = f.address("paymaster")?;
        let mut pnd = Vec::new();
        match paymaster {
            Some(p) => {
                pnd.extend_from_slice(p.as_slice());
                pnd.extend_from_slice(&pvgl.to_be_bytes::<32>()[16..]);
                pnd.extend_from_slice(&ppogl.to_be_bytes::<32>()[16..]);
                pnd.extend_from_slice(&pdata);
            }
            None if pdata.is_empty() && pvgl.is_zero() && ppogl.is_zero() => {}
            None => {
                return Err(op_err(
                    "paymaster",
                    "paymaster gas limits or data given without `paymaster`",
                ))
            }
        }
        let op = common(init, pnd, pvgl, ppogl, paymaster)?;
        for (k, q) in [
            ("callGasLimit", op.call_gas_limit),
            ("verificationGasLimit", op.verification_gas_limit),
            ("maxFeePerGas", op.max_fee_per_gas),
            ("maxPriorityFeePerGas", op.max_priority_fee_per_gas),
        ] {
            if q > U256::from(u128::MAX) {
                return Err(op_err(k, "exceeds 128 bits (v0.7 packs it in 16 bytes)"));
            }
        }
        op
    };
    if op.max_priority_fee_per_gas > op.max_fee_per_gas {
        return Err(EvmError::FeeInconsistent(
            "`maxPriorityFeePerGas` exceeds `maxFeePerGas`".into(),
        ));
    }
    Ok(op)
}

/// Two 16-byte halves of a packed bytes32 field.
fn halves(f: &F<'_>, k: &str) -> Result<(U256, U256), EvmError> {
    let b = f.bytes(k, true)?;
    if b.len() != 32 {
        return Err(op_err(k, "expected 32 bytes (two 16-byte halves)"));
    }
    Ok((U256::from_be_slice(&b[..16]), U256::from_be_slice(&b[16..])))
}

/// The packed v0.7 form: `accountGasLimits` = verificationGasLimit ‖ callGasLimit,
/// `gasFees` = maxPriorityFeePerGas ‖ maxFeePerGas, `paymasterAndData` = paymaster ‖
/// verification gas ‖ post-op gas ‖ data (or empty), `initCode` = factory ‖ data (or empty).
fn packed_v07(f: &F<'_>, sender: Address) -> Result<UserOperation, EvmError> {
    let (verification_gas_limit, call_gas_limit) = halves(f, "accountGasLimits")?;
    let (max_priority_fee_per_gas, max_fee_per_gas) = halves(f, "gasFees")?;
    let init_code = f.bytes("initCode", true)?;
    if !init_code.is_empty() && init_code.len() < 20 {
        return Err(op_err("initCode", "shorter than a factory address"));
    }
    let pnd = f.bytes("paymasterAndData", true)?;
    let (paymaster, pvgl, ppogl) = match pnd.len() {
        0 => (None, U256::ZERO, U256::ZERO),
        n if n >= 52 => (
            Some(Address::from_slice(&pnd[..20])),
            U256::from_be_slice(&pnd[20..36]),
            U256::from_be_slice(&pnd[36..52]),
        ),
        _ => {
            return Err(op_err(
                "paymasterAndData",
                "shorter than paymaster ‖ verification gas ‖ post-op gas (52 bytes)",
            ))
        }
    };
    Ok(UserOperation {
        version: 7,
        sender,
        nonce: f.qty("nonce")?,
        init_code,
        call_data: f.bytes("callData", true)?,
        call_gas_limit,
        verification_gas_limit,
        pre_verification_gas: f.qty("preVerificationGas")?,
        max_fee_per_gas,
        max_priority_fee_per_gas,
        paymaster_verification_gas_limit: pvgl,
        paymaster_post_op_gas_limit: ppogl,
        paymaster_and_data: pnd,
        paymaster,
    })
}

fn u128_word(hi: U256, lo: U256) -> B256 {
    let mut w = [0u8; 32];
    w[..16].copy_from_slice(&hi.to_be_bytes::<32>()[16..]);
    w[16..].copy_from_slice(&lo.to_be_bytes::<32>()[16..]);
    B256::from(w)
}

impl UserOperation {
    /// `EntryPoint.getUserOpHash(op)` on `chain_id` at `entry_point`.
    pub fn hash(&self, entry_point: Address, chain_id: u64) -> B256 {
        let inner = if self.version == 6 {
            (
                self.sender,
                self.nonce,
                keccak256(&self.init_code),
                keccak256(&self.call_data),
                self.call_gas_limit,
                self.verification_gas_limit,
                self.pre_verification_gas,
                self.max_fee_per_gas,
                self.max_priority_fee_per_gas,
                keccak256(&self.paymaster_and_data),
            )
                .abi_encode()
        } else {
            (
                self.sender,
                self.nonce,
                keccak256(&self.init_code),
                keccak256(&self.call_data),
                u128_word(self.verification_gas_limit, self.call_gas_limit),
                self.pre_verification_gas,
                u128_word(self.max_priority_fee_per_gas, self.max_fee_per_gas),
                keccak256(&self.paymaster_and_data),
            )
                .abi_encode()
        };
        keccak256((keccak256(inner), entry_point, U256::from(chain_id)).abi_encode())
    }

    /// Every unit of gas the operation may be charged for: the most a bundler can bill.
    pub fn total_gas(&self) -> U256 {
        [
            self.call_gas_limit,
            self.verification_gas_limit,
            self.pre_verification_gas,
            self.paymaster_verification_gas_limit,
            self.paymaster_post_op_gas_limit,
        ]
        .into_iter()
        .fold(U256::ZERO, U256::saturating_add)
    }
}

/// ERC-7579 call types (the first byte of Kernel's `ExecMode`).
const CALLTYPE_SINGLE: u8 = 0x00;
const CALLTYPE_BATCH: u8 = 0x01;
const CALLTYPE_DELEGATECALL: u8 = 0xff;

/// The calls `call_data` makes on an account of `kind`. `Err` when it does not decode
/// as one of that account's execution functions (the caller prices that as unknown
/// call data to the account itself). Empty call data makes no call.
pub fn account_calls(
    kind: AccountKind,
    sender: Address,
    call_data: &[u8],
) -> Result<Vec<AccountCall>, String> {
    if call_data.is_empty() {
        return Ok(Vec::new());
    }
    let plain = |w: Wrapped| {
        w.into_iter()
            .map(|(to, value, data)| AccountCall {
                to,
                value,
                data,
                delegate: false,
            })
            .collect()
    };
    match kind {
        AccountKind::SimpleAccount => {
            let sel: [u8; 4] = call_data
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or("call data shorter than a selector")?;
            // SimpleAccount's own entry points only: execute, and both executeBatch forms
            if !SIMPLE_ACCOUNT_SELECTORS.contains(&sel) {
                return Err(format!(
                    "selector 0x{} is not SimpleAccount's execute or executeBatch",
                    hex::encode(sel)
                ));
            }
            match wrappers::unwrap(sender, call_data) {
                Some(Ok(w)) => Ok(plain(w)),
                Some(Err(e)) => Err(e),
                None => Err("not an execute call".into()),
            }
        }
        AccountKind::KernelV3 => kernel_calls(call_data),
        AccountKind::Safe4337 => Err("Safe4337Module call data is not decoded".into()),
    }
}

/// SimpleAccount `execute(address,uint256,bytes)`, `executeBatch(address[],bytes[])`
/// (v0.6) and `executeBatch(address[],uint256[],bytes[])` (v0.7).
const SIMPLE_ACCOUNT_SELECTORS: [[u8; 4]; 3] = [
    [0xb6, 0x1d, 0x27, 0xf6],
    [0x18, 0xdf, 0xb3, 0xc7],
    [0x47, 0xe1, 0xda, 0x2a],
];

fn kernel_calls(call_data: &[u8]) -> Result<Vec<AccountCall>, String> {
    if call_data.get(..4) != Some(IKernel::executeCall::SELECTOR.as_slice()) {
        return Err("not Kernel's execute(bytes32,bytes)".into());
    }
    let c = IKernel::executeCall::abi_decode(call_data)
        .map_err(|e| format!("Kernel execute(bytes32,bytes) does not decode: {e}"))?;
    let mode = c.mode.0;
    let exec = c.executionCalldata.as_ref();
    // execType (byte 1): 0x00 revert on failure, 0x01 try; either runs the same calls.
    // The mode selector and payload (bytes 6..) select no other behaviour in Kernel v3's
    // default executor; anything but zero is refused rather than guessed at.
    if mode[1] > 0x01 || mode[2..].iter().any(|b| *b != 0) {
        return Err(format!(
            "Kernel execution mode 0x{} is not a plain single, batch or delegatecall mode",
            hex::encode(mode)
        ));
    }
    match mode[0] {
        CALLTYPE_SINGLE => {
            if exec.len() < 52 {
                return Err("single execution shorter than target ‖ value".into());
            }
            Ok(vec![AccountCall {
                to: Address::from_slice(&exec[..20]),
                value: U256::from_be_slice(&exec[20..52]),
                data: exec[52..].to_vec(),
                delegate: false,
            }])
        }
        CALLTYPE_BATCH => {
            let calls = <Vec<Execution>>::abi_decode(exec)
                .map_err(|e| format!("batch execution does not decode: {e}"))?;
            Ok(calls
                .into_iter()
                .map(|e| AccountCall {
                    to: e.target,
                    value: e.value,
                    data: e.callData.to_vec(),
                    delegate: false,
                })
                .collect())
        }
        CALLTYPE_DELEGATECALL => {
            if exec.len() < 20 {
                return Err("delegatecall execution shorter than a target".into());
            }
            Ok(vec![AccountCall {
                to: Address::from_slice(&exec[..20]),
                value: U256::ZERO,
                data: exec[20..].to_vec(),
                delegate: true,
            }])
        }
        other => Err(format!(
            "Kernel call type 0x{other:02x} is not single, batch or delegatecall"
        )),
    }
}

/// The calls as one `executeBatch((address,uint256,bytes)[])` from the account: the
/// shape the transaction rules already price call by call (each inner call as made by
/// the account, wrappers inside it flattened in turn).
pub fn as_batch(calls: &[AccountCall]) -> Vec<u8> {
    wrappers::encode_execute_batch(calls.iter().map(|c| (c.to, c.value, c.data.clone())))
}
