//! Helpers for the crate's own unit tests.
//!
//! Tests that panic on purpose (a job, a receive loop, a ledger check) must
//! not print: a passing run shows the harness's lines and nothing else, so
//! that a real panic message stands out. The standard hook prints every
//! panic (and, under `RUST_BACKTRACE=1`, its backtrace) whether or not
//! anything catches it; this one stays silent on threads that asked.

use std::cell::Cell;
use std::panic::{self, UnwindSafe};
use std::sync::Once;

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                default(info);
            }
        }));
    });
}

/// From now on, panics on the calling thread print nothing. For a thread
/// that ends by panicking on purpose: call it first thing in that thread.
pub(crate) fn quiet_panics_on_this_thread() {
    install_hook();
    QUIET.with(|quiet| quiet.set(true));
}

/// Runs `f`, catching its panic without printing it; panics of other
/// threads meanwhile print as usual.
pub(crate) fn quietly<R>(f: impl FnOnce() -> R + UnwindSafe) -> std::thread::Result<R> {
    install_hook();
    let was = QUIET.with(|quiet| quiet.replace(true));
    let result = panic::catch_unwind(f);
    QUIET.with(|quiet| quiet.set(was));
    result
}
