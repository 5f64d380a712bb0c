//! The LDAP filter builder: whatever a user types stays one escaped assertion.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::idp::ldap::filter::{equals, valid_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    let f = equals("uid", name);
    assert!(valid_filter(&f), "{f}");
    let inner = &f["(uid=".len()..f.len() - 1];
    assert!(!inner.contains(['(', ')', '*', '\0']), "{f}");
});
