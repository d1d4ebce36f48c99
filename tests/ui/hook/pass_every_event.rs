//! A hook for every event name `#[hook]` knows, each fn named after its event. If the
//! macro's list and `EventKind` drift apart, this fails: a name the runtime lacks does
//! not compile, and a runtime event the macro lacks (or maps elsewhere) fails `main`.
#![deny(warnings)]

use fastagentic::hook;
use fastagentic::hooks::{HookContext, Hooks};
use fastagentic::reliability::EventKind;

#[hook("on_startup")]
async fn on_startup(_ctx: &mut HookContext) {}
#[hook("on_shutdown")]
async fn on_shutdown(_ctx: &mut HookContext) {}
#[hook("on_request")]
async fn on_request(_ctx: &mut HookContext) {}
#[hook("on_response")]
async fn on_response(_ctx: &mut HookContext) {}
#[hook("on_error")]
async fn on_error(_ctx: &mut HookContext) {}
#[hook("on_llm_start")]
async fn on_llm_start(_ctx: &mut HookContext) {}
#[hook("on_llm_end")]
async fn on_llm_end(_ctx: &mut HookContext) {}
#[hook("on_tool_call")]
async fn on_tool_call(_ctx: &mut HookContext) {}
#[hook("on_tool_result")]
async fn on_tool_result(_ctx: &mut HookContext) {}
#[hook("on_retry")]
async fn on_retry(_ctx: &mut HookContext) {}
#[hook("on_retry_end")]
async fn on_retry_end(_ctx: &mut HookContext) {}
#[hook("on_circuit_open")]
async fn on_circuit_open(_ctx: &mut HookContext) {}
#[hook("on_circuit_half_open")]
async fn on_circuit_half_open(_ctx: &mut HookContext) {}
#[hook("on_circuit_close")]
async fn on_circuit_close(_ctx: &mut HookContext) {}
#[hook("on_fallback")]
async fn on_fallback(_ctx: &mut HookContext) {}
#[hook("on_timeout")]
async fn on_timeout(_ctx: &mut HookContext) {}
#[hook("on_rate_limit")]
async fn on_rate_limit(_ctx: &mut HookContext) {}
#[hook("on_checkpoint")]
async fn on_checkpoint(_ctx: &mut HookContext) {}
#[hook("on_resume")]
async fn on_resume(_ctx: &mut HookContext) {}

fn main() {
    let hooks = Hooks::registered();
    assert_eq!(
        EventKind::ALL.len(),
        19,
        "a new event needs a #[hook] above"
    );
    for kind in EventKind::ALL {
        let names: Vec<&str> = hooks.for_event(*kind).iter().map(|h| h.name()).collect();
        assert_eq!(names, [kind.hook_name()], "the hooks registered for {kind}");
    }
}
