//! Spans per request, per attempt and per LLM call, with the error class recorded and
//! nothing secret in them. Its own test binary: it installs a global subscriber.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use fastagentic::llm::{MockProvider, MockReply, Prompt, Providers};
use fastagentic::prelude::*;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn request_attempt_and_llm_call_spans_carry_the_error_class() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish(),
    )
    .unwrap();

    let mock = Arc::new(MockProvider::new().push(MockReply::server_error()));
    let pipeline = Pipeline::builder()
        .endpoint("/traced")
        .model("mock/m")
        .retry(RetryPolicy::builder().max_attempts(2).build().unwrap())
        .providers(Arc::new(Providers::new().with_shared(mock)))
        .build()
        .unwrap();
    let reply =
        pipeline
            .run(
                RequestInfo::new().user("alice"),
                |ctx: AgentContext| async move {
                    ctx.llm().complete(Prompt::user("the secret plan")).await
                },
            )
            .await
            .unwrap();
    assert!(reply.text.contains("the secret plan"), "the mock echoes it");

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // Each line names its whole span stack; the innermost span is the one closing.
    let closes = |name: &str| {
        text.lines()
            .filter(|l| l.contains(" close "))
            .filter_map(|l| l.rfind("fastagentic.").map(|i| &l[i..]))
            .filter(|innermost| innermost.starts_with(&format!("{name}{{")))
            .count()
    };
    assert_eq!(closes("fastagentic.request"), 1, "{text}");
    assert_eq!(closes("fastagentic.attempt"), 2, "{text}");
    assert_eq!(closes("fastagentic.llm_call"), 2, "{text}");
    assert!(
        text.contains("error_class=\"server_error\"") || text.contains("error_class=server_error"),
        "{text}"
    );
    assert!(text.contains("endpoint=/traced"), "{text}");
    assert!(
        text.contains("provider=\"mock\"") || text.contains("provider=mock"),
        "{text}"
    );
    assert!(
        !text.contains("secret plan"),
        "prompts stay out of traces: {text}"
    );
    assert!(
        !text.contains("alice"),
        "user ids stay out of traces: {text}"
    );
}
