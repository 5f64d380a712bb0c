//! Route matching of the IdP's endpoints: any path is answered, and a path that names a
//! realm gives back that realm's name as it was written, decoded once.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let router = portcullis::idp::endpoints::Router::new();
    let _ = router.find(path);
    if !path.contains(['/', '%']) && !path.is_empty() {
        let discovery = format!("/realms/{path}/.well-known/openid-configuration");
        if let Some((_, params)) = router.find(&discovery) {
            assert_eq!(params.realm, path);
        }
    }
});
