//! # fastagentic
//!
//! LLM agent endpoints that survive real provider failures. Every endpoint body runs inside
//! one reliability pipeline — rate limit → total timeout → circuit breaker → execute →
//! retry → fallback — that decides by typed [error classes](ErrorClass), never by the
//! words of a message.
//!
//! Start with [`reliability::Pipeline`], or read the guide in `book/`.
//!
//! ```
//! use fastagentic::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pipeline = Pipeline::builder()
//!     .endpoint("/hello")
//!     .model("mock/hello")
//!     .retry(RetryPolicy::builder().max_attempts(3).build()?)
//!     .build()?;
//! let text = pipeline
//!     .run(RequestInfo::new(), |ctx: AgentContext| async move {
//!         Ok::<_, AgentError>(format!("hello from {}", ctx.model()))
//!     })
//!     .await?;
//! assert_eq!(text, "hello from mock/hello");
//! # Ok(()) }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod context;
pub mod durable;
pub mod endpoint;
pub mod error;
pub mod hooks;
pub mod llm;
pub mod metrics;
pub mod pricing;
pub mod reliability;
#[cfg(feature = "server")]
pub mod server;
pub mod spend;
pub mod state;
pub mod tools;
mod usd;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use crate::context::AgentContext;
pub use crate::endpoint::{Endpoint, endpoints};
pub use crate::error::{AgentError, ClassSet, ErrorClass};
#[cfg(feature = "server")]
pub use crate::server::{App, ServeError};

pub use fastagentic_macros::{agent_endpoint, hook};

/// The names most programs need, in one import.
pub mod prelude {
    pub use crate::context::AgentContext;
    pub use crate::error::{AgentError, ClassSet, ErrorClass};
    pub use crate::hooks::HookContext;
    pub use crate::llm::{Completion, Prompt};
    pub use crate::reliability::{
        Backoff, CircuitBreakerPolicy, FallbackChain, OnLimit, OnTimeout, Pipeline,
        RateLimitPolicy, RequestInfo, RetryPolicy, StrategyFallback, TimeoutPolicy,
    };
    #[cfg(feature = "server")]
    pub use crate::server::App;
    pub use fastagentic_macros::{agent_endpoint, hook};
    pub use serde::{Deserialize, Serialize};
}

/// The guide's chapters, compiled as doctests so its snippets stay true.
#[cfg(doctest)]
pub mod guide {
    #[doc = include_str!("../../README.md")]
    pub struct Readme;

    #[doc = include_str!("../../book/src/introduction.md")]
    pub struct Introduction;

    #[doc = include_str!("../../book/src/errors.md")]
    pub struct Errors;

    #[doc = include_str!("../../book/src/rate-limiting.md")]
    pub struct RateLimiting;

    // Its snippet names the Redis store, so it compiles only with the feature.
    #[cfg(feature = "redis")]
    #[doc = include_str!("../../book/src/replicas.md")]
    pub struct Replicas;

    // Its snippets name the PostgreSQL store, so they compile only with the feature.
    #[cfg(feature = "postgres")]
    #[doc = include_str!("../../book/src/durable-runs.md")]
    pub struct DurableRuns;

    #[doc = include_str!("../../book/src/timeouts.md")]
    pub struct Timeouts;

    #[doc = include_str!("../../book/src/circuit-breaker.md")]
    pub struct CircuitBreaker;

    #[doc = include_str!("../../book/src/retry.md")]
    pub struct Retry;

    #[doc = include_str!("../../book/src/fallback.md")]
    pub struct Fallback;

    #[doc = include_str!("../../book/src/combining.md")]
    pub struct Combining;

    #[doc = include_str!("../../book/src/design-notes.md")]
    pub struct DesignNotes;

    #[doc = include_str!("../../book/src/providers.md")]
    pub struct Providers;

    #[doc = include_str!("../../book/src/streaming.md")]
    pub struct Streaming;

    #[doc = include_str!("../../book/src/hooks.md")]
    pub struct Hooks;

    #[doc = include_str!("../../book/src/tools.md")]
    pub struct Tools;

    #[doc = include_str!("../../book/src/metrics-tracing.md")]
    pub struct MetricsTracing;

    #[doc = include_str!("../../book/src/endpoints.md")]
    pub struct Endpoints;

    #[doc = include_str!("../../book/src/pricing.md")]
    pub struct Pricing;

    #[doc = include_str!("../../book/src/quickstart.md")]
    pub struct Quickstart;

    #[doc = include_str!("../../book/src/serving.md")]
    pub struct Serving;

    #[doc = include_str!("../../book/src/configuration.md")]
    pub struct Configuration;

    #[doc = include_str!("../../book/src/openai-gateway.md")]
    pub struct OpenAiGateway;

    #[doc = include_str!("../../book/src/security.md")]
    pub struct Security;
}
