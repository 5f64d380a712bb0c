//! Path normalisation: idempotent, never above the root, nothing refused left in.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::http::path::normalise;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(normal) = normalise(path) {
        let again = normalise(&normal).expect("a normal path normalises");
        assert_eq!(again.as_ref(), normal.as_ref());
        assert!(normal.starts_with('/'));
        assert!(!normal.split('/').any(|s| s == ".." || s == "."));
        let upper = normal.to_ascii_uppercase();
        assert!(!upper.contains("%2F") && !upper.contains("%5C") && !upper.contains('\\'));
    }
});
