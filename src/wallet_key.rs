//! Complete wallet keys: generation, parsing, and the address each derives.
//!
//! Pure (no I/O). A complete key is a 32-byte secp256k1 scalar (EVM) or a 32-byte
//! ed25519 seed (Solana). Addresses are compared in canonical form: EVM lowercase `0x`
//! hex, Solana base58 of the public key.

use k256::ecdsa::SigningKey as EvmKey;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::chains::{evm, solana};
use crate::custody::SecretBytes;
use crate::store::wallets::Chain;

/// A key or address that is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 32 bytes, or not a valid scalar.
    #[error("not a valid {0} private key (expected 32 bytes, hex encoded)")]
    InvalidKey(&'static str),
    /// Not an address of this chain.
    #[error("not a valid {0} address")]
    InvalidAddress(&'static str),
}

fn chain_name(chain: Chain) -> &'static str {
    match chain {
        Chain::Evm => "EVM",
        Chain::Solana => "Solana",
    }
}

/// A fresh key from the OS CSPRNG and its address.
pub fn generate(chain: Chain) -> (SecretBytes, String) {
    loop {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut OsRng, bytes.as_mut());
        // a secp256k1 scalar is out of range with probability ~2^-128; draw again
        if let Ok(address) = address_of_secret(chain, bytes.as_ref()) {
            return (SecretBytes::new(bytes.to_vec()), address);
        }
    }
}

/// The canonical address of the key `secret`.
pub fn address_of_secret(chain: Chain, secret: &[u8]) -> Result<String, KeyError> {
    let bytes: &[u8; 32] = secret
        .try_into()
        .map_err(|_| KeyError::InvalidKey(chain_name(chain)))?;
    match chain {
        Chain::Evm => {
            let key = EvmKey::from_bytes(bytes.into()).map_err(|_| KeyError::InvalidKey("EVM"))?;
            Ok(format!("{:#x}", evm::address_of(key.verifying_key())))
        }
        Chain::Solana => {
            let key = ed25519_dalek::SigningKey::from_bytes(bytes);
            Ok(solana::to_base58(&solana::pubkey_of(&key)))
        }
    }
}

/// Parses a hex-encoded 32-byte key (`0x` optional) without leaving copies behind.
pub fn parse_secret_hex(text: &str) -> Option<SecretBytes> {
    let t = text.trim();
    let t = t.strip_prefix("0x").unwrap_or(t);
    if t.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new(vec![0u8; 32]);
    hex::decode_to_slice(t, &mut out).ok()?;
    Some(SecretBytes::from(out))
}

/// The canonical spelling of an address, or an error if it is not one.
pub fn canonical_address(chain: Chain, address: &str) -> Result<String, KeyError> {
    match chain {
        Chain::Evm => evm::parse_address("address", address)
            .map(|a| format!("{a:#x}"))
            .map_err(|_| KeyError::InvalidAddress("EVM")),
        Chain::Solana => solana::parse_pubkey(address)
            .map(|k| solana::to_base58(&k))
            .map_err(|_| KeyError::InvalidAddress("Solana")),
    }
}

/// The signing key for an EVM wallet.
pub fn evm_key(secret: &SecretBytes) -> Result<EvmKey, KeyError> {
    let bytes: &[u8; 32] = secret
        .expose()
        .try_into()
        .map_err(|_| KeyError::InvalidKey("EVM"))?;
    EvmKey::from_bytes(bytes.into()).map_err(|_| KeyError::InvalidKey("EVM"))
}

/// The signing key for a Solana wallet.
pub fn solana_key(secret: &SecretBytes) -> Result<ed25519_dalek::SigningKey, KeyError> {
    let bytes: &[u8; 32] = secret
        .expose()
        .try_into()
        .map_err(|_| KeyError::InvalidKey("Solana"))?;
    Ok(ed25519_dalek::SigningKey::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_evm_address() {
        // the EIP-155 example key 0x4646..46
        let key = parse_secret_hex(&"46".repeat(32)).unwrap();
        assert_eq!(
            address_of_secret(Chain::Evm, key.expose()).unwrap(),
            "0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f"
        );
    }

    #[test]
    fn known_solana_address() {
        // RFC 8032 test 1 key
        let key =
            parse_secret_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let addr = address_of_secret(Chain::Solana, key.expose()).unwrap();
        assert_eq!(
            solana::parse_pubkey(&addr).unwrap().to_vec(),
            hex::decode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap()
        );
    }

    #[test]
    fn generated_keys_derive_their_address() {
        for chain in [Chain::Evm, Chain::Solana] {
            let (secret, address) = generate(chain);
            assert_eq!(address_of_secret(chain, secret.expose()).unwrap(), address);
            assert_eq!(canonical_address(chain, &address).unwrap(), address);
        }
    }

    #[test]
    fn bad_keys_are_refused() {
        assert!(parse_secret_hex("abcd").is_none());
        assert!(parse_secret_hex(&"zz".repeat(32)).is_none());
        assert!(address_of_secret(Chain::Evm, &[0u8; 32]).is_err());
        assert!(address_of_secret(Chain::Evm, &[1u8; 31]).is_err());
        assert!(canonical_address(Chain::Evm, "0x1234").is_err());
        assert!(canonical_address(Chain::Solana, "not-base58!").is_err());
    }
}
