//! Server-sent events, parsed by the WHATWG rules.
//!
//! [`SseDecoder`] takes the response body in whatever pieces the network delivers and hands
//! back complete [`SseEvent`]s, following the HTML Living Standard §9.2.5–9.2.6: lines end
//! at CRLF, LF or a lone CR (also when a CRLF is split between two chunks), bytes are split
//! into lines before they are decoded as UTF-8, one leading BOM is dropped, a blank line
//! dispatches, and an event the stream never finished is discarded rather than delivered.
//!
//! It also keeps what the standard would silently drop but a provider client needs to see:
//! lines that are not SSE at all ([`SseDecoder::take_stray`]), such as the pretty-printed
//! JSON error object Gemini can send mid-stream without a `data:` prefix, and whether the
//! stream stopped in the middle of an event ([`SseEnd::discarded_event`]).
//!
//! ```
//! use fastagentic::__private::SseDecoder;
//!
//! let mut decoder = SseDecoder::new();
//! decoder.push(b"event: greeting\r\ndata: hel");
//! assert_eq!(decoder.next_event(), None);
//! decoder.push(b"lo\r\n\r\ndata: [DONE]\n\n");
//! let first = decoder.next_event().map(|event| (event.event, event.data));
//! assert_eq!(first, Some(("greeting".to_owned(), "hello".to_owned())));
//! assert_eq!(decoder.next_event().map(|event| event.data).as_deref(), Some("[DONE]"));
//! assert!(!decoder.finish().discarded_event);
//! ```

use std::borrow::Cow;
use std::collections::VecDeque;

/// The UTF-8 byte order mark, which may open the stream once.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The event type of an event that named none.
const DEFAULT_EVENT: &str = "message";

/// One dispatched event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `"message"` when none was given.
    pub event: String,
    /// The `data:` lines joined with `'\n'`.
    pub data: String,
    /// The last event ID in force at dispatch. It carries over from earlier events until an
    /// `id:` field changes it; an `id:` value containing NUL is ignored.
    pub id: Option<String>,
    /// The `retry:` value (milliseconds) given in this event, if it was all ASCII digits.
    pub retry: Option<u64>,
}

/// What [`SseDecoder::finish`] found left over at the end of the stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEnd {
    /// An event had started (a `data`, `event`, `id` or `retry` field was seen) but no blank
    /// line dispatched it, so it was discarded, as the standard requires. For a provider
    /// stream this usually means the connection was cut mid-event.
    pub discarded_event: bool,
}

/// An incremental server-sent-events parser.
///
/// Feed it body chunks with [`push`](Self::push) and drain [`next_event`](Self::next_event)
/// until it returns `None`, then push the next chunk. Call [`finish`](Self::finish) when the
/// body ends.
#[derive(Debug, Default)]
pub struct SseDecoder {
    lines: LineSplitter,
    builder: EventBuilder,
    /// Events completed inside [`finish`](Self::finish), which cannot return them itself.
    finished: VecDeque<SseEvent>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes held for what is not yet an event: the unfinished line, and the data and
    /// stray lines of the event being built. A caller bounds this, since a hostile
    /// upstream can send one line without end.
    pub fn pending_bytes(&self) -> usize {
        (self.lines.buf.len() - self.lines.pos) + self.builder.data.len() + self.builder.stray.len()
    }

    /// Appends a network chunk. Chunks may split the stream anywhere: mid-line, inside a
    /// UTF-8 character, or between the CR and LF of a CRLF.
    pub fn push(&mut self, chunk: &[u8]) {
        self.lines.push(chunk);
    }

    /// The next complete event in the bytes pushed so far, if any.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        if let Some(event) = self.finished.pop_front() {
            return Some(event);
        }
        while let Some(line) = self.lines.next_line() {
            if let Some(event) = self.builder.line(line) {
                return Some(event);
            }
        }
        None
    }

    /// The lines seen since the last call that are not SSE at all, joined with `'\n'`, or
    /// `None` when there were none.
    ///
    /// A stray line is one that is neither blank nor a comment and whose field name is not
    /// `data`, `event`, `id` or `retry` — for example each line of a pretty-printed
    /// `{"error": …}` object sent without a `data:` prefix. The standard ignores such lines;
    /// they are kept here so the caller can recognise an error body.
    ///
    /// Lines are read only as [`next_event`](Self::next_event) reaches them, so the complete
    /// stray text of the bytes pushed so far is here once `next_event` has returned `None`
    /// (or after [`finish`](Self::finish)).
    pub fn take_stray(&mut self) -> Option<String> {
        if self.builder.stray.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.builder.stray))
        }
    }

    /// Ends the stream.
    ///
    /// Complete events not yet returned stay available from [`next_event`](Self::next_event).
    /// A final line without a line terminator is added to the stray text if it is a stray
    /// line, and otherwise discarded; an event that was never dispatched is discarded too,
    /// and reported in the result.
    pub fn finish(&mut self) -> SseEnd {
        while let Some(line) = self.lines.next_line() {
            if let Some(event) = self.builder.line(line) {
                self.finished.push_back(event);
            }
        }
        if let Some(tail) = self.lines.take_tail() {
            self.builder.unterminated_line(tail);
        }
        SseEnd {
            discarded_event: self.builder.discard(),
        }
    }
}

/// Splits a byte stream into lines at CRLF, LF or lone CR, across chunk boundaries.
#[derive(Debug, Default)]
struct LineSplitter {
    buf: Vec<u8>,
    /// Start of the first line not yet handed out; bytes before it are dead until compacted.
    pos: usize,
    /// Bytes from `pos` up to here are known to hold no line end, so a long line arriving in
    /// small chunks is scanned once rather than once per chunk.
    scanned: usize,
    /// The last line ended in a CR that was the last byte pushed; if the next byte is an LF,
    /// it belongs to that line end and must not make a second, blank, line.
    pending_cr: bool,
    /// A line has been handed out, so a BOM can no longer be at the start of the stream.
    past_start: bool,
}

impl LineSplitter {
    fn push(&mut self, chunk: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(chunk);
    }

    /// Drops consumed bytes, but only when that moves no more bytes than were consumed, which
    /// keeps the cost per byte constant however the stream is chunked.
    fn compact(&mut self) {
        let live = self.buf.len() - self.pos;
        if live == 0 {
            self.buf.clear();
        } else if self.pos >= live {
            self.buf.drain(..self.pos);
        } else {
            return;
        }
        self.scanned = self.scanned.saturating_sub(self.pos);
        self.pos = 0;
    }

    /// The next complete line, without its terminator.
    fn next_line(&mut self) -> Option<&[u8]> {
        if self.pending_cr {
            let &next = self.buf.get(self.pos)?;
            self.pending_cr = false;
            if next == b'\n' {
                self.pos += 1;
            }
        }
        let from = self.scanned.max(self.pos);
        let Some(found) = find_line_end(&self.buf[from..]) else {
            self.scanned = self.buf.len();
            return None;
        };
        let start = self.pos;
        let end = from + found;
        self.pos = end + 1;
        if self.buf[end] == b'\r' {
            match self.buf.get(self.pos) {
                Some(b'\n') => self.pos += 1,
                Some(_) => {}
                None => self.pending_cr = true,
            }
        }
        self.scanned = self.pos;
        let at_start = !std::mem::replace(&mut self.past_start, true);
        Some(strip_bom(&self.buf[start..end], at_start))
    }

    /// The bytes after the last line end, which the stream never terminated. Resets the
    /// buffer.
    fn take_tail(&mut self) -> Option<&[u8]> {
        if self.pending_cr && self.buf.get(self.pos) == Some(&b'\n') {
            self.pos += 1;
        }
        self.pending_cr = false;
        let start = self.pos;
        let end = self.buf.len();
        self.pos = end;
        self.scanned = end;
        if start == end {
            return None;
        }
        let at_start = !std::mem::replace(&mut self.past_start, true);
        Some(strip_bom(&self.buf[start..end], at_start))
    }
}

/// The line without a leading BOM, if it is the first line of the stream.
fn strip_bom(line: &[u8], at_start: bool) -> &[u8] {
    if at_start {
        line.strip_prefix(BOM).unwrap_or(line)
    } else {
        line
    }
}

fn is_line_end(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// Index of the first CR or LF.
///
/// Tests 16-byte blocks with a branch-free OR that the compiler turns into one SIMD compare
/// per block, and only looks for the exact index inside the block that has a hit. Lines in
/// LLM streams run to hundreds of bytes, so this is most of the parser's work; it measured
/// several times faster than `iter().position` alone.
fn find_line_end(haystack: &[u8]) -> Option<usize> {
    let (blocks, rest) = haystack.as_chunks::<16>();
    for (index, block) in blocks.iter().enumerate() {
        let hit = block
            .iter()
            .fold(0u8, |hit, &byte| hit | u8::from(is_line_end(byte)));
        if hit != 0 {
            return block
                .iter()
                .position(|&byte| is_line_end(byte))
                .map(|i| index * 16 + i);
        }
    }
    rest.iter()
        .position(|&byte| is_line_end(byte))
        .map(|i| blocks.len() * 16 + i)
}

/// The four field names the standard acts on.
#[derive(Clone, Copy)]
enum Field {
    Data,
    Event,
    Id,
    Retry,
}

impl Field {
    /// Field names are case-sensitive: `Data` is not `data`.
    fn parse(name: &[u8]) -> Option<Self> {
        match name {
            b"data" => Some(Self::Data),
            b"event" => Some(Self::Event),
            b"id" => Some(Self::Id),
            b"retry" => Some(Self::Retry),
            _ => None,
        }
    }
}

/// Splits a field line at its first colon and drops one space after it. A line without a
/// colon is a field with an empty value.
fn split_field(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&byte| byte == b':') {
        Some(colon) => {
            let value = &line[colon + 1..];
            (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
        }
        None => (line, &[]),
    }
}

/// A `retry:` value, if it is a non-empty run of ASCII digits that fits in a `u64`.
fn parse_retry(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &digit| {
        acc.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Decodes UTF-8, replacing invalid sequences.
///
/// Tries the strict check first: its ASCII fast path is several times quicker than
/// `from_utf8_lossy` on the mostly-ASCII JSON of LLM streams.
fn decode(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The per-event buffers of the standard's interpretation step, plus the stray text.
///
/// Data and event type are kept as bytes and decoded once at dispatch; CR and LF never occur
/// inside a UTF-8 sequence, so that decodes exactly as line by line would.
#[derive(Debug, Default)]
struct EventBuilder {
    data: Vec<u8>,
    event_type: Vec<u8>,
    retry: Option<u64>,
    last_id: Option<String>,
    /// A field was seen since the last dispatch, so losing the stream now loses an event.
    started: bool,
    stray: String,
}

impl EventBuilder {
    /// Interprets one complete line; returns the event it dispatches, if any.
    fn line(&mut self, line: &[u8]) -> Option<SseEvent> {
        match line.first() {
            None => return self.dispatch(),
            Some(b':') => return None,
            Some(_) => {}
        }
        let (name, value) = split_field(line);
        match Field::parse(name) {
            Some(field) => self.field(field, value),
            None => self.add_stray(line),
        }
        None
    }

    fn field(&mut self, field: Field, value: &[u8]) {
        self.started = true;
        match field {
            Field::Data => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
            }
            Field::Event => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            Field::Id => {
                if !value.contains(&0) {
                    self.last_id = Some(decode(value).into_owned());
                }
            }
            Field::Retry => {
                if let Some(retry) = parse_retry(value) {
                    self.retry = Some(retry);
                }
            }
        }
    }

    fn add_stray(&mut self, line: &[u8]) {
        if !self.stray.is_empty() {
            self.stray.push('\n');
        }
        self.stray.push_str(&decode(line));
    }

    /// A blank line: fires the event if it has data, and starts the next one either way.
    fn dispatch(&mut self) -> Option<SseEvent> {
        self.started = false;
        let retry = self.retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        // Every data line appended an LF; the standard removes the last one.
        self.data.pop();
        let event = SseEvent {
            event: if self.event_type.is_empty() {
                DEFAULT_EVENT.to_owned()
            } else {
                decode(&self.event_type).into_owned()
            },
            data: decode(&self.data).into_owned(),
            id: self.last_id.clone(),
            retry,
        };
        self.data.clear();
        self.event_type.clear();
        Some(event)
    }

    /// The stream's last line, which no line end completed: the standard discards it, but
    /// a stray line is still worth reporting and a field means an event was cut short.
    fn unterminated_line(&mut self, line: &[u8]) {
        if matches!(line.first(), None | Some(b':')) {
            return;
        }
        match Field::parse(split_field(line).0) {
            Some(_) => self.started = true,
            None => self.add_stray(line),
        }
    }

    /// Drops the event in progress; returns whether there was one.
    fn discard(&mut self) -> bool {
        self.data.clear();
        self.event_type.clear();
        self.retry = None;
        std::mem::take(&mut self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/llm-wire"
    );

    /// Everything a decoder produced from a whole stream.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        events: Vec<SseEvent>,
        stray: Option<String>,
        end: SseEnd,
    }

    fn decode_chunks<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
        let mut decoder = SseDecoder::new();
        let mut events = Vec::new();
        let mut stray: Option<String> = None;
        let mut collect_stray = |decoder: &mut SseDecoder| {
            if let Some(text) = decoder.take_stray() {
                match &mut stray {
                    Some(all) => {
                        all.push('\n');
                        all.push_str(&text);
                    }
                    None => stray = Some(text),
                }
            }
        };
        for chunk in chunks {
            decoder.push(chunk);
            events.extend(std::iter::from_fn(|| decoder.next_event()));
            collect_stray(&mut decoder);
        }
        let end = decoder.finish();
        events.extend(std::iter::from_fn(|| decoder.next_event()));
        collect_stray(&mut decoder);
        Outcome { events, stray, end }
    }

    fn decode_all(stream: &[u8]) -> Outcome {
        decode_chunks([stream])
    }

    fn decode_bytewise(stream: &[u8]) -> Outcome {
        decode_chunks(stream.chunks(1))
    }

    fn events(stream: &str) -> Vec<SseEvent> {
        decode_all(stream.as_bytes()).events
    }

    fn event(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.to_owned(),
            data: data.to_owned(),
            ..SseEvent::default()
        }
    }

    fn message(data: &str) -> SseEvent {
        event("message", data)
    }

    #[test]
    fn the_rules_together() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"\xEF\xBB\xBF: keep-alive\r"); // BOM, a comment, a CR ...
        decoder.push(b"\ndata: {\"text\":\r\ndata: \"hi\"}\r"); // ... whose LF arrives later
        decoder.push(b"\n\r\nevent: message_stop\rdata: {}\r\r");
        decoder.push(b"{\n  \"error\": {\"code\": 499}\n}\ndata: never finished\n");

        let first = decoder.next_event().unwrap();
        assert_eq!(first.data, "{\"text\":\n\"hi\"}");
        let second = decoder.next_event().unwrap();
        assert_eq!(
            (second.event.as_str(), second.data.as_str()),
            ("message_stop", "{}")
        );
        assert_eq!(decoder.next_event(), None);
        assert_eq!(
            decoder.take_stray().as_deref(),
            Some("{\n  \"error\": {\"code\": 499}\n}")
        );
        assert!(decoder.finish().discarded_event);
    }

    // anthropic-sdk-typescript tests/streaming.test.ts

    #[test]
    fn basic() {
        assert_eq!(
            events("event: completion\ndata: {\"foo\":true}\n\n"),
            [event("completion", "{\"foo\":true}")]
        );
    }

    #[test]
    fn data_without_event_is_a_message() {
        assert_eq!(
            events("data: {\"foo\":true}\n\n"),
            [message("{\"foo\":true}")]
        );
    }

    #[test]
    fn event_without_data_fires_nothing_and_resets_the_type() {
        assert_eq!(events("event: foo\n\n"), []);
        assert_eq!(events("event: foo\n\ndata: x\n\n"), [message("x")]);
    }

    #[test]
    fn multiple_events() {
        assert_eq!(
            events("event: foo\ndata: {}\n\nevent: bar\ndata: {}\n\n"),
            [event("foo", "{}"), event("bar", "{}")]
        );
    }

    #[test]
    fn multiple_data_lines_with_empty_lines() {
        let stream = "event: completion\ndata: {\ndata: \"foo\":\ndata: \ndata:\ndata: true}\n\n";
        assert_eq!(
            events(stream),
            [event("completion", "{\n\"foo\":\n\n\ntrue}")]
        );
    }

    #[test]
    fn escaped_newlines_in_json_stay_escaped() {
        let stream = "event: foo\ndata: {\"content\":\"\\n\\n\"}\n\n";
        let got = events(stream);
        assert_eq!(got, [event("foo", r#"{"content":"\n\n"}"#)]);
        let json: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(json["content"], "\n\n");
    }

    #[test]
    fn unicode_line_separators_are_data() {
        let mut stream = b"event: foo\ndata: {\"content\":\"".to_vec();
        stream.extend_from_slice(b"a\xE2\x80\xA8b\xC2\x85c");
        stream.extend_from_slice(b"\"}\n\n");
        let got = decode_all(&stream).events;
        assert_eq!(got, [event("foo", "{\"content\":\"a\u{2028}b\u{85}c\"}")]);
    }

    #[test]
    fn multi_byte_characters_split_across_chunks() {
        let text = "известни 🦀";
        let stream = format!("event: completion\ndata: {{\"content\":\"{text}\"}}\n\n");
        let bytes = stream.as_bytes();
        let cyrillic = bytes.iter().position(|&b| b >= 0x80).unwrap();
        let crab = bytes.iter().rposition(|&b| b == 0xF0).unwrap();
        let chunks = [
            &bytes[..cyrillic + 1],
            &bytes[cyrillic + 1..crab + 2],
            &bytes[crab + 2..],
        ];
        let got = decode_chunks(chunks).events;
        assert_eq!(
            got,
            [event("completion", &format!("{{\"content\":\"{text}\"}}"))]
        );
    }

    #[test]
    fn anthropic_error_event() {
        let stream = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
        let got = events(stream);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].event, "error");
        let json: serde_json::Value = serde_json::from_str(&got[0].data).unwrap();
        assert_eq!(json["error"]["type"], "overloaded_error");
    }

    // WebKit LayoutTests http/tests/eventsource/resources/event-stream.php, in spirit.

    #[test]
    fn comments_are_ignored_and_not_stray() {
        let outcome = decode_all(b": a comment\n:\ndata: DATA1\n: another\n\n");
        assert_eq!(outcome.events, [message("DATA1")]);
        assert_eq!(outcome.stray, None);
    }

    #[test]
    fn unknown_and_miscased_fields_are_ignored() {
        let outcome = decode_all(b"foo: bar\nData: NO\ndata: DATA2\nDATA: NO\n\n");
        assert_eq!(outcome.events, [message("DATA2")]);
        assert_eq!(
            outcome.stray.as_deref(),
            Some("foo: bar\nData: NO\nDATA: NO")
        );
    }

    #[test]
    fn space_before_the_colon_makes_an_unknown_field() {
        let outcome = decode_all(b"data : x\n\ndata: y\n\n");
        assert_eq!(outcome.events, [message("y")]);
        assert_eq!(outcome.stray.as_deref(), Some("data : x"));
    }

    #[test]
    fn only_one_space_after_the_colon_is_removed() {
        assert_eq!(
            events("data:no space\ndata:  two spaces\ndata:\ttab\n\n"),
            [message("no space\n two spaces\n\ttab")]
        );
    }

    #[test]
    fn a_field_without_colon_has_an_empty_value() {
        assert_eq!(events("data\n\n"), [message("")]);
        assert_eq!(events("data\ndata\n\n"), [message("\n")]);
        assert_eq!(events("event: x\nevent\ndata: d\n\n"), [message("d")]);
    }

    #[test]
    fn cr_only_line_endings() {
        assert_eq!(
            events("data: one\rdata: two\r\rdata: three\r\r"),
            [message("one\ntwo"), message("three")]
        );
    }

    #[test]
    fn crlf_line_endings() {
        assert_eq!(
            events("event: e\r\ndata: one\r\ndata: two\r\n\r\ndata: three\r\n\r\n"),
            [event("e", "one\ntwo"), message("three")]
        );
    }

    #[test]
    fn mixed_line_endings() {
        assert_eq!(
            events("data: a\r\ndata: b\rdata: c\n\r\n\rdata: d\n\n"),
            [message("a\nb\nc"), message("d")]
        );
    }

    #[test]
    fn retry_is_taken_only_when_all_digits() {
        let got = events(
            "retry: 1000\ndata: a\n\nretry: 1000x\ndata: b\n\nretry: -5\nretry: +5\nretry: 5 \nretry:\ndata: c\n\nretry:  7\ndata: d\n\n",
        );
        let retries: Vec<_> = got.iter().map(|e| e.retry).collect();
        assert_eq!(retries, [Some(1000), None, None, None]);
    }

    #[test]
    fn retry_overflow_is_ignored() {
        let got = events("retry: 99999999999999999999999\ndata: a\n\n");
        assert_eq!(got[0].retry, None);
    }

    #[test]
    fn id_persists_across_events_until_changed() {
        let got = events("id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n");
        let ids: Vec<_> = got.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("1"), Some("2"), Some("")]);
    }

    #[test]
    fn id_without_data_still_sets_the_last_event_id() {
        let got = events("id: 7\n\ndata: a\n\n");
        assert_eq!(got[0].id.as_deref(), Some("7"));
    }

    #[test]
    fn id_containing_nul_is_ignored() {
        let got = events("id: 1\ndata: a\n\nid: 2\u{0}3\ndata: b\n\n");
        let ids: Vec<_> = got.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("1"), Some("1")]);
    }

    // Stream edges.

    #[test]
    fn bom_is_stripped_once_at_the_start() {
        let got = decode_all(b"\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n");
        assert_eq!(got.events, [message("a")]);
        assert_eq!(got.stray.as_deref(), Some("\u{FEFF}data: b"));

        let got = decode_all(b"\xEF\xBB\xBFdata: \xEF\xBB\xBFa\n\n").events;
        assert_eq!(got, [message("\u{FEFF}a")]);
    }

    #[test]
    fn bom_split_across_chunks_is_stripped() {
        let chunks: [&[u8]; 3] = [b"\xEF", b"\xBB\xBFda", b"ta: a\n\n"];
        assert_eq!(decode_chunks(chunks).events, [message("a")]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let chunks: [&[u8]; 3] = [b"data: a\r", b"\ndata: b\r", b"\n\r\n"];
        let outcome = decode_chunks(chunks);
        assert_eq!(outcome.events, [message("a\nb")]);
        assert!(!outcome.end.discarded_event);
    }

    #[test]
    fn lone_cr_at_chunk_end_is_a_line_end() {
        let chunks: [&[u8]; 3] = [b"data: a\r", b"data: b\r", b"\r"];
        assert_eq!(decode_chunks(chunks).events, [message("a\nb")]);
    }

    #[test]
    fn cr_then_blank_line_dispatches_without_waiting() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: a\r\r");
        assert_eq!(decoder.next_event(), Some(message("a")));
    }

    #[test]
    fn unterminated_final_event_is_discarded() {
        let outcome = decode_all(b"data: a\n\ndata: b\n");
        assert_eq!(outcome.events, [message("a")]);
        assert!(outcome.end.discarded_event);

        let outcome = decode_all(b"data: a\n\ndata: b");
        assert_eq!(outcome.events, [message("a")]);
        assert!(outcome.end.discarded_event);
        assert_eq!(outcome.stray, None);
    }

    #[test]
    fn a_finished_stream_discards_nothing() {
        let outcome = decode_all(b"data: a\n\n: bye");
        assert_eq!(outcome.events, [message("a")]);
        assert_eq!(outcome.end, SseEnd::default());
    }

    #[test]
    fn finish_keeps_events_not_yet_returned() {
        let mut decoder = SseDecoder::new();
        decoder.push(b"data: a\n\ndata: b\n\ndata: c");
        assert_eq!(decoder.next_event(), Some(message("a")));
        assert!(decoder.finish().discarded_event);
        assert_eq!(decoder.next_event(), Some(message("b")));
        assert_eq!(decoder.next_event(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let got = decode_all(b"event: \xFF\ndata: a\xC3\ndata: b\n\n").events;
        assert_eq!(got, [event("\u{FFFD}", "a\u{FFFD}\nb")]);
    }

    #[test]
    fn gemini_error_without_data_prefix_is_stray() {
        let stream = concat!(
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"First \"}]}}]}\n\n",
            "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Second \"}]}}]}\n\n",
            "{\n",
            "  \"error\": {\n",
            "    \"code\": 499,\n",
            "    \"message\": \"The operation was cancelled.\",\n",
            "    \"status\": \"CANCELLED\"\n",
            "  }\n",
            "}\n",
        );
        let mut decoder = SseDecoder::new();
        decoder.push(stream.as_bytes());
        assert_eq!(std::iter::from_fn(|| decoder.next_event()).count(), 2);
        let stray = decoder.take_stray().unwrap();
        let json: serde_json::Value = serde_json::from_str(&stray).unwrap();
        assert_eq!(json["error"]["code"], 499);
        assert_eq!(decoder.take_stray(), None);
        assert_eq!(decoder.finish(), SseEnd::default());
    }

    #[test]
    fn unterminated_stray_line_is_kept_at_finish() {
        let outcome = decode_all(b"data: a\n\n{\n  \"error\": {}\n}");
        assert_eq!(outcome.events, [message("a")]);
        assert_eq!(outcome.stray.as_deref(), Some("{\n  \"error\": {}\n}"));
        assert!(!outcome.end.discarded_event);
    }

    #[test]
    fn buffer_stays_small_when_fed_in_small_chunks() {
        let event = format!("data: {}\n\n", "x".repeat(1000));
        let stream = event.repeat(200);
        let mut decoder = SseDecoder::new();
        let mut count = 0;
        for chunk in stream.as_bytes().chunks(7) {
            decoder.push(chunk);
            count += std::iter::from_fn(|| decoder.next_event()).count();
            assert!(decoder.lines.buf.len() <= 2 * event.len() + 7);
        }
        assert_eq!(count, 200);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let stream: &[u8] =
            b"\xEF\xBB\xBFid: 1\r\nevent: a\r\ndata: \xE2\x82\xAC\r\n\r\n:c\rdata\r\rretry: 5\ndata: z\n\nx";
        let whole = decode_all(stream);
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(decode_chunks([a, b]), whole, "split at {split}");
        }
        assert_eq!(whole.events.len(), 3);
        assert_eq!(whole.stray.as_deref(), Some("x"));
    }

    // Provider fixtures.

    fn fixtures() -> Option<Vec<(String, Vec<u8>)>> {
        let Ok(dir) = std::fs::read_dir(FIXTURES) else {
            println!("skipped: no fixture folder at {FIXTURES}");
            return None;
        };
        let mut files: Vec<_> = dir
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "sse"))
            .map(|path| {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        files.sort();
        Some(files)
    }

    fn fixture(name: &str) -> Option<Outcome> {
        let files = fixtures()?;
        let (_, bytes) = files.iter().find(|(file, _)| file == name).unwrap();
        Some(decode_all(bytes))
    }

    #[test]
    fn fixtures_decode_the_same_whole_and_byte_by_byte() {
        let Some(files) = fixtures() else { return };
        assert!(files.len() >= 14, "found only {} fixtures", files.len());
        for (name, bytes) in &files {
            let whole = decode_all(bytes);
            assert!(!whole.events.is_empty(), "{name}: no events");
            assert!(!whole.end.discarded_event, "{name}: unterminated event");
            assert_eq!(decode_bytewise(bytes), whole, "{name}");
        }
    }

    #[test]
    fn fixture_event_counts() {
        let expected = [
            ("anthropic_messages_stream.sse", 9),
            ("gemini_stream.sse", 3),
            ("gemini_stream_thinking.sse", 5),
            ("openai_chat_stream_usage.sse", 34),
        ];
        for (name, count) in expected {
            let Some(outcome) = fixture(name) else { return };
            assert_eq!(outcome.events.len(), count, "{name}");
            assert_eq!(outcome.stray, None, "{name}");
        }
    }

    #[test]
    fn fixture_openai_stream_ends_with_done() {
        let Some(outcome) = fixture("openai_chat_stream_usage.sse") else {
            return;
        };
        let last = outcome.events.last().unwrap();
        assert_eq!(last.data, "[DONE]");
        for event in &outcome.events[..outcome.events.len() - 1] {
            assert_eq!(event.event, "message");
            serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
        }
    }

    #[test]
    fn fixture_anthropic_event_names() {
        let Some(outcome) = fixture("anthropic_messages_stream.sse") else {
            return;
        };
        let names: Vec<_> = outcome.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(names.last(), Some(&"message_stop"));
        assert!(names.contains(&"ping"));
    }

    #[test]
    fn fixture_gemini_crlf_leaves_no_cr_in_data() {
        let Some(outcome) = fixture("gemini_stream.sse") else {
            return;
        };
        for event in &outcome.events {
            assert!(!event.data.contains('\r'));
            serde_json::from_str::<serde_json::Value>(&event.data).unwrap();
        }
    }

    #[test]
    fn fixture_gemini_midstream_error_is_stray() {
        let Some(outcome) = fixture("gemini_stream_error_midstream.sse") else {
            return;
        };
        assert_eq!(outcome.events.len(), 2);
        let json: serde_json::Value = serde_json::from_str(&outcome.stray.unwrap()).unwrap();
        assert_eq!(json["error"]["status"], "CANCELLED");
    }
}
