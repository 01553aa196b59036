//! The signing API configuration the client kits (clients/rust, clients/ts) are tested
//! against: clients/rust/tests/live.rs and tests/interop.rs (the TypeScript kit).

pub const EVM_KEY: &str = "4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d";
pub const SOLANA_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

/// Grants every sign route (raw digests too, for alloy's `sign_hash`); the policy caps EVM value
/// at 0.01 ether and Solana transfers at 0.01 SOL, so larger ones are refused by a rule.
pub const CONFIG: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message", "evm.typed_data", "evm.transaction", "evm.hash", "solana.transaction", "solana.message"]

[policy]
default = "deny"

[[policy.rule]]
id = "kit-evm"
clients = ["test-client"]
wallets = ["chain:evm"]
[policy.rule.evm]
max_value = { "*" = "0.01 ether" }

[[policy.rule]]
id = "kit-typed-data"
clients = ["test-client"]
[policy.rule.typed_data]
domains = [
  { name = "Ether Mail", primary_types = ["Mail"] },
  { name = "Kit Notes", primary_types = ["KitNote"] },
]

[[policy.rule]]
id = "kit-messages"
clients = ["test-client"]
message = { max_len = 1024 }
hash = { allow = true }

[[policy.rule]]
id = "kit-solana"
clients = ["test-client"]
wallets = ["chain:solana"]
[policy.rule.solana]
programs = ["system"]
max_lamports_per_tx = "0.01 sol"
"#;
