//! Every key of every policy at once, each with a non-default value, compared with the
//! same policies built by hand through the builders: a key wired to the wrong setter, or
//! a value converted wrongly, fails here.

use std::time::Duration;

use fastagentic::prelude::*;
use fastagentic::reliability::RetryBudgetPolicy;

#[derive(Deserialize, Clone)]
struct Question {
    text: String,
}

/// Not the description: `description = ...` wins over the doc comment.
#[agent_endpoint(
    path = "/all/keys",
    name = "all_keys_endpoint",
    description = "Every key at once",
    model = "gpt-4o",
    stream = true,
    durable = false,
    retry(max_attempts = 4, backoff = "linear", initial_delay_ms = 200, max_delay_ms = 5_000,
          multiplier = 3.0, jitter = false, jitter_factor = 0.1, retry_on = ["rate_limit", "timeout"],
          no_retry_on = ["timeout"], max_retry_after_ms = 10_000, overload_limit = 2,
          context_overflow_floor = 2000,
          budget(ttl_ms = 5_000, min_retries_per_sec = 3, retry_ratio = 0.5)),
    circuit_breaker(failure_threshold = 4, failure_window_ms = 20_000, reset_timeout_ms = 5_000,
                    half_open_requests = 1, success_threshold = 2,
                    failure_on = ["timeout", "server_error"], failure_rate_threshold = 0.5,
                    minimum_calls = 10, slow_call_ms = 8_000),
    circuit_breaker_for("claude-sonnet-4-5", failure_threshold = 3),
    circuit_breaker_for("gpt-4o-mini", reset_timeout_ms = 60_000, failure_on = ["overloaded"]),
    timeout(total_ms = 90_000, llm_call_ms = 20_000, stream_idle_ms = 10_000, tool_call_ms = 15_000,
            checkpoint_ms = 2_000, on_timeout = "warn"),
    fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["rate_limit", "timeout"]),
             then("claude-sonnet-4-5", on = ["server_error"])),
    rate_limit(requests_per_minute = 50, tokens_per_minute = 100_000, per_user_rpm = 10,
               per_user_tpm = 20_000, per_tenant_rpm = 30, per_tenant_tpm = 60_000,
               on_limit = "queue", queue_capacity = 16, token_estimate = 500),
)]
async fn all_keys(ctx: AgentContext, q: Question) -> Result<String, AgentError> {
    Ok(format!("{}: {}", ctx.model(), q.text))
}

/// `budget = false` turns the retry budget off; `budget = true` keeps its defaults.
#[agent_endpoint(path = "/all/no_budget", retry(budget = false))]
async fn no_budget() -> Result<(), AgentError> {
    Ok(())
}

#[agent_endpoint(path = "/all/default_budget", retry(budget = true))]
async fn default_budget() -> Result<(), AgentError> {
    Ok(())
}

/// Empty lists: every policy with its defaults.
#[agent_endpoint(
    path = "/all/defaults",
    retry(),
    circuit_breaker(),
    circuit_breaker_for("gpt-4o"),
    timeout(),
    fallback(primary = "gpt-4o"),
    rate_limit()
)]
async fn defaults() -> Result<(), AgentError> {
    Ok(())
}

fn classes(list: &[ErrorClass]) -> ClassSet {
    ClassSet::of(list)
}

fn by_hand()
-> Result<fastagentic::endpoint::EndpointPolicies, fastagentic::reliability::PolicyError> {
    let mut policies = fastagentic::endpoint::EndpointPolicies::default();
    policies.retry = Some(
        RetryPolicy::builder()
            .max_attempts(4)
            .backoff(Backoff::Linear)
            .initial_delay(Duration::from_millis(200))
            .max_delay(Duration::from_millis(5_000))
            .multiplier(3.0)
            .jitter(false)
            .jitter_factor(0.1)
            .retry_on(classes(&[ErrorClass::RateLimit, ErrorClass::Timeout]))
            .no_retry_on(classes(&[ErrorClass::Timeout]))
            .max_retry_after(Duration::from_millis(10_000))
            .overload_limit(2)
            .context_overflow_floor(2000)
            .budget(Some(RetryBudgetPolicy {
                ttl: Duration::from_millis(5_000),
                min_retries_per_sec: 3,
                retry_ratio: 0.5,
            }))
            .build()?,
    );
    policies.circuit_breaker = Some(
        CircuitBreakerPolicy::builder()
            .failure_threshold(4)
            .failure_window(Duration::from_millis(20_000))
            .reset_timeout(Duration::from_millis(5_000))
            .half_open_requests(1)
            .success_threshold(2)
            .failure_on(classes(&[ErrorClass::Timeout, ErrorClass::ServerError]))
            .failure_rate_threshold(0.5, 10)
            .slow_call(Duration::from_millis(8_000))
            .build()?,
    );
    policies.circuit_breakers = vec![
        (
            "claude-sonnet-4-5".to_owned(),
            CircuitBreakerPolicy::builder()
                .failure_threshold(3)
                .build()?,
        ),
        (
            "gpt-4o-mini".to_owned(),
            CircuitBreakerPolicy::builder()
                .reset_timeout(Duration::from_millis(60_000))
                .failure_on(classes(&[ErrorClass::Overloaded]))
                .build()?,
        ),
    ];
    policies.timeout = Some(
        TimeoutPolicy::builder()
            .total(Duration::from_millis(90_000))
            .llm_call(Duration::from_millis(20_000))
            .stream_idle(Duration::from_millis(10_000))
            .tool_call(Duration::from_millis(15_000))
            .checkpoint(Duration::from_millis(2_000))
            .on_timeout(OnTimeout::Warn)
            .build()?,
    );
    policies.fallback = Some(
        FallbackChain::builder("gpt-4o")
            .then(
                "gpt-4o-mini",
                classes(&[ErrorClass::RateLimit, ErrorClass::Timeout]),
            )
            .then("claude-sonnet-4-5", classes(&[ErrorClass::ServerError]))
            .build()?,
    );
    policies.rate_limit = Some(
        RateLimitPolicy::builder()
            .requests_per_minute(50)
            .tokens_per_minute(100_000)
            .per_user_rpm(10)
            .per_user_tpm(20_000)
            .per_tenant_rpm(30)
            .per_tenant_tpm(60_000)
            .on_limit(OnLimit::Queue)
            .queue_capacity(16)
            .token_estimate(500)
            .build()?,
    );
    Ok(policies)
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("policies serialize")
}

fn main() {
    let endpoint = fastagentic::endpoint::find("/all/keys").expect("registered");
    assert_eq!(endpoint.name(), "all_keys_endpoint");
    assert_eq!(endpoint.description(), "Every key at once");
    assert_eq!(endpoint.model(), Some("gpt-4o"));
    assert!(endpoint.stream());
    assert!(
        endpoint.rust_path().ends_with("::all_keys"),
        "{}",
        endpoint.rust_path()
    );

    let declared = endpoint.policies().expect("valid policies");
    let expected = by_hand().expect("valid hand-built policies");
    // `RetryPolicy` holds a random source, so compare its serialized settings.
    assert_eq!(json(&declared.retry), json(&expected.retry));
    assert_eq!(declared.circuit_breaker, expected.circuit_breaker);
    assert_eq!(declared.circuit_breakers, expected.circuit_breakers);
    assert_eq!(declared.timeout, expected.timeout);
    assert_eq!(declared.fallback, expected.fallback);
    assert_eq!(declared.rate_limit, expected.rate_limit);
    endpoint.pipeline().expect("the pipeline builds");

    let retry = |path| {
        fastagentic::endpoint::find(path)
            .expect("registered")
            .policies()
            .expect("valid policies")
            .retry
            .expect("retry declared")
    };
    let defaults = fastagentic::endpoint::find("/all/defaults")
        .expect("registered")
        .policies()
        .expect("valid policies");
    assert_eq!(json(&defaults.retry), json(&Some(RetryPolicy::default())));
    assert_eq!(
        defaults.circuit_breaker,
        Some(CircuitBreakerPolicy::default())
    );
    assert_eq!(
        defaults.circuit_breakers,
        [("gpt-4o".to_owned(), CircuitBreakerPolicy::default())]
    );
    assert_eq!(defaults.timeout, Some(TimeoutPolicy::default()));
    assert_eq!(defaults.fallback, Some(FallbackChain::single("gpt-4o")));
    assert_eq!(
        defaults.rate_limit,
        Some(RateLimitPolicy::builder().build().expect("valid"))
    );

    assert!(retry("/all/no_budget").budget().is_none());
    assert_eq!(
        retry("/all/default_budget").budget(),
        Some(&RetryBudgetPolicy::default())
    );
}
