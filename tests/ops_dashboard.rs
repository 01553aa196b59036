//! The Grafana dashboard (ops/grafana/keyward.json) and the Prometheus rules name only
//! metrics the live binary exports: a daemon is driven through the events that create
//! each labelled series (a signature, a refusal by policy, a delivery, a loaded CRL), its
//! `/metrics` is scraped, and every `keyward_*` name in the queries must be a family of
//! that scrape. A renamed or removed metric fails here, not on an operator's blank panel.

mod common;

use std::collections::BTreeSet;

use common::daemon::{sign, simulate, Daemon};
use common::metrics::{families, scrape};
use common::Env;

/// Messages allowed for the test client, one per hour: the second is refused by the
/// `once` rate limit (a policy refusal by rule).
const CONFIG: &str = r#"
[[clients]]
identity = "test-client"
wallets = ["*"]
operations = ["evm.message"]

[policy]
default = "allow"

[[policy.rate_limit]]
id = "once"
scope = "client"
requests = 1
per = "1h"
"#;

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Every `keyward_*` metric name in `text` (recording rules are `keyward:…` and are not
/// matched).
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("keyward_") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        // a name, not the tail of another identifier
        if !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
            out.insert(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

/// The family a sample name belongs to (`x_bucket`, `x_sum`, `x_count` of histogram `x`).
fn family_of(name: &str, exported: &BTreeSet<String>) -> String {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if exported.contains(base) {
                return base.to_owned();
            }
        }
    }
    name.to_owned()
}

fn dashboard_exprs() -> Vec<String> {
    let d: serde_json::Value =
        serde_json::from_str(&repo_file("ops/grafana/keyward.json")).unwrap();
    let mut exprs = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push(t["expr"].as_str().unwrap().to_owned());
        }
    }
    for v in d["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["definition"].as_str() {
            exprs.push(q.to_owned());
        }
    }
    exprs
}

#[test]
fn every_metric_the_dashboard_and_the_rules_query_is_exported_by_the_live_binary() {
    let env = Env::with_extra(CONFIG);
    std::fs::write(env.path("crl.pem"), env.pki.ca.crl(&[99]).unwrap()).unwrap();
    env.edit_config(
        "client_ca = [\"ca.pem\"]",
        "client_ca = [\"ca.pem\"]\ncrls = [\"crl.pem\"]",
    );
    let d = Daemon::start(&env);
    let wallet = simulate(&env, &d, "delegation", None);
    assert_eq!(sign(&env, &d, &wallet), (200, String::new()));
    assert_eq!(sign(&env, &d, &wallet), (429, "rate_limited".to_owned()));
    let exported = families(&scrape(&d));

    let exprs = dashboard_exprs();
    assert!(exprs.len() >= 20, "{exprs:?}");
    let dashboard: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let rules = metric_names(&repo_file("ops/prometheus/keyward.rules.yml"));
    // the panels the issue asks for are there
    for needed in [
        "keyward_locked",
        "keyward_sign_seconds_bucket",
        "keyward_store_commit_seconds_bucket",
        "keyward_audit_batch_jobs",
        "keyward_token_op_seconds_bucket",
        "keyward_token_sessions",
        "keyward_webhook_events_total",
        "keyward_tls_cert_expiry_seconds",
        "keyward_mpc_rounds_started_total",
        "keyward_sign_refusals_total",
    ] {
        assert!(dashboard.contains(needed), "the dashboard has no {needed}");
    }
    let missing: Vec<_> = dashboard
        .iter()
        .chain(rules.iter())
        .filter(|n| !exported.contains(&family_of(n, &exported)))
        .collect();
    assert!(
        missing.is_empty(),
        "queried but not exported: {missing:?}\nexported: {exported:?}"
    );
}

/// What Grafana needs to lay the dashboard out and query it, checked without a Grafana
/// server (none is packaged for Debian): unique panel ids, every panel on the 24-column
/// grid without overlapping another, every query on the `datasource` variable, and the
/// variables the queries use declared.
#[test]
fn the_dashboard_is_well_formed() {
    let d: serde_json::Value =
        serde_json::from_str(&repo_file("ops/grafana/keyward.json")).unwrap();
    assert_eq!(d["uid"], "keyward");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: Vec<&str> = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(vars, ["datasource", "instance"]);
    let panels = d["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    let mut boxes: Vec<(u64, u64, u64, u64, String)> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap().to_owned();
        assert!(
            ids.insert(p["id"].as_u64().unwrap()),
            "duplicate id: {title}"
        );
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_u64().unwrap(),
            g["y"].as_u64().unwrap(),
            g["w"].as_u64().unwrap(),
            g["h"].as_u64().unwrap(),
        );
        assert!(w > 0 && h > 0 && x + w <= 24, "{title}: {g}");
        for (bx, by, bw, bh, other) in &boxes {
            let apart = x + w <= *bx || bx + bw <= x || y + h <= *by || by + bh <= y;
            assert!(apart, "{title} overlaps {other}");
        }
        boxes.push((x, y, w, h, title.clone()));
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{title}");
        let targets = p["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{title} queries nothing");
        for t in targets {
            assert_eq!(t["datasource"]["uid"], "${datasource}", "{title}");
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.contains(r#"instance=~"$instance""#), "{title}: {expr}");
        }
    }
}

/// The name scan itself: it finds names inside PromQL and skips recording-rule names
/// and longer identifiers.
#[test]
fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (le) (rate(keyward_sign_seconds_bucket{instance=~"$i"}[5m]))) + keyward:x:rate5m + my_keyward_thing"#,
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        vec!["keyward_sign_seconds_bucket".to_owned()]
    );
}
