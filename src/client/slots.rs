//! Reply tags for calls in flight: `(pid << 32) | slot`, one slot per call,
//! unique across every [`Client`](super::Client) of the process; a thread
//! keeps its slot between its calls.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ids::{ReplyTo, RequestId};

/// Most calls in flight at once in one process, across every
/// [`Client`](super::Client): the number of reply tags a process hands out
/// (slots 1 to 65 536 under its pid). A thread keeps its slot from one call
/// to the next until it ends, so this also bounds the threads alive that
/// have made a call. A call past it fails at once with
/// [`ClientError::TooManyCalls`](super::ClientError::TooManyCalls) rather
/// than wait for a slot.
pub(crate) const MAX_CALLS_IN_FLIGHT: u32 = 65_536;

struct Pool {
    free: Vec<u32>,
    issued: u32,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    free: Vec::new(),
    issued: 0,
});

/// The slot a thread keeps between its calls: a thread makes one call at a
/// time, so after its first it needs the pool's lock no more (16 client
/// threads on 2 CPUs otherwise queue on that lock twice a call), and its
/// calls keep one tag. Back to the pool when the thread ends.
struct Kept(Cell<Option<u32>>);

impl Drop for Kept {
    fn drop(&mut self) {
        if let Some(slot) = self.0.take() {
            give_back(slot);
        }
    }
}

thread_local! {
    static KEPT: Kept = const { Kept(Cell::new(None)) };
}

fn give_back(slot: u32) {
    POOL.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .free
        .push(slot);
}

/// One slot, kept by its thread (or returned to the pool) on drop.
pub(crate) struct Slot(u32);

impl Slot {
    /// A free slot, or `None` if [`MAX_CALLS_IN_FLIGHT`] are taken.
    pub(crate) fn take() -> Option<Self> {
        if let Some(slot) = KEPT.try_with(|kept| kept.0.take()).ok().flatten() {
            return Some(Self(slot));
        }
        // The pool lock guards a plain free list; poisoning cannot leave it
        // inconsistent.
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = pool.free.pop() {
            return Some(Self(slot));
        }
        if pool.issued == MAX_CALLS_IN_FLIGHT {
            return None;
        }
        pool.issued += 1;
        Some(Self(pool.issued))
    }

    /// This slot's reply tag for the calling process (a forked child gets
    /// its own pid, hence its own tags: `sysv::current_pid`).
    pub(crate) fn reply_to(&self) -> Option<ReplyTo> {
        let pid = i32::try_from(crate::sysv::current_pid()).ok()?;
        ReplyTo::for_slot(pid, self.0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let slot = self.0;
        // Kept for the thread's next call, unless it keeps one already
        // (not reached: a thread makes one call at a time) or is ending.
        let kept = KEPT.try_with(|kept| match kept.0.get() {
            None => {
                kept.0.set(Some(slot));
                true
            }
            Some(_) => false,
        });
        if kept != Ok(true) {
            give_back(slot);
        }
    }
}

/// A request id no earlier call of this process used. Starts from the clock
/// so that a later process that reuses this pid does not take a reply left
/// for this one as its own.
pub(crate) fn next_request_id() -> RequestId {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        // The low 64 bits of the clock in ns: distinct across restarts.
        AtomicU64::new(nanos as u64)
    });
    RequestId(next.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot_from_one_call_to_the_next() {
        std::thread::spawn(|| {
            let first = Slot::take().map(|slot| slot.0);
            let second = Slot::take().map(|slot| slot.0);
            assert!(first.is_some());
            assert_eq!(first, second);
            // Two at once (not reached by calls) are two slots.
            let (a, b) = (Slot::take(), Slot::take());
            assert_ne!(a.map(|s| s.0), b.map(|s| s.0));
        })
        .join()
        .unwrap();
    }
}
