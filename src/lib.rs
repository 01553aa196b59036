//! keyward: an HSM-backed signing appliance for delegated wallet access.
//!
//! Core modules (`hsm`, `custody`, `store`, `chains`, `policy`, `signer`) sit behind two
//! network faces (`webhook`, `api`) that never import each other. See DESIGN in the
//! repository for the shape and the security invariants.

#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod appliance;
pub mod chains;
pub mod config;
pub mod custody;
pub mod envelope;
pub mod hardening;
pub mod hsm;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod pki;
pub mod policy;
pub mod rewrap;
pub mod server;
pub mod signer;
pub mod simulator;
pub mod store;
pub mod tls;
pub mod wallet_key;
pub mod wallets;
pub mod webhook;
