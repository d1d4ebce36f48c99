//! Streaming answers as server-sent events (`text/event-stream`).
//!
//! An endpoint streams when it is declared `stream = true`, when the request carries
//! `Accept: text/event-stream`, or when the JSON body has a top-level `"stream": true`.
//! Everything the body reads from `ctx.llm().stream(..)` (or sends itself) is forwarded as
//! it arrives:
//!
//! | `event:` | `data:` |
//! |---|---|
//! | `delta` | `{"text": "..."}` — more answer text |
//! | `reasoning` | `{"text": "..."}` — more reasoning (thinking) text |
//! | `refusal` | `{"text": "..."}` — more of a refusal |
//! | `tool_call` | `{"index", "id", "name", "arguments"}` — a fragment of a tool call |
//! | `usage` | the usage so far: `{"input", "output", "reasoning", "cache_read", "cache_write", "total"}` |
//! | `finish` | `{"reason": "stop"}` — why the model stopped |
//! | `cost` | what the run spent, per model (see [`super::cost`]); just before `done` or `error`, when the run called a model |
//! | `done` | the endpoint's JSON output; the last event of a successful stream |
//! | `error` | `{"error": {...}}`, the body a non-streaming request would get; the last event of a failed stream |
//!
//! The status line is held back until the first event: a run that fails before it sent
//! anything (a rate limit, an open circuit, a bad input) is answered like a
//! non-streaming request, with its status code, headers and JSON body. Once events have
//! gone out the status is 200, so a later failure arrives as an `error` event and the
//! stream ends cleanly. Once the first event went out, the server sends a keep-alive
//! comment every 15 seconds while it waits for the next one (before that, nothing is sent:
//! the status is not decided yet). A client that closes the stream cancels the run.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use super::cost;
use super::identity::Caller;
use super::state::EndpointState;
use super::status::{error_body, error_response, insert_rate_headers};
use crate::error::{AgentError, ErrorClass};
use crate::llm::StreamEvent;
use crate::reliability::rate_limit::SeenLimits;
use crate::reliability::{RateLimitSnapshot, RequestInfo};
use crate::spend::Spend;

/// Events waiting between the run and the client; a slow client slows the run.
const BUFFER: usize = 32;

/// What the run's task tells the response.
enum Message {
    Event(Event),
    /// The run failed before any event went out: answer with a status code.
    Failed(AgentError),
}

fn event(name: &'static str, data: &Value) -> Event {
    // Compact JSON has no raw newlines, so it is one `data:` line.
    Event::default().event(name).data(data.to_string())
}

/// The SSE event for one stream event, or `None` for bookkeeping events.
fn to_event(item: &StreamEvent) -> Option<Event> {
    Some(match item {
        StreamEvent::Text(text) => event("delta", &json!({ "text": text })),
        StreamEvent::Reasoning(text) => event("reasoning", &json!({ "text": text })),
        StreamEvent::Refusal(text) => event("refusal", &json!({ "text": text })),
        StreamEvent::ToolCall {
            index,
            id,
            name,
            arguments,
            ..
        } => event(
            "tool_call",
            &json!({ "index": index, "id": id, "name": name, "arguments": arguments }),
        ),
        StreamEvent::ToolResult {
            id,
            name,
            content,
            is_error,
        } => event(
            "tool_result",
            &json!({ "id": id, "name": name, "content": content, "is_error": is_error }),
        ),
        StreamEvent::Usage(usage) => event("usage", &json!(usage)),
        StreamEvent::Finish(reason) => event("finish", &json!({ "reason": reason.as_str() })),
        _ => return None,
    })
}

/// How a run's stream is written on the wire: our own events ([`Events`]), or the
/// shape of the OpenAI front door.
pub(crate) trait StreamWire: Send + 'static {
    /// What the run returns.
    type Output: Send + 'static;

    /// The SSE event for one stream event, or `None` when it shows nothing.
    fn event(&mut self, item: &StreamEvent) -> Option<Event>;

    /// The events that end a stream whose run answered in it (`started`: events went
    /// out before; a run that failed before that is refused with a status instead).
    fn end(&mut self, result: Result<Self::Output, AgentError>, spend: &Spend) -> Vec<Event>;

    /// The whole answer to a run that failed before its first event.
    fn refuse(err: &AgentError, snapshot: Option<RateLimitSnapshot>) -> Response;
}

/// fastagentic's own event stream (the table in the [module docs](self)).
pub(crate) struct Events;

impl StreamWire for Events {
    type Output = Value;

    fn event(&mut self, item: &StreamEvent) -> Option<Event> {
        to_event(item)
    }

    fn end(&mut self, result: Result<Value, AgentError>, spend: &Spend) -> Vec<Event> {
        let cost = cost::summary(spend).map(|summary| event("cost", &summary));
        let last = match result {
            Ok(output) => event("done", &output),
            Err(err) => event("error", &error_body(&err)),
        };
        cost.into_iter().chain([last]).collect()
    }

    fn refuse(err: &AgentError, snapshot: Option<RateLimitSnapshot>) -> Response {
        error_response(err, snapshot)
    }
}

/// The channel a streamed run forwards its events to: give the sender to the run
/// ([`RequestInfo::stream_to`]) and the receiver to [`respond`].
pub(crate) fn channel() -> (mpsc::Sender<StreamEvent>, mpsc::Receiver<StreamEvent>) {
    mpsc::channel(BUFFER)
}

/// One run of an endpoint: where, for whom, on what.
pub(crate) struct EndpointRun {
    pub(crate) state: Arc<EndpointState>,
    pub(crate) request: RequestInfo,
    pub(crate) input: Value,
}

/// Runs the endpoint with its output streamed, answering `text/event-stream`.
pub(crate) async fn respond_endpoint(
    run: EndpointRun,
    spend: Arc<Spend>,
    caller: Caller,
    seen: Arc<SeenLimits>,
    guard: DropGuard,
) -> Response {
    let EndpointRun {
        state,
        request,
        input,
    } = run;
    let (sink, events) = channel();
    let request = request.stream_to(sink);
    let run = {
        let state = state.clone();
        async move { state.served.call(&state.pipeline, request, input).await }
    };
    let snapshot = move || state.rate_snapshot(&caller, &seen);
    respond(run, events, Events, snapshot, spend, guard).await
}

/// Runs `run` with its output streamed in `wire`'s shape, answering `text/event-stream`.
///
/// `guard` cancels the run when dropped: it lives in the handler until the first event,
/// then in the response body, so a client that goes away at any point cancels the run.
/// `snapshot` reads the caller's rate limits once the run has started or failed.
pub(crate) async fn respond<W: StreamWire>(
    run: impl Future<Output = Result<W::Output, AgentError>> + Send + 'static,
    events: mpsc::Receiver<StreamEvent>,
    wire: W,
    snapshot: impl FnOnce() -> Option<RateLimitSnapshot>,
    spend: Arc<Spend>,
    guard: DropGuard,
) -> Response {
    let (out, mut messages) = mpsc::channel(BUFFER);
    tokio::spawn(drive(run, events, wire, spend.clone(), out));
    let first = messages.recv().await;
    let snapshot = snapshot();
    let first = match first {
        Some(Message::Event(first)) => first,
        Some(Message::Failed(err)) => {
            let mut response = W::refuse(&err, snapshot);
            cost::insert_headers(response.headers_mut(), &spend);
            return response;
        }
        None => {
            let err = AgentError::new(ErrorClass::Other, "the run ended without an answer");
            return W::refuse(&err, snapshot);
        }
    };
    let rest =
        futures_util::stream::unfold((messages, guard), |(mut messages, guard)| async move {
            match messages.recv().await {
                Some(Message::Event(e)) => Some((Ok::<_, Infallible>(e), (messages, guard))),
                Some(Message::Failed(_)) | None => None,
            }
        });
    let stream = futures_util::stream::once(async move { Ok(first) }).chain(rest);
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response();
    // Tells nginx-style proxies not to buffer the stream.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    if let Some(snapshot) = snapshot {
        insert_rate_headers(response.headers_mut(), &snapshot);
    }
    response
}

/// The run's task: runs it, forwarding its stream events, then its outcome.
async fn drive<W: StreamWire>(
    run: impl Future<Output = Result<W::Output, AgentError>> + Send,
    mut events: mpsc::Receiver<StreamEvent>,
    mut wire: W,
    spend: Arc<Spend>,
    out: mpsc::Sender<Message>,
) {
    let mut run = std::pin::pin!(run);
    let mut started = false;
    let result = loop {
        tokio::select! {
            biased;
            Some(item) = events.recv() => {
                if let Some(e) = wire.event(&item) {
                    if out.send(Message::Event(e)).await.is_err() {
                        return; // the client is gone; dropping `run` ends it
                    }
                    started = true;
                }
            }
            result = &mut run => break result,
        }
    };
    while let Ok(item) = events.try_recv() {
        if let Some(e) = wire.event(&item) {
            if out.send(Message::Event(e)).await.is_err() {
                return;
            }
            started = true;
        }
    }
    // A run that failed before any event went out is answered with a status code, and
    // its cost in the headers.
    let last = match result {
        Err(err) if !started => vec![Message::Failed(err)],
        result => (wire.end(result, &spend).into_iter())
            .map(Message::Event)
            .collect(),
    };
    for message in last {
        if out.send(message).await.is_err() {
            return; // nobody to tell if the client left
        }
    }
}
