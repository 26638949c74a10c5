//! Dispatch: the receive loops of the three dispatch modes, the drain
//! that answers SHUTTING_DOWN once a stop is requested, and the path of
//! one request: receive, handle (apply under the ledger lock), then reply
//! now or once durable. The one place that uses every other owner; none
//! of them uses it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::codec::Reply;
use crate::ids::ReplyTo;
use crate::journal::{Journal, Lsn};
use crate::ledger::Ledger;
use crate::sysv::{self, MessageBuf, Queue, Received, RecvFlags, SendFlags, SysvError};
use crate::wire::{BODY_SIZE, REQUEST_MTYPE};

use super::book::Book;
use super::config::Limits;
use super::durability::Durability;
use super::error::ServerError;
use super::handler::{handle_message, Handled};
use super::lifecycle::{Lifecycle, Permit, ReceiverGuard};
use super::reply::Replier;

/// What the receive loops work with: one owner per concern.
pub(crate) struct Dispatcher {
    pub(crate) lifecycle: Arc<Lifecycle>,
    pub(crate) replier: Arc<Replier>,
    pub(crate) book: Book,
    /// With a journal: the group commit replies wait in.
    pub(crate) durability: Option<Arc<Durability>>,
    /// Stack of each thread-per-request worker.
    worker_stack_bytes: usize,
    /// How long a receive loop polls before it blocks.
    receive_spin: Duration,
    /// Receive loops polling right now, and how many may.
    polling: AtomicUsize,
    max_polling: usize,
    /// Body of the messages shutdown sends to wake blocked receive loops:
    /// random per server, so a client's message is never mistaken for one
    /// (and is counted like any other).
    wake_token: [u8; WAKE_TOKEN_BYTES],
    /// One clone per thread-per-request worker, dropped after everything
    /// else the worker holds (its share of this state, and so of the
    /// journal and its lock): a shutdown waits for the count to fall back
    /// to 1, since a worker leaves `in_flight` before it has let go.
    pub(crate) workers: Arc<()>,
}

impl Dispatcher {
    /// The server's owners on `queue`, wired together (no thread started):
    /// `receivers` receive loops will run, the ledger is `ledger`, and with
    /// a journal, replies wait for it through the group commit.
    pub(crate) fn new(
        queue: Queue,
        limits: &Limits,
        receivers: usize,
        ledger: Ledger,
        journal: Option<Arc<Journal>>,
    ) -> Self {
        let lifecycle = Arc::new(Lifecycle::new(limits.max_in_flight, receivers));
        let replier = Arc::new(Replier::new(
            queue,
            limits.reply_timeout_ms,
            limits.stale_reply_ms,
            Arc::clone(&lifecycle),
        ));
        let durability = journal.as_ref().map(|journal| {
            Arc::new(Durability::new(
                Arc::clone(journal),
                Arc::clone(&replier),
                Arc::clone(&lifecycle),
            ))
        });
        Self {
            lifecycle,
            replier,
            book: Book::new(ledger, journal),
            durability,
            worker_stack_bytes: limits.worker_stack_bytes,
            receive_spin: Duration::from_micros(limits.receive_spin_us.into()),
            polling: AtomicUsize::new(0),
            // Polling takes a CPU: more pollers than CPUs would only take
            // turns, and take them from the workers.
            max_polling: thread::available_parallelism().map_or(1, usize::from),
            wake_token: wake_token(),
            workers: Arc::new(()),
        }
    }

    pub(crate) fn queue(&self) -> Queue {
        self.replier.queue
    }

    /// Receives the next request into `buf`: polls for up to
    /// `receive_spin` while fewer loops than CPUs poll, then blocks in
    /// msgrcv(2) (shutdown's wake-up messages end either wait). A request
    /// that comes while the loop polls costs no wake-up: on a 2-vCPU VM,
    /// `pool:2` with one client made 3.1 to 4.0 times the calls with a 50 µs poll
    /// as when always blocking (`docs/benchmarks.md`).
    fn receive(&self, buf: &mut MessageBuf) -> Result<Received, SysvError> {
        let _receiving = self.lifecycle.receiving();
        let max = self.max_polling;
        let may_poll = !self.receive_spin.is_zero()
            && self
                .polling
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok();
        if may_poll {
            let polled = self.queue().recv_polling(
                REQUEST_MTYPE,
                buf,
                RecvFlags::NOERROR,
                self.receive_spin,
            );
            self.polling.fetch_sub(1, Ordering::Relaxed);
            if let Some(received) = polled? {
                return Ok(received);
            }
        }
        self.queue()
            .recv_flags(REQUEST_MTYPE, buf, RecvFlags::NOERROR)
    }

    /// The body of shutdown's wake-up messages.
    pub(crate) fn wake_token(&self) -> [u8; WAKE_TOKEN_BYTES] {
        self.wake_token
    }

    /// Sends one wake-up to a receive loop blocked in msgrcv(2).
    pub(crate) fn wake_one(&self) {
        let _ = self
            .queue()
            .send_flags(REQUEST_MTYPE, &self.wake_token, SendFlags::NOWAIT);
    }

    /// Sends `reply` now, or once `wait_for` is durable.
    fn reply(&self, to: ReplyTo, reply: &Reply, wait_for: Option<Lsn>) {
        match (&self.durability, wait_for) {
            (Some(durability), Some(lsn)) => durability.reply_when_durable(to, reply, lsn),
            _ => self.replier.send(to, reply),
        }
    }
}

const WAKE_TOKEN_BYTES: usize = 16;

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

/// Receive buffer body size: larger than a valid body, so that with
/// `MSG_NOERROR` an over-long message arrives truncated to 41+ bytes and is
/// seen as over-long, and never wedges the queue (PROTOCOL.md).
pub(crate) const RECEIVE_BODY_BYTES: usize = BODY_SIZE + 24;

/// Receive errors in a row (other than the queue's removal) after which the
/// server gives up rather than spin on a broken queue.
const MAX_RECEIVE_ERRORS_IN_A_ROW: u32 = 100;
/// Pause after a receive error, doubled on each one in a row up to 128 ms
/// (2^7 times this).
const FIRST_ERROR_PAUSE: Duration = Duration::from_millis(1);

/// Whether the loop hands each message to a new thread or handles it inline.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handoff {
    SpawnPerRequest,
    Inline,
}

/// One receive loop: runs until a stop is requested (then drains) or the
/// queue fails for good.
pub(crate) fn receive_loop(shared: Arc<Dispatcher>, handoff: Handoff) {
    let _guard = ReceiverGuard(Arc::clone(&shared.lifecycle));
    let mut errors_in_a_row = 0u32;
    // The buffer to receive into next. Pool and sequential loops handle a
    // message in place and keep their one buffer; thread-per-request moves
    // each filled buffer into its worker and allocates the next one.
    let mut spare: Option<MessageBuf> = None;
    loop {
        // Thread-per-request takes its in-flight slot *before* receiving:
        // at the limit it stops taking messages off the queue, so clients
        // feel the back-pressure in their msgsnd(2).
        let permit = match handoff {
            Handoff::SpawnPerRequest => match shared.lifecycle.acquire() {
                Some((permit, in_flight)) => {
                    shared.replier.counters.in_flight(in_flight as u64);
                    Some(permit)
                }
                None => return drain(&shared, None),
            },
            Handoff::Inline => None,
        };
        let mut buf = match spare.take() {
            Some(buf) => buf,
            None => match MessageBuf::with_body_capacity(RECEIVE_BODY_BYTES) {
                Ok(buf) => buf,
                Err(error) => return shared.lifecycle.fail(ServerError::Receive(error)),
            },
        };
        match shared.receive(&mut buf) {
            Ok(_) => errors_in_a_row = 0,
            Err(error @ SysvError::QueueRemoved { .. }) => {
                if !shared.lifecycle.is_stopping() {
                    shared.lifecycle.fail(ServerError::QueueRemoved(error));
                }
                return;
            }
            Err(error) => {
                shared.replier.counters.receive_error();
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_RECEIVE_ERRORS_IN_A_ROW {
                    return shared.lifecycle.fail(ServerError::Receive(error));
                }
                thread::sleep(FIRST_ERROR_PAUSE * 2u32.pow(errors_in_a_row.min(7)));
                spare = Some(buf);
                continue;
            }
        }
        if shared.lifecycle.is_stopping() {
            drop(permit);
            return drain(&shared, Some(buf));
        }
        shared.replier.counters.received();
        match permit {
            Some(permit) => spawn_worker(&shared, buf, permit),
            None => {
                process(&shared, buf.body(), false);
                spare = Some(buf);
            }
        }
    }
}

/// Moves the message into a new detached thread, as the original C server
/// moved its `malloc`ed copy: the buffer and the in-flight slot travel with
/// the closure and are freed when the thread ends.
///
/// The thread is a bare pthread ([`sysv::spawn_detached`]): std's threads
/// cost 7 more syscalls each, 3 of them under the process's memory-map
/// lock, which made this mode slower than the C original. When the spawn
/// fails the closure comes back unrun, and the loop processes the message
/// inline rather than lose it.
fn spawn_worker(shared: &Arc<Dispatcher>, buf: MessageBuf, permit: Permit) {
    let worker_shared = Arc::clone(shared);
    let alive = Arc::clone(&shared.workers);
    let job = move || {
        process(&worker_shared, buf.body(), false);
        drop(buf);
        drop(permit);
        drop(worker_shared);
        // Last: this thread holds nothing of the server any more.
        drop(alive);
    };
    if let Err((_, job)) = sysv::spawn_detached(shared.worker_stack_bytes, job) {
        shared.replier.counters.spawn_failed();
        job();
    }
}

/// Handles one message and sends its reply, if it gets one: at once, or,
/// if it must wait for the journal's fdatasync, through the group commit
/// (this thread goes back to receiving). The log position to wait for
/// comes back from the handler with the reply.
pub(crate) fn process(shared: &Dispatcher, body: &[u8], shutting_down: bool) {
    match handle_message(body, shutting_down, |op| shared.book.apply(op)) {
        Ok(Handled::Reply {
            to,
            reply,
            wait_for,
            ..
        }) => shared.reply(to, &reply, wait_for),
        Ok(Handled::Drop(_)) => shared.replier.counters.dropped(),
        Err(error) => {
            if matches!(error, ServerError::Journal(_)) {
                // Its change may or may not reach the disk: no reply.
                shared.replier.counters.withheld(1);
            }
            shared.lifecycle.fail(error);
        }
    }
}

/// After a stop: answers SHUTTING_DOWN to the message in hand and to every
/// request still queued, without waiting for more.
pub(crate) fn drain(shared: &Dispatcher, mut in_hand: Option<MessageBuf>) {
    if let Some(buf) = &in_hand {
        answer_stopping(shared, buf.body());
    }
    let mut buf = match in_hand.take() {
        Some(buf) => buf,
        None => match MessageBuf::with_body_capacity(RECEIVE_BODY_BYTES) {
            Ok(buf) => buf,
            Err(_) => return,
        },
    };
    // A client flooding the queue could keep this loop busy for ever; the
    // queue holds at most `msg_qbytes` messages, so a few times that bounds
    // the drain while still emptying whatever was queued when it began.
    // Past the shutdown's deadline the rest is left to the queue's removal.
    for _ in 0..(1 << 18) {
        if shared.lifecycle.past_stop_deadline(Instant::now()) {
            return;
        }
        match shared.queue().recv_flags(
            REQUEST_MTYPE,
            &mut buf,
            RecvFlags::NOWAIT | RecvFlags::NOERROR,
        ) {
            Ok(_) => answer_stopping(shared, buf.body()),
            Err(_) => return,
        }
    }
}

fn answer_stopping(shared: &Dispatcher, body: &[u8]) {
    if body == shared.wake_token {
        return;
    }
    shared.replier.counters.received();
    process(shared, body, true);
}
