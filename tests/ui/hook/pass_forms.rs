//! Every accepted form: async or sync, `()` or `Result<(), E>` for any error convertible
//! to a boxed error, each key, in any order, negative priorities, paths to
//! `HookContext`, hooks in modules and in fn bodies. The fns stay callable directly,
//! and nothing warns.
#![deny(warnings, unsafe_code)]

use std::fmt;

use fastagentic::hook;
use fastagentic::hooks::{Hook, HookContext, HookFuture, Hooks};
use fastagentic::reliability::{EventKind, PipelineEvent};

#[hook("on_retry")]
async fn async_unit(ctx: &mut HookContext) {
    ctx.set_model_override("gpt-4o-mini");
}

#[hook("on_retry", endpoint = "/analyze", priority = 10)]
fn sync_unit(ctx: &mut HookContext) {
    ctx.abort_retries();
}

#[hook("on_request", priority = -3, endpoint = "/analyze",)]
async fn async_string_error(ctx: &mut HookContext) -> Result<(), String> {
    ctx.metadata.insert("seen".into(), true.into());
    Err("refused".to_owned())
}

#[hook("on_response")]
fn sync_io_error(_: &mut HookContext) -> std::io::Result<()> {
    Ok(())
}

#[derive(Debug)]
struct MyError;

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl std::error::Error for MyError {}

#[hook("on_error", priority = 2147483647)]
async fn async_custom_error(_ctx: &'_ mut fastagentic::hooks::HookContext) -> Result<(), MyError> {
    Err(MyError)
}

#[hook("on_timeout", priority = -2147483648)]
fn sync_boxed_error(
    _ctx: &mut HookContext,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Ok(())
}

#[hook("on_retry_end")]
fn borrowed_error(ctx: &mut HookContext) -> Result<(), &str> {
    match ctx.succeeded() {
        Some(false) => Err("the retries failed"),
        _ => Ok(()),
    }
}

#[hook("on_resume")]
fn opaque(_ctx: &mut HookContext) -> impl fastagentic::hooks::IntoHookResult {}

#[hook("on_fallback")]
async fn r#async(_ctx: &mut HookContext) -> () {}

mod nested {
    use fastagentic::hook;
    use fastagentic::prelude::HookContext;

    /// A documented, public hook in a module.
    #[hook("on_llm_end")]
    pub(crate) async fn in_a_module(ctx: &mut HookContext) {
        let _ = ctx.usage();
    }
}

/// A hook whose name is also the parameter's: the shim's own locals do not clash.
#[hook("on_circuit_open")]
fn ctx(ctx: &mut HookContext) {
    let _ = ctx.run_id;
}

fn registered(event: EventKind, name: &str) -> bool {
    Hooks::registered()
        .for_event(event)
        .iter()
        .any(|hook| hook.name() == name)
}

fn main() {
    #[hook("on_rate_limit")]
    fn in_a_fn_body(_ctx: &mut HookContext) {}

    assert!(registered(EventKind::Retry, "async_unit"));
    assert!(registered(EventKind::Retry, "sync_unit"));
    assert!(registered(EventKind::Request, "async_string_error"));
    assert!(registered(EventKind::Response, "sync_io_error"));
    assert!(registered(EventKind::Error, "async_custom_error"));
    assert!(registered(EventKind::Timeout, "sync_boxed_error"));
    assert!(registered(EventKind::Fallback, "async"));
    assert!(registered(EventKind::RetryEnd, "borrowed_error"));
    assert!(registered(EventKind::Resume, "opaque"));
    assert!(registered(EventKind::LlmEnd, "in_a_module"));
    assert!(registered(EventKind::CircuitOpen, "ctx"));
    assert!(registered(EventKind::RateLimit, "in_a_fn_body"));

    // Scope and priority reach the registry: sync_unit (10) runs before async_unit (0).
    let hooks = Hooks::registered();
    let retry: Vec<String> = hooks
        .for_event(EventKind::Retry)
        .iter()
        .map(|hook| format!("{hook:?}"))
        .collect();
    assert!(retry[0].contains("sync_unit"), "{retry:?}");
    assert!(retry[0].contains("Some(\"/analyze\")") && retry[0].contains("priority: 10"));
    let timeout = format!("{:?}", hooks.for_event(EventKind::Timeout)[0]);
    assert!(timeout.contains("priority: -2147483648"), "{timeout}");

    // The fns are plain fns, callable directly (here from a hand-made hook).
    let direct = Hooks::new().with(Hook::new(EventKind::Startup, "direct", call_directly));
    let mut event = PipelineEvent::app(EventKind::Startup);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(direct.dispatch(&mut event));
    assert_eq!(
        event.steer.model_override().map(|m| &**m),
        Some("gpt-4o-mini")
    );
    assert!(event.steer.is_aborted());
}

fn call_directly(ctx: &mut HookContext) -> HookFuture<'_> {
    Box::pin(async move {
        async_unit(ctx).await;
        sync_unit(ctx);
        sync_io_error(ctx)?;
        nested::in_a_module(ctx).await;
        assert!(async_string_error(ctx).await.is_err());
        Ok(())
    })
}
