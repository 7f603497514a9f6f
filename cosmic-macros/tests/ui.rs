//! Compile tests of the guest macros: good mechtrons build; bad route strings and handler
//! signatures fail with errors pointing at them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass_*.rs");
    t.compile_fail("tests/ui/fail_*.rs");
}
