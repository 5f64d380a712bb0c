//! JWS parsing and verification: any text is an error or claims, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::crypto::jwt;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = jwt::decode_header(text);
    let _ = jwt::decode_unverified::<serde_json::Value>(text);
    let _ = jwt::verify_hs256::<serde_json::Value>(text, b"fuzz-secret");
});
