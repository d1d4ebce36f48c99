use fastagentic::hook;
use fastagentic::hooks::HookContext;

#[hook("on_retry")]
async fn a_number(_ctx: &mut HookContext) -> u32 {
    1
}

#[hook("on_retry")]
fn an_error_that_is_not_one(_ctx: &mut HookContext) -> Result<(), u32> {
    Ok(())
}

#[hook("on_retry")]
fn a_value_on_success(_ctx: &mut HookContext) -> Result<bool, String> {
    Ok(true)
}

fn main() {}
