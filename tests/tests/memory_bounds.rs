//! Memory stays bounded against hostile peers, measured from `/proc/self/status`.
//!
//! A raw loopback upstream offers up to 512 MiB (an SSE line without end, a JSON answer
//! without end, an error body without end) and a raw client offers the server a request
//! body without end. The process's peak RSS must stay far below what was offered: the
//! limits refuse, they do not buffer. Everything runs in one test so the peak belongs to
//! these scenarios alone (this binary has no other tests).

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fastagentic::llm::{OpenAi, Prompt, Provider};
use fastagentic::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What the hostile side offers: far more than any limit.
const OFFERED: usize = 512 * 1024 * 1024;

/// Generous: the largest default limit is 32 MiB, and the buffer growing to it may hold
/// two copies for a moment. Buffering what was offered would blow through this.
const PEAK_GROWTH_BOUND: usize = 160 * 1024 * 1024;

/// A `/proc/self/status` field in bytes (Linux reports kB).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("{field} is not in /proc/self/status"));
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// An upstream that answers every request with `head` and then `filler` bytes until
/// [`OFFERED`] or until the client hangs up; returns how much it managed to write.
async fn hostile_upstream(head: &'static str, filler: u8) -> (String, oneshot::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let (written_tx, written_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request_head(&mut socket).await;
        let mut written = 0;
        if socket.write_all(head.as_bytes()).await.is_ok() {
            let chunk = vec![filler; 1024 * 1024];
            while written < OFFERED && socket.write_all(&chunk).await.is_ok() {
                written += chunk.len();
            }
        }
        let _ = written_tx.send(written);
    });
    (base, written_rx)
}

async fn read_request_head(socket: &mut TcpStream) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the client closed before sending its request");
        seen.extend_from_slice(&buf[..n]);
    }
}

fn openai(base: &str) -> OpenAi {
    OpenAi::new("sk-test-memory-bounds").base_url(base)
}

fn assert_refused_not_buffered(what: &str, written: usize, baseline: usize) {
    let peak = status_bytes("VmHWM:");
    let growth = peak.saturating_sub(baseline);
    eprintln!(
        "{what}: the peer wrote {} MiB, peak RSS grew {} MiB",
        written / (1024 * 1024),
        growth / (1024 * 1024)
    );
    assert!(
        written < OFFERED,
        "{what}: the client read all {OFFERED} bytes instead of hanging up"
    );
    assert!(
        growth < PEAK_GROWTH_BOUND,
        "{what}: peak RSS grew by {growth} bytes"
    );
}

#[derive(Clone, Debug, Deserialize)]
struct Text {
    text: String,
}

/// Only here so the server has a route taking a JSON body.
#[agent_endpoint(path = "/m/echo")]
async fn echo(_ctx: AgentContext, input: Text) -> Result<String, AgentError> {
    Ok(input.text)
}

/// A client that sends a chunked body until the server answers or hangs up; returns
/// the status line it got and how much it wrote.
async fn endless_request_body(addr: std::net::SocketAddr) -> (String, usize) {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let head = "POST /m/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = socket.into_split();
    let writing = tokio::spawn(async move {
        let mut chunk = format!("{:x}\r\n", 1024 * 1024).into_bytes();
        chunk.extend(std::iter::repeat_n(b' ', 1024 * 1024));
        chunk.extend_from_slice(b"\r\n");
        let mut written = 0;
        while written < OFFERED && writer.write_all(&chunk).await.is_ok() {
            written += 1024 * 1024;
        }
        written
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    drop(reader);
    let written = tokio::time::timeout(Duration::from_secs(30), writing)
        .await
        .map(|joined| joined.unwrap())
        .unwrap_or(OFFERED);
    let status = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    (status, written)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_do_not_grow_the_memory() {
    let baseline = status_bytes("VmRSS:");

    // One SSE line without end.
    let (base, written) = hostile_upstream(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: ",
        b'x',
    )
    .await;
    let mut stream = openai(&base)
        .stream("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap();
    let mut error = None;
    while let Some(event) = stream.next().await {
        if let Err(err) = event {
            error = Some(err);
            break;
        }
    }
    drop(stream);
    let err = error.expect("the endless line fails the stream");
    assert_eq!(err.class(), ErrorClass::ServerError, "{err}");
    assert!(err.message().contains("more than 8 MiB"), "{err}");
    assert_refused_not_buffered("SSE line", written.await.unwrap(), baseline);

    // A whole answer without end.
    let (base, written) = hostile_upstream(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"choices\":[{\"message\":{\"content\":\"",
        b'a',
    )
    .await;
    let err = openai(&base)
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError, "{err}");
    assert!(err.message().contains("more than 32 MiB"), "{err}");
    assert_refused_not_buffered("JSON answer", written.await.unwrap(), baseline);

    // An error body without end: classified from its start.
    let (base, written) = hostile_upstream(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"error\":{\"message\":\"overloaded",
        b' ',
    )
    .await;
    let err = openai(&base)
        .complete("gpt-4o", &Prompt::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert_refused_not_buffered("error body", written.await.unwrap(), baseline);

    // A request body without end, sent to the server.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(App::new("Memory").serve_with(listener, async move {
        let _ = stopped.await;
    }));
    let (status, written) = endless_request_body(addr).await;
    assert!(status.contains(" 413 "), "answered {status:?}");
    assert_refused_not_buffered("request body", written, baseline);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
