//! kcadm's `-s NAME=VALUE`: applied or refused with a message, never a panic; what it
//! prints reads back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::kcadm::json::{apply, parse_set, pretty};

fuzz_target!(|data: &[u8]| {
    let Ok(arg) = std::str::from_utf8(data) else {
        return;
    };
    let mut target = serde_json::json!({"a": [1, {"b": "c"}], "d": {"e": null}});
    if let Ok(op) = parse_set(arg) {
        let _ = apply(&mut target, &[op]);
    }
    let printed = pretty(&target);
    let back: serde_json::Value = serde_json::from_str(&printed).expect("printed JSON parses");
    assert_eq!(back, target);
});
