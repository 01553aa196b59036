//! Client kit for keyward, the HSM-backed signing appliance, for Rust services built on
//! alloy or on the Solana crates.
//!
//! - [`KeywardClient`]: the signing API over mutual TLS (rustls, ring), kept-alive
//!   connections, timeouts, `Idempotency-Key`, typed answers, and [`Error`] keeping
//!   keyward's `code`, `rule` and `auditId`.
//! - [`KeywardSigner`]: alloy's `Signer` and `TxSigner<Signature>` (so
//!   `EthereumWallet::from(signer)`); messages, typed data and transactions reach keyward
//!   as themselves, never as a bare hash, so keyward's policy sees what it signs.
//! - [`KeywardSolanaSigner`]: `solana_signer::Signer`; message bytes are signed as a
//!   transaction, which keyward's policy decodes.
//!
//! Every signature is checked here before it is returned: over the digest this client
//! computed itself, by the wallet's key.

mod client;
mod error;
mod evm;
mod solana;
mod transport;
mod typed_data;

pub use client::{
    EvmSignature, EvmTransactionSignature, KeywardClient, RsvSignature, SolanaTransactionSignature,
    WalletInfo,
};
pub use error::{ApiError, Error};
pub use evm::KeywardSigner;
pub use solana::KeywardSolanaSigner;
pub use transport::{Timeouts, Tls};
