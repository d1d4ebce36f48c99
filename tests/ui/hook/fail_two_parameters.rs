use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
async fn too_many(_ctx: &mut HookContext, _extra: u32, _more: &str) {}

fn main() {
    let _ = too_many;
}
