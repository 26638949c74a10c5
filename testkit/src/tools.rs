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

/// Runs `command` with `stdin` as its whole input and collects its output.
///
/// A program may exit without reading its input (a client that finds no
/// server says so and ends), possibly before the input is written: the
/// write's broken pipe is then no failure, its status and output are what
/// a test checks.
pub fn run_with_input(command: &mut std::process::Command, stdin: &[u8]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let written = child.stdin.take().expect("piped stdin").write_all(stdin);
    if let Err(e) = written {
        assert!(
            e.kind() == std::io::ErrorKind::BrokenPipe,
            "write stdin: {e}"
        );
    }
    child.wait_with_output().expect("wait")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_program_that_ends_without_reading_its_input_is_no_failure() {
        // More than a pipe holds (64 KiB): the write is still under way
        // when `true` exits, so it always meets the broken pipe.
        let input = vec![b'x'; 1 << 20];
        let out = super::run_with_input(&mut std::process::Command::new("true"), &input);
        assert!(out.status.success(), "{out:?}");
    }
}
