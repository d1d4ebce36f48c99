use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook]
async fn bare(_ctx: &mut HookContext) {}

#[hook()]
async fn empty(_ctx: &mut HookContext) {}

#[hook(endpoint = "/analyze")]
async fn keys_only(_ctx: &mut HookContext) {}

fn main() {
    let _ = (bare, empty, keys_only);
}
