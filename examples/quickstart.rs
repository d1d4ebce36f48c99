//! The quickstart: a flaky "model" behind the full pipeline.
//!
//! The HTTP server arrives with the serving work; until then this example drives the
//! pipeline in-process. The primary model fails twice with a 503, then the pipeline
//! retries it; a second request meets a rate limit from the provider and falls back to a
//! smaller model. Every event the pipeline emits is printed as it happens.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fastagentic::prelude::*;
use fastagentic::reliability::PipelineEvent;

fn print_event(event: &mut PipelineEvent) {
    let delay = event
        .next_delay
        .map(|d| format!(", next try in {} ms", d.as_millis()))
        .unwrap_or_default();
    let to = event
        .fallback_to
        .as_deref()
        .map(|m| format!(" -> {m}"))
        .unwrap_or_default();
    let error = event
        .error
        .as_ref()
        .map(|e| format!(" [{}]", e.class()))
        .unwrap_or_default();
    println!(
        "  event {:<16} model {}{to} attempt {}{delay}{error}",
        event.kind.hook_name(),
        event.model,
        event.attempt
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pipeline = Pipeline::builder()
        .endpoint("/analyze")
        .rate_limit(RateLimitPolicy::builder().requests_per_minute(50).build()?)
        .timeout(
            TimeoutPolicy::builder()
                .total(Duration::from_secs(10))
                .build()?,
        )
        .circuit_breaker(CircuitBreakerPolicy::default())
        .retry(
            RetryPolicy::builder()
                .max_attempts(3)
                .initial_delay(Duration::from_millis(50))
                .build()?,
        )
        .fallback(
            FallbackChain::builder("mock/large")
                .then(
                    "mock/small",
                    ClassSet::of(&[ErrorClass::RateLimit, ErrorClass::Timeout]),
                )
                .build()?,
        )
        .event_sink(Arc::new(print_event))
        .build()?;

    let calls = AtomicU32::new(0);
    let flaky_model = |ctx: AgentContext| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        async move {
            let failure = match (call, ctx.model()) {
                (0 | 1, _) => Some(AgentError::new(
                    ErrorClass::Overloaded,
                    "HTTP 503: overloaded",
                )),
                (3, "mock/large") => Some(
                    AgentError::new(ErrorClass::RateLimit, "HTTP 429: slow down")
                        .with_retry_after(Duration::from_secs(90)),
                ),
                _ => None,
            };
            match failure {
                Some(err) => Err(err),
                None => Ok(format!(
                    "answer from {} (attempt {})",
                    ctx.model(),
                    ctx.attempt()
                )),
            }
        }
    };

    for request in 1..=2 {
        println!("request {request}:");
        let answer = pipeline
            .run(RequestInfo::new().user("demo-user"), &flaky_model)
            .await?;
        println!("  => {answer}");
    }
    println!("(a Retry-After of 90 s is above the 60 s cap, so request 2 fell back at once)");
    Ok(())
}
