//! Sending replies without ever blocking for good, and making room in a
//! queue that replies nobody reads have filled.
//!
//! A reply goes out with `IPC_NOWAIT`. When the queue is full, the sender
//! purges replies left for clients that are gone (their pid no longer
//! exists) or that stopped reading (nothing sent to their tag for
//! `stale_reply_ms`), then retries with a growing pause until
//! `reply_timeout_ms` (or the shutdown's deadline), and finally abandons
//! the reply and counts it; a reply to a dead client is abandoned at once
//! when nothing can be purged. A dead client can therefore hold at most a
//! full queue's worth of replies, and only until the next reply needs the
//! room, or until [`sweep_loop`] sees the queue full and idle.
//!
//! The tags answered are remembered up to [`MAX_TRACKED_REPLY_TAGS`]; past
//! that the oldest are forgotten only together with their unread replies,
//! since a reply whose tag is forgotten could never be purged. Messages
//! whose type the server never answered are never purged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::codec::Reply;
use crate::ids::ReplyTo;
use crate::sysv::{self, MessageBuf, RecvFlags, SendFlags, SysvError};
use crate::wire::BODY_SIZE;

use super::config::MAX_TRACKED_REPLY_TAGS;
use super::error::ServerError;
use super::shared::Shared;

/// First pause after a full queue; doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_micros(50);
const MAX_PAUSE: Duration = Duration::from_millis(5);
/// Most messages removed for one tag in one purge: a queue never holds
/// more messages than its byte limit (Linux caps both at `msg_qbytes`),
/// 16 KiB by default.
const MAX_PURGE_PER_TAG: usize = 1 << 16;

/// Reply tags recently answered, with when; the candidates for a purge.
#[derive(Default)]
pub(crate) struct ReplyTags {
    sent: Mutex<HashMap<ReplyTo, Instant>>,
    /// Held while purging so that one thread purges and the others retry.
    purging: Mutex<()>,
    /// Replies waiting for room right now. Each purges for itself and
    /// retries at once, before a blocked client sender can take the room.
    waiting: AtomicUsize,
}

/// Counts one reply as waiting for room while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReplyTags {
    /// Remembers that a reply just went to `to`; returns how many replies
    /// it purged to stay within [`MAX_TRACKED_REPLY_TAGS`].
    ///
    /// Only a tracked tag's replies can ever be purged, so a tag is never
    /// left untracked while replies of its may still be queued: past the
    /// limit, the quarter of tags answered longest ago is forgotten and
    /// whatever replies of theirs are still unread are purged (they have
    /// waited while tens of thousands of other tags were answered).
    fn record(&self, shared: &Shared, to: ReplyTo, now: Instant) -> u64 {
        let evicted: Vec<(Instant, ReplyTo)> = {
            let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
            sent.insert(to, now);
            if sent.len() <= MAX_TRACKED_REPLY_TAGS {
                return 0;
            }
            let mut by_age: Vec<(Instant, ReplyTo)> =
                sent.iter().map(|(to, at)| (*at, *to)).collect();
            let oldest = by_age.len() / 4;
            by_age.select_nth_unstable(oldest);
            by_age.truncate(oldest);
            for (_, to) in &by_age {
                sent.remove(to);
            }
            by_age
        };
        // The receives are syscalls: no lock held. A reply sent to one of
        // these tags from now on is recorded again after its send. (The
        // buffer cannot fail: BODY_SIZE is far below MAX_BODY_BYTES.)
        let Ok(mut buf) = MessageBuf::with_body_capacity(BODY_SIZE) else {
            return 0;
        };
        evicted
            .into_iter()
            .map(|(_, to)| take_all(shared, to, &mut buf))
            .sum()
    }

    /// Removes queued replies of clients that are dead or no longer read.
    /// Returns how many it removed; 0 if another thread is purging.
    fn purge(&self, shared: &Shared) -> u64 {
        let Ok(_purging) = self.purging.try_lock() else {
            return 0;
        };
        let now = Instant::now();
        let stale_after = Duration::from_millis(shared.limits.stale_reply_ms.into());
        // Copy the candidates out: the liveness checks and receives below
        // are syscalls, and no lock is held across a syscall.
        let tags: Vec<(ReplyTo, Instant)> = self
            .sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(to, at)| (*to, *at))
            .collect();
        let Ok(mut buf) = MessageBuf::with_body_capacity(BODY_SIZE) else {
            return 0;
        };
        let mut purged = 0;
        let mut forget = Vec::new();
        // One kill(2) per client process, not per tag: one process can
        // hold tens of thousands of tags, and a full queue purges often.
        let mut alive: HashMap<i64, bool> = HashMap::new();
        for (to, at) in tags {
            let stale = now.saturating_duration_since(at) >= stale_after;
            let pid = to.pid();
            if !stale && *alive.entry(pid).or_insert_with(|| sysv::process_alive(pid)) {
                continue;
            }
            purged += take_all(shared, to, &mut buf);
            forget.push(to);
        }
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        for to in forget {
            // A reply sent since the snapshot makes the tag fresh again.
            if sent.get(&to).is_some_and(|at| *at <= now) {
                sent.remove(&to);
            }
        }
        purged
    }
}

/// How often [`sweep_loop`] looks at the queue.
const SWEEP_PERIOD: Duration = Duration::from_millis(50);

/// Until the server stops, purges replies nobody reads whenever the queue
/// has no room left for a request.
///
/// The reply path purges only when one of its sends finds the queue full.
/// But each request frees exactly the room its reply takes, so unread
/// replies can fill the queue while every send of the server succeeds;
/// then no request fits, the server receives nothing and sends nothing,
/// and nothing would ever purge: every client is wedged. This loop breaks
/// that within [`SWEEP_PERIOD`] for dead clients, and once their replies
/// turn stale for clients that stopped reading.
///
/// It acts only on that wedge (full, no reply waiting for room, nothing
/// received for a whole period) and otherwise leaves purging to the reply
/// path: a reply that purges retries at once and takes the room it made,
/// while room made here would go to whichever client sender is blocked.
pub(crate) fn sweep_loop(shared: &Shared) {
    let request_bytes = BODY_SIZE as u64;
    let mut last_received = shared.counters.snapshot().received;
    loop {
        // Parked rather than waiting on the state's condition variable,
        // which every request in flight notifies: `finish` unparks it.
        thread::park_timeout(SWEEP_PERIOD);
        if shared.is_stopping() {
            return;
        }
        let received = shared.counters.snapshot().received;
        let idle = received == last_received;
        last_received = received;
        if !idle || shared.tags.waiting.load(Ordering::Relaxed) > 0 {
            continue;
        }
        match shared.queue.stat() {
            // Linux caps the message count at `msg_qbytes` too.
            Ok(stat)
                if stat.bytes + request_bytes > stat.max_bytes
                    || stat.messages + 1 > stat.max_bytes =>
            {
                shared.counters.purged(shared.tags.purge(shared));
            }
            Ok(_) => {}
            // The receive loops report the removal; nothing left to sweep.
            Err(SysvError::QueueRemoved { .. }) => return,
            // Anything else is transient or permanent alike for a sweep:
            // try again next period.
            Err(_) => {}
        }
    }
}

/// Removes every reply queued for `to`; returns how many.
fn take_all(shared: &Shared, to: ReplyTo, buf: &mut MessageBuf) -> u64 {
    let mut taken = 0;
    for _ in 0..MAX_PURGE_PER_TAG {
        match shared
            .queue
            .recv(to.get(), buf, RecvFlags::NOWAIT | RecvFlags::NOERROR)
        {
            Ok(_) => taken += 1,
            Err(_) => break,
        }
    }
    taken
}

/// Sends `reply` to `to`, waiting at most `reply_timeout_ms` for room.
/// Counts the reply as sent or abandoned; a removed queue stops the server.
pub(crate) fn send_reply(shared: &Shared, to: ReplyTo, reply: &Reply) {
    let body = reply.encode();
    // Set at the first full-queue answer: the common reply, sent at the
    // first try, has no use for a deadline and skips the clock read.
    let mut deadline = None;
    let mut pause = FIRST_PAUSE;
    let mut waiting = None;
    loop {
        match shared.queue.send(to.get(), &body, SendFlags::NOWAIT) {
            Ok(()) => {
                shared.counters.replied(reply.status);
                let purged = shared.tags.record(shared, to, Instant::now());
                shared.counters.purged(purged);
                return;
            }
            Err(SysvError::WouldBlock { .. }) => {
                waiting.get_or_insert_with(|| Waiting::new(&shared.tags.waiting));
                let deadline = *deadline.get_or_insert_with(|| {
                    Instant::now() + Duration::from_millis(shared.limits.reply_timeout_ms.into())
                });
                let purged = shared.tags.purge(shared);
                shared.counters.purged(purged);
                // Nothing to purge, and this reply's own client is dead:
                // nobody will read it, and waiting for room would hold this
                // thread (and a slot of max_in_flight) for nothing, while
                // the queue fills with requests nobody then receives.
                if purged == 0 && !sysv::process_alive(to.pid()) {
                    shared.counters.abandoned();
                    return;
                }
                let now = Instant::now();
                // A shutdown under way bounds the wait too.
                let deadline = shared
                    .stop_deadline()
                    .map_or(deadline, |stop| stop.min(deadline));
                if now >= deadline {
                    shared.counters.abandoned();
                    return;
                }
                if purged == 0 {
                    thread::sleep(pause.min(deadline - now));
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
            Err(error @ SysvError::QueueRemoved { .. }) => {
                // Counted either way: a shutdown past its deadline removes
                // the queue under replies still waiting for room.
                shared.counters.abandoned();
                if !shared.is_stopping() {
                    shared.fail(ServerError::QueueRemoved(error));
                }
                return;
            }
            // msgsnd(2) has no other transient error here: the body is 40
            // bytes and the server created the queue. Count and go on.
            Err(_) => {
                shared.counters.abandoned();
                return;
            }
        }
    }
}
