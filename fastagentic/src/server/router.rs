//! The axum router: one `POST` route per endpoint, `GET /health`, `GET /metrics`,
//! `GET /endpoints`, `GET /openapi.json` (rendered at `GET /docs`), the status page (`GET /status`, its data at
//! `GET /status.json`), and JSON answers for unknown paths (404) and wrong methods (405).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde_json::{Value, json};

use super::cost;
use super::gateway::{self, GatewayState};
use super::identity::Caller;
use super::request_id;
use super::runs::{self, Runs};
use super::sse;
use super::state::{EndpointState, Shared};
use super::status::{Refused, error_response, insert_rate_headers, plain_error};
use crate::error::ErrorClass;
use crate::reliability::RequestInfo;
use crate::reliability::execute::in_span;
use crate::reliability::rate_limit::SeenLimits;
use crate::spend::Spend;

/// Builds the router over `endpoints`.
pub(crate) fn build(
    shared: &Arc<Shared>,
    endpoints: Vec<Arc<EndpointState>>,
    gateway: Option<Arc<GatewayState>>,
    runs: Option<Arc<Runs>>,
    body_limit: usize,
) -> Router {
    let mut router = Router::new();
    for state in &endpoints {
        let path = state.served.path.clone();
        let state = state.clone();
        let runs = runs.clone().filter(|_| state.served.durable);
        let route: MethodRouter = post(
            move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| {
                run_endpoint(state.clone(), runs.clone(), headers, body)
            },
        )
        .fallback(|| async { method_not_allowed("POST") });
        router = router.route(&path, route);
    }
    let health = {
        let shared = shared.clone();
        get(move || {
            let body = json!({
                "status": "ok",
                "title": shared.title,
                "version": shared.version,
            });
            async move { axum::Json(body) }
        })
    };
    let metrics = {
        let shared = shared.clone();
        get(move |headers: HeaderMap| {
            let answer = shared.identity.operator_access(&headers).map(|()| {
                // Prometheus asks for OpenMetrics first when it can read it.
                let (text, content_type) = if accepts(&headers, "application/openmetrics-text") {
                    let text = shared.metrics.render_openmetrics();
                    (text, crate::metrics::OPENMETRICS_CONTENT_TYPE)
                } else {
                    (shared.metrics.render(), crate::metrics::CONTENT_TYPE)
                };
                ([(header::CONTENT_TYPE, content_type)], text).into_response()
            });
            async move { answer.unwrap_or_else(|refused| refused) }
        })
    };
    // Built and serialized once: the endpoints do not change while the app serves.
    let openapi = {
        let document = super::openapi::document(shared, &endpoints).to_string();
        let document = Bytes::from(document);
        get(move || {
            let body = document.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        })
    };
    let status_page = get(|| async { axum::response::Html(include_str!("assets/status.html")) });
    let status_data = {
        let (endpoints, gateway) = (endpoints.clone(), gateway.clone());
        operator_json(shared, move |shared| {
            status(shared, &endpoints, gateway.as_deref())
        })
    };
    let listing = {
        let gateway = gateway.clone();
        operator_json(shared, move |shared| {
            list(shared, &endpoints, gateway.as_deref())
        })
    };
    if let Some(gateway) = &gateway {
        router = router.merge(gateway::router(gateway.clone()));
    }
    if let Some(runs) = runs {
        router = router.merge(runs::router(shared, runs));
    }
    let get_only = || async { method_not_allowed("GET, HEAD") };
    router
        .route("/health", health.fallback(get_only))
        .route("/metrics", metrics.fallback(get_only))
        .route("/endpoints", listing.fallback(get_only))
        .route("/openapi.json", openapi.fallback(get_only))
        .route("/docs", super::docs::page().fallback(get_only))
        .route(
            "/docs/redoc.standalone.js",
            super::docs::viewer().fallback(get_only),
        )
        .route("/status", status_page.fallback(get_only))
        .route("/status.json", status_data.fallback(get_only))
        .fallback(|| async {
            plain_error(
                StatusCode::NOT_FOUND,
                ErrorClass::NotFound,
                "no endpoint is served at this path; `GET /endpoints` lists them",
            )
        })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(request_id::middleware))
}

/// A durable endpoint's run: JSON only, since a stream cannot be journaled.
async fn start_durable(
    runs: Arc<Runs>,
    state: Arc<EndpointState>,
    caller: Caller,
    headers: &HeaderMap,
    input: Value,
    stream: bool,
) -> Response {
    if stream {
        return plain_error(
            StatusCode::NOT_ACCEPTABLE,
            ErrorClass::InvalidInput,
            "this endpoint is durable and answers JSON only: drop `Accept: \
             text/event-stream` and `\"stream\": true`",
        );
    }
    match runs::Start::of(caller, headers) {
        Ok(start) => Box::pin(runs::start(runs, state, start, input)).await,
        Err(refused) => refused.into_response(),
    }
}

/// Polls a future in place; dropped before it finished, it finishes it in a spawned task.
pub(crate) struct FinishOnDrop<F: Future<Output = T> + Send + 'static, T: Send + 'static> {
    inner: Option<Pin<Box<F>>>,
}

impl<F: Future<Output = T> + Send + 'static, T: Send + 'static> FinishOnDrop<F, T> {
    pub(crate) fn new(future: F) -> Self {
        FinishOnDrop {
            inner: Some(Box::pin(future)),
        }
    }
}

impl<F: Future<Output = T> + Send + 'static, T: Send + 'static> Future for FinishOnDrop<F, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Pending; // polled after completion: never ready again
        };
        let output = std::task::ready!(inner.as_mut().poll(cx));
        self.inner = None;
        Poll::Ready(output)
    }
}

impl<F: Future<Output = T> + Send + 'static, T: Send + 'static> Drop for FinishOnDrop<F, T> {
    fn drop(&mut self) {
        if let Some(unfinished) = self.inner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(unfinished);
        }
    }
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response {
    let mut response = plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorClass::InvalidInput,
        format!("this path answers {allow} only"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `GET /endpoints`: every endpoint and gateway route, its policies and its breakers'
/// states.
fn list(
    shared: &Shared,
    endpoints: &[Arc<EndpointState>],
    gateway: Option<&GatewayState>,
) -> Value {
    let breakers = shared.breakers.snapshot();
    let served = endpoints
        .iter()
        .map(|state| (state.served.describe(), state.served.path.clone()));
    let routes = (gateway.map(GatewayState::routes).unwrap_or_default().iter())
        .map(|route| (route.describe(), route.label()));
    let mut entries: Vec<Value> = served
        .chain(routes)
        .map(|(mut entry, label)| {
            let states: Vec<Value> = breakers
                .iter()
                .filter(|(key, _)| *key.endpoint == *label)
                .map(|(key, snap)| {
                    json!({
                        "model": key.dependency,
                        "state": snap.state.as_str(),
                        "failures_in_window": snap.failures_in_window,
                        "retry_after_ms": snap.retry_after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    })
                })
                .collect();
            entry["breakers"] = states.into();
            entry
        })
        .collect();
    entries.sort_by(|a, b| {
        (a["path"].as_str(), a["name"].as_str()).cmp(&(b["path"].as_str(), b["name"].as_str()))
    });
    json!({
        "title": shared.title,
        "version": shared.version,
        "endpoints": entries,
    })
}

/// A `GET` operator route: `body` as JSON to whoever may read operator routes, the
/// refusal to anyone else.
fn operator_json(
    shared: &Arc<Shared>,
    body: impl Fn(&Shared) -> Value + Clone + Send + Sync + 'static,
) -> MethodRouter {
    let shared = shared.clone();
    get(move |headers: HeaderMap| {
        let answer = (shared.identity.operator_access(&headers))
            .map(|()| axum::Json(body(&shared)).into_response());
        async move { answer.unwrap_or_else(|refused| refused) }
    })
}

/// What the status page shows: the listing's endpoints and breakers, with each endpoint's
/// request limit as an anonymous caller sees it now.
fn status(
    shared: &Shared,
    endpoints: &[Arc<EndpointState>],
    gateway: Option<&GatewayState>,
) -> Value {
    let mut status = list(shared, endpoints, gateway);
    let anonymous = Caller::default();
    if let Some(entries) = status["endpoints"].as_array_mut() {
        for entry in entries {
            let limit = endpoints
                .iter()
                .find(|state| entry["path"] == state.served.path.as_str())
                .and_then(|state| state.rate_snapshot(&anonymous, &SeenLimits::default()));
            entry["limit"] = limit.map_or(Value::Null, |l| {
                json!({
                    "limit": l.limit,
                    "remaining": l.remaining,
                    "reset_ms": u64::try_from(l.reset.as_millis()).unwrap_or(u64::MAX),
                })
            });
        }
    }
    status
}

/// Whether the client's `Accept` names `media_type` (with a non-zero `q`).
fn accepts(headers: &HeaderMap, media_type: &str) -> bool {
    (headers.get_all(header::ACCEPT).iter())
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let named = parts
                .next()
                .is_some_and(|t| t.eq_ignore_ascii_case(media_type));
            let refused =
                parts.any(|p| p.replace(' ', "") == "q=0" || p.replace(' ', "") == "q=0.0");
            named && !refused
        })
}

/// Whether the client asked for `text/event-stream`.
fn accepts_event_stream(headers: &HeaderMap) -> bool {
    accepts(headers, "text/event-stream")
}

/// The request body, or why it cannot be read (too large, cut off).
pub(crate) fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Refused> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorClass::RequestTooLarge,
                "the request body is larger than the server's limit",
            )
        } else {
            Refused::new(
                rejection.status(),
                ErrorClass::InvalidInput,
                format!("the request body could not be read: {rejection}"),
            )
        }
    })
}

/// The request body as JSON (an empty one is `null`), or why it cannot be read.
fn read_json(body: Result<Bytes, BytesRejection>) -> Result<Value, Refused> {
    let body = read_body(body)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&body).map_err(|err| {
        Refused::new(
            StatusCode::BAD_REQUEST,
            ErrorClass::InvalidInput,
            format!("the request body is not valid JSON: {err}"),
        )
    })
}

/// `POST {path}`: decode, identify, run (streamed or not), answer.
async fn run_endpoint(
    state: Arc<EndpointState>,
    runs: Option<Arc<Runs>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let span = tracing::info_span!(
        "fastagentic.http",
        path = %state.served.path,
        request_id = headers
            .get(request_id::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    in_span(answer(state, runs, headers, body), &span).await
}

async fn answer(
    state: Arc<EndpointState>,
    runs: Option<Arc<Runs>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let input = match read_json(body) {
        Ok(input) => input,
        Err(refused) => return refused.into_response(),
    };
    let caller = match state.shared.identity.resolve(&headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let stream = state.served.stream
        || accepts_event_stream(&headers)
        || input.get("stream") == Some(&Value::Bool(true));
    if let Some(runs) = runs {
        return start_durable(runs, state, caller, &headers, input, stream).await;
    }
    // Cancelled when the client goes away (this future, or the stream body, is dropped)
    // or when the app's drain deadline passes.
    let token = state.shared.hard_stop.child_token();
    let guard = token.clone().drop_guard();
    let spend = Arc::new(Spend::new());
    let seen = Arc::new(SeenLimits::default());
    let mut request =
        (RequestInfo::new().cancel_on(token).spend(spend.clone())).report_limits_to(seen.clone());
    if let Some(user) = &caller.user {
        request = request.user(user.clone());
    }
    if let Some(tenant) = &caller.tenant {
        request = request.tenant(tenant.clone());
    }
    if stream {
        let run = sse::EndpointRun {
            state,
            request,
            input,
        };
        return Box::pin(sse::respond_endpoint(run, spend, caller, seen, guard)).await;
    }
    // When the client goes away this handler is dropped and the guard cancels the token;
    // the run is then finished in a task of its own, so it still ends the way a cancelled
    // run ends (`on_error`, the `cancelled` count) instead of vanishing mid-flight. Runs
    // whose client waits pay no task.
    let run = {
        let state = state.clone();
        FinishOnDrop::new(async move { state.served.call(&state.pipeline, request, input).await })
    };
    let result = run.await;
    drop(guard);
    let snapshot = state.rate_snapshot(&caller, &seen);
    let mut response = match result {
        Ok(output) => {
            let mut response = axum::Json(output).into_response();
            if let Some(snapshot) = snapshot {
                insert_rate_headers(response.headers_mut(), &snapshot);
            }
            response
        }
        Err(err) => error_response(&err, snapshot),
    };
    cost::insert_headers(response.headers_mut(), &spend);
    response
}
