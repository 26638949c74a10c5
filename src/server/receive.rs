//! The receive loops of the three dispatch modes, and the drain that
//! answers SHUTTING_DOWN once a stop is requested.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::sysv::{self, MessageBuf, RecvFlags, SysvError};
use crate::wire::{BODY_SIZE, REQUEST_MTYPE};

use super::commit::reply_when_durable;
use super::error::ServerError;
use super::handler::{handle_message, Handled};
use super::shared::{Permit, ReceiverGuard, Shared};

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
pub(crate) fn receive_loop(shared: Arc<Shared>, handoff: Handoff) {
    let _guard = ReceiverGuard(Arc::clone(&shared));
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
            Handoff::SpawnPerRequest => match shared.acquire() {
                Some(permit) => Some(permit),
                None => return drain(&shared, None),
            },
            Handoff::Inline => None,
        };
        let mut buf = match spare.take() {
            Some(buf) => buf,
            None => match MessageBuf::with_body_capacity(RECEIVE_BODY_BYTES) {
                Ok(buf) => buf,
                Err(error) => return shared.fail(ServerError::Receive(error)),
            },
        };
        match shared
            .queue
            .recv(REQUEST_MTYPE, &mut buf, RecvFlags::NOERROR)
        {
            Ok(_) => errors_in_a_row = 0,
            Err(error @ SysvError::QueueRemoved { .. }) => {
                if !shared.is_stopping() {
                    shared.fail(ServerError::QueueRemoved(error));
                }
                return;
            }
            Err(error) => {
                shared.counters.receive_error();
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_RECEIVE_ERRORS_IN_A_ROW {
                    return shared.fail(ServerError::Receive(error));
                }
                thread::sleep(FIRST_ERROR_PAUSE * 2u32.pow(errors_in_a_row.min(7)));
                spare = Some(buf);
                continue;
            }
        }
        if shared.is_stopping() {
            drop(permit);
            return drain(&shared, Some(buf));
        }
        shared.counters.received();
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
fn spawn_worker(shared: &Arc<Shared>, buf: MessageBuf, permit: Permit) {
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
    if let Err((_, job)) = sysv::spawn_detached(shared.limits.worker_stack_bytes, job) {
        shared.counters.spawn_failed();
        job();
    }
}

/// Handles one message and sends its reply, if it gets one: at once, or,
/// if it must wait for the journal's fdatasync, through the commit thread
/// (this thread goes back to receiving).
pub(crate) fn process(shared: &Shared, body: &[u8], shutting_down: bool) {
    let mut wait_for = None;
    let handled = handle_message(body, shutting_down, |op| {
        let (outcome, lsn) = shared.apply(op)?;
        wait_for = lsn;
        Ok(outcome)
    });
    match handled {
        Ok(Handled::Reply { to, reply, .. }) => reply_when_durable(shared, to, &reply, wait_for),
        Ok(Handled::Drop(_)) => shared.counters.dropped(),
        Err(error) => {
            if matches!(error, ServerError::Journal(_)) {
                // Its change may or may not reach the disk: no reply.
                shared.counters.withheld(1);
            }
            shared.fail(error);
        }
    }
}

/// After a stop: answers SHUTTING_DOWN to the message in hand and to every
/// request still queued, without waiting for more.
pub(crate) fn drain(shared: &Shared, mut in_hand: Option<MessageBuf>) {
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
        if shared.past_stop_deadline(Instant::now()) {
            return;
        }
        match shared.queue.recv(
            REQUEST_MTYPE,
            &mut buf,
            RecvFlags::NOWAIT | RecvFlags::NOERROR,
        ) {
            Ok(_) => answer_stopping(shared, buf.body()),
            Err(_) => return,
        }
    }
}

fn answer_stopping(shared: &Shared, body: &[u8]) {
    if body == shared.wake_token {
        return;
    }
    shared.counters.received();
    process(shared, body, true);
}
