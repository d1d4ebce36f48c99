//! The front door's routes: `POST /v1/chat/completions`, `GET /v1/models` and
//! `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::request::ChatRequest;
use super::response::{Chunks, completion, now};
use super::{CHAT_COMPLETIONS, GatewayRoute, MODELS, Routes, error, label};
use crate::endpoint::EndpointPolicies;
use crate::error::AgentError;
use crate::llm::{Completion, Prompt, StreamEvent};
use crate::reliability::execute::in_span;
use crate::reliability::rate_limit::SeenLimits;
use crate::reliability::{Pipeline, RequestInfo};
use crate::server::cost;
use crate::server::identity::Caller;
use crate::server::request_id;
use crate::server::router::{FinishOnDrop, method_not_allowed, read_body};
use crate::server::sse;
use crate::server::state::{Shared, rate_snapshot};
use crate::server::status::insert_rate_headers;
use crate::spend::Spend;

/// One name clients may send as `model`, and the pipeline it runs in.
pub(crate) struct RouteState {
    pub(crate) route: GatewayRoute,
    /// The policies the pipeline runs, defaults resolved, for the listing.
    pub(crate) policies: EndpointPolicies,
    pub(crate) pipeline: Pipeline,
}

impl RouteState {
    /// What its pipeline is called in breakers, metrics and hooks.
    pub(crate) fn label(&self) -> String {
        label(self.route.name())
    }

    /// The entry of `GET /endpoints`, in the shape of an endpoint's.
    pub(crate) fn describe(&self) -> Value {
        let p = &self.policies;
        json!({
            "path": CHAT_COMPLETIONS,
            "name": self.route.name(),
            "description": self.route.description_text(),
            "model": self.route.primary(),
            "stream": false,
            "policies": {
                "retry": p.retry,
                "circuit_breaker": p.circuit_breaker,
                "timeout": p.timeout,
                "fallback": p.fallback,
                "rate_limit": p.rate_limit,
            },
        })
    }
}

/// Everything the front door's handlers read.
pub(crate) struct GatewayState {
    routes: Routes,
    /// The routes in the order they were configured, for the listing.
    order: Vec<Arc<RouteState>>,
    shared: Arc<Shared>,
    /// When the app was built: the `created` of every listed model.
    created: u64,
}

impl GatewayState {
    pub(crate) fn new(shared: Arc<Shared>, order: Vec<Arc<RouteState>>) -> Self {
        let routes = order
            .iter()
            .map(|state| (state.route.name().to_owned(), state.clone()))
            .collect();
        GatewayState {
            routes,
            order,
            shared,
            created: now(),
        }
    }

    /// The pipelines, for the app's listing of what it serves.
    pub(crate) fn routes(&self) -> &[Arc<RouteState>] {
        &self.order
    }
}

/// The front door's router, to merge into the app's.
pub(crate) fn router(state: Arc<GatewayState>) -> Router {
    let chat = {
        let state = state.clone();
        post(
            move |headers: HeaderMap, body: Result<Bytes, BytesRejection>| {
                chat_completions(state.clone(), headers, body)
            },
        )
        .fallback(|| async { method_not_allowed("POST") })
    };
    let list = {
        let state = state.clone();
        get(move || {
            let body = json!({"object": "list", "data": listing(&state)});
            async move { axum::Json(body) }
        })
    };
    let one = get(move |Path(id): Path<String>| {
        let found = listing(&state).into_iter().find(|model| model["id"] == *id);
        async move {
            match found {
                Some(model) => axum::Json(model).into_response(),
                None => error::unknown_model(&id),
            }
        }
    });
    let get_only = || async { method_not_allowed("GET, HEAD") };
    Router::new()
        .route(CHAT_COMPLETIONS, chat)
        .route(MODELS, list.fallback(get_only))
        .route(&format!("{MODELS}/{{*id}}"), one.fallback(get_only))
}

/// Every route and model as an OpenAI model object.
fn listing(state: &GatewayState) -> Vec<Value> {
    state
        .order
        .iter()
        .map(|served| {
            let route = &served.route;
            // A model served under its own name is its provider's; a route is ours.
            let owner = match route.name().split_once('/') {
                Some((provider, _)) if route.is_model() => provider,
                _ => "fastagentic",
            };
            json!({
                "id": route.name(),
                "object": "model",
                "created": state.created,
                "owned_by": owner,
            })
        })
        .collect()
}

async fn chat_completions(
    state: Arc<GatewayState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let span = tracing::info_span!(
        "fastagentic.http",
        path = CHAT_COMPLETIONS,
        request_id = headers
            .get(request_id::X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or(""),
    );
    in_span(answer(state, headers, body), &span).await
}

async fn answer(
    state: Arc<GatewayState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let shared = &state.shared;
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refused) => return error::refused(&refused),
    };
    let mut caller = match shared.identity.resolve(&headers) {
        Ok(caller) => caller,
        Err(refused) => return error::refused(&refused),
    };
    let chat = match ChatRequest::from_slice(&body) {
        Ok(chat) => chat,
        Err(err) => return error::response(&err, None),
    };
    let Some(route) = state.routes.get(&chat.model).cloned() else {
        return error::unknown_model(&chat.model);
    };
    // The body's `user` is believed where identity headers are: a key that names its
    // user is not overridden by a field the client writes.
    if caller.user.is_none() && shared.identity.trusts_headers() {
        caller.user = chat.user.as_deref().map(Into::into);
    }
    let token = shared.hard_stop.child_token();
    let guard = token.clone().drop_guard();
    let spend = Arc::new(Spend::new());
    let seen = Arc::new(SeenLimits::default());
    let request = request_info(&caller, token, spend.clone()).report_limits_to(seen.clone());
    let snapshot = {
        let (shared, route, caller) = (shared.clone(), route.clone(), caller.clone());
        move || rate_snapshot(&shared, &route.pipeline, &caller, &seen)
    };
    if chat.stream {
        let (sink, events) = sse::channel();
        let request = request.stream_to(sink);
        let wire = Chunks::new(&chat.model, chat.include_usage);
        let run = {
            let route = route.clone();
            async move { run(&route.pipeline, request, chat.prompt).await }
        };
        // Boxed: inline, the stream's future (a whole run) would make every request's
        // future that much larger to move around.
        return Box::pin(sse::respond(run, events, wire, snapshot, spend, guard)).await;
    }
    // As on every endpoint: a client that leaves cancels the run, which still ends (and
    // is counted) in a task of its own.
    let run = {
        let route = route.clone();
        FinishOnDrop::new(async move { run(&route.pipeline, request, chat.prompt).await })
    };
    let result = run.await;
    drop(guard);
    let snapshot = snapshot();
    let mut response = match result {
        Ok(answer) => {
            let mut response = axum::Json(completion(&answer, &chat.model)).into_response();
            if let Some(snapshot) = snapshot {
                insert_rate_headers(response.headers_mut(), &snapshot);
            }
            response
        }
        Err(err) => error::response(&err, snapshot),
    };
    cost::insert_headers(response.headers_mut(), &spend);
    response
}

fn request_info(
    caller: &Caller,
    token: tokio_util::sync::CancellationToken,
    spend: Arc<Spend>,
) -> RequestInfo {
    let mut request = RequestInfo::new().cancel_on(token).spend(spend);
    if let Some(user) = &caller.user {
        request = request.user(user.clone());
    }
    if let Some(tenant) = &caller.tenant {
        request = request.tenant(tenant.clone());
    }
    request
}

/// One request through the route's pipeline: each attempt asks the model the pipeline
/// chose (the chain's primary, or a fallback).
async fn run(
    pipeline: &Pipeline,
    request: RequestInfo,
    prompt: Prompt,
) -> Result<Completion, AgentError> {
    pipeline
        .run(request, |ctx| {
            let prompt = prompt.clone();
            async move {
                if !ctx.is_streaming() {
                    return ctx.llm().complete(prompt).await;
                }
                let mut stream = ctx.llm().stream(prompt).await?;
                while let Some(event) = stream.next().await {
                    // Output is forwarded by the stream itself; the model that answers
                    // is not output, so it is passed on here for the chunks to name it.
                    if let started @ StreamEvent::Started { .. } = event? {
                        ctx.send(started).await;
                    }
                }
                Ok::<_, AgentError>(stream.into_completion())
            }
        })
        .await
}
