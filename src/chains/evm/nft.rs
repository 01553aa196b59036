//! Decoding of the ERC-721 / ERC-1155 calls that move or hand over non-fungible (and
//! multi-) tokens and that do not share a selector with ERC-20: operator approvals and
//! the safe transfers. ERC-721 `approve(address,uint256)` and `transferFrom(address,
//! address,uint256)` have ERC-20's selectors and layouts; they are decoded as ERC-20 calls
//! and policy decides them by whether the contract has a token cap (see
//! `policy::evm`).
//!
//! Sources: EIP-721 (<https://eips.ethereum.org/EIPS/eip-721>), EIP-1155
//! (<https://eips.ethereum.org/EIPS/eip-1155>).

use alloy_primitives::Address;
use alloy_sol_types::{sol, SolCall};

sol! {
    interface INft {
        function setApprovalForAll(address operator, bool approved);
        function safeTransferFrom(address from, address to, uint256 tokenId);
        function safeTransferFrom(address from, address to, uint256 tokenId, bytes data);
        function safeTransferFrom(address from, address to, uint256 id, uint256 amount, bytes data);
        function safeBatchTransferFrom(address from, address to, uint256[] ids, uint256[] amounts, bytes data);
    }
}

/// Every selector [`decode_nft`] knows: one that does not decode must be refused.
pub const NFT_SELECTORS: [[u8; 4]; 5] = [
    INft::setApprovalForAllCall::SELECTOR,
    INft::safeTransferFrom_0Call::SELECTOR,
    INft::safeTransferFrom_1Call::SELECTOR,
    INft::safeTransferFrom_2Call::SELECTOR,
    INft::safeBatchTransferFromCall::SELECTOR,
];

/// An NFT call policy decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NftCall {
    /// `setApprovalForAll(operator, approved)`: with `approved`, `operator` may move every
    /// token of the collection the wallet holds, now and later (an unlimited allowance).
    SetApprovalForAll { operator: Address, approved: bool },
    /// An ERC-721 or ERC-1155 safe transfer (single or batch) to `to`.
    Transfer { from: Address, to: Address },
}

fn decode_call<C: SolCall>(data: &[u8]) -> Option<C> {
    let config = alloy_sol_types::abi::AbiDecoderConfig::new()
        .validate(true)
        .validate_allow_trailing_bytes(true);
    C::abi_decode_with_config(data, config).ok()
}

/// Decodes NFT call data; `None` for other selectors and for malformed arguments (policy
/// treats `None` with a selector in [`NFT_SELECTORS`] as "refuse").
pub fn decode_nft(data: &[u8]) -> Option<NftCall> {
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    Some(match selector {
        INft::setApprovalForAllCall::SELECTOR => {
            let c = decode_call::<INft::setApprovalForAllCall>(data)?;
            NftCall::SetApprovalForAll {
                operator: c.operator,
                approved: c.approved,
            }
        }
        INft::safeTransferFrom_0Call::SELECTOR => {
            let c = decode_call::<INft::safeTransferFrom_0Call>(data)?;
            NftCall::Transfer {
                from: c.from,
                to: c.to,
            }
        }
        INft::safeTransferFrom_1Call::SELECTOR => {
            let c = decode_call::<INft::safeTransferFrom_1Call>(data)?;
            NftCall::Transfer {
                from: c.from,
                to: c.to,
            }
        }
        INft::safeTransferFrom_2Call::SELECTOR => {
            let c = decode_call::<INft::safeTransferFrom_2Call>(data)?;
            NftCall::Transfer {
                from: c.from,
                to: c.to,
            }
        }
        INft::safeBatchTransferFromCall::SELECTOR => {
            let c = decode_call::<INft::safeBatchTransferFromCall>(data)?;
            NftCall::Transfer {
                from: c.from,
                to: c.to,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, U256};

    sol! {
        interface Enc {
            function setApprovalForAll(address, bool);
            function safeTransferFrom(address, address, uint256);
            function safeTransferFrom(address, address, uint256, bytes);
            function safeTransferFrom(address, address, uint256, uint256, bytes);
            function safeBatchTransferFrom(address, address, uint256[], uint256[], bytes);
        }
    }

    const A: Address = Address::repeat_byte(0xaa);
    const B: Address = Address::repeat_byte(0xbb);

    #[test]
    fn published_selectors_and_decoding() {
        let want = ["a22cb465", "42842e0e", "b88d4fde", "f242432a", "2eb2c2d6"];
        for (s, w) in NFT_SELECTORS.iter().zip(want) {
            assert_eq!(hex::encode(s), w);
        }
        let t = NftCall::Transfer { from: A, to: B };
        let cases = [
            (
                Enc::setApprovalForAllCall { _0: B, _1: true }.abi_encode(),
                NftCall::SetApprovalForAll {
                    operator: B,
                    approved: true,
                },
            ),
            (
                Enc::safeTransferFrom_0Call {
                    _0: A,
                    _1: B,
                    _2: U256::from(1),
                }
                .abi_encode(),
                t,
            ),
            (
                Enc::safeTransferFrom_1Call {
                    _0: A,
                    _1: B,
                    _2: U256::from(1),
                    _3: Bytes::new(),
                }
                .abi_encode(),
                t,
            ),
            (
                Enc::safeTransferFrom_2Call {
                    _0: A,
                    _1: B,
                    _2: U256::from(1),
                    _3: U256::from(2),
                    _4: Bytes::new(),
                }
                .abi_encode(),
                t,
            ),
            (
                Enc::safeBatchTransferFromCall {
                    _0: A,
                    _1: B,
                    _2: vec![U256::from(1)],
                    _3: vec![U256::from(2)],
                    _4: Bytes::new(),
                }
                .abi_encode(),
                t,
            ),
        ];
        for (data, want) in cases {
            assert_eq!(decode_nft(&data), Some(want));
            assert_eq!(decode_nft(&data[..data.len() - 1]), None, "{want:?} short");
            let mut dirty = data.clone();
            dirty[4] = 0xff;
            assert_eq!(decode_nft(&dirty), None, "{want:?} dirty");
        }
        // a bool word other than 0 / 1 does not decode
        let mut bad = Enc::setApprovalForAllCall { _0: B, _1: true }.abi_encode();
        bad[4 + 63] = 2;
        assert_eq!(decode_nft(&bad), None);
        assert_eq!(decode_nft(&[0xa9, 0x05, 0x9c, 0xbb]), None);
    }
}
