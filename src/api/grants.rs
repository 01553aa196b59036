//! Authorization: which operations a client identity may ask for which wallet.
//!
//! Grants come from the `[[clients]]` entries of the config in force (re-read per
//! request, so a reload takes effect at once). Deny by default: an identity without an
//! entry, a wallet no selector matches, or an operation not listed is refused. `evm.hash`
//! is never implied by anything; only an explicit entry grants it. Must never: grant on a
//! partial match (selectors compare whole strings).

use crate::config::{ClientConfig, Config, Operation};
use crate::store::wallets::Wallet;

/// The grants of one client identity.
#[derive(Debug, Clone, Copy)]
pub struct Grants<'a> {
    entry: Option<&'a ClientConfig>,
}

impl<'a> Grants<'a> {
    /// The grants `config` gives `identity` (none when it has no entry).
    pub fn of(config: &'a Config, identity: &str) -> Grants<'a> {
        Grants {
            entry: config
                .clients
                .iter()
                .find(|c| crate::identity::matches(&c.identity, identity)),
        }
    }

    /// True when the identity has no grant at all.
    pub fn is_empty(&self) -> bool {
        self.entry
            .is_none_or(|e| e.wallets.is_empty() || e.operations.is_empty())
    }

    /// True when `op` is granted for at least one wallet.
    pub fn has_operation(&self, op: Operation) -> bool {
        self.entry
            .is_some_and(|e| !e.wallets.is_empty() && e.operations.contains(&op))
    }

    /// True when some selector matches `wallet`.
    pub fn can_see(&self, wallet: &Wallet) -> bool {
        self.entry.is_some_and(|e| {
            !e.operations.is_empty() && e.wallets.iter().any(|s| matches(s, wallet))
        })
    }

    /// True when `op` is granted for `wallet`.
    pub fn allows(&self, wallet: &Wallet, op: Operation) -> bool {
        self.has_operation(op) && self.can_see(wallet)
    }

    /// The operations granted for `wallet` that fit its chain.
    pub fn operations_for(&self, wallet: &Wallet) -> Vec<Operation> {
        match self.entry {
            Some(e) if self.can_see(wallet) => e
                .operations
                .iter()
                .copied()
                .filter(|op| op.as_str().starts_with(wallet.chain.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Every operation listed, for `whoami`.
    pub fn operations(&self) -> &'a [Operation] {
        self.entry.map(|e| e.operations.as_slice()).unwrap_or(&[])
    }

    /// Every wallet selector listed, for `whoami`.
    pub fn selectors(&self) -> &'a [String] {
        self.entry.map(|e| e.wallets.as_slice()).unwrap_or(&[])
    }
}

/// Whether one selector (`*`, `label:NAME`, `chain:evm|solana`, or a wallet id) matches.
pub fn matches(selector: &str, wallet: &Wallet) -> bool {
    if selector == "*" {
        return true;
    }
    if let Some(label) = selector.strip_prefix("label:") {
        return wallet.label.as_deref() == Some(label);
    }
    if let Some(chain) = selector.strip_prefix("chain:") {
        return wallet.chain.as_str() == chain;
    }
    selector == wallet.id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::wallets::{Chain, Engine, Source, Status};

    fn wallet(id: &str, chain: Chain, label: Option<&str>) -> Wallet {
        Wallet {
            id: id.into(),
            chain,
            address: None,
            label: label.map(Into::into),
            source: Source::Generated,
            engine: Engine::Local,
            status: Status::Active,
            key_version: Some(1),
            wrapped_share: None,
            wrapped_api_key: None,
            environment_id: None,
            user_id: None,
            delegated_at_ms: None,
            revoked_at_ms: None,
            created_at: String::new(),
            updated_at: String::new(),
            public_key: None,
        }
    }

    fn config(clients: &str) -> Config {
        let text = format!(
            "[pkcs11]\nmodule = \"/x.so\"\ntoken_label = \"t\"\npin = {{ env = \"P\" }}\n[store]\npath = \"k.db\"\n{clients}"
        );
        Config::parse(&text, std::path::Path::new("test.toml")).unwrap()
    }

    #[test]
    fn deny_by_default() {
        let c = config("");
        let g = Grants::of(&c, "anyone");
        let w = wallet("w1", Chain::Evm, None);
        assert!(g.is_empty());
        assert!(!g.can_see(&w));
        assert!(!g.allows(&w, Operation::EvmMessage));
    }

    #[test]
    fn selectors_match_whole_values() {
        let c = config(
            "[[clients]]\nidentity = \"svc\"\nwallets = [\"label:hot\", \"chain:solana\", \"w9\"]\noperations = [\"evm.message\", \"solana.message\"]\n",
        );
        let g = Grants::of(&c, "svc");
        assert!(g.allows(
            &wallet("w1", Chain::Evm, Some("hot")),
            Operation::EvmMessage
        ));
        assert!(!g.allows(
            &wallet("w1", Chain::Evm, Some("hotter")),
            Operation::EvmMessage
        ));
        assert!(g.allows(&wallet("w2", Chain::Solana, None), Operation::SolanaMessage));
        assert!(g.allows(&wallet("w9", Chain::Evm, None), Operation::EvmMessage));
        assert!(!g.allows(&wallet("w99", Chain::Evm, None), Operation::EvmMessage));
        assert!(!g.allows(&wallet("w9", Chain::Evm, None), Operation::EvmTransaction));
        assert!(Grants::of(&c, "svc2").is_empty());
        assert_eq!(
            g.operations_for(&wallet("w9", Chain::Evm, None)),
            vec![Operation::EvmMessage]
        );
    }

    #[test]
    fn hash_needs_its_own_entry() {
        let c = config(
            "[[clients]]\nidentity = \"svc\"\nwallets = [\"*\"]\noperations = [\"evm.message\", \"evm.typed_data\", \"evm.transaction\"]\n",
        );
        let g = Grants::of(&c, "svc");
        assert!(!g.allows(&wallet("w", Chain::Evm, None), Operation::EvmHash));
    }
}
