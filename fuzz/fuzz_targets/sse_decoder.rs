//! The SSE decoder on arbitrary bytes: it never panics, and the events it hands out do
//! not depend on where the network split the body.
#![no_main]

use fastagentic::__private::{SseDecoder, SseEvent};
use libfuzzer_sys::fuzz_target;

/// Feeds `pieces` in order; every event, the stray lines, and whether an event was cut.
fn decode<'a>(pieces: impl IntoIterator<Item = &'a [u8]>) -> (Vec<SseEvent>, Vec<String>, bool) {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    let mut strays = Vec::new();
    for piece in pieces {
        decoder.push(piece);
        while let Some(event) = decoder.next_event() {
            events.push(event);
        }
        strays.extend(decoder.take_stray());
    }
    let end = decoder.finish();
    while let Some(event) = decoder.next_event() {
        events.push(event);
    }
    strays.extend(decoder.take_stray());
    (events, strays, end.discarded_event)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = decode([body]);
    // Split into pieces of a length chosen by the first byte, down to one byte each.
    let step = usize::from(seed % 17) + 1;
    let pieces = decode(body.chunks(step));
    assert_eq!(
        whole.0, pieces.0,
        "events depend on the split ({step}-byte pieces)"
    );
    assert_eq!(
        whole.2, pieces.2,
        "the cut-event verdict depends on the split"
    );
    // Each take joins its lines with '\n'; joined the same way, the lines must agree.
    assert_eq!(
        whole.1.join("\n"),
        pieces.1.join("\n"),
        "stray lines depend on the split"
    );
});
