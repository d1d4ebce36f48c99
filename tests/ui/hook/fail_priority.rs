use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry", priority = "high")]
async fn a_string(_ctx: &mut HookContext) {}

const HIGH: i32 = 10;

#[hook("on_retry", priority = HIGH)]
async fn a_const(_ctx: &mut HookContext) {}

#[hook("on_retry", priority = 1.5)]
async fn a_float(_ctx: &mut HookContext) {}

#[hook("on_retry", priority = 3_000_000_000)]
async fn too_big(_ctx: &mut HookContext) {}

fn main() {
    let _ = (a_string, a_const, a_float, too_big, HIGH);
}
