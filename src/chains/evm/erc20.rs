//! Decoding of the calls that move or approve ERC-20 tokens: the token's own functions
//! (ERC-20 `transfer`/`transferFrom`/`approve`, OpenZeppelin `increaseAllowance` /
//! `decreaseAllowance`, the EIP-2612 `permit` call) and Uniswap Permit2's allowance
//! functions. ABI layouts come from alloy's `sol!`, never from hand-written offsets.
//!
//! Sources: EIP-20 (<https://eips.ethereum.org/EIPS/eip-20>), EIP-2612
//! (<https://eips.ethereum.org/EIPS/eip-2612>), OpenZeppelin ERC20 v4
//! (`increaseAllowance`/`decreaseAllowance`), Permit2 `IAllowanceTransfer` and
//! `ISignatureTransfer` (<https://github.com/Uniswap/permit2/tree/main/src/interfaces>).

use alloy_primitives::{address, Address, U256};
use alloy_sol_types::{sol, SolCall};

sol! {
    interface IERC20 {
        function transfer(address to, uint256 amount) external returns (bool);
        function approve(address spender, uint256 amount) external returns (bool);
        function transferFrom(address from, address to, uint256 amount) external returns (bool);
        function increaseAllowance(address spender, uint256 addedValue) external returns (bool);
        function decreaseAllowance(address spender, uint256 subtractedValue) external returns (bool);
        function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external;
    }
}

sol! {
    /// Permit2 `IAllowanceTransfer.PermitDetails`.
    #[derive(Debug, PartialEq, Eq)]
    struct PermitDetails {
        address token;
        uint160 amount;
        uint48 expiration;
        uint48 nonce;
    }

    /// Permit2 `IAllowanceTransfer.PermitSingle`.
    #[derive(Debug, PartialEq, Eq)]
    struct PermitSingle {
        PermitDetails details;
        address spender;
        uint256 sigDeadline;
    }

    /// Permit2 `IAllowanceTransfer.PermitBatch`.
    #[derive(Debug, PartialEq, Eq)]
    struct PermitBatch {
        PermitDetails[] details;
        address spender;
        uint256 sigDeadline;
    }

    /// Permit2 `IAllowanceTransfer.AllowanceTransferDetails`.
    #[derive(Debug, PartialEq, Eq)]
    struct AllowanceTransferDetails {
        address from;
        address to;
        uint160 amount;
        address token;
    }

    /// Permit2 `IAllowanceTransfer.TokenSpenderPair`.
    #[derive(Debug, PartialEq, Eq)]
    struct TokenSpenderPair {
        address token;
        address spender;
    }

    interface IPermit2 {
        function approve(address token, address spender, uint160 amount, uint48 expiration) external;
        function permit(address owner, PermitSingle permitSingle, bytes signature) external;
        function permit(address owner, PermitBatch permitBatch, bytes signature) external;
        function transferFrom(address from, address to, uint160 amount, address token) external;
        function transferFrom(AllowanceTransferDetails[] transferDetails) external;
        function lockdown(TokenSpenderPair[] approvals) external;
        function invalidateNonces(address token, address spender, uint48 newNonce) external;
        function invalidateUnorderedNonces(uint256 wordPos, uint256 mask) external;
    }
}

/// Uniswap Permit2, the same address on every chain (CREATE2).
pub const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");

/// A call to an ERC-20 token contract that policy prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erc20Call {
    /// `transfer(to, amount)`.
    Transfer { to: Address, amount: U256 },
    /// `approve(spender, amount)`: sets the allowance.
    Approve { spender: Address, amount: U256 },
    /// `transferFrom(from, to, amount)`.
    TransferFrom {
        from: Address,
        to: Address,
        amount: U256,
    },
    /// `increaseAllowance(spender, added)`.
    IncreaseAllowance { spender: Address, added: U256 },
    /// `decreaseAllowance(spender, subtracted)`: only lowers an allowance.
    DecreaseAllowance { spender: Address, subtracted: U256 },
    /// EIP-2612 `permit(owner, spender, value, deadline, v, r, s)` submitted on chain.
    Permit {
        owner: Address,
        spender: Address,
        value: U256,
    },
}

/// A call to Permit2 that policy prices (or knows to be inert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permit2Call {
    /// `approve(token, spender, amount, expiration)`.
    Approve {
        token: Address,
        spender: Address,
        amount: U256,
    },
    /// `permit(owner, PermitSingle | PermitBatch, signature)`: each `(token, amount)`
    /// becomes `spender`'s allowance.
    Permit {
        owner: Address,
        spender: Address,
        details: Vec<(Address, U256)>,
    },
    /// `transferFrom(from, to, amount, token)` or its batch form: `(from, to, amount, token)`.
    TransferFrom(Vec<(Address, Address, U256, Address)>),
    /// `lockdown`, `invalidateNonces`, `invalidateUnorderedNonces`: only revoke.
    Revoke,
}

/// The token-contract selectors [`decode_erc20`] knows: call data that starts with one
/// of these and does not decode must be refused, never read as "not a token call".
pub const ERC20_SELECTORS: [[u8; 4]; 6] = [
    IERC20::transferCall::SELECTOR,
    IERC20::approveCall::SELECTOR,
    IERC20::transferFromCall::SELECTOR,
    IERC20::increaseAllowanceCall::SELECTOR,
    IERC20::decreaseAllowanceCall::SELECTOR,
    IERC20::permitCall::SELECTOR,
];

/// Decodes ERC-20 call data (see [`Erc20Call`]).
///
/// Returns `None` for other selectors *and* for malformed arguments (short data, address
/// words with dirty high bytes). Policy must therefore treat `None` with a selector in
/// [`ERC20_SELECTORS`] as "deny", never as "not a token transfer". Trailing bytes are
/// allowed because contracts ignore them and some wallets append attribution tags.
pub fn decode_erc20(data: &[u8]) -> Option<Erc20Call> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    Some(match selector {
        IERC20::transferCall::SELECTOR => {
            let c = decode_call::<IERC20::transferCall>(data)?;
            Erc20Call::Transfer {
                to: c.to,
                amount: c.amount,
            }
        }
        IERC20::approveCall::SELECTOR => {
            let c = decode_call::<IERC20::approveCall>(data)?;
            Erc20Call::Approve {
                spender: c.spender,
                amount: c.amount,
            }
        }
        IERC20::transferFromCall::SELECTOR => {
            let c = decode_call::<IERC20::transferFromCall>(data)?;
            Erc20Call::TransferFrom {
                from: c.from,
                to: c.to,
                amount: c.amount,
            }
        }
        IERC20::increaseAllowanceCall::SELECTOR => {
            let c = decode_call::<IERC20::increaseAllowanceCall>(data)?;
            Erc20Call::IncreaseAllowance {
                spender: c.spender,
                added: c.addedValue,
            }
        }
        IERC20::decreaseAllowanceCall::SELECTOR => {
            let c = decode_call::<IERC20::decreaseAllowanceCall>(data)?;
            Erc20Call::DecreaseAllowance {
                spender: c.spender,
                subtracted: c.subtractedValue,
            }
        }
        IERC20::permitCall::SELECTOR => {
            let c = decode_call::<IERC20::permitCall>(data)?;
            Erc20Call::Permit {
                owner: c.owner,
                spender: c.spender,
                value: c.value,
            }
        }
        _ => return None,
    })
}

/// Decodes a call to Permit2; `None` for other selectors and malformed arguments.
pub fn decode_permit2(data: &[u8]) -> Option<Permit2Call> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    let details = |d: &PermitDetails| (d.token, U256::from(d.amount));
    Some(match selector {
        IPermit2::approveCall::SELECTOR => {
            let c = decode_call::<IPermit2::approveCall>(data)?;
            Permit2Call::Approve {
                token: c.token,
                spender: c.spender,
                amount: U256::from(c.amount),
            }
        }
        IPermit2::permit_0Call::SELECTOR => {
            let c = decode_call::<IPermit2::permit_0Call>(data)?;
            Permit2Call::Permit {
                owner: c.owner,
                spender: c.permitSingle.spender,
                details: vec![details(&c.permitSingle.details)],
            }
        }
        IPermit2::permit_1Call::SELECTOR => {
            let c = decode_call::<IPermit2::permit_1Call>(data)?;
            Permit2Call::Permit {
                owner: c.owner,
                spender: c.permitBatch.spender,
                details: c.permitBatch.details.iter().map(details).collect(),
            }
        }
        IPermit2::transferFrom_0Call::SELECTOR => {
            let c = decode_call::<IPermit2::transferFrom_0Call>(data)?;
            Permit2Call::TransferFrom(vec![(c.from, c.to, U256::from(c.amount), c.token)])
        }
        IPermit2::transferFrom_1Call::SELECTOR => {
            let c = decode_call::<IPermit2::transferFrom_1Call>(data)?;
            Permit2Call::TransferFrom(
                c.transferDetails
                    .iter()
                    .map(|d| (d.from, d.to, U256::from(d.amount), d.token))
                    .collect(),
            )
        }
        IPermit2::lockdownCall::SELECTOR => {
            decode_call::<IPermit2::lockdownCall>(data)?;
            Permit2Call::Revoke
        }
        IPermit2::invalidateNoncesCall::SELECTOR => {
            decode_call::<IPermit2::invalidateNoncesCall>(data)?;
            Permit2Call::Revoke
        }
        IPermit2::invalidateUnorderedNoncesCall::SELECTOR => {
            decode_call::<IPermit2::invalidateUnorderedNoncesCall>(data)?;
            Permit2Call::Revoke
        }
        _ => return None,
    })
}

fn decode_call<C: SolCall>(data: &[u8]) -> Option<C> {
    let config = alloy_sol_types::abi::AbiDecoderConfig::new()
        .validate(true)
        .validate_allow_trailing_bytes(true);
    C::abi_decode_with_config(data, config).ok()
}

#[cfg(test)]
mod tests {
    //! Call data is built by alloy `sol!` encoders declared here, independently of the
    //! decoder's, plus the published selectors.

    use super::*;
    use alloy_primitives::{aliases::U160, Bytes, B256};

    sol! {
        interface Encoders {
            function transfer(address, uint256);
            function approve(address, uint256);
            function transferFrom(address, address, uint256);
            function increaseAllowance(address, uint256);
            function decreaseAllowance(address, uint256);
            function permit(address, address, uint256, uint256, uint8, bytes32, bytes32);
        }
        interface Permit2Encoders {
            struct Details { address token; uint160 amount; uint48 expiration; uint48 nonce; }
            struct Single { Details details; address spender; uint256 sigDeadline; }
            struct Batch { Details[] details; address spender; uint256 sigDeadline; }
            struct Move { address from; address to; uint160 amount; address token; }
            struct Pair { address token; address spender; }
            function approve(address, address, uint160, uint48);
            function permit(address, Single, bytes);
            function permit(address, Batch, bytes);
            function transferFrom(address, address, uint160, address);
            function transferFrom(Move[] moves);
            function lockdown(Pair[] pairs);
        }
    }

    const A: Address = Address::repeat_byte(0xaa);
    const B: Address = Address::repeat_byte(0xbb);
    const T: Address = Address::repeat_byte(0x70);

    #[test]
    fn published_selectors() {
        // from the EIPs and 4byte.directory
        let hex = |s: [u8; 4]| hex::encode(s);
        assert_eq!(hex(ERC20_SELECTORS[0]), "a9059cbb");
        assert_eq!(hex(ERC20_SELECTORS[1]), "095ea7b3");
        assert_eq!(hex(ERC20_SELECTORS[2]), "23b872dd");
        assert_eq!(hex(ERC20_SELECTORS[3]), "39509351");
        assert_eq!(hex(ERC20_SELECTORS[4]), "a457c2d7");
        assert_eq!(hex(ERC20_SELECTORS[5]), "d505accf");
        assert_eq!(hex(IPermit2::approveCall::SELECTOR), "87517c45");
        assert_eq!(hex(IPermit2::permit_0Call::SELECTOR), "2b67b570");
        assert_eq!(hex(IPermit2::permit_1Call::SELECTOR), "2a2d80d1");
        assert_eq!(hex(IPermit2::transferFrom_0Call::SELECTOR), "36c78516");
        assert_eq!(hex(IPermit2::transferFrom_1Call::SELECTOR), "0d58b1db");
    }

    #[test]
    fn erc20_calls() {
        let n = U256::from(5u64);
        let cases: Vec<(Vec<u8>, Erc20Call)> = vec![
            (
                Encoders::transferCall { _0: B, _1: n }.abi_encode(),
                Erc20Call::Transfer { to: B, amount: n },
            ),
            (
                Encoders::approveCall {
                    _0: B,
                    _1: U256::MAX,
                }
                .abi_encode(),
                Erc20Call::Approve {
                    spender: B,
                    amount: U256::MAX,
                },
            ),
            (
                Encoders::transferFromCall {
                    _0: A,
                    _1: B,
                    _2: n,
                }
                .abi_encode(),
                Erc20Call::TransferFrom {
                    from: A,
                    to: B,
                    amount: n,
                },
            ),
            (
                Encoders::increaseAllowanceCall { _0: B, _1: n }.abi_encode(),
                Erc20Call::IncreaseAllowance {
                    spender: B,
                    added: n,
                },
            ),
            (
                Encoders::decreaseAllowanceCall { _0: B, _1: n }.abi_encode(),
                Erc20Call::DecreaseAllowance {
                    spender: B,
                    subtracted: n,
                },
            ),
            (
                Encoders::permitCall {
                    _0: A,
                    _1: B,
                    _2: n,
                    _3: U256::from(99),
                    _4: 27,
                    _5: B256::repeat_byte(1),
                    _6: B256::repeat_byte(2),
                }
                .abi_encode(),
                Erc20Call::Permit {
                    owner: A,
                    spender: B,
                    value: n,
                },
            ),
        ];
        for (data, want) in cases {
            assert_eq!(decode_erc20(&data), Some(want));
            let mut tagged = data.clone();
            tagged.extend_from_slice(b"tag");
            assert_eq!(decode_erc20(&tagged), Some(want), "trailing bytes");
            assert_eq!(
                decode_erc20(&data[..data.len() - 1]),
                None,
                "{want:?} short"
            );
            let mut dirty = data.clone();
            dirty[4] = 0xff; // high byte of the first address word
            assert_eq!(decode_erc20(&dirty), None, "{want:?} dirty");
        }
        assert_eq!(decode_erc20(&[0xde, 0xad, 0xbe, 0xef]), None);
        assert_eq!(decode_erc20(&[]), None);
    }

    #[test]
    fn permit2_calls() {
        let d = |amount: u64| Permit2Encoders::Details {
            token: T,
            amount: U160::from(amount),
            expiration: alloy_primitives::aliases::U48::from(1u64),
            nonce: alloy_primitives::aliases::U48::from(0u64),
        };
        let data = Permit2Encoders::approveCall {
            _0: T,
            _1: B,
            _2: U160::MAX,
            _3: alloy_primitives::aliases::U48::from(7u64),
        }
        .abi_encode();
        assert_eq!(
            decode_permit2(&data),
            Some(Permit2Call::Approve {
                token: T,
                spender: B,
                amount: U256::from(U160::MAX)
            })
        );
        let data = Permit2Encoders::permit_0Call {
            _0: A,
            _1: Permit2Encoders::Single {
                details: d(10),
                spender: B,
                sigDeadline: U256::from(1),
            },
            _2: Bytes::from(vec![1; 65]),
        }
        .abi_encode();
        assert_eq!(
            decode_permit2(&data),
            Some(Permit2Call::Permit {
                owner: A,
                spender: B,
                details: vec![(T, U256::from(10))]
            })
        );
        let data = Permit2Encoders::permit_1Call {
            _0: A,
            _1: Permit2Encoders::Batch {
                details: vec![d(1), d(2)],
                spender: B,
                sigDeadline: U256::from(1),
            },
            _2: Bytes::from(vec![1; 65]),
        }
        .abi_encode();
        assert_eq!(
            decode_permit2(&data),
            Some(Permit2Call::Permit {
                owner: A,
                spender: B,
                details: vec![(T, U256::from(1)), (T, U256::from(2))]
            })
        );
        let data = Permit2Encoders::transferFrom_0Call {
            _0: A,
            _1: B,
            _2: U160::from(3u64),
            _3: T,
        }
        .abi_encode();
        assert_eq!(
            decode_permit2(&data),
            Some(Permit2Call::TransferFrom(vec![(A, B, U256::from(3), T)]))
        );
        let data = Permit2Encoders::transferFrom_1Call {
            moves: vec![Permit2Encoders::Move {
                from: A,
                to: B,
                amount: U160::from(4u64),
                token: T,
            }],
        }
        .abi_encode();
        assert_eq!(
            decode_permit2(&data),
            Some(Permit2Call::TransferFrom(vec![(A, B, U256::from(4), T)]))
        );
        let data = Permit2Encoders::lockdownCall {
            pairs: vec![Permit2Encoders::Pair {
                token: T,
                spender: B,
            }],
        }
        .abi_encode();
        assert_eq!(decode_permit2(&data), Some(Permit2Call::Revoke));
        assert_eq!(decode_permit2(&data[..data.len() - 1]), None);
        // a router's multicall is not a Permit2 call
        assert_eq!(decode_permit2(&[0xac, 0x96, 0x50, 0xd8, 0, 0]), None);
    }
}
