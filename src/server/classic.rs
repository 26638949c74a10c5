//! Serving the classic protocol (`CLASSIC.md`) on a queue of its own,
//! beside wire v1, over the same ledger.
//!
//! One thread receives and answers classic requests one at a time, each
//! kind (list, reservation) in arrival order: replies go to fixed mtypes
//! (10, 11), so answering in order is what keeps each mtype first-in
//! first-out, and clients that wait in the order they sent get their own
//! replies. A reservation goes through
//! the same `Book::apply` as a wire v1 RESERVE (server-assigned id), so
//! the ledger's invariants and the journal cover both protocols; with a
//! journal the thread waits for its change to be durable before it sends
//! the OK, through the server's one group commit (`Durability::wait_durable`).
//!
//! A full queue never blocks it for long: a reply waits at most
//! `reply_timeout_ms` for room, then the oldest unread reply of its mtype
//! (of the other reply mtype if it has none) is discarded to make room
//! (counted), and while the queue stays full the next replies discard at
//! once. A second thread watches for the wedge the
//! reply path cannot see (unread replies fill the queue, so no request
//! gets in and nothing is sent): full and idle for `reply_timeout_ms`, it
//! discards the oldest unread reply.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::classic::{
    decode_classic_request, listing_text, ClassicReply, ClassicRequest, ReplyKind, ReplyText,
    ReserveText, MTYPE_LIST, MTYPE_LIST_REPLY, MTYPE_RESERVE, MTYPE_RESERVE_REPLY, RECEIVE_MSGTYP,
    REPLY_BODY_SIZE, REQUEST_BODY_SIZE,
};
use crate::codec::Operation;
use crate::ids::EventId;
use crate::journal::Lsn;
use crate::ledger::Outcome;
use crate::sysv::SysvError;
use crate::sysv::{Key, MessageBuf, Mode, OwnedQueue, Queue, QueueId, RecvFlags, SendFlags};

use super::dispatch::Dispatcher;
use super::error::ServerError;
use super::handler::Applied;
use super::stats::ClassicStats;

/// Receive buffer: larger than a request, so that with `MSG_NOERROR` an
/// over-long message arrives over-long (and is dropped), never wedging the
/// queue as the original's `E2BIG` loop did.
const RECEIVE_BODY_BYTES: usize = REQUEST_BODY_SIZE + 48;
/// Receive errors in a row (other than the queue's removal) after which
/// the server stops rather than spin on a broken queue.
const MAX_RECEIVE_ERRORS_IN_A_ROW: u32 = 100;
const FIRST_ERROR_PAUSE: Duration = Duration::from_millis(1);
/// A reply waiting for room retries after this, doubling up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(50);
const MAX_PAUSE: Duration = Duration::from_millis(5);
/// Most unread replies one reply discards to make room (another sender,
/// a client, may take the room first).
const MAX_DISCARDS_PER_REPLY: u32 = 4;
/// How often the sweeper looks at the queue.
const SWEEP_PERIOD: Duration = Duration::from_millis(50);
/// At shutdown: how often a wake-up is re-sent, how long unread replies may
/// sit untouched before the queue is removed anyway.
const WAKE_POLL: Duration = Duration::from_millis(5);
const LINGER_IDLE: Duration = Duration::from_millis(100);
const LINGER_POLL: Duration = Duration::from_millis(1);

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    listings_sent: AtomicU64,
    reservations_sent: AtomicU64,
    dropped: AtomicU64,
    quits_ignored: AtomicU64,
    replies_discarded: AtomicU64,
    replies_abandoned: AtomicU64,
    replies_withheld: AtomicU64,
    receive_errors: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> ClassicStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClassicStats {
            received: load(&self.received),
            listings_sent: load(&self.listings_sent),
            reservations_sent: load(&self.reservations_sent),
            dropped: load(&self.dropped),
            quits_ignored: load(&self.quits_ignored),
            replies_discarded: load(&self.replies_discarded),
            replies_abandoned: load(&self.replies_abandoned),
            replies_withheld: load(&self.replies_withheld),
            receive_errors: load(&self.receive_errors),
        }
    }
}

/// What the classic threads share.
struct Ctx {
    queue: Queue,
    counters: Counters,
    /// Event names by index (event `i + 1`): fixed once the ledger exists.
    names: Vec<String>,
    /// The serve loop has returned.
    done: AtomicBool,
}

/// The classic side of a running server: its queue, its threads and its
/// counters (kept after shutdown, for the final [`ClassicStats`]).
pub(crate) struct ClassicServing {
    ctx: Arc<Ctx>,
    key: Key,
    running: Option<Running>,
}

struct Running {
    queue: OwnedQueue,
    serve: JoinHandle<()>,
    sweeper: Option<JoinHandle<()>>,
}

/// Creates the classic queue: exclusively under `key`, or private.
pub(crate) fn create_queue(key: Key, mode: Mode) -> Result<OwnedQueue, ServerError> {
    let created = if key.is_private() {
        OwnedQueue::create_private(mode)
    } else {
        OwnedQueue::create_exclusive(key, mode)
    };
    created.map_err(|error| match error {
        SysvError::Exists { .. } => ServerError::ClassicQueueExists { key },
        error => ServerError::CreateQueue(error),
    })
}

impl ClassicServing {
    /// Starts the serve loop and the sweeper on `queue`.
    pub(crate) fn start(
        shared: &Arc<Dispatcher>,
        queue: OwnedQueue,
        key: Key,
    ) -> Result<Self, ServerError> {
        let names = shared
            .book
            .with_ledger(|l| l.events().map(|e| e.name.to_owned()).collect())?;
        let ctx = Arc::new(Ctx {
            queue: queue.queue(),
            counters: Counters::default(),
            names,
            done: AtomicBool::new(false),
        });
        let (s, c) = (Arc::clone(shared), Arc::clone(&ctx));
        let serve = thread::Builder::new()
            .name("guichet-classic".into())
            .spawn(move || serve_loop(&s, &c))
            .map_err(ServerError::Spawn)?;
        let mut serving = Self {
            ctx: Arc::clone(&ctx),
            key,
            running: Some(Running {
                queue,
                serve,
                sweeper: None,
            }),
        };
        let (s, c) = (Arc::clone(shared), ctx);
        match thread::Builder::new()
            .name("guichet-classic-sweep".into())
            .spawn(move || sweep_loop(&s, &c))
        {
            Ok(handle) => {
                if let Some(running) = &mut serving.running {
                    running.sweeper = Some(handle);
                }
                Ok(serving)
            }
            Err(error) => {
                shared.lifecycle.request_stop();
                let _ = serving.stop(shared, Instant::now() + Duration::from_secs(1));
                Err(ServerError::Spawn(error))
            }
        }
    }

    pub(crate) fn stats(&self) -> ClassicStats {
        self.ctx.counters.snapshot()
    }

    pub(crate) fn queue_id(&self) -> QueueId {
        self.ctx.queue.id()
    }

    pub(crate) fn key(&self) -> Key {
        self.key
    }

    /// Stops the classic side (the server's stop must already be
    /// requested): wakes the serve loop, which answers what is queued and
    /// returns; waits while clients still read their replies; removes the
    /// queue. Bounded by `deadline`.
    pub(crate) fn stop(
        &mut self,
        shared: &Dispatcher,
        deadline: Instant,
    ) -> Result<(), ServerError> {
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        if let Some(sweeper) = &running.sweeper {
            sweeper.thread().unpark();
        }
        let wake = shared.wake_token();
        while !self.ctx.done.load(Ordering::Acquire) && Instant::now() < deadline {
            // A queue full of unread replies has no room for the wake-up:
            // they are about to be destroyed with the queue anyway.
            if let Err(SysvError::TimedOut { .. }) =
                running
                    .queue
                    .send_flags(MTYPE_LIST, &wake, SendFlags::NOWAIT)
            {
                discard_any_reply(&self.ctx);
            }
            let until = Instant::now() + WAKE_POLL;
            while !self.ctx.done.load(Ordering::Acquire) && Instant::now() < until {
                thread::sleep(LINGER_POLL);
            }
        }
        linger(&running.queue, deadline);
        let removed = running.queue.remove();
        // Both return promptly once the queue is gone; a serve loop stuck
        // past the deadline (an fdatasync that hangs) is left to finish.
        for handle in [Some(running.serve), running.sweeper].into_iter().flatten() {
            if handle.is_finished() || self.ctx.done.load(Ordering::Acquire) {
                let _ = handle.join();
            }
        }
        removed.map_err(ServerError::RemoveQueue)
    }
}

/// Waits while clients still take replies from the classic queue, until
/// nobody has read one for [`LINGER_IDLE`] or `deadline` passes.
fn linger(queue: &Queue, deadline: Instant) {
    let mut last_count = u64::MAX;
    let mut last_progress = Instant::now();
    loop {
        let Ok(stat) = queue.stat() else {
            return;
        };
        let now = Instant::now();
        if stat.messages == 0 || now >= deadline {
            return;
        }
        if stat.messages < last_count {
            last_count = stat.messages;
            last_progress = now;
        } else if now.duration_since(last_progress) >= LINGER_IDLE {
            return;
        }
        thread::sleep(LINGER_POLL);
    }
}

/// Marks the loop as returned, and a panic as the server's failure.
struct LoopGuard<'a>(&'a Dispatcher, &'a Ctx);

impl Drop for LoopGuard<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.lifecycle.fail(ServerError::ReceiverPanicked {
                thread: "guichet-classic".into(),
            });
        }
        self.1.done.store(true, Ordering::Release);
    }
}

/// The serve loop: until a stop is requested (then it drains), or the
/// queue fails for good.
///
/// It receives with `msgtyp = -9`, as the original did, so replies (10,
/// 11) are never read back; that takes the lowest mtype first, so after a
/// list it looks for a reservation first, and after a reservation for a
/// list: each kind is taken in arrival order, and a stream of one kind
/// cannot starve the other.
fn serve_loop(shared: &Dispatcher, ctx: &Ctx) {
    let _guard = LoopGuard(shared, ctx);
    let mut buf = match MessageBuf::with_body_capacity(RECEIVE_BODY_BYTES) {
        Ok(buf) => buf,
        Err(error) => return shared.lifecycle.fail(ServerError::Receive(error)),
    };
    let mut full = false;
    let mut prefer = None;
    let mut errors_in_a_row = 0u32;
    loop {
        let preferred = prefer.take().and_then(|mtype| {
            let flags = RecvFlags::NOWAIT | RecvFlags::NOERROR;
            ctx.queue.recv_flags(mtype, &mut buf, flags).ok()
        });
        let received = match preferred {
            Some(received) => Ok(received),
            None => ctx
                .queue
                .recv_flags(RECEIVE_MSGTYP, &mut buf, RecvFlags::NOERROR),
        };
        let mtype = match received {
            Ok(received) => received.mtype,
            Err(error @ SysvError::QueueRemoved { .. }) => {
                if !shared.lifecycle.is_stopping() {
                    shared.lifecycle.fail(ServerError::QueueRemoved(error));
                }
                return;
            }
            Err(error) => {
                bump(&ctx.counters.receive_errors);
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_RECEIVE_ERRORS_IN_A_ROW {
                    return shared.lifecycle.fail(ServerError::Receive(error));
                }
                thread::sleep(FIRST_ERROR_PAUSE * 2u32.pow(errors_in_a_row.min(7)));
                continue;
            }
        };
        errors_in_a_row = 0;
        prefer = match mtype {
            MTYPE_LIST => Some(MTYPE_RESERVE),
            MTYPE_RESERVE => Some(MTYPE_LIST),
            _ => None,
        };
        let stopping = shared.lifecycle.is_stopping();
        handle(shared, ctx, mtype, buf.body(), &mut full);
        if stopping {
            return drain(shared, ctx, &mut buf, &mut full);
        }
    }
}

/// After a stop: answers what is still queued (a reservation is refused,
/// "Serveur indisponible"), without waiting for more.
fn drain(shared: &Dispatcher, ctx: &Ctx, buf: &mut MessageBuf, full: &mut bool) {
    // The queue holds at most `msg_qbytes` messages: a few times that
    // bounds the drain against a client that keeps sending.
    for _ in 0..(1 << 16) {
        if shared.lifecycle.past_stop_deadline(Instant::now()) {
            return;
        }
        match ctx
            .queue
            .recv_flags(RECEIVE_MSGTYP, buf, RecvFlags::NOWAIT | RecvFlags::NOERROR)
        {
            Ok(received) => handle(shared, ctx, received.mtype, buf.body(), full),
            Err(_) => return,
        }
    }
}

/// Handles one message: decodes it, answers it if it is a list or a
/// reservation, counts it otherwise.
fn handle(shared: &Dispatcher, ctx: &Ctx, mtype: libc::c_long, body: &[u8], full: &mut bool) {
    if mtype == MTYPE_LIST && body == shared.wake_token() {
        return;
    }
    bump(&ctx.counters.received);
    let request = match decode_classic_request(mtype, body) {
        Ok(request) => request,
        Err(_) => return bump(&ctx.counters.dropped),
    };
    let answered = match request {
        ClassicRequest::Quit => return bump(&ctx.counters.quits_ignored),
        ClassicRequest::List => listing(shared).map(|text| ClassicReply {
            kind: ReplyKind::Listing,
            text,
        }),
        ClassicRequest::Reserve { id_spec, nb_places } => reserve(shared, ctx, id_spec, nb_places)
            .map(|text| ClassicReply {
                kind: ReplyKind::Reservation,
                text,
            }),
    };
    match answered {
        Ok(reply) => send(shared, ctx, &reply, full),
        Err(error) => {
            if matches!(error, ServerError::Journal(_)) {
                bump(&ctx.counters.replies_withheld);
            }
            shared.lifecycle.fail(error);
        }
    }
}

/// The listing: one snapshot of every event, taken under the ledger lock,
/// sent once everything it may show is durable.
fn listing(shared: &Dispatcher) -> Result<ReplyText, ServerError> {
    let text = shared
        .book
        .with_ledger(|l| listing_text(l.events().map(|e| (e.name, e.seats.remaining))))?;
    if let Some(durability) = &shared.durability {
        // Read after the lock is released: at least what was appended when
        // the snapshot was taken, so waiting for it is enough.
        let journal = durability.journal();
        let appended = journal.appended();
        if journal.is_failed() || journal.durable() < appended {
            durability.wait_durable(appended)?;
        }
    }
    Ok(text)
}

/// A reservation: checked, applied as a RESERVE with a server-assigned id,
/// and made durable before its text is returned.
fn reserve(
    shared: &Dispatcher,
    ctx: &Ctx,
    id_spec: i32,
    nb_places: i32,
) -> Result<ReplyText, ServerError> {
    let event = u32::try_from(id_spec)
        .ok()
        .and_then(|i| i.checked_add(1))
        .and_then(EventId::new)
        .filter(|e| (e.get() as usize) <= ctx.names.len());
    let Some(event) = event else {
        return Ok(ReserveText::InvalidId.text());
    };
    let Some(quantity) = u32::try_from(nb_places).ok().and_then(NonZeroU32::new) else {
        return Ok(ReserveText::InvalidCount.text());
    };
    // Refused before the ledger: nothing is booked, so ECHEC is the truth.
    let journal_failed = shared
        .durability
        .as_ref()
        .is_some_and(|d| d.journal().is_failed());
    if shared.lifecycle.is_stopping() || journal_failed {
        return Ok(ReserveText::Unavailable.text());
    }
    let operation = Operation::Reserve {
        event,
        quantity,
        booking: None,
    };
    let Applied { outcome, wait_for } = shared.book.apply(&operation)?;
    wait_durable(shared, wait_for)?;
    let name = |event: EventId| {
        ctx.names
            .get(event.get() as usize - 1)
            .map_or("", String::as_str)
    };
    let text = match outcome {
        Outcome::Reserved {
            event, quantity, ..
        } => ReserveText::Booked {
            seats: quantity.get(),
            name: name(event),
        },
        Outcome::SoldOut { seats, .. } => ReserveText::SoldOut {
            remaining: seats.remaining,
        },
        Outcome::UnknownEvent { .. } => ReserveText::InvalidId,
        _ => ReserveText::Unavailable,
    };
    Ok(text.text())
}

fn wait_durable(shared: &Dispatcher, lsn: Option<Lsn>) -> Result<(), ServerError> {
    match (lsn, &shared.durability) {
        (Some(lsn), Some(durability)) => Ok(durability.wait_durable(lsn)?),
        _ => Ok(()),
    }
}

/// Sends `reply`, never blocking for good: waits up to `reply_timeout_ms`
/// for room (none at all while the queue stays full), then discards the
/// oldest unread reply of the same mtype (else of the other reply mtype)
/// to make room, or gives up.
fn send(shared: &Dispatcher, ctx: &Ctx, reply: &ClassicReply, full: &mut bool) {
    let body = reply.encode();
    let mtype = reply.kind.mtype();
    let mut deadline = None;
    let mut pause = FIRST_PAUSE;
    let mut discards = 0;
    loop {
        let error = match ctx.queue.send_flags(mtype, &body, SendFlags::NOWAIT) {
            Ok(()) => {
                let sent = match reply.kind {
                    ReplyKind::Listing => &ctx.counters.listings_sent,
                    ReplyKind::Reservation => &ctx.counters.reservations_sent,
                };
                bump(sent);
                // Room without discarding: the queue is not staying full.
                *full = discards > 0;
                return;
            }
            Err(error) => error,
        };
        if !matches!(error, SysvError::TimedOut { .. }) {
            bump(&ctx.counters.replies_abandoned);
            if matches!(error, SysvError::QueueRemoved { .. }) && !shared.lifecycle.is_stopping() {
                shared.lifecycle.fail(ServerError::QueueRemoved(error));
            }
            return;
        }
        let now = Instant::now();
        let timeout = shared.replier.reply_timeout();
        let until = *deadline.get_or_insert(now + timeout);
        let until = shared
            .lifecycle
            .stop_deadline()
            .map_or(until, |stop| stop.min(until));
        if *full || now >= until {
            // The oldest unread reply of its mtype (CLASSIC.md); if it has
            // none, of the other: a reservation's OK must not be lost to a
            // queue full of listings nobody reads.
            let other = MTYPE_LIST_REPLY + MTYPE_RESERVE_REPLY - mtype;
            if discards < MAX_DISCARDS_PER_REPLY
                && (discard_oldest(ctx, mtype) || discard_oldest(ctx, other))
            {
                discards += 1;
                *full = true;
                continue;
            }
            return bump(&ctx.counters.replies_abandoned);
        }
        thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

/// Removes the oldest unread message of `mtype` (10 or 11); returns whether
/// there was one.
fn discard_oldest(ctx: &Ctx, mtype: libc::c_long) -> bool {
    let Ok(mut buf) = MessageBuf::with_body_capacity(REPLY_BODY_SIZE) else {
        return false;
    };
    let taken = ctx
        .queue
        .recv_flags(mtype, &mut buf, RecvFlags::NOWAIT | RecvFlags::NOERROR)
        .is_ok();
    if taken {
        bump(&ctx.counters.replies_discarded);
    }
    taken
}

fn discard_any_reply(ctx: &Ctx) -> bool {
    discard_oldest(ctx, MTYPE_LIST_REPLY) || discard_oldest(ctx, MTYPE_RESERVE_REPLY)
}

/// Until the server stops: when unread replies leave no room for a request
/// and nothing has been received for `reply_timeout_ms`, discards the
/// oldest unread reply (a listing's first), one per period, so that a
/// client's request gets in.
fn sweep_loop(shared: &Dispatcher, ctx: &Ctx) {
    let request_bytes = REQUEST_BODY_SIZE as u64;
    let timeout = shared.replier.reply_timeout();
    let mut last_received = u64::MAX;
    let mut wedged_since: Option<Instant> = None;
    loop {
        thread::park_timeout(SWEEP_PERIOD);
        if shared.lifecycle.is_stopping() {
            return;
        }
        let received = ctx.counters.received.load(Ordering::Relaxed);
        let idle = received == last_received;
        last_received = received;
        match ctx.queue.stat() {
            // Linux caps the message count at `msg_qbytes` too.
            Ok(stat)
                if idle
                    && (stat.bytes + request_bytes > stat.max_bytes
                        || stat.messages + 1 > stat.max_bytes) =>
            {
                let now = Instant::now();
                let since = *wedged_since.get_or_insert(now);
                if now.duration_since(since) >= timeout {
                    discard_any_reply(ctx);
                    wedged_since = None;
                }
            }
            Ok(_) => wedged_since = None,
            Err(SysvError::QueueRemoved { .. }) => return,
            Err(_) => {}
        }
    }
}
