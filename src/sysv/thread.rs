//! Detached threads started with pthread_create(3) alone, for the
//! thread-per-request server.
//!
//! `std::thread::spawn` does more per thread than a server that starts
//! one per request can afford: on Linux each std thread also maps,
//! protects and unmaps an alternate signal stack (3 sigaltstack, mmap,
//! mprotect and munmap calls, the last three under the process-wide
//! memory-map lock that every page fault also takes), reads its stack
//! bounds through pthread_getattr_np (a sched_getaffinity call), and sets
//! its name (prctl). The original C server pays none of that. Counted with
//! `strace -f -c` over 1000 spawns: 25 syscalls per std thread against 18
//! for a bare pthread_create.
//!
//! What is given up: a stack overflow in such a thread is not reported by
//! std's handler (it has no alternate stack to run on) and kills the
//! process with SIGSEGV, exactly as an overflow in a C thread does; std
//! aborts the process on overflow anyway. A panic is caught at the
//! thread's top, as std does, so it ends only that thread.

use std::io;

use super::sys;

/// Starts `job` on a new detached thread with a stack of `stack_bytes`.
///
/// # Errors
///
/// The error of pthread_attr_setstacksize(3) (`EINVAL` below the system's
/// minimum stack) or pthread_create(3) (`EAGAIN` at a thread limit), with
/// `job`, which did not run and can be run some other way.
pub fn spawn_detached<F>(stack_bytes: usize, job: F) -> Result<(), (io::Error, F)>
where
    F: FnOnce() + Send + 'static,
{
    sys::spawn_detached(stack_bytes, job)
        .map_err(|(errno, job)| (io::Error::from_raw_os_error(errno), job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_too_small_stack_gives_the_job_back() {
        let (tx, rx) = mpsc::channel::<u8>();
        let Err((error, job)) = spawn_detached(1, move || {
            let _ = tx.send(1);
        }) else {
            panic!("a 1-byte stack was accepted");
        };
        assert_eq!(error.raw_os_error(), Some(libc::EINVAL));
        job();
        assert_eq!(rx.recv().ok(), Some(1));
    }

    #[test]
    fn a_panicking_job_ends_only_its_thread() {
        let (tx, rx) = mpsc::channel::<u8>();
        let guard = tx.clone();
        let spawned = spawn_detached(64 * 1024, move || {
            let _keep = guard;
            crate::test_support::quiet_panics_on_this_thread();
            panic!("job panics on purpose");
        });
        assert!(spawned.is_ok());
        spawn_detached(64 * 1024, move || {
            let _ = tx.send(2);
        })
        .map_err(|(e, _)| e)
        .unwrap();
        assert_eq!(rx.recv().ok(), Some(2));
        // Both senders are gone once both threads ended (the panicking
        // one dropped its clone while unwinding).
        assert!(rx.recv().is_err());
    }
}
