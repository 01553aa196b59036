//! No fact lost when the README moved into `docs/`: every error code the OpenAPI document
//! names and every key of `config/keyward.example.toml` appears in `docs/` or the README.
//!
//! A config key counts as documented when its dotted path appears, or a tail of it of two
//! parts or more that no other key of the example shares (policy rules are documented
//! relative to the rule: `evm.chain_ids`; `token.window` would not do, it is both an EVM
//! and a Solana key), or its array-of-tables form (`[[clients]].operations`). Map keys that are data (chain ids
//! in `max_value`) end the path; `file`/`env` of a secret reference stand for the key that
//! holds the reference.

use std::collections::BTreeSet;

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// README.md and every page under docs/, as one text.
fn documentation() -> String {
    let mut text = std::fs::read_to_string(repo("README.md")).unwrap();
    let mut pages: Vec<_> = std::fs::read_dir(repo("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 10, "{pages:?}");
    for p in pages {
        text.push_str(&std::fs::read_to_string(p).unwrap());
    }
    text
}

/// Every string of an `enum` under a `code` property, anywhere in the document.
fn openapi_codes(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(values) = m
                .get("code")
                .and_then(|c| c.get("enum"))
                .and_then(|e| e.as_array())
            {
                out.extend(values.iter().filter_map(|s| s.as_str()).map(str::to_owned));
            }
            m.values().for_each(|x| openapi_codes(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| openapi_codes(x, out)),
        _ => {}
    }
}

fn config_keys(v: &toml::Value, path: &mut Vec<String>, out: &mut BTreeSet<Vec<String>>) {
    match v {
        toml::Value::Table(t) => {
            for (k, x) in t {
                path.push(k.clone());
                config_keys(x, path, out);
                path.pop();
            }
        }
        toml::Value::Array(a) if !a.is_empty() && a.iter().all(|x| x.is_table()) => {
            a.iter().for_each(|x| config_keys(x, path, out));
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The path as documentation names it (see the module doc).
fn documented_path(path: &[String]) -> Vec<String> {
    let ident = |s: &str| {
        s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut p: Vec<String> = path.iter().take_while(|s| ident(s)).cloned().collect();
    if p.len() > 1 && matches!(p.last().map(String::as_str), Some("file" | "env")) {
        p.pop();
    }
    p
}

fn is_documented(path: &[String], docs: &str, all: &BTreeSet<Vec<String>>) -> bool {
    if path.len() == 1 {
        return docs.contains(&format!("`{}`", path[0]))
            || docs.contains(&format!("[{}]", path[0]));
    }
    let unique = |tail: &[String]| {
        all.iter()
            .filter(|q| q.len() >= tail.len() && q[q.len() - tail.len()..] == *tail)
            .count()
            == 1
    };
    (0..path.len() - 1).any(|i| unique(&path[i..]) && docs.contains(&path[i..].join(".")))
        || (1..path.len()).any(|i| {
            docs.contains(&format!(
                "[[{}]].{}",
                path[..i].join("."),
                path[i..].join(".")
            ))
        })
}

#[test]
fn every_openapi_error_code_is_documented() {
    let mut codes = BTreeSet::new();
    openapi_codes(&keyward::api::openapi::document(), &mut codes);
    // the walk found the error table, not a fragment of it
    let table: BTreeSet<String> = keyward::api::errors::CODES
        .iter()
        .map(|(_, c, _)| (*c).to_owned())
        .collect();
    assert!(table.is_subset(&codes), "{:?}", table.difference(&codes));
    let docs = documentation();
    let missing: Vec<_> = codes
        .iter()
        .filter(|c| !docs.contains(&format!("`{c}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "error codes in the OpenAPI document but not in docs/ or README: {missing:?}"
    );
}

#[test]
fn every_example_config_key_is_documented() {
    let example: toml::Value =
        toml::from_str(&std::fs::read_to_string(repo("config/keyward.example.toml")).unwrap())
            .unwrap();
    let mut keys = BTreeSet::new();
    config_keys(&example, &mut Vec::new(), &mut keys);
    assert!(keys.len() >= 60, "{}", keys.len());
    let docs = documentation();
    let paths: BTreeSet<Vec<String>> = keys.iter().map(|k| documented_path(k)).collect();
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !is_documented(p, &docs, &paths))
        .map(|p| p.join("."))
        .collect();
    assert!(
        missing.is_empty(),
        "config keys in the example but not in docs/ or README: {missing:?}"
    );
}

/// The rule itself: a key documented only by its last part does not count.
#[test]
fn a_bare_leaf_does_not_document_a_nested_key() {
    let p = |s: &str| s.split('.').map(str::to_owned).collect::<Vec<_>>();
    let all: BTreeSet<Vec<String>> = [
        "policy.rule.evm.spend.window",
        "policy.rule.evm.token.window",
        "policy.rule.solana.token.window",
        "policy.rule.evm.chain_ids",
        "clients.operations",
    ]
    .into_iter()
    .map(p)
    .collect();
    let docs =
        "| `window` | … | `evm.chain_ids` | `[[clients]].operations` | `pin` | solana.token.window";
    assert!(!is_documented(
        &p("policy.rule.evm.spend.window"),
        docs,
        &all
    ));
    // a tail two keys share documents neither
    assert!(!is_documented(
        &p("policy.rule.evm.token.window"),
        docs,
        &all
    ));
    assert!(is_documented(
        &p("policy.rule.solana.token.window"),
        docs,
        &all
    ));
    assert!(is_documented(&p("policy.rule.evm.chain_ids"), docs, &all));
    assert!(is_documented(&p("clients.operations"), docs, &all));
    assert_eq!(documented_path(&p("pkcs11.pin.file")), p("pkcs11.pin"));
    assert_eq!(
        documented_path(&p("policy.rule.evm.max_value.1")),
        p("policy.rule.evm.max_value")
    );
}
