//! How long a call polls for its reply before it blocks.
//!
//! A reply that comes while the caller polls (`IPC_NOWAIT`, yielding the
//! CPU between polls) costs no wake-up on either side: the server's
//! msgsnd(2) only queues it, where a blocked caller makes the server wake
//! it, and waking a thread on a virtual CPU can cost tens of µs. With many
//! clients the server is the bottleneck, and every wake-up it does for them
//! slows it down: a C client that polls without limit beat one that blocks
//! in every pool:2 cell of `guichet bench --compare-clients`, and on
//! thread-per-request at 16 clients.
//!
//! Two earlier policies lost to it. Each thread comparing its own round
//! trips when polling and when blocking, keeping the faster: a thread that
//! blocks does not see the wake-ups it costs the server, so threads chose
//! to block when the server was busy (0.70 of the polling C client at
//! pool:2 with 16 clients, against 0.87 when always polling). Polling for
//! a few times the thread's average round trip (4 or 16 times): round
//! trips have long tails on a shared machine, and the calls in the tail
//! blocked (0.73–0.89 of the polling C client on thread-per-request at 4
//! and 16 clients, against 0.98–1.01 when always polling). All measured
//! side by side, in 5 ms slices interleaved, on a busy 2-vCPU VM.
//!
//! So a call polls for up to [`MAX_SPIN`], then blocks. Polling is bounded
//! because it takes a CPU the server or other clients may need, and a wait
//! that times out must cost next to nothing: [`MAX_SPIN`] once per call.
//! A thread whose round trips average more than [`MAX_SPIN`] (a server
//! waiting for a slow disk, or one that is overloaded) blocks at once: a
//! reply that slow is rarely caught by a poll, a wake-up is small next to
//! it, and the CPU is left to the server. A thread that has no round trip
//! yet polls for [`FIRST_SPIN`] only, so that waiting on a queue nobody
//! serves costs next to nothing.

use std::cell::Cell;
use std::time::Duration;

/// How long a thread polls before its first reply: enough for a fast
/// server (a round trip takes 5–40 µs on a 2-vCPU VM; one `IPC_NOWAIT`
/// poll and a `sched_yield` cost 0.3–0.6 µs).
pub(crate) const FIRST_SPIN: Duration = Duration::from_micros(50);
/// The longest a call polls; a thread whose round trips average more
/// blocks at once. With 16 clients on 2 busy CPUs round trips take a few
/// hundred µs with a tail past 1 ms, and polling still wins there. A
/// 300 ms wait that times out polls this long once: 0.7% of a CPU.
pub(crate) const MAX_SPIN: Duration = Duration::from_millis(2);

thread_local! {
    /// The calling thread's average round trip, in ns (moving, weight 1/8;
    /// 0 before the first).
    static AVERAGE_NS: Cell<u64> = const { Cell::new(0) };
}

/// How long a wait of average round trip `average_ns` polls before it
/// blocks.
fn budget_for(average_ns: u64) -> Duration {
    match Duration::from_nanos(average_ns) {
        Duration::ZERO => FIRST_SPIN,
        average if average > MAX_SPIN => Duration::ZERO,
        _ => MAX_SPIN,
    }
}

/// `average_ns` with the round trip `waited` counted in.
fn averaged(average_ns: u64, waited: Duration) -> u64 {
    let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX).max(1);
    if average_ns == 0 {
        ns
    } else {
        average_ns - average_ns / 8 + ns / 8
    }
}

/// How long the calling thread's next call polls before it blocks.
pub(crate) fn budget() -> Duration {
    budget_for(AVERAGE_NS.with(Cell::get))
}

/// Counts a round trip of `waited` (from the call's start to its reply) in
/// the calling thread's average.
pub(crate) fn record(waited: Duration) {
    AVERAGE_NS.with(|cell| cell.set(averaged(cell.get(), waited)));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The budgets of `calls` calls whose round trips all take `each`,
    /// from a thread's `average_ns`.
    fn run(average_ns: &mut u64, calls: u32, each: Duration) -> Vec<Duration> {
        (0..calls)
            .map(|_| {
                let budget = budget_for(*average_ns);
                *average_ns = averaged(*average_ns, each);
                budget
            })
            .collect()
    }

    #[test]
    fn a_thread_polls_for_fast_replies_and_blocks_at_once_for_slow_ones() {
        let mut average_ns = 0;
        // The first call polls briefly; then up to the longest poll.
        let fast = run(&mut average_ns, 20, Duration::from_micros(100));
        assert_eq!(fast[0], FIRST_SPIN);
        assert!(fast[1..].iter().all(|b| *b == MAX_SPIN), "{fast:?}");
        // A long tail does not stop the polling...
        let tail = run(&mut average_ns, 1, Duration::from_millis(5));
        let after_tail = run(&mut average_ns, 1, Duration::from_micros(100));
        assert_eq!((tail[0], after_tail[0]), (MAX_SPIN, MAX_SPIN));
        // ...but a server that slows to 5 ms a reply does.
        let slow = run(&mut average_ns, 100, Duration::from_millis(5));
        assert_eq!(slow.last(), Some(&Duration::ZERO));
        // And fast again: polls again, with no try of the other wait needed.
        let again = run(&mut average_ns, 100, Duration::from_micros(20));
        assert_eq!(again.last(), Some(&MAX_SPIN));
    }

    #[test]
    fn an_instant_round_trip_still_counts_as_one() {
        let mut average_ns = 0;
        let budgets = run(&mut average_ns, 2, Duration::ZERO);
        assert_eq!(budgets, [FIRST_SPIN, MAX_SPIN]);
    }
}
