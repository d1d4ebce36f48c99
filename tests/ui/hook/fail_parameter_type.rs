use fastagentic::AgentContext;
use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
async fn wrong_context(_ctx: AgentContext) {}

#[hook("on_retry")]
fn by_value(_ctx: HookContext) {}

#[hook("on_retry")]
fn static_borrow(_ctx: &'static mut HookContext) {}

fn main() {
    let _ = (wrong_context, by_value, static_borrow);
}
