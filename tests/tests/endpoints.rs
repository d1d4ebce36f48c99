//! `#[agent_endpoint]` end to end: registration across modules and crates, direct calls
//! that run the declared pipeline, the JSON handler, and duplicate paths.
//!
//! Each endpoint here is used by one test only: its pipeline (breakers, budget, limiter)
//! is shared by every call in the process.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fastagentic::endpoint::{DuplicatePath, Endpoint, check_unique, endpoints, find};
use fastagentic::prelude::*;
use fastagentic_test_helper::Echo;
use serde_json::json;

/// The input of the endpoints below.
#[derive(Clone, Debug, Deserialize)]
struct Question {
    text: String,
}

/// The output of `/it/analyze`.
#[derive(Debug, Serialize)]
struct Answer {
    text: String,
    model: String,
}

mod analysis {
    use super::{Answer, Question};
    use fastagentic::prelude::*;

    /// Analyzes a question
    /// with the mock model.
    #[agent_endpoint(
        path = "/it/analyze",
        model = "mock/analyst",
        timeout(total_ms = 10_000)
    )]
    pub(crate) async fn analyze(ctx: AgentContext, q: Question) -> Result<Answer, AgentError> {
        let reply = ctx.llm().complete(Prompt::user(&q.text)).await?;
        Ok(Answer {
            text: reply.text,
            model: ctx.model().to_owned(),
        })
    }

    /// Decodes JSON: used by the handler tests only.
    #[agent_endpoint(path = "/it/decode", description = "Counts characters")]
    pub(crate) async fn count(q: Question) -> Result<usize, AgentError> {
        Ok(q.text.chars().count())
    }
}

mod flaky {
    use std::sync::atomic::{AtomicU32, Ordering};

    use fastagentic::prelude::*;

    /// Calls of [`flaky`] so far.
    pub(crate) static CALLS: AtomicU32 = AtomicU32::new(0);

    /// Fails with a server error until its third call.
    #[agent_endpoint(
        path = "/it/flaky",
        retry(max_attempts = 4, backoff = "fixed", initial_delay_ms = 1_000, jitter = false,
              retry_on = ["server_error"]),
    )]
    pub(crate) async fn flaky(ctx: AgentContext) -> Result<u32, AgentError> {
        let call = CALLS.fetch_add(1, Ordering::SeqCst) + 1;
        if call < 3 {
            return Err(AgentError::new(ErrorClass::ServerError, "flaky"));
        }
        Ok(ctx.attempt())
    }

    /// Fails on its primary model, answers on the fallback.
    #[agent_endpoint(
        path = "/it/fallback",
        model = "mock/primary",
        fallback(then("mock/secondary", on = ["server_error"])),
    )]
    pub(crate) async fn falls_back(ctx: AgentContext) -> Result<String, AgentError> {
        if ctx.model() == "mock/primary" {
            return Err(AgentError::new(ErrorClass::ServerError, "primary down"));
        }
        Ok(ctx.model().to_owned())
    }

    /// A breaker opening on a failure rate; `minimum_calls` left to its default.
    #[agent_endpoint(
        path = "/it/rate_breaker",
        circuit_breaker(failure_rate_threshold = 0.5)
    )]
    pub(crate) async fn rate_breaker() -> Result<(), AgentError> {
        Ok(())
    }
}

mod identity {
    use fastagentic::prelude::*;

    /// Reports who is asking.
    #[agent_endpoint(path = "/it/whoami")]
    pub(crate) async fn whoami(ctx: AgentContext) -> Result<Option<String>, AgentError> {
        Ok(ctx.user().map(str::to_owned))
    }

    /// Calls [`whoami`] directly, passing its own context on.
    #[agent_endpoint(path = "/it/ask_whoami")]
    pub(crate) async fn ask_whoami(ctx: AgentContext) -> Result<Option<String>, AgentError> {
        whoami(ctx).await
    }
}

fn endpoint(path: &str) -> &'static Endpoint {
    find(path).unwrap_or_else(|| panic!("`{path}` is not registered"))
}

#[test]
fn endpoints_register_across_modules_and_crates() {
    fastagentic_test_helper::link();
    let paths: Vec<&str> = endpoints().iter().map(|e| e.path()).collect();
    for path in ["/it/analyze", "/it/flaky", "/it/whoami", "/helper/echo"] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }

    let analyze = endpoint("/it/analyze");
    assert_eq!(analyze.name(), "analyze");
    assert_eq!(
        analyze.description(),
        "Analyzes a question\nwith the mock model."
    );
    assert_eq!(analyze.model(), Some("mock/analyst"));
    assert_eq!(analyze.rust_path(), "endpoints::analysis::analyze");
    assert!(!analyze.stream());

    let count = endpoint("/it/decode");
    assert_eq!(
        (count.name(), count.description()),
        ("count", "Counts characters")
    );
    assert_eq!(count.model(), None);

    let flaky = endpoint("/it/flaky");
    assert_eq!(flaky.rust_path(), "endpoints::flaky::flaky");
    assert_eq!(
        flaky.description(),
        "Fails with a server error until its third call."
    );

    let echo = endpoint("/helper/echo");
    assert_eq!(echo.name(), "echo");
    assert_eq!(echo.rust_path(), "fastagentic_test_helper::echo");
    assert_eq!(echo.model(), Some("mock/helper"));
    assert_eq!(
        echo.description(),
        "Echoes its input, naming the model that answered."
    );
}

#[tokio::test]
async fn a_direct_call_runs_the_body_in_the_pipeline() {
    let q = Question {
        text: "what is 2 + 2?".into(),
    };
    let answer = analysis::analyze(AgentContext::detached("ignored"), q)
        .await
        .unwrap();
    assert_eq!(answer.model, "mock/analyst");
    assert_eq!(
        answer.text,
        "Mock answer from analyst: you asked \"what is 2 + 2?\"."
    );
}

#[tokio::test(start_paused = true)]
async fn retries_follow_the_declared_policy() {
    let start = tokio::time::Instant::now();
    let attempt = flaky::flaky(AgentContext::detached("ignored"))
        .await
        .unwrap();
    assert_eq!(attempt, 3, "answered on the third attempt");
    assert_eq!(flaky::CALLS.load(std::sync::atomic::Ordering::SeqCst), 3);
    // Two fixed delays of one second, without jitter.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[tokio::test]
async fn a_declared_fallback_chain_is_followed() {
    let model = flaky::falls_back(AgentContext::detached("ignored"))
        .await
        .unwrap();
    assert_eq!(model, "mock/secondary");
}

#[test]
fn the_declared_policies_are_the_ones_built() {
    let policies = endpoint("/it/flaky").policies().unwrap();
    let retry = policies.retry.unwrap();
    assert_eq!(retry.max_attempts(), 4);
    assert_eq!(retry.backoff(), Backoff::Fixed);
    assert_eq!(retry.retry_on(), ClassSet::of(&[ErrorClass::ServerError]));
    assert_eq!(retry.backoff_delay(1), Duration::from_secs(1));
    assert!(policies.circuit_breaker.is_none() && policies.fallback.is_none());

    let timeout = endpoint("/it/analyze").policies().unwrap().timeout.unwrap();
    assert_eq!(
        timeout.limit(fastagentic::reliability::Stage::Total),
        Duration::from_secs(10)
    );

    let chain = endpoint("/it/fallback")
        .policies()
        .unwrap()
        .fallback
        .unwrap();
    assert_eq!(
        chain.models().collect::<Vec<_>>(),
        ["mock/primary", "mock/secondary"],
        "`primary` defaults to the endpoint's `model`"
    );

    fastagentic_test_helper::link();
    let echo = endpoint("/helper/echo").policies().unwrap();
    assert_eq!(echo.retry.unwrap().max_attempts(), 2);
}

/// The builder takes a failure rate together with `minimum_calls`, so the macro fills in
/// the runtime's default when only the rate is given; this catches a drift between the two.
#[test]
fn a_failure_rate_alone_keeps_the_default_minimum_calls() {
    let declared = endpoint("/it/rate_breaker")
        .policies()
        .unwrap()
        .circuit_breaker
        .unwrap();
    let from_serde: CircuitBreakerPolicy =
        serde_json::from_value(json!({ "failure_rate_threshold": 0.5 })).unwrap();
    assert_eq!(declared, from_serde);
}

#[tokio::test]
async fn call_json_decodes_the_input_and_encodes_the_output() {
    let count = endpoint("/it/decode");
    let output = count
        .call_json(
            count.pipeline().unwrap(),
            RequestInfo::new(),
            json!({"text": "héllo"}),
        )
        .await
        .unwrap();
    assert_eq!(output, json!(5));

    fastagentic_test_helper::link();
    let echo = endpoint("/helper/echo");
    let output = echo
        .call_json(
            echo.pipeline().unwrap(),
            RequestInfo::new(),
            json!({"text": "hi"}),
        )
        .await
        .unwrap();
    let echoed: Echo = serde_json::from_value(output).unwrap();
    assert_eq!(echoed.text, "hi (via mock/helper)");
}

#[tokio::test]
async fn a_wrong_input_is_invalid_input_naming_the_field() {
    let count = endpoint("/it/decode");
    let pipeline = count.pipeline().unwrap();
    let err = count
        .call_json(pipeline, RequestInfo::new(), json!({"text": 5}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(err.message().contains("`text`"), "{err}");

    let err = count
        .call_json(pipeline, RequestInfo::new(), json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::InvalidInput);
    assert!(err.message().contains("missing field `text`"), "{err}");
}

#[tokio::test]
async fn a_direct_call_passes_the_callers_identity_on() {
    let outer = endpoint("/it/ask_whoami");
    let request = RequestInfo::new().user("alice");
    let output = outer
        .call_json(outer.pipeline().unwrap(), request, json!(null))
        .await
        .unwrap();
    assert_eq!(output, json!("alice"));
}

#[test]
fn check_unique_names_both_endpoints_of_a_duplicate_path() {
    fastagentic_test_helper::link();
    check_unique(endpoints()).unwrap();

    let registered = endpoint("/it/analyze");
    // An endpoint as a second `#[agent_endpoint]` on the same path would register it.
    static CELL: std::sync::OnceLock<
        Result<fastagentic::reliability::Pipeline, fastagentic::reliability::PolicyError>,
    > = std::sync::OnceLock::new();
    let duplicate: Endpoint = fastagentic::__private::EndpointParts {
        path: registered.path(),
        name: "analyze_again",
        rust_path: "elsewhere::analyze_again",
        description: "",
        model: None,
        stream: false,
        durable: false,
        policies: || Ok(Default::default()),
        handler: |_, _, input| Box::pin(async move { Ok(input) }),
        pipeline: &CELL,
        input_schema: None,
        output_schema: |_| serde_json::Value::Null,
    }
    .into_endpoint();
    let err = check_unique(endpoints().iter().chain([&duplicate])).unwrap_err();
    assert_eq!(
        err,
        DuplicatePath {
            path: "/it/analyze".into(),
            first: "endpoints::analysis::analyze".into(),
            second: "elsewhere::analyze_again".into(),
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("endpoints::analysis::analyze"),
        "{message}"
    );
    assert!(message.contains("elsewhere::analyze_again"), "{message}");
}
