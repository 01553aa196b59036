//! Webhook events: the delivery's envelope, and what each event does to the store.
//!
//! Owns: the strict parse of the fields keyward uses, share classification, the
//! ordering rules between `created` and `revoked`, and the one-transaction writes
//! (wallet + processed event + audit). Idempotency is decided inside the write
//! transaction, so concurrent duplicates cannot both take effect.
//! Must never: let an unwrapped share or API key outlive the blocking task that wraps
//! it, put one in a log line or error, or change the store when it refuses.

use std::sync::Arc;

use hyper::StatusCode;
use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::appliance::Appliance;
use crate::custody::{self, Binding, Purpose, SecretBytes};
use crate::envelope::{self, EnvelopeError};
use crate::hsm::HsmError;
use crate::http::Refusal;
use crate::store::events::{self as processed, ProcessedEvent};
use crate::store::wallets::{self, Chain, Engine, Source, Status, Wallet};
use crate::store::{audit, now_rfc3339, AuditEvent, StoreError};
use crate::wallet_key;

/// The delegation-created event name.
pub const CREATED: &str = "wallet.delegation.created";
/// The delegation-revoked event name.
pub const REVOKED: &str = "wallet.delegation.revoked";

/// The envelope fields keyward uses; unknown extra fields are tolerated.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Identifies the event across redeliveries.
    pub event_id: String,
    /// Identifies this delivery.
    pub message_id: Option<String>,
    /// Event name.
    pub event_name: String,
    /// Event time, ms since the epoch.
    pub timestamp_ms: i64,
    /// The vendor environment.
    pub environment_id: Option<String>,
    /// The vendor user.
    pub user_id: Option<String>,
    /// Event data (ciphertexts only).
    pub data: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDelivery {
    event_id: String,
    #[serde(default)]
    message_id: Option<String>,
    event_name: String,
    timestamp: String,
    #[serde(default)]
    environment_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    data: serde_json::Value,
}

fn malformed(message: impl Into<String>) -> Refusal {
    Refusal::new(StatusCode::BAD_REQUEST, "payload_malformed", message)
}

/// What a well-formed `eventId` or `walletId` is (see [`wallets::is_valid_id`]).
const ID_RULE: &str =
    "must be 1 to 128 characters of A-Z a-z 0-9 . _ : - (not only dots), such as a UUID";

/// An identifier we store and log: bounded, printable, no whitespace.
fn valid_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_graphic())
}

/// Parses the envelope after the MAC checked out.
pub fn parse_delivery(body: &[u8]) -> Result<Delivery, Refusal> {
    let raw: RawDelivery = serde_json::from_slice(body)
        .map_err(|e| malformed(format!("delivery is not a valid envelope: {e}")))?;
    // the key of idempotency, stored and logged: an id, not arbitrary text
    if !wallets::is_valid_id(&raw.event_id) {
        return Err(malformed(format!("`eventId` {ID_RULE}")));
    }
    if raw.event_name.is_empty() || raw.event_name.len() > 128 {
        return Err(malformed("`eventName` must be 1 to 128 characters"));
    }
    for (name, v) in [
        ("messageId", &raw.message_id),
        ("environmentId", &raw.environment_id),
        ("userId", &raw.user_id),
    ] {
        if v.as_deref().is_some_and(|s| !valid_id(s)) {
            return Err(malformed(format!(
                "`{name}` must be 1 to 128 printable characters"
            )));
        }
    }
    let ts = time::OffsetDateTime::parse(
        &raw.timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| malformed("`timestamp` is not an RFC 3339 time"))?;
    Ok(Delivery {
        event_id: raw.event_id,
        message_id: raw.message_id,
        event_name: raw.event_name,
        timestamp_ms: (ts.unix_timestamp_nanos() / 1_000_000) as i64,
        environment_id: raw.environment_id,
        user_id: raw.user_id,
        data: raw.data,
    })
}

/// The vendor's chain names: `EVM`; Solana as `SVM`, `SOL` or `SOLANA`.
pub fn parse_chain(s: &str) -> Option<Chain> {
    match s.to_ascii_uppercase().as_str() {
        "EVM" => Some(Chain::Evm),
        "SVM" | "SOL" | "SOLANA" => Some(Chain::Solana),
        _ => None,
    }
}

/// What a processed delivery amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The outcome recorded for the event (for a duplicate: the first one's).
    pub outcome: String,
    /// True when the event had been processed before; nothing changed now.
    pub duplicate: bool,
    /// The wallet concerned.
    pub wallet_id: Option<String>,
}

/// A string that is wiped when dropped (for `secretShare`).
struct SecretStr(Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SecretStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretStr, E> {
                Ok(SecretStr(Zeroizing::new(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

#[derive(Deserialize)]
struct ShareDoc {
    #[serde(rename = "secretShare", alias = "secret_share", default)]
    secret_share: Option<SecretStr>,
}

/// How a decrypted share is held.
pub enum Classified {
    /// A complete key deriving exactly the announced address: its raw 32 bytes.
    Local(SecretBytes),
    /// Anything else: a vendor MPC share, kept whole.
    Mpc,
    /// A complete-looking key that derives a different address.
    Mismatch,
}

/// Classifies a decrypted share plaintext (PROTOCOL.md, last section).
pub fn classify(chain: Chain, address: &str, plaintext: &[u8]) -> Classified {
    let Ok(doc) = serde_json::from_slice::<ShareDoc>(plaintext) else {
        return Classified::Mpc;
    };
    let Some(share) = doc.secret_share else {
        return Classified::Mpc;
    };
    let Some(key) = wallet_key::parse_secret_hex(&share.0) else {
        return Classified::Mpc;
    };
    match wallet_key::address_of_secret(chain, key.expose()) {
        Ok(derived) if derived == address => Classified::Local(key),
        Ok(_) => Classified::Mismatch,
        // not a valid scalar: cannot be a complete key
        Err(_) => Classified::Mpc,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedData {
    chain: String,
    wallet_id: String,
    public_key: String,
    encrypted_delegated_share: serde_json::Value,
    encrypted_wallet_api_key: serde_json::Value,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RevokedData {
    chain: String,
    wallet_id: String,
}

fn parse_data<T: serde::de::DeserializeOwned>(d: &Delivery) -> Result<T, Refusal> {
    serde_json::from_value(d.data.clone()).map_err(|e| {
        malformed(format!(
            "`data` of {} is not as expected: {e}",
            d.event_name
        ))
    })
}

fn chain_of(s: &str) -> Result<Chain, Refusal> {
    parse_chain(s).ok_or_else(|| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "chain_unsupported",
            "chain must be EVM or SVM/SOL (Solana)",
        )
    })
}

fn envelope_refusal(field: &str, e: &EnvelopeError) -> Refusal {
    match e {
        EnvelopeError::Hsm(h) => hsm_refusal(h),
        EnvelopeError::NoKey => {
            tracing::error!(field, error = %e, "no RSA key to decrypt with");
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "envelope_no_key",
                "this appliance has no RSA key to decrypt with",
            )
        }
        // One answer for every "cannot decrypt" cause (RSA-OAEP unwrap, content key
        // length, AES-GCM tag): telling them apart would hand a sender a padding oracle
        // against the RSA key. The cause goes to the log only.
        EnvelopeError::KeyUnwrapFailed
        | EnvelopeError::ContentKeyLength
        | EnvelopeError::PayloadDecryptFailed => {
            tracing::info!(field, cause = %e, "envelope not decryptable");
            Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "envelope_decrypt_failed",
                format!("{field}: cannot be decrypted with any of this appliance's RSA keys"),
            )
        }
        _ => Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            format!("{field}: {e}"),
        ),
    }
}

/// Token failures: the sender learns only that it failed and whether to retry; the
/// PKCS#11 function and return value stay in the log.
fn hsm_refusal(e: &HsmError) -> Refusal {
    if let HsmError::SealCheck = e {
        // logged where it happened; the vendor redelivers on a 5xx
        return Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "seal_check_failed",
            "the token's sealed output did not open again; nothing was stored",
        );
    }
    if let HsmError::TooLarge { max, .. } = e {
        return Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "secret_too_large",
            format!("a decrypted secret is larger than the {max} bytes keyward seals"),
        );
    }
    if e.is_unavailable() {
        tracing::warn!(error = %e, "token unavailable");
        Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "hsm_unavailable",
            "the token is unavailable; retry later",
        )
    } else {
        tracing::error!(error = %e, "token operation failed");
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "hsm_error",
            "the token failed; the appliance log has the details",
        )
    }
}

pub(crate) fn store_refusal(e: &StoreError) -> Refusal {
    if let StoreError::AddressHeld {
        chain,
        address,
        holder,
    } = e
    {
        // an operator must look: the vendor delegates an address keyward already signs
        // for. Answered 409 with nothing stored (the vendor's retries, and a replay from
        // its dashboard once the other wallet is revoked, are taken then)
        tracing::error!(chain, address = %address, holder = %holder, "delegation refused: another active wallet holds its address");
        return Refusal::new(
            StatusCode::CONFLICT,
            "wallet_conflict",
            format!("another active {chain} wallet on this appliance holds address {address}; nothing was stored"),
        );
    }
    tracing::error!(error = %e, "webhook store write failed");
    Refusal::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the event could not be stored; retry later",
    )
}

/// Wrapped material ready to store.
struct Prepared {
    engine: Engine,
    key_version: u32,
    wrapped_share: Vec<u8>,
    wrapped_api_key: Vec<u8>,
}

/// Decrypts, classifies and re-wraps both fields. Runs on a blocking thread; every
/// plaintext is dropped (and wiped) before it returns.
fn prepare(
    app: &Appliance,
    share: &envelope::Encrypted,
    api_key: &envelope::Encrypted,
    wallet_id: &str,
    chain: Chain,
    address: &str,
) -> Result<Prepared, Refusal> {
    let token = &app.token;
    let share_plain = envelope::decrypt_blocking(token, share)
        .map_err(|e| envelope_refusal("encryptedDelegatedShare", &e))?;
    let api_plain = envelope::decrypt_blocking(token, api_key)
        .map_err(|e| envelope_refusal("encryptedWalletApiKey", &e))?;
    if api_plain.is_empty() || std::str::from_utf8(api_plain.expose()).is_err() {
        return Err(Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "api_key_invalid",
            "encryptedWalletApiKey: the plaintext is not a non-empty UTF-8 string",
        ));
    }
    let (engine, material) = match classify(chain, address, share_plain.expose()) {
        Classified::Local(key) => (Engine::Local, key),
        Classified::Mpc => (Engine::Mpc, share_plain.clone()),
        Classified::Mismatch => {
            return Err(Refusal::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "share_address_mismatch",
                "the delegated key does not derive the announced publicKey",
            ))
        }
    };
    drop(share_plain);
    let key_version = token.current_wrap_version().map_err(|e| hsm_refusal(&e))?;
    let custody_err = |e: custody::CustodyError| match e {
        custody::CustodyError::Hsm(h) => hsm_refusal(&h),
        other => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "wrap_failed",
            other.to_string(),
        ),
    };
    let chain_name = chain.as_str();
    let wrapped_share = custody::wrap(
        token,
        &Binding {
            wallet_id,
            chain: chain_name,
            purpose: Purpose::Share,
        },
        key_version,
        material.expose(),
    )
    .map_err(custody_err)?;
    let wrapped_api_key = custody::wrap(
        token,
        &Binding {
            wallet_id,
            chain: chain_name,
            purpose: Purpose::ApiKey,
        },
        key_version,
        api_plain.expose(),
    )
    .map_err(custody_err)?;
    Ok(Prepared {
        engine,
        key_version,
        wrapped_share,
        wrapped_api_key,
    })
}

/// What the write transaction decided.
enum Written {
    Done(&'static str),
    Duplicate(String),
    Conflict,
    /// The eventId was processed before as a different event.
    EventConflict(Box<ProcessedEvent>),
    /// The wallet belongs to another vendor environment.
    EnvironmentMismatch,
}

/// The wallet a delivery is about, as recorded with its eventId: `data.walletId` for the
/// delegation events, none for events keyward does not act on.
pub fn wallet_id_of(d: &Delivery) -> Option<&str> {
    match d.event_name.as_str() {
        CREATED | REVOKED => d.data.get("walletId").and_then(serde_json::Value::as_str),
        _ => None,
    }
}

/// An eventId seen before: a duplicate only when it is the same event (name and wallet);
/// anything else reusing the id is a conflict, never a silent "duplicate" (that would
/// swallow, say, a revocation sent under a created's id).
fn replay(prev: ProcessedEvent, d: &Delivery) -> Written {
    if prev.event_name == d.event_name && prev.wallet_id.as_deref() == wallet_id_of(d) {
        Written::Duplicate(prev.outcome)
    } else {
        Written::EventConflict(Box::new(prev))
    }
}

/// The answer to a delivery whose eventId is already recorded as `prev`.
pub fn replayed(d: &Delivery, prev: ProcessedEvent) -> Result<Processed, Refusal> {
    let wallet_id = prev.wallet_id.clone();
    finish(d, replay(prev, d), wallet_id)
}

/// A wallet bound to an environment accepts events from that environment only; a
/// wallet without one (delegated by an event that named none) accepts any, and a
/// `created` then binds it.
fn environment_mismatch(w: &Wallet, d: &Delivery) -> bool {
    w.environment_id.is_some() && w.environment_id != d.environment_id
}

fn processed_event(d: &Delivery, wallet_id: Option<&str>, outcome: &str) -> ProcessedEvent {
    ProcessedEvent {
        event_id: d.event_id.clone(),
        event_name: d.event_name.clone(),
        message_id: d.message_id.clone(),
        wallet_id: wallet_id.map(str::to_owned),
        outcome: outcome.to_owned(),
        event_ts_ms: Some(d.timestamp_ms),
    }
}

fn audit_event(
    d: &Delivery,
    action: &str,
    wallet_id: &str,
    chain: Chain,
    outcome: &str,
    extra: serde_json::Value,
) -> AuditEvent {
    let mut detail = serde_json::json!({
        "eventId": d.event_id,
        "messageId": d.message_id,
        "environmentId": d.environment_id,
        "eventTime": d.timestamp_ms,
        "outcome": outcome,
    });
    if let (Some(o), serde_json::Value::Object(x)) = (detail.as_object_mut(), extra) {
        o.extend(x);
    }
    AuditEvent {
        actor: "webhook".into(),
        action: action.into(),
        wallet_id: Some(wallet_id.to_owned()),
        chain: Some(chain.as_str().into()),
        operation: None,
        digest: None,
        decision: "allowed".into(),
        result: outcome.into(),
        detail: Some(detail),
    }
}

fn finish(d: &Delivery, w: Written, wallet_id: Option<String>) -> Result<Processed, Refusal> {
    match w {
        Written::Done(outcome) => Ok(Processed {
            outcome: outcome.into(),
            duplicate: false,
            wallet_id,
        }),
        Written::Duplicate(outcome) => Ok(Processed {
            outcome,
            duplicate: true,
            wallet_id,
        }),
        Written::Conflict => Err(Refusal::new(
            StatusCode::CONFLICT,
            "wallet_conflict",
            format!(
                "wallet id of event {} belongs to a wallet that was not delegated",
                d.event_id
            ),
        )),
        Written::EventConflict(prev) => {
            // a vendor bug or a forged replay: either way someone must look
            tracing::error!(
                event_id = %d.event_id,
                event = %d.event_name,
                wallet_id = wallet_id_of(d).unwrap_or(""),
                recorded_event = %prev.event_name,
                recorded_wallet_id = prev.wallet_id.as_deref().unwrap_or(""),
                "eventId reused for a different event; refused"
            );
            Err(Refusal::new(
                StatusCode::CONFLICT,
                "event_id_conflict",
                format!(
                    "eventId {} was already processed as a different event ({} for wallet {}); nothing changed",
                    d.event_id,
                    prev.event_name,
                    prev.wallet_id.as_deref().unwrap_or("-")
                ),
            ))
        }
        Written::EnvironmentMismatch => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "environment_mismatch",
            format!(
                "wallet {} was delegated from another environment than this event's environmentId; nothing changed",
                wallet_id.as_deref().unwrap_or("-")
            ),
        )),
    }
}

/// Processes a `wallet.delegation.created` event.
pub async fn created(app: Arc<Appliance>, d: Delivery) -> Result<Processed, Refusal> {
    let data: CreatedData = parse_data(&d)?;
    let chain = chain_of(&data.chain)?;
    if !wallets::is_valid_id(&data.wallet_id) {
        return Err(malformed(format!("`walletId` {ID_RULE}")));
    }
    let address = wallet_key::canonical_address(chain, &data.public_key).map_err(|e| {
        Refusal::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_key_invalid",
            format!("publicKey: {e}"),
        )
    })?;
    let share = envelope::parse(&data.encrypted_delegated_share)
        .map_err(|e| envelope_refusal("encryptedDelegatedShare", &e))?;
    let api_key = envelope::parse(&data.encrypted_wallet_api_key)
        .map_err(|e| envelope_refusal("encryptedWalletApiKey", &e))?;
    let prepared = {
        let app = app.clone();
        let wallet_id = data.wallet_id.clone();
        let address = address.clone();
        tokio::task::spawn_blocking(move || {
            prepare(&app, &share, &api_key, &wallet_id, chain, &address)
        })
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "decryption task failed",
            )
        })??
    };
    let wallet_id = data.wallet_id.clone();
    let user_id = data.user_id.clone().or_else(|| d.user_id.clone());
    let dd = d.clone();
    let written = app
        .store
        .write(move |ctx| {
            let d = dd;
            if let Some(prev) = processed::get(ctx.conn, &d.event_id)? {
                return Ok(replay(prev, &d));
            }
            let existing = wallets::get(ctx.conn, &wallet_id)?;
            if existing
                .as_ref()
                .is_some_and(|w| w.source != Source::Delegation)
            {
                return Ok(Written::Conflict);
            }
            if existing
                .as_ref()
                .is_some_and(|w| environment_mismatch(w, &d))
            {
                return Ok(Written::EnvironmentMismatch);
            }
            let ts = d.timestamp_ms;
            let stale = existing.as_ref().is_some_and(|w| {
                w.revoked_at_ms.is_some_and(|r| r >= ts)
                    || (w.status == Status::Active && w.delegated_at_ms.is_some_and(|t| t >= ts))
            });
            let outcome = if stale {
                "ignored_stale"
            } else if existing
                .as_ref()
                .is_some_and(|w| w.status == Status::Active)
            {
                "replaced"
            } else {
                "stored"
            };
            processed::record(
                ctx.conn,
                &processed_event(&d, Some(&wallet_id), outcome),
                &now_rfc3339(),
            )?;
            if !stale {
                let now = now_rfc3339();
                let w = Wallet {
                    id: wallet_id.clone(),
                    chain,
                    address: Some(address),
                    label: existing.as_ref().and_then(|w| w.label.clone()),
                    source: Source::Delegation,
                    engine: prepared.engine,
                    status: Status::Active,
                    key_version: Some(prepared.key_version),
                    wrapped_share: Some(prepared.wrapped_share),
                    wrapped_api_key: Some(prepared.wrapped_api_key),
                    environment_id: d.environment_id.clone(),
                    user_id,
                    delegated_at_ms: Some(ts),
                    revoked_at_ms: existing.as_ref().and_then(|w| w.revoked_at_ms),
                    created_at: existing
                        .as_ref()
                        .map(|w| w.created_at.clone())
                        .unwrap_or_else(|| now.clone()),
                    updated_at: now,
                    // filled by the signer at the first signature (see `Signer::with_store`)
                    public_key: None,
                };
                wallets::upsert(ctx.conn, &w)?;
            }
            audit::append(
                ctx,
                audit_event(
                    &d,
                    "delegation.created",
                    &wallet_id,
                    chain,
                    outcome,
                    serde_json::json!({
                        "engine": prepared.engine.as_str(),
                        "keyVersion": prepared.key_version,
                    }),
                ),
            )?;
            Ok(Written::Done(outcome))
        })
        .await
        .map_err(|e| store_refusal(&e))?;
    finish(&d, written, Some(data.wallet_id))
}

/// Processes a `wallet.delegation.revoked` event.
pub async fn revoked(app: Arc<Appliance>, d: Delivery) -> Result<Processed, Refusal> {
    let data: RevokedData = parse_data(&d)?;
    let chain = chain_of(&data.chain)?;
    if !wallets::is_valid_id(&data.wallet_id) {
        return Err(malformed(format!("`walletId` {ID_RULE}")));
    }
    let wallet_id = data.wallet_id.clone();
    let dd = d.clone();
    let written = app
        .store
        .write(move |ctx| {
            let d = dd;
            if let Some(prev) = processed::get(ctx.conn, &d.event_id)? {
                return Ok(replay(prev, &d));
            }
            let ts = d.timestamp_ms;
            let now = now_rfc3339();
            let existing = wallets::get(ctx.conn, &wallet_id)?;
            let (outcome, chain) = match existing {
                Some(w) if w.source != Source::Delegation => return Ok(Written::Conflict),
                Some(w) if environment_mismatch(&w, &d) => return Ok(Written::EnvironmentMismatch),
                // a revoke older than the delegation in force belongs to an earlier
                // delegation; remember its time so older creates stay dead
                Some(mut w)
                    if w.status == Status::Active && w.delegated_at_ms.is_some_and(|t| t > ts) =>
                {
                    w.revoked_at_ms = Some(w.revoked_at_ms.map_or(ts, |r| r.max(ts)));
                    w.updated_at = now.clone();
                    wallets::upsert(ctx.conn, &w)?;
                    ("ignored_stale", w.chain)
                }
                Some(w) => {
                    let outcome = if w.status == Status::Revoked {
                        "already_revoked"
                    } else {
                        "revoked"
                    };
                    // the deleted blobs must not survive in old WAL frames either
                    ctx.scrub_wal_after_commit();
                    wallets::mark_revoked(ctx.conn, &wallet_id, ts, &now)?;
                    (outcome, w.chain)
                }
                None => {
                    wallets::upsert(
                        ctx.conn,
                        &Wallet {
                            id: wallet_id.clone(),
                            chain,
                            address: None,
                            label: None,
                            source: Source::Delegation,
                            // nothing is known about it; no material will ever be used
                            engine: Engine::Mpc,
                            status: Status::Revoked,
                            key_version: None,
                            wrapped_share: None,
                            wrapped_api_key: None,
                            environment_id: d.environment_id.clone(),
                            user_id: d.user_id.clone(),
                            delegated_at_ms: None,
                            revoked_at_ms: Some(ts),
                            created_at: now.clone(),
                            updated_at: now.clone(),
                            public_key: None,
                        },
                    )?;
                    ("tombstoned", chain)
                }
            };
            processed::record(
                ctx.conn,
                &processed_event(&d, Some(&wallet_id), outcome),
                &now,
            )?;
            audit::append(
                ctx,
                audit_event(
                    &d,
                    "delegation.revoked",
                    &wallet_id,
                    chain,
                    outcome,
                    serde_json::json!({}),
                ),
            )?;
            Ok(Written::Done(outcome))
        })
        .await
        .map_err(|e| store_refusal(&e))?;
    finish(&d, written, Some(data.wallet_id))
}

/// Records `ping` and any event keyward does not act on.
pub async fn ignored(app: Arc<Appliance>, d: Delivery) -> Result<Processed, Refusal> {
    let dd = d.clone();
    let written = app
        .store
        .write(move |ctx| {
            if let Some(prev) = processed::get(ctx.conn, &dd.event_id)? {
                return Ok(replay(prev, &dd));
            }
            processed::record(
                ctx.conn,
                &processed_event(&dd, None, "ignored"),
                &now_rfc3339(),
            )?;
            Ok(Written::Done("ignored"))
        })
        .await
        .map_err(|e| store_refusal(&e))?;
    finish(&d, written, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(name: &str, data: serde_json::Value) -> Delivery {
        Delivery {
            event_id: "e1".into(),
            message_id: None,
            event_name: name.into(),
            timestamp_ms: 0,
            environment_id: Some("env-a".into()),
            user_id: None,
            data,
        }
    }

    fn recorded(name: &str, wallet: Option<&str>) -> ProcessedEvent {
        ProcessedEvent {
            event_id: "e1".into(),
            event_name: name.into(),
            message_id: None,
            wallet_id: wallet.map(str::to_owned),
            outcome: "stored".into(),
            event_ts_ms: Some(0),
        }
    }

    #[test]
    fn a_reused_event_id_is_a_duplicate_only_for_the_same_event() {
        let created = delivery(CREATED, serde_json::json!({"walletId": "w1"}));
        let same = replayed(&created, recorded(CREATED, Some("w1"))).unwrap();
        assert!(same.duplicate);
        assert_eq!(same.outcome, "stored");
        for prev in [
            recorded(REVOKED, Some("w1")),
            recorded(CREATED, Some("w2")),
            recorded("ping", None),
        ] {
            let r = replayed(&created, prev).unwrap_err();
            assert_eq!(
                (r.status, r.code),
                (StatusCode::CONFLICT, "event_id_conflict")
            );
        }
        let ping = delivery("ping", serde_json::json!({"walletId": "ignored"}));
        assert!(replayed(&ping, recorded("ping", None)).unwrap().duplicate);
        assert_eq!(
            replayed(&ping, recorded(CREATED, Some("w1")))
                .unwrap_err()
                .code,
            "event_id_conflict"
        );
    }

    #[test]
    fn environment_binding() {
        let (_, address) = wallet_key::generate(Chain::Evm);
        let w = |env: Option<&str>| Wallet {
            id: "w1".into(),
            chain: Chain::Evm,
            address: Some(address.clone()),
            label: None,
            source: Source::Delegation,
            engine: Engine::Local,
            status: Status::Active,
            key_version: Some(1),
            wrapped_share: None,
            wrapped_api_key: None,
            public_key: None,
            environment_id: env.map(str::to_owned),
            user_id: None,
            delegated_at_ms: None,
            revoked_at_ms: None,
            created_at: String::new(),
            updated_at: String::new(),
        };
        let d = delivery(REVOKED, serde_json::json!({}));
        assert!(!environment_mismatch(&w(Some("env-a")), &d));
        assert!(environment_mismatch(&w(Some("env-b")), &d));
        // unbound wallets accept any environment
        assert!(!environment_mismatch(&w(None), &d));
        // a bound wallet refuses an event that names no environment
        let mut anonymous = d.clone();
        anonymous.environment_id = None;
        assert!(environment_mismatch(&w(Some("env-a")), &anonymous));
    }

    #[test]
    fn chains() {
        assert_eq!(parse_chain("evm"), Some(Chain::Evm));
        assert_eq!(parse_chain("SVM"), Some(Chain::Solana));
        assert_eq!(parse_chain("Sol"), Some(Chain::Solana));
        assert_eq!(parse_chain("BTC"), None);
    }

    #[test]
    fn classification() {
        let (key, addr) = wallet_key::generate(Chain::Evm);
        let hexkey = hex::encode(key.expose());
        let doc = format!(r#"{{"secretShare":"{hexkey}","pubkey":{{}}}}"#);
        assert!(
            matches!(classify(Chain::Evm, &addr, doc.as_bytes()), Classified::Local(k) if k == key)
        );
        let doc = format!(r#"{{"secret_share":"0x{hexkey}"}}"#);
        assert!(matches!(
            classify(Chain::Evm, &addr, doc.as_bytes()),
            Classified::Local(_)
        ));
        let (_, other) = wallet_key::generate(Chain::Evm);
        assert!(matches!(
            classify(Chain::Evm, &other, doc.as_bytes()),
            Classified::Mismatch
        ));
        for mpc in [
            r#"{"secretShare":"abcd"}"#.to_string(),
            r#"{"secretShare":{"x":1}}"#.to_string(),
            r#"{"keyShareId":"k"}"#.to_string(),
            "not json".to_string(),
            format!(r#"{{"secretShare":"{}"}}"#, "00".repeat(32)),
        ] {
            assert!(
                matches!(classify(Chain::Evm, &addr, mpc.as_bytes()), Classified::Mpc),
                "{mpc}"
            );
        }
    }

    #[test]
    fn delivery_parse_is_strict_on_used_fields() {
        let ok = br#"{"eventId":"e1","eventName":"ping","timestamp":"2025-01-01T00:00:00.000Z","data":{},"extra":true}"#;
        let d = parse_delivery(ok).unwrap();
        assert_eq!(d.timestamp_ms, 1_735_689_600_000);
        for bad in [
            &br#"{"eventName":"ping","timestamp":"2025-01-01T00:00:00.000Z"}"#[..],
            br#"{"eventId":7,"eventName":"ping","timestamp":"2025-01-01T00:00:00.000Z"}"#,
            br#"{"eventId":"e","eventName":"ping","timestamp":"yesterday"}"#,
            br#"{"eventId":"e e","eventName":"ping","timestamp":"2025-01-01T00:00:00Z"}"#,
            br#"{"eventId":"../../etc/passwd","eventName":"ping","timestamp":"2025-01-01T00:00:00Z"}"#,
            br#"{"eventId":"..","eventName":"ping","timestamp":"2025-01-01T00:00:00Z"}"#,
            br#"{"eventId":"","eventName":"ping","timestamp":"2025-01-01T00:00:00Z"}"#,
            b"[]",
        ] {
            assert_eq!(parse_delivery(bad).unwrap_err().code, "payload_malformed");
        }
    }
}
