//! Stopping and timing out calls that SysV itself cannot stop or time out.
//!
//! msgsnd(2)/msgrcv(2) have no timed variant and are never restarted after a
//! signal handler (signal(7)): they fail with `EINTR`, which the queue layer
//! retries. Two tools bound those loops: a [`StopToken`] checked before each
//! attempt, and a deadline enforced by polling with `IPC_NOWAIT` and the
//! [`Backoff`] below.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A shared "please stop" flag for blocking and polling queue calls.
///
/// The `*_stoppable` methods of [`Queue`](super::Queue) check it before
/// their first attempt and between retries (after `EINTR`, or between polls
/// of a `*_timeout` call) and then return
/// [`SysvError::Stopped`](super::SysvError::Stopped).
///
/// Setting the flag does **not** wake a thread blocked inside msgrcv(2) or
/// msgsnd(2): the kernel knows nothing of it. To stop such a thread, set the
/// flag and then make the call return: send the receiver a message (the
/// server's way), remove the queue, or interrupt it with a signal whose
/// handler is installed (the call then sees `EINTR` and checks the flag).
///
/// # Examples
///
/// ```
/// use guichet::sysv::{MessageBuf, Mode, OwnedQueue, RecvFlags, StopToken, SysvError};
///
/// let owned = OwnedQueue::create_private(Mode::DEFAULT)?;
/// let stop = StopToken::new();
/// let clone = stop.clone();
/// clone.stop();
/// assert!(stop.is_stopped());
/// let mut buf = MessageBuf::with_body_capacity(40)?;
/// let err = owned.recv_stoppable(1, &mut buf, RecvFlags::empty(), &stop).unwrap_err();
/// assert!(matches!(err, SysvError::Stopped { op: "msgrcv" }));
/// owned.remove()?;
/// # Ok::<(), SysvError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct StopToken(Arc<AtomicBool>);

impl StopToken {
    /// A token that is not stopped.
    #[must_use]
    pub fn new() -> StopToken {
        StopToken::default()
    }

    /// Asks every call watching this token (or a clone of it) to stop at its
    /// next check. Idempotent.
    pub fn stop(&self) {
        // Release pairs with the Acquire in `is_stopped`, so whatever the
        // stopping thread wrote before is visible to the stopped one.
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`StopToken::stop`] was called on this token or a clone.
    #[must_use]
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The backoff schedule of the polling (`*_timeout`) calls.
pub(crate) mod schedule {
    use std::time::Duration;

    /// Polls made back to back, yielding the CPU in between, before the first
    /// sleep: a reply that is already on its way costs no timer latency.
    pub(crate) const YIELD_POLLS: u32 = 3;
    /// The first sleep between polls.
    pub(crate) const FIRST_SLEEP: Duration = Duration::from_micros(10);
    /// The longest sleep between polls: the most a message that arrives
    /// mid-wait can wait for its next poll (plus timer slack, ~50 µs).
    pub(crate) const MAX_SLEEP: Duration = Duration::from_millis(1);
}

/// Adaptive polling: a few yields, then sleeps doubling from
/// [`schedule::FIRST_SLEEP`] to [`schedule::MAX_SLEEP`], never past the
/// deadline.
#[derive(Debug)]
pub(crate) struct Backoff {
    deadline: Option<Instant>,
    polls: u32,
    sleep: Duration,
}

impl Backoff {
    /// A schedule ending `timeout_ms` from now.
    pub(crate) fn with_timeout_ms(timeout_ms: u32) -> Backoff {
        Backoff {
            // `None` (no deadline) only if the clock cannot represent
            // now + 49 days; a u32 of milliseconds cannot overflow otherwise.
            deadline: Instant::now().checked_add(Duration::from_millis(u64::from(timeout_ms))),
            polls: 0,
            sleep: schedule::FIRST_SLEEP,
        }
    }

    /// Waits before the next poll. Returns `false`, without waiting, once the
    /// deadline has passed: the caller then gives up after the poll it just
    /// made, so there is always one poll at or after the deadline.
    pub(crate) fn wait(&mut self) -> bool {
        let now = Instant::now();
        let remaining = match self.deadline {
            Some(deadline) if now >= deadline => return false,
            Some(deadline) => deadline - now,
            None => Duration::MAX,
        };
        self.polls = self.polls.saturating_add(1);
        if self.polls <= schedule::YIELD_POLLS {
            thread::yield_now();
        } else {
            thread::sleep(self.sleep.min(remaining));
            self.sleep = (self.sleep * 2).min(schedule::MAX_SLEEP);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_ends_at_the_deadline_not_long_after() {
        let start = Instant::now();
        let mut b = Backoff::with_timeout_ms(20);
        let mut waits = 0u32;
        while b.wait() {
            waits += 1;
        }
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(200), "{elapsed:?}");
        // 3 yields, ~7 growing sleeps up to 1 ms, then ~1 ms sleeps.
        assert!(waits > schedule::YIELD_POLLS, "{waits}");
    }

    #[test]
    fn zero_timeout_never_waits() {
        let mut b = Backoff::with_timeout_ms(0);
        assert!(!b.wait());
    }

    #[test]
    fn stop_token_is_shared_by_clones() {
        let a = StopToken::new();
        let b = a.clone();
        assert!(!b.is_stopped());
        a.stop();
        a.stop();
        assert!(b.is_stopped());
    }
}
