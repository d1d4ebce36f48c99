//! Policies loaded from configuration: every policy type deserializes from the same keys
//! the attributes use, validates on the way in, and serializes back unchanged.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use fastagentic::prelude::*;
use serde::de::DeserializeOwned;

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EndpointConfig {
    retry: RetryPolicy,
    circuit_breaker: CircuitBreakerPolicy,
    timeout: TimeoutPolicy,
    fallback: FallbackChain,
    rate_limit: RateLimitPolicy,
}

const CONFIG: &str = r#"{
    "retry": {"max_attempts": 4, "backoff": "linear", "initial_delay_ms": 250,
              "max_delay_ms": 5000, "jitter_factor": 0.1,
              "retry_on": ["rate_limit", "timeout", "overloaded"],
              "no_retry_on": ["quota_exceeded"], "max_retry_after_ms": 30000},
    "circuit_breaker": {"failure_threshold": 3, "failure_window_ms": 10000,
                        "reset_timeout_ms": 5000, "half_open_requests": 1,
                        "success_threshold": 2, "failure_on": ["server_error", "timeout"]},
    "timeout": {"total_ms": 60000, "llm_call_ms": 20000, "on_timeout": "warn"},
    "fallback": {"primary": "gpt-4o",
                 "then": [{"model": "gpt-4o-mini", "on": ["rate_limit", "timeout"]},
                          {"model": "claude-sonnet-4-5", "on": ["server_error"]}]},
    "rate_limit": {"requests_per_minute": 50, "tokens_per_minute": 100000,
                   "per_user_rpm": 10, "on_limit": "delay"}
}"#;

#[test]
fn a_whole_endpoint_configuration_loads_and_builds_a_pipeline() {
    let config: EndpointConfig = serde_json::from_str(CONFIG).unwrap();
    assert_eq!(config.retry.max_attempts(), 4);
    assert_eq!(config.retry.backoff(), Backoff::Linear);
    assert_eq!(config.circuit_breaker.failure_threshold(), 3);
    assert_eq!(config.timeout.on_timeout(), OnTimeout::Warn);
    assert_eq!(config.fallback.steps().len(), 2);
    assert_eq!(config.rate_limit.on_limit(), OnLimit::Delay);

    let round_trip = serde_json::to_value(&config).unwrap();
    let again: EndpointConfig = serde_json::from_value(round_trip.clone()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), round_trip);

    Pipeline::builder()
        .endpoint("/analyze")
        .retry(config.retry)
        .circuit_breaker(config.circuit_breaker)
        .timeout(config.timeout)
        .fallback(config.fallback)
        .rate_limit(config.rate_limit)
        .build()
        .unwrap();
}

fn error_of<T: DeserializeOwned>(json: &str) -> String {
    match serde_json::from_str::<T>(json) {
        Ok(_) => panic!("{json} should have been refused"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn bad_configuration_is_refused_with_the_field_named() {
    let cases = [
        (
            error_of::<RetryPolicy>(r#"{"max_attempts": 0}"#),
            "max_attempts",
        ),
        (
            error_of::<RetryPolicy>(r#"{"jitter_factor": 2.0}"#),
            "jitter_factor",
        ),
        (error_of::<RetryPolicy>(r#"{"backoff": "cubic"}"#), "cubic"),
        (
            error_of::<RetryPolicy>(r#"{"retry_on": ["rate_limited"]}"#),
            "rate_limit, quota_exceeded",
        ),
        (
            error_of::<CircuitBreakerPolicy>(r#"{"half_open_requests": 0}"#),
            "half_open_requests",
        ),
        (
            error_of::<CircuitBreakerPolicy>(r#"{"failure_window_ms": 0}"#),
            "failure_window_ms",
        ),
        (error_of::<TimeoutPolicy>(r#"{"total_ms": 0}"#), "total_ms"),
        (
            error_of::<TimeoutPolicy>(r#"{"on_timeout": "abort"}"#),
            "abort",
        ),
        (
            error_of::<RateLimitPolicy>(r#"{"per_tenant_tpm": 0}"#),
            "per_tenant_tpm",
        ),
        (
            error_of::<RateLimitPolicy>(r#"{"requests_per_min": 5}"#),
            "requests_per_minute",
        ),
        (
            error_of::<FallbackChain>(
                r#"{"primary": "a", "then": [{"model": "a", "on": ["timeout"]}]}"#,
            ),
            "appears twice",
        ),
    ];
    for (message, needle) in cases {
        assert!(
            message.contains(needle),
            "{message:?} should mention {needle:?}"
        );
    }
}
