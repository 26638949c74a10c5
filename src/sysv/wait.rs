//! The wait behind every deadline: spin, then block in the kernel until the
//! deadline ([`Alarm`]), or poll where the alarm cannot be used.

use std::thread;
use std::time::{Duration, Instant};

use libc::c_int;

use super::alarm::Alarm;
use super::timeout::Backoff;

/// `timeout_ms` after `start`. (Were the clock unable to hold that, which
/// 49 days cannot be on Linux: a day after, then `start`.) The caller reads
/// the clock for `start`, and keeps it to time the whole call.
pub(crate) fn deadline_after(start: Instant, timeout_ms: u32) -> Instant {
    start
        .checked_add(Duration::from_millis(timeout_ms.into()))
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

/// Why a wait ended without its call succeeding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The deadline passed.
    TimedOut,
    /// The call failed with this errno (not the "nothing yet" one).
    Errno(i32),
}

/// Makes `call` (one msgrcv(2) or msgsnd(2), taking the extra flags to
/// pass) succeed by `deadline`: at least one attempt, however late.
///
/// First attempts with `IPC_NOWAIT`, yielding the CPU between them, for up
/// to `spin` (a reply already on its way costs no wake-up); then one
/// blocking attempt that the kernel wakes when it can succeed, or the
/// alarm at the deadline. `empty` is the errno of a nonblocking attempt
/// that found nothing to do (`ENOMSG`, `EAGAIN`). Never returns
/// [`Failure::TimedOut`] before the deadline.
pub(crate) fn until<T>(
    deadline: Instant,
    spin: Duration,
    empty: c_int,
    mut call: impl FnMut(c_int) -> Result<T, i32>,
) -> Result<T, Failure> {
    if let Some(done) = poll_for(Some(deadline), spin, empty, &mut call)? {
        return Ok(done);
    }
    let Some(alarm) = Alarm::arm(deadline) else {
        return poll(deadline, empty, call);
    };
    loop {
        match call(0) {
            Ok(done) => return Ok(done),
            // The alarm, or a signal of the program's own.
            Err(libc::EINTR) if Instant::now() >= deadline => return Err(Failure::TimedOut),
            Err(libc::EINTR) => {}
            // The caller's flags hold IPC_NOWAIT: nothing blocks, so poll.
            Err(errno) if errno == empty => {
                drop(alarm);
                return poll(deadline, empty, call);
            }
            Err(errno) => return Err(Failure::Errno(errno)),
        }
    }
}

/// Nonblocking attempts (`IPC_NOWAIT`), yielding the CPU between them,
/// for up to `spin` from the first that found nothing to do: at least one
/// attempt, and no further one once `deadline` has passed. `Ok(None)` when the spin (not the
/// deadline) ended first; [`Failure::TimedOut`] when the deadline did.
pub(crate) fn poll_for<T>(
    deadline: Option<Instant>,
    spin: Duration,
    empty: c_int,
    mut call: impl FnMut(c_int) -> Result<T, i32>,
) -> Result<Option<T>, Failure> {
    // The spin is timed from the first attempt that found nothing: an
    // attempt that succeeds at once (most sends, replies already there)
    // reads no clock.
    let mut started = None;
    loop {
        match call(libc::IPC_NOWAIT) {
            Ok(done) => return Ok(Some(done)),
            Err(errno) if errno == empty || errno == libc::EINTR => {}
            Err(errno) => return Err(Failure::Errno(errno)),
        }
        let now = Instant::now();
        if deadline.is_some_and(|deadline| now >= deadline) {
            return Err(Failure::TimedOut);
        }
        if now.duration_since(*started.get_or_insert(now)) >= spin {
            return Ok(None);
        }
        thread::yield_now();
    }
}

/// The fallback: nonblocking attempts with [`Backoff`]'s pauses (at most
/// 1 ms), until the deadline.
fn poll<T>(
    deadline: Instant,
    empty: c_int,
    mut call: impl FnMut(c_int) -> Result<T, i32>,
) -> Result<T, Failure> {
    let mut backoff = Backoff::until(Some(deadline));
    loop {
        match call(libc::IPC_NOWAIT) {
            Ok(done) => return Ok(done),
            Err(errno) if errno == empty || errno == libc::EINTR => {
                if !backoff.wait() {
                    return Err(Failure::TimedOut);
                }
            }
            Err(errno) => return Err(Failure::Errno(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that finds nothing `misses` times, then gives `done`;
    /// counts its attempts in `attempts`.
    fn nothing_then(
        misses: u32,
        done: Result<u32, i32>,
        attempts: &mut u32,
    ) -> impl FnMut(c_int) -> Result<u32, i32> + '_ {
        move |flags| {
            assert_eq!(flags, libc::IPC_NOWAIT, "poll_for never blocks");
            *attempts += 1;
            if *attempts <= misses {
                Err(libc::ENOMSG)
            } else {
                done
            }
        }
    }

    #[test]
    fn a_poll_ends_with_the_first_attempt_that_does_something() {
        let mut attempts = 0;
        let call = nothing_then(13, Ok(7), &mut attempts);
        let polled = poll_for(None, Duration::from_secs(60), libc::ENOMSG, call);
        assert_eq!(polled, Ok(Some(7)));
        assert_eq!(attempts, 14);
        // Another errno ends the poll at once, whenever it comes.
        let mut attempts = 0;
        let call = nothing_then(6, Err(libc::EIDRM), &mut attempts);
        let polled = poll_for(None, Duration::from_secs(60), libc::ENOMSG, call);
        assert_eq!(polled, Err(Failure::Errno(libc::EIDRM)));
        assert_eq!(attempts, 7);
    }

    #[test]
    fn a_spin_of_zero_makes_one_attempt_and_a_spin_never_ends_early() {
        let mut attempts = 0;
        let call = nothing_then(u32::MAX, Ok(0), &mut attempts);
        assert_eq!(poll_for(None, Duration::ZERO, libc::ENOMSG, call), Ok(None));
        assert_eq!(attempts, 1);
        let spin = Duration::from_millis(3);
        let started = Instant::now();
        let mut attempts = 0;
        let call = nothing_then(u32::MAX, Ok(0), &mut attempts);
        assert_eq!(poll_for(None, spin, libc::ENOMSG, call), Ok(None));
        assert!(started.elapsed() >= spin, "{:?}", started.elapsed());
        assert!(attempts > 1);
    }

    #[test]
    fn a_deadline_ends_the_poll_never_early() {
        let deadline = Instant::now() + Duration::from_millis(3);
        let mut attempts = 0;
        let call = nothing_then(u32::MAX, Ok(0), &mut attempts);
        let polled = poll_for(Some(deadline), Duration::from_secs(5), libc::ENOMSG, call);
        assert_eq!(polled, Err(Failure::TimedOut));
        assert!(Instant::now() >= deadline);
        // A deadline already past: one attempt, which may still succeed...
        let mut attempts = 0;
        let call = nothing_then(0, Ok(5), &mut attempts);
        let polled = poll_for(Some(Instant::now()), Duration::ZERO, libc::ENOMSG, call);
        assert_eq!((polled, attempts), (Ok(Some(5)), 1));
        // ...and none after one that found nothing, whatever the spin.
        for spin in [Duration::ZERO, Duration::from_secs(60)] {
            let mut attempts = 0;
            let call = nothing_then(u32::MAX, Ok(0), &mut attempts);
            let polled = poll_for(Some(Instant::now()), spin, libc::ENOMSG, call);
            assert_eq!((polled, attempts), (Err(Failure::TimedOut), 1), "{spin:?}");
        }
    }
}
