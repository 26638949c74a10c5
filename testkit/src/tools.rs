//! Tests that need a tool the machine may lack (a C compiler, python3, root
//! to run a child as another user): how they say they did not run.
//!
//! Included with `#[path = "support/tools.rs"] mod tools;`.
#![allow(dead_code)]

use std::io::Write;

/// Whether a missing tool must fail the test (`GUICHET_REQUIRE_TOOLS=1`, as
/// CI sets it) rather than skip it.
pub fn require_tools() -> bool {
    std::env::var_os("GUICHET_REQUIRE_TOOLS").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Reports a test that could not run: a failure under `require_tools()`,
/// else `SKIPPED test: why` straight to stderr, which the test harness does
/// not capture, so that the skip is seen.
pub fn skip(test: &str, why: &str) {
    let message = format!("SKIPPED {test}: {why}");
    if require_tools() {
        panic!("{message} (GUICHET_REQUIRE_TOOLS is set)");
    }
    note(&message);
}

/// A line on the real stderr (past the harness's capture).
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}
