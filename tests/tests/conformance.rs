//! Conformance: every fixture in `shared/fixtures/llm-wire/` served by the fake provider server
//! to the real OpenAI, Anthropic and Gemini clients, and checked against the normalized result
//! worked out by hand from the bytes and `shared/reference/provider-wire-formats.md` (§1–§4).
#![allow(clippy::unwrap_used)]

// The fixtures are reference data outside the repository: they are read at test time, never
// copied in. Without the folder (CI always has it) every test says plainly that it skipped.
//
// Real sockets need real time: no paused clock here. Streams are served twice, as one chunk
// and one byte per HTTP chunk (CRLF and multi-byte UTF-8 split across chunks), and must give
// the same result both ways.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use fastagentic::error::ErrorDetail;
use fastagentic::llm::{Completion, FinishReason, Prompt, Provider, StreamEvent, Usage};
use fastagentic::{AgentError, ErrorClass};
use fastagentic_testing::{
    Chunking, FIXTURES, FakeServer, Reply, Route, fixture, fixtures_present,
};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// How long any one network step may take before the test fails instead of hanging.
const STEP_LIMIT: Duration = Duration::from_secs(5);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(STEP_LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP_LIMIT:?}"))
}

// ---------------------------------------------------------------------------------------------
// The three clients, pointed at the fake server
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    OpenAi,
    Anthropic,
    Gemini,
}

impl Api {
    fn client(self, server: &FakeServer) -> Box<dyn Provider> {
        server.client(self.route())
    }

    /// The model asked for.
    fn model(self) -> &'static str {
        self.route().model()
    }

    fn name(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Anthropic => "anthropic",
            Api::Gemini => "gemini",
        }
    }

    fn route(self) -> Route {
        match self {
            Api::OpenAi => Route::OpenAi,
            Api::Anthropic => Route::Anthropic,
            Api::Gemini => Route::Gemini,
        }
    }

    /// The path (and query) the client must have called.
    fn path(self, stream: bool) -> (&'static str, Option<&'static str>) {
        match (self, stream) {
            (Api::OpenAi, _) => ("/v1/chat/completions", None),
            (Api::Anthropic, _) => ("/v1/messages", None),
            (Api::Gemini, false) => ("/v1beta/models/gemini-2.0-flash:generateContent", None),
            (Api::Gemini, true) => (
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                Some("alt=sse"),
            ),
        }
    }
}

/// Every request `server` got went to `api`'s route and path.
fn assert_requests(server: &FakeServer, api: Api, stream: bool, count: usize, ctx: &str) {
    let requests = server.requests();
    assert_eq!(requests.len(), count, "{ctx}: requests");
    let (path, query) = api.path(stream);
    for request in requests {
        assert_eq!(request.route, Some(api.route()), "{ctx}: route");
        assert_eq!(request.path, path, "{ctx}: path");
        assert_eq!(request.query.as_deref(), query, "{ctx}: query");
    }
}

// ---------------------------------------------------------------------------------------------
// Expected results
// ---------------------------------------------------------------------------------------------

/// A normalized usage, field by field.
fn usage(input: u64, output: u64, reasoning: u64, cache_read: u64, total: u64) -> Usage {
    Usage {
        input,
        output,
        reasoning,
        cache_read,
        cache_write: 0,
        total,
    }
}

/// A tool call as it must come out.
struct Call {
    id: &'static str,
    name: &'static str,
    /// The exact JSON text the model wrote.
    arguments: &'static str,
    /// Whether `arguments` is whole JSON (`parse_arguments` succeeds).
    parses: bool,
}

/// The normalized answer a fixture must give (for a failing stream: the answer so far).
struct Expected {
    text: &'static str,
    reasoning: &'static str,
    refusal: Option<&'static str>,
    tool_calls: Vec<Call>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// The model the answer names (the requested one when the wire names none).
    model: &'static str,
    id: Option<&'static str>,
}

impl Expected {
    fn text(text: &'static str, model: &'static str, id: Option<&'static str>) -> Self {
        Expected {
            text,
            reasoning: "",
            refusal: None,
            tool_calls: Vec::new(),
            finish: Some(FinishReason::Stop),
            usage: None,
            model,
            id,
        }
    }

    fn usage(mut self, usage: Usage) -> Self {
        self.usage = Some(usage);
        self
    }

    fn finish(mut self, finish: Option<FinishReason>) -> Self {
        self.finish = finish;
        self
    }

    fn check_completion(&self, done: &Completion, api: Api, ctx: &str) {
        assert_eq!(done.text, self.text, "{ctx}: text");
        assert_eq!(done.reasoning, self.reasoning, "{ctx}: reasoning");
        assert_eq!(done.refusal.as_deref(), self.refusal, "{ctx}: refusal");
        assert_eq!(done.finish_reason, self.finish, "{ctx}: finish reason");
        assert_eq!(done.usage, self.usage, "{ctx}: usage");
        assert_eq!(done.model, self.model, "{ctx}: model");
        assert_eq!(done.id.as_deref(), self.id, "{ctx}: id");
        assert_eq!(&*done.provider, api.name(), "{ctx}: provider");
        assert_eq!(
            done.tool_calls.len(),
            self.tool_calls.len(),
            "{ctx}: tool calls {:?}",
            done.tool_calls
        );
        for (got, want) in done.tool_calls.iter().zip(&self.tool_calls) {
            assert_eq!(got.id, want.id, "{ctx}: tool call id");
            assert_eq!(got.name, want.name, "{ctx}: tool call name");
            assert_eq!(got.arguments, want.arguments, "{ctx}: tool call arguments");
            assert_eq!(
                got.parse_arguments().is_ok(),
                want.parses,
                "{ctx}: whether {:?} parses",
                got.arguments
            );
        }
    }

    /// The events, folded by the test itself, say the same.
    fn check_events(&self, folded: &Folded, api: Api, ctx: &str) {
        assert_eq!(folded.started.len(), 1, "{ctx}: Started events");
        let (id, model) = &folded.started[0];
        assert_eq!(id.as_deref(), self.id, "{ctx}: Started id");
        assert_eq!(
            model.as_deref().unwrap_or(api.model()),
            self.model,
            "{ctx}: Started model"
        );
        assert_eq!(folded.text, self.text, "{ctx}: Text events");
        assert_eq!(folded.reasoning, self.reasoning, "{ctx}: Reasoning events");
        assert_eq!(
            folded.refusal.as_deref(),
            self.refusal,
            "{ctx}: Refusal events"
        );
        assert_eq!(folded.finish, self.finish, "{ctx}: last Finish event");
        assert_eq!(folded.usage, self.usage, "{ctx}: last Usage event");
        let calls: Vec<_> = folded.calls.values().collect();
        assert_eq!(calls.len(), self.tool_calls.len(), "{ctx}: {calls:?}");
        for ((id, name, arguments), want) in calls.into_iter().zip(&self.tool_calls) {
            assert_eq!(id.as_deref(), Some(want.id), "{ctx}: ToolCall id");
            assert_eq!(name.as_deref(), Some(want.name), "{ctx}: ToolCall name");
            assert_eq!(arguments, want.arguments, "{ctx}: ToolCall arguments");
        }
    }
}

/// What a stream that fails after HTTP 200 must report.
struct ExpectedFailure {
    class: ErrorClass,
    message: &'static str,
    /// The text delivered before the error.
    partial_text: &'static str,
    /// The usage reported before the error, if any.
    partial_usage: Option<Usage>,
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

/// The stream's events folded by the test, independently of `CompletionStream`.
#[derive(Debug, Default)]
struct Folded {
    started: Vec<(Option<String>, Option<String>)>,
    text: String,
    reasoning: String,
    refusal: Option<String>,
    calls: BTreeMap<u32, (Option<String>, Option<String>, String)>,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl Folded {
    fn apply(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Started { id, model } => self.started.push((id, model)),
            StreamEvent::Text(text) => self.text.push_str(&text),
            StreamEvent::Reasoning(text) => self.reasoning.push_str(&text),
            StreamEvent::Refusal(text) => {
                self.refusal.get_or_insert_default().push_str(&text);
            }
            StreamEvent::ToolCall {
                index,
                id,
                name,
                arguments,
                ..
            } => {
                let call = self.calls.entry(index).or_default();
                if id.is_some() {
                    call.0 = id;
                }
                if name.is_some() {
                    call.1 = name;
                }
                call.2.push_str(&arguments);
            }
            StreamEvent::Usage(usage) => self.usage = Some(usage),
            StreamEvent::Finish(reason) => self.finish = Some(reason),
            other => panic!("an event this test does not know: {other:?}"),
        }
    }
}

/// A served stream, read event by event to its end or its error.
struct Run {
    folded: Folded,
    /// `CompletionStream::into_completion` after the last event.
    completion: Completion,
    error: Option<AgentError>,
}

async fn serve_stream(api: Api, body: &[u8], chunking: Chunking, ctx: &str) -> Run {
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::sse_in(body, chunking));
    let provider = api.client(&server);
    let prompt = Prompt::user("hi");
    let mut stream = within(ctx, provider.stream(api.model(), &prompt))
        .await
        .unwrap_or_else(|e| panic!("{ctx}: the stream did not start: {e:?}"));
    let mut folded = Folded::default();
    let mut error = None;
    while let Some(item) = within(ctx, stream.next()).await {
        match item {
            Ok(event) => folded.apply(event),
            Err(err) => {
                error = Some(err);
                break;
            }
        }
    }
    if error.is_some() {
        assert!(
            within(ctx, stream.next()).await.is_none(),
            "{ctx}: the stream ends at its error"
        );
    }
    assert_eq!(
        stream.so_far().text,
        folded.text,
        "{ctx}: so_far() text agrees with the events"
    );
    assert_requests(&server, api, true, 1, ctx);
    Run {
        folded,
        completion: stream.into_completion(),
        error,
    }
}

/// Serves a stream fixture whole and byte by byte; both must give `expected`.
async fn check_stream(api: Api, name: &str, expected: &Expected) {
    let Some(body) = fixture(name) else { return };
    for chunking in Chunking::BOTH {
        let ctx = format!("{name} ({chunking:?})");
        let run = serve_stream(api, &body, chunking, &ctx).await;
        if let Some(err) = &run.error {
            panic!("{ctx}: the stream failed: {err:?}");
        }
        expected.check_events(&run.folded, api, &ctx);
        expected.check_completion(&run.completion, api, &ctx);
    }
}

/// Serves a stream fixture that fails after HTTP 200, whole and byte by byte: `before` is the
/// answer up to the error, `failure` the error.
async fn check_failing_stream(api: Api, name: &str, before: &Expected, failure: &ExpectedFailure) {
    let Some(body) = fixture(name) else { return };
    for chunking in Chunking::BOTH {
        let ctx = format!("{name} ({chunking:?})");
        let run = serve_stream(api, &body, chunking, &ctx).await;
        let err = run
            .error
            .unwrap_or_else(|| panic!("{ctx}: the stream ended without its error"));
        assert_eq!(err.class(), failure.class, "{ctx}: class of {err:?}");
        assert_eq!(err.message(), failure.message, "{ctx}: message");
        assert_eq!(err.status(), None, "{ctx}: the HTTP status was 200");
        assert_eq!(err.provider(), Some(api.name()), "{ctx}: provider");
        let partial = err
            .partial()
            .unwrap_or_else(|| panic!("{ctx}: no partial output on {err:?}"));
        assert_eq!(partial.text, failure.partial_text, "{ctx}: partial text");
        assert_eq!(partial.usage, failure.partial_usage, "{ctx}: partial usage");
        before.check_events(&run.folded, api, &ctx);
        before.check_completion(&run.completion, api, &ctx);
    }
}

/// Serves a 200 JSON response to `complete`.
async fn check_complete(api: Api, name: &str, expected: &Expected) {
    let Some(body) = fixture(name) else { return };
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::json(200, body));
    let provider = api.client(&server);
    let done = within(name, provider.complete(api.model(), &Prompt::user("hi")))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
    expected.check_completion(&done, api, name);
    assert_requests(&server, api, false, 1, name);
}

/// What an error body served with `status` must become.
struct ExpectedError {
    status: u16,
    class: ErrorClass,
    retry_after: Option<Duration>,
    detail: Option<ErrorDetail>,
}

fn overflow(input: u64, limit: u64, output: Option<u64>) -> Option<ErrorDetail> {
    Some(ErrorDetail::ContextOverflow {
        input_tokens: Some(input),
        context_limit: Some(limit),
        requested_output: output,
    })
}

/// Serves an error body with its status to `complete` and to `stream` (a non-2xx answer to a
/// streaming request is an ordinary JSON error).
async fn check_error_body(api: Api, name: &str, expected: &ExpectedError) {
    let Some(body) = fixture(name) else { return };
    // The message must be the provider's own: `error.message` of the envelope.
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    let message = envelope["error"]["message"].as_str().unwrap();
    let server = FakeServer::start().await.unwrap();
    server.push_n(Reply::json(expected.status, body.clone()), 2);
    let provider = api.client(&server);
    let prompt = Prompt::user("hi");

    let ctx = format!("{name} (complete)");
    let err = within(&ctx, provider.complete(api.model(), &prompt))
        .await
        .unwrap_err();
    check_error(&err, api, message, expected, &ctx);
    assert_requests(&server, api, false, 1, &ctx);

    let ctx = format!("{name} (stream)");
    let err = within(&ctx, provider.stream(api.model(), &prompt))
        .await
        .unwrap_err();
    check_error(&err, api, message, expected, &ctx);
    assert_eq!(server.requests().len(), 2, "{ctx}: requests");
    assert_eq!(
        server.requests()[1].route,
        Some(api.route()),
        "{ctx}: route"
    );
}

fn check_error(err: &AgentError, api: Api, message: &str, want: &ExpectedError, ctx: &str) {
    assert_eq!(err.class(), want.class, "{ctx}: class of {err:?}");
    assert_eq!(err.status(), Some(want.status), "{ctx}: status");
    assert_eq!(err.message(), message, "{ctx}: message");
    assert_eq!(err.retry_after(), want.retry_after, "{ctx}: retry_after");
    assert_eq!(err.detail(), want.detail.as_ref(), "{ctx}: detail");
    assert_eq!(err.provider(), Some(api.name()), "{ctx}: provider");
    assert!(err.partial().is_none(), "{ctx}: nothing was delivered");
}

// ---------------------------------------------------------------------------------------------
// OpenAI streams
// ---------------------------------------------------------------------------------------------

const OPENAI_MODEL: &str = "gpt-4o-2024-08-06";

#[tokio::test]
async fn openai_chat_stream_usage() {
    let expected = Expected::text(
        "I'm unable to provide real-time weather updates. To get the current weather in San \
         Francisco, I recommend checking a reliable weather website or a weather app.",
        OPENAI_MODEL,
        Some("chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL"),
    )
    // The usage-only chunk with `choices: []`.
    .usage(usage(14, 30, 0, 0, 44));
    check_stream(Api::OpenAi, "openai_chat_stream_usage.sse", &expected).await;
}

#[tokio::test]
async fn openai_chat_stream_length() {
    let expected = Expected::text(
        "{\"",
        OPENAI_MODEL,
        Some("chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh"),
    )
    .finish(Some(FinishReason::Length))
    .usage(usage(79, 1, 0, 0, 80));
    check_stream(Api::OpenAi, "openai_chat_stream_length.sse", &expected).await;
}

#[tokio::test]
async fn openai_chat_stream_parallel_tool_calls() {
    let mut expected = Expected::text(
        "",
        OPENAI_MODEL,
        Some("chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63"),
    )
    .finish(Some(FinishReason::ToolCalls))
    .usage(usage(149, 60, 0, 0, 209));
    expected.tool_calls = vec![
        Call {
            id: "call_JMW1whyEaYG438VE1OIflxA2",
            name: "GetWeatherArgs",
            arguments: r#"{"city": "Edinburgh", "country": "GB", "units": "c"}"#,
            parses: true,
        },
        Call {
            id: "call_DNYTawLBoN8fj3KN6qU9N1Ou",
            name: "get_stock_price",
            arguments: r#"{"ticker": "AAPL", "exchange": "NASDAQ"}"#,
            parses: true,
        },
    ];
    check_stream(
        Api::OpenAi,
        "openai_chat_stream_parallel_tool_calls.sse",
        &expected,
    )
    .await;
}

#[tokio::test]
async fn openai_chat_stream_parallel_tool_calls_parse_to_the_arguments() {
    let Some(body) = fixture("openai_chat_stream_parallel_tool_calls.sse") else {
        return;
    };
    let ctx = "openai_chat_stream_parallel_tool_calls.sse (parsed)";
    let run = serve_stream(Api::OpenAi, &body, Chunking::Whole, ctx).await;
    let calls = run.completion.tool_calls;
    assert_eq!(calls.len(), 2, "{ctx}");
    assert_eq!(
        calls[0].parse_arguments().unwrap(),
        json!({"city": "Edinburgh", "country": "GB", "units": "c"})
    );
    assert_eq!(
        calls[1].parse_arguments().unwrap(),
        json!({"ticker": "AAPL", "exchange": "NASDAQ"})
    );
}

#[tokio::test]
async fn openai_chat_stream_refusal() {
    let mut expected = Expected::text(
        "",
        OPENAI_MODEL,
        Some("chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7"),
    )
    // `delta.refusal` text, then `finish_reason: "stop"`: a refusal.
    .finish(Some(FinishReason::Refusal))
    .usage(usage(79, 11, 0, 0, 90));
    expected.refusal = Some("I'm sorry, I can't assist with that request.");
    check_stream(Api::OpenAi, "openai_chat_stream_refusal.sse", &expected).await;
}

#[tokio::test]
async fn openai_chat_stream_n3_reads_choice_0_and_the_usage_of_all() {
    // Choices 1 and 2 ("…61…", "…59…") are interleaved and ignored; the one usage chunk
    // covers all three.
    let expected = Expected::text(
        r#"{"city":"San Francisco","temperature":65,"units":"f"}"#,
        OPENAI_MODEL,
        Some("chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq"),
    )
    .usage(usage(79, 42, 0, 0, 121));
    check_stream(Api::OpenAi, "openai_chat_stream_n3.sse", &expected).await;
}

#[tokio::test]
async fn openai_chat_stream_error_midstream() {
    let before = Expected::text(
        "I'm unable to",
        OPENAI_MODEL,
        Some("chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL"),
    )
    .finish(None);
    let failure = ExpectedFailure {
        class: ErrorClass::ServerError,
        message: "The server had an error while processing your request. Sorry about that!",
        partial_text: "I'm unable to",
        // No usage chunk came before the error.
        partial_usage: None,
    };
    check_failing_stream(
        Api::OpenAi,
        "openai_chat_stream_error_midstream.sse",
        &before,
        &failure,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Anthropic streams
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_messages_stream() {
    // `message_start` usage {11, 1} overwritten by `message_delta`'s cumulative 6; `ping`
    // ignored.
    let expected = Expected::text(
        "Hello there!",
        "claude-3-opus-latest",
        Some("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"),
    )
    .usage(usage(11, 6, 0, 0, 17));
    check_stream(Api::Anthropic, "anthropic_messages_stream.sse", &expected).await;
}

#[tokio::test]
async fn anthropic_messages_stream_tool_use() {
    let mut expected = Expected::text(
        "I'll check the current weather in Paris for you.",
        "claude-sonnet-4-20250514",
        Some("msg_019Q1hrJbZG26Fb9BQhrkHEr"),
    )
    .finish(Some(FinishReason::ToolCalls))
    // Placeholder output 1 in `message_start`, 65 in `message_delta`.
    .usage(usage(377, 65, 0, 0, 442));
    expected.tool_calls = vec![Call {
        id: "toolu_01NRLabsLyVHZPKxbKvkfSMn",
        name: "get_weather",
        arguments: r#"{"location": "Paris"}"#,
        parses: true,
    }];
    check_stream(
        Api::Anthropic,
        "anthropic_messages_stream_tool_use.sse",
        &expected,
    )
    .await;
}

#[tokio::test]
async fn anthropic_messages_stream_max_tokens() {
    let mut expected = Expected::text(
        "I'll create a comprehensive tax guide for someone with multiple W2s and save it in a \
         file called taxes.txt. Let me do that for you now.",
        "claude-3-7-sonnet-20250219",
        Some("msg_01UdjYBBipA9omjYhicnevgq"),
    )
    .finish(Some(FinishReason::Length))
    .usage(usage(450, 124, 0, 0, 574));
    // The tool input was cut by `max_tokens` (its block never stopped): not whole JSON.
    expected.tool_calls = vec![Call {
        id: "toolu_01EKqbqmZrGRXy18eN7m9kvY",
        name: "make_file",
        arguments: "{\"filename\": \"taxes.txt\", \"lines_of_text\": [\n\
                    \"# COMPREHENSIVE TAX GUIDE FOR INDIVIDUALS WITH MULTIPLE W-2s\",\n\
                    \"\",\n\
                    \"## INTRODUCTION\",\n\
                    \"\",\n\
                    \"Filing taxes",
        parses: false,
    }];
    check_stream(
        Api::Anthropic,
        "anthropic_messages_stream_max_tokens.sse",
        &expected,
    )
    .await;
}

#[tokio::test]
async fn anthropic_messages_stream_thinking_refusal() {
    let mut expected = Expected::text("Hi", "claude-fable-5", Some("msg_fixture_a_0001"))
        // `stop_reason: refusal`; `stop_details.explanation` is null, so there is no
        // refusal message.
        .finish(Some(FinishReason::Refusal))
        // `message_delta` carries the cumulative counts, `thinking_tokens` included.
        .usage(usage(28, 106, 67, 0, 134));
    // Thinking deltas are reasoning, with the U+2014 dashes whole.
    expected.reasoning = "Simple educational question about what a solar eclipse is. This is \
                          benign general knowledge \u{2014} definitions are fine. Also the user \
                          called me \"claudius\" \u{2014} I'm Claude. Minor correction or just \
                          roll with it politely.";
    check_stream(
        Api::Anthropic,
        "anthropic_messages_stream_thinking_refusal.sse",
        &expected,
    )
    .await;
}

#[tokio::test]
async fn anthropic_stream_error_overloaded() {
    let before = Expected::text(
        "Hello there",
        "claude-3-opus-latest",
        Some("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK"),
    )
    .finish(None)
    // Only `message_start` reported usage: input 11, placeholder output 1.
    .usage(usage(11, 1, 0, 0, 12));
    let failure = ExpectedFailure {
        class: ErrorClass::Overloaded,
        message: "Overloaded",
        partial_text: "Hello there",
        partial_usage: Some(usage(11, 1, 0, 0, 12)),
    };
    check_failing_stream(
        Api::Anthropic,
        "anthropic_stream_error_overloaded.sse",
        &before,
        &failure,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Gemini streams (CRLF line endings in the Gemini API fixtures)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_stream() {
    // `usageMetadata` repeated on every chunk: the last one counts.
    let expected = Expected::text(
        "The capital of Wyoming is **Cheyenne**.\n",
        "gemini-2.0-flash",
        None,
    )
    .usage(usage(7, 10, 0, 0, 17));
    check_stream(Api::Gemini, "gemini_stream.sse", &expected).await;
}

#[tokio::test]
async fn gemini_stream_thinking() {
    let mut expected = Expected::text(
        "The sky is blue because tiny gas molecules in Earth's atmosphere scatter blue light \
         from the sun more efficiently than other colors. Blue light has shorter, smaller \
         wavelengths, causing it to be scattered in all directions, making the sky appear blue \
         to our eyes.",
        "gemini-2.5-flash",
        Some("0J-HaJetAqv0jrEPwu-tsQ0"),
    )
    // Output = candidates 48 + thoughts 540.
    .usage(usage(10, 588, 540, 0, 598));
    // `thought: true` parts are reasoning, not answer text.
    expected.reasoning = concat!(
        "**Exploring Sky Color**\n\nI've zeroed in on the core question: why does the sky \
         appear blue? My thought process has taken shape, highlighting sunlight's composition, \
         the atmospheric role, and the significance of scattering. Specifically, I'm focusing \
         on Rayleigh scattering and how the wavelengths of light interact. My next step will \
         be to explain this.\n\n\n",
        "**Refining the Explanation**\n\nI'm now in the process of formulating a clear and \
         concise explanation. The initial draft is complete and it explains why the sky \
         appears blue by referencing how sunlight is scattered by Earth's atmosphere. I'm \
         focusing on the significance of the shorter wavelengths of blue light, ensuring a \
         comprehensive understanding is conveyed. The current plan is to finalize the \
         explanation.\n\n\n",
        "**Constructing a Concise Answer**\n\nI've formulated a succinct explanation for why \
         the sky is blue. Sunlight contains all colors. Tiny gas molecules in the atmosphere \
         scatter sunlight. Blue light has shorter wavelengths, scattering more efficiently. \
         This dispersed blue light fills the sky, making it appear blue to us. I'm satisfied \
         with this concise response.\n\n\n",
    );
    check_stream(Api::Gemini, "gemini_stream_thinking.sse", &expected).await;
}

#[tokio::test]
async fn gemini_stream_error_midstream() {
    // Both `data:` chunks say `finishReason: STOP`; the pretty-printed error object after
    // them (no `data:` prefix) must still fail the stream. No `usageMetadata`, no
    // `modelVersion`, no `responseId`.
    let before = Expected::text("First Second ", "gemini-2.0-flash", None);
    let failure = ExpectedFailure {
        // `CANCELLED` (code 499).
        class: ErrorClass::ServerError,
        message: "The operation was cancelled.",
        partial_text: "First Second ",
        partial_usage: None,
    };
    check_failing_stream(
        Api::Gemini,
        "gemini_stream_error_midstream.sse",
        &before,
        &failure,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Whole responses
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_chat_completion() {
    let expected = Expected::text(
        "Hello! How can I assist you today?",
        "gpt-5.4",
        Some("chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"),
    )
    .usage(usage(19, 10, 0, 0, 29));
    check_complete(Api::OpenAi, "openai_chat_completion.json", &expected).await;
}

#[tokio::test]
async fn anthropic_message() {
    let expected = Expected::text(
        r#"{"items":[{"product_name":"Green Tea","price":5.50,"quantity":2},{"product_name":"Coffee","price":3.00,"quantity":1}],"total":14.0}"#,
        "claude-sonnet-4-5-20250929",
        Some("msg_01T4jd6NyD9xGGtTPDC4ogy5"),
    )
    .usage(usage(406, 50, 0, 0, 456));
    check_complete(Api::Anthropic, "anthropic_message.json", &expected).await;
}

#[tokio::test]
async fn gemini_generate_content() {
    let expected = Expected::text(
        "Google's headquarters, also known as the Googleplex, is located in **Mountain View, \
         California**.\n",
        "gemini-2.0-flash",
        None,
    )
    .usage(usage(7, 22, 0, 0, 29));
    check_complete(Api::Gemini, "gemini_generate_content.json", &expected).await;
}

#[tokio::test]
async fn gemini_generate_content_cached() {
    // Cached 11243 inside the prompt's 12013; output = candidates 15 + thoughts 73;
    // total 12013 + 15 + 73 = 12101.
    let expected = Expected::text(
        "Red Riding Hood is looking for **directions** in the forest.",
        "gemini-2.5-flash",
        None,
    )
    .usage(usage(12_013, 88, 73, 11_243, 12_101));
    check_complete(
        Api::Gemini,
        "gemini_generate_content_cached.json",
        &expected,
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Error bodies, served with the status the fixtures README gives
// ---------------------------------------------------------------------------------------------

fn error(status: u16, class: ErrorClass) -> ExpectedError {
    ExpectedError {
        status,
        class,
        retry_after: None,
        detail: None,
    }
}

#[tokio::test]
async fn openai_429() {
    // The delay is only in the message text ("Please try again in 18.642s"); no header.
    let expected = error(429, ErrorClass::RateLimit);
    check_error_body(Api::OpenAi, "openai_429.json", &expected).await;
}

#[tokio::test]
async fn openai_429_request_too_large() {
    let expected = error(429, ErrorClass::RequestTooLarge);
    check_error_body(Api::OpenAi, "openai_429_request_too_large.json", &expected).await;
}

#[tokio::test]
async fn openai_429_insufficient_quota() {
    let expected = error(429, ErrorClass::QuotaExceeded);
    check_error_body(Api::OpenAi, "openai_429_insufficient_quota.json", &expected).await;
}

#[tokio::test]
async fn openai_context_length() {
    // "maximum context length is 4097 tokens. However, you requested 4120 tokens (3120 in the
    // messages, 1000 in the completion)".
    let expected = ExpectedError {
        detail: overflow(3120, 4097, Some(1000)),
        ..error(400, ErrorClass::ContextOverflow)
    };
    check_error_body(Api::OpenAi, "openai_context_length.json", &expected).await;
}

#[tokio::test]
async fn anthropic_529() {
    let expected = error(529, ErrorClass::Overloaded);
    check_error_body(Api::Anthropic, "anthropic_529.json", &expected).await;
}

#[tokio::test]
async fn anthropic_prompt_too_long() {
    let expected = ExpectedError {
        detail: overflow(219_898, 200_000, None),
        ..error(400, ErrorClass::ContextOverflow)
    };
    check_error_body(Api::Anthropic, "anthropic_prompt_too_long.json", &expected).await;
}

#[tokio::test]
async fn anthropic_context_limit_with_max_tokens() {
    // "143653 + 64000 > 200000".
    let expected = ExpectedError {
        detail: overflow(143_653, 200_000, Some(64_000)),
        ..error(400, ErrorClass::ContextOverflow)
    };
    check_error_body(
        Api::Anthropic,
        "anthropic_context_limit_with_max_tokens.json",
        &expected,
    )
    .await;
}

#[tokio::test]
async fn gemini_429() {
    // `RetryInfo.retryDelay: "53s"`.
    let expected = ExpectedError {
        retry_after: Some(Duration::from_secs(53)),
        ..error(429, ErrorClass::RateLimit)
    };
    check_error_body(Api::Gemini, "gemini_429.json", &expected).await;
}

#[tokio::test]
async fn gemini_429_errorinfo() {
    // A per-minute quota (`RATE_LIMIT_EXCEEDED`), no `RetryInfo`.
    let expected = error(429, ErrorClass::RateLimit);
    check_error_body(Api::Gemini, "gemini_429_errorinfo.json", &expected).await;
}

#[tokio::test]
async fn gemini_503() {
    let expected = error(503, ErrorClass::Overloaded);
    check_error_body(Api::Gemini, "gemini_503.json", &expected).await;
}

#[tokio::test]
async fn gemini_context_length() {
    let expected = ExpectedError {
        detail: overflow(132_478, 131_072, None),
        ..error(400, ErrorClass::ContextOverflow)
    };
    check_error_body(Api::Gemini, "gemini_context_length.json", &expected).await;
}

#[tokio::test]
async fn gemini_400_api_key_invalid() {
    // 400 `INVALID_ARGUMENT`, but `ErrorInfo.reason = API_KEY_INVALID`.
    let expected = error(400, ErrorClass::AuthError);
    check_error_body(Api::Gemini, "gemini_400_api_key_invalid.json", &expected).await;
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// Every fixture above, by name.
const COVERED: &[&str] = &[
    "openai_chat_stream_usage.sse",
    "openai_chat_stream_length.sse",
    "openai_chat_stream_parallel_tool_calls.sse",
    "openai_chat_stream_refusal.sse",
    "openai_chat_stream_n3.sse",
    "openai_chat_stream_error_midstream.sse",
    "anthropic_messages_stream.sse",
    "anthropic_messages_stream_tool_use.sse",
    "anthropic_messages_stream_max_tokens.sse",
    "anthropic_messages_stream_thinking_refusal.sse",
    "anthropic_stream_error_overloaded.sse",
    "gemini_stream.sse",
    "gemini_stream_thinking.sse",
    "gemini_stream_error_midstream.sse",
    "openai_chat_completion.json",
    "anthropic_message.json",
    "gemini_generate_content.json",
    "gemini_generate_content_cached.json",
    "openai_429.json",
    "openai_429_request_too_large.json",
    "openai_429_insufficient_quota.json",
    "openai_context_length.json",
    "anthropic_529.json",
    "anthropic_prompt_too_long.json",
    "anthropic_context_limit_with_max_tokens.json",
    "gemini_429.json",
    "gemini_429_errorinfo.json",
    "gemini_503.json",
    "gemini_context_length.json",
    "gemini_400_api_key_invalid.json",
];

#[test]
fn every_fixture_in_the_folder_has_a_test() {
    if !fixtures_present() {
        return;
    }
    let present: BTreeSet<String> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sse") || name.ends_with(".json"))
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|name| (*name).to_owned()).collect();
    assert_eq!(
        present, covered,
        "fixtures without a test, or tests without a fixture"
    );
}

#[test]
fn the_gemini_api_streams_really_use_crlf() {
    // The byte-at-a-time runs split every CRLF; make sure there is CRLF to split.
    for name in ["gemini_stream.sse", "gemini_stream_thinking.sse"] {
        let Some(body) = fixture(name) else { return };
        assert!(body.windows(4).any(|w| w == b"\r\n\r\n"), "{name}");
        assert!(!body.windows(2).any(|w| w == b"\n\n"), "{name}");
    }
}

#[tokio::test]
async fn a_bytewise_reply_reaches_the_client_one_byte_at_a_time() {
    // Otherwise the byte-at-a-time runs would prove nothing about split CRLFs and UTF-8.
    let Some(body) = fixture("gemini_stream.sse") else {
        return;
    };
    let server = FakeServer::start().await.unwrap();
    server.push(Reply::sse_in(&body, Chunking::Bytewise));
    let url = format!(
        "{}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        server.base_url()
    );
    let response = reqwest::Client::new().post(url).send().await.unwrap();
    let mut pieces = 0;
    let mut received = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = within("bytewise", chunks.next()).await {
        let chunk = chunk.unwrap();
        pieces += 1;
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, body);
    assert_eq!(pieces, body.len(), "one piece per byte");
}
