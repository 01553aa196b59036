//! EIP-712 typed data → digest (`keyward::chains::evm::typed_data`), compared with
//! alloy's own hashing and with an EIP-712 encoder written here for the structures this
//! target builds.
//!
//! Invariants: nothing panics or overflows the stack, whatever the JSON (the bounds of
//! `typed_data_limits` come first); an accepted request is within those bounds; where
//! the bounds pass and both keyward and alloy accept, the digests are equal, and keyward
//! never accepts what alloy refuses; for typed data built here from its types and values,
//! the digest is the one the EIP-712 rules give (computed here without alloy's encoder).

use alloy_dyn_abi::TypedData;
use alloy_primitives::{keccak256, B256, I256, U256};
use arbitrary::{Arbitrary, Unstructured};
use keyward::chains::evm::{self, typed_data_limits};
use serde_json::{json, Map, Value};

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 0 {
        // any JSON text, as an object or as the string form the API also takes
        if let Ok(v) = serde_json::from_slice::<Value>(rest) {
            compare(&v, None);
        }
    } else if let Ok((v, digest)) = build(&mut Unstructured::new(rest)) {
        compare(&v, digest);
    }
}

/// Runs keyward and alloy on `v`; `expected` is the digest the rules give, when known.
fn compare(v: &Value, expected: Option<B256>) {
    let ours = evm::typed_data(v);
    let obj = match v {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(o) => o,
            Err(_) => {
                assert!(ours.is_err());
                return;
            }
        },
        o => o.clone(),
    };
    if typed_data_limits::check(&obj, &typed_data_limits::Limits::DEFAULT).is_err() {
        // beyond the bounds: refused, and alloy (whose recursion the bounds protect) is
        // not run on it
        assert!(ours.is_err(), "accepted typed data beyond the bounds");
        return;
    }
    let theirs = serde_json::from_value::<TypedData>(obj)
        .ok()
        .and_then(|td| td.eip712_signing_hash().ok());
    match (&ours, theirs) {
        (Ok(info), Some(d)) => assert_eq!(info.digest, d, "digest differs from alloy's"),
        (Ok(_), None) => panic!("keyward accepted typed data alloy refuses"),
        (Err(_), _) => {}
    }
    if let (Ok(info), Some(expected)) = (&ours, expected) {
        assert_eq!(
            info.digest, expected,
            "digest differs from the EIP-712 rules"
        );
    }
}

const TYPE_NAMES: [&str; 6] = ["Mail", "Person", "Asset", "Order", "Item", "Permit"];
/// Field names per position that keyward's classifier reads as a party (first two) or
/// as call data (third), next to names it does not.
const SIGNAL_NAMES: [&[&str]; 3] = [
    &["spender", "_operator", "owner"],
    &["to", "Recipient", "amount"],
    &["callData", "data", "note"],
];
/// Asset-moving primary types among `TYPE_NAMES` (by name; `Permit` with fields that are
/// not EIP-2612's is an unpriced permit).
const SPENDING_NAMES: [&str; 2] = ["Order", "Permit"];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Atomic {
    Uint(u8),
    Int(u8),
    Address,
    Bool,
    Bytes,
    FixedBytes(u8),
    String,
}

#[derive(Debug, Clone)]
enum Ty {
    Atomic(Atomic),
    Struct(usize),
    Array(Box<Ty>, Option<usize>),
}

impl Atomic {
    fn name(self) -> String {
        match self {
            Atomic::Uint(b) => format!("uint{}", (usize::from(b) % 32 + 1) * 8),
            Atomic::Int(b) => format!("int{}", (usize::from(b) % 32 + 1) * 8),
            Atomic::Address => "address".into(),
            Atomic::Bool => "bool".into(),
            Atomic::Bytes => "bytes".into(),
            Atomic::FixedBytes(n) => format!("bytes{}", usize::from(n) % 32 + 1),
            Atomic::String => "string".into(),
        }
    }
}

impl Ty {
    fn name(&self) -> String {
        match self {
            Ty::Atomic(a) => a.name(),
            Ty::Struct(i) => TYPE_NAMES[*i].into(),
            Ty::Array(inner, None) => format!("{}[]", inner.name()),
            Ty::Array(inner, Some(n)) => format!("{}[{n}]", inner.name()),
        }
    }

    fn base_struct(&self) -> Option<usize> {
        match self {
            Ty::Struct(i) => Some(*i),
            Ty::Array(inner, _) => inner.base_struct(),
            Ty::Atomic(_) => None,
        }
    }
}

struct Types {
    /// `fields[i]`: the fields of `TYPE_NAMES[i]`, which only reference types after it.
    fields: Vec<Vec<(String, Ty)>>,
}

fn gen_ty(u: &mut Unstructured<'_>, me: usize, count: usize, depth: u8) -> arbitrary::Result<Ty> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=5 => Ty::Atomic(u.arbitrary()?),
        6 | 7 if me + 1 < count => Ty::Struct(u.int_in_range(me + 1..=count - 1)?),
        _ if depth < 2 => {
            let fixed = if u.arbitrary()? {
                Some(u.int_in_range(1..=3usize)?)
            } else {
                None
            };
            Ty::Array(Box::new(gen_ty(u, me, count, depth + 1)?), fixed)
        }
        _ => Ty::Atomic(Atomic::Bool),
    })
}

impl Types {
    /// The structs `primary` reaches, itself included.
    fn reachable(&self, primary: usize) -> Vec<usize> {
        let mut seen = vec![primary];
        let mut at = 0;
        while let Some(&i) = seen.get(at) {
            at += 1;
            for (_, t) in &self.fields[i] {
                if let Some(j) = t.base_struct() {
                    if !seen.contains(&j) {
                        seen.push(j);
                    }
                }
            }
        }
        seen
    }

    /// The classifier's rule, restated: a known name anywhere it reaches, or a struct with
    /// a party next to an integer / flag / bytes field, or a bytes field holding a call.
    fn moves_assets(&self, primary: usize) -> bool {
        fn atomic(t: &Ty) -> Option<Atomic> {
            match t {
                Ty::Atomic(a) => Some(*a),
                Ty::Array(inner, _) => atomic(inner),
                Ty::Struct(_) => None,
            }
        }
        self.reachable(primary).into_iter().any(|i| {
            let f = &self.fields[i];
            let party = f.iter().any(|(n, t)| {
                let n = n.trim_start_matches('_').to_ascii_lowercase();
                matches!(atomic(t), Some(Atomic::Address))
                    && ["spender", "operator", "to", "recipient"].contains(&n.as_str())
            });
            let call = f.iter().any(|(n, t)| {
                let n = n.trim_start_matches('_').to_ascii_lowercase();
                matches!(atomic(t), Some(Atomic::Bytes))
                    && ["calldata", "data"].contains(&n.as_str())
            });
            let amount_or_flag = f.iter().any(|(_, t)| {
                matches!(
                    atomic(t),
                    Some(Atomic::Uint(_) | Atomic::Int(_) | Atomic::Bool | Atomic::Bytes)
                )
            });
            SPENDING_NAMES.contains(&TYPE_NAMES[i]) || call || (party && amount_or_flag)
        })
    }

    fn generate(u: &mut Unstructured<'_>) -> arbitrary::Result<Types> {
        let count = u.int_in_range(1..=4usize)?;
        let mut fields = Vec::new();
        for me in 0..count {
            let n = u.int_in_range(0..=4usize)?;
            let mut f = Vec::new();
            for i in 0..n {
                // sometimes a name that says who receives or what is executed (unique in
                // the struct: one list per position)
                let name = match SIGNAL_NAMES.get(i) {
                    Some(names) if u.ratio(1, 2)? => (*u.choose(names)?).to_owned(),
                    _ => format!("f{i}"),
                };
                f.push((name, gen_ty(u, me, count, 0)?));
            }
            fields.push(f);
        }
        Ok(Types { fields })
    }

    fn struct_string(&self, i: usize) -> String {
        let inner: Vec<String> = self.fields[i]
            .iter()
            .map(|(n, t)| format!("{} {n}", t.name()))
            .collect();
        format!("{}({})", TYPE_NAMES[i], inner.join(","))
    }

    /// `encodeType`: the type, then every type it references, sorted by name.
    fn encode_type(&self, i: usize) -> String {
        let mut deps = std::collections::BTreeSet::new();
        let mut stack = vec![i];
        while let Some(t) = stack.pop() {
            for (_, ty) in &self.fields[t] {
                if let Some(s) = ty.base_struct() {
                    if s != i && deps.insert(TYPE_NAMES[s]) {
                        stack.push(s);
                    }
                }
            }
        }
        let mut out = self.struct_string(i);
        for d in deps {
            let j = TYPE_NAMES.iter().position(|n| *n == d).unwrap();
            out.push_str(&self.struct_string(j));
        }
        out
    }

    /// A value of type `ty`: its JSON and its 32-byte `encodeData` word.
    fn value(&self, u: &mut Unstructured<'_>, ty: &Ty) -> arbitrary::Result<(Value, [u8; 32])> {
        Ok(match ty {
            Ty::Atomic(a) => atomic_value(u, *a)?,
            Ty::Struct(i) => {
                let (v, enc) = self.struct_value(u, *i)?;
                (v, keccak256(enc).0)
            }
            Ty::Array(inner, fixed) => {
                let n = match fixed {
                    Some(n) => *n,
                    None => u.int_in_range(0..=3usize)?,
                };
                let mut items = Vec::new();
                let mut enc = Vec::new();
                for _ in 0..n {
                    let (v, w) = self.value(u, inner)?;
                    items.push(v);
                    enc.extend_from_slice(&w);
                }
                (Value::Array(items), keccak256(enc).0)
            }
        })
    }

    /// A struct value: its JSON and its `encodeData` (type hash ‖ field words).
    fn struct_value(
        &self,
        u: &mut Unstructured<'_>,
        i: usize,
    ) -> arbitrary::Result<(Value, Vec<u8>)> {
        let mut obj = Map::new();
        let mut enc = keccak256(self.encode_type(i)).to_vec();
        for (name, ty) in &self.fields[i] {
            let (v, w) = self.value(u, ty)?;
            obj.insert(name.clone(), v);
            enc.extend_from_slice(&w);
        }
        Ok((Value::Object(obj), enc))
    }
}

fn atomic_value(u: &mut Unstructured<'_>, a: Atomic) -> arbitrary::Result<(Value, [u8; 32])> {
    Ok(match a {
        Atomic::Uint(b) => {
            let bits = (usize::from(b) % 32 + 1) * 8;
            let raw: [u8; 32] = u.arbitrary()?;
            let v = U256::from_be_bytes(raw) >> (256 - bits);
            let text = match u.int_in_range(0..=2u8)? {
                0 => json!(v.to_string()),
                1 => json!(format!("{v:#x}")),
                _ => match u64::try_from(v) {
                    Ok(n) => json!(n),
                    Err(_) => json!(v.to_string()),
                },
            };
            (text, v.to_be_bytes())
        }
        Atomic::Int(b) => {
            let bits = (usize::from(b) % 32 + 1) * 8;
            let raw: [u8; 32] = u.arbitrary()?;
            // an arithmetic shift keeps the value within `bits` bits, sign included
            let v = I256::from_be_bytes(raw).asr(256 - bits);
            let text = match i64::try_from(v) {
                Ok(n) if u.arbitrary()? => json!(n),
                _ => json!(v.to_string()),
            };
            (text, v.to_be_bytes())
        }
        Atomic::Address => {
            let b: [u8; 20] = u.arbitrary()?;
            let mut w = [0u8; 32];
            w[12..].copy_from_slice(&b);
            (json!(format!("0x{}", hex::encode(b))), w)
        }
        Atomic::Bool => {
            let b: bool = u.arbitrary()?;
            let mut w = [0u8; 32];
            w[31] = u8::from(b);
            (json!(b), w)
        }
        Atomic::Bytes => {
            let n = u.int_in_range(0..=70usize)?;
            let b = u.bytes(n)?;
            (json!(format!("0x{}", hex::encode(b))), keccak256(b).0)
        }
        Atomic::FixedBytes(n) => {
            let n = usize::from(n) % 32 + 1;
            let b = u.bytes(n)?;
            let mut w = [0u8; 32];
            w[..n].copy_from_slice(b);
            (json!(format!("0x{}", hex::encode(b))), w)
        }
        Atomic::String => {
            let s: String = u.arbitrary()?;
            let s: String = s.chars().take(40).collect();
            let w = keccak256(s.as_bytes()).0;
            (json!(s), w)
        }
    })
}

/// Typed data built from generated types and values, and the digest it must have.
fn build(u: &mut Unstructured<'_>) -> arbitrary::Result<(Value, Option<B256>)> {
    let types = Types::generate(u)?;
    let primary = u.int_in_range(0..=types.fields.len() - 1)?;
    let (message, enc) = types.struct_value(u, primary)?;

    // the domain: any subset of the five fields, in canonical order
    let present: [bool; 5] = u.arbitrary()?;
    let mut domain = Map::new();
    let mut declared = Vec::new();
    let mut domain_type = String::from("EIP712Domain(");
    let mut domain_words = Vec::new();
    let mut chain_fits = true;
    let kinds = [
        ("name", "string"),
        ("version", "string"),
        ("chainId", "uint256"),
        ("verifyingContract", "address"),
        ("salt", "bytes32"),
    ];
    for (i, (name, ty)) in kinds.iter().enumerate() {
        if !present[i] {
            continue;
        }
        let (v, w) = match i {
            0 | 1 => atomic_value(u, Atomic::String)?,
            2 => {
                let big: bool = u.arbitrary()?;
                let n = if big {
                    U256::from_be_bytes(u.arbitrary::<[u8; 32]>()?)
                } else {
                    U256::from(u.arbitrary::<u64>()?)
                };
                chain_fits = u64::try_from(n).is_ok();
                (json!(n.to_string()), n.to_be_bytes())
            }
            3 => atomic_value(u, Atomic::Address)?,
            _ => atomic_value(u, Atomic::FixedBytes(31))?,
        };
        domain.insert((*name).into(), v);
        if !declared.is_empty() {
            domain_type.push(',');
        }
        domain_type.push_str(&format!("{ty} {name}"));
        declared.push(json!({ "name": name, "type": ty }));
        domain_words.extend_from_slice(&w);
    }
    domain_type.push(')');
    let mut domain_enc = keccak256(domain_type).to_vec();
    domain_enc.extend_from_slice(&domain_words);
    let separator = keccak256(domain_enc);

    let mut types_json = Map::new();
    let declare_domain: u8 = u.arbitrary()?;
    let mut declaration_ok = true;
    match declare_domain % 3 {
        0 => {}
        1 => {
            types_json.insert("EIP712Domain".into(), Value::Array(declared));
        }
        _ => {
            // declared in another order than the canonical one: must be refused
            declaration_ok = declared.len() < 2;
            declared.reverse();
            types_json.insert("EIP712Domain".into(), Value::Array(declared));
        }
    }
    for (i, fields) in types.fields.iter().enumerate() {
        let f: Vec<Value> = fields
            .iter()
            .map(|(n, t)| json!({ "name": n, "type": t.name() }))
            .collect();
        types_json.insert(TYPE_NAMES[i].into(), Value::Array(f));
    }
    let td = json!({
        "types": types_json,
        "primaryType": TYPE_NAMES[primary],
        "domain": domain,
        "message": message,
    });
    let mut pre = vec![0x19, 0x01];
    pre.extend_from_slice(separator.as_slice());
    pre.extend_from_slice(keccak256(&enc).as_slice());
    let digest = keccak256(pre);
    let as_string: bool = u.arbitrary()?;
    let v = if as_string {
        Value::String(td.to_string())
    } else {
        td
    };
    // well-formed typed data within the bounds must be accepted, with this digest (the
    // generator can exceed the bounds: many nested values; then it must be refused)
    let ours = evm::typed_data(&v);
    let bounded = typed_data_limits::check(&td_object(&v), &typed_data_limits::Limits::DEFAULT);
    if bounded.is_err() {
        assert!(ours.is_err(), "accepted typed data beyond the bounds");
    } else if declaration_ok && chain_fits {
        let info = ours.unwrap_or_else(|e| panic!("refused valid typed data: {e}"));
        assert_eq!(info.digest, digest, "digest differs from the EIP-712 rules");
        assert_eq!(info.primary_type, TYPE_NAMES[primary]);
        assert_eq!(
            info.family.moves_assets(),
            types.moves_assets(primary),
            "classification of {v}"
        );
    } else {
        assert!(ours.is_err(), "accepted a domain it must refuse");
    }
    Ok((v, Some(digest).filter(|_| declaration_ok && chain_fits)))
}

/// The object of a request (the API also takes it as a JSON string).
fn td_object(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).expect("rendered here"),
        o => o.clone(),
    }
}
