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
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use super::cost;
use super::identity::Caller;
use super::state::EndpointState;
use super::status::{error_body, error_response, insert_rate_headers, plain_error};
use crate::error::{AgentError, ErrorClass};
use crate::llm::StreamEvent;
use crate::reliability::RequestInfo;
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

/// Runs the endpoint with its output streamed, answering `text/event-stream`.
///
/// `guard` cancels the run when dropped: it lives in the handler until the first event,
/// then in the response body, so a client that goes away at any point cancels the run.
pub(crate) async fn respond(
    state: Arc<EndpointState>,
    request: RequestInfo,
    spend: Arc<Spend>,
    input: Value,
    caller: Caller,
    guard: DropGuard,
) -> Response {
    let (out, mut messages) = mpsc::channel(BUFFER);
    tokio::spawn(drive(state.clone(), request, spend.clone(), input, out));
    let first = messages.recv().await;
    let snapshot = state.rate_snapshot(&caller);
    let first = match first {
        Some(Message::Event(first)) => first,
        Some(Message::Failed(err)) => {
            let mut response = error_response(&err, snapshot);
            cost::insert_headers(response.headers_mut(), &spend);
            return response;
        }
        None => {
            return plain_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorClass::Other,
                "the run ended without an answer",
            );
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

/// The run's task: runs the endpoint, forwarding its stream events, then its outcome.
async fn drive(
    state: Arc<EndpointState>,
    request: RequestInfo,
    spend: Arc<Spend>,
    input: Value,
    out: mpsc::Sender<Message>,
) {
    let (sink, mut events) = mpsc::channel::<StreamEvent>(BUFFER);
    let request = request.stream_to(sink);
    let run = state.served.call(&state.pipeline, request, input);
    let mut run = std::pin::pin!(run);
    let mut started = false;
    let result = loop {
        tokio::select! {
            biased;
            Some(item) = events.recv() => {
                if let Some(e) = to_event(&item) {
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
        if let Some(e) = to_event(&item) {
            if out.send(Message::Event(e)).await.is_err() {
                return;
            }
            started = true;
        }
    }
    // A run that failed before any event went out is answered with a status code, and
    // its cost in the headers; any other gets the cost as an event.
    let answered_in_stream = started || result.is_ok();
    if answered_in_stream
        && let Some(summary) = cost::summary(&spend)
        && out
            .send(Message::Event(event("cost", &summary)))
            .await
            .is_err()
    {
        return;
    }
    let last = match result {
        Ok(output) => Message::Event(event("done", &output)),
        Err(err) if started => Message::Event(event("error", &error_body(&err))),
        Err(err) => Message::Failed(err),
    };
    // Nobody to tell if the client left.
    let _ = out.send(last).await;
}
