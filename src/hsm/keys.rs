//! Key objects in the token: templates, generation, discovery by label, attribute checks.
//!
//! keyward keeps exactly two kinds of token objects: RSA key pairs for the webhook
//! envelope (`<prefix>-rsa-N`) and AES-256 wrapping keys (`<prefix>-wrap-N`); N is the
//! version. Never per-wallet objects: `C_FindObjects` slows down with object count.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{BigUint, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::error::{classify, HsmError};

/// Which kind of keyward key an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA private key for webhook envelopes.
    Rsa,
    /// AES-256 key wrapping delegated material.
    Wrap,
}

impl KeyKind {
    fn infix(self) -> &'static str {
        match self {
            KeyKind::Rsa => "rsa",
            KeyKind::Wrap => "wrap",
        }
    }

    /// The label of version `n` under `prefix`.
    pub fn label(self, prefix: &str, n: u32) -> String {
        format!("{prefix}-{}-{n}", self.infix())
    }

    /// The version encoded in `label`, if it is one of ours.
    pub fn version_of(self, prefix: &str, label: &str) -> Option<u32> {
        let rest = label.strip_prefix(prefix)?.strip_prefix('-')?;
        let n = rest.strip_prefix(self.infix())?.strip_prefix('-')?;
        n.parse().ok().filter(|v| *v > 0)
    }
}

/// A key found in the token, with its checked attributes (never its value).
#[derive(Debug, Clone)]
pub struct KeyObject {
    /// Label.
    pub label: String,
    /// Kind.
    pub kind: KeyKind,
    /// Version from the label.
    pub version: u32,
    pub(crate) handle: ObjectHandle,
    /// Attribute names and values that were checked.
    pub attributes: Vec<(&'static str, bool)>,
    /// RSA only: the public key.
    pub public: Option<RsaPublicKey>,
}

impl KeyObject {
    /// RSA only: SPKI PEM of the public key.
    pub fn public_pem(&self) -> Option<String> {
        self.public
            .as_ref()
            .and_then(|p| p.to_public_key_pem(LineEnding::LF).ok())
    }

    /// RSA only: short fingerprint `sha256:<16 hex>` of the SPKI DER; the kid an operator sees.
    pub fn fingerprint(&self) -> Option<String> {
        let der = self.public.as_ref()?.to_public_key_der().ok()?;
        Some(fingerprint_of(der.as_bytes()))
    }
}

/// `sha256:` and the first 8 bytes, hex, of SHA-256 over SPKI DER.
pub fn fingerprint_of(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(&Sha256::digest(spki_der)[..8]))
}

fn common_private(label: &str, id: u32) -> Vec<Attribute> {
    vec![
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_be_bytes().to_vec()),
        Attribute::Sign(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]
}

/// Generates an RSA key pair: private key decrypt-only, sensitive, never extractable.
pub(crate) fn generate_rsa(
    session: &Session,
    label: &str,
    id: u32,
    bits: u32,
) -> Result<ObjectHandle, HsmError> {
    let public = vec![
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.to_be_bytes().to_vec()),
        Attribute::ModulusBits((bits as u64).into()),
        Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
        Attribute::Encrypt(true),
        Attribute::Verify(false),
        Attribute::Wrap(false),
    ];
    let mut private = common_private(label, id);
    private.push(Attribute::Decrypt(true));
    let (_, private) = session
        .generate_key_pair(&Mechanism::RsaPkcsKeyPairGen, &public, &private)
        .map_err(classify)?;
    Ok(private)
}

/// Generates an AES-256 key: encrypt/decrypt only, sensitive, never extractable.
pub(crate) fn generate_wrap(
    session: &Session,
    label: &str,
    id: u32,
) -> Result<ObjectHandle, HsmError> {
    let mut template = common_private(label, id);
    template.extend([
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
        Attribute::ValueLen(32u64.into()),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Verify(false),
    ]);
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(classify)
}

fn search_template(kind: KeyKind) -> Vec<Attribute> {
    // CKA_TOKEN: our own session copies of the wrapping keys are visible here too
    let mut t = vec![Attribute::Token(true)];
    t.extend(match kind {
        KeyKind::Rsa => vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::RSA),
        ],
        KeyKind::Wrap => vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
        ],
    });
    t
}

/// Finds and checks every keyward key of `kind`, oldest version first.
pub(crate) fn discover(
    session: &Session,
    prefix: &str,
    kind: KeyKind,
) -> Result<Vec<KeyObject>, HsmError> {
    let handles = session
        .find_objects(&search_template(kind))
        .map_err(classify)?;
    let mut out: Vec<KeyObject> = Vec::new();
    for handle in handles {
        let label = read_label(session, handle)?;
        if let Some(version) = kind.version_of(prefix, &label) {
            // two objects under one label: which one decrypts, which one wraps? An
            // object planted beside ours must stop the start, not be picked at random
            if out.iter().any(|k| k.version == version) {
                return Err(HsmError::KeyAttributes {
                    label,
                    problem: "more than one object carries this label (or version); remove the one keyward did not generate".into(),
                });
            }
            out.push(inspect(session, handle, label, kind, version)?);
        }
    }
    out.sort_by_key(|k| k.version);
    Ok(out)
}

/// The labels of every keyward key of `kind` in the token (labels only: cheap enough to
/// ask per webhook delivery, unlike [`discover`], which reads and checks every attribute).
pub(crate) fn labels(
    session: &Session,
    prefix: &str,
    kind: KeyKind,
) -> Result<Vec<String>, HsmError> {
    let handles = session
        .find_objects(&search_template(kind))
        .map_err(classify)?;
    let mut out = Vec::new();
    for handle in handles {
        let label = read_label(session, handle)?;
        if kind.version_of(prefix, &label).is_some() {
            out.push(label);
        }
    }
    Ok(out)
}

fn read_label(session: &Session, handle: ObjectHandle) -> Result<String, HsmError> {
    let attrs = session
        .get_attributes(handle, &[AttributeType::Label])
        .map_err(classify)?;
    Ok(attrs
        .into_iter()
        .find_map(|a| match a {
            Attribute::Label(l) => Some(String::from_utf8_lossy(&l).into_owned()),
            _ => None,
        })
        .unwrap_or_default())
}

/// The attribute values keyward requires of each kind; anything else refuses to start.
fn required(kind: KeyKind) -> &'static [(&'static str, AttributeType, bool)] {
    use AttributeType as A;
    const RSA: &[(&str, AttributeType, bool)] = &[
        ("CKA_TOKEN", A::Token, true),
        ("CKA_PRIVATE", A::Private, true),
        ("CKA_SENSITIVE", A::Sensitive, true),
        ("CKA_EXTRACTABLE", A::Extractable, false),
        // generated inside the token and never known outside it: an imported key, or
        // one that was once extractable, may exist in a copy elsewhere
        ("CKA_ALWAYS_SENSITIVE", A::AlwaysSensitive, true),
        ("CKA_NEVER_EXTRACTABLE", A::NeverExtractable, true),
        ("CKA_LOCAL", A::Local, true),
        ("CKA_DECRYPT", A::Decrypt, true),
        ("CKA_SIGN", A::Sign, false),
        ("CKA_UNWRAP", A::Unwrap, false),
        ("CKA_DERIVE", A::Derive, false),
    ];
    const WRAP: &[(&str, AttributeType, bool)] = &[
        ("CKA_TOKEN", A::Token, true),
        ("CKA_PRIVATE", A::Private, true),
        ("CKA_SENSITIVE", A::Sensitive, true),
        ("CKA_EXTRACTABLE", A::Extractable, false),
        ("CKA_ALWAYS_SENSITIVE", A::AlwaysSensitive, true),
        ("CKA_NEVER_EXTRACTABLE", A::NeverExtractable, true),
        ("CKA_LOCAL", A::Local, true),
        ("CKA_ENCRYPT", A::Encrypt, true),
        ("CKA_DECRYPT", A::Decrypt, true),
        ("CKA_WRAP", A::Wrap, false),
        ("CKA_UNWRAP", A::Unwrap, false),
        ("CKA_SIGN", A::Sign, false),
        ("CKA_DERIVE", A::Derive, false),
    ];
    match kind {
        KeyKind::Rsa => RSA,
        KeyKind::Wrap => WRAP,
    }
}

fn bool_attr(a: &Attribute) -> Option<(AttributeType, bool)> {
    Some(match a {
        Attribute::Token(v) => (AttributeType::Token, *v),
        Attribute::Private(v) => (AttributeType::Private, *v),
        Attribute::Sensitive(v) => (AttributeType::Sensitive, *v),
        Attribute::Extractable(v) => (AttributeType::Extractable, *v),
        Attribute::Decrypt(v) => (AttributeType::Decrypt, *v),
        Attribute::Encrypt(v) => (AttributeType::Encrypt, *v),
        Attribute::Sign(v) => (AttributeType::Sign, *v),
        Attribute::Wrap(v) => (AttributeType::Wrap, *v),
        Attribute::Unwrap(v) => (AttributeType::Unwrap, *v),
        Attribute::Derive(v) => (AttributeType::Derive, *v),
        Attribute::AlwaysSensitive(v) => (AttributeType::AlwaysSensitive, *v),
        Attribute::NeverExtractable(v) => (AttributeType::NeverExtractable, *v),
        Attribute::Local(v) => (AttributeType::Local, *v),
        _ => return None,
    })
}

fn inspect(
    session: &Session,
    handle: ObjectHandle,
    label: String,
    kind: KeyKind,
    version: u32,
) -> Result<KeyObject, HsmError> {
    let wanted = required(kind);
    let mut types: Vec<AttributeType> = wanted.iter().map(|(_, t, _)| *t).collect();
    if kind == KeyKind::Rsa {
        types.extend([AttributeType::Modulus, AttributeType::PublicExponent]);
    } else {
        types.push(AttributeType::ValueLen);
    }
    let attrs = session.get_attributes(handle, &types).map_err(classify)?;
    let mut checked = Vec::new();
    for (name, ty, want) in wanted {
        let got = attrs
            .iter()
            .filter_map(bool_attr)
            .find(|(t, _)| t == ty)
            .map(|(_, v)| v);
        match got {
            Some(v) if v == *want => checked.push((*name, v)),
            other => {
                return Err(HsmError::KeyAttributes {
                    label,
                    problem: format!("{name} is {other:?}, required {want}"),
                })
            }
        }
    }
    let public = match kind {
        KeyKind::Rsa => Some(rsa_public(&attrs, &label)?),
        KeyKind::Wrap => {
            check_aes_len(&attrs, &label)?;
            None
        }
    };
    Ok(KeyObject {
        label,
        kind,
        version,
        handle,
        attributes: checked,
        public,
    })
}

fn rsa_public(attrs: &[Attribute], label: &str) -> Result<RsaPublicKey, HsmError> {
    let n = attrs.iter().find_map(|a| match a {
        Attribute::Modulus(m) => Some(BigUint::from_bytes_be(m)),
        _ => None,
    });
    let e = attrs.iter().find_map(|a| match a {
        Attribute::PublicExponent(e) => Some(BigUint::from_bytes_be(e)),
        _ => None,
    });
    let bad = |problem: &str| HsmError::KeyAttributes {
        label: label.into(),
        problem: problem.into(),
    };
    let (n, e) = n
        .zip(e)
        .ok_or_else(|| bad("modulus or public exponent unreadable"))?;
    let key = RsaPublicKey::new(n, e).map_err(|_| bad("not a valid RSA public key"))?;
    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
    if bits < 3072 {
        return Err(bad(&format!("{bits}-bit modulus, at least 3072 required")));
    }
    Ok(key)
}

fn check_aes_len(attrs: &[Attribute], label: &str) -> Result<(), HsmError> {
    let len = attrs.iter().find_map(|a| match a {
        Attribute::ValueLen(l) => Some(u64::from(*l)),
        _ => None,
    });
    if len != Some(32) {
        return Err(HsmError::KeyAttributes {
            label: label.into(),
            problem: format!("CKA_VALUE_LEN is {len:?}, required 32 (AES-256)"),
        });
    }
    Ok(())
}

/// Destroys the token objects (private and public) carrying `label`.
pub(crate) fn destroy_label(session: &Session, label: &str) -> Result<usize, HsmError> {
    let handles = session
        .find_objects(&[Attribute::Label(label.as_bytes().to_vec())])
        .map_err(classify)?;
    for h in &handles {
        session.destroy_object(*h).map_err(classify)?;
    }
    Ok(handles.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        assert_eq!(KeyKind::Rsa.label("keyward", 3), "keyward-rsa-3");
        assert_eq!(KeyKind::Rsa.version_of("keyward", "keyward-rsa-3"), Some(3));
        assert_eq!(KeyKind::Wrap.version_of("keyward", "keyward-rsa-3"), None);
        assert_eq!(KeyKind::Wrap.version_of("keyward", "keyward-wrap-0"), None);
        assert_eq!(KeyKind::Wrap.version_of("kw", "keyward-wrap-1"), None);
        assert_eq!(KeyKind::Wrap.version_of("keyward", "keyward-wrap-x"), None);
    }
}
