//! A streamed answer: events as they arrive, folded into a [`Completion`] on the way.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_util::StreamExt;

use super::completion::{Completion, FinishReason, ToolCall, Usage};
use crate::error::{AgentError, PartialOutput};

/// One piece of a streamed answer.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The provider's id and model name for the response, once known.
    Started {
        /// The response id.
        id: Option<String>,
        /// The model as the provider names it.
        model: Option<String>,
    },
    /// More answer text.
    Text(String),
    /// More reasoning (thinking, thought summary) text.
    Reasoning(String),
    /// More of a refusal message.
    Refusal(String),
    /// A fragment of tool call `index`: the id and name come once, the arguments in pieces.
    ToolCall {
        /// Which call this fragment belongs to.
        index: u32,
        /// The call's id, on its first fragment.
        id: Option<String>,
        /// The tool's name, on its first fragment.
        name: Option<String>,
        /// More of the arguments' JSON text.
        arguments: String,
        /// The provider's opaque token for the call, when it sends one (Gemini's
        /// `thoughtSignature`); see [`ToolCall::signature`].
        signature: Option<String>,
    },
    /// A tool's answer to a call, sent to the caller by an agent loop
    /// ([`Llm::run`](crate::llm::Llm::run)) between two model calls; never by a provider.
    ToolResult {
        /// The call it answers.
        id: String,
        /// The tool's name.
        name: String,
        /// The output, or what the model is told went wrong.
        content: String,
        /// Whether the call failed.
        is_error: bool,
    },
    /// Usage so far. Providers report it cumulatively, so it replaces, never adds to,
    /// what came before.
    Usage(Usage),
    /// Why the model stopped.
    Finish(FinishReason),
}

impl StreamEvent {
    /// Whether the event carries output a reader would see.
    fn is_output(&self) -> bool {
        match self {
            StreamEvent::Text(s) | StreamEvent::Reasoning(s) | StreamEvent::Refusal(s) => {
                !s.is_empty()
            }
            StreamEvent::ToolCall { .. } | StreamEvent::ToolResult { .. } => true,
            StreamEvent::Started { .. } | StreamEvent::Usage(_) | StreamEvent::Finish(_) => false,
        }
    }
}

/// Where a run forwards its output while it runs (see
/// [`RequestInfo::stream_to`](crate::reliability::RequestInfo::stream_to)). Bounded, so a
/// slow reader slows the producer instead of piling events up in memory.
pub type StreamSink = tokio::sync::mpsc::Sender<StreamEvent>;

type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, AgentError>> + Send>>;

/// A streamed answer.
///
/// Read it event by event with [`next`](CompletionStream::next) (or as a
/// [`Stream`](futures_core::Stream)), or wait for the whole of it with
/// [`collect`](CompletionStream::collect). Either way it keeps the answer so far in a
/// [`Completion`]: text and reasoning concatenated, tool calls assembled by index, the
/// last usage reported.
///
/// An error after output was handed out carries that output
/// ([`AgentError::partial`]), so the pipeline will not silently start the answer over.
pub struct CompletionStream {
    events: EventStream,
    so_far: Completion,
    /// The index of each entry of `so_far.tool_calls`, kept sorted.
    tool_indexes: Vec<u32>,
    delivered: bool,
    ended: bool,
}

impl fmt::Debug for CompletionStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionStream")
            .field("so_far", &self.so_far)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl CompletionStream {
    /// Wraps `events` from `provider` answering as `model`.
    pub fn new<S>(provider: impl Into<Arc<str>>, model: impl Into<String>, events: S) -> Self
    where
        S: Stream<Item = Result<StreamEvent, AgentError>> + Send + 'static,
    {
        CompletionStream {
            events: Box::pin(events),
            so_far: Completion {
                provider: provider.into(),
                model: model.into(),
                ..Completion::default()
            },
            tool_indexes: Vec::new(),
            delivered: false,
            ended: false,
        }
    }

    /// A stream that replays a whole answer as events.
    pub fn from_completion(completion: Completion) -> Self {
        let events = completion_events(&completion);
        let stream = futures_util::stream::iter(events.into_iter().map(Ok));
        CompletionStream::new(completion.provider, completion.model, stream)
    }

    /// The next event; `None` once the answer is complete or after an error.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, AgentError>> {
        self.pull(true).await
    }

    /// Waits for the whole answer.
    ///
    /// Nothing was handed out, so an error here carries no partial output and the
    /// pipeline may retry it.
    pub async fn collect(mut self) -> Result<Completion, AgentError> {
        while let Some(item) = self.pull(false).await {
            item?;
        }
        Ok(self.into_completion())
    }

    /// The next event, counted as handed out (`hand_out`) or only folded in.
    pub(crate) async fn pull(&mut self, hand_out: bool) -> Option<Result<StreamEvent, AgentError>> {
        if self.ended {
            return None;
        }
        let item = self.events.next().await;
        self.absorb(item, hand_out)
    }

    /// The answer so far.
    pub fn so_far(&self) -> &Completion {
        &self.so_far
    }

    /// The answer so far.
    pub fn into_completion(self) -> Completion {
        self.so_far
    }

    /// Takes the answer so far, leaving an empty one.
    pub(crate) fn take_completion(&mut self) -> Completion {
        std::mem::take(&mut self.so_far)
    }

    /// Whether output has been handed out.
    pub fn delivered(&self) -> bool {
        self.delivered
    }

    /// Marks `err` with the provider and model, and with the output handed out so far.
    pub(crate) fn fail(&mut self, err: AgentError) -> AgentError {
        self.ended = true;
        let err = self.label(err);
        if !self.delivered {
            return err;
        }
        let mut partial = PartialOutput::new(self.so_far.text.clone());
        partial.usage = self.so_far.usage;
        err.with_partial(partial)
    }

    fn label(&self, err: AgentError) -> AgentError {
        let err = if err.provider().is_none() {
            err.with_provider(self.so_far.provider.clone())
        } else {
            err
        };
        if err.model().is_none() && !self.so_far.model.is_empty() {
            let model = self.so_far.model.clone();
            err.with_model(model)
        } else {
            err
        }
    }

    fn absorb(
        &mut self,
        item: Option<Result<StreamEvent, AgentError>>,
        hand_out: bool,
    ) -> Option<Result<StreamEvent, AgentError>> {
        match item {
            None => {
                self.ended = true;
                None
            }
            Some(Err(err)) => Some(Err(self.fail(err))),
            Some(Ok(event)) => {
                self.delivered |= hand_out && event.is_output();
                self.apply(event.clone());
                Some(Ok(event))
            }
        }
    }

    fn apply(&mut self, event: StreamEvent) {
        let so_far = &mut self.so_far;
        match event {
            StreamEvent::Started { id, model } => {
                so_far.id = id.or(so_far.id.take());
                if let Some(model) = model {
                    so_far.model = model;
                }
            }
            StreamEvent::Text(text) => so_far.text.push_str(&text),
            StreamEvent::Reasoning(text) => so_far.reasoning.push_str(&text),
            StreamEvent::Refusal(text) => so_far.refusal.get_or_insert_default().push_str(&text),
            StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
                signature,
            } => {
                let call = self.tool_call(index);
                if let Some(id) = id {
                    call.id = id;
                }
                if let Some(name) = name {
                    call.name = name;
                }
                call.arguments.push_str(&arguments);
                if signature.is_some() {
                    call.signature = signature;
                }
            }
            StreamEvent::Usage(usage) => so_far.usage = Some(usage),
            StreamEvent::Finish(reason) => so_far.finish_reason = Some(reason),
            // Not part of any one model's answer.
            StreamEvent::ToolResult { .. } => {}
        }
    }
}

/// The events that stream `completion`, in the order a provider would send them.
pub(crate) fn completion_events(completion: &Completion) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Started {
        id: completion.id.clone(),
        model: Some(completion.model.clone()),
    }];
    let texts = [
        (
            &completion.reasoning,
            StreamEvent::Reasoning as fn(String) -> StreamEvent,
        ),
        (&completion.text, StreamEvent::Text),
    ];
    for (text, event) in texts {
        if !text.is_empty() {
            events.push(event(text.clone()));
        }
    }
    if let Some(refusal) = &completion.refusal {
        events.push(StreamEvent::Refusal(refusal.clone()));
    }
    for (index, call) in (0u32..).zip(&completion.tool_calls) {
        events.push(StreamEvent::ToolCall {
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.clone(),
            signature: None,
        });
    }
    events.extend(completion.usage.map(StreamEvent::Usage));
    events.extend(completion.finish_reason.clone().map(StreamEvent::Finish));
    events
}

impl CompletionStream {
    /// The tool call with `index`, created in index order on its first fragment.
    fn tool_call(&mut self, index: u32) -> &mut ToolCall {
        let at = match self.tool_indexes.binary_search(&index) {
            Ok(at) => at,
            Err(at) => {
                self.tool_indexes.insert(at, index);
                self.so_far.tool_calls.insert(at, ToolCall::default());
                at
            }
        };
        &mut self.so_far.tool_calls[at]
    }
}

impl Stream for CompletionStream {
    type Item = Result<StreamEvent, AgentError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.events.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(item) => Poll::Ready(self.absorb(item, true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorClass;

    fn stream_of(items: Vec<Result<StreamEvent, AgentError>>) -> CompletionStream {
        CompletionStream::new("mock", "m", futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn folds_text_tool_calls_and_last_usage() {
        let stream = stream_of(vec![
            Ok(StreamEvent::Text("Hel".into())),
            Ok(StreamEvent::ToolCall {
                index: 1,
                id: Some("b".into()),
                name: Some("second".into()),
                arguments: "{\"x\":".into(),
                signature: None,
            }),
            Ok(StreamEvent::ToolCall {
                index: 0,
                id: Some("a".into()),
                name: Some("first".into()),
                arguments: "{}".into(),
                signature: None,
            }),
            Ok(StreamEvent::ToolCall {
                index: 1,
                id: None,
                name: None,
                arguments: "1}".into(),
                signature: Some("sig".into()),
            }),
            Ok(StreamEvent::Text("lo".into())),
            Ok(StreamEvent::Usage(Usage::new(3, 1))),
            Ok(StreamEvent::Usage(Usage::new(3, 2))),
            Ok(StreamEvent::Finish(FinishReason::ToolCalls)),
        ]);
        let done = stream.collect().await.unwrap();
        assert_eq!(done.text, "Hello");
        assert_eq!(done.usage, Some(Usage::new(3, 2)));
        assert_eq!(done.finish_reason, Some(FinishReason::ToolCalls));
        let names: Vec<_> = done.tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["first", "second"]);
        assert_eq!(done.tool_calls[1].arguments, "{\"x\":1}");
        assert_eq!(done.tool_calls[1].signature.as_deref(), Some("sig"));
    }

    #[tokio::test]
    async fn an_error_after_output_carries_it() {
        let mut stream = stream_of(vec![
            Ok(StreamEvent::Usage(Usage::new(5, 0))),
            Ok(StreamEvent::Text("partial".into())),
            Err(AgentError::new(ErrorClass::Overloaded, "busy")),
            Ok(StreamEvent::Text("never".into())),
        ]);
        assert!(stream.next().await.unwrap().is_ok());
        assert!(!stream.delivered(), "usage is not output");
        assert!(stream.next().await.unwrap().is_ok());
        let err = stream.next().await.unwrap().unwrap_err();
        assert_eq!(err.class(), ErrorClass::Overloaded);
        assert_eq!(err.provider(), Some("mock"));
        let partial = err.partial().unwrap();
        assert_eq!(partial.text, "partial");
        assert_eq!(partial.usage, Some(Usage::new(5, 0)));
        assert!(
            stream.next().await.is_none(),
            "the stream ends at its error"
        );
    }

    #[tokio::test]
    async fn an_error_before_output_carries_none() {
        let mut stream = stream_of(vec![Err(AgentError::new(ErrorClass::ServerError, "x"))]);
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.partial().is_none());
    }

    #[tokio::test]
    async fn collect_hands_out_nothing_so_errors_stay_retryable() {
        let stream = stream_of(vec![
            Ok(StreamEvent::Text("partial".into())),
            Err(AgentError::new(ErrorClass::Overloaded, "busy")),
        ]);
        let err = stream.collect().await.unwrap_err();
        assert!(err.partial().is_none());
    }
}
