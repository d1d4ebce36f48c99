//! The macros' compile-time behaviour: every accepted form compiles, every mistake is a
//! precise, spanned error (the `.stderr` files hold the exact messages).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("ui/endpoint/pass_*.rs");
    cases.compile_fail("ui/endpoint/fail_*.rs");
    cases.pass("ui/hook/pass_*.rs");
    cases.compile_fail("ui/hook/fail_*.rs");
}
