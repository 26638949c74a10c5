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

/// The calling thread's kernel id, for [`blocked_in`].
pub(crate) fn current_tid() -> u32 {
    // "/proc/thread-self" links to "PID/task/TID".
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name()?.to_str()?.parse().ok())
        .expect("/proc/thread-self names the thread")
}

/// Whether thread `tid` of this process is asleep inside system call
/// `syscall` whose first argument is `first_arg` (a queue id): what "the
/// receiver is blocked" means, read from `/proc` instead of assumed after
/// a sleep.
pub(crate) fn blocked_in(tid: u32, syscall: libc::c_long, first_arg: i32) -> bool {
    let task = format!("/proc/self/task/{tid}");
    let (Ok(call), Ok(stat)) = (
        std::fs::read_to_string(format!("{task}/syscall")),
        std::fs::read_to_string(format!("{task}/stat")),
    ) else {
        return false;
    };
    let mut fields = call.split_whitespace();
    let in_call = fields.next() == Some(syscall.to_string().as_str())
        && fields.next() == Some(format!("{first_arg:#x}").as_str());
    // State S: asleep, here in the queue's wait list.
    let asleep = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('S'));
    in_call && asleep
}

/// Waits (a minute at most, however loaded the machine) until
/// [`blocked_in`] holds; fails the test otherwise.
pub(crate) fn wait_blocked(tid: u32, syscall: libc::c_long, first_arg: i32) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !blocked_in(tid, syscall, first_arg) {
        assert!(
            std::time::Instant::now() < deadline,
            "thread {tid} never blocked in syscall {syscall}"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}
