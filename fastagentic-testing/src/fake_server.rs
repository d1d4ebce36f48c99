//! The fake provider server: scripted replies, byte-level faults, recorded requests. The
//! user-facing overview is in the crate docs.

use fastagentic::llm::{Anthropic, Gemini, OpenAi, Provider};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::debug;

/// The text of every canned success.
const CANNED_TEXT: &str = "Hello from the fake provider.";
/// [`CANNED_TEXT`] in the pieces a canned stream sends.
const CANNED_PIECES: [&str; 5] = ["Hello", " from", " the", " fake", " provider."];
/// Input tokens reported by every canned success.
const INPUT_TOKENS: u64 = 12;
/// Output tokens reported by every canned success.
const OUTPUT_TOKENS: u64 = 7;
/// The model named in a canned success when the request named none.
const DEFAULT_MODEL: &str = "fake-model";
/// The largest request head (request line and headers) accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The longest line accepted in a chunked request body.
const MAX_CHUNK_LINE: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// The provider API a request was addressed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// OpenAI Chat Completions or a compatible gateway: `POST …/chat/completions`.
    OpenAi,
    /// Anthropic Messages: `POST …/messages`.
    Anthropic,
    /// Google Gemini: `POST …/models/{model}:generateContent` or `…:streamGenerateContent`.
    Gemini,
}

impl Route {
    /// All three, for a test to loop over.
    pub const ALL: [Route; 3] = [Route::OpenAi, Route::Anthropic, Route::Gemini];

    /// A model of this route's provider, for tests that need one but not a particular one.
    pub fn model(self) -> &'static str {
        match self {
            Route::OpenAi => "gpt-4o",
            Route::Anthropic => "claude-sonnet-4-5",
            Route::Gemini => "gemini-2.0-flash",
        }
    }
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The route it matched, `None` when it was answered with 404 or 405.
    pub route: Option<Route>,
    /// The request method, e.g. `"POST"`.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string (without the `?`), if the target had one.
    pub query: Option<String>,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body (decoded, if it was sent chunked).
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON, or `None` if it is not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The value of header `name` (case-insensitive), if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// How a stream's bytes are cut into HTTP chunks: a client must give the same result both
/// ways (a CRLF or a UTF-8 character split between chunks included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chunking {
    /// The whole body as one HTTP chunk.
    Whole,
    /// One byte per HTTP chunk.
    Bytewise,
}

impl Chunking {
    /// Both, for a test to loop over.
    pub const BOTH: [Chunking; 2] = [Chunking::Whole, Chunking::Bytewise];
}

/// A scripted answer to one request.
///
/// Build one with a constructor ([`Reply::json`], [`Reply::sse_chunks`], [`Reply::reset`], …)
/// and adjust it with the builder methods ([`Reply::header`], [`Reply::first_byte_delay`],
/// [`Reply::cut_after`], …). Modifiers that do not apply to a kind of reply are ignored; for
/// example [`Reply::chunk_delay`] does nothing to a `content-length` body.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    payload: Payload,
    first_byte_delay: Option<Duration>,
    chunk_delay: Option<Duration>,
    limit: Option<Limit>,
}

/// What a [`Reply`] sends.
#[derive(Clone, Debug)]
enum Payload {
    /// A body framed with `content-length`.
    Full(Bytes),
    /// A body framed with `transfer-encoding: chunked`, one HTTP chunk per element.
    Chunks(Vec<Bytes>),
    /// The route's canned success, built when the request is known.
    Canned,
    /// An error body in the route's own format, built when the route is known.
    Error(ErrorKind),
    /// Close with a TCP reset.
    Reset,
    /// These raw bytes instead of a response, then close.
    Garbage(Bytes),
    /// Never answer.
    Stall,
}

/// The route-aware error bodies.
#[derive(Clone, Copy, Debug)]
enum ErrorKind {
    /// A rate limit that clears after this long.
    RateLimited(Duration),
    /// A generic server-side failure.
    Server,
}

/// Where a body stops early.
#[derive(Clone, Copy, Debug)]
enum Limit {
    /// Close the connection after this many body bytes.
    Cut(usize),
    /// Go silent after this many body bytes.
    Stall(usize),
}

impl Reply {
    /// A response with `status` and a JSON `body`, framed with `content-length`
    /// (`content-type: application/json`).
    pub fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::new(status, Payload::Full(body.into())).header("content-type", "application/json")
    }

    /// A 200 `text/event-stream` response whose `body` is sent as one HTTP chunk
    /// (`transfer-encoding: chunked`).
    pub fn sse(body: impl Into<Bytes>) -> Reply {
        Reply::sse_chunks([body.into()])
    }

    /// A 200 `text/event-stream` response sent as one HTTP chunk per element of `chunks`,
    /// each flushed on its own. Empty chunks are skipped (an empty HTTP chunk would end the
    /// body).
    pub fn sse_chunks<I, B>(chunks: I) -> Reply
    where
        I: IntoIterator<Item = B>,
        B: Into<Bytes>,
    {
        let chunks = chunks.into_iter().map(Into::into).collect();
        Reply::new(200, Payload::Chunks(chunks))
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
    }

    /// A 200 `text/event-stream` response of `body`, cut as `chunking` says.
    pub fn sse_in(body: &[u8], chunking: Chunking) -> Reply {
        match chunking {
            Chunking::Whole => Reply::sse(body.to_vec()),
            Chunking::Bytewise => Reply::sse_chunks(body.iter().map(|b| vec![*b])),
        }
    }

    /// The canned success the route would answer if nothing were queued, as a reply that can
    /// be modified, e.g. `Reply::canned().first_byte_delay(..)` for a slow success.
    pub fn canned() -> Reply {
        Reply::new(200, Payload::Canned)
    }

    /// Overrides the status code.
    pub fn status(mut self, status: u16) -> Reply {
        self.status = status;
        self
    }

    /// Adds a response header, replacing any earlier one with the same name (so it can
    /// replace a default such as `content-type`). The value is written verbatim. The framing
    /// headers `content-length` and `transfer-encoding` are always computed by the server; a
    /// scripted one is ignored. A scripted `connection: close` makes the server close the
    /// connection after the response.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long after reading the request before sending anything (slow
    /// time-to-first-byte). Also delays a [`Reply::reset`] or [`Reply::garbage`].
    pub fn first_byte_delay(mut self, delay: Duration) -> Reply {
        self.first_byte_delay = Some(delay);
        self
    }

    /// Waits this long between two chunks of a stream reply (slow chunks). It does not delay
    /// the first chunk or the end of the stream.
    pub fn chunk_delay(mut self, delay: Duration) -> Reply {
        self.chunk_delay = Some(delay);
        self
    }

    /// Sends only the first `bytes` bytes of the body (counted after the headers, without the
    /// chunked framing), then closes the connection: a mid-stream cut.
    ///
    /// A stream is cut wherever the count falls, possibly inside a chunk whose header
    /// announced more, and never gets its terminating `0\r\n\r\n`, even when `bytes` covers the
    /// whole body. A `content-length` body is simply truncated. Replaces
    /// [`Reply::stall_after`].
    pub fn cut_after(mut self, bytes: usize) -> Reply {
        self.limit = Some(Limit::Cut(bytes));
        self
    }

    /// Sends the first `bytes` bytes of the body, then keeps the connection open and silent
    /// until the client gives up or the server shuts down: an idle stream.
    ///
    /// A stream never gets its terminating chunk, even when `bytes` covers the whole body. A
    /// `content-length` body that is no longer than `bytes` is sent whole and the connection
    /// stays usable. Replaces [`Reply::cut_after`].
    pub fn stall_after(mut self, bytes: usize) -> Reply {
        self.limit = Some(Limit::Stall(bytes));
        self
    }

    /// Reads the request, then closes the connection with a TCP reset (`SO_LINGER` 0) instead
    /// of answering.
    pub fn reset() -> Reply {
        Reply::new(0, Payload::Reset)
    }

    /// Writes these raw bytes instead of an HTTP response, then closes the connection.
    pub fn garbage(bytes: impl Into<Bytes>) -> Reply {
        Reply::new(0, Payload::Garbage(bytes.into()))
    }

    /// Reads the request and never answers; the connection stays open until the client gives
    /// up or the server shuts down.
    pub fn stall() -> Reply {
        Reply::new(0, Payload::Stall)
    }

    /// 429 with `retry-after: <secs>` and a rate-limit error body in the route's format
    /// (OpenAI `rate_limit_exceeded`, Anthropic `rate_limit_error`, Gemini
    /// `RESOURCE_EXHAUSTED` with a matching `RetryInfo`).
    pub fn rate_limited_secs(secs: u64) -> Reply {
        Reply::new(
            429,
            Payload::Error(ErrorKind::RateLimited(Duration::from_secs(secs))),
        )
        .header("retry-after", &secs.to_string())
    }

    /// 429 with `retry-after-ms: <ms>` and a rate-limit error body in the route's format.
    pub fn rate_limited_ms(ms: u64) -> Reply {
        Reply::new(
            429,
            Payload::Error(ErrorKind::RateLimited(Duration::from_millis(ms))),
        )
        .header("retry-after-ms", &ms.to_string())
    }

    /// 429 with `retry-after: <HTTP-date>` and a rate-limit error body in the route's format.
    /// The HTTP-date has whole-second precision.
    pub fn rate_limited_until(when: SystemTime) -> Reply {
        let wait = when
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Reply::new(429, Payload::Error(ErrorKind::RateLimited(wait)))
            .header("retry-after", &httpdate::fmt_http_date(when))
    }

    /// 529 with Anthropic's `overloaded_error` body (on every route).
    pub fn overloaded() -> Reply {
        let body = json!({
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_fake_overloaded",
        });
        Reply::json(529, body.to_string())
    }

    /// `status` (meant for 5xx) with a generic server-error body in the route's format
    /// (OpenAI `server_error`, Anthropic `api_error`/`overloaded_error`/`timeout_error`,
    /// Gemini `INTERNAL`/`UNAVAILABLE`/`DEADLINE_EXCEEDED`).
    pub fn server_error(status: u16) -> Reply {
        Reply::new(status, Payload::Error(ErrorKind::Server))
    }

    fn new(status: u16, payload: Payload) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            payload,
            first_byte_delay: None,
            chunk_delay: None,
            limit: None,
        }
    }
}

/// A running fake provider server.
///
/// The handle is cheap to clone. The server stops (the accept loop ends and every open
/// connection is closed) when [`FakeServer::shutdown`] is called or the last handle is
/// dropped.
#[derive(Clone)]
pub struct FakeServer {
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

/// State shared by the handles and the server tasks.
struct Shared {
    addr: SocketAddr,
    state: Mutex<State>,
    next_id: AtomicU64,
    connections: AtomicUsize,
}

/// The scripted queues and the request log.
#[derive(Default)]
struct State {
    any: VecDeque<Reply>,
    by_route: HashMap<Route, VecDeque<Reply>>,
    requests: Vec<RecordedRequest>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the queues consistent enough.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_reply(&self, route: Route) -> Option<Reply> {
        let mut state = self.state();
        if let Some(reply) = state.by_route.get_mut(&route).and_then(VecDeque::pop_front) {
            return Some(reply);
        }
        state.any.pop_front()
    }
}

impl FakeServer {
    /// Binds `127.0.0.1:0` and spawns the accept loop on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// When the socket cannot be bound.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime.
    pub async fn start() -> io::Result<FakeServer> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            state: Mutex::new(State::default()),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
        });
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
        debug!(%addr, "fake provider server listening");
        Ok(FakeServer {
            shared,
            stop: Arc::new(stop),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The built-in client for `route`'s provider, pointed at this server, with a test key.
    pub fn client(&self, route: Route) -> Box<dyn Provider> {
        let base = self.base_url();
        match route {
            Route::OpenAi => Box::new(OpenAi::new("test-key").base_url(format!("{base}/v1"))),
            Route::Anthropic => Box::new(Anthropic::new("test-key").base_url(base)),
            Route::Gemini => Box::new(Gemini::new("test-key").base_url(base)),
        }
    }

    /// Queues `reply` for the next request on any route (first in, first out).
    pub fn push(&self, reply: Reply) {
        self.shared.state().any.push_back(reply);
    }

    /// Queues `reply` for the next request on `route`. Route queues are consulted before the
    /// shared one.
    pub fn push_for(&self, route: Route, reply: Reply) {
        self.shared
            .state()
            .by_route
            .entry(route)
            .or_default()
            .push_back(reply);
    }

    /// Queues `n` copies of `reply` for the next requests on any route, e.g. a 529 storm.
    pub fn push_n(&self, reply: Reply, n: usize) {
        let mut state = self.shared.state();
        state.any.extend(std::iter::repeat_n(reply, n));
    }

    /// Every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// How many scripted replies are still queued (shared and per-route queues together).
    pub fn queued(&self) -> usize {
        let state = self.shared.state();
        state.any.len() + state.by_route.values().map(VecDeque::len).sum::<usize>()
    }

    /// How many TCP connections the server has accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops accepting connections and closes every open one. Idempotent.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

// ---------------------------------------------------------------------------------------------
// Accepting and serving connections
// ---------------------------------------------------------------------------------------------

/// Resolves once the server should stop: on [`FakeServer::shutdown`] or when the last handle
/// (the sender) is gone.
async fn stopped(mut rx: watch::Receiver<bool>) {
    // An error means the sender was dropped, which is a stop too.
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let stop_signal = stopped(stop.clone());
    tokio::pin!(stop_signal);
    loop {
        tokio::select! {
            biased;
            () = &mut stop_signal => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.connections.fetch_add(1, Ordering::Relaxed);
                    if let Err(error) = stream.set_nodelay(true) {
                        debug!(%peer, %error, "fake server: set_nodelay failed");
                    }
                    let shared = Arc::clone(&shared);
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            () = stopped(stop) => debug!(%peer, "fake server: connection closed by shutdown"),
                            () = connection(stream, peer, &shared) => {}
                        }
                    });
                }
                Err(error) => {
                    debug!(%error, "fake server: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
    debug!(addr = %shared.addr, "fake provider server stopped");
}

/// Why a connection ended early.
enum ConnError {
    /// The socket failed.
    Io(io::Error),
    /// The request could not be read; answer `status` and close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ConnError {
    fn from(error: io::Error) -> Self {
        ConnError::Io(error)
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    debug!(%peer, "fake server: connection accepted");
    match serve(&mut stream, shared).await {
        Ok(()) => debug!(%peer, "fake server: connection done"),
        Err(ConnError::Io(error)) => debug!(%peer, %error, "fake server: connection failed"),
        Err(ConnError::Bad(status, message)) => {
            debug!(%peer, status, message, "fake server: bad request");
            let body =
                json!({"error": {"message": message, "type": "invalid_request_error"}}).to_string();
            let headers = [hdr("content-type", "application/json")];
            let mut out = response_head(status, &headers, Framing::Length(body.len()), true);
            out.extend_from_slice(body.as_bytes());
            // Best effort: the connection is being dropped either way.
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Serves requests on one connection until it closes or a reply ends it.
async fn serve(stream: &mut TcpStream, shared: &Shared) -> Result<(), ConnError> {
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        let Some(request) = read_request(stream, &mut buf).await? else {
            return Ok(());
        };
        let route = request.route;
        let keep_alive = request.keep_alive;
        let recorded = RecordedRequest {
            route,
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: request.body,
        };
        debug!(
            method = %recorded.method,
            path = %recorded.path,
            ?route,
            "fake server: request"
        );
        shared.state().requests.push(recorded.clone());
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let reply = match route {
            Some(route) => shared.next_reply(route).unwrap_or_else(Reply::canned),
            None => no_route(&recorded),
        };
        if !answer(stream, reply, route, &recorded, id, keep_alive).await? {
            return Ok(());
        }
    }
}

/// The 404 (or 405) for a request that matched no route.
fn no_route(request: &RecordedRequest) -> Reply {
    if route_for_path(&request.path).is_some() {
        let message = format!(
            "fake server: {} is not allowed on {}",
            request.method, request.path
        );
        let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": "method_not_allowed"}});
        return Reply::json(405, body.to_string()).header("allow", "POST");
    }
    let message = format!(
        "fake server: no route for {} {}",
        request.method, request.path
    );
    let body = json!({"error": {"message": message, "type": "not_found_error", "param": null, "code": "not_found"}});
    Reply::json(404, body.to_string())
}

// ---------------------------------------------------------------------------------------------
// Reading requests
// ---------------------------------------------------------------------------------------------

/// A parsed request.
struct Request {
    route: Option<Route>,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    keep_alive: bool,
}

/// Reads one request; `None` when the client closed the connection between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, ConnError> {
    // The head, up to the blank line. Empty lines before the request line are ignored.
    let head_end = loop {
        let leading = buf
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        buf.drain(..leading);
        if let Some(pos) = find(buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(ConnError::Bad(431, "request head too large"));
        }
        if read_more(stream, buf).await? == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            return Err(
                io::Error::new(io::ErrorKind::UnexpectedEof, "eof inside request head").into(),
            );
        }
    };
    let head: Vec<u8> = buf.drain(..head_end + 4).collect();
    let head = std::str::from_utf8(&head[..head_end])
        .map_err(|_| ConnError::Bad(400, "request head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ConnError::Bad(400, "malformed request line"));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => {
            return Err(ConnError::Bad(
                505,
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ));
        }
    };
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ConnError::Bad(400, "malformed header line"));
        };
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ConnError::Bad(400, "invalid header name"))?;
        let value = HeaderValue::from_str(value.trim_matches([' ', '\t']))
            .map_err(|_| ConnError::Bad(400, "invalid header value"))?;
        headers.append(name, value);
    }

    // An absolute-form target (as sent to proxies) is reduced to its path.
    let target = strip_authority(target);
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
        None => (target.to_owned(), None),
    };
    let route = if method == "POST" {
        route_for_path(&path)
    } else {
        None
    };

    let connection = header_tokens(&headers, http::header::CONNECTION);
    let keep_alive = if http11 {
        !connection.iter().any(|token| token == "close")
    } else {
        connection.iter().any(|token| token == "keep-alive")
    };

    let chunked = header_tokens(&headers, http::header::TRANSFER_ENCODING)
        .last()
        .is_some_and(|coding| coding == "chunked");
    let content_length = content_length(&headers)?;
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue && (chunked || content_length.unwrap_or(0) > 0) {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    let body = if chunked {
        read_chunked_body(stream, buf).await?
    } else if let Some(len) = content_length {
        if len > MAX_BODY {
            return Err(ConnError::Bad(413, "request body too large"));
        }
        fill(stream, buf, len).await?;
        buf.drain(..len).collect()
    } else {
        Vec::new()
    };

    Ok(Some(Request {
        route,
        method: method.to_owned(),
        path,
        query,
        headers,
        body: Bytes::from(body),
        keep_alive,
    }))
}

/// Which route a path belongs to, regardless of method.
fn route_for_path(path: &str) -> Option<Route> {
    if path.ends_with("/chat/completions") {
        Some(Route::OpenAi)
    } else if path.ends_with("/messages") {
        Some(Route::Anthropic)
    } else if gemini_call(path).is_some() {
        Some(Route::Gemini)
    } else {
        None
    }
}

/// For a Gemini path, the model and whether it is the streaming method.
fn gemini_call(path: &str) -> Option<(&str, bool)> {
    let (_, rest) = path.rsplit_once("/models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    if model.is_empty() {
        return None;
    }
    match method {
        "generateContent" => Some((model, false)),
        "streamGenerateContent" => Some((model, true)),
        _ => None,
    }
}

/// `http://host:port/path?q` → `/path?q`; origin-form targets are returned as they are.
fn strip_authority(target: &str) -> &str {
    let Some(rest) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    else {
        return target;
    };
    match rest.find(['/', '?']) {
        Some(pos) if rest[pos..].starts_with('/') => &rest[pos..],
        Some(_) | None => "/",
    }
}

/// The comma-separated, lower-cased tokens of every `name` header.
fn header_tokens(headers: &HeaderMap, name: HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// The `content-length`, if any; differing values are a bad request.
fn content_length(headers: &HeaderMap) -> Result<Option<usize>, ConnError> {
    let mut length = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        let parsed = value
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse::<usize>().ok())
            .ok_or(ConnError::Bad(400, "invalid content-length"))?;
        if length.is_some_and(|previous| previous != parsed) {
            return Err(ConnError::Bad(400, "conflicting content-length headers"));
        }
        length = Some(parsed);
    }
    Ok(length)
}

/// Decodes a `transfer-encoding: chunked` body (trailers are read and dropped).
async fn read_chunked_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, ConnError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(stream, buf).await?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| ConnError::Bad(400, "invalid chunk size"))?;
        if size == 0 {
            // Trailer fields, up to the blank line.
            while !read_line(stream, buf).await?.is_empty() {}
            return Ok(body);
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ConnError::Bad(413, "request body too large"));
        }
        fill(stream, buf, size + 2).await?;
        if &buf[size..size + 2] != b"\r\n" {
            return Err(ConnError::Bad(400, "chunk data not followed by CRLF"));
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

/// Reads one CRLF-terminated line (returned without the CRLF).
async fn read_line(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<String, ConnError> {
    loop {
        if let Some(pos) = find(buf, b"\r\n") {
            let line: Vec<u8> = buf.drain(..pos + 2).take(pos).collect();
            return String::from_utf8(line)
                .map_err(|_| ConnError::Bad(400, "chunk line is not UTF-8"));
        }
        if buf.len() > MAX_CHUNK_LINE {
            return Err(ConnError::Bad(400, "chunk line too long"));
        }
        if read_more(stream, buf).await? == 0 {
            return Err(
                io::Error::new(io::ErrorKind::UnexpectedEof, "eof inside chunked body").into(),
            );
        }
    }
}

/// Reads until `buf` holds at least `len` bytes.
async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> io::Result<()> {
    while buf.len() < len {
        if read_more(stream, buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "eof inside request body",
            ));
        }
    }
    Ok(())
}

/// Appends whatever the socket has to `buf`; 0 at end of stream.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8 * 1024];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

// ---------------------------------------------------------------------------------------------
// Answering
// ---------------------------------------------------------------------------------------------

/// How a response body is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// Sends `reply`; returns whether the connection can serve another request.
async fn answer(
    stream: &mut TcpStream,
    reply: Reply,
    route: Option<Route>,
    request: &RecordedRequest,
    id: u64,
    keep_alive: bool,
) -> io::Result<bool> {
    if let Some(delay) = reply.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    let Reply {
        status,
        headers: scripted,
        payload,
        chunk_delay,
        limit,
        ..
    } = reply;

    let (payload, mut headers) = match payload {
        Payload::Reset => {
            debug!("fake server: scripted reset");
            // SO_LINGER 0 makes the close that follows (when the caller drops the stream) send
            // RST instead of FIN. `set_linger` is deprecated in tokio because a non-zero linger
            // blocks the thread on drop; a zero linger does not block. `set_zero_linger` would
            // say the same but needs tokio 1.50, newer than the workspace's declared 1.47.
            #[allow(deprecated)]
            stream.set_linger(Some(Duration::ZERO))?;
            return Ok(false);
        }
        Payload::Garbage(bytes) => {
            debug!(len = bytes.len(), "fake server: scripted garbage");
            stream.write_all(&bytes).await?;
            stream.flush().await?;
            stream.shutdown().await?;
            return Ok(false);
        }
        Payload::Stall => {
            debug!("fake server: scripted stall");
            drain(stream).await;
            return Ok(false);
        }
        Payload::Canned => match route {
            Some(route) => canned(route, request, id),
            None => (Payload::Full(Bytes::new()), Vec::new()),
        },
        Payload::Error(kind) => error_body(kind, route, status, id),
        payload @ (Payload::Full(_) | Payload::Chunks(_)) => (payload, Vec::new()),
    };
    // Scripted headers replace defaults of the same name.
    headers.retain(|(name, _)| {
        !scripted
            .iter()
            .any(|(scripted, _)| scripted.eq_ignore_ascii_case(name))
    });
    headers.extend(scripted);
    let scripted_close = headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close")
    });
    let close = !keep_alive || scripted_close;

    match payload {
        Payload::Full(body) => {
            let mut out = response_head(status, &headers, Framing::Length(body.len()), close);
            let sent = match limit {
                Some(Limit::Cut(n) | Limit::Stall(n)) if n < body.len() => n,
                _ => body.len(),
            };
            out.extend_from_slice(&body[..sent]);
            stream.write_all(&out).await?;
            stream.flush().await?;
            match limit {
                Some(Limit::Cut(_)) => {
                    debug!(sent, "fake server: scripted cut");
                    stream.shutdown().await?;
                    Ok(false)
                }
                Some(Limit::Stall(_)) if sent < body.len() => {
                    debug!(sent, "fake server: scripted stall after bytes");
                    drain(stream).await;
                    Ok(false)
                }
                _ => Ok(!close),
            }
        }
        Payload::Chunks(chunks) => {
            let head = response_head(status, &headers, Framing::Chunked, close);
            stream.write_all(&head).await?;
            stream.flush().await?;
            let budget = match limit {
                Some(Limit::Cut(n) | Limit::Stall(n)) => Some(n),
                None => None,
            };
            let mut sent = 0usize;
            for (index, chunk) in chunks.iter().filter(|chunk| !chunk.is_empty()).enumerate() {
                if index > 0
                    && let Some(delay) = chunk_delay
                {
                    tokio::time::sleep(delay).await;
                }
                let take = budget.map_or(chunk.len(), |n| chunk.len().min(n - sent));
                if take == 0 {
                    break;
                }
                // The chunk header always announces the whole chunk, so a cut can fall inside it.
                let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
                out.extend_from_slice(&chunk[..take]);
                if take == chunk.len() {
                    out.extend_from_slice(b"\r\n");
                }
                stream.write_all(&out).await?;
                stream.flush().await?;
                sent += take;
                if take < chunk.len() {
                    break;
                }
            }
            match limit {
                None => {
                    stream.write_all(b"0\r\n\r\n").await?;
                    stream.flush().await?;
                    Ok(!close)
                }
                Some(Limit::Cut(_)) => {
                    debug!(sent, "fake server: scripted cut");
                    stream.shutdown().await?;
                    Ok(false)
                }
                Some(Limit::Stall(_)) => {
                    debug!(sent, "fake server: scripted stall after bytes");
                    drain(stream).await;
                    Ok(false)
                }
            }
        }
        // Every other payload was answered or replaced above.
        Payload::Canned
        | Payload::Error(_)
        | Payload::Reset
        | Payload::Garbage(_)
        | Payload::Stall => Ok(false),
    }
}

/// Reads and discards until the peer closes the connection (or it fails).
async fn drain(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink).await {
        if n == 0 {
            break;
        }
    }
}

/// The status line and headers, ending with the blank line.
fn response_head(
    status: u16,
    headers: &[(String, String)],
    framing: Framing,
    close: bool,
) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    head.push_str(&format!(
        "date: {}\r\nserver: fastagentic-fake\r\n",
        httpdate::fmt_http_date(SystemTime::now())
    ));
    let mut has_connection = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("content-length")
            || name.eq_ignore_ascii_case("transfer-encoding")
        {
            debug!(%name, "fake server: scripted framing header ignored");
            continue;
        }
        has_connection |= name.eq_ignore_ascii_case("connection");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match framing {
        Framing::Length(len) => head.push_str(&format!("content-length: {len}\r\n")),
        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
    }
    if close && !has_connection {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

fn reason(status: u16) -> &'static str {
    match status {
        529 => "Site Overloaded",
        _ => http::StatusCode::from_u16(status)
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("Unknown"),
    }
}

// ---------------------------------------------------------------------------------------------
// Canned bodies
// ---------------------------------------------------------------------------------------------

type Headers = Vec<(String, String)>;

fn hdr(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The route's canned success for `request`.
fn canned(route: Route, request: &RecordedRequest, id: u64) -> (Payload, Headers) {
    let json = request.json();
    let model_field = || {
        json.as_ref()
            .and_then(|json| json.get("model"))
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_MODEL)
            .to_owned()
    };
    let stream_requested = json
        .as_ref()
        .and_then(|json| json.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match route {
        Route::OpenAi => {
            let include_usage = json
                .as_ref()
                .and_then(|json| json.pointer("/stream_options/include_usage"))
                .and_then(Value::as_bool)
                .unwrap_or(false);
            openai_canned(&model_field(), stream_requested, include_usage, id)
        }
        Route::Anthropic => anthropic_canned(&model_field(), stream_requested, id),
        Route::Gemini => {
            let (model, streaming) = gemini_call(&request.path).unwrap_or((DEFAULT_MODEL, false));
            let sse = request
                .query
                .as_deref()
                .is_some_and(|query| query.split('&').any(|pair| pair == "alt=sse"));
            gemini_canned(model, streaming, sse, id)
        }
    }
}

fn openai_usage() -> Value {
    json!({
        "prompt_tokens": INPUT_TOKENS,
        "completion_tokens": OUTPUT_TOKENS,
        "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    })
}

fn openai_canned(model: &str, stream: bool, include_usage: bool, id: u64) -> (Payload, Headers) {
    let completion_id = format!("chatcmpl-fake{id}");
    let created = unix_now();
    let request_id = format!("req_fake_{id}");
    if !stream {
        let body = json!({
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": CANNED_TEXT, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": openai_usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        });
        return (
            Payload::Full(Bytes::from(body.to_string())),
            vec![
                hdr("content-type", "application/json"),
                hdr("x-request-id", &request_id),
            ],
        );
    }
    let chunk = |delta: Value, finish_reason: Value| {
        let mut chunk = json!({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        chunk
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    events.extend(
        CANNED_PIECES
            .iter()
            .map(|piece| chunk(json!({"content": piece}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    if include_usage {
        events.push(json!({
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": openai_usage(),
        }));
    }
    let mut chunks: Vec<Bytes> = events
        .iter()
        .map(|event| Bytes::from(format!("data: {event}\n\n")))
        .collect();
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    (
        Payload::Chunks(chunks),
        vec![
            hdr("content-type", "text/event-stream; charset=utf-8"),
            hdr("cache-control", "no-cache"),
            hdr("x-request-id", &request_id),
        ],
    )
}

fn anthropic_canned(model: &str, stream: bool, id: u64) -> (Payload, Headers) {
    let message_id = format!("msg_fake{id:020}");
    let request_id = format!("req_fake_{id}");
    if !stream {
        let body = json!({
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": CANNED_TEXT}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {
                "input_tokens": INPUT_TOKENS,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": OUTPUT_TOKENS,
                "service_tier": "standard",
            },
        });
        return (
            Payload::Full(Bytes::from(body.to_string())),
            vec![
                hdr("content-type", "application/json"),
                hdr("request-id", &request_id),
            ],
        );
    }
    let mut events = vec![(
        "message_start",
        json!({
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": INPUT_TOKENS,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        }),
    )];
    events.push((
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ));
    events.extend(CANNED_PIECES.iter().map(|piece| {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
        )
    }));
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
            "usage": {"output_tokens": OUTPUT_TOKENS},
        }),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    let chunks = events
        .iter()
        .map(|(name, data)| Bytes::from(format!("event: {name}\ndata: {data}\n\n")))
        .collect();
    (
        Payload::Chunks(chunks),
        vec![
            hdr("content-type", "text/event-stream; charset=utf-8"),
            hdr("cache-control", "no-cache"),
            hdr("request-id", &request_id),
        ],
    )
}

fn gemini_canned(model: &str, streaming: bool, sse: bool, id: u64) -> (Payload, Headers) {
    let response_id = format!("fake-response-{id}");
    let response = |text: &str, last: bool| {
        let mut candidate = json!({
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        });
        let usage = if last {
            candidate["finishReason"] = json!("STOP");
            json!({
                "promptTokenCount": INPUT_TOKENS,
                "candidatesTokenCount": OUTPUT_TOKENS,
                "totalTokenCount": INPUT_TOKENS + OUTPUT_TOKENS,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": INPUT_TOKENS}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": OUTPUT_TOKENS}],
            })
        } else {
            json!({
                "promptTokenCount": INPUT_TOKENS,
                "totalTokenCount": INPUT_TOKENS,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": INPUT_TOKENS}],
            })
        };
        json!({
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": response_id,
        })
    };
    if !streaming {
        return (
            Payload::Full(Bytes::from(response(CANNED_TEXT, true).to_string())),
            vec![hdr("content-type", "application/json; charset=UTF-8")],
        );
    }
    let last = CANNED_PIECES.len() - 1;
    let responses = CANNED_PIECES
        .iter()
        .enumerate()
        .map(|(index, piece)| response(piece, index == last));
    if sse {
        // The Gemini API ends its SSE lines with CRLF.
        let chunks = responses
            .map(|response| Bytes::from(format!("data: {response}\r\n\r\n")))
            .collect();
        return (
            Payload::Chunks(chunks),
            vec![hdr("content-type", "text/event-stream")],
        );
    }
    // Without `alt=sse`, streamGenerateContent streams one JSON array.
    let mut chunks: Vec<Bytes> = responses
        .enumerate()
        .map(|(index, response)| {
            let separator = if index == 0 { "[" } else { ",\r\n" };
            Bytes::from(format!("{separator}{response}"))
        })
        .collect();
    chunks.push(Bytes::from_static(b"]"));
    (
        Payload::Chunks(chunks),
        vec![hdr("content-type", "application/json; charset=UTF-8")],
    )
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// `wait` as a protobuf Duration string, e.g. `"1.5s"`.
fn proto_duration(wait: Duration) -> String {
    let millis = wait.subsec_millis();
    if millis == 0 {
        format!("{}s", wait.as_secs())
    } else {
        format!("{}.{millis:03}s", wait.as_secs())
    }
}

/// An error body in the route's format (OpenAI's when there is no route).
fn error_body(kind: ErrorKind, route: Option<Route>, status: u16, id: u64) -> (Payload, Headers) {
    let request_id = format!("req_fake_{id}");
    let (body, headers) = match (kind, route) {
        (ErrorKind::RateLimited(_), Some(Route::Anthropic)) => (
            json!({
                "type": "error",
                "error": {
                    "type": "rate_limit_error",
                    "message": "This request would exceed the rate limit for your organization of 50 requests per minute. Please try again later.",
                },
                "request_id": request_id,
            }),
            vec![hdr("request-id", &request_id)],
        ),
        (ErrorKind::RateLimited(wait), Some(Route::Gemini)) => {
            let delay = proto_duration(wait);
            (
                json!({
                    "error": {
                        "code": status,
                        "message": format!("You exceeded your current quota, please check your plan and billing details. Please retry in {delay}."),
                        "status": "RESOURCE_EXHAUSTED",
                        "details": [{
                            "@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": delay,
                        }],
                    },
                }),
                Vec::new(),
            )
        }
        (ErrorKind::RateLimited(wait), Some(Route::OpenAi) | None) => (
            json!({
                "error": {
                    "message": format!(
                        "Rate limit reached for fake-model in organization org-fake on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in {}.",
                        proto_duration(wait)
                    ),
                    "type": "requests",
                    "param": null,
                    "code": "rate_limit_exceeded",
                },
            }),
            vec![hdr("x-request-id", &request_id)],
        ),
        (ErrorKind::Server, Some(Route::Anthropic)) => {
            let (kind, message) = match status {
                529 => ("overloaded_error", "Overloaded"),
                504 => ("timeout_error", "Request timed out"),
                _ => ("api_error", "Internal server error"),
            };
            (
                json!({
                    "type": "error",
                    "error": {"type": kind, "message": message},
                    "request_id": request_id,
                }),
                vec![hdr("request-id", &request_id)],
            )
        }
        (ErrorKind::Server, Some(Route::Gemini)) => {
            let (code, message) = match status {
                503 => (
                    "UNAVAILABLE",
                    "The model is overloaded. Please try again later.",
                ),
                504 => (
                    "DEADLINE_EXCEEDED",
                    "Deadline expired before operation could complete.",
                ),
                _ => (
                    "INTERNAL",
                    "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
                ),
            };
            (
                json!({"error": {"code": status, "message": message, "status": code}}),
                Vec::new(),
            )
        }
        (ErrorKind::Server, Some(Route::OpenAi) | None) => (
            json!({
                "error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": null,
                    "code": null,
                },
            }),
            vec![hdr("x-request-id", &request_id)],
        ),
    };
    let mut headers = headers;
    headers.push(hdr("content-type", "application/json"));
    (Payload::Full(Bytes::from(body.to_string())), headers)
}
