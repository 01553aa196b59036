//! The OpenAPI 3.1 document of the signing API, served at `GET /v1/openapi.json`.
//!
//! Written by hand as a JSON value, next to the route and error tables it describes; the
//! tests below fail when a route in [`super::routes::ROUTES`] is missing from the
//! document (or the document names one the router does not serve), and when an error
//! code is missing from it.

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::errors::CODES;
use super::routes::{RouteId, ROUTES};
use crate::config::Operation;
use crate::http::Body;

fn error_response(codes: &[&str]) -> Value {
    json!({
        "description": format!("refused: {}", codes.join(", ")),
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorResponse" } } }
    })
}

fn responses(ok: Value, codes: &[&str]) -> Value {
    let mut m = Map::new();
    m.insert(
        "200".into(),
        json!({ "description": "success", "content": { "application/json": { "schema": ok } } }),
    );
    let mut by_status: std::collections::BTreeMap<u16, Vec<&str>> = Default::default();
    for code in codes {
        let status = CODES
            .iter()
            .find(|(_, c, _)| c == code)
            .map(|(s, _, _)| *s)
            .unwrap_or(500);
        by_status.entry(status).or_default().push(code);
    }
    for (status, list) in by_status {
        m.insert(status.to_string(), error_response(&list));
    }
    Value::Object(m)
}

const COMMON: &[&str] = &[
    "unauthenticated",
    "route_not_found",
    "method_not_allowed",
    "store_unavailable",
];

const SIGN_COMMON: &[&str] = &[
    "invalid_json",
    "invalid_request",
    "invalid_query",
    "body_unreadable",
    "not_authorized",
    "wallet_not_found",
    "engine_unavailable",
    "wrong_chain",
    "wallet_revoked",
    "body_too_large",
    "unsupported_media_type",
    "appliance_locked",
    "policy_denied",
    "rate_limited",
    "custody_mismatch",
    "hsm_error",
    "internal_error",
    "cosigner_unavailable",
    "cosigner_rejected",
    "cosigner_bad_signature",
    "hsm_unavailable",
];

fn codes(extra: &[&'static str], sign: bool) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMON.to_vec();
    if sign {
        v.extend_from_slice(SIGN_COMMON);
    }
    v.extend_from_slice(extra);
    v
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn sign_op(op: Operation) -> Value {
    let (summary, req, ok, extra): (&str, &str, &str, Vec<&'static str>) = match op {
        Operation::EvmMessage => (
            "EIP-191 personal_sign: `message` as UTF-8 text or 0x hex bytes; 65-byte r‖s‖v (v = 27/28, low-s)",
            "EvmMessageRequest",
            "EvmSignatureResponse",
            vec!["invalid_message"],
        ),
        Operation::EvmTypedData => (
            "EIP-712 v4 (`typedData` as in eth_signTypedData_v4, object or JSON string); returns the digest too",
            "EvmTypedDataRequest",
            "EvmSignatureResponse",
            vec!["invalid_typed_data", "typed_data_too_complex"],
        ),
        Operation::EvmTransaction => (
            "Legacy (EIP-155), EIP-2930, EIP-1559 or EIP-7702 (type 4, set-code) transaction as in eth_signTransaction; returns rawTransaction, hash, signature",
            "EvmTransactionRequest",
            "EvmTransactionResponse",
            vec![
                "invalid_transaction",
                "unknown_field",
                "missing_chain_id",
                "fee_inconsistent",
                "unsupported_tx_type",
                "data_too_large",
                "access_list_too_large",
                "authorization_list_too_large",
                "invalid_signature",
                "invalid_quantity",
                "invalid_address",
                "from_mismatch",
                // the pending nonce for evm.max_nonce_gap, asked of [rpc] upstream
                "upstream_unavailable",
                "upstream_rejected",
                "upstream_answer_too_large",
                "upstream_busy",
            ],
        ),
        Operation::EvmAuthorization => (
            "EIP-7702 authorization `{chainId, address (or contractAddress), nonce}`: signs keccak256(0x05 ‖ rlp([chainId, address, nonce])) and answers as viem's signAuthorization (r, s, yParity, and `authorization` usable in an authorizationList). Needs the `evm.authorization` grant, and a covering policy rule's `evm.delegations` must allow the delegate (builtin.delegation otherwise)",
            "EvmAuthorizationRequest",
            "EvmAuthorizationResponse",
            vec!["invalid_authorization", "invalid_quantity", "invalid_address"],
        ),
        Operation::EvmUserOperation => (
            "ERC-4337 user operation `{userOperation, entryPoint, chainId, account}`: EntryPoint v0.6.0 (initCode, paymasterAndData) or v0.7.0 (unpacked: factory/factoryData, paymaster/paymasterVerificationGasLimit/paymasterPostOpGasLimit/paymasterData; or packed: initCode, accountGasLimits, gasFees, paymasterAndData) at their canonical addresses; userOpHash as EntryPoint.getUserOpHash; `account` kernel-v3 or simple-account signs personal_sign(userOpHash) (safe-4337: unsupported_account). The account's callData is decoded and each inner call priced by the evm rules. Needs the `evm.user_operation` grant",
            "EvmUserOperationRequest",
            "EvmUserOperationResponse",
            vec![
                "invalid_user_operation",
                "unsupported_account",
                "unknown_field",
                "invalid_quantity",
                "invalid_address",
                "fee_inconsistent",
                "data_too_large",
            ],
        ),
        Operation::EvmHash => (
            "A raw 32-byte digest; refused (403) unless the client's grant names `evm.hash` explicitly",
            "EvmHashRequest",
            "EvmSignatureResponse",
            vec!["invalid_digest"],
        ),
        Operation::SolanaMessage => (
            "Off-chain message signature. `format: raw` (default) signs the bytes as given, as wallets' signMessage does; `format: offchain` signs the off-chain message envelope (\\xffsolana offchain, header version 0). Bytes that are, or begin with, a transaction or transaction message are refused (message_is_transaction).",
            "SolanaMessageRequest",
            "SolanaMessageResponse",
            vec!["invalid_encoding", "invalid_message", "message_is_transaction"],
        ),
        // a grant of the JSON-RPC face, no route of its own
        Operation::RpcForward => (
            "Forwarding to the [rpc] upstream node (JSON-RPC face only)",
            "EvmMessageRequest",
            "EvmSignatureResponse",
            vec![],
        ),
        Operation::SolanaTransaction => (
            "A serialized legacy or v0 transaction (base64) in which the wallet is a required signer; the signature is placed in its slot",
            "SolanaTransactionRequest",
            "SolanaTransactionResponse",
            vec![
                "invalid_encoding",
                "invalid_transaction",
                "unsupported_version",
                "not_a_signer",
            ],
        ),
    };
    let mut ok_schema = schema_ref(ok);
    ok_schema = json!({ "oneOf": [ok_schema, schema_ref("DryRunResponse")] });
    json!({
        "operationId": op.as_str().replace(['.', '_'], "-"),
        "summary": summary,
        "description": format!("Operation `{}`. Every answer, success or refusal, carries `auditId`; the signature is sent only after its audit record is durable.", op.as_str()),
        "parameters": [
            { "$ref": "#/components/parameters/walletId" },
            { "$ref": "#/components/parameters/dryRun" }
        ],
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": schema_ref(req) } }
        },
        "responses": responses(ok_schema, &codes(&extra, true)),
    })
}

/// `POST /v1/rpc[/{chainId}]`: JSON-RPC answers are HTTP 200 whatever they say (clients
/// read the error object, not the status); only transport-level refusals use a status.
fn rpc_op() -> Value {
    let rpc_body = |d: &str| {
        json!({ "description": d, "content": { "application/json": { "schema": { "oneOf": [
            schema_ref("JsonRpcResponse"),
            { "type": "array", "items": schema_ref("JsonRpcResponse") }
        ] } } } })
    };
    let mut r = responses(json!({}), COMMON);
    if let Value::Object(m) = &mut r {
        m.insert(
            "200".into(),
            rpc_body("the JSON-RPC answer (a batch gets an array, in request order, without answers to notifications)"),
        );
        m.insert(
            "204".into(),
            json!({ "description": "only notifications (no `id`): nothing is answered, and nothing is signed, forwarded or audited for them" }),
        );
        m.insert("413".into(), rpc_body("refused: body_too_large"));
        m.insert("415".into(), rpc_body("refused: unsupported_media_type"));
    }
    json!({
        "operationId": "jsonRpc",
        "summary": "Ethereum JSON-RPC 2.0 (single or batch of at most 100): eth_accounts, eth_chainId, personal_sign, eth_sign, eth_signTypedData_v4 (eth_signTypedData), eth_signTransaction; with [rpc] upstream also eth_sendTransaction and, for clients granted rpc.forward, forwarding of the methods rpc.forward_methods lists (exact names; default: read methods plus eth_sendRawTransaction), the node's answers bounded by rpc.max_upstream_response_bytes per request and rpc.max_upstream_inflight_bytes in all",
        "description": "Signing methods take the decision path of the REST routes (grants, policy, rate limits, audit with detail.face = \"rpc\"); see x-jsonrpc-methods and x-jsonrpc-error-codes. `{chainId}` (decimal or 0x hex) is what eth_chainId answers and what a transaction without chainId is signed for; without it, rpc.chain_id, else the upstream node's. Query: `compat=geth` makes eth_signTransaction answer geth's {raw, tx} (web3.py's eth.sign_transaction expects it) instead of the raw transaction hex. A single signing call's answer carries its audit record id in the `keyward-audit-id` header; an error's `data.auditId` carries it too.",
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": { "oneOf": [
                schema_ref("JsonRpcRequest"),
                { "type": "array", "minItems": 1, "maxItems": super::rpc::MAX_BATCH, "items": schema_ref("JsonRpcRequest") }
            ] } } }
        },
        "responses": r,
    })
}

fn operation(id: RouteId) -> Value {
    match id {
        RouteId::Whoami => json!({
            "operationId": "whoami",
            "summary": "The client identity from the certificate and its grants (cheap; no database access)",
            "responses": responses(schema_ref("WhoamiResponse"), &codes(&[], false)),
        }),
        RouteId::OpenApi => json!({
            "operationId": "openapi",
            "summary": "This document",
            "responses": responses(json!({ "type": "object" }), &codes(&[], false)),
        }),
        RouteId::ListWallets => json!({
            "operationId": "listWallets",
            "summary": "Wallets this client may use (a selector matches and at least one granted operation is of the wallet's chain), with the operations granted on each, a page at a time in id order (pass `next` as `after`)",
            "parameters": [
                { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 100 } },
                { "name": "after", "in": "query", "required": false, "schema": { "type": "string" }, "description": "the previous page's `next`" }
            ],
            "responses": responses(
                json!({ "type": "object", "required": ["wallets", "next"], "properties": { "wallets": { "type": "array", "items": schema_ref("Wallet") }, "next": { "type": ["string", "null"], "description": "cursor of the next page; null on the last" } } }),
                &codes(&["not_authorized", "invalid_query"], false),
            ),
        }),
        RouteId::GetWallet => json!({
            "operationId": "getWallet",
            "summary": "One wallet this client may use; one it may not is answered exactly as an unknown id (404 wallet_not_found, same message)",
            "parameters": [{ "$ref": "#/components/parameters/walletId" }],
            "responses": responses(schema_ref("Wallet"), &codes(&["not_authorized", "wallet_not_found"], false)),
        }),
        RouteId::Sign(op) => sign_op(op),
        RouteId::Rpc => rpc_op(),
    }
}

/// The JSON-RPC face's schemas (kept apart: one `json!` this size exceeds the macro's
/// recursion limit).
fn rpc_schemas() -> Value {
    json!({
            "JsonRpcRequest": {
                "type": "object", "required": ["jsonrpc", "method"],
                "properties": {
                    "jsonrpc": { "const": "2.0" },
                    "id": { "type": ["string", "integer", "null"], "description": "absent: a notification, which is not answered (nor executed)" },
                    "method": { "type": "string" },
                    "params": { "type": ["array", "object"] }
                }
            },
            "JsonRpcResponse": {
                "type": "object", "required": ["jsonrpc", "id"],
                "properties": {
                    "jsonrpc": { "const": "2.0" },
                    "id": { "type": ["string", "integer", "null"] },
                    "result": {},
                    "error": {
                        "type": "object", "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "integer", "enum": super::rpc::ERROR_CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>() },
                            "message": { "type": "string" },
                            "data": {
                                "type": "object",
                                "properties": {
                                    "code": { "type": "string", "description": "keyward's error code (the REST table, or chain_id_unknown)" },
                                    "auditId": { "type": "string", "description": "the audit record of a signing call" },
                                    "rule": { "type": "string" },
                                    "matchedRules": { "type": "array", "items": { "type": "string" } },
                                    "retryAfter": { "type": "integer" }
                                }
                            }
                        }
                    }
                }
            }
    })
}

fn components() -> Value {
    let mut c = rest_components();
    if let (Some(Value::Object(schemas)), Value::Object(rpc)) =
        (c.get_mut("schemas"), rpc_schemas())
    {
        schemas.extend(rpc);
    }
    c
}

fn rest_components() -> Value {
    let hex = |d: &str| json!({ "type": "string", "pattern": "^0x[0-9a-f]*$", "description": d });
    json!({
        "parameters": {
            "walletId": { "name": "walletId", "in": "path", "required": true, "schema": { "type": "string", "maxLength": 128 } },
            "chainId": { "name": "chainId", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^([1-9][0-9]*|0x[0-9a-fA-F]+)$" },
                         "description": "EVM chain id, decimal or 0x hex" },
            "dryRun": { "name": "dryRun", "in": "query", "required": false, "schema": { "type": "boolean" },
                        "description": "true: run authorization, parsing and the policy, audit the decision, sign nothing and count no spend" }
        },
        "schemas": {
            "ErrorResponse": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "enum": CODES.iter().map(|(_, c, _)| *c).collect::<Vec<_>>() },
                            "message": { "type": "string" },
                            "rule": { "type": "string", "description": "policy_denied / rate_limited: the policy rule or rate limit id that refused" }
                        }
                    },
                    "matchedRules": { "type": "array", "items": { "type": "string" }, "description": "policy_denied: the rules that covered the request" },
                    "auditId": { "type": "string", "description": "present on every answer to a sign request" }
                }
            },
            "Wallet": {
                "type": "object",
                "required": ["id", "chain", "address", "engine", "status", "operations"],
                "properties": {
                    "id": { "type": "string" },
                    "chain": { "type": "string", "enum": ["evm", "solana"] },
                    "address": { "type": ["string", "null"], "description": "EVM: lowercase 0x address; Solana: base58 public key" },
                    "label": { "type": ["string", "null"] },
                    "engine": { "type": "string", "enum": ["local", "mpc"] },
                    "status": { "type": "string", "enum": ["active", "revoked"] },
                    "source": { "type": "string", "enum": ["delegation", "generated", "imported"] },
                    "operations": { "type": "array", "items": { "type": "string" } }
                }
            },
            "WhoamiResponse": {
                "type": "object",
                "required": ["identity", "wallets", "operations"],
                "properties": {
                    "identity": { "type": "string", "description": "URI SAN of the client certificate, else its subject CN" },
                    "wallets": { "type": "array", "items": { "type": "string" }, "description": "wallet selectors granted" },
                    "operations": { "type": "array", "items": { "type": "string" } }
                }
            },
            "EvmMessageRequest": {
                "type": "object", "additionalProperties": false, "required": ["message"],
                "properties": { "message": { "type": "string", "description": "UTF-8 text, or 0x-prefixed hex bytes" } }
            },
            "EvmTypedDataRequest": {
                "type": "object", "additionalProperties": false, "required": ["typedData"],
                "properties": { "typedData": { "type": ["object", "string"], "description": "eth_signTypedData_v4 payload: types, primaryType, domain, message" } }
            },
            "EvmTransactionRequest": {
                "type": "object", "additionalProperties": false, "required": ["transaction"],
                "properties": { "transaction": {
                    "type": "object",
                    "description": "eth_signTransaction fields: type, chainId (required), nonce, to (absent: contract creation), value, data/input, gas, gasPrice or maxFeePerGas + maxPriorityFeePerGas, accessList, authorizationList (type 4: signed tuples {chainId, address, nonce, yParity, r, s}, each delegate judged by evm.delegations), from (optional, must be the wallet). Quantities as 0x hex or decimal strings."
                } }
            },
            "EvmAuthorizationRequest": {
                "type": "object", "additionalProperties": false, "required": ["chainId", "nonce"],
                "properties": {
                    "chainId": { "type": ["string", "integer"], "description": "0x hex or decimal; 0 = valid on every chain (a policy decision: evm.delegations.allow_any_chain)" },
                    "address": hex("the delegate contract (or `contractAddress`, as viem names it); the zero address revokes"),
                    "contractAddress": hex("alias of `address`"),
                    "nonce": { "type": ["string", "integer"], "description": "the account's nonce when the authorization is applied (its transaction nonce + 1 when the account sends it itself)" }
                }
            },
            "EvmAuthorizationResponse": {
                "type": "object", "required": ["r", "s", "yParity", "digest", "authorization", "address", "auditId"],
                "properties": {
                    "r": hex("32 bytes"),
                    "s": hex("32 bytes, low-s"),
                    "yParity": { "type": "integer", "enum": [0, 1] },
                    "digest": hex("keccak256(0x05 ‖ rlp([chainId, address, nonce]))"),
                    "authorization": {
                        "type": "object", "required": ["address", "chainId", "nonce", "r", "s", "yParity"],
                        "description": "viem's SignedAuthorization shape",
                        "properties": { "address": hex("delegate"), "chainId": { "type": "integer" }, "nonce": { "type": "integer" }, "r": hex("32 bytes"), "s": hex("32 bytes"), "yParity": { "type": "integer" } }
                    },
                    "address": hex("the wallet (authority) address"),
                    "auditId": { "type": "string" }
                }
            },
            "EvmUserOperationRequest": {
                "type": "object", "additionalProperties": false, "required": ["userOperation", "entryPoint", "chainId", "account"],
                "properties": {
                    "userOperation": { "type": "object", "description": "as eth_sendUserOperation takes it for that EntryPoint version; `signature` is ignored (it is what is being made)" },
                    "entryPoint": hex("0x5FF137D4b0FDCD49DcA30c7CF57E578a026d2789 (v0.6.0) or 0x0000000071727De22E5E9d8BAf0edAc6f37da032 (v0.7.0)"),
                    "chainId": { "type": ["string", "integer"] },
                    "account": { "type": "string", "enum": ["kernel-v3", "simple-account", "safe-4337"] }
                }
            },
            "EvmUserOperationResponse": {
                "type": "object", "required": ["signature", "userOpHash", "digest", "address", "auditId"],
                "properties": {
                    "signature": hex("65 bytes r‖s‖v (v = 27/28): the user operation's `signature`"),
                    "userOpHash": hex("EntryPoint.getUserOpHash"),
                    "digest": hex("EIP-191 hash of the userOpHash (what is signed)"),
                    "address": hex("the wallet (owner) address"),
                    "auditId": { "type": "string" }
                }
            },
            "EvmHashRequest": {
                "type": "object", "additionalProperties": false, "required": ["digest"],
                "properties": { "digest": hex("32 bytes") }
            },
            "EvmSignatureResponse": {
                "type": "object", "required": ["signature", "digest", "address", "auditId"],
                "properties": {
                    "signature": hex("65 bytes r‖s‖v, v = 27/28, low-s"),
                    "digest": hex("the 32-byte digest signed"),
                    "address": hex("the wallet address"),
                    "auditId": { "type": "string" }
                }
            },
            "EvmTransactionResponse": {
                "type": "object", "required": ["rawTransaction", "hash", "signature", "auditId"],
                "properties": {
                    "rawTransaction": hex("the signed transaction for eth_sendRawTransaction"),
                    "hash": hex("transaction hash"),
                    "digest": hex("the signing hash"),
                    "signature": {
                        "type": "object", "required": ["r", "s", "yParity", "v"],
                        "properties": { "r": hex("32 bytes"), "s": hex("32 bytes"), "yParity": hex("0x0 or 0x1"), "v": hex("legacy: chainId*2+35+yParity; typed: yParity") }
                    },
                    "address": hex("the wallet address"),
                    "auditId": { "type": "string" }
                }
            },
            "SolanaMessageRequest": {
                "type": "object", "additionalProperties": false, "required": ["message"],
                "properties": {
                    "message": { "type": "string" },
                    "encoding": { "type": "string", "enum": ["utf8", "base64", "hex"], "default": "utf8" },
                    "format": { "type": "string", "enum": ["raw", "offchain"], "default": "raw" }
                }
            },
            "SolanaMessageResponse": {
                "type": "object", "required": ["signature", "signedMessage", "publicKey", "auditId"],
                "properties": {
                    "signature": { "type": "string", "description": "base58, 64 bytes" },
                    "signedMessage": { "type": "string", "description": "base64 of exactly the bytes signed" },
                    "publicKey": { "type": "string", "description": "base58" },
                    "auditId": { "type": "string" }
                }
            },
            "SolanaTransactionRequest": {
                "type": "object", "additionalProperties": false, "required": ["transaction"],
                "properties": { "transaction": { "type": "string", "description": "base64 of a serialized legacy or v0 transaction (signature slots may be empty)" } }
            },
            "SolanaTransactionResponse": {
                "type": "object", "required": ["signature", "transaction", "signerIndex", "auditId"],
                "properties": {
                    "signature": { "type": "string", "description": "base58" },
                    "transaction": { "type": "string", "description": "base64 of the transaction with the signature in place" },
                    "signerIndex": { "type": "integer" },
                    "publicKey": { "type": "string" },
                    "auditId": { "type": "string" }
                }
            },
            "DryRunResponse": {
                "type": "object", "required": ["dryRun", "decision", "digest", "auditId"],
                "properties": {
                    "dryRun": { "const": true },
                    "decision": { "const": "allowed" },
                    "digest": { "type": "string", "description": "EVM: 0x digest that would be signed; Solana: hex SHA-256 of the bytes that would be signed" },
                    "matchedRules": { "type": "array", "items": { "type": "string" }, "description": "ids of the policy rules that covered the request" },
                    "auditId": { "type": "string" }
                }
            }
        },
        "securitySchemes": { "mtls": { "type": "mutualTLS", "description": "client certificate from the configured CA; identity = URI SAN, else subject CN" } }
    })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let entry = paths
            .entry(r.template.to_string())
            .or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            let mut op = operation(r.id);
            if r.template.contains("{chainId}") {
                op["parameters"] = json!([{ "$ref": "#/components/parameters/chainId" }]);
            }
            m.insert(r.method.as_str().to_ascii_lowercase(), op);
        }
    }
    let rpc_codes: Vec<Value> = super::rpc::ERROR_CODES
        .iter()
        .map(|(c, m)| json!({ "code": c, "meaning": m }))
        .collect();
    let rpc_methods: Vec<Value> = super::rpc::methods::TABLE
        .iter()
        .map(|(m, op, grant)| json!({ "method": m, "operation": op, "grant": grant }))
        .collect();
    let codes: Vec<Value> = CODES
        .iter()
        .map(|(s, c, m)| json!({ "status": s, "code": c, "meaning": m }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "keyward signing API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "HSM-backed signing over mutual TLS. Errors: {\"error\": {\"code\", \"message\"}}; every answer to a sign request carries auditId."
        },
        "security": [{ "mtls": [] }],
        "paths": paths,
        "components": components(),
        "x-error-codes": codes,
        "x-jsonrpc-methods": rpc_methods,
        "x-jsonrpc-error-codes": rpc_codes,
    })
}

/// `GET /v1/openapi.json`.
pub fn response() -> Response<Body> {
    static DOC: OnceLock<Bytes> = OnceLock::new();
    let bytes = DOC
        .get_or_init(|| Bytes::from(serde_json::to_vec_pretty(&document()).unwrap_or_default()))
        .clone();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(bytes))
        .expect("static response parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_and_router_name_the_same_routes() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = std::collections::BTreeSet::new();
        for (path, ops) in paths {
            for method in ops.as_object().unwrap().keys() {
                documented.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
        let served: std::collections::BTreeSet<_> = ROUTES
            .iter()
            .map(|r| (r.method.as_str().to_owned(), r.template.to_owned()))
            .collect();
        assert_eq!(documented, served);
        // and the router really serves each documented path (not only the table)
        for (method, path) in &documented {
            let concrete = path.replace("{walletId}", "w-1").replace("{chainId}", "1");
            let m = hyper::Method::from_bytes(method.as_bytes()).unwrap();
            assert!(
                matches!(
                    super::super::routes::route(&m, &concrete),
                    super::super::routes::Matched::Route { .. }
                ),
                "{method} {concrete}"
            );
        }
    }

    #[test]
    fn every_error_code_is_documented() {
        let text = serde_json::to_string(&document()).unwrap();
        for (_, code, _) in CODES {
            assert!(text.contains(&format!("\"{code}\"")), "{code}");
        }
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let enum_codes = doc["components"]["schemas"]["ErrorResponse"]["properties"]["error"]
            ["properties"]["code"]["enum"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(enum_codes, CODES.len());
    }

    #[test]
    fn every_route_error_code_exists() {
        let known: std::collections::HashSet<&str> = CODES.iter().map(|(_, c, _)| *c).collect();
        for c in COMMON.iter().chain(SIGN_COMMON) {
            assert!(known.contains(c), "{c}");
        }
        for r in ROUTES {
            let op = operation(r.id);
            for (status, resp) in op["responses"].as_object().unwrap() {
                let d = resp["description"].as_str().unwrap();
                if let Some(list) = d.strip_prefix("refused: ") {
                    for c in list.split(", ") {
                        assert!(known.contains(c), "{c}");
                        assert_eq!(super::super::errors::status_of(c).as_str(), status);
                    }
                }
            }
        }
    }
}
