use fastagentic::hook;
use fastagentic::hooks::HookContext;

struct Logger;

impl Logger {
    #[hook("on_retry")]
    fn method(&self, _ctx: &mut HookContext) {}
}

fn main() {
    let _ = Logger::method;
}
