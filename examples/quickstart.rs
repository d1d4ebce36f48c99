//! The quickstart: a flaky "model" behind the full pipeline.
//!
//! The HTTP server arrives with the serving work; until then this example drives the
//! pipeline in-process, calling a scripted mock model through `ctx.llm()`. The primary
//! model fails twice with a 503, then the pipeline retries it; a second request meets a
//! rate limit from the provider and falls back to a smaller model. Every event the
//! pipeline emits is printed as it happens.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::time::Duration;

use fastagentic::llm::{MockProvider, MockReply, Providers};
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
    let builder = Pipeline::builder()
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
        .event_sink(Arc::new(print_event));

    // A scripted model: two 503s, an answer, then a 429 asking for 90 s, then an answer.
    let mock = Arc::new(
        MockProvider::new()
            .push_n(MockReply::overloaded(), 2)
            .push(MockReply::text("Paris is the capital of France."))
            .push(MockReply::rate_limited(Duration::from_secs(90)))
            .push(MockReply::text("Paris.")),
    );
    let pipeline = builder
        .providers(Arc::new(Providers::new().with_shared(mock)))
        .build()?;
    let ask = |ctx: AgentContext| async move {
        ctx.llm()
            .complete(Prompt::user("What is the capital of France?"))
            .await
    };

    for request in 1..=2 {
        println!("request {request}:");
        let answer = pipeline
            .run(RequestInfo::new().user("demo-user"), ask)
            .await?;
        println!(
            "  => {} (from {}/{})",
            answer.text, answer.provider, answer.model
        );
    }
    println!("(a Retry-After of 90 s is above the 60 s cap, so request 2 fell back at once)");
    Ok(())
}
