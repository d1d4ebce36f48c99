//! Error classification from arbitrary status, headers and body, as a provider's error
//! answer or as an error event inside a stream: never a panic, always a named class.
#![no_main]

use fastagentic::AgentError;
use fastagentic::ErrorClass;
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    // Any status a server could send, 100..=599.
    let status = 100 + u16::from_le_bytes(*status) % 500;
    let err = AgentError::from_http(status, &HeaderMap::new(), body);
    assert_eq!(err.status(), Some(status));
    let class = err.class();
    assert_eq!(class.as_str().parse::<ErrorClass>(), Ok(class));

    let streamed = AgentError::from_stream_error(body);
    assert_eq!(
        streamed.status(),
        None,
        "a stream error has no status of its own"
    );
    let _ = streamed.retry_after();
});
