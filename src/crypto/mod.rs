//! Cryptography: password hashing, secure random values and constant-time comparison.
//! Only well-kept crates do the maths; this module chooses parameters and formats.
//! It performs no I/O and never logs secret material.

pub mod jwt;
pub mod password;
pub mod random;

pub use random::{random_id, random_token};

/// Hex SHA-256, for values we store only hashed (cookie secrets).
pub fn sha256_hex(value: &str) -> String {
    <sha2::Sha256 as sha2::Digest>::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compare two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn constant_time_eq_compares() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
    }
}
