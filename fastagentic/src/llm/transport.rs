//! The HTTP side every provider shares: one connection pool, error classification of
//! non-2xx answers, and turning an event-stream body into [`StreamEvent`]s.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;

use super::prompt::{Message, ToolResult};
use super::sse::{SseDecoder, SseEvent};
use super::stream::{CompletionStream, StreamEvent};
use crate::error::{AgentError, ErrorClass};

/// An API key. Its `Debug` and `Display` print a mask, so it cannot leak through logs or
/// error messages; it is only ever read to build a request header.
#[derive(Clone)]
pub(crate) struct ApiKey(Arc<str>);

impl ApiKey {
    pub(crate) fn new(key: impl Into<String>) -> Self {
        let key: Arc<str> = key.into().into();
        remember(&key);
        ApiKey(key)
    }

    /// The key as a header value marked sensitive (hyper then keeps it out of its own
    /// debug output and HPACK tables).
    pub(crate) fn header(&self, prefix: &str) -> Result<HeaderValue, AgentError> {
        let mut value = HeaderValue::try_from(format!("{prefix}{}", self.0)).map_err(|_| {
            AgentError::new(
                ErrorClass::AuthError,
                "the API key holds characters an HTTP header cannot carry",
            )
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(****)")
    }
}

/// The process-wide HTTP client: one pool, reused by every provider.
pub(crate) fn shared_client() -> reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                // The pipeline bounds each call; this only stops a dead host from
                // holding a connection attempt for minutes when used outside it.
                .connect_timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// Sends `request`; a non-2xx answer becomes an error classified from its status,
/// headers and body.
pub(crate) async fn send(
    provider: &str,
    limits: &BodyLimits,
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, AgentError> {
    let response = request.send().await.map_err(|e| {
        let err =
            (AgentError::from(e).with_provider(provider.to_owned())).rewrite_message(redact_keys);
        tracing::debug!(provider, class = %err.class(), "request failed before an answer");
        err
    })?;
    let status = response.status();
    tracing::debug!(provider, url = %response.url(), status = status.as_u16(), "answered");
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    // A body that cannot be read still leaves the status to classify by; past the cap,
    // the start is what classification reads anyway.
    let mut response = response;
    let body = read_capped(&mut response, limits.error_body)
        .await
        .map(|(body, _)| body)
        .unwrap_or_default();
    let err = AgentError::from_http(status.as_u16(), &headers, &body)
        .with_provider(provider.to_owned())
        .rewrite_message(redact_keys);
    tracing::debug!(provider, class = %err.class(), message = err.message(), "error answer");
    Err(err)
}

/// Every key value a provider of this process was configured with, whatever its shape
/// (`gwkey-...` for a gateway as much as `sk-...`), so text coming back from upstream can
/// be masked by value. Read only on error paths.
static KEYS: std::sync::RwLock<Vec<Arc<str>>> = std::sync::RwLock::new(Vec::new());

/// Values shorter than this are not masked: they would blank ordinary words, and no
/// provider issues keys that short.
const MIN_MASKED_KEY: usize = 8;

fn remember(key: &Arc<str>) {
    if key.len() < MIN_MASKED_KEY {
        return;
    }
    let mut keys = KEYS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !keys.iter().any(|known| **known == **key) {
        keys.push(key.clone());
    }
}

/// Masks the configured key values in text from upstream, then anything that looks like
/// an API key (OpenAI's 401 quotes the start and end of the key it was sent); `None` when
/// there was nothing to mask.
pub(crate) fn redact_keys(message: &str) -> Option<String> {
    static KEY: std::sync::LazyLock<Option<regex_lite::Regex>> = std::sync::LazyLock::new(|| {
        regex_lite::Regex::new(r"\b(?:sk-|AIza)[A-Za-z0-9_*\-]{3,}").ok()
    });
    let mut masked: Option<String> = None;
    {
        let keys = KEYS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for key in keys.iter().filter(|key| message.contains(&***key)) {
            let text = masked.as_deref().unwrap_or(message);
            masked = Some(text.replace(&**key, "[redacted key]"));
        }
    }
    let text = masked.as_deref().unwrap_or(message);
    match KEY.as_ref() {
        Some(pattern) if pattern.is_match(text) => {
            Some(pattern.replace_all(text, "[redacted key]").into_owned())
        }
        _ => masked,
    }
}

/// The default for [`BodyLimits::response_bytes`]: a chat completion is kilobytes; a body
/// past this is a broken or hostile upstream, refused before it fills the memory.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// The default for [`BodyLimits::error_body_bytes`]: enough for any provider's error
/// object, and what lies beyond is not needed to classify it.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// The default for [`BodyLimits::sse_event_bytes`]: events are small deltas; a line
/// without end is refused instead of buffered.
pub const MAX_SSE_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// How much of an upstream's answer a provider reads before refusing it, so a broken or
/// hostile upstream cannot fill the memory. Set per provider with `body_limits`; every
/// limit is at least one byte.
///
/// ```
/// use fastagentic::llm::{BodyLimits, OpenAi};
///
/// let limits = BodyLimits::default().response_bytes(4 * 1024 * 1024);
/// let openai = OpenAi::new("sk-test").body_limits(limits);
/// # let _ = openai;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    response: usize,
    error_body: usize,
    sse_event: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            response: MAX_RESPONSE_BYTES,
            error_body: MAX_ERROR_BODY_BYTES,
            sse_event: MAX_SSE_EVENT_BYTES,
        }
    }
}

impl BodyLimits {
    /// The largest whole (non-streamed) answer; past it the call fails `server_error`
    /// naming the limit. Default [`MAX_RESPONSE_BYTES`].
    pub fn response_bytes(mut self, bytes: usize) -> Self {
        self.response = bytes.max(1);
        self
    }

    /// How much of an error answer is read to classify it; the rest is dropped, not
    /// buffered. Default [`MAX_ERROR_BODY_BYTES`].
    pub fn error_body_bytes(mut self, bytes: usize) -> Self {
        self.error_body = bytes.max(1);
        self
    }

    /// The most one unfinished SSE event (its lines so far) may hold; past it the stream
    /// fails `server_error` naming the limit. Default [`MAX_SSE_EVENT_BYTES`].
    pub fn sse_event_bytes(mut self, bytes: usize) -> Self {
        self.sse_event = bytes.max(1);
        self
    }
}

/// Reads at most `cap` bytes of the body, and whether that was all of it.
async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

/// Reads a whole JSON body, of at most `limits.response_bytes`.
pub(crate) async fn json<T: DeserializeOwned>(
    provider: &str,
    limits: &BodyLimits,
    mut response: reqwest::Response,
) -> Result<T, AgentError> {
    let (body, whole) = read_capped(&mut response, limits.response)
        .await
        .map_err(|e| {
            cut(
                provider,
                e,
                ErrorClass::ConnectionError,
                "the response body was cut",
            )
        })?;
    if !whole {
        return Err(too_large(provider, "answer", limits.response));
    }
    serde_json::from_slice(&body).map_err(|e| malformed(provider, &e))
}

/// An upstream body or event over its bound: the upstream's fault.
fn too_large(provider: &str, what: &str, cap: usize) -> AgentError {
    AgentError::new(
        ErrorClass::ServerError,
        format!(
            "{provider} sent an {what} of more than {}; refused rather than buffered (raise it with `BodyLimits`)",
            size(cap)
        ),
    )
    .with_provider(provider.to_owned())
}

/// `cap` in the largest unit that divides it.
fn size(cap: usize) -> String {
    const MIB: usize = 1024 * 1024;
    match cap {
        _ if cap.is_multiple_of(MIB) => format!("{} MiB", cap / MIB),
        _ if cap.is_multiple_of(1024) => format!("{} KiB", cap / 1024),
        _ => format!("{cap} bytes"),
    }
}

/// An answer that does not have the shape the provider documents.
pub(crate) fn malformed(provider: &str, err: &serde_json::Error) -> AgentError {
    AgentError::new(
        ErrorClass::ServerError,
        format!("{provider} sent a response that does not parse: {err}"),
    )
    .with_provider(provider.to_owned())
}

/// A 200 whose body parses but lacks what the wire format requires (`{}`, no choices, a
/// gateway speaking another schema): the upstream's fault, retried and falling back like a
/// server error, never an empty success.
pub(crate) fn incomplete(provider: &str, missing: &str) -> AgentError {
    AgentError::new(
        ErrorClass::ServerError,
        format!("{provider} answered 200 without {missing}; treated as a server error"),
    )
    .with_status(200)
    .with_provider(provider.to_owned())
}

/// A body that broke off: `class` unless the transport says it timed out.
fn cut(provider: &str, err: reqwest::Error, class: ErrorClass, what: &str) -> AgentError {
    let class = if err.is_timeout() {
        ErrorClass::Timeout
    } else {
        class
    };
    AgentError::new(class, format!("{what}: {err}"))
        .with_provider(provider.to_owned())
        .with_source(err)
        .rewrite_message(redact_keys)
}

/// Turns one provider's SSE events into [`StreamEvent`]s.
pub(crate) trait StreamDecoder: Send + 'static {
    /// One event; pushes what it carries to `out`, or returns the error it reports.
    fn event(&mut self, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), AgentError>;

    /// Lines that are not SSE at all (Gemini sends its error object without `data:`).
    fn stray(&mut self, text: &str) -> Result<(), AgentError> {
        let _ = text;
        Ok(())
    }

    /// Whether the provider's terminal event has arrived (stop reading).
    fn finished(&self) -> bool;

    /// The body ended. An error when the provider's terminal event never came.
    fn end(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), AgentError>;
}

/// A 200 answer to a streaming request, as a [`CompletionStream`].
pub(crate) async fn event_stream<D: StreamDecoder>(
    provider: &Arc<str>,
    limits: &BodyLimits,
    model: &str,
    response: reqwest::Response,
    decoder: D,
) -> Result<CompletionStream, AgentError> {
    if !is_event_stream(&response) {
        let mut response = response;
        let body = read_capped(&mut response, limits.error_body)
            .await
            .map(|(body, _)| body)
            .unwrap_or_default();
        return Err(not_a_stream(provider, &body));
    }
    let driver = Driver {
        provider: provider.clone(),
        max_event: limits.sse_event,
        body: Box::pin(response.bytes_stream()),
        sse: SseDecoder::new(),
        decoder,
        queue: VecDeque::new(),
        scratch: Vec::new(),
        ended: false,
    };
    let events = futures_util::stream::unfold(driver, |mut driver| async move {
        let item = driver.next().await?;
        Some((item, driver))
    });
    Ok(CompletionStream::new(provider.clone(), model, events))
}

/// A JSON answer to a streaming request: an error in it is still that error; anything
/// else means the server does not stream.
fn not_a_stream(provider: &Arc<str>, body: &[u8]) -> AgentError {
    let has_error =
        serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("error").is_some());
    let err = if has_error {
        AgentError::from_stream_error(body)
    } else {
        // The upstream's fault, not the caller's: a 502 class.
        AgentError::new(
            ErrorClass::ServerError,
            format!(
                "{provider} answered a streaming request with one JSON body instead of an event stream; this server does not stream, so call `complete` instead"
            ),
        )
    };
    err.with_provider(provider.clone())
        .rewrite_message(redact_keys)
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| !v.starts_with("application/json"))
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Driver<D> {
    provider: Arc<str>,
    max_event: usize,
    body: Body,
    sse: SseDecoder,
    decoder: D,
    queue: VecDeque<StreamEvent>,
    scratch: Vec<StreamEvent>,
    ended: bool,
}

impl<D: StreamDecoder> Driver<D> {
    async fn next(&mut self) -> Option<Result<StreamEvent, AgentError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(Ok(event));
            }
            if self.ended {
                return None;
            }
            if let Err(err) = self.step().await {
                self.ended = true;
                // Stream error events quote upstream text, which may echo a key.
                return Some(Err(err.rewrite_message(redact_keys)));
            }
        }
    }

    /// Decodes what is buffered, or reads more of the body.
    async fn step(&mut self) -> Result<(), AgentError> {
        while let Some(event) = self.sse.next_event() {
            self.take_stray()?;
            self.decoder.event(event, &mut self.scratch)?;
            self.queue.extend(self.scratch.drain(..));
            if self.decoder.finished() {
                self.ended = true;
                return Ok(());
            }
            if !self.queue.is_empty() {
                return Ok(());
            }
        }
        self.take_stray()?;
        match self.body.next().await {
            Some(Ok(chunk)) => {
                self.sse.push(&chunk);
                if self.sse.pending_bytes() > self.max_event {
                    return Err(too_large(&self.provider, "SSE event", self.max_event));
                }
                Ok(())
            }
            Some(Err(err)) => Err(cut(
                &self.provider,
                err,
                ErrorClass::StreamInterrupted,
                "the stream was cut",
            )),
            None => {
                self.ended = true;
                let _ = self.sse.finish();
                self.take_stray()?;
                self.decoder.end(&mut self.scratch)?;
                self.queue.extend(self.scratch.drain(..));
                Ok(())
            }
        }
    }

    fn take_stray(&mut self) -> Result<(), AgentError> {
        match self.sse.take_stray() {
            Some(text) => self.decoder.stray(&text),
            None => Ok(()),
        }
    }
}

/// The error for a stream that ended before the provider's terminal event.
pub(crate) fn ended_early(provider: &str, terminal: &str) -> AgentError {
    AgentError::new(
        ErrorClass::StreamInterrupted,
        format!("the {provider} stream ended before its `{terminal}` event"),
    )
    .with_provider(provider.to_owned())
}

/// Parses one event's JSON data.
pub(crate) fn parse_data<T: DeserializeOwned>(
    provider: &str,
    event: &SseEvent,
) -> Result<T, AgentError> {
    serde_json::from_str(&event.data).map_err(|e| malformed(provider, &e))
}

/// A provider's request URL, parsed once when the provider is configured. Handed over
/// as text, reqwest would parse it again on every request (about 7 k instructions, a
/// fifteenth of a whole proxied call, measured with callgrind).
#[derive(Clone)]
pub(crate) struct Endpoint {
    text: String,
    /// `None` when the text is not a URL: reqwest then gets the text and reports the
    /// problem at send time, exactly as it would without this cache.
    parsed: Option<reqwest::Url>,
}

impl Endpoint {
    /// `path` under `base`.
    pub(crate) fn new(base: &str, path: &str) -> Self {
        let text = join(base, path);
        let parsed = reqwest::Url::parse(&text).ok();
        Endpoint { text, parsed }
    }

    /// A POST to this URL through `client`.
    pub(crate) fn post(&self, client: &reqwest::Client) -> reqwest::RequestBuilder {
        match &self.parsed {
            Some(url) => client.post(url.clone()),
            None => client.post(self.text.as_str()),
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

/// Joins a base URL and a path without doubling or dropping the slash.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// What a [`Role::Tool`] message answers, or the error that says how to build one.
pub(crate) fn tool_result_of(message: &Message) -> Result<&ToolResult, AgentError> {
    message.tool_result.as_ref().ok_or_else(|| {
        AgentError::new(
            ErrorClass::InvalidInput,
            "a `tool` message must name the call it answers: build it with \
             `Message::tool_result(&call, output)` or `Message::tool_error(&call, message)`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_parsed_once_and_a_bad_one_still_fails_at_send() {
        let client = reqwest::Client::new();
        let good = Endpoint::new("http://127.0.0.1:9/v1/", "/chat/completions");
        let request = good.post(&client).build().expect("a valid URL builds");
        assert_eq!(
            request.url().as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
        assert_eq!(
            format!("{good:?}"),
            r#""http://127.0.0.1:9/v1/chat/completions""#
        );

        let bad = Endpoint::new("not a url", "chat/completions");
        let err = bad
            .post(&client)
            .build()
            .expect_err("reqwest reports the bad URL");
        assert!(err.is_builder(), "{err}");
    }

    #[test]
    fn key_fragments_in_provider_messages_are_masked() {
        let openai = "Incorrect API key provided: sk-proj-abc*********************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.";
        let masked = redact_keys(openai).unwrap();
        assert!(
            !masked.contains("wxyz") && !masked.contains("sk-proj"),
            "{masked}"
        );
        assert!(masked.starts_with("Incorrect API key provided: [redacted key]."));
        assert_eq!(
            redact_keys("API key not valid. Please pass a valid API key."),
            None
        );
        assert!(
            !redact_keys("bad key AIzaSyD-abc_123")
                .unwrap()
                .contains("AIza")
        );
    }
}
