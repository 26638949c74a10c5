//! A test double of the server with a concurrency bug, to prove that the
//! linearizability checker catches one.
//!
//! It serves a private queue as the real server does — worker threads
//! receive requests, [`handle_message`] decodes them and calls back into a
//! real [`Ledger`], the reply goes to the request's `reply_to` — except
//! that [`Bug`] breaks the one rule that makes the server linearizable:
//! every request reads and writes the ledger inside one critical section.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use guichet::ledger::Outcome;
use guichet::server::{handle_message, Handled};
use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Queue};
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};
use guichet::{Ledger, Operation};

/// What the double gets wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bug {
    /// Nothing: one lock around each request, like the real server.
    None,
    /// QUERY is answered from a copy of the ledger refreshed only on every
    /// [`STALE_REFRESH`]th query (a read cache nobody invalidates).
    StaleQueries,
    /// RESERVE and CANCEL copy the ledger under the lock, apply the request
    /// to the copy with the lock released, then write the copy back: two
    /// concurrent writes each start from the same state and the second
    /// overwrites the first (a lost update, and with it an oversell).
    EarlyUnlock,
}

/// How often [`Bug::StaleQueries`] refreshes its copy.
pub const STALE_REFRESH: u64 = 8;

struct State {
    bug: Bug,
    ledger: Mutex<Ledger>,
    snapshot: Mutex<Ledger>,
    queries: AtomicU64,
}

impl State {
    fn apply(&self, operation: &Operation) -> Outcome {
        match (self.bug, operation) {
            (Bug::StaleQueries, Operation::Query { .. }) => {
                if self.queries.fetch_add(1, Ordering::Relaxed) % STALE_REFRESH == 0 {
                    let fresh = self.ledger.lock().unwrap().clone();
                    *self.snapshot.lock().unwrap() = fresh;
                }
                self.snapshot.lock().unwrap().apply(operation)
            }
            (Bug::EarlyUnlock, Operation::Reserve { .. } | Operation::Cancel { .. }) => {
                let mut copy = self.ledger.lock().unwrap().clone();
                let outcome = copy.apply(operation);
                // Other workers run here: the window the bug needs.
                thread::yield_now();
                *self.ledger.lock().unwrap() = copy;
                outcome
            }
            _ => self.ledger.lock().unwrap().apply(operation),
        }
    }
}

/// A running double. Dropping it removes its queue and joins its workers.
pub struct FakeServer {
    queue: Option<OwnedQueue>,
    workers: Vec<JoinHandle<()>>,
    state: Arc<State>,
}

impl FakeServer {
    /// Serves events of these capacities on a new private queue with
    /// `workers` threads.
    pub fn spawn(capacities: &[u32], workers: usize, bug: Bug) -> Self {
        let events = capacities
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("e{}", i + 1), c));
        let ledger = Ledger::new(events, Ledger::DEFAULT_MAX_BOOKINGS).unwrap();
        let state = Arc::new(State {
            bug,
            snapshot: Mutex::new(ledger.clone()),
            ledger: Mutex::new(ledger),
            queries: AtomicU64::new(0),
        });
        let owned = OwnedQueue::create_private(Mode::DEFAULT).unwrap();
        let workers = (0..workers)
            .map(|_| {
                let (queue, state) = (owned.queue(), Arc::clone(&state));
                thread::spawn(move || serve(queue, &state))
            })
            .collect();
        Self {
            queue: Some(owned),
            workers,
            state,
        }
    }

    /// The double's queue, where clients send.
    pub fn queue(&self) -> Queue {
        self.queue.as_ref().expect("running").queue()
    }

    /// The ledger as the double holds it now.
    pub fn ledger(&self) -> Ledger {
        self.state.ledger.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Removing the queue fails every blocked msgrcv(2) with EIDRM,
        // which ends the workers.
        if let Some(owned) = self.queue.take() {
            owned.remove().unwrap();
        }
        for worker in self.workers.drain(..) {
            worker.join().unwrap();
        }
    }
}

fn serve(queue: Queue, state: &State) {
    let mut buf = MessageBuf::truncating(BODY_SIZE + 24).unwrap();
    while queue.recv(REQUEST_MTYPE, &mut buf, None).is_ok() {
        let handled = handle_message(buf.body(), false, |op| Ok::<_, Infallible>(state.apply(op)));
        if let Ok(Handled::Reply { to, reply, .. }) = handled {
            // The queue may be gone already: then so is the client.
            let _ = queue.send(to.get(), &reply.encode(), None);
        }
    }
}
