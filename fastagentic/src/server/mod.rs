//! Serving endpoints over HTTP: [`App`] (feature `server`, on by default), on axum.
//!
//! ```no_run
//! use fastagentic::prelude::*;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), fastagentic::ServeError> {
//!     App::new("My Agent").serve("127.0.0.1:8000").await // every #[agent_endpoint]
//! }
//! ```
//!
//! # The HTTP surface
//!
//! | Request | Answer |
//! |---|---|
//! | `POST {path}` of an endpoint | the input as JSON in, the output as JSON out (200), or `text/event-stream` (see [`sse`]) |
//! | `GET /health` | `{"status": "ok", "title", "version"}` |
//! | `GET /metrics` | the Prometheus text of the app's [metrics](App::metrics) ([`metrics::global`](crate::metrics::global) by default) |
//! | `GET /endpoints` | `{"title", "version", "endpoints": [{"path", "name", "description", "model", "stream", "policies", "breakers"}]}` |
//! | `GET /openapi.json` | the OpenAPI 3.1 document of every endpoint |
//! | `GET /docs` | that document rendered by Redoc (compiled in: no CDN) |
//! | `GET /status` | the live status page (its data: `GET /status.json`, an operator route) |
//!
//! `/metrics` and `/endpoints` are operator routes: see [`App::operator_key`] for who may
//! read them.
//!
//! | Request | Answer |
//! |---|---|
//! | a body that is not JSON | 400 `invalid_input` |
//! | JSON of the wrong shape | 422 `invalid_input`, the message naming the field |
//! | a body over the limit (default 1 MiB, [`App::body_limit`]) | 413 `request_too_large` |
//! | an unknown path | 404 `not_found` |
//! | a wrong method | 405 `invalid_input`, with `Allow` |
//!
//! A failed run is answered with the status of its class (the table is in [`status`]) and
//! the body `{"error": {"class", "message", ...}}`. Endpoints with rate limits (their own
//! or the app's) add `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
//! (seconds) to every answer, success included; a 429 and a 503 carry `Retry-After`
//! (seconds, rounded up). Every answer carries `x-request-id`: the client's, or a new one.
//! An empty body is read as `null`, which an endpoint without input accepts. The
//! `Content-Type` of the request is not checked (so `curl -d` works).
//!
//! The caller's identity (user, tenant) comes from headers or API keys: see [`identity`].
//! A client that disconnects cancels its run: sleeps and LLM calls stop at once.
//!
//! # Shutdown
//!
//! [`App::serve`] stops on SIGINT or SIGTERM: it stops accepting connections, lets the
//! requests in flight finish for up to [`App::shutdown_timeout`] (30 s by default), then
//! cancels the runs still going (they answer 503 `cancelled`). `on_startup` hooks run
//! before the first connection is accepted, `on_shutdown` hooks after the drain.

pub mod cost;
mod docs;
pub mod gateway;
pub mod identity;
mod openapi;
mod request_id;
mod route;
mod router;
mod runs;
pub mod shutdown;
pub mod sse;
mod state;
pub mod status;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, ToSocketAddrs};

pub use self::gateway::{Gateway, GatewayRoute, InvalidGateway, RoutePolicies};
pub use self::request_id::X_REQUEST_ID;
pub use self::route::Route;

use self::gateway::{GatewayState, RouteState};
use self::identity::{IdentityConfig, KeyOwner};
use self::route::Served;
use self::runs::Runs;
use self::shutdown::{ConnectionLimits, HardStop};
use self::state::{EndpointState, Shared};
use crate::durable::RunStore;
use crate::endpoint::{DuplicatePath, Endpoint};
use crate::hooks::{Hook, Hooks};
use crate::llm::Providers;
use crate::metrics::Metrics;
use crate::pricing::Pricing;
use crate::reliability::circuit_breaker::FleetStore;
use crate::reliability::{
    BreakerRegistry, EventKind, FallbackChain, LimitScope, Pipeline, PipelineBuilder,
    PipelineEvent, PolicyError, RateLimitPolicy, RateLimiter, default_max_attempts,
};
use crate::spend::Ledger;
use crate::state::StateStore;
use fastagentic_policy::keys::endpoint::check_durable;

/// Paths the app answers itself.
const RESERVED: [&str; 3] = ["/health", "/metrics", "/endpoints"];

/// Why the app could not start or stopped serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Two endpoints claim one path.
    #[error(transparent)]
    DuplicatePath(#[from] DuplicatePath),
    /// An endpoint's policies cannot work as configured.
    #[error("endpoint `{path}` ({origin}) has invalid policies: {source}")]
    Policies {
        /// The endpoint's path.
        path: String,
        /// The annotated fn's Rust path, or the route.
        origin: String,
        /// What is wrong.
        #[source]
        source: PolicyError,
    },
    /// An endpoint's path cannot be served.
    #[error("endpoint `{path}` ({origin}) cannot be served: {reason}")]
    InvalidPath {
        /// The path.
        path: String,
        /// The annotated fn's Rust path, or the route.
        origin: String,
        /// Why.
        reason: &'static str,
    },
    /// The OpenAI-compatible front door is misconfigured.
    #[error("the OpenAI-compatible gateway cannot be served: {0}")]
    InvalidGateway(#[from] InvalidGateway),
    /// A gateway route's policies cannot work as configured.
    #[error("gateway route `{route}` has invalid policies: {source}")]
    GatewayPolicies {
        /// The route's name.
        route: String,
        /// What is wrong.
        #[source]
        source: PolicyError,
    },
    /// The shared state store cannot be set up (a bad `FASTAGENTIC_REDIS_URL`, say).
    #[error("the state store cannot be used: {0}")]
    StateStore(#[source] crate::state::StoreError),
    /// The store of durable runs cannot be opened (a path that cannot be written, say).
    #[error("the durable run store cannot be used: {0}")]
    RunStore(#[source] crate::durable::RunStoreError),
    /// Accepting connections failed.
    #[error("the server stopped: {0}")]
    Serve(#[source] std::io::Error),
}

/// An HTTP server for agent endpoints.
///
/// [`App::new`] serves every `#[agent_endpoint]` in the program; [`App::route`] adds
/// endpoints written in code. Each endpoint runs in a pipeline of its own policies, built
/// with the app's [providers](App::providers), [global fallback chain](App::fallback),
/// [global rate limit](App::rate_limit), [hooks](App::hook) (plus every `#[hook]`) and the
/// global metrics. These pipelines are the app's: an endpoint called directly
/// (`analyze(ctx, q).await`) runs in its own pipeline, with its own limiter and breakers.
///
/// Mount it in an existing axum application with [`App::router`], or serve it with
/// [`App::serve`] / [`App::serve_with`]. See the [module docs](self) for the HTTP surface.
#[must_use = "an App does nothing until it is served"]
pub struct App {
    title: String,
    version: Option<String>,
    discover: bool,
    endpoints: Vec<&'static Endpoint>,
    routes: Vec<Route>,
    providers: Option<Arc<Providers>>,
    fallback: Option<FallbackChain>,
    rate_limit: Option<RateLimitPolicy>,
    hooks: Hooks,
    metrics: Arc<Metrics>,
    pricing: Option<Arc<Pricing>>,
    ledger: Option<Arc<Ledger>>,
    default_max_attempts: u32,
    body_limit: usize,
    identity: IdentityConfig,
    shutdown_timeout: Duration,
    connection_limits: ConnectionLimits,
    gateway: Option<Gateway>,
    state_store: Option<Arc<dyn StateStore>>,
    run_store: Option<Arc<dyn RunStore>>,
    run_retention: Option<Duration>,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("title", &self.title)
            .field("version", &self.version)
            .field("discover", &self.discover)
            .field("endpoints", &self.endpoints)
            .field("routes", &self.routes)
            .field("providers", &self.providers)
            .field("fallback", &self.fallback)
            .field("rate_limit", &self.rate_limit)
            .field("hooks", &self.hooks)
            .field("default_max_attempts", &self.default_max_attempts)
            .field("body_limit", &self.body_limit)
            .field("identity", &self.identity)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("connection_limits", &self.connection_limits)
            .field("gateway", &self.gateway)
            .field("state_store", &self.state_store)
            .field("run_store", &self.run_store.as_ref().map(|s| s.name()))
            .finish()
    }
}

/// What [`App::build`] makes.
struct Built {
    router: Router,
    hooks: Arc<Hooks>,
    hard_stop: HardStop,
    runs: Option<Arc<Runs>>,
}

impl App {
    /// An app called `title` serving every registered `#[agent_endpoint]`.
    pub fn new(title: impl Into<String>) -> Self {
        App {
            discover: true,
            ..App::bare(title)
        }
    }

    /// An app serving nothing but what [`App::endpoint`] and [`App::route`] add.
    pub fn bare(title: impl Into<String>) -> Self {
        App {
            title: title.into(),
            version: None,
            discover: false,
            endpoints: Vec::new(),
            routes: Vec::new(),
            providers: None,
            fallback: None,
            rate_limit: None,
            hooks: Hooks::new(),
            metrics: crate::metrics::global().clone(),
            pricing: None,
            ledger: None,
            // The app is where the process starts serving: the one place the
            // environment's override is read.
            default_max_attempts: default_max_attempts(),
            body_limit: 1024 * 1024,
            identity: IdentityConfig::default(),
            shutdown_timeout: Duration::from_secs(30),
            connection_limits: ConnectionLimits::default(),
            gateway: None,
            state_store: None,
            run_store: None,
            run_retention: Some(runs::DEFAULT_RETENTION),
        }
    }

    /// The version `/health` and `/endpoints` report.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Serves a registered endpoint (for an app made with [`App::bare`]; [`App::new`]
    /// serves them all already, and adding one twice serves it once).
    pub fn endpoint(mut self, endpoint: &'static Endpoint) -> Self {
        self.endpoints.push(endpoint);
        self
    }

    /// Serves an endpoint written in code.
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// The providers `ctx.llm()` routes models to (default:
    /// [`default_providers`](crate::llm::default_providers), from the environment).
    pub fn providers(mut self, providers: Providers) -> Self {
        self.providers = Some(Arc::new(providers));
        self
    }

    /// A fallback chain for endpoints that declare none. An endpoint that names a
    /// `model` keeps it as its primary and falls back along the chain's steps.
    pub fn fallback(mut self, chain: FallbackChain) -> Self {
        self.fallback = Some(chain);
        self
    }

    /// Limits shared by every endpoint (checked before each endpoint's own):
    /// `requests_per_minute` and `tokens_per_minute` count every request to the app,
    /// the per-user and per-tenant limits each caller's requests.
    pub fn rate_limit(mut self, policy: RateLimitPolicy) -> Self {
        self.rate_limit = Some(policy);
        self
    }

    /// Shares every rate limit of the app (its own and its endpoints') with every other
    /// process using `store`: replicas behind one load balancer then enforce one limit
    /// together. See [`state`](crate::state) and the book's "Running several replicas".
    ///
    /// Without this, an app built with the `redis` feature reads
    /// `FASTAGENTIC_REDIS_URL` and uses a `state::RedisStore` there
    /// when it is set; otherwise limits live in each process's memory.
    pub fn state_store(mut self, store: impl StateStore) -> Self {
        self.state_store = Some(Arc::new(store));
        self
    }

    /// Keeps the runs of durable endpoints (`durable = true`) in `store`.
    ///
    /// Without this, an app that serves a durable endpoint keeps its runs in a SQLite
    /// file (feature `sqlite`, on by default): the one `FASTAGENTIC_RUNS_PATH` names,
    /// else `fastagentic-runs.sqlite3` in the working directory, created on start. See
    /// [`durable`](crate::durable) and the book's "Durable runs".
    pub fn run_store(mut self, store: impl RunStore) -> Self {
        self.run_store = Some(Arc::new(store));
        self
    }

    /// How long runs that ended (`completed` or `failed`) are kept before the app
    /// deletes them with their journals (default 7 days); `None` keeps them forever.
    /// Checkpointed and running runs are never deleted. The app sweeps its store when
    /// it starts and then every tenth of `keep` (at most hourly, at least every
    /// second); replicas sharing a store each sweep it, which is harmless.
    pub fn run_retention(mut self, keep: Option<Duration>) -> Self {
        self.run_retention = keep;
        self
    }

    /// Adds a hook, in addition to every `#[hook]` of the program.
    pub fn hook(mut self, hook: Hook) -> Self {
        self.hooks = self.hooks.with(hook);
        self
    }

    /// Adds hooks, in addition to every `#[hook]` of the program.
    pub fn hooks(mut self, hooks: Hooks) -> Self {
        for event in EventKind::ALL {
            for hook in hooks.for_event(*event) {
                self.hooks = self.hooks.with(hook.clone());
            }
        }
        self
    }

    /// The metrics the app's pipelines report to and `GET /metrics` serves (default:
    /// [`metrics::global`](crate::metrics::global), which endpoints called directly
    /// report to as well).
    pub fn metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The prices the app's LLM calls are charged at (default:
    /// [`pricing::global`](crate::pricing::global)).
    pub fn pricing(mut self, pricing: Arc<Pricing>) -> Self {
        self.pricing = Some(pricing);
        self
    }

    /// The ledger the app's LLM calls are recorded in (default:
    /// [`spend::ledger`](crate::spend::ledger)).
    pub fn ledger(mut self, ledger: Arc<Ledger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The attempt count of retry policies that set no `max_attempts` (default 3, or
    /// `FASTAGENTIC_MAX_ATTEMPTS` when set: see
    /// [`default_max_attempts`]).
    pub fn default_max_attempts(mut self, attempts: u32) -> Self {
        self.default_max_attempts = attempts;
        self
    }

    /// The largest request body accepted, in bytes (default 1 MiB); larger ones are
    /// answered 413.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Maps an API key to its tenant. A request presenting the key
    /// (`Authorization: Bearer <key>` or `X-Api-Key`) is that tenant's; one presenting a
    /// key not in the map is refused with 401.
    pub fn api_key(mut self, key: impl Into<String>, tenant: impl Into<Arc<str>>) -> Self {
        let owner = KeyOwner {
            tenant: tenant.into(),
            user: None,
        };
        self.identity.api_keys.insert(&key.into(), owner);
        self
    }

    /// Maps an API key to one user of a tenant: a request presenting it is that user's,
    /// for per-user limits and `ctx.user()`, whatever its headers say.
    pub fn user_key(
        mut self,
        key: impl Into<String>,
        tenant: impl Into<Arc<str>>,
        user: impl Into<Arc<str>>,
    ) -> Self {
        let owner = KeyOwner {
            tenant: tenant.into(),
            user: Some(user.into()),
        };
        self.identity.api_keys.insert(&key.into(), owner);
        self
    }

    /// Whether `X-User-Id` and `X-Tenant-Id` (or the [`identity_headers`](Self::identity_headers))
    /// are believed. By default they are while no API key is configured, and are ignored
    /// once keys are: then the key alone says who calls (its tenant, and its user for a
    /// [`user_key`](Self::user_key)), so per-user limits cannot be dodged by changing a
    /// header. Trust them with keys only behind a gateway that sets them itself.
    pub fn trust_identity_headers(mut self, trust: bool) -> Self {
        self.identity.trust_headers = Some(trust);
        self
    }

    /// Refuses requests without an API key (401) once keys are configured (default:
    /// they are served anonymously).
    pub fn require_api_key(mut self, require: bool) -> Self {
        self.identity.require_api_key = require;
        self
    }

    /// The key that opens the operator routes, `GET /endpoints` and `GET /metrics`
    /// (`Authorization: Bearer <key>` or `X-Api-Key`); without it they answer 401. With no
    /// operator key they are open to all, unless [`App::require_api_key`] is on: then they
    /// are off (404), so a tenant's key does not show every policy, model and counter.
    /// `GET /health` stays open for load balancers.
    pub fn operator_key(mut self, key: impl Into<String>) -> Self {
        self.identity.operator_key = Some(key.into());
        self
    }

    /// The headers naming the user and the tenant (default `X-User-Id`, `X-Tenant-Id`).
    pub fn identity_headers(
        mut self,
        user: axum::http::HeaderName,
        tenant: axum::http::HeaderName,
    ) -> Self {
        self.identity.user_header = user;
        self.identity.tenant_header = tenant;
        self
    }

    /// How long a shutdown waits for in-flight requests before cancelling them
    /// (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a connection may take to send a whole request head (default 30 s). The
    /// same timer runs while a keep-alive connection waits for its next request, so it
    /// closes slow senders (slowloris) and idle connections alike; each is counted in
    /// `fastagentic_connections_dropped_total{reason="header_timeout"}`. A request whose
    /// head arrived is not bounded by it: its run has its own timeouts.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.connection_limits.header_read_timeout = timeout;
        self
    }

    /// The most connections served at once (default 10 000). One more is closed as soon
    /// as it is accepted, so file descriptors stay bounded and the client learns at once;
    /// each is counted in `fastagentic_connections_dropped_total{reason="limit"}`. Keep it
    /// below the process's open-file limit (`ulimit -n`).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.connection_limits.max_connections = max.max(1);
        self
    }

    /// Serves the OpenAI-compatible front door too: `POST /v1/chat/completions` and
    /// `GET /v1/models`, for the routes and models `gateway` names. Existing OpenAI
    /// clients point their `base_url` at `http://host/v1` and get the pipeline's limits,
    /// breakers, retries, fallbacks and prices (see [`gateway`]).
    pub fn openai_compatible(mut self, gateway: Gateway) -> Self {
        self.gateway = Some(gateway);
        self
    }

    /// The axum router, to mount in an existing application: `nest` it under a prefix,
    /// or `merge` it (it has a JSON 404 fallback; axum refuses to merge two routers that
    /// both have one, so call `reset_fallback()` on one of them first).
    ///
    /// Each call builds fresh pipelines (limiters, breakers). Mounted this way, the app
    /// does not run `on_startup` / `on_shutdown` hooks by itself: call
    /// [`App::fire`] around your own server.
    pub fn router(&self) -> Result<Router, ServeError> {
        Ok(self.build()?.router)
    }

    /// Runs the hooks of an app event (`EventKind::Startup`, `EventKind::Shutdown`):
    /// the app's and every `#[hook]`.
    pub async fn fire(&self, event: EventKind) {
        fire(&self.all_hooks(), event).await;
    }

    /// Serves on `address` until SIGINT or SIGTERM, then drains (see the
    /// [module docs](self)).
    pub async fn serve<A>(self, address: A) -> Result<(), ServeError>
    where
        A: ToSocketAddrs + fmt::Display,
    {
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| ServeError::Bind {
                address: address.to_string(),
                source,
            })?;
        self.serve_with(listener, shutdown::signal()).await
    }

    /// Serves on `listener` until `shutdown` completes, then drains in-flight requests
    /// for at most [`App::shutdown_timeout`].
    pub async fn serve_with(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let built = self.build()?;
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, title = %self.title, "serving");
        }
        fire(&built.hooks, EventKind::Startup).await;
        let sweeper = (built.runs.as_ref())
            .zip(self.run_retention)
            .map(|(runs, keep)| tokio::spawn(runs::sweep(runs.store.clone(), keep)));
        let result = shutdown::serve(
            listener,
            built.router,
            shutdown,
            self.shutdown_timeout,
            built.hard_stop,
            self.connection_limits,
            self.metrics.clone(),
        )
        .await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        fire(&built.hooks, EventKind::Shutdown).await;
        result
    }

    fn all_hooks(&self) -> Hooks {
        let mut all = Hooks::registered();
        for event in EventKind::ALL {
            for hook in self.hooks.for_event(*event) {
                all = all.with(hook.clone());
            }
        }
        all
    }

    /// Every endpoint to serve, checked.
    fn served(&self) -> Result<Vec<Served>, ServeError> {
        let registered = self
            .discover
            .then(crate::endpoints)
            .into_iter()
            .flatten()
            .chain(self.endpoints.iter().copied());
        let mut served: Vec<Served> = Vec::new();
        let mut seen: Vec<*const Endpoint> = Vec::new();
        for endpoint in registered {
            if seen.contains(&std::ptr::from_ref(endpoint)) {
                continue;
            }
            seen.push(endpoint);
            let entry = Served::registered(endpoint).map_err(|source| ServeError::Policies {
                path: endpoint.path().to_owned(),
                origin: endpoint.rust_path().to_owned(),
                source,
            })?;
            served.push(entry);
        }
        served.extend(self.routes.iter().cloned().map(Served::code));
        for (i, entry) in served.iter().enumerate() {
            check_path(entry, self.gateway.is_some())?;
            if let Some(first) = served[..i].iter().find(|e| e.path == entry.path) {
                return Err(DuplicatePath {
                    path: entry.path.clone(),
                    first: first.origin(),
                    second: entry.origin(),
                }
                .into());
            }
        }
        Ok(served)
    }

    /// The app's durable runs, when it serves a durable endpoint: in the store set in
    /// code, else in the default SQLite file.
    fn durable_runs(&self, states: &[Arc<EndpointState>]) -> Result<Option<Arc<Runs>>, ServeError> {
        if !states.iter().any(|state| state.served.durable) {
            return Ok(None);
        }
        let store = match &self.run_store {
            Some(store) => store.clone(),
            None => default_run_store()?,
        };
        Ok(Some(Arc::new(Runs::new(store, states))))
    }

    /// The store set in code, else one from the environment (feature `redis`).
    fn shared_store(&self) -> Result<Option<Arc<dyn StateStore>>, ServeError> {
        if let Some(store) = &self.state_store {
            return Ok(Some(store.clone()));
        }
        #[cfg(feature = "redis")]
        if let Some(store) = crate::state::RedisStore::from_env() {
            let store = store.map_err(ServeError::StateStore)?;
            return Ok(Some(Arc::new(store)));
        }
        Ok(None)
    }

    fn build(&self) -> Result<Built, ServeError> {
        let served = self.served()?;
        let hooks = Arc::new(self.all_hooks());
        let metrics = &self.metrics;
        let store = self.shared_store()?;
        let breakers = Arc::new(BreakerRegistry::new());
        if let Some(store) = &store {
            breakers.share(FleetStore::new(store.clone(), metrics.clone()));
        }
        metrics.observe_breakers(breakers.clone());
        let global_limiter = self
            .rate_limit
            .as_ref()
            .map(|policy| RateLimiter::new(policy, LimitScope::Global))
            .filter(|limiter| !limiter.is_empty())
            .map(|mut limiter| {
                if let Some(store) = &store {
                    limiter.share(store.clone(), "global", metrics.clone());
                }
                Arc::new(limiter)
            });
        let hard_stop = HardStop::new();
        let shared = Arc::new(Shared {
            title: self.title.clone(),
            version: self.version.clone(),
            identity: self.identity.clone(),
            global_limiter: global_limiter.clone(),
            hard_stop: hard_stop.clone(),
            breakers: breakers.clone(),
            metrics: metrics.clone(),
        });
        let wiring = Wiring {
            hooks: &hooks,
            breakers: &breakers,
            global_limiter: global_limiter.as_ref(),
            store: store.as_ref(),
        };
        let mut states = Vec::with_capacity(served.len());
        for mut entry in served {
            // Resolved here so `/endpoints` lists the attempt count the pipeline runs.
            entry.policies.retry = (entry.policies.retry.take())
                .map(|policy| policy.or_max_attempts(self.default_max_attempts));
            if let Err(problem) = check_durable(entry.durable, entry.stream) {
                return Err(ServeError::Policies {
                    path: entry.path.clone(),
                    origin: entry.origin(),
                    source: problem.into(),
                });
            }
            let builder = entry.pipeline_builder(self.fallback.as_ref());
            let pipeline =
                self.pipeline(builder, &wiring)
                    .map_err(|source| ServeError::Policies {
                        path: entry.path.clone(),
                        origin: entry.origin(),
                        source,
                    })?;
            states.push(Arc::new(EndpointState {
                served: entry,
                pipeline,
                shared: shared.clone(),
            }));
        }
        let runs = self.durable_runs(&states)?;
        let gateway = self.gateway_state(&shared, &wiring)?;
        let labels = (states.iter().map(|state| state.served.path.clone()))
            .chain((gateway.iter().flat_map(|g| g.routes())).map(|route| route.label()));
        warn_unmatched_hooks(&hooks, &labels.collect::<Vec<String>>());
        let router = router::build(&shared, states, gateway, runs.clone(), self.body_limit);
        Ok(Built {
            router,
            hooks,
            hard_stop,
            runs,
        })
    }
}

/// The SQLite file `FASTAGENTIC_RUNS_PATH` names, else `fastagentic-runs.sqlite3`.
#[cfg(feature = "sqlite")]
fn default_run_store() -> Result<Arc<dyn RunStore>, ServeError> {
    let path = std::env::var_os(crate::durable::RUNS_PATH_ENV)
        .filter(|path| !path.is_empty())
        .map_or_else(
            || "fastagentic-runs.sqlite3".into(),
            std::path::PathBuf::from,
        );
    let store = crate::durable::SqliteRunStore::open(&path).map_err(ServeError::RunStore)?;
    tracing::info!(path = %path.display(), "durable runs are kept in this SQLite file");
    Ok(Arc::new(store))
}

/// Without SQLite, runs are kept in memory: they survive a timeout, not the process.
#[cfg(not(feature = "sqlite"))]
fn default_run_store() -> Result<Arc<dyn RunStore>, ServeError> {
    tracing::warn!(
        "durable runs are kept in memory (the `sqlite` feature is off): they survive a \
         checkpoint, not a restart; pass a store to `App::run_store`"
    );
    Ok(Arc::new(crate::durable::MemoryRunStore::new()))
}

/// What every pipeline of one app is wired to.
struct Wiring<'a> {
    hooks: &'a Arc<Hooks>,
    breakers: &'a Arc<BreakerRegistry>,
    global_limiter: Option<&'a Arc<RateLimiter>>,
    store: Option<&'a Arc<dyn StateStore>>,
}

impl App {
    /// A pipeline of `builder`'s policies with the app's providers, prices, ledger,
    /// limits, hooks, metrics and breakers.
    fn pipeline(
        &self,
        mut builder: PipelineBuilder,
        wiring: &Wiring<'_>,
    ) -> Result<Pipeline, PolicyError> {
        builder = builder.breaker_registry(wiring.breakers.clone());
        if let Some(pricing) = &self.pricing {
            builder = builder.pricing(pricing.clone());
        }
        if let Some(ledger) = &self.ledger {
            builder = builder.ledger(ledger.clone());
        }
        if let Some(providers) = &self.providers {
            builder = builder.providers(providers.clone());
        }
        if let Some(limiter) = wiring.global_limiter {
            builder = builder.global_rate_limiter(limiter.clone());
        }
        if let Some(store) = wiring.store {
            builder = builder.state_store_counted_in(store.clone(), self.metrics.clone());
        }
        if !wiring.hooks.is_empty() {
            builder = builder.event_sink(wiring.hooks.clone());
        }
        builder.event_sink(self.metrics.clone()).build()
    }

    /// The front door's routes, each with its pipeline; `None` when it is off.
    fn gateway_state(
        &self,
        shared: &Arc<Shared>,
        wiring: &Wiring<'_>,
    ) -> Result<Option<Arc<GatewayState>>, ServeError> {
        let Some(gateway) = &self.gateway else {
            return Ok(None);
        };
        let mut routes = Vec::new();
        for (route, mut policies) in gateway.resolved()? {
            policies.retry = (policies.retry.take())
                .map(|policy| policy.or_max_attempts(self.default_max_attempts));
            let model = route.is_model().then(|| route.primary());
            let builder = (policies.clone()).builder(&gateway::label(route.name()), model);
            let pipeline =
                self.pipeline(builder, wiring)
                    .map_err(|source| ServeError::GatewayPolicies {
                        route: route.name().to_owned(),
                        source,
                    })?;
            routes.push(Arc::new(RouteState {
                route,
                policies,
                pipeline,
            }));
        }
        Ok(Some(Arc::new(GatewayState::new(shared.clone(), routes))))
    }
}

/// Logs each hook scoped to a path none of `served` answers: it would never run, most
/// likely for a typo in its `endpoint`. A warning, not an error: one program may build
/// several apps, each serving some of the paths its hooks name.
fn warn_unmatched_hooks(hooks: &Hooks, served: &[String]) {
    for event in EventKind::ALL {
        for hook in hooks.for_event(*event) {
            let Some(scope) = hook.scope() else { continue };
            if served
                .iter()
                .any(|label| crate::hooks::scope_covers(scope, label))
            {
                continue;
            }
            tracing::warn!(
                hook = hook.label(),
                event = event.hook_name(),
                endpoint = scope,
                served = ?served,
                "a hook is scoped to a path this app does not serve, so it will never run; \
                 check its `endpoint`"
            );
        }
    }
}

/// Refuses paths the router cannot serve literally.
fn check_path(entry: &Served, gateway: bool) -> Result<(), ServeError> {
    let path = entry.path.as_str();
    let reason = if !path.starts_with('/') {
        Some("a path must start with `/`")
    } else if RESERVED.contains(&path) {
        Some("the app answers this path itself (health, metrics, endpoint listing)")
    } else if gateway && gateway::claims(path) {
        Some("the OpenAI-compatible gateway answers this path")
    } else if path.contains(['{', '}']) {
        Some("a path may not contain `{` or `}`")
    } else if path
        .split('/')
        .any(|segment| segment.starts_with(':') || segment.starts_with('*'))
    {
        Some("a path segment may not start with `:` or `*`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ServeError::InvalidPath {
            path: path.to_owned(),
            origin: entry.origin(),
            reason,
        }),
        None => Ok(()),
    }
}

async fn fire(hooks: &Hooks, event: EventKind) {
    let mut event = PipelineEvent::app(event);
    hooks.dispatch(&mut event).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AgentContext;
    use crate::error::AgentError;

    #[tokio::test(flavor = "multi_thread")]
    async fn the_router_mounts_inside_an_existing_app() -> Result<(), Box<dyn std::error::Error>> {
        let route = Route::new("/double", |_: AgentContext, n: u32| async move {
            Ok::<_, AgentError>(n * 2)
        });
        let agents = App::bare("Mounted").route(route).router()?;
        let outer = Router::new()
            .route("/", axum::routing::get(|| async { "home" }))
            .nest("/agents", agents);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let server = tokio::spawn(async move { axum::serve(listener, outer).await });
        let client = reqwest::Client::new();
        let doubled = client
            .post(format!("{base}/agents/double"))
            .body("21")
            .send()
            .await?;
        assert_eq!(doubled.status(), 200);
        assert_eq!(doubled.text().await?, "42");
        let health = client.get(format!("{base}/agents/health")).send().await?;
        assert_eq!(health.status(), 200);
        let home = client.get(format!("{base}/")).send().await?;
        assert_eq!(home.text().await?, "home");
        server.abort();
        Ok(())
    }
}
