//! OAuth request parameters (query and form body): any bytes are answered; what is read
//! has no name twice, and a request whose query repeats a body parameter is refused.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (query, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&data[..0], data),
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = format!("/t?{}", query.replace(['#', ' '], ""));
    let Ok(request) = http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::copy_from_slice(body))
    else {
        return;
    };
    if let Ok(read) = portcullis::idp::oidc::parameters(&request) {
        // The body repeated in the query names every parameter twice.
        if !read.is_empty() && std::str::from_utf8(body).is_ok_and(|b| !b.contains(['#', ' ']))
        {
            let twice = http::Request::builder()
                .method("POST")
                .uri(format!("/t?{}", std::str::from_utf8(body).unwrap()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(bytes::Bytes::copy_from_slice(body));
            if let Ok(twice) = twice {
                assert!(portcullis::idp::oidc::parameters(&twice).is_err());
            }
        }
    }
});
