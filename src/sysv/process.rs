//! Whether a process still exists: how the server recognises replies left
//! in the queue for clients that died.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use super::sys;

/// This process's pid once read; 0 before that, and in a forked child
/// until it reads its own (the fork handler clears it).
static PID: AtomicU32 = AtomicU32::new(0);

/// Whether the fork handler is registered: [`UNTRIED`], [`TRYING`] (a
/// thread is registering it), [`HOOKED`] or [`FAILED`]. An atomic, not a
/// `OnceLock`: a child forked while another thread registers would inherit
/// a lock in use with no thread left to release it, and wait on it for
/// ever. Here such a child sees [`TRYING`] and asks the kernel each time.
static HOOK: AtomicU8 = AtomicU8::new(UNTRIED);
const UNTRIED: u8 = 0;
const TRYING: u8 = 1;
const HOOKED: u8 = 2;
const FAILED: u8 = 3;

/// Runs in a forked child, whose inherited pid is its parent's. Only an
/// atomic store: a handler in the child of a threaded process must be
/// async-signal-safe.
extern "C" fn forget_pid() {
    PID.store(0, Ordering::Relaxed);
}

/// This process's pid, without a getpid(2) on every call: a client reads
/// it for each call's reply tag (`docs/client.md`, per-call costs). A fork
/// handler (pthread_atfork(3)) makes a forked child read its own; until
/// it is registered, or where it cannot be, every call asks the kernel.
/// A child made without running fork handlers (a raw clone(2) or
/// clone3(2)) would keep its parent's pid: it must not make calls before
/// an exec (glibc 2.25 dropped its own pid cache over such children).
/// `fork` and `posix_spawn` run the handlers or exec at once.
pub(crate) fn current_pid() -> u32 {
    let cached = PID.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    let hooked = match HOOK.compare_exchange(UNTRIED, TRYING, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let hooked = sys::on_fork_child(forget_pid).is_ok();
            HOOK.store(if hooked { HOOKED } else { FAILED }, Ordering::Release);
            hooked
        }
        Err(state) => state == HOOKED,
    };
    let pid = std::process::id();
    if hooked {
        PID.store(pid, Ordering::Relaxed);
    }
    pid
}

/// Whether a process with this pid exists, by kill(2) with signal 0.
///
/// `EPERM` means it exists but belongs to someone else: alive. Only `ESRCH`
/// means dead. Pids that no `pid_t` can hold, and pids `<= 0` (which kill(2)
/// reads as process groups), name no process. A pid can be reused by a new
/// process, so "alive" may be a stranger; callers treat it as a hint.
///
/// The pid is read in the caller's PID namespace. A pid that a process in
/// another namespace got from getpid(2) (a container that shares the
/// caller's IPC namespace but not its PID namespace) names a different
/// process here, or none: such a process may look dead while it runs.
pub fn process_alive(pid: i64) -> bool {
    match libc::pid_t::try_from(pid) {
        Ok(pid) if pid > 0 => !matches!(sys::kill_probe(pid), Err(libc::ESRCH)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{current_pid, process_alive, sys};

    /// The cached pid is the parent's in a forked child's memory: the fork
    /// handler makes the child read its own.
    #[test]
    fn a_forked_child_reads_its_own_pid_not_its_parents() {
        assert_eq!(current_pid(), std::process::id());
        // In the child: async-signal-safe (atomics and getpid only).
        fn child() -> i32 {
            i32::from(current_pid() != std::process::id())
        }
        let status = sys::fork_and_wait(child).expect("fork and wait");
        assert!(
            libc::WIFEXITED(status),
            "child ended by a signal: {status:#x}"
        );
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "the child read its parent's pid"
        );
        assert_eq!(
            current_pid(),
            std::process::id(),
            "the parent keeps its own"
        );
    }

    #[test]
    fn this_process_is_alive_and_impossible_pids_are_not() {
        assert!(process_alive(i64::from(std::process::id())));
        assert!(!process_alive(0));
        assert!(!process_alive(i64::MAX));
    }
}
