//! SPEC §2's example, verbatim: every policy declared, a context and an input.

use fastagentic::prelude::*;

#[derive(Deserialize, Clone)]
struct Question {
    text: String,
}

#[derive(Serialize)]
struct Answer {
    text: String,
}

#[agent_endpoint(
    path = "/analyze",
    model = "gpt-4o",
    retry(max_attempts = 3, backoff = "exponential", initial_delay_ms = 1000,
          max_delay_ms = 30_000, jitter = true, retry_on = ["rate_limit", "timeout", "server_error"]),
    circuit_breaker(failure_threshold = 5, failure_window_ms = 60_000, reset_timeout_ms = 30_000),
    timeout(total_ms = 120_000, llm_call_ms = 30_000),
    fallback(primary = "gpt-4o", then("gpt-4o-mini", on = ["rate_limit", "timeout"]),
                                 then("claude-sonnet-4-5", on = ["rate_limit", "server_error"])),
    rate_limit(requests_per_minute = 50, tokens_per_minute = 100_000, per_user_rpm = 10),
)]
async fn analyze(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
    let reply = ctx.llm().complete(Prompt::user(&q.text)).await?;
    Ok(Answer { text: reply.text })
}

fn main() {
    let endpoint = fastagentic::endpoint::find("/analyze").expect("registered");
    assert_eq!(endpoint.name(), "analyze");
    assert_eq!(endpoint.model(), Some("gpt-4o"));
    let policies = endpoint.policies().expect("valid policies");
    let retry = policies.retry.expect("retry declared");
    assert_eq!(retry.max_attempts(), 3);
    assert_eq!(
        retry.retry_on(),
        ClassSet::of(&[
            ErrorClass::RateLimit,
            ErrorClass::Timeout,
            ErrorClass::ServerError
        ])
    );
    let breaker = policies.circuit_breaker.expect("breaker declared");
    assert_eq!(breaker.failure_threshold(), 5);
    let chain = policies.fallback.expect("fallback declared");
    assert_eq!(
        chain.models().collect::<Vec<_>>(),
        ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"]
    );
    assert!(policies.timeout.is_some());
    assert!(policies.rate_limit.is_some());
    endpoint.pipeline().expect("the pipeline builds");
}
