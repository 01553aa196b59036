//! Webhook delivery: the HMAC check of `x-dynamic-signature-256` and the strict parse of
//! the envelope that follows it (`keyward::webhook::{verify, events}`).
//!
//! Invariants: a signature made with a configured secret verifies, and one over a
//! different body does not; whatever verifies was made by one of the secrets (checked
//! with an HMAC computed here); a parsed delivery satisfies every documented field rule
//! and its `timestamp_ms` is the time the text says (computed here, not with `time`);
//! a refused one is a 400 `payload_malformed`; a well-formed envelope is accepted.

use arbitrary::Arbitrary;
use hmac::{Hmac, Mac};
use keyward::envelope;
use keyward::store::wallets::is_valid_id;
use keyward::webhook::events::{self, parse_delivery, wallet_id_of};
use keyward::webhook::verify::{sign, verify, SignatureError};
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::Sha256;

#[derive(Arbitrary, Debug)]
enum Input {
    /// Whatever arrives: a header, a body, the configured secrets.
    Raw {
        header: Option<Vec<u8>>,
        body: Vec<u8>,
        secrets: Vec<String>,
    },
    /// A delivery as the vendor would build it, possibly with a field out of its rules.
    Built {
        delivery: GenDelivery,
        secret: String,
        other_secret: String,
        flip: u16,
    },
}

/// An identifier: a UUID (valid), or any text.
#[derive(Arbitrary, Debug)]
enum GenId {
    Uuid(u128),
    Text(String),
}

impl GenId {
    fn render(&self) -> String {
        match self {
            GenId::Uuid(n) => {
                let h = format!("{n:032x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..]
                )
            }
            GenId::Text(s) => s.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum GenName {
    Created,
    Revoked,
    Other(String),
}

/// An RFC 3339 time from its parts (kept in range so the expected value is known), or
/// any JSON value.
#[derive(Arbitrary, Debug)]
enum GenTime {
    Parts {
        year: u16,
        month: u8,
        day: u8,
        hour: u8,
        minute: u8,
        second: u8,
        millis: Option<u16>,
        /// Offset in minutes, within ±23:59.
        offset: i16,
    },
    Text(String),
    Number(i64),
}

#[derive(Arbitrary, Debug)]
struct GenDelivery {
    event_id: GenId,
    message_id: Option<GenId>,
    name: GenName,
    time: GenTime,
    environment_id: Option<GenId>,
    user_id: Option<GenId>,
    chain: u8,
    wallet_id: GenId,
    with_envelope: bool,
    extra: Option<(String, i32)>,
}

fn days_in_month(year: i64, month: u8) -> u8 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl GenTime {
    /// The JSON value, and the milliseconds it means when it is a valid RFC 3339 time.
    fn render(&self) -> (Value, Option<i64>) {
        match *self {
            GenTime::Parts {
                year,
                month,
                day,
                hour,
                minute,
                second,
                millis,
                offset,
            } => {
                let year = i64::from(year % 10_000);
                let month = month % 12 + 1;
                let day = day % days_in_month(year, month) + 1;
                let (hour, minute, second) = (hour % 24, minute % 60, second % 60);
                let offset = i64::from(offset) % (24 * 60);
                let frac = millis
                    .map(|m| format!(".{:03}", m % 1000))
                    .unwrap_or_default();
                let zone = if offset == 0 {
                    "Z".to_owned()
                } else {
                    let sign = if offset < 0 { '-' } else { '+' };
                    format!("{sign}{:02}:{:02}", offset.abs() / 60, offset.abs() % 60)
                };
                let text = format!(
                    "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}"
                );
                let ms = (days_from_civil(year, i64::from(month), i64::from(day)) * 86_400
                    + i64::from(hour) * 3600
                    + i64::from(minute) * 60
                    + i64::from(second)
                    - offset * 60)
                    * 1000
                    + i64::from(millis.map_or(0, |m| m % 1000));
                (Value::String(text), Some(ms))
            }
            GenTime::Text(ref s) => (Value::String(s.clone()), None),
            GenTime::Number(n) => (json!(n), None),
        }
    }
}

/// What the documentation promises of an optional identifier.
fn printable_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// `is_valid_id` restated from its documentation.
fn documented_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
        && !s.bytes().all(|b| b == b'.')
}

fn hmac_hex(secret: &str, body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn sample_envelope() -> Value {
    json!({
        "alg": "HYBRID-RSA-AES-256",
        "iv": "AAAAAAAAAAAAAAAA",
        "ct": "Y3Q",
        "tag": "AAAAAAAAAAAAAAAAAAAAAA",
        "ek": "ZWs",
        "kid": "dynamic_rsa_x"
    })
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::Raw {
            header,
            body,
            secrets,
        } => {
            raw_signature(header.as_deref(), &body, &secrets);
            parsed(&body, None);
        }
        Input::Built {
            delivery,
            secret,
            other_secret,
            flip,
        } => built(&delivery, &secret, &other_secret, flip),
    }
}

fn raw_signature(header: Option<&[u8]>, body: &[u8], secrets: &[String]) {
    let configured: Vec<SecretString> = secrets
        .iter()
        .map(|s| SecretString::from(s.clone()))
        .collect();
    match verify(header, body, &configured) {
        Ok(()) => {
            // the header names a MAC one of the secrets makes over this body
            let text = std::str::from_utf8(header.expect("verified without a header"))
                .expect("verified a non-UTF-8 header");
            let hex_part = text
                .trim()
                .strip_prefix("sha256=")
                .expect("no sha256= prefix");
            let given = hex::decode(hex_part).expect("verified non-hex");
            assert!(
                secrets.iter().any(|s| hmac_hex(s, body)[..] == given[..]),
                "a header verified that no configured secret produced"
            );
        }
        Err(SignatureError::Invalid) => {
            let text = std::str::from_utf8(header.expect("Invalid without a header")).unwrap();
            let given = hex::decode(text.trim().strip_prefix("sha256=").unwrap()).unwrap();
            assert_eq!(given.len(), 32, "Invalid for a MAC that is not 32 bytes");
            assert!(
                !secrets.iter().any(|s| hmac_hex(s, body)[..] == given[..]),
                "a correct MAC was refused"
            );
        }
        Err(SignatureError::Missing) => {
            let well_formed = header
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|t| t.trim().strip_prefix("sha256="))
                .and_then(|h| hex::decode(h).ok())
                .is_some_and(|m| m.len() == 32);
            assert!(!well_formed, "a well-formed header was called missing");
        }
    }
}

fn built(d: &GenDelivery, secret: &str, other_secret: &str, flip: u16) {
    let event_id = d.event_id.render();
    let message_id = d.message_id.as_ref().map(GenId::render);
    let environment_id = d.environment_id.as_ref().map(GenId::render);
    let user_id = d.user_id.as_ref().map(GenId::render);
    let wallet_id = d.wallet_id.render();
    let name = match &d.name {
        GenName::Created => events::CREATED.to_owned(),
        GenName::Revoked => events::REVOKED.to_owned(),
        GenName::Other(s) => s.clone(),
    };
    let (time, expected_ms) = d.time.render();
    let chain = ["EVM", "SVM", "sol", "Solana", "BTC", ""][usize::from(d.chain % 6)];
    let mut data = json!({ "chain": chain, "walletId": wallet_id });
    if d.with_envelope {
        data["publicKey"] = json!("0x0000000000000000000000000000000000000001");
        data["encryptedDelegatedShare"] = sample_envelope();
        data["encryptedWalletApiKey"] = sample_envelope();
    }
    let mut body = json!({
        "eventId": event_id,
        "eventName": name,
        "timestamp": time,
        "data": data,
    });
    for (k, v) in [
        ("messageId", &message_id),
        ("environmentId", &environment_id),
        ("userId", &user_id),
    ] {
        if let Some(v) = v {
            body[k] = json!(v);
        }
    }
    if let Some((k, v)) = &d.extra {
        if ![
            "eventId",
            "eventName",
            "timestamp",
            "data",
            "messageId",
            "environmentId",
            "userId",
        ]
        .contains(&k.as_str())
        {
            body[k] = json!(v);
        }
    }
    let bytes = serde_json::to_vec(&body).expect("serialises");

    // the signature: the right secret verifies (also among others), a wrong one does not,
    // and neither does the same header over a changed body
    let header = sign(&bytes, secret);
    let secrets = |list: &[&str]| -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    };
    assert_eq!(
        verify(Some(header.as_bytes()), &bytes, &secrets(&[secret])),
        Ok(())
    );
    assert_eq!(
        verify(
            Some(header.as_bytes()),
            &bytes,
            &secrets(&[other_secret, secret])
        ),
        Ok(())
    );
    // (distinct texts can be one HMAC key: keys are zero-padded to the block size)
    if hmac_hex(other_secret, &bytes) != hmac_hex(secret, &bytes) {
        assert_eq!(
            verify(Some(header.as_bytes()), &bytes, &secrets(&[other_secret])),
            Err(SignatureError::Invalid)
        );
    }
    let mut changed = bytes.clone();
    let at = usize::from(flip) % changed.len();
    changed[at] ^= 1 << (flip >> 13);
    assert_eq!(
        verify(Some(header.as_bytes()), &changed, &secrets(&[secret])),
        Err(SignatureError::Invalid),
        "a MAC verified over a changed body"
    );

    // the parse: accepted exactly when every field keeps its rule
    let valid = documented_id(&event_id)
        && !name.is_empty()
        && name.len() <= 128
        && [&message_id, &environment_id, &user_id]
            .iter()
            .all(|v| v.as_deref().is_none_or(printable_id))
        && expected_ms.is_some();
    let outcome = parsed(&bytes, expected_ms);
    if valid {
        let d = outcome.expect("a well-formed delivery was refused");
        if name == events::CREATED || name == events::REVOKED {
            assert_eq!(wallet_id_of(&d), Some(wallet_id.as_str()));
        } else {
            assert_eq!(wallet_id_of(&d), None);
        }
    } else {
        assert!(
            outcome.is_none(),
            "a delivery breaking a field rule was accepted"
        );
    }
}

/// Parses `body`; checks what is promised of the result, returns it when accepted.
fn parsed(body: &[u8], expected_ms: Option<i64>) -> Option<events::Delivery> {
    match parse_delivery(body) {
        Ok(d) => {
            assert!(documented_id(&d.event_id) && is_valid_id(&d.event_id));
            assert!(!d.event_name.is_empty() && d.event_name.len() <= 128);
            for v in [&d.message_id, &d.environment_id, &d.user_id] {
                assert!(v.as_deref().is_none_or(printable_id), "{v:?}");
            }
            if let Some(ms) = expected_ms {
                assert_eq!(d.timestamp_ms, ms, "timestamp read as another time");
            }
            // what the created handler parses next, before any token operation
            for field in ["encryptedDelegatedShare", "encryptedWalletApiKey"] {
                if let Some(v) = d.data.get(field) {
                    if let Err(e) = envelope::parse(v) {
                        assert!(
                            ["envelope_malformed", "envelope_alg_unsupported"].contains(&e.code()),
                            "{}",
                            e.code()
                        );
                    }
                }
            }
            if let Some(c) = d.data.get("chain").and_then(Value::as_str) {
                let _ = events::parse_chain(c);
            }
            Some(d)
        }
        Err(r) => {
            assert_eq!(r.status.as_u16(), 400);
            assert_eq!(r.code, "payload_malformed");
            None
        }
    }
}
