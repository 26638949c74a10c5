//! How long a call polls for its reply before it blocks: chosen per thread,
//! by measurement.
//!
//! A blocked msgrcv(2) is woken by the kernel when the reply arrives, but
//! waking a sleeping thread can cost tens of µs (an idle virtual CPU), more
//! than a fast server takes to answer; polling, on the other hand, takes a
//! CPU that the server or other clients may need, and each `sched_yield`
//! between polls may hand the CPU to another process for a whole time
//! slice on a busy machine. Which wait is faster depends on the server's
//! mode, the number of clients and the machine's load, so each thread
//! measures both: it keeps a moving average of its round trips under each
//! wait, uses the faster, and now and then tries the other (less often
//! each time the other proves slower again) so that a change is noticed.
//!
//! "Spin" polls for up to twice the faster wait's average round trip
//! (within [`MIN_SPIN`] and [`MAX_SPIN`]) then blocks; "block" makes one
//! poll then blocks.

use std::cell::Cell;
use std::time::Duration;

/// The shortest a spinning call polls before it blocks. Round trips that
/// spinning catches took 10–40 µs in the measurements (pool:2 and
/// thread-per-request at 1 client); one `IPC_NOWAIT` poll and a
/// `sched_yield` cost 0.4–0.6 µs on a 2-vCPU VM.
pub(crate) const MIN_SPIN: Duration = Duration::from_micros(50);
/// The longest: with 16 clients on 2 CPUs a round trip takes a few hundred
/// µs, and a C client that polls without limit was the fastest there.
pub(crate) const MAX_SPIN: Duration = Duration::from_millis(1);

/// Round trips each wait is tried for before the averages are compared.
const WARM_UP: u32 = 4;
/// The fewest calls between two tries of the slower wait.
const FIRST_EXPLORE_EVERY: u32 = 16;
/// The most: a slower wait tried once in this many calls costs little
/// even when it is much slower (a spin that yields to a busy machine).
const MAX_EXPLORE_EVERY: u32 = 1024;

/// One wait's record in one thread.
#[derive(Clone, Copy, Debug, Default)]
struct Record {
    /// Moving average of its round trips, in ns (weight 1/8).
    average_ns: u64,
    /// Round trips measured, up to [`WARM_UP`].
    samples: u32,
}

/// A thread's records of both waits, and when to try the slower one.
#[derive(Clone, Copy, Debug)]
struct Choice {
    spin: Record,
    block: Record,
    calls: u32,
    explore_every: u32,
}

impl Choice {
    const NEW: Choice = Choice {
        spin: Record {
            average_ns: 0,
            samples: 0,
        },
        block: Record {
            average_ns: 0,
            samples: 0,
        },
        calls: 0,
        explore_every: FIRST_EXPLORE_EVERY,
    };

    /// Whether the next call spins.
    fn spins(&mut self) -> bool {
        if self.spin.samples < WARM_UP {
            return true;
        }
        if self.block.samples < WARM_UP {
            return false;
        }
        self.calls = self.calls.wrapping_add(1);
        let spin_faster = self.spin.average_ns <= self.block.average_ns;
        let explore = self.calls % self.explore_every == 0;
        spin_faster != explore
    }

    /// Counts a round trip of `waited` made with the wait `spun` says.
    fn record(&mut self, spun: bool, waited: Duration) {
        let spin_was_faster = self.spin.average_ns <= self.block.average_ns;
        let ns = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        let record = if spun {
            &mut self.spin
        } else {
            &mut self.block
        };
        // The slower wait is tried too seldom for an average of its past
        // to mean anything now: its latest round trip stands for it.
        let tried = spun != spin_was_faster;
        record.average_ns = if record.samples == 0 || tried {
            ns
        } else {
            record.average_ns - record.average_ns / 8 + ns / 8
        };
        record.samples = (record.samples + 1).min(WARM_UP);
        let spin_faster = self.spin.average_ns <= self.block.average_ns;
        if spin_faster != spin_was_faster {
            // The other wait is faster now: try the old one soon again.
            self.explore_every = FIRST_EXPLORE_EVERY;
        } else if spun != spin_faster {
            // The slower wait, tried, is still slower: try it less often.
            self.explore_every = (self.explore_every * 2).min(MAX_EXPLORE_EVERY);
        }
    }
}

thread_local! {
    static CHOICE: Cell<Choice> = const { Cell::new(Choice::NEW) };
}

/// How long the calling thread's next call polls before it blocks: twice
/// the faster wait's average round trip, within [`MIN_SPIN`] and
/// [`MAX_SPIN`], or nothing.
pub(crate) fn budget() -> Duration {
    CHOICE.with(|cell| {
        let mut choice = cell.get();
        let spins = choice.spins();
        cell.set(choice);
        if !spins {
            return Duration::ZERO;
        }
        let fastest = match (choice.spin.samples, choice.block.samples) {
            (0, _) | (_, 0) => 0,
            _ => choice.spin.average_ns.min(choice.block.average_ns),
        };
        Duration::from_nanos(fastest.saturating_mul(2)).clamp(MIN_SPIN, MAX_SPIN)
    })
}

/// Counts a round trip of `waited` made with `budget` (as [`budget`] gave
/// it) in the calling thread's records.
pub(crate) fn record(budget: Duration, waited: Duration) {
    CHOICE.with(|cell| {
        let mut choice = cell.get();
        choice.record(budget > Duration::ZERO, waited);
        cell.set(choice);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `choice` `calls` round trips, spinning ones taking `spin` and
    /// blocking ones `block`; returns how many spun.
    fn run(choice: &mut Choice, calls: u32, spin: Duration, block: Duration) -> u32 {
        let mut spun = 0;
        for _ in 0..calls {
            let spins = choice.spins();
            spun += u32::from(spins);
            choice.record(spins, if spins { spin } else { block });
        }
        spun
    }

    #[test]
    fn each_thread_settles_on_the_faster_wait_and_notices_a_change() {
        let (fast, slow) = (Duration::from_micros(10), Duration::from_micros(60));
        let mut choice = Choice::NEW;
        // Spinning faster: nearly every call spins, a few try blocking.
        let spun = run(&mut choice, 2_000, fast, slow);
        assert!(spun > 1_900, "{spun}");
        assert!(spun < 2_000, "blocking was never tried again");
        // The machine changes: blocking is faster now.
        let spun = run(&mut choice, 4_000, slow, fast);
        let settled = run(&mut choice, 2_000, slow, fast);
        assert!(spun < 4_000 && settled < 50, "{spun}, then {settled}");
        assert!(settled > 0, "spinning was never tried again");
    }
}
