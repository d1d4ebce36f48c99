// `#[hook]` registers free fns only: in an `impl` block there is nowhere to put the
// registration, and no way to name the fn without its type.
use fastagentic::hook;
use fastagentic::hooks::HookContext;

struct Logger;

impl Logger {
    #[hook("on_retry")]
    fn associated(_ctx: &mut HookContext) {}
}

fn main() {
    let _ = Logger::associated;
}
