use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
unsafe fn dangerous(_ctx: &mut HookContext) {}

fn main() {
    let _ = dangerous;
}
