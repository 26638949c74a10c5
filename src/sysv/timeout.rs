//! Stopping and timing out calls that SysV itself cannot stop or time out.
//!
//! msgsnd(2)/msgrcv(2) have no timed variant and are never restarted after a
//! signal handler (signal(7)): they fail with `EINTR`, which the queue layer
//! retries. A deadline is enforced on the blocked call by a timer signal
//! (`super::alarm`); where that signal cannot be used, by polling with
//! `IPC_NOWAIT` and the [`Backoff`] below.

use std::thread;
use std::time::{Duration, Instant};

/// The backoff schedule of the polling fallback.
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

/// What [`Backoff`] does before the next poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pause {
    Yield,
    Sleep(Duration),
}

impl Backoff {
    /// A schedule ending `timeout_ms` from now.
    #[cfg(test)]
    pub(crate) fn with_timeout_ms(timeout_ms: u32) -> Backoff {
        // `None` (no deadline) only if the clock cannot represent
        // now + 49 days; a u32 of milliseconds cannot overflow otherwise.
        Self::until(Instant::now().checked_add(Duration::from_millis(u64::from(timeout_ms))))
    }

    pub(crate) fn until(deadline: Option<Instant>) -> Backoff {
        Backoff {
            deadline,
            polls: 0,
            sleep: schedule::FIRST_SLEEP,
        }
    }

    /// Waits before the next poll. Returns `false`, without waiting, once the
    /// deadline has passed: the caller then gives up after the poll it just
    /// made, so there is always one poll at or after the deadline.
    pub(crate) fn wait(&mut self) -> bool {
        match self.next_pause(Instant::now()) {
            None => false,
            Some(Pause::Yield) => {
                thread::yield_now();
                true
            }
            Some(Pause::Sleep(pause)) => {
                thread::sleep(pause);
                true
            }
        }
    }

    /// The pause before the next poll when it is `now`; `None` once the
    /// deadline has passed. (Apart from [`Backoff::wait`] so that tests can
    /// follow the schedule on a clock of their own.)
    fn next_pause(&mut self, now: Instant) -> Option<Pause> {
        let remaining = match self.deadline {
            Some(deadline) if now >= deadline => return None,
            Some(deadline) => deadline - now,
            None => Duration::MAX,
        };
        self.polls = self.polls.saturating_add(1);
        if self.polls <= schedule::YIELD_POLLS {
            return Some(Pause::Yield);
        }
        let pause = self.sleep.min(remaining);
        self.sleep = (self.sleep * 2).min(schedule::MAX_SLEEP);
        Some(Pause::Sleep(pause))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_sleeps_never_run_past_the_deadline() {
        // The schedule on a clock of the test's own, each sleep taken to
        // last exactly what was asked: deterministic, whatever the load.
        let start = Instant::now();
        let deadline = start + Duration::from_millis(20);
        let mut b = Backoff::until(Some(deadline));
        let mut now = start;
        let mut pauses = Vec::new();
        while let Some(pause) = b.next_pause(now) {
            if let Pause::Sleep(sleep) = pause {
                assert!(sleep <= schedule::MAX_SLEEP, "{sleep:?}");
                assert!(now + sleep <= deadline, "{sleep:?} at {:?}", now - start);
                now += sleep;
            }
            pauses.push(pause);
            assert!(pauses.len() < 1_000, "{pauses:?}");
        }
        // It stops exactly at the deadline: no sleep reaches past it.
        assert_eq!(now, deadline);
        // Yields first, then sleeps doubling from the first to the longest.
        let yields = schedule::YIELD_POLLS as usize;
        assert_eq!(
            pauses[..yields],
            [Pause::Yield; schedule::YIELD_POLLS as usize]
        );
        let sleeps: Vec<Duration> = pauses[yields..]
            .iter()
            .map(|p| match p {
                Pause::Sleep(sleep) => *sleep,
                Pause::Yield => panic!("a yield after the sleeps began: {pauses:?}"),
            })
            .collect();
        assert_eq!(sleeps[0], schedule::FIRST_SLEEP);
        for pair in sleeps[..sleeps.len() - 1].windows(2) {
            assert_eq!(
                pair[1],
                (pair[0] * 2).min(schedule::MAX_SLEEP),
                "{sleeps:?}"
            );
        }
    }

    #[test]
    fn backoff_ends_at_the_deadline_on_the_real_clock() {
        let start = Instant::now();
        let mut b = Backoff::with_timeout_ms(20);
        while b.wait() {}
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(20), "{elapsed:?}");
        // A liveness bound, not a speed requirement: it ends. (How many
        // waits fit in 20 ms is the scheduler's to say: on a busy machine
        // the yields alone can take that long. The schedule's shape is
        // checked on a clock of the test's own, above.)
        assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
    }

    #[test]
    fn no_deadline_keeps_the_longest_sleep() {
        let mut b = Backoff::until(None);
        let now = Instant::now();
        let last = (0..100).filter_map(|_| b.next_pause(now)).last();
        assert_eq!(last, Some(Pause::Sleep(schedule::MAX_SLEEP)));
    }

    #[test]
    fn zero_timeout_never_waits() {
        let mut b = Backoff::with_timeout_ms(0);
        assert!(!b.wait());
    }
}
