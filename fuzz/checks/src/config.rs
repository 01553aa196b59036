//! Config parsing (`keyward::config::Config::parse`, `validate`, the policy's `compile`
//! and `redacted_toml`), on any text and on edits of the documented example
//! (`config/keyward.example.toml`).
//!
//! Invariants: nothing panics; a secret written inline (where only `{ file }` / `{ env }`
//! references are allowed) is refused, and no error message, nor the redacted rendering,
//! repeats a value written where a secret goes; a config that parses renders (redacted)
//! to valid TOML.

use std::path::Path;

use arbitrary::Arbitrary;
use keyward::config::Config;
use toml::{Table, Value};

const EXAMPLE: &str = include_str!("../../../config/keyward.example.toml");
/// Marks a value put where a secret goes; must never come back in any output.
const MARK: &str = "s3cr3t-MARK";

#[derive(Arbitrary, Debug)]
enum Input {
    Text(String),
    Edited(Vec<Edit>),
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Set(u16, GenValue),
    Remove(u16),
    /// An unknown key in a known table.
    Unknown(u16, String),
    /// An inline secret where a reference goes.
    InlineSecret(u8),
}

#[derive(Arbitrary, Debug)]
enum GenValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Float(f64),
    StrArray(Vec<String>),
    IntArray(Vec<i64>),
    Table(Vec<(String, String)>),
}

/// Generated text, never the mark (only [`Edit::InlineSecret`] writes it).
fn text(s: &str) -> String {
    s.replace(MARK, "")
}

impl GenValue {
    fn toml(&self) -> Value {
        match self {
            GenValue::Str(s) => Value::String(text(s)),
            GenValue::Int(i) => Value::Integer(*i),
            GenValue::Bool(b) => Value::Boolean(*b),
            GenValue::Float(f) => Value::Float(*f),
            GenValue::StrArray(v) => {
                Value::Array(v.iter().map(|s| Value::String(text(s))).collect())
            }
            GenValue::IntArray(v) => Value::Array(v.iter().copied().map(Value::Integer).collect()),
            GenValue::Table(kv) => Value::Table(
                kv.iter()
                    .map(|(k, v)| (text(k), Value::String(text(v))))
                    .collect(),
            ),
        }
    }
}

/// Where secrets are referenced (`[table, key]`).
const SECRET_PLACES: [[&str; 2]; 2] = [["pkcs11", "pin"], ["webhook", "secrets"]];

/// Every key path of `t` (tables descended), in order.
fn paths(t: &Table, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (k, v) in t {
        prefix.push(k.clone());
        out.push(prefix.clone());
        if let Value::Table(inner) = v {
            paths(inner, prefix, out);
        }
        prefix.pop();
    }
}

fn table_at<'a>(t: &'a mut Table, path: &[String]) -> Option<&'a mut Table> {
    let mut cur = t;
    for p in path {
        cur = cur.get_mut(p)?.as_table_mut()?;
    }
    Some(cur)
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Text(text) => run(&text, false, false),
        Input::Edited(edits) => {
            let mut doc: Table = toml::from_str(EXAMPLE).expect("the example is TOML");
            let mut all = Vec::new();
            paths(&doc, &mut Vec::new(), &mut all);
            for e in edits.iter().take(8) {
                match e {
                    Edit::Set(i, v) => {
                        let p = &all[usize::from(*i) % all.len()];
                        if let Some(t) = table_at(&mut doc, &p[..p.len() - 1]) {
                            t.insert(p[p.len() - 1].clone(), v.toml());
                        }
                    }
                    Edit::Remove(i) => {
                        let p = &all[usize::from(*i) % all.len()];
                        if let Some(t) = table_at(&mut doc, &p[..p.len() - 1]) {
                            t.remove(&p[p.len() - 1]);
                        }
                    }
                    Edit::Unknown(i, k) => {
                        let p = &all[usize::from(*i) % all.len()];
                        if let Some(t) = table_at(&mut doc, &p[..p.len() - 1]) {
                            t.insert(text(k), Value::Boolean(true));
                        }
                    }
                    Edit::InlineSecret(which) => {
                        let [table, key] = SECRET_PLACES[usize::from(*which) % 2];
                        let value = if key == "secrets" {
                            Value::Array(vec![Value::String(MARK.into())])
                        } else {
                            Value::String(MARK.into())
                        };
                        if let Some(Value::Table(t)) = doc.get_mut(table) {
                            t.insert(key.into(), value);
                        }
                    }
                }
            }
            // still inline after the later edits?
            let inline = SECRET_PLACES.iter().any(|[table, key]| {
                match doc.get(*table).and_then(|t| t.get(*key)) {
                    Some(Value::String(s)) => s == MARK,
                    Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(MARK)),
                    _ => false,
                }
            });
            let text = toml::to_string(&doc).expect("renders");
            run(&text, inline, true);
        }
    }
}

/// `marked`: the mark appears only where a secret goes (edits of the example; any text
/// could carry it anywhere, and an error may rightly quote a bad non-secret value).
fn run(text: &str, inline_secret: bool, marked: bool) {
    let path = Path::new("keyward.toml");
    let quiet = |what: &str| assert!(!marked || !what.contains(MARK), "repeats a secret: {what}");
    let config = match Config::parse(text, path) {
        Ok(c) => c,
        Err(e) => {
            quiet(&e.to_string());
            return;
        }
    };
    assert!(!inline_secret, "a secret written inline was accepted");
    if let Err(e) = config.validate() {
        quiet(&e.to_string());
    }
    let _ = config.policy.compile();
    let shown = config.redacted_toml();
    quiet(&shown);
    // the rendering is for reading (each secret reference shows `value = "<redacted>"`),
    // not for loading again; it must still be TOML
    assert!(
        shown.parse::<Table>().is_ok(),
        "the redacted rendering is not TOML:\n{shown}"
    );
}
