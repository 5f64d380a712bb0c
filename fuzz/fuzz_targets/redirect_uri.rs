//! Redirect URIs: what a trailing wildcard accepts stays under it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::idp::oidc::redirect::verify_redirect_uri;
use portcullis::store::ClientRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(uri) = std::str::from_utf8(data) else {
        return;
    };
    let client = ClientRecord {
        redirect_uris: vec!["https://app.example.com/cb/*".into()],
        ..Default::default()
    };
    if let Some(accepted) = verify_redirect_uri(&client, Some(uri)) {
        let url = url_parse(&accepted);
        assert_eq!(url.0, "https");
        assert_eq!(url.1, "app.example.com");
        assert!(url.2.starts_with("/cb/"));
    }
});

/// (scheme, host, path) by hand, so the target does not need the url crate's version.
fn url_parse(u: &str) -> (&str, &str, &str) {
    let (scheme, rest) = u.split_once("://").expect("absolute");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host = rest[..end].split(':').next().unwrap_or("");
    (scheme, host, &rest[end..])
}
