//! Every error class name the runtime knows, in every place that takes classes. The macro
//! keeps its own copy of the names; this case fails to compile or to run if the two lists
//! drift apart.

use fastagentic::prelude::*;

#[agent_endpoint(
    path = "/every_class",
    model = "gpt-4o",
    retry(
        retry_on = ["rate_limit", "quota_exceeded", "request_too_large", "timeout", "server_error",
                    "overloaded", "connection_error", "stream_interrupted", "invalid_input",
                    "auth_error", "permission_denied", "not_found", "context_overflow",
                    "content_policy", "circuit_open", "cancelled", "other"],
        no_retry_on = ["rate_limit", "quota_exceeded", "request_too_large", "timeout", "server_error",
                       "overloaded", "connection_error", "stream_interrupted", "invalid_input",
                       "auth_error", "permission_denied", "not_found", "context_overflow",
                       "content_policy", "circuit_open", "cancelled", "other"],
    ),
    circuit_breaker(
        failure_on = ["rate_limit", "quota_exceeded", "request_too_large", "timeout", "server_error",
                      "overloaded", "connection_error", "stream_interrupted", "invalid_input",
                      "auth_error", "permission_denied", "not_found", "context_overflow",
                      "content_policy", "circuit_open", "cancelled", "other"],
    ),
    fallback(then("gpt-4o-mini", on = ["rate_limit", "quota_exceeded", "request_too_large", "timeout",
                                       "server_error", "overloaded", "connection_error",
                                       "stream_interrupted", "invalid_input", "auth_error",
                                       "permission_denied", "not_found", "context_overflow",
                                       "content_policy", "circuit_open", "cancelled", "other"])),
)]
async fn every_class(ctx: AgentContext) -> Result<String, AgentError> {
    Ok(ctx.model().to_owned())
}

fn main() {
    let all = ClassSet::of(ErrorClass::ALL);
    assert_eq!(
        ErrorClass::ALL.len(),
        17,
        "a class was added: add it to the macro's list"
    );
    let policies = fastagentic::endpoint::find("/every_class")
        .expect("registered")
        .policies()
        .expect("valid policies");
    let retry = policies.retry.expect("retry declared");
    assert_eq!(retry.retry_on(), all);
    assert_eq!(retry.no_retry_on(), all);
    assert_eq!(
        policies
            .circuit_breaker
            .expect("breaker declared")
            .failure_on(),
        all
    );
    let chain = policies.fallback.expect("fallback declared");
    assert_eq!(
        chain.primary().as_ref(),
        "gpt-4o",
        "the primary defaults to `model`"
    );
    assert_eq!(chain.steps()[0].on, all);
}
