//! EME-OAEP decoding (RFC 8017 §7.1.2) with SHA-256, MGF1-SHA-256 and an empty label,
//! applied on the host to the output of a raw RSA operation done inside the token.
//!
//! Why by hand: the `rsa` crate decodes OAEP only inside its own private-key decryption,
//! with no public API for an encoded block produced elsewhere (here, by `CKM_RSA_X_509`
//! in the token, because SoftHSM2 2.6.1 refuses OAEP-SHA256 parameters). The checks are
//! done without branches on secret data, and every failure is the same error, so the
//! caller learns nothing but "invalid".

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroizing;

const H_LEN: usize = 32;

/// SHA-256 of the empty label.
fn empty_label_hash() -> [u8; H_LEN] {
    Sha256::digest([]).into()
}

/// MGF1 with SHA-256: XORs the mask derived from `seed` into `out`.
fn mgf1_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in out.chunks_mut(H_LEN).enumerate() {
        let mut h = Sha256::new();
        h.update(seed);
        h.update((counter as u32).to_be_bytes());
        let mask = h.finalize();
        for (o, m) in chunk.iter_mut().zip(mask.iter()) {
            *o ^= m;
        }
    }
}

/// Decodes an encoded message `em` of exactly the modulus length `k`.
/// Returns the message, or `None` for any malformation.
pub fn decode(em: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let k = em.len();
    if k < 2 * H_LEN + 2 {
        return None;
    }
    let mut buf = Zeroizing::new(em.to_vec());
    let (y, rest) = buf.split_at_mut(1);
    let (seed, db) = rest.split_at_mut(H_LEN);
    mgf1_xor(db, seed);
    mgf1_xor(seed, db);

    let mut good = y[0].ct_eq(&0);
    good &= db[..H_LEN].ct_eq(&empty_label_hash());

    // Find the 0x01 separator after the zero padding without branching on the data:
    // `looking` stays set while only zeros have been seen.
    let mut looking = subtle::Choice::from(1u8);
    let mut index: u32 = 0;
    for (i, &b) in db.iter().enumerate().skip(H_LEN) {
        let is_one = b.ct_eq(&1);
        let is_zero = b.ct_eq(&0);
        index.conditional_assign(&(i as u32), looking & is_one);
        // a byte that is neither 0 nor 1 while still looking is a bad padding
        good &= !(looking & !is_zero & !is_one);
        looking &= !is_one;
    }
    // found at all; the scan started after lHash, so the index is past it (an empty PS,
    // the longest message, puts the separator right after lHash)
    good &= !looking;

    if bool::from(good) {
        Some(Zeroizing::new(db[index as usize + 1..].to_vec()))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    use rsa::{BigUint, Oaep, RsaPrivateKey, RsaPublicKey};

    fn raw_decrypt(key: &RsaPrivateKey, ct: &[u8]) -> Vec<u8> {
        // textbook RSA on the host stands in for CKM_RSA_X_509 in these unit tests
        let c = BigUint::from_bytes_be(ct);
        let m = c.modpow(key.d(), key.n());
        let mut out = m.to_bytes_be();
        let k = key.size();
        let mut padded = vec![0u8; k - out.len()];
        padded.append(&mut out);
        padded
    }

    #[test]
    fn decodes_what_the_rsa_crate_encodes() {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let public = RsaPublicKey::from(&key);
        for len in [0usize, 1, 32, 100, 190] {
            let msg: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            let ct = public
                .encrypt(&mut rng, Oaep::new::<Sha256>(), &msg)
                .unwrap();
            let em = raw_decrypt(&key, &ct);
            assert_eq!(decode(&em).unwrap().as_slice(), msg.as_slice(), "len {len}");
        }
    }

    #[test]
    fn refuses_malformed_blocks() {
        let mut rng = rand::thread_rng();
        let key = RsaPrivateKey::new(&mut rng, 2048).unwrap();
        let public = RsaPublicKey::from(&key);
        let ct = public
            .encrypt(&mut rng, Oaep::new::<Sha256>(), b"k")
            .unwrap();
        let em = raw_decrypt(&key, &ct);
        for pos in [0usize, 1, 40, 100, em.len() - 1] {
            let mut bad = em.clone();
            bad[pos] ^= 0x01;
            assert!(decode(&bad).is_none(), "flip at {pos}");
        }
        assert!(decode(&em[..60]).is_none());
        // OAEP with another hash is another scheme and must not decode
        let other = public
            .encrypt(&mut rng, Oaep::new::<sha2::Sha224>(), b"k")
            .unwrap();
        assert!(decode(&raw_decrypt(&key, &other)).is_none());
    }
}
