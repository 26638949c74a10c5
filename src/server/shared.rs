//! State every server thread shares: the queue, the ledger under its lock,
//! counters, the stop flag, and the bookkeeping shutdown waits on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::codec::Operation;
use crate::journal::{Journal, Lsn};
use crate::ledger::{Ledger, Outcome};
use crate::sysv::Queue;

use super::commit::CommitQueue;
use super::config::Limits;
use super::error::ServerError;
use super::reply::ReplyTags;
use super::stats::Counters;

pub(crate) struct Shared {
    pub(crate) queue: Queue,
    ledger: Mutex<Ledger>,
    /// Where changes are made durable before they are answered, if anywhere.
    pub(crate) journal: Option<Arc<Journal>>,
    /// Replies waiting for the journal's fdatasync (see `commit`).
    pub(crate) commit: CommitQueue,
    pub(crate) counters: Counters,
    pub(crate) limits: Limits,
    pub(crate) tags: ReplyTags,
    /// Body of the messages shutdown sends to wake blocked receive loops:
    /// random per server, so a client's message is never mistaken for one
    /// (and is counted like any other).
    pub(crate) wake_token: [u8; WAKE_TOKEN_BYTES],
    /// Mirrors `State::stopping` for the request path, which must not take
    /// the state lock just to read it.
    stopping: AtomicBool,
    state: Mutex<State>,
    /// In-flight slots, receive loops and stops: what `acquire` and
    /// `wait_idle` wait for.
    changed: Condvar,
    /// Stops only: what `Server::wait` waits on for the server's whole life,
    /// kept apart so that it is not a waiter every finished request must
    /// notify.
    stopped: Condvar,
    /// One clone per thread-per-request worker, dropped after everything
    /// else the worker holds (its share of this state, and so of the
    /// journal and its lock): a shutdown waits for the count to fall back
    /// to 1, since a worker leaves `in_flight` before it has let go.
    pub(crate) workers: Arc<()>,
}

#[derive(Default)]
struct State {
    stopping: bool,
    /// When a shutdown must be over, once one has begun.
    stop_deadline: Option<Instant>,
    in_flight: usize,
    receivers: usize,
    failure: Option<ServerError>,
    /// Threads waiting on `changed`: a request that ends notifies only
    /// when someone waits, since each notify is a futex syscall.
    waiters: usize,
}

impl Shared {
    pub(crate) fn new(queue: Queue, ledger: Ledger, limits: Limits, receivers: usize) -> Self {
        Self {
            queue,
            ledger: Mutex::new(ledger),
            journal: None,
            commit: CommitQueue::default(),
            counters: Counters::default(),
            limits,
            tags: ReplyTags::default(),
            wake_token: wake_token(),
            stopping: AtomicBool::new(false),
            state: Mutex::new(State {
                receivers,
                ..State::default()
            }),
            changed: Condvar::new(),
            stopped: Condvar::new(),
            workers: Arc::new(()),
        }
    }

    /// The same state, journaling every change to `journal`.
    pub(crate) fn with_journal(mut self, journal: Option<Arc<Journal>>) -> Self {
        self.journal = journal;
        self
    }

    /// Applies one operation under the ledger lock, and nothing else under
    /// it. With a journal, also returns the number of the change the reply
    /// must wait for, if any: its own change, or for a reply that changed
    /// nothing the last change appended when it read the ledger (see the
    /// `journal` module docs: no reply may show a change a crash could
    /// take back). `None` when nothing it could have seen is pending: the
    /// reply goes out at once. It does not wait: the reply is sent by
    /// [`super::commit::reply_when_durable`]. A journal failure is returned
    /// as an error: the caller fails the server and sends no reply, because
    /// the change may or may not reach the disk.
    pub(crate) fn apply(
        &self,
        operation: &Operation,
    ) -> Result<(Outcome, Option<Lsn>), ServerError> {
        let mut ledger = self
            .ledger
            .lock()
            .map_err(|_| ServerError::LedgerPoisoned)?;
        let outcome = ledger.apply(operation);
        let Some(journal) = &self.journal else {
            return Ok((outcome, None));
        };
        // Appended under the lock, so the journal's order is the ledger's.
        let wait_for = match outcome.change() {
            Some(change) => Some(journal.append(&change)),
            None => match journal.check_failed() {
                // A failed append changed the ledger and set the failure
                // before it released the lock, and a compaction may have
                // failed with nothing pending: either way this ledger may
                // show a change that is not (and never will be) on disk.
                Err(error) => Some(Err(error)),
                Ok(()) => {
                    let appended = journal.appended();
                    (journal.durable() < appended).then_some(Ok(appended))
                }
            },
        };
        drop(ledger);
        let wait_for = wait_for.transpose()?;
        // Cheap unless due: one atomic load. Copies the ledger under its
        // lock; the rest runs in the compaction's thread. Its error (the
        // journal failed, or the ledger is poisoned) stops the server, but
        // this reply still goes through `reply_when_durable`, which sends
        // it only if its change is durable and the journal sound.
        if let Err(error) = journal.compact_if_due(&self.ledger) {
            self.fail(ServerError::Journal(error));
        }
        Ok((outcome, wait_for))
    }

    /// Runs `f` on the ledger under its lock.
    pub(crate) fn with_ledger<R>(&self, f: impl FnOnce(&Ledger) -> R) -> Result<R, ServerError> {
        let ledger = self
            .ledger
            .lock()
            .map_err(|_| ServerError::LedgerPoisoned)?;
        Ok(f(&ledger))
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Asks every thread to stop; wakes those waiting on the state (not
    /// those blocked in msgrcv(2): shutdown sends them a message).
    pub(crate) fn request_stop(&self) {
        let mut state = self.lock_state();
        state.stopping = true;
        self.stopping.store(true, Ordering::Release);
        drop(state);
        self.changed.notify_all();
        self.stopped.notify_all();
    }

    /// Sets the time by which the shutdown under way must be over; replies
    /// and the drain stop waiting then.
    pub(crate) fn set_stop_deadline(&self, deadline: Instant) {
        self.lock_state().stop_deadline = Some(deadline);
    }

    /// Whether a shutdown has begun and its deadline has passed.
    pub(crate) fn past_stop_deadline(&self, now: Instant) -> bool {
        self.stop_deadline().is_some_and(|deadline| now >= deadline)
    }

    /// The deadline of the shutdown under way, if one has begun.
    pub(crate) fn stop_deadline(&self) -> Option<Instant> {
        self.lock_state().stop_deadline
    }

    /// Records the first fatal error and stops the server.
    pub(crate) fn fail(&self, error: ServerError) {
        let mut state = self.lock_state();
        state.failure.get_or_insert(error);
        drop(state);
        self.request_stop();
    }

    pub(crate) fn take_failure(&self) -> Option<ServerError> {
        self.lock_state().failure.take()
    }

    /// Waits until a stop is requested.
    pub(crate) fn wait_for_stop(&self) {
        let mut state = self.lock_state();
        while !state.stopping {
            state = self
                .stopped
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits until every receive loop has returned and no request is in
    /// flight, or `deadline` passes. Returns whether they all finished.
    pub(crate) fn wait_idle(&self, deadline: Instant) -> bool {
        let mut state = self.lock_state();
        loop {
            if state.receivers == 0 && state.in_flight == 0 {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            state = self.wait_timeout(state, deadline - now);
        }
    }

    /// Like [`Shared::wait_idle`] for the receive loops alone, waking at
    /// least every `poll` so the caller can send another wake-up message.
    pub(crate) fn receivers_running(&self, poll: std::time::Duration) -> usize {
        let state = self.lock_state();
        if state.receivers == 0 {
            return 0;
        }
        self.wait_timeout(state, poll).receivers
    }

    /// Takes a slot for one more request in flight, waiting while
    /// `max_in_flight` are; `None` once the server is stopping.
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<Permit> {
        let mut state = self.lock_state();
        while state.in_flight >= self.limits.max_in_flight && !state.stopping {
            state = self.wait(state);
        }
        if state.stopping {
            return None;
        }
        state.in_flight += 1;
        self.counters.in_flight(state.in_flight as u64);
        Some(Permit(Arc::clone(self)))
    }

    /// Forgets `n` receive loops that were counted but could not be started.
    pub(crate) fn receivers_not_started(&self, n: usize) {
        let mut state = self.lock_state();
        state.receivers = state.receivers.saturating_sub(n);
        drop(state);
        self.changed.notify_all();
    }

    /// Marks a receive loop as returned (from its guard's Drop, so a
    /// panicking loop is counted too).
    fn receiver_exited(&self) {
        let mut state = self.lock_state();
        state.receivers = state.receivers.saturating_sub(1);
        drop(state);
        self.changed.notify_all();
    }

    /// Waits on `changed`, counted in `waiters`.
    fn wait<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.waiters += 1;
        let mut state = self
            .changed
            .wait(state)
            .unwrap_or_else(PoisonError::into_inner);
        state.waiters -= 1;
        state
    }

    /// Waits on `changed` at most `timeout`, counted in `waiters`.
    fn wait_timeout<'a>(
        &self,
        mut state: MutexGuard<'a, State>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, State> {
        state.waiters += 1;
        let (mut state, _) = self
            .changed
            .wait_timeout(state, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        state.waiters -= 1;
        state
    }

    // The state lock guards plain counters and is never held across user
    // code or a syscall, so a poisoned one still holds consistent values.
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) const WAKE_TOKEN_BYTES: usize = 16;

/// 16 unpredictable bytes, from the randomly seeded std hasher: they only
/// need to be unlike anything a client sends, not secret.
fn wake_token() -> [u8; WAKE_TOKEN_BYTES] {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut token = [0u8; WAKE_TOKEN_BYTES];
    for chunk in token.chunks_mut(8) {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(chunk.as_ptr() as usize);
        chunk.copy_from_slice(&hasher.finish().to_ne_bytes()[..chunk.len()]);
    }
    token
}

/// One request in flight; dropping it frees the slot.
pub(crate) struct Permit(Arc<Shared>);

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.0.lock_state();
        state.in_flight = state.in_flight.saturating_sub(1);
        // A waiter registers under this lock before it waits, so checking
        // here cannot miss one; nobody waiting is the common case.
        let waited_for = state.waiters > 0;
        drop(state);
        if waited_for {
            self.0.changed.notify_all();
        }
    }
}

/// Held by a receive loop for its whole life.
pub(crate) struct ReceiverGuard(pub(crate) Arc<Shared>);

impl Drop for ReceiverGuard {
    fn drop(&mut self) {
        // A loop that unwinds would otherwise just be gone: with no loop
        // left nothing receives, and `Server::wait` waits for a stop that
        // never comes.
        if std::thread::panicking() {
            let thread = std::thread::current()
                .name()
                .unwrap_or("unnamed")
                .to_owned();
            self.0.fail(ServerError::ReceiverPanicked { thread });
        }
        self.0.receiver_exited();
    }
}
