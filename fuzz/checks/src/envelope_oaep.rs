//! The vendor's encrypted fields (`keyward::envelope`): the strict parse of an
//! `ENCRYPTED` object, the AES-256-GCM opening on the host, the host-side EME-OAEP
//! decoder applied to the token's raw RSA output (`keyward::hsm::oaep_decode_for_fuzzing`)
//! and the classification of a decrypted share (`keyward::webhook::events::classify`).
//!
//! Invariants: a parse accepts exactly the objects the field rules allow and returns the
//! bytes that were encoded; what `open_payload` returns re-seals to the same ciphertext
//! and tag, a sealed payload opens, a changed one does not; whatever the OAEP decoder
//! accepts re-encodes (with the seed it carries) to the same block, every block encoded
//! here decodes to its message and no corrupted one decodes; a share is `Local` only
//! when it is a 32-byte key deriving the announced address (derived here).

use aes_gcm::aead::consts::{U12, U16};
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use arbitrary::Arbitrary;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use keyward::envelope::{self, Encrypted, EnvelopeError, ACCEPTED_ALGS};
use keyward::hsm::oaep_decode_for_fuzzing as oaep_decode;
use keyward::store::wallets::Chain;
use keyward::webhook::events::{classify, Classified};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

#[derive(Arbitrary, Debug)]
enum Input {
    /// Any JSON text as the `ENCRYPTED` value.
    RawJson(Vec<u8>),
    /// An object built field by field.
    Fields(GenFields),
    /// A payload sealed here, opened by keyward, maybe after a change.
    Sealed {
        key: [u8; 32],
        iv16: bool,
        iv: [u8; 16],
        plaintext: Vec<u8>,
        flip: Option<u16>,
    },
    /// Any key, nonce, ciphertext and tag.
    Open {
        key: [u8; 32],
        iv16: bool,
        iv: [u8; 16],
        ct: Vec<u8>,
        tag: [u8; 16],
    },
    /// Any block as the RSA output.
    Oaep(Vec<u8>),
    /// A block encoded here, maybe corrupted.
    OaepBuilt {
        k: u16,
        message: Vec<u8>,
        seed: [u8; 32],
        corrupt: Option<(u16, u8)>,
    },
    /// A decrypted share.
    Share(GenShare),
}

#[derive(Arbitrary, Debug)]
enum B64 {
    UrlNoPad,
    UrlPad,
    Standard,
    Text(String),
}

#[derive(Arbitrary, Debug)]
struct GenField {
    bytes: Vec<u8>,
    encoding: B64,
    omit: bool,
    not_a_string: bool,
}

#[derive(Arbitrary, Debug)]
enum GenKid {
    Absent,
    Null,
    Text(String),
    Number(u32),
}

#[derive(Arbitrary, Debug)]
struct GenFields {
    alg: Result<u8, String>,
    iv: GenField,
    ct: GenField,
    tag: GenField,
    ek: GenField,
    kid: GenKid,
    extra: Option<(String, u8)>,
}

impl GenField {
    /// The JSON value, and the bytes the parse must return if it is valid base64url.
    fn render(&self) -> (Option<Value>, Option<Vec<u8>>) {
        if self.omit {
            return (None, None);
        }
        if self.not_a_string {
            return (Some(json!(self.bytes.len())), None);
        }
        let (text, ok) = match &self.encoding {
            B64::UrlNoPad => (URL_SAFE_NO_PAD.encode(&self.bytes), true),
            B64::UrlPad => (URL_SAFE.encode(&self.bytes), true),
            B64::Standard => {
                let t = STANDARD.encode(&self.bytes);
                // the standard alphabet is base64url too when it avoids + and /
                let ok = !t.contains(['+', '/']);
                (t, ok)
            }
            B64::Text(t) => {
                // any text: the bytes it means if it is base64url (padding optional)
                let engine = if t.ends_with('=') {
                    &URL_SAFE
                } else {
                    &URL_SAFE_NO_PAD
                };
                return (Some(Value::String(t.clone())), engine.decode(t).ok());
            }
        };
        (Some(Value::String(text)), ok.then(|| self.bytes.clone()))
    }
}

/// Runs one input.
pub fn check(data: &[u8]) {
    let Some(input) = crate::take::<Input>(data) else {
        return;
    };
    match input {
        Input::RawJson(bytes) => {
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                let _ = parsed(&v);
            }
        }
        Input::Fields(f) => fields(&f),
        Input::Sealed {
            key,
            iv16,
            iv,
            plaintext,
            flip,
        } => sealed(&key, &iv[..if iv16 { 16 } else { 12 }], &plaintext, flip),
        Input::Open {
            key,
            iv16,
            iv,
            ct,
            tag,
        } => open_any(&key, &iv[..if iv16 { 16 } else { 12 }], ct, tag),
        Input::Oaep(em) => oaep_any(&em),
        Input::OaepBuilt {
            k,
            message,
            seed,
            corrupt,
        } => oaep_built(k, &message, &seed, corrupt),
        Input::Share(s) => share(&s),
    }
}

/// Parses `v`; checks what an accepted envelope promises.
fn parsed(v: &Value) -> Result<Encrypted, EnvelopeError> {
    let r = envelope::parse(v);
    match &r {
        Ok(e) => {
            assert!(ACCEPTED_ALGS.contains(&e.alg.as_str()));
            assert!(e.iv.len() == 12 || e.iv.len() == 16);
            assert!(!e.ek.is_empty());
        }
        Err(e) => assert!(
            matches!(
                e,
                EnvelopeError::Malformed(_) | EnvelopeError::UnsupportedAlg(_)
            ),
            "a parse failed with {e:?}"
        ),
    }
    r
}

fn fields(f: &GenFields) {
    let mut obj = Map::new();
    let alg = match &f.alg {
        Ok(i) => ACCEPTED_ALGS[usize::from(*i) % ACCEPTED_ALGS.len()].to_owned(),
        Err(s) => s.clone(),
    };
    obj.insert("alg".into(), json!(alg));
    let mut expected = Vec::new();
    for (name, field) in [("iv", &f.iv), ("ct", &f.ct), ("tag", &f.tag), ("ek", &f.ek)] {
        let (value, bytes) = field.render();
        if let Some(v) = value {
            obj.insert(name.into(), v);
        }
        expected.push(bytes);
    }
    let (kid_ok, kid) = match &f.kid {
        GenKid::Absent => (true, None),
        GenKid::Null => {
            obj.insert("kid".into(), Value::Null);
            (true, None)
        }
        GenKid::Text(s) => {
            obj.insert("kid".into(), json!(s));
            (true, Some(s.clone()))
        }
        GenKid::Number(n) => {
            obj.insert("kid".into(), json!(n));
            (false, None)
        }
    };
    if let Some((k, v)) = &f.extra {
        if !["alg", "iv", "ct", "tag", "ek", "kid"].contains(&k.as_str()) {
            obj.insert(k.clone(), json!(v));
        }
    }
    let r = parsed(&Value::Object(obj));
    let [iv, ct, tag, ek] = [&expected[0], &expected[1], &expected[2], &expected[3]];
    let valid = ACCEPTED_ALGS.contains(&alg.as_str())
        && iv.as_ref().is_some_and(|b| b.len() == 12 || b.len() == 16)
        && ct.is_some()
        && tag.as_ref().is_some_and(|b| b.len() == 16)
        && ek.as_ref().is_some_and(|b| !b.is_empty())
        && kid_ok;
    match r {
        Ok(e) => {
            assert!(valid, "accepted an envelope breaking a field rule");
            assert_eq!(Some(&e.iv), iv.as_ref());
            assert_eq!(Some(&e.ct), ct.as_ref());
            assert_eq!(Some(&e.tag.to_vec()), tag.as_ref());
            assert_eq!(Some(&e.ek), ek.as_ref());
            assert_eq!(e.kid, kid);
            assert_eq!(e.alg, alg);
        }
        Err(e) => assert!(!valid, "refused a valid envelope: {e}"),
    }
}

fn seal(key: &[u8; 32], iv: &[u8], plaintext: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let mut buf = plaintext.to_vec();
    let key = GenericArray::from_slice(key);
    let tag = match iv.len() {
        12 => AesGcm::<Aes256, U12>::new(key).encrypt_in_place_detached(
            GenericArray::from_slice(iv),
            b"",
            &mut buf,
        ),
        _ => AesGcm::<Aes256, U16>::new(key).encrypt_in_place_detached(
            GenericArray::from_slice(iv),
            b"",
            &mut buf,
        ),
    }
    .expect("seals");
    (buf, tag.into())
}

fn sealed(key: &[u8; 32], iv: &[u8], plaintext: &[u8], flip: Option<u16>) {
    let (mut ct, mut tag) = seal(key, iv, plaintext);
    // through the parser, as it arrives
    let obj = json!({
        "alg": "HYBRID-RSA-AES-256",
        "iv": URL_SAFE_NO_PAD.encode(iv),
        "ct": URL_SAFE_NO_PAD.encode(&ct),
        "tag": URL_SAFE_NO_PAD.encode(tag),
        "ek": "AQ",
    });
    let enc = parsed(&obj).expect("a sealed envelope parses");
    let opened = envelope::open_payload(key, &enc).expect("a sealed payload opens");
    assert_eq!(opened.expose(), plaintext);
    if let Some(flip) = flip {
        let bit = 1u8 << (flip % 8);
        let at = usize::from(flip / 8) % (ct.len() + 16);
        if at < ct.len() {
            ct[at] ^= bit;
        } else {
            tag[at - ct.len()] ^= bit;
        }
        let changed = Encrypted { ct, tag, ..enc };
        assert!(matches!(
            envelope::open_payload(key, &changed),
            Err(EnvelopeError::PayloadDecryptFailed)
        ));
    }
}

fn open_any(key: &[u8; 32], iv: &[u8], ct: Vec<u8>, tag: [u8; 16]) {
    let enc = Encrypted {
        alg: ACCEPTED_ALGS[0].into(),
        iv: iv.to_vec(),
        ct: ct.clone(),
        tag,
        ek: vec![1],
        kid: None,
    };
    if let Ok(plain) = envelope::open_payload(key, &enc) {
        assert_eq!(seal(key, iv, plain.expose()), (ct, tag), "opened a forgery");
    }
}

const H: usize = 32;

fn mgf1_xor(seed: &[u8], out: &mut [u8]) {
    for (i, chunk) in out.chunks_mut(H).enumerate() {
        let mask = Sha256::new()
            .chain_update(seed)
            .chain_update((i as u32).to_be_bytes())
            .finalize();
        chunk.iter_mut().zip(mask).for_each(|(o, m)| *o ^= m);
    }
}

/// RFC 8017 §7.1.1 EME-OAEP encoding (SHA-256, empty label) with a given seed.
fn oaep_encode(k: usize, message: &[u8], seed: &[u8; 32]) -> Option<Vec<u8>> {
    if k < 2 * H + 2 || message.len() > k - 2 * H - 2 {
        return None;
    }
    let mut db = Sha256::digest([]).to_vec();
    db.resize(k - H - 1 - message.len() - 1, 0);
    db.push(1);
    db.extend_from_slice(message);
    let mut masked_seed = seed.to_vec();
    mgf1_xor(seed, &mut db);
    mgf1_xor(&db, &mut masked_seed);
    let mut em = vec![0u8];
    em.extend_from_slice(&masked_seed);
    em.extend_from_slice(&db);
    Some(em)
}

/// The seed a block carries (undoing the masks), as a decoder would find it.
fn seed_of(em: &[u8]) -> [u8; 32] {
    let mut seed: [u8; 32] = em[1..1 + H].try_into().expect("32 bytes");
    mgf1_xor(&em[1 + H..], &mut seed);
    seed
}

fn oaep_any(em: &[u8]) {
    if let Some(message) = oaep_decode(em) {
        let again = oaep_encode(em.len(), &message, &seed_of(em));
        assert_eq!(
            again.as_deref(),
            Some(em),
            "decoded a block that is not OAEP"
        );
    }
}

fn oaep_built(k: u16, message: &[u8], seed: &[u8; 32], corrupt: Option<(u16, u8)>) {
    // modulus sizes from the smallest block that holds an empty message to 4096 bits
    let k = 2 * H + 2 + usize::from(k) % (512 - 2 * H - 2 + 1);
    let message = &message[..message.len().min(k - 2 * H - 2)];
    let mut em = oaep_encode(k, message, seed).expect("fits");
    assert_eq!(
        oaep_decode(&em).as_deref().map(Vec::as_slice),
        Some(message),
        "a valid block did not decode to its message"
    );
    if let Some((at, x)) = corrupt {
        if x != 0 {
            em[usize::from(at) % k] ^= x;
            assert!(oaep_decode(&em).is_none(), "a corrupted block decoded");
        }
    }
}

#[derive(Arbitrary, Debug)]
struct GenShare {
    solana: bool,
    key: [u8; 32],
    /// Announce the key's own address (else another one).
    own_address: bool,
    other: [u8; 32],
    spelling: u8,
    field: u8,
    raw: Option<Vec<u8>>,
}

/// The address of `key` on `chain`, derived here (`None`: not a valid key).
fn address(solana: bool, key: &[u8; 32]) -> Option<String> {
    if solana {
        let pk = ed25519_dalek::SigningKey::from_bytes(key).verifying_key();
        Some(bs58::encode(pk.as_bytes()).into_string())
    } else {
        let sk = k256::ecdsa::SigningKey::from_bytes(key.into()).ok()?;
        let point = sk.verifying_key().to_encoded_point(false);
        let hash = alloy_primitives::keccak256(&point.as_bytes()[1..]);
        Some(format!("0x{}", hex::encode(&hash[12..])))
    }
}

fn share(s: &GenShare) {
    let chain = if s.solana { Chain::Solana } else { Chain::Evm };
    let own = address(s.solana, &s.key);
    let announced = if s.own_address {
        own.clone().unwrap_or_default()
    } else {
        address(s.solana, &s.other).unwrap_or_default()
    };
    let hex_key = hex::encode(s.key);
    let (text, well_formed) = match s.spelling % 5 {
        0 => (hex_key.clone(), true),
        1 => (format!("0x{hex_key}"), true),
        2 => (format!(" {} ", hex_key.to_uppercase()), true),
        3 => (hex_key[..62].to_owned(), false),
        _ => (format!("{hex_key}00"), false),
    };
    let (plaintext, field_ok) = match (&s.raw, s.field % 4) {
        (Some(raw), _) => (raw.clone(), false),
        (None, 0) => (
            serde_json::to_vec(&json!({ "secretShare": text })).unwrap(),
            true,
        ),
        (None, 1) => (
            serde_json::to_vec(&json!({ "secret_share": text })).unwrap(),
            true,
        ),
        (None, 2) => (
            serde_json::to_vec(&json!({ "secretShare": 7 })).unwrap(),
            false,
        ),
        (None, _) => (
            serde_json::to_vec(&json!({ "share": text })).unwrap(),
            false,
        ),
    };
    match classify(chain, &announced, &plaintext) {
        Classified::Local(k) => {
            // whatever the bytes were, only a key deriving the announced address is local
            let k: [u8; 32] = k.expose().try_into().expect("a 32-byte key");
            assert_eq!(address(s.solana, &k).as_deref(), Some(announced.as_str()));
            if s.raw.is_none() {
                assert_eq!(k, s.key);
            }
        }
        Classified::Mismatch => {
            assert!(s.raw.is_some() || (field_ok && well_formed && own.is_some()));
            if s.raw.is_none() {
                assert_ne!(own.as_deref(), Some(announced.as_str()));
            }
        }
        Classified::Mpc => {
            assert!(s.raw.is_some() || !(field_ok && well_formed && own.is_some()));
        }
    }
    if s.raw.is_none() && field_ok && well_formed && own.is_some() {
        let expect_local = own.as_deref() == Some(announced.as_str());
        let got_local = matches!(
            classify(chain, &announced, &plaintext),
            Classified::Local(_)
        );
        assert_eq!(got_local, expect_local);
    }
}
