//! Retry hints from arbitrary headers: `name: value` lines. Garbage never panics, and a
//! hint that does parse is a delay a client could honour.
#![no_main]

use std::time::{Duration, SystemTime};

use fastagentic::error::RetryHints;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let hints = RetryHints::from_headers(&headers, now);
    // The same headers read at the same instant say the same thing.
    assert_eq!(hints, RetryHints::from_headers(&headers, now));
    if headers.contains_key("retry-after-ms") || headers.contains_key("retry-after") {
        let _ = hints.retry_after();
    } else {
        assert_eq!(
            hints.retry_after_header, None,
            "a delay from no delay header"
        );
    }
});
