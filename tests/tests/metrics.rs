//! The Prometheus metrics, end to end: pipelines on virtual time report to an isolated
//! `Metrics`, and the rendered text says exactly what happened.
//!
//! The final exposition is also written to `$CARGO_TARGET_TMPDIR/fastagentic-metrics.prom`
//! for CI to lint with `promtool check metrics`.

// Test helpers outside #[test] fns may unwrap: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fastagentic::hooks::{Hook, Hooks};
use fastagentic::llm::{MockProvider, MockReply, Prompt, Providers, Usage};
use fastagentic::metrics::{self, Metrics};
use fastagentic::prelude::*;
use fastagentic::reliability::{EventKind, PipelineBuilder};
use fastagentic_testing::{fail, scripted};

/// Where CI finds the exposition to lint.
const EXPOSITION: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/fastagentic-metrics.prom");

/// Every sample name the pipeline test below produces: what pipelines export.
const PIPELINE_FAMILIES: [&str; 19] = [
    "fastagentic_circuit_failures_total",
    "fastagentic_circuit_opens_total",
    "fastagentic_circuit_state",
    "fastagentic_connections_open",
    "fastagentic_fallback_exhausted_total",
    "fastagentic_fallback_success_total",
    "fastagentic_fallback_triggered_total",
    "fastagentic_hook_errors_total",
    "fastagentic_llm_cost_usd_total",
    "fastagentic_llm_tokens_total",
    "fastagentic_llm_unpriced_calls_total",
    "fastagentic_rate_limited_total",
    "fastagentic_request_duration_seconds_bucket",
    "fastagentic_request_duration_seconds_count",
    "fastagentic_request_duration_seconds_sum",
    "fastagentic_requests_total",
    "fastagentic_retries_total",
    "fastagentic_retry_exhausted_total",
    "fastagentic_timeouts_total",
];

/// The Grafana dashboard shipped under `examples/`.
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/grafana/fastagentic.json"
);

/// Its queries as a Prometheus rules file, for CI's `promtool check rules`.
const DASHBOARD_RULES: &str = concat!(
    env!("CARGO_TARGET_TMPDIR"),
    "/fastagentic-dashboard-rules.yml"
);

/// Runs one request with `script`, returning the answer or the error's class.
async fn run(pipeline: &Pipeline, script: Vec<AgentError>) -> Result<String, ErrorClass> {
    pipeline
        .run(RequestInfo::new(), scripted(script).1)
        .await
        .map_err(|err| err.class())
}

/// A pipeline for `endpoint` reporting to `metrics`, its breakers observed.
fn build(metrics: &Arc<Metrics>, builder: PipelineBuilder, endpoint: &str) -> Pipeline {
    let pipeline = builder
        .endpoint(endpoint)
        .event_sink(metrics.clone())
        .build()
        .unwrap();
    metrics.observe_breakers(pipeline.breaker_registry().clone());
    pipeline
}

/// Every sample of an exposition: `name{label="value",...}` (labels sorted) → value.
/// Also checks that each sample's family has `# HELP` and `# TYPE` lines.
fn samples(text: &str) -> BTreeMap<String, f64> {
    let mut typed = Vec::new();
    let mut helped = Vec::new();
    let mut map = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| typed.iter().any(|t| t == base))
            })
            .unwrap_or(name);
        assert_eq!(typed.last().map(String::as_str), Some(family), "{line}");
        assert_eq!(helped.last().map(String::as_str), Some(family), "{line}");
        let mut pairs: Vec<(&str, &str)> = if labels.is_empty() {
            Vec::new()
        } else {
            // Our label values hold no commas or quotes.
            labels
                .split(',')
                .map(|pair| {
                    let (key, value) = pair.split_once('=').unwrap();
                    (key, value.trim_matches('"'))
                })
                .collect()
        };
        pairs.sort_unstable();
        let previous = map.insert(key(name, &pairs), value.parse::<f64>().unwrap());
        assert!(previous.is_none(), "duplicate sample {line}");
    }
    map
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort_unstable();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The samples of one metric name, keyed without the name.
fn family(all: &BTreeMap<String, f64>, name: &str) -> BTreeMap<String, f64> {
    all.iter()
        .filter_map(|(k, v)| {
            let labels = k.strip_prefix(name)?.strip_prefix('{')?;
            Some((format!("{{{labels}"), *v))
        })
        .collect()
}

/// The expected samples of one family.
fn expect(rows: &[(&[(&str, &str)], f64)]) -> BTreeMap<String, f64> {
    rows.iter()
        .map(|(labels, value)| (key("", labels), *value))
        .collect()
}

fn circuit_states(metrics: &Metrics) -> [f64; 3] {
    let all = samples(&metrics.render());
    ["closed", "open", "half_open"].map(|state| {
        all[&key(
            "fastagentic_circuit_state",
            &[("endpoint", "/breaker"), ("state", state)],
        )]
    })
}

#[tokio::test(start_paused = true)]
async fn the_exposition_counts_exactly_what_the_pipelines_did() {
    let metrics = Arc::new(Metrics::new());

    // Retries, a failing hook, and one exhausted loop: 1 s fixed delays, no jitter.
    let failing_hook = Hook::sync(EventKind::Retry, "failing_hook", |_ctx| {
        Err::<(), _>("scripted hook failure")
    });
    let retrying = build(
        &metrics,
        Pipeline::builder()
            .model("m")
            .retry(
                RetryPolicy::builder()
                    .max_attempts(3)
                    .backoff(Backoff::Fixed)
                    .jitter(false)
                    .initial_delay(Duration::from_secs(1))
                    .build()
                    .unwrap(),
            )
            .event_sink(Arc::new(Hooks::new().with(failing_hook))),
        "/retry",
    );
    let server_error = || fail(ErrorClass::ServerError);
    assert_eq!(
        run(&retrying, vec![server_error(), server_error()]).await,
        Ok("m".into())
    );
    assert_eq!(
        run(&retrying, vec![server_error(); 3]).await,
        Err(ErrorClass::ServerError)
    );

    // A breaker that opens on the second failure, probes after 10 s and closes after
    // two probe successes. Its registry is observed twice; it must count once.
    let breaking = build(
        &metrics,
        Pipeline::builder().model("primary").circuit_breaker(
            CircuitBreakerPolicy::builder()
                .failure_threshold(2)
                .reset_timeout(Duration::from_secs(10))
                .half_open_requests(1)
                .success_threshold(2)
                .build()
                .unwrap(),
        ),
        "/breaker",
    );
    metrics.observe_breakers(breaking.breaker_registry().clone());
    assert_eq!(
        run(&breaking, vec![server_error()]).await,
        Err(ErrorClass::ServerError)
    );
    assert_eq!(
        run(&breaking, vec![server_error()]).await,
        Err(ErrorClass::ServerError),
        "the second failure opens the breaker, and is answered with itself"
    );
    assert_eq!(
        run(&breaking, vec![]).await,
        Err(ErrorClass::CircuitOpen),
        "refused without a call"
    );
    assert_eq!(circuit_states(&metrics), [0.0, 1.0, 0.0], "open");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(run(&breaking, vec![]).await, Ok("primary".into()));
    assert_eq!(circuit_states(&metrics), [0.0, 0.0, 1.0], "half-open");
    assert_eq!(run(&breaking, vec![]).await, Ok("primary".into()));
    assert_eq!(circuit_states(&metrics), [1.0, 0.0, 0.0], "closed again");

    // A fallback chain a → b on server errors: one rescue, one exhausted chain, and a
    // run the primary answers.
    let chain = FallbackChain::builder("a")
        .then("b", ClassSet::of(&[ErrorClass::ServerError]))
        .build()
        .unwrap();
    let falling_back = build(&metrics, Pipeline::builder().fallback(chain), "/fallback");
    assert_eq!(
        run(&falling_back, vec![server_error()]).await,
        Ok("b".into())
    );
    assert_eq!(
        run(&falling_back, vec![server_error(), server_error()]).await,
        Err(ErrorClass::ServerError)
    );
    assert_eq!(run(&falling_back, vec![]).await, Ok("a".into()));

    // Timeouts: the run's total (a hung body, 5 s) and one LLM call's (10 s of latency
    // against a 1 s limit).
    let slow = Arc::new(
        MockProvider::new().push(MockReply::text("late").latency(Duration::from_secs(10))),
    );
    let timing_out = build(
        &metrics,
        Pipeline::builder()
            .model("mock/slow")
            .providers(Arc::new(Providers::new().with_shared(slow)))
            .timeout(
                TimeoutPolicy::builder()
                    .total(Duration::from_secs(5))
                    .llm_call(Duration::from_secs(1))
                    .build()
                    .unwrap(),
            ),
        "/timeout",
    );
    let hung = timing_out
        .run(RequestInfo::new(), |_ctx| {
            std::future::pending::<Result<(), AgentError>>()
        })
        .await;
    assert_eq!(hung.unwrap_err().class(), ErrorClass::Timeout);
    let late = timing_out
        .run(RequestInfo::new(), |ctx: AgentContext| async move {
            ctx.llm().complete("hi").await
        })
        .await;
    assert_eq!(late.unwrap_err().class(), ErrorClass::Timeout);

    // Rate limits: 2 requests and 1 000 tokens a minute, refusing at once.
    let limiting = build(
        &metrics,
        Pipeline::builder().rate_limit(
            RateLimitPolicy::builder()
                .requests_per_minute(2)
                .tokens_per_minute(1_000)
                .build()
                .unwrap(),
        ),
        "/limited",
    );
    let uses = |tokens: u64| {
        move |ctx: AgentContext| {
            ctx.record_tokens(tokens);
            std::future::ready(Ok::<_, AgentError>(()))
        }
    };
    let estimate = |tokens: u32| RequestInfo::new().estimated_tokens(tokens);
    let outcomes = [
        limiting.run(estimate(600), uses(600)).await,
        limiting.run(estimate(600), uses(600)).await, // 1 200 > 1 000 tokens
        limiting.run(estimate(100), uses(100)).await,
        limiting.run(estimate(100), uses(100)).await, // a third request
    ]
    .map(|r| r.map_err(|e| e.class()));
    assert_eq!(
        outcomes,
        [
            Ok(()),
            Err(ErrorClass::RateLimit),
            Ok(()),
            Err(ErrorClass::RateLimit)
        ]
    );

    // LLM calls that report usage, through `provider/model`.
    let answering = Arc::new(
        MockProvider::new()
            .push(MockReply::text("one").usage(Usage {
                input: 100,
                output: 20,
                reasoning: 5,
                cache_read: 40,
                cache_write: 10,
                total: 120,
            }))
            .push(MockReply::text("two").usage(Usage::new(50, 7)))
            // A priced model: the mock answers as `gpt-4o`, $2.50 per million input tokens.
            .push(MockReply::text("dear").usage(Usage::new(1_000_000, 0))),
    );
    let calling = build(
        &metrics,
        Pipeline::builder()
            .model("mock/small")
            .providers(Arc::new(Providers::new().with_shared(answering))),
        "/llm",
    );
    for run in 0..2 {
        calling
            .run(RequestInfo::new(), |ctx: AgentContext| async move {
                let reply = ctx.llm().complete(Prompt::user("hi")).await?;
                if run == 1 {
                    ctx.llm().with_model("mock/gpt-4o").complete("hi").await?;
                }
                Ok::<_, AgentError>(reply)
            })
            .await
            .unwrap();
    }

    let text = metrics.render();
    std::fs::write(EXPOSITION, &text).unwrap();
    let all = samples(&text);

    // A few lines verbatim: the exact form a scraper reads.
    for line in [
        "# HELP fastagentic_requests_total Finished runs, by outcome: success, checkpointed or the final error's class.",
        "# TYPE fastagentic_requests_total counter",
        "fastagentic_requests_total{endpoint=\"/retry\",outcome=\"success\"} 1",
        "# TYPE fastagentic_request_duration_seconds histogram",
        "fastagentic_request_duration_seconds_bucket{le=\"2.5\",endpoint=\"/retry\"} 2",
        "fastagentic_retries_total{endpoint=\"/retry\",attempt=\"2\"} 2",
        "# TYPE fastagentic_circuit_state gauge",
        "fastagentic_circuit_state{endpoint=\"/breaker\",state=\"half_open\"} 0",
        "fastagentic_llm_tokens_total{provider=\"mock\",model=\"small\",kind=\"input\"} 150",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in\n{text}"
        );
    }
    assert!(
        !text.contains("# EOF"),
        "classic text format has no EOF marker"
    );
    // `mock/small` is in no pricing table: its calls are counted as unpriced, and no
    // dollar figure is made up for them.
    assert!(
        text.lines().any(|l| l.starts_with(
            "fastagentic_llm_unpriced_calls_total{provider=\"mock\",model=\"small\"}"
        )),
        "unpriced calls are counted:\n{text}"
    );
    assert!(
        !text.contains("fastagentic_llm_cost_usd_total{provider=\"mock\",model=\"small\"}"),
        "no cost for a model without a price:\n{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "fastagentic_llm_cost_usd_total{provider=\"mock\",model=\"gpt-4o\"} 2.5"),
        "the priced call's dollars:\n{text}"
    );

    let endpoint = |e: &'static str| ("endpoint", e);
    let outcome = |o: &'static str| ("outcome", o);
    assert_eq!(
        family(&all, "fastagentic_requests_total"),
        expect(&[
            (&[endpoint("/retry"), outcome("success")], 1.0),
            (&[endpoint("/retry"), outcome("server_error")], 1.0),
            (&[endpoint("/breaker"), outcome("server_error")], 2.0),
            (&[endpoint("/breaker"), outcome("circuit_open")], 1.0),
            (&[endpoint("/breaker"), outcome("success")], 2.0),
            (&[endpoint("/fallback"), outcome("success")], 2.0),
            (&[endpoint("/fallback"), outcome("server_error")], 1.0),
            (&[endpoint("/timeout"), outcome("timeout")], 2.0),
            (&[endpoint("/limited"), outcome("success")], 2.0),
            (&[endpoint("/limited"), outcome("rate_limit")], 2.0),
            (&[endpoint("/llm"), outcome("success")], 2.0),
        ])
    );
    // Durations on virtual time: /retry slept 2 s twice, /timeout ran 5 s and 1 s.
    assert_eq!(
        family(&all, "fastagentic_request_duration_seconds_count"),
        expect(&[
            (&[endpoint("/retry")], 2.0),
            (&[endpoint("/breaker")], 5.0),
            (&[endpoint("/fallback")], 3.0),
            (&[endpoint("/timeout")], 2.0),
            (&[endpoint("/limited")], 4.0),
            (&[endpoint("/llm")], 2.0),
        ])
    );
    assert_eq!(
        family(&all, "fastagentic_request_duration_seconds_sum"),
        expect(&[
            (&[endpoint("/retry")], 4.0),
            (&[endpoint("/breaker")], 0.0),
            (&[endpoint("/fallback")], 0.0),
            (&[endpoint("/timeout")], 6.0),
            (&[endpoint("/limited")], 0.0),
            (&[endpoint("/llm")], 0.0),
        ])
    );
    let bucket = |e: &'static str, le: &'static str| {
        all[&key(
            "fastagentic_request_duration_seconds_bucket",
            &[endpoint(e), ("le", le)],
        )]
    };
    assert_eq!(
        [
            bucket("/timeout", "0.05"),
            bucket("/timeout", "1.0"),
            bucket("/timeout", "2.5"),
            bucket("/timeout", "5.0"),
            bucket("/timeout", "120.0"),
            bucket("/timeout", "+Inf"),
        ],
        [0.0, 1.0, 1.0, 2.0, 2.0, 2.0],
        "buckets are cumulative upper bounds, 1 s and 5 s inclusive"
    );
    assert_eq!(
        family(&all, "fastagentic_retries_total"),
        expect(&[
            (&[endpoint("/retry"), ("attempt", "1")], 2.0),
            (&[endpoint("/retry"), ("attempt", "2")], 2.0),
        ])
    );
    assert_eq!(
        family(&all, "fastagentic_retry_exhausted_total"),
        expect(&[(&[endpoint("/retry")], 1.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_circuit_state"),
        expect(&[
            (&[endpoint("/breaker"), ("state", "closed")], 1.0),
            (&[endpoint("/breaker"), ("state", "open")], 0.0),
            (&[endpoint("/breaker"), ("state", "half_open")], 0.0),
        ])
    );
    assert_eq!(
        family(&all, "fastagentic_circuit_failures_total"),
        expect(&[(&[endpoint("/breaker")], 2.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_circuit_opens_total"),
        expect(&[(&[endpoint("/breaker")], 1.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_fallback_triggered_total"),
        expect(&[(&[endpoint("/fallback"), ("from", "a"), ("to", "b")], 2.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_fallback_success_total"),
        expect(&[(&[endpoint("/fallback"), ("model", "b")], 1.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_fallback_exhausted_total"),
        expect(&[(&[endpoint("/fallback")], 1.0)])
    );
    assert_eq!(
        family(&all, "fastagentic_rate_limited_total"),
        expect(&[
            (&[endpoint("/limited"), ("limit_type", "rpm")], 1.0),
            (&[endpoint("/limited"), ("limit_type", "tpm")], 1.0),
        ])
    );
    assert_eq!(
        family(&all, "fastagentic_timeouts_total"),
        expect(&[
            (&[endpoint("/timeout"), ("stage", "total")], 1.0),
            (&[endpoint("/timeout"), ("stage", "llm_call")], 1.0),
        ])
    );
    let tokens = |kind: &'static str| [("provider", "mock"), ("model", "small"), ("kind", kind)];
    let small_tokens: BTreeMap<String, f64> = family(&all, "fastagentic_llm_tokens_total")
        .into_iter()
        .filter(|(labels, _)| labels.contains("model=\"small\""))
        .collect();
    assert_eq!(
        small_tokens,
        expect(&[
            (&tokens("input"), 150.0),
            (&tokens("output"), 27.0),
            (&tokens("reasoning"), 5.0),
            (&tokens("cache_read"), 40.0),
            (&tokens("cache_write"), 10.0),
        ])
    );
    let hook_errors = family(&all, "fastagentic_hook_errors_total");
    assert_eq!(
        hook_errors.len(),
        EventKind::ALL.len(),
        "every event, zeros too"
    );
    assert_eq!(hook_errors[&key("", &[("event", "on_retry")])], 4.0);
    assert_eq!(hook_errors.values().sum::<f64>(), 4.0);

    // Nothing else: every sample belongs to one of the families above.
    let names: std::collections::BTreeSet<&str> =
        all.keys().map(|k| k.split('{').next().unwrap()).collect();
    assert_eq!(names.into_iter().collect::<Vec<_>>(), PIPELINE_FAMILIES);
}

#[tokio::test(start_paused = true)]
async fn the_openmetrics_form_names_counter_families_without_total() {
    let metrics = Arc::new(Metrics::new());
    let pipeline = build(&metrics, Pipeline::builder(), "/om");
    run(&pipeline, vec![]).await.unwrap();
    let text = metrics.render_openmetrics();
    assert!(
        text.contains("# TYPE fastagentic_requests counter\n"),
        "{text}"
    );
    assert!(text.contains("fastagentic_requests_total{endpoint=\"/om\",outcome=\"success\"} 1\n"));
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn the_global_instance_is_one_per_process() {
    assert!(Arc::ptr_eq(metrics::global(), metrics::global()));
}

#[test]
fn a_dropped_registry_leaves_the_output() {
    let metrics = Metrics::new();
    let pipeline = Pipeline::builder()
        .endpoint("/gone")
        .circuit_breaker(CircuitBreakerPolicy::default())
        .build()
        .unwrap();
    metrics.observe_breakers(pipeline.breaker_registry().clone());
    assert!(metrics.render().contains("endpoint=\"/gone\""));
    drop(pipeline);
    assert!(!metrics.render().contains("endpoint=\"/gone\""));
}

#[derive(Debug, Deserialize, Serialize, schemars::JsonSchema)]
struct Sku {
    id: String,
}

/// Every metric name a PromQL expression mentions.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("fastagentic_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

/// The panels' queries, as `(panel id, refId, expr)`, and the templating queries.
fn dashboard_queries(dashboard: &serde_json::Value) -> (Vec<(u64, String, String)>, Vec<String>) {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let id = panel["id"].as_u64().unwrap();
        assert!(panel["title"].is_string(), "panel {id} has no title");
        assert!(panel["gridPos"]["w"].is_u64(), "panel {id} has no gridPos");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {id}");
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {id} queries nothing");
        for target in targets {
            let expr = target["expr"].as_str().unwrap().to_owned();
            queries.push((id, target["refId"].as_str().unwrap().to_owned(), expr));
        }
    }
    let variables = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["definition"].as_str().map(str::to_owned))
        .collect();
    (queries, variables)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_grafana_dashboard_queries_only_metrics_the_app_exports() {
    // What pipelines export is pinned by the test above; tool calls and connections
    // dropped by the server come from a real tool call and a real refused connection.
    let metrics = Arc::new(Metrics::new());
    let tool = fastagentic::tools::Tool::new("stock", "Units in stock", |_sku: Sku| async {
        Ok(serde_json::json!({ "units": 3 }))
    })
    .unwrap();
    let pipeline = build(&metrics, Pipeline::builder(), "/dash");
    pipeline
        .run(RequestInfo::new(), |ctx: AgentContext| {
            let tool = tool.clone();
            async move { ctx.tool(&tool, Sku { id: "a1".into() }).await }
        })
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = App::bare("Dashboard")
        .metrics(metrics.clone())
        .max_connections(1);
    let serving = tokio::spawn(app.serve_with(listener, async move {
        let _ = stopped.await;
    }));
    let held = tokio::net::TcpStream::connect(addr).await.unwrap();
    let dropped = "fastagentic_connections_dropped_total{reason=\"limit\"} 1";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !metrics.render().contains(dropped) {
        assert!(std::time::Instant::now() < deadline, "{}", metrics.render());
        // Each try is one more connection over the limit, refused at accept.
        let _refused = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut exported: std::collections::BTreeSet<String> = samples(&metrics.render())
        .keys()
        .map(|k| k.split('{').next().unwrap().to_owned())
        .collect();
    exported.extend(PIPELINE_FAMILIES.iter().map(|name| (*name).to_owned()));
    // Closed first, so the graceful shutdown has nothing to wait for.
    drop(held);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();

    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    let (queries, variables) = dashboard_queries(&dashboard);
    let mut used = std::collections::BTreeSet::new();
    for expr in queries.iter().map(|(_, _, e)| e).chain(&variables) {
        for name in metric_names(expr) {
            assert!(
                exported.contains(&name),
                "the dashboard queries `{name}`, which the app does not export ({expr})"
            );
            used.insert(name);
        }
    }
    // What an operator looks at first is all there.
    for family in [
        "fastagentic_requests_total",
        "fastagentic_request_duration_seconds_bucket",
        "fastagentic_retries_total",
        "fastagentic_fallback_triggered_total",
        "fastagentic_circuit_state",
        "fastagentic_rate_limited_total",
        "fastagentic_llm_tokens_total",
        "fastagentic_llm_cost_usd_total",
        "fastagentic_tool_calls_total",
        "fastagentic_connections_dropped_total",
    ] {
        assert!(used.contains(family), "no panel shows {family}");
    }

    // Grafana's variables replaced by values Prometheus accepts, so `promtool check rules`
    // parses every query as PromQL.
    let mut rules = String::from("groups:\n  - name: fastagentic-dashboard\n    rules:\n");
    for (panel, ref_id, expr) in &queries {
        let promql = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$endpoint", ".*");
        let record = format!("dashboard:panel_{panel}_{}", ref_id.to_lowercase());
        let quoted = serde_json::to_string(&promql).unwrap();
        rules.push_str(&format!(
            "      - record: {record}\n        expr: {quoted}\n"
        ));
    }
    std::fs::write(DASHBOARD_RULES, rules).unwrap();
}
