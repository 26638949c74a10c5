//! The server's life: whether it is stopping and by when, the first
//! failure, the requests in flight (permits) and the receive loops still
//! running: what shutdown waits on. Nothing here touches the queue, the
//! ledger or the disk.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::error::ServerError;

pub(crate) struct Lifecycle {
    /// Requests in flight at once in thread-per-request mode.
    max_in_flight: usize,
    /// Mirrors `State::stopping` for the request path, which must not take
    /// the state lock just to read it.
    stopping: AtomicBool,
    /// Receive loops waiting for a request right now (polling or blocked).
    receiving: AtomicUsize,
    state: Mutex<State>,
    /// In-flight slots, receive loops and stops: what `acquire` and
    /// `wait_idle` wait for.
    changed: Condvar,
    /// Stops only: what `Server::wait` waits on for the server's whole life,
    /// kept apart so that it is not a waiter every finished request must
    /// notify.
    stopped: Condvar,
}

/// A receive loop waiting for a request ([`Lifecycle::receiving`]).
pub(crate) struct Receiving<'a>(&'a AtomicUsize);

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

impl Lifecycle {
    /// A server about to start `receivers` receive loops.
    pub(crate) fn new(max_in_flight: usize, receivers: usize) -> Self {
        Self {
            max_in_flight,
            stopping: AtomicBool::new(false),
            receiving: AtomicUsize::new(0),
            state: Mutex::new(State {
                receivers,
                ..State::default()
            }),
            changed: Condvar::new(),
            stopped: Condvar::new(),
        }
    }

    /// Counts the calling receive loop as waiting for a request while the
    /// guard lives.
    pub(crate) fn receiving(&self) -> Receiving<'_> {
        self.receiving.fetch_add(1, Ordering::Relaxed);
        Receiving(&self.receiving)
    }

    /// Whether some receive loop is waiting for a request: a worker that
    /// blocks (in an fsync, say) then stops nobody from being served.
    pub(crate) fn a_loop_is_receiving(&self) -> bool {
        self.receiving.load(Ordering::Relaxed) > 0
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

    /// Like [`Lifecycle::wait_idle`] for the receive loops alone, waking at
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
    /// Also returns how many are in flight with it.
    pub(crate) fn acquire(self: &Arc<Self>) -> Option<(Permit, usize)> {
        let mut state = self.lock_state();
        while state.in_flight >= self.max_in_flight && !state.stopping {
            state = self.wait(state);
        }
        if state.stopping {
            return None;
        }
        state.in_flight += 1;
        Some((Permit(Arc::clone(self)), state.in_flight))
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

/// One request in flight; dropping it frees the slot.
pub(crate) struct Permit(Arc<Lifecycle>);

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
pub(crate) struct ReceiverGuard(pub(crate) Arc<Lifecycle>);

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
