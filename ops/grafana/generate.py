#!/usr/bin/env python3
"""Writes ops/grafana/keyward.json, keyward's Grafana dashboard (schemaVersion 39,
provisionable as a file). Edit the panel list here and run it again; the dashboard's
metric names are checked against a live scrape by tests/ops_dashboard.rs, and
`generate.py --check` (scripts/test) that the committed file is this script's output."""
import json
import os
import sys

SEL = '{instance=~"$instance"}'


def sel(extra=""):
    inner = 'instance=~"$instance"' + ("," + extra if extra else "")
    return "{" + inner + "}"


panels = []


def panel(title, kind, targets, w=8, h=7, unit=None, desc=None):
    p = {
        "id": len(panels) + 1,
        "title": title,
        "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    if unit:
        p["fieldConfig"]["defaults"]["unit"] = unit
    if desc:
        p["description"] = desc
    panels.append((p, w, h))


def row(title):
    panels.append(({"id": len(panels) + 1, "type": "row", "title": title,
                    "collapsed": False, "panels": []}, 24, 1))


row("State")
panel("Locked", "stat", [(f"keyward_locked{SEL}", "{{instance}}")], w=4, h=4,
      desc="1: every signing request is refused (423 appliance_locked); runbook KeywardLocked")
panel("Token up", "stat", [(f"keyward_token_up{SEL}", "{{instance}}")], w=4, h=4)
panel("Store up", "stat", [(f"keyward_store_up{SEL}", "{{instance}}")], w=4, h=4)
panel("Restarts (1h)", "stat", [(f"changes(keyward_start_time_seconds{SEL}[1h])", "{{instance}}")], w=4, h=4)
panel("Build", "table", [(f"keyward_build_info{SEL}", "{{version}} {{git}} {{features}}")], w=8, h=4)

row("Signing")
panel("Requests by face and status", "timeseries",
      [(f"sum by (face, status) (rate(keyward_requests_total{SEL}[5m]))", "{{face}} {{status}}")],
      unit="reqps")
panel("Refusals by operation and code", "timeseries",
      [(f"sum by (operation, code) (rate(keyward_sign_refusals_total{SEL}[5m]))", "{{operation}} {{code}}")],
      unit="reqps")
panel("Policy refusals by rule", "timeseries",
      [(f"sum by (rule) (rate(keyward_policy_refusals_total{SEL}[5m]))", "{{rule}}")], unit="reqps")
panel("Sign latency p50 / p99", "timeseries", [
    (f"histogram_quantile(0.5, sum by (operation, le) (rate(keyward_sign_seconds_bucket{SEL}[5m])))", "p50 {{operation}}"),
    (f"histogram_quantile(0.99, sum by (operation, le) (rate(keyward_sign_seconds_bucket{SEL}[5m])))", "p99 {{operation}}"),
], w=12, unit="s")
panel("Audit commit p99 and batch size", "timeseries", [
    (f"histogram_quantile(0.99, sum by (le) (rate(keyward_store_commit_seconds_bucket{SEL}[5m])))", "commit p99"),
    (f"keyward_audit_batch_jobs{SEL}", "jobs in last commit"),
], w=12)

row("Token")
panel("Token op latency p99", "timeseries",
      [(f"histogram_quantile(0.99, sum by (op, le) (rate(keyward_token_op_seconds_bucket{SEL}[5m])))", "{{op}}")],
      w=8, unit="s")
panel("Token sessions", "timeseries", [(f"keyward_token_sessions{SEL}", "{{state}}")], w=8)
panel("Keys on the token", "table", [
    (f"keyward_token_keys{SEL}", "{{kind}} v{{version}}"),
    (f"keyward_key_version_current{SEL}", "current {{kind}}"),
], w=8)

row("Webhooks")
panel("Webhook events by outcome", "timeseries",
      [(f"sum by (event, result) (rate(keyward_webhook_events_total{SEL}[5m]))", "{{event}} {{result}}")],
      w=12, unit="reqps")
panel("Webhook refusals by code", "timeseries",
      [(f"sum by (code) (rate(keyward_webhook_refusals_total{SEL}[5m]))", "{{code}}")], w=12, unit="reqps")

row("Connections and certificates")
panel("Connections open / refused", "timeseries", [
    (f"keyward_connections_open{SEL}", "open {{face}}"),
    (f"sum by (face, reason) (rate(keyward_connections_refused_total{SEL}[5m]))", "refused at accept {{face}} {{reason}}"),
    (f"sum by (face, reason) (rate(keyward_tls_handshake_failures_total{SEL}[5m]))", "handshake failed {{face}} {{reason}}"),
], w=12)
panel("Certificate and CRL expiry", "bargauge", [
    (f"keyward_tls_cert_expiry_seconds{SEL}", "{{face}} {{which}}"),
    (f"keyward_tls_crl_expiry_seconds{SEL}", "CRL {{face}} {{crl}}"),
    (f"keyward_tls_crl_age_seconds{SEL}", "CRL age {{face}} {{crl}}"),
], w=12, unit="s")

row("Wallets and co-signing")
panel("Wallets", "timeseries", [
    (f"keyward_wallets{SEL}", "{{chain}} {{engine}} {{status}}"),
    (f"keyward_wallets_by_key_version{SEL}", "wrap v{{version}}"),
], w=12)
panel("MPC rounds", "timeseries", [
    (f"rate(keyward_mpc_rounds_started_total{SEL}[5m])", "started/s"),
    (f"rate(keyward_mpc_rounds_aborted_total{SEL}[5m])", "aborted/s"),
    (f"keyward_mpc_rounds_running{SEL}", "running"),
    (f"keyward_mpc_rounds_abandoned{SEL}", "abandoned"),
    (f"keyward_mpc_rounds_waiting{SEL}", "waiting"),
], w=12)

# lay panels out left to right, wrapping at 24 columns
x = y = rowh = 0
out = []
for p, w, h in panels:
    if x + w > 24 or p["type"] == "row":
        y += rowh
        x, rowh = 0, 0
    p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
    x += w
    rowh = max(rowh, h)
    if p["type"] == "row":
        y += h
        x, rowh = 0, 0
    out.append(p)

dashboard = {
    "uid": "keyward",
    "title": "keyward",
    "description": "keyward signing appliance: state, signing, token, webhooks, certificates, wallets (ops/RUNBOOK.md)",
    "tags": ["keyward"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-6h", "to": "now"},
    "refresh": "30s",
    "timezone": "utc",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        {"name": "instance", "type": "query", "label": "Instance",
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "query": {"query": "label_values(keyward_build_info, instance)", "refId": "instance"},
         "definition": "label_values(keyward_build_info, instance)",
         "includeAll": True, "multi": True, "refresh": 2},
    ]},
    "annotations": {"list": []},
    "panels": out,
}
here = os.path.dirname(os.path.abspath(__file__))
text = json.dumps(dashboard, indent=2) + "\n"
target = os.path.join(here, "keyward.json")
if sys.argv[1:] == ["--check"]:
    # scripts/test: the committed dashboard is what this script makes
    with open(target) as f:
        if f.read() != text:
            sys.exit("ops/grafana/keyward.json is not what ops/grafana/generate.py makes: run it")
else:
    with open(target, "w") as f:
        f.write(text)
