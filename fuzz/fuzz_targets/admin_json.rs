//! The admin API's request bodies: any bytes given as a realm, user, client, client scope,
//! role or group representation are read or refused, never a panic; a user that reads
//! and applies shows a representation that reads back as the same user.
#![no_main]
use libfuzzer_sys::fuzz_target;
use portcullis::idp::admin::repr::{
    user_repr, ClientInput, ClientScopeInput, GroupInput, RealmInput, RoleInput, UserInput,
};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<RealmInput>(data);
    let _ = serde_json::from_slice::<ClientInput>(data);
    let _ = serde_json::from_slice::<ClientScopeInput>(data);
    let _ = serde_json::from_slice::<RoleInput>(data);
    let _ = serde_json::from_slice::<GroupInput>(data);
    if let Ok(input) = serde_json::from_slice::<UserInput>(data) {
        let mut user = portcullis::store::UserRecord::default();
        if input.apply(&mut user, true).is_ok() {
            let shown = user_repr(&user, false);
            let back: UserInput = serde_json::from_value(shown.clone()).expect("reads back");
            let mut again = portcullis::store::UserRecord {
                id: user.id.clone(),
                ..Default::default()
            };
            back.apply(&mut again, true).expect("applies again");
            assert_eq!(user_repr(&again, false), shown);
        }
    }
});
