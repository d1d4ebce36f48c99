//! The expression form of every policy: a policy value, a builder, or the `Result` of
//! building one, evaluated when the endpoint's policies are built. An expression whose
//! policy is invalid surfaces from `policies()` and from a direct call.

use std::time::Duration;

use fastagentic::prelude::*;
use fastagentic::reliability::PolicyError;

/// Policies often come from configuration; here, from JSON.
fn retry_from_config() -> RetryPolicy {
    serde_json::from_str(r#"{"max_attempts": 5, "backoff": "fixed"}"#).expect("valid config")
}

fn timeout_policy() -> Result<TimeoutPolicy, PolicyError> {
    TimeoutPolicy::builder()
        .total(Duration::from_secs(9))
        .build()
}

const LIMIT: u32 = 42;

#[agent_endpoint(
    path = "/expr",
    retry = retry_from_config(),
    circuit_breaker = CircuitBreakerPolicy::builder().failure_threshold(2),
    timeout = timeout_policy(),
    fallback = FallbackChain::builder("mock/a").then("mock/b", ClassSet::of(&[ErrorClass::Timeout])),
    rate_limit = RateLimitPolicy::builder().requests_per_minute(LIMIT).build(),
)]
async fn expr(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

/// Declarative and expression forms mix freely.
#[agent_endpoint(path = "/expr/mixed", retry(max_attempts = 2), timeout = TimeoutPolicy::default())]
async fn mixed() -> Result<(), AgentError> {
    Ok(())
}

/// Checked only when built: `max_attempts(0)` is refused by the builder at run time.
#[agent_endpoint(path = "/expr/invalid", retry = RetryPolicy::builder().max_attempts(0))]
async fn invalid() -> Result<(), AgentError> {
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let policies = fastagentic::endpoint::find("/expr")
        .expect("registered")
        .policies()
        .expect("valid policies");
    let retry = policies.retry.expect("retry");
    assert_eq!((retry.max_attempts(), retry.backoff()), (5, Backoff::Fixed));
    assert_eq!(
        policies
            .circuit_breaker
            .expect("breaker")
            .failure_threshold(),
        2
    );
    assert_eq!(
        policies
            .timeout
            .expect("timeout")
            .limit(fastagentic::reliability::Stage::Total),
        Duration::from_secs(9)
    );
    assert_eq!(
        policies
            .fallback
            .expect("fallback")
            .models()
            .collect::<Vec<_>>(),
        ["mock/a", "mock/b"]
    );
    assert!(policies.rate_limit.is_some());
    assert_eq!(
        expr(AgentContext::detached("x")).await.expect("runs"),
        "mock/a"
    );

    let mixed_policies = fastagentic::endpoint::find("/expr/mixed")
        .expect("registered")
        .policies()
        .expect("valid policies");
    assert_eq!(mixed_policies.retry.expect("retry").max_attempts(), 2);
    mixed().await.expect("runs");

    let endpoint = fastagentic::endpoint::find("/expr/invalid").expect("registered");
    let err = endpoint
        .policies()
        .expect_err("max_attempts = 0 is refused");
    assert!(err.to_string().contains("max_attempts"), "{err}");
    let err = invalid().await.expect_err("the pipeline cannot be built");
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(err.to_string().contains("/expr/invalid"), "{err}");
}
