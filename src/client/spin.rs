//! How long a call polls for its reply before it blocks: adaptive, per
//! thread.
//!
//! A blocked msgrcv(2) is woken by the kernel when the reply arrives, but
//! waking a sleeping thread costs tens of µs on an idle virtual machine,
//! more than a fast server takes to answer; polling costs a CPU that a slow
//! server (or other clients) may need. So each thread keeps a moving
//! average of how long its replies took, and polls (with `IPC_NOWAIT`,
//! yielding in between) for up to twice that, never more than
//! [`SPIN_CEILING`]; when replies take longer than the ceiling it blocks
//! at once.

use std::cell::Cell;
use std::time::Duration;

/// The longest a call polls before it blocks, and the reply time past
/// which it does not poll at all. One `IPC_NOWAIT` poll and a
/// `sched_yield` cost 0.4–0.6 µs on a 2-vCPU VM, so this is about a
/// hundred polls.
pub(crate) const SPIN_CEILING: Duration = Duration::from_micros(50);

/// The average reply time a thread starts from: a poll long enough to
/// learn whether replies come fast.
const INITIAL_NS: u64 = 20_000;

thread_local! {
    /// The moving average of this thread's reply times, in ns.
    static REPLY_NS: Cell<u64> = const { Cell::new(INITIAL_NS) };
}

/// How long the calling thread's next call polls before it blocks.
pub(crate) fn budget() -> Duration {
    let average = REPLY_NS.with(Cell::get);
    let ceiling = ceiling_ns();
    if average > ceiling {
        return Duration::ZERO;
    }
    Duration::from_nanos(average.saturating_mul(2).min(ceiling))
}

/// Counts a reply that took `waited` in the calling thread's average (an
/// exponential one, weight 1/8).
pub(crate) fn record(waited: Duration) {
    // Beyond the ceiling the figure only needs to stay beyond it.
    let waited = u64::try_from(waited.as_nanos())
        .unwrap_or(u64::MAX)
        .min(ceiling_ns().saturating_mul(4));
    REPLY_NS.with(|average| {
        let old = average.get();
        average.set(old - old / 8 + waited / 8);
    });
}

fn ceiling_ns() -> u64 {
    u64::try_from(SPIN_CEILING.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_replies_poll_slow_ones_block() {
        // A thread of its own: the average is per thread.
        std::thread::spawn(|| {
            for _ in 0..100 {
                record(Duration::from_micros(5));
            }
            let fast = budget();
            assert!(
                fast > Duration::ZERO && fast <= Duration::from_micros(12),
                "{fast:?}"
            );
            for _ in 0..100 {
                record(Duration::from_millis(1));
            }
            assert_eq!(budget(), Duration::ZERO);
            for _ in 0..100 {
                record(Duration::from_micros(5));
            }
            assert!(
                budget() > Duration::ZERO,
                "a slow spell must not stop polling for good"
            );
        })
        .join()
        .unwrap();
    }
}
