//! Secrets: device, dispatcher and integration tokens and enrollment codes. Only SHA-256 hashes are
//! stored; the secret itself is shown once and never logged.

use rand::Rng;
use sha2::{Digest, Sha256};

/// A freshly generated secret and the hash to store.
pub struct Secret {
    pub plain: String,
    pub hash: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("plain", &"<redacted>")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Hex SHA-256 of a secret, the only form that is stored or compared.
pub fn hash_secret(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.trim().as_bytes()))
}

fn generate(prefix: &str, bytes: usize, rng: &mut impl Rng) -> Secret {
    let mut raw = vec![0u8; bytes];
    rng.fill(raw.as_mut_slice());
    let plain = format!("{prefix}{}", hex::encode(raw));
    let hash = hash_secret(&plain);
    Secret { plain, hash }
}

/// A device bearer token (256 bits).
pub fn new_device_token(rng: &mut impl Rng) -> Secret {
    generate("dsd_", 32, rng)
}

/// A dispatcher bearer token (256 bits).
pub fn new_dispatcher_token(rng: &mut impl Rng) -> Secret {
    generate("dsp_", 32, rng)
}

/// An integration bearer token (256 bits): one shipper's systems.
pub fn new_integration_token(rng: &mut impl Rng) -> Secret {
    generate("dsi_", 32, rng)
}

/// A one-time enrollment code, short enough to type: 4 groups of 4 from an unambiguous alphabet
/// (about 77 bits).
pub fn new_enrollment_code(rng: &mut impl Rng) -> Secret {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..4)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
                .collect()
        })
        .collect();
    let plain = groups.join("-");
    let hash = hash_secret(&normalise_code(&plain));
    Secret { plain, hash }
}

/// Enrollment codes are typed by people: ignore case, spaces and dashes.
pub fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The `Authorization: Bearer …` value, if present and well formed.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let v = header?.strip_prefix("Bearer ")?.trim();
    (!v.is_empty()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hashed_and_debug_redacts() {
        let mut rng = rand::rng();
        let s = new_device_token(&mut rng);
        assert_eq!(s.hash, hash_secret(&s.plain));
        assert!(!format!("{s:?}").contains(&s.plain));
    }

    #[test]
    fn enrollment_codes_forgive_typing() {
        let mut rng = rand::rng();
        let s = new_enrollment_code(&mut rng);
        let typed = s.plain.to_lowercase().replace('-', " ");
        assert_eq!(hash_secret(&normalise_code(&typed)), s.hash);
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
