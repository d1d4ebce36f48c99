//! The SSE decoder against `eventsource-stream` on the same bytes.
//!
//! One group, `sse`, with ours next to theirs for each case:
//!
//! - `lf_1-4KiB`: a ~1 MiB OpenAI-like chat-completion stream (`data: {…json…}\n\n` per
//!   token, then `data: [DONE]`), fed in chunks of 1–4 KiB, as a TLS/HTTP body arrives;
//! - `crlf_1-4KiB`: the same events with CRLF line endings, as Gemini sends them;
//! - `lf_7B`: the LF stream in 7-byte chunks, which splits nearly every line, many UTF-8
//!   characters and every CRLF-free boundary, to stress the carry-over between chunks.
//!
//! Both sides get the same `Bytes` chunks and build every event as an owned value; the
//! `eventsource-stream` side is polled with a no-op waker, since an iterator stream is always
//! ready. Before timing, each case checks that both decoders produce the same events.
//!
//! Run with `cargo bench -p fastagentic --bench sse`.

#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use fastagentic::__private::SseDecoder;
use futures_util::StreamExt;

/// Roughly how big each generated stream is.
const STREAM_BYTES: usize = 1 << 20;

/// Token texts of the generated stream; a few are multi-byte so chunks split characters.
const TOKENS: [&str; 12] = [
    "Hello", " there", ",", " how", " can", " I", " help", " you", " today", "? ", " café", " 🦀",
];

/// A chat-completion chunk as OpenAI streams it, with a varying token.
fn openai_chunk(i: usize) -> String {
    let token = TOKENS[i % TOKENS.len()];
    format!(
        concat!(
            r#"{{"id":"chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL","object":"chat.completion.chunk","#,
            r#""created":1727346168,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_5050236cbd","#,
            r#""choices":[{{"index":0,"delta":{{"content":"{}"}},"logprobs":null,"finish_reason":null}}],"#,
            r#""usage":null,"n":{}}}"#
        ),
        token, i
    )
}

/// The event payloads of one ~[`STREAM_BYTES`] stream, `[DONE]` last.
fn payloads() -> Vec<String> {
    let mut payloads = Vec::new();
    let mut size = 0;
    while size < STREAM_BYTES {
        let payload = openai_chunk(payloads.len());
        size += payload.len() + 8;
        payloads.push(payload);
    }
    payloads.push("[DONE]".to_owned());
    payloads
}

/// The wire bytes for `payloads`, with `eol` ending every line.
fn wire(payloads: &[String], eol: &str) -> Bytes {
    let mut out = String::new();
    for payload in payloads {
        out.push_str("data: ");
        out.push_str(payload);
        out.push_str(eol);
        out.push_str(eol);
    }
    Bytes::from(out)
}

/// Splits `stream` into chunks whose sizes a fixed-seed generator picks from `sizes`.
fn chunks(stream: &Bytes, sizes: std::ops::RangeInclusive<usize>) -> Vec<Bytes> {
    let mut rng = fastrand::Rng::with_seed(7);
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let end = (at + rng.usize(sizes.clone())).min(stream.len());
        out.push(stream.slice(at..end));
        at = end;
    }
    out
}

/// Our decoder over the chunks; returns the events' `(type, data)` in order.
fn ours_events(chunks: &[Bytes]) -> Vec<(String, String)> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            events.push((event.event, event.data));
        }
    }
    assert!(!decoder.finish().discarded_event);
    events
}

/// Our decoder over the chunks; returns the event count.
fn ours_count(chunks: &[Bytes]) -> usize {
    let mut decoder = SseDecoder::new();
    let mut count = 0;
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            black_box(event);
            count += 1;
        }
    }
    black_box(decoder.finish());
    count
}

/// Polls `eventsource-stream` over the chunks to the end, calling `each` per event.
fn theirs(chunks: &[Bytes], mut each: impl FnMut(eventsource_stream::Event)) {
    let source = futures_util::stream::iter(chunks.iter().cloned().map(Ok::<Bytes, Infallible>));
    let mut events = source.eventsource();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match events.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(event)) => each(event.unwrap()),
            Poll::Ready(None) => return,
            Poll::Pending => unreachable!("an iterator stream is always ready"),
        }
    }
}

fn theirs_events(chunks: &[Bytes]) -> Vec<(String, String)> {
    let mut events = Vec::new();
    theirs(chunks, |event| events.push((event.event, event.data)));
    events
}

fn theirs_count(chunks: &[Bytes]) -> usize {
    let mut count = 0;
    theirs(chunks, |event| {
        black_box(event);
        count += 1;
    });
    count
}

fn bench_sse(c: &mut Criterion) {
    let payloads = payloads();
    let lf = wire(&payloads, "\n");
    let crlf = wire(&payloads, "\r\n");
    let cases = [
        ("lf_1-4KiB", &lf, chunks(&lf, 1024..=4096)),
        ("crlf_1-4KiB", &crlf, chunks(&crlf, 1024..=4096)),
        ("lf_7B", &lf, chunks(&lf, 7..=7)),
    ];

    let mut group = c.benchmark_group("sse");
    for (case, stream, chunks) in &cases {
        let ours = ours_events(chunks);
        assert_eq!(ours.len(), payloads.len(), "{case}: our event count");
        assert_eq!(ours, theirs_events(chunks), "{case}: the decoders disagree");
        assert_eq!(ours_count(chunks), theirs_count(chunks));

        group.throughput(Throughput::Bytes(stream.len() as u64));
        group.bench_with_input(BenchmarkId::new("ours", case), chunks, |b, chunks| {
            b.iter(|| ours_count(chunks));
        });
        group.bench_with_input(
            BenchmarkId::new("eventsource-stream", case),
            chunks,
            |b, chunks| b.iter(|| theirs_count(chunks)),
        );
    }
    group.finish();
}

criterion_group!(benches, bench_sse);
criterion_main!(benches);
