use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook(on_retry)]
async fn bare_ident(_ctx: &mut HookContext) {}

#[hook(42)]
async fn a_number(_ctx: &mut HookContext) {}

fn main() {
    let _ = (bare_ident, a_number);
}
