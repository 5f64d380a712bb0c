//! Secure random identifiers and tokens, from the operating system's generator.

use base64::Engine;
use rand::RngCore;

/// A new UUID (v4) string: the id of every stored record, as in Keycloak.
pub fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `bytes` random bytes, base64url without padding (cookies, codes, secrets).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_sized() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
        assert_eq!(random_id().len(), 36);
    }
}
