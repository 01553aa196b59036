//! Call data that wraps other calls: multicalls (Uniswap / OpenZeppelin `multicall`,
//! Multicall3 `aggregate*`) and smart-account `execute` / `executeBatch`. [`flatten`]
//! turns one call into the calls it makes, so that policy prices what a wrapper does
//! rather than the wrapper's name.
//!
//! Must never: recurse or allocate as deep or as wide as the input says. Depth, call
//! count and total inner bytes have explicit limits ([`Limits`]); past any of them, and
//! for a wrapper selector whose arguments do not decode, the answer is an error (policy
//! refuses it as unpriced), never "not a wrapper".
//!
//! Who calls the inner calls differs by wrapper, and is priced conservatively, as if the
//! wallet made each of them: a `multicall` delegate-calls the contract itself (the inner
//! calls run at the same `to` with the wallet as sender); Multicall3's `aggregate*` calls
//! each target as Multicall3 (over-counting is safe); an account's `execute` calls the
//! target as the account, with the account's own `value` (an EIP-7702 wallet calling its
//! own address spends its own funds this way).
//!
//! Sources: OpenZeppelin `Multicall.sol`, Uniswap v3 `PeripheryPayments` /
//! `IMulticallExtended` (deadline and previous-block-hash forms), Multicall3
//! (<https://github.com/mds1/multicall>), eth-infinitism `SimpleAccount` v0.6 / v0.7, and
//! Coinbase Smart Wallet / Kernel `executeBatch((address,uint256,bytes)[])`.

use alloy_primitives::{Address, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    struct Call { address target; bytes callData; }
    struct Call3 { address target; bool allowFailure; bytes callData; }
    struct Execution { address target; uint256 value; bytes data; }
    interface IWrappers {
        function multicall(bytes[] data);
        function multicall(uint256 deadline, bytes[] data);
        function multicall(bytes32 previousBlockhash, bytes[] data);
        function aggregate(Call[] calls);
        function tryAggregate(bool requireSuccess, Call[] calls);
        function blockAndAggregate(Call[] calls);
        function tryBlockAndAggregate(bool requireSuccess, Call[] calls);
        function aggregate3(Call3[] calls);
        function execute(address dest, uint256 value, bytes func);
        function executeBatch(address[] dest, bytes[] func);
        function executeBatch(address[] dest, uint256[] value, bytes[] func);
        function executeBatch(Execution[] calls);
    }
}

/// Every selector [`unwrap`] knows: one that does not decode is an error.
pub const WRAPPER_SELECTORS: [[u8; 4]; 12] = [
    IWrappers::multicall_0Call::SELECTOR,
    IWrappers::multicall_1Call::SELECTOR,
    IWrappers::multicall_2Call::SELECTOR,
    IWrappers::aggregateCall::SELECTOR,
    IWrappers::tryAggregateCall::SELECTOR,
    IWrappers::blockAndAggregateCall::SELECTOR,
    IWrappers::tryBlockAndAggregateCall::SELECTOR,
    IWrappers::aggregate3Call::SELECTOR,
    IWrappers::executeCall::SELECTOR,
    IWrappers::executeBatch_0Call::SELECTOR,
    IWrappers::executeBatch_1Call::SELECTOR,
    IWrappers::executeBatch_2Call::SELECTOR,
];

/// `executeBatch((address,uint256,bytes)[])` of `calls`: how a user operation's decoded
/// calls are handed to the transaction rules (`crate::chains::evm::user_op::as_batch`).
pub fn encode_execute_batch(calls: impl IntoIterator<Item = (Address, U256, Vec<u8>)>) -> Vec<u8> {
    IWrappers::executeBatch_2Call {
        calls: calls
            .into_iter()
            .map(|(target, value, data)| Execution {
                target,
                value,
                data: data.into(),
            })
            .collect(),
    }
    .abi_encode()
}

/// The `(target, value, call data)` of each call a wrapper makes, in order.
pub type Wrapped = Vec<(Address, U256, Vec<u8>)>;

/// One call: its target, the value it sends and its call data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerCall {
    /// Target contract or recipient.
    pub to: Address,
    /// Wei it sends (for a multicall or an `aggregate`, zero: the outer value is counted).
    pub value: U256,
    /// Call data.
    pub data: Vec<u8>,
    /// How many wrappers it sits in (0 for the transaction's own call).
    pub depth: usize,
}

/// Bounds of [`flatten`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wrappers inside wrappers (a wrapper at this depth is refused).
    pub max_depth: usize,
    /// Calls in all, wrappers included.
    pub max_calls: usize,
}

impl Limits {
    /// Depth 4, 64 calls: more than any router or account batch in use. The inner bytes
    /// are bounded by the transaction's data, each byte being copied at most once per
    /// level.
    pub const DEFAULT: Limits = Limits {
        max_depth: 4,
        max_calls: 64,
    };
}

fn decode<C: SolCall>(data: &[u8]) -> Result<C, String> {
    let config = alloy_sol_types::abi::AbiDecoderConfig::new()
        .validate(true)
        .validate_allow_trailing_bytes(true);
    C::abi_decode_with_config(data, config).map_err(|e| {
        format!(
            "call data has the wrapper selector 0x{} ({}) but its arguments do not decode: {e}",
            hex::encode(C::SELECTOR),
            C::SIGNATURE
        )
    })
}

fn same_target(to: Address, calls: Vec<alloy_primitives::Bytes>) -> Vec<(Address, U256, Vec<u8>)> {
    calls
        .into_iter()
        .map(|d| (to, U256::ZERO, d.to_vec()))
        .collect()
}

fn targets(calls: Vec<Call>) -> Vec<(Address, U256, Vec<u8>)> {
    calls
        .into_iter()
        .map(|c| (c.target, U256::ZERO, c.callData.to_vec()))
        .collect()
}

/// The calls a call to `to` with `data` makes, when its selector is a wrapper's:
/// `None` for any other selector, `Err` for a wrapper's selector that does not decode.
pub fn unwrap(to: Address, data: &[u8]) -> Option<Result<Wrapped, String>> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    if !WRAPPER_SELECTORS.contains(&selector) {
        return None;
    }
    Some(unwrap_known(to, selector, data))
}

fn unwrap_known(to: Address, selector: [u8; 4], data: &[u8]) -> Result<Wrapped, String> {
    Ok(match selector {
        IWrappers::multicall_0Call::SELECTOR => {
            same_target(to, decode::<IWrappers::multicall_0Call>(data)?.data)
        }
        IWrappers::multicall_1Call::SELECTOR => {
            same_target(to, decode::<IWrappers::multicall_1Call>(data)?.data)
        }
        IWrappers::multicall_2Call::SELECTOR => {
            same_target(to, decode::<IWrappers::multicall_2Call>(data)?.data)
        }
        IWrappers::aggregateCall::SELECTOR => {
            targets(decode::<IWrappers::aggregateCall>(data)?.calls)
        }
        IWrappers::tryAggregateCall::SELECTOR => {
            targets(decode::<IWrappers::tryAggregateCall>(data)?.calls)
        }
        IWrappers::blockAndAggregateCall::SELECTOR => {
            targets(decode::<IWrappers::blockAndAggregateCall>(data)?.calls)
        }
        IWrappers::tryBlockAndAggregateCall::SELECTOR => {
            targets(decode::<IWrappers::tryBlockAndAggregateCall>(data)?.calls)
        }
        IWrappers::aggregate3Call::SELECTOR => decode::<IWrappers::aggregate3Call>(data)?
            .calls
            .into_iter()
            .map(|c| (c.target, U256::ZERO, c.callData.to_vec()))
            .collect(),
        IWrappers::executeCall::SELECTOR => {
            let c = decode::<IWrappers::executeCall>(data)?;
            vec![(c.dest, c.value, c.func.to_vec())]
        }
        IWrappers::executeBatch_0Call::SELECTOR => {
            let c = decode::<IWrappers::executeBatch_0Call>(data)?;
            if c.dest.len() != c.func.len() {
                return Err(format!(
                    "executeBatch(address[],bytes[]) has {} targets and {} calls",
                    c.dest.len(),
                    c.func.len()
                ));
            }
            c.dest
                .into_iter()
                .zip(c.func)
                .map(|(t, d)| (t, U256::ZERO, d.to_vec()))
                .collect()
        }
        IWrappers::executeBatch_1Call::SELECTOR => {
            let c = decode::<IWrappers::executeBatch_1Call>(data)?;
            // SimpleAccount v0.7 accepts an empty value array as "all zero"
            let values_ok = c.value.is_empty() || c.value.len() == c.dest.len();
            if c.dest.len() != c.func.len() || !values_ok {
                return Err(format!(
                    "executeBatch(address[],uint256[],bytes[]) has {} targets, {} values and {} calls",
                    c.dest.len(),
                    c.value.len(),
                    c.func.len()
                ));
            }
            let values = c.value.into_iter().chain(std::iter::repeat(U256::ZERO));
            c.dest
                .into_iter()
                .zip(values)
                .zip(c.func)
                .map(|((t, v), d)| (t, v, d.to_vec()))
                .collect()
        }
        IWrappers::executeBatch_2Call::SELECTOR => decode::<IWrappers::executeBatch_2Call>(data)?
            .calls
            .into_iter()
            .map(|e| (e.target, e.value, e.data.to_vec()))
            .collect(),
        _ => unreachable!("WRAPPER_SELECTORS lists every arm"),
    })
}

/// The calls that a call to `to` with `value` and `data` makes, wrappers replaced by
/// their inner calls (recursively, within `limits`), in order. A call that is not a
/// wrapper is its own only call.
pub fn flatten(
    to: Address,
    value: U256,
    data: &[u8],
    limits: &Limits,
) -> Result<Vec<InnerCall>, String> {
    let mut out = Vec::new();
    let mut seen = 1usize;
    // depth-first, in call order: a stack of pending calls, last first
    let mut stack = vec![InnerCall {
        to,
        value,
        data: data.to_vec(),
        depth: 0,
    }];
    while let Some(call) = stack.pop() {
        let Some(inner) = unwrap(call.to, &call.data) else {
            out.push(call);
            continue;
        };
        let inner = inner?;
        if call.depth >= limits.max_depth {
            return Err(format!(
                "wrapped calls nest deeper than {} levels",
                limits.max_depth
            ));
        }
        seen = seen.saturating_add(inner.len());
        if seen > limits.max_calls {
            return Err(format!(
                "wrapped calls number more than {}",
                limits.max_calls
            ));
        }
        // the wrapper's own value went to the wrapper: it is counted by the caller
        for (to, value, data) in inner.into_iter().rev() {
            stack.push(InnerCall {
                to,
                value,
                data,
                depth: call.depth + 1,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Call data from alloy `sol!` encoders declared here, plus the published selectors.

    use super::*;
    use alloy_primitives::Bytes;

    sol! {
        struct C { address t; bytes d; }
        struct E { address t; uint256 v; bytes d; }
        interface Enc {
            function multicall(bytes[] c);
            function multicall(uint256, bytes[]);
            function aggregate(C[] c);
            function execute(address, uint256, bytes);
            function executeBatch(address[], bytes[]);
            function executeBatch(address[], uint256[], bytes[]);
            function executeBatch(E[] c);
        }
    }

    const A: Address = Address::repeat_byte(0xaa);
    const B: Address = Address::repeat_byte(0xbb);

    #[test]
    fn published_selectors() {
        let hex = |s: [u8; 4]| hex::encode(s);
        let want = [
            "ac9650d8", "5ae401dc", "1f0464d1", "252dba42", "bce38bd7", "c3077fa9", "399542e9",
            "82ad56cb", "b61d27f6", "18dfb3c7", "47e1da2a", "34fcd5be",
        ];
        for (s, w) in WRAPPER_SELECTORS.iter().zip(want) {
            assert_eq!(hex(*s), w);
        }
    }

    fn leaf(to: Address, value: u64, data: &[u8], depth: usize) -> InnerCall {
        InnerCall {
            to,
            value: U256::from(value),
            data: data.to_vec(),
            depth,
        }
    }

    #[test]
    fn flattens_every_form_in_order() {
        let x = vec![1u8, 2, 3, 4, 5];
        let y = vec![9u8, 9, 9, 9];
        let l = Limits::DEFAULT;
        let m = Enc::multicall_0Call {
            c: vec![Bytes::from(x.clone()), Bytes::from(y.clone())],
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::from(7), &m, &l).unwrap(),
            vec![leaf(A, 0, &x, 1), leaf(A, 0, &y, 1)]
        );
        let m = Enc::multicall_1Call {
            _0: U256::from(1),
            _1: vec![Bytes::from(x.clone())],
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::ZERO, &m, &l).unwrap(),
            vec![leaf(A, 0, &x, 1)]
        );
        let agg = Enc::aggregateCall {
            c: vec![C {
                t: B,
                d: Bytes::from(x.clone()),
            }],
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::ZERO, &agg, &l).unwrap(),
            vec![leaf(B, 0, &x, 1)]
        );
        let exe = Enc::executeCall {
            _0: B,
            _1: U256::from(5),
            _2: Bytes::from(agg.clone()),
        }
        .abi_encode();
        // execute(B, 5, aggregate([B: x])): the inner call of the inner call
        assert_eq!(
            flatten(A, U256::ZERO, &exe, &l).unwrap(),
            vec![leaf(B, 0, &x, 2)]
        );
        let exe = Enc::executeCall {
            _0: B,
            _1: U256::from(5),
            _2: Bytes::new(),
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::ZERO, &exe, &l).unwrap(),
            vec![leaf(B, 5, &[], 1)]
        );
        let batch = Enc::executeBatch_1Call {
            _0: vec![A, B],
            _1: vec![U256::from(1), U256::from(2)],
            _2: vec![Bytes::from(x.clone()), Bytes::from(y.clone())],
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::ZERO, &batch, &l).unwrap(),
            vec![leaf(A, 1, &x, 1), leaf(B, 2, &y, 1)]
        );
        let batch = Enc::executeBatch_2Call {
            c: vec![E {
                t: B,
                v: U256::from(3),
                d: Bytes::from(y.clone()),
            }],
        }
        .abi_encode();
        assert_eq!(
            flatten(A, U256::ZERO, &batch, &l).unwrap(),
            vec![leaf(B, 3, &y, 1)]
        );
        // not a wrapper: itself
        assert_eq!(
            flatten(A, U256::from(2), &x, &l).unwrap(),
            vec![leaf(A, 2, &x, 0)]
        );
    }

    #[test]
    fn malformed_and_oversized_wrappers_are_errors() {
        let l = Limits::DEFAULT;
        let m = Enc::multicall_0Call {
            c: vec![Bytes::from(vec![1u8; 4])],
        }
        .abi_encode();
        assert!(flatten(A, U256::ZERO, &m[..m.len() - 33], &l).is_err());
        let uneven = Enc::executeBatch_0Call {
            _0: vec![A, B],
            _1: vec![Bytes::new()],
        }
        .abi_encode();
        assert!(flatten(A, U256::ZERO, &uneven, &l)
            .unwrap_err()
            .contains("2 targets"));
        // nesting: multicall(multicall(...)) five deep
        let mut d = vec![1u8, 2, 3, 4];
        for _ in 0..5 {
            d = Enc::multicall_0Call {
                c: vec![Bytes::from(d)],
            }
            .abi_encode();
        }
        assert!(flatten(A, U256::ZERO, &d, &l)
            .unwrap_err()
            .contains("deeper"));
        // four deep is within bounds
        let mut d = vec![1u8, 2, 3, 4];
        for _ in 0..4 {
            d = Enc::multicall_0Call {
                c: vec![Bytes::from(d)],
            }
            .abi_encode();
        }
        assert_eq!(flatten(A, U256::ZERO, &d, &l).unwrap().len(), 1);
        // width
        let wide = Enc::multicall_0Call {
            c: vec![Bytes::from(vec![1u8; 4]); 64],
        }
        .abi_encode();
        assert!(flatten(A, U256::ZERO, &wide, &l)
            .unwrap_err()
            .contains("more than 64"));
        let ok = Enc::multicall_0Call {
            c: vec![Bytes::from(vec![1u8; 4]); 63],
        }
        .abi_encode();
        assert_eq!(flatten(A, U256::ZERO, &ok, &l).unwrap().len(), 63);
    }
}
