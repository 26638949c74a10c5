//! An exact deadline for a blocked msgrcv(2) or msgsnd(2).
//!
//! SysV has no timed receive or send. A thread about to block arms a POSIX
//! timer of its own (timer_create(2), `CLOCK_MONOTONIC`, `SIGEV_THREAD_ID`)
//! for the deadline; when it fires, the kernel sends that thread alone the
//! *wake-up signal*, whose handler does nothing. msgrcv(2) and msgsnd(2)
//! are never restarted after a handler (signal(7)), so the blocked call
//! fails with `EINTR`, and the waiter sees that its deadline has passed.
//! The timer fires again every [`REFIRE`] until disarmed, so a signal that
//! lands just before the call blocks (after the waiter's last look at the
//! clock) is followed by another: the wait ends at most [`REFIRE`] late.
//!
//! Measured side by side against a deadline thread that sends the waiting
//! tag a zero-length message (a small program, 2-vCPU VM shared with
//! compiling jobs): the timer ended 1 to 300 ms waits 44–137 µs after their
//! deadline at the median, the thread 88–190 µs (one more thread to wake);
//! each costs about 0.7 µs to set up and tear down around a wait; and the
//! wake-up message needs room in the queue, which a full queue does not
//! have. So: the timer.
//!
//! # In someone else's program
//!
//! The signal is process-wide state, so it is handled with care (this is
//! what `docs/client.md` tells embedders):
//!
//! - **Which signal.** `SIGRTMAX - 3` (61 with glibc), or the number in the
//!   environment variable `GUICHET_WAKE_SIGNAL` (read once, at the first
//!   wait), which can also be `off`. The handler is installed, once, only
//!   if the signal's disposition is still the default: a program that uses
//!   the signal itself keeps it, and guichet polls instead.
//! - **Other handlers.** Before each wait the disposition is read again; if
//!   another handler replaced ours, or the signal is blocked in the waiting
//!   thread (a thread that takes its signals with sigwait(3), say), that
//!   wait polls instead. The signal goes to the waiting thread alone,
//!   never to a thread that `sigwait`s for signals sent to the process.
//! - **Other system calls.** The timer is armed only around the blocked
//!   call and disarmed before the wait returns; a signal already sent is
//!   delivered when the disarming system call returns, to the no-op
//!   handler, before any of the program's code runs again. The handler is
//!   installed with `SA_RESTART` all the same, so a restartable call of the
//!   program would be resumed, not failed with `EINTR`.
//! - **Threads.** One timer per thread, made at its first blocked wait and
//!   deleted when the thread ends.
//! - **fork.** A child inherits the handler but not the timers
//!   (timer_create(2)); a thread's timer remembers its pid, and a child
//!   makes its own at its first wait. exec(2) resets the handler.
//! - **When unavailable** (no signal, a seccomp filter, timer limits): the
//!   wait polls with `IPC_NOWAIT` and sleeps of at most 1 ms
//!   ([`Backoff`](super::timeout::Backoff)), also never early.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libc::c_int;

use super::sys::{self, ThreadTimer};

/// How often the timer fires again after the deadline until disarmed: the
/// most a wait can end late when the first signal lands just before the
/// call blocks.
pub(crate) const REFIRE: Duration = Duration::from_micros(500);

/// The environment variable that picks the wake-up signal, or `off`.
pub(crate) const WAKE_SIGNAL_ENV: &str = "GUICHET_WAKE_SIGNAL";

/// The wake-up signal and the address of its handler as installed, once
/// chosen (`None`: this process polls).
static SIGNAL: OnceLock<Option<(c_int, libc::sighandler_t)>> = OnceLock::new();

thread_local! {
    static TIMER: RefCell<Option<ThreadTimer>> = const { RefCell::new(None) };
}

/// The signal that wakes this process's blocked queue calls at their
/// deadline, or `None` if they poll instead (the signal is off, taken by
/// the program, or out of range).
///
/// Chosen and its handler installed at the first call: `SIGRTMAX - 3`, or
/// the number in the environment variable `GUICHET_WAKE_SIGNAL` (which can
/// also be `off`), and only if the program has not set a disposition of its
/// own for it. See `docs/client.md`.
///
/// # Examples
///
/// ```
/// if let Some(signal) = guichet::sysv::wake_signal() {
///     assert!((libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal));
/// }
/// ```
pub fn wake_signal() -> Option<i32> {
    installed().map(|(signo, _)| signo)
}

/// The wake-up signal and its handler's address, installing it the first
/// time.
fn installed() -> Option<(c_int, libc::sighandler_t)> {
    *SIGNAL.get_or_init(|| {
        let signo = match std::env::var(WAKE_SIGNAL_ENV) {
            Err(_) => libc::SIGRTMAX() - 3,
            Ok(value) => value.trim().parse().ok()?,
        };
        if !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signo) {
            return None;
        }
        // (A forked child inherits the choice made here with the memory.)
        if sys::signal_disposition(signo).ok()? != libc::SIG_DFL {
            return None;
        }
        let handler = sys::install_wake_up(signo).ok()?;
        Some((signo, handler))
    })
}

/// An armed timer of the calling thread; dropping it disarms the timer.
#[derive(Debug)]
pub(crate) struct Alarm {
    /// The timer is the thread's own: the guard stays on its thread.
    _thread: PhantomData<*const ()>,
}

impl Alarm {
    /// Arms the calling thread's timer to interrupt it at `deadline` (at
    /// once if it has passed), and every [`REFIRE`] after. `None` if the
    /// wake-up signal cannot be used for this wait: the caller polls.
    pub(crate) fn arm(deadline: Instant) -> Option<Alarm> {
        let (signo, handler) = installed()?;
        // Another handler in its place would get our signals; a blocked
        // signal would never interrupt the call.
        if sys::signal_disposition(signo).ok()? != handler
            || sys::signal_blocked(signo).unwrap_or(true)
        {
            return None;
        }
        // Read the Instant first: `at` is then at or after the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let at = after(sys::monotonic_now().ok()?, left);
        TIMER
            .try_with(|cell| {
                let mut timer = cell.try_borrow_mut().ok()?;
                if !timer.as_ref().is_some_and(ThreadTimer::is_ours) {
                    // A parent's timer, in a forked child, is not deleted
                    // (its drop checks the pid): it is not this process's.
                    *timer = Some(ThreadTimer::new(signo).ok()?);
                }
                timer.as_ref()?.arm_at(at, timespec(REFIRE)).ok()
            })
            .ok()
            .flatten()?;
        Some(Alarm {
            _thread: PhantomData,
        })
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        let _ = TIMER.try_with(|cell| {
            if let Ok(timer) = cell.try_borrow() {
                if let Some(timer) = timer.as_ref() {
                    // Fails only for a timer that is not armed either.
                    let _ = timer.disarm();
                }
            }
        });
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    }
}

/// `now + left`, saturating at the largest time a timespec holds.
fn after(now: libc::timespec, left: Duration) -> libc::timespec {
    let now = Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    );
    timespec(now.checked_add(left).unwrap_or(Duration::MAX))
}

/// The CPU time the calling thread has used so far
/// (`CLOCK_THREAD_CPUTIME_ID`): what a wait costs, as opposed to how long
/// it lasts.
///
/// For the tests and the `client_wait` example (through `__testkit`).
///
/// # Errors
///
/// The errno of clock_gettime(2), which Linux never fails for this clock.
#[cfg(feature = "testkit")]
pub fn thread_cpu_time() -> Result<Duration, std::io::Error> {
    let now = sys::thread_cpu_now().map_err(std::io::Error::from_raw_os_error)?;
    Ok(Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_installed_handler_is_recognised_before_each_wait() {
        // The check compares addresses: the one the kernel reports must be
        // the one installed (a fresh cast of the handler can be another
        // copy's in an optimised build, and then no wait would block).
        if wake_signal().is_none() {
            return;
        }
        let alarm = Alarm::arm(Instant::now() + Duration::from_secs(60));
        assert!(alarm.is_some());
    }

    #[test]
    fn after_adds_and_saturates() {
        let now = libc::timespec {
            tv_sec: 5,
            tv_nsec: 999_999_999,
        };
        let at = after(now, Duration::from_nanos(2));
        assert_eq!((at.tv_sec, at.tv_nsec), (6, 1));
        let far = after(now, Duration::MAX);
        assert_eq!(far.tv_sec, libc::time_t::MAX);
    }
}
