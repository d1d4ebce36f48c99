use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry", crate = ::not_fastagentic)]
fn wrong_crate(_ctx: &mut HookContext) {}

#[hook("on_retry", crate)]
fn no_path(_ctx: &mut HookContext) {}

fn main() {}
