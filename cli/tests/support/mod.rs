//! The command's test support: guichet-testkit's fixtures, and the `guichet`
//! binary Cargo built for this run (only this crate's tests can name it).
#![allow(dead_code)]

mod serve;

use std::process::Command;

pub use guichet_testkit::fixture::*;
pub use serve::ServeProcess;

/// The `guichet` binary Cargo built for this test run.
pub fn guichet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_guichet"))
}
