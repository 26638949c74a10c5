//! When the next group commit starts: as soon as the clients the last one
//! answered have had time to come back, so that one `fdatasync` carries
//! every waiting change.
//!
//! Without this, a commit thread that starts the next fsync the moment it
//! has sent the last one's replies splits closed-loop clients into two
//! groups that take turns: the clients answered by fsync N send their next
//! change while fsync N+1 (started with the others' changes) runs, so they
//! wait for N+2, and each client waits for about two fsyncs (measured:
//! 6.8 of 16 changes per fsync). Waiting for them instead costs one round
//! trip per fsync and puts all 16 in it.
//!
//! The wait is bounded: by what the answered clients took to come back
//! before (learnt, and doubled for slack), and never longer than an fsync
//! (past that, starting now and letting a straggler wait for the next one
//! costs less). A lone client never waits: with one reply sent and nothing
//! pending there is nobody to wait for (the next change is synced by the
//! worker that appended it, see `durability`). The idea is MySQL's
//! `binlog_group_commit_sync_delay` with `..._no_delay_count` (wait for a
//! count of commits or a time, whichever first) with both figures learnt
//! instead of configured.

use std::time::{Duration, Instant};

/// The shortest wait, before anything is learnt: about one round trip of
/// a SysV message between two threads.
const MIN_WAIT: Duration = Duration::from_micros(20);
/// The longest wait, whatever was learnt (a disk whose fsync takes longer
/// still waits no longer than this).
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(1);

/// What the commit thread has learnt about its clients and its disk.
#[derive(Debug, Default)]
pub(crate) struct Pacing {
    /// How long the answered clients took to come back, smoothed (ns).
    return_ns: u64,
    /// The last write + fdatasync (ns).
    sync_ns: u64,
}

/// Wait until `target` replies are queued, or `deadline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Gather {
    pub(crate) target: usize,
    pub(crate) deadline: Instant,
    /// When the replies that the wait is for went out.
    pub(crate) since: Instant,
}

impl Pacing {
    /// Records how long the last group commit's write + fdatasync took.
    pub(crate) fn synced(&mut self, took: Duration) {
        self.sync_ns = nanos(took);
    }

    /// After a group commit whose replies started going out at `since`:
    /// `answered` replies were sent, `pending` are queued for the next one.
    /// Returns how long to wait for the answered clients' next changes,
    /// or `None` to start at once (a lone client, or nobody answered).
    pub(crate) fn plan(&self, answered: usize, pending: usize, since: Instant) -> Option<Gather> {
        if answered == 0 || (answered == 1 && pending == 0) {
            return None;
        }
        Some(Gather {
            target: pending + answered,
            deadline: since + self.window(),
            since,
        })
    }

    /// How long a gather may last: twice the learnt return time, at least
    /// [`MIN_WAIT`], at most one fsync and [`MAX_WAIT`].
    pub(crate) fn window(&self) -> Duration {
        let learnt = Duration::from_nanos(self.return_ns.saturating_mul(2)).max(MIN_WAIT);
        learnt.min(Duration::from_nanos(self.sync_ns)).min(MAX_WAIT)
    }

    /// Every awaited client came back, `took` after its reply went out.
    pub(crate) fn came_back(&mut self, took: Duration) {
        let took = nanos(took);
        // A quarter of the new figure: steady, yet it follows a change of
        // load within a few batches.
        self.return_ns = if self.return_ns == 0 {
            took
        } else {
            (self.return_ns * 3 + took) / 4
        };
    }

    /// The window passed first: wait longer next time (up to the bounds),
    /// since the clients may be slower to come back than learnt.
    pub(crate) fn timed_out(&mut self) {
        let window = nanos(self.window());
        self.return_ns = self.return_ns.max(window / 2) + window / 4;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);

    #[test]
    fn a_lone_client_never_waits() {
        let mut pacing = Pacing::default();
        pacing.synced(100 * US);
        assert_eq!(pacing.plan(1, 0, Instant::now()), None);
        assert_eq!(pacing.plan(0, 5, Instant::now()), None);
        // Two clients, one answered and one pending: wait for the first.
        assert_eq!(pacing.plan(1, 1, Instant::now()).map(|g| g.target), Some(2));
    }

    #[test]
    fn the_wait_is_learnt_and_never_longer_than_an_fsync() {
        let mut pacing = Pacing::default();
        pacing.synced(100 * US);
        assert_eq!(pacing.window(), MIN_WAIT, "nothing learnt yet");
        pacing.came_back(30 * US);
        assert_eq!(pacing.window(), 60 * US);
        for _ in 0..20 {
            pacing.came_back(800 * US);
        }
        assert_eq!(pacing.window(), 100 * US, "capped at the last fsync");
        pacing.synced(10 * Duration::from_millis(1));
        assert_eq!(pacing.window(), MAX_WAIT, "capped at MAX_WAIT");
    }

    #[test]
    fn a_timeout_widens_the_next_wait_within_its_bounds() {
        let mut pacing = Pacing::default();
        pacing.synced(100 * US);
        let first = pacing.window();
        pacing.timed_out();
        assert!(pacing.window() > first, "{:?}", pacing.window());
        for _ in 0..50 {
            pacing.timed_out();
        }
        assert_eq!(pacing.window(), 100 * US);
    }
}
