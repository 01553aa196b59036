//! EVM transaction JSON → RLP (`keyward::chains::evm::parse_transaction`, then
//! `encode_signed_checked`), round-tripped through alloy's own decoder.
//!
//! Invariants: an accepted transaction has a non-zero chain id (a legacy one small
//! enough for its EIP-155 `v`), data within the limit, bounded access lists, a priority
//! fee not above the max fee; every field it carries is the value the JSON spelled
//! (decoded here); signed and encoded, alloy's EIP-2718 decoder reads back exactly the
//! same transaction, the same hash and the signing key's address, and re-encodes the
//! same bytes.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, U256};
use arbitrary::Arbitrary;
use keyward::chains::evm::{
    self, EvmTx, UnsignedTx, MAX_ACCESS_LIST_ENTRIES, MAX_LEGACY_CHAIN_ID,
    MAX_STORAGE_KEYS_PER_ENTRY,
};
use serde_json::{json, Map, Value};

/// The data limits tried: none, tiny, and the API's (`keyward::api::evm::MAX_TX_DATA`).
const DATA_LIMITS: [usize; 3] = [0, 16, 128 * 1024];

#[derive(Arbitrary, Debug)]
enum Input {
    Raw { json: Vec<u8>, limit: u8 },
    Built { tx: GenTx, limit: u8, key: [u8; 32] },
}

#[derive(Arbitrary, Debug)]
enum Magnitude {
    Small(u8),
    U64(u64),
    U128(u128),
    U256([u8; 32]),
}

#[derive(Arbitrary, Debug)]
enum Spelling {
    Hex,
    HexLeadingZeros,
    Decimal,
    Number,
    Other(String),
}

#[derive(Arbitrary, Debug)]
struct GenQty {
    magnitude: Magnitude,
    spelling: Spelling,
}

impl GenQty {
    fn value(&self) -> U256 {
        match self.magnitude {
            Magnitude::Small(n) => U256::from(n),
            Magnitude::U64(n) => U256::from(n),
            Magnitude::U128(n) => U256::from(n),
            Magnitude::U256(b) => U256::from_be_bytes(b),
        }
    }

    /// The JSON, and the number it means when the spelling is a valid quantity.
    fn render(&self) -> (Value, Option<U256>) {
        let v = self.value();
        match &self.spelling {
            Spelling::Hex => (json!(format!("{v:#x}")), Some(v)),
            Spelling::HexLeadingZeros => (json!(format!("0x00{v:x}")), Some(v)),
            Spelling::Decimal => (json!(v.to_string()), Some(v)),
            Spelling::Number => match u64::try_from(v) {
                Ok(n) => (json!(n), Some(v)),
                Err(_) => (json!(v.to_string()), Some(v)),
            },
            Spelling::Other(s) => (json!(s), None),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum GenAddr {
    Lower([u8; 20]),
    Checksummed([u8; 20]),
    Upper([u8; 20]),
    Empty,
    Other(String),
}

impl GenAddr {
    fn render(&self) -> (Value, Option<Option<Address>>) {
        match self {
            GenAddr::Lower(b) => {
                let a = Address::from(*b);
                (json!(format!("{a:#x}")), Some(Some(a)))
            }
            GenAddr::Checksummed(b) => {
                let a = Address::from(*b);
                (json!(a.to_checksum(None)), Some(Some(a)))
            }
            GenAddr::Upper(b) => {
                let a = Address::from(*b);
                (json!(format!("0x{}", hex::encode_upper(b))), Some(Some(a)))
            }
            GenAddr::Empty => (json!(""), Some(None)),
            GenAddr::Other(s) => (json!(s), None),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct GenTx {
    ty: Option<GenQty>,
    chain_id: Option<GenQty>,
    nonce: Option<GenQty>,
    gas: Option<GenQty>,
    gas_limit: Option<GenQty>,
    gas_price: Option<GenQty>,
    max_fee: Option<GenQty>,
    max_priority: Option<GenQty>,
    to: Option<GenAddr>,
    from: Option<GenAddr>,
    value: Option<GenQty>,
    data: Option<Vec<u8>>,
    input: Option<Vec<u8>>,
    access_list: Option<Vec<(GenAddr, Vec<[u8; 32]>)>>,
    null_field: Option<u8>,
    extra: Option<String>,
}

const NAMES: [&str; 14] = [
    "type",
    "chainId",
    "nonce",
    "from",
    "to",
    "value",
    "data",
    "input",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "accessList",
];

/// What the JSON says, for the fields whose spelling was valid.
#[derive(Default)]
struct Intended {
    qty: Vec<(&'static str, U256)>,
    to: Option<Option<Address>>,
    access_list: Option<Vec<(Address, Vec<B256>)>>,
}

impl GenTx {
    fn render(&self) -> (Value, Intended) {
        let mut obj = Map::new();
        let mut intended = Intended::default();
        for (name, q) in [
            ("type", &self.ty),
            ("chainId", &self.chain_id),
            ("nonce", &self.nonce),
            ("gas", &self.gas),
            ("gasLimit", &self.gas_limit),
            ("gasPrice", &self.gas_price),
            ("maxFeePerGas", &self.max_fee),
            ("maxPriorityFeePerGas", &self.max_priority),
            ("value", &self.value),
        ] {
            if let Some(q) = q {
                let (v, n) = q.render();
                obj.insert(name.into(), v);
                if let Some(n) = n {
                    intended.qty.push((name, n));
                }
            }
        }
        if let Some(to) = &self.to {
            let (v, a) = to.render();
            obj.insert("to".into(), v);
            intended.to = a;
        } else {
            intended.to = Some(None);
        }
        if let Some(from) = &self.from {
            obj.insert("from".into(), from.render().0);
        }
        for (name, d) in [("data", &self.data), ("input", &self.input)] {
            if let Some(d) = d {
                obj.insert(name.into(), json!(format!("0x{}", hex::encode(d))));
            }
        }
        if let Some(list) = &self.access_list {
            let mut entries = Vec::new();
            let mut exact = Some(Vec::new());
            for (addr, keys) in list {
                let (a, parsed) = addr.render();
                let keys_hex: Vec<String> = keys
                    .iter()
                    .map(|k| format!("0x{}", hex::encode(k)))
                    .collect();
                entries.push(json!({ "address": a, "storageKeys": keys_hex }));
                match (parsed, exact.as_mut()) {
                    (Some(Some(a)), Some(e)) => {
                        e.push((a, keys.iter().map(|k| B256::from(*k)).collect()))
                    }
                    _ => exact = None,
                }
            }
            obj.insert("accessList".into(), Value::Array(entries));
            intended.access_list = exact;
        }
        if let Some(i) = self.null_field {
            obj.insert(NAMES[usize::from(i) % NAMES.len()].into(), Value::Null);
            intended = Intended::default();
        }
        if let Some(k) = &self.extra {
            obj.insert(k.clone(), json!(1));
        }
        (Value::Object(obj), intended)
    }
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Raw { json, limit } => {
            if let Ok(v) = serde_json::from_slice::<Value>(&json) {
                let limit = DATA_LIMITS[usize::from(limit) % DATA_LIMITS.len()];
                if let Ok(tx) = evm::parse_transaction(&v, limit) {
                    accepted(&tx, limit, &[7u8; 32]);
                }
            }
        }
        Input::Built { tx, limit, key } => {
            let limit = DATA_LIMITS[usize::from(limit) % DATA_LIMITS.len()];
            let (v, intended) = tx.render();
            match evm::parse_transaction(&v, limit) {
                Ok(parsed) => {
                    accepted(&parsed, limit, &key);
                    as_intended(&parsed, &intended);
                }
                Err(e) => {
                    // a stable code for every refusal
                    assert!(!e.code().is_empty());
                }
            }
        }
    }
}

fn as_intended(tx: &UnsignedTx, intended: &Intended) {
    for (name, v) in &intended.qty {
        let got = match *name {
            "type" => U256::from(tx.tx_type()),
            "chainId" => U256::from(tx.chain_id()),
            "nonce" => U256::from(tx.nonce()),
            "gas" | "gasLimit" => U256::from(tx.gas_limit()),
            "gasPrice" | "maxFeePerGas" => U256::from(tx.max_fee_per_gas()),
            "maxPriorityFeePerGas" => U256::from(tx.max_priority_fee_per_gas().unwrap_or(0)),
            "value" => tx.value(),
            _ => unreachable!(),
        };
        assert_eq!(got, *v, "`{name}` read as another value");
    }
    if let Some(to) = intended.to {
        assert_eq!(tx.to(), to, "`to` read as another address");
    }
    if let (Some(list), Some(got)) = (&intended.access_list, tx.access_list()) {
        let got: Vec<(Address, Vec<B256>)> = got
            .iter()
            .map(|i| (i.address, i.storage_keys.clone()))
            .collect();
        assert_eq!(&got, list, "access list read differently");
    }
}

fn accepted(tx: &UnsignedTx, limit: usize, key: &[u8; 32]) {
    assert_ne!(tx.chain_id(), 0, "chain id 0 accepted");
    assert!(tx.data().len() <= limit, "data above the limit accepted");
    if let Some(list) = tx.access_list() {
        assert!(list.0.len() <= MAX_ACCESS_LIST_ENTRIES);
        assert!(list
            .0
            .iter()
            .all(|i| i.storage_keys.len() <= MAX_STORAGE_KEYS_PER_ENTRY));
    }
    if let Some(p) = tx.max_priority_fee_per_gas() {
        assert!(p <= tx.max_fee_per_gas(), "priority fee above max fee");
    }
    if tx.tx_type() == 0 {
        assert!(tx.chain_id() <= MAX_LEGACY_CHAIN_ID);
    }
    // sign with a key of the input, encode, and read back with alloy's decoder
    let sk = k256::ecdsa::SigningKey::from_bytes(key.into())
        .unwrap_or_else(|_| k256::ecdsa::SigningKey::from_bytes(&[7u8; 32].into()).unwrap());
    let signer = evm::address_of(sk.verifying_key());
    let sig = evm::sign_digest(&sk, &tx.signature_hash());
    let signed = tx
        .encode_signed_checked(&sig, signer)
        .expect("its own signature checks");
    let mut buf = signed.raw.as_slice();
    let env = TxEnvelope::decode_2718(&mut buf).expect("alloy decodes what keyward encoded");
    assert!(buf.is_empty(), "bytes left after the transaction");
    assert_eq!(*env.tx_hash(), signed.hash, "hash differs from alloy's");
    assert_eq!(
        env.recover_signer().ok(),
        Some(signer),
        "recovers another signer"
    );
    assert_eq!(
        env.encoded_2718(),
        signed.raw,
        "alloy re-encodes other bytes"
    );
    match (tx.inner(), &env) {
        (EvmTx::Legacy(t), TxEnvelope::Legacy(s)) => assert_eq!(t, s.tx()),
        (EvmTx::Eip2930(t), TxEnvelope::Eip2930(s)) => assert_eq!(t, s.tx()),
        (EvmTx::Eip1559(t), TxEnvelope::Eip1559(s)) => assert_eq!(t, s.tx()),
        (t, e) => panic!("type {} decoded as {:?}", tx.tx_type(), (t, e.tx_type())),
    }
}
