//! Sending replies without ever blocking for good, and making room in a
//! queue that replies nobody reads have filled.
//!
//! A reply goes out with `IPC_NOWAIT`. When the queue is full, the sender
//! purges replies left for clients that are gone (their pid no longer
//! exists) or that stopped reading (nothing sent to their tag for
//! `stale_reply_ms`), then retries, blocked in msgsnd(2) for slices of at
//! most [`BLOCK_SLICE`] (the kernel wakes it when room is made), until
//! `reply_timeout_ms` (or the shutdown's deadline), and finally abandons
//! the reply and counts it; a reply to a dead client is abandoned at once
//! when nothing can be purged. A dead client can therefore hold at most a
//! full queue's worth of replies, and only until the next reply needs the
//! room, or until [`sweep_loop`] sees the queue full and idle.
//!
//! The tags answered are remembered up to [`Limits::TRACKED_REPLY_TAGS`](crate::server::Limits::TRACKED_REPLY_TAGS); past
//! that the oldest are forgotten only together with their unread replies,
//! since a reply whose tag is forgotten could never be purged. Messages
//! whose type the server never answered are never purged.
//!
//! A purge never takes a reply sent after it judged the tag stale: a
//! client idle for `stale_reply_ms` that calls again on the same tag (the
//! client library reuses its slots last-in first-out) is alive and waiting
//! for that reply. Each attempt to send counts itself on its tag before
//! msgsnd(2) and records the time after it. A purge or an eviction marks
//! the tag as being purged (attempts that start then wait until it is
//! done), waits for the attempts under way to finish, re-checks the tag
//! (not answered since it was judged stale or picked as the oldest) and
//! only then removes its replies. So a reply either went out before the
//! re-check, which then leaves the tag alone, or goes out after the
//! removal. A dead client's tag is purged even if answered since: nobody
//! reads it. The waits are short (an attempt blocks for at most
//! [`BLOCK_SLICE`]) and happen only in a purge or an eviction, when the
//! queue is full or the
//! table reaches its limit; no lock is held across a syscall.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use crate::codec::Reply;
use crate::ids::ReplyTo;
use crate::sysv::{self, MessageBuf, Queue, RecvFlags, SendFlags, SysvError};
use crate::wire::BODY_SIZE;

use super::config::MAX_TRACKED_REPLY_TAGS;
use super::error::ServerError;
use super::lifecycle::Lifecycle;
use super::stats::Counters;

/// The one owner of sending replies: the queue they go to, the tags
/// answered (for purges), and the counters every reply is counted in.
pub(crate) struct Replier {
    pub(crate) queue: Queue,
    tags: ReplyTags,
    pub(crate) counters: Counters,
    /// How long a reply waits for room (`reply_timeout_ms`).
    reply_timeout: Duration,
    /// When an unread reply's client counts as no longer reading.
    stale_after: Duration,
    /// A removed queue fails the server; a shutdown's deadline bounds waits.
    lifecycle: Arc<Lifecycle>,
}

impl Replier {
    pub(crate) fn new(
        queue: Queue,
        reply_timeout_ms: u32,
        stale_reply_ms: u32,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        Self {
            queue,
            tags: ReplyTags::default(),
            counters: Counters::default(),
            reply_timeout: Duration::from_millis(reply_timeout_ms.into()),
            stale_after: Duration::from_millis(stale_reply_ms.into()),
            lifecycle,
        }
    }

    /// How long a reply waits for room (`reply_timeout_ms`).
    pub(crate) fn reply_timeout(&self) -> Duration {
        self.reply_timeout
    }

    /// Sends `reply` to `to`, waiting at most `reply_timeout_ms` for room.
    /// Counts the reply as sent or abandoned; a removed queue stops the
    /// server.
    pub(crate) fn send(&self, to: ReplyTo, reply: &Reply) {
        send_reply(self, to, reply);
    }
}

/// Longest one blocked attempt to send waits for room: how soon a purge
/// that wants the tag, a dead client or a shutdown is noticed.
const BLOCK_SLICE: Duration = Duration::from_millis(5);
/// Most messages removed for one tag in one purge: a queue never holds
/// more messages than its byte limit (Linux caps both at `msg_qbytes`),
/// 16 KiB by default.
const MAX_PURGE_PER_TAG: usize = 1 << 16;
/// Tags tracked past which a reply that finds another thread evicting waits
/// for it rather than add more: the table's hard bound (plus one tag per
/// thread sending at that moment).
const HARD_TRACKED_REPLY_TAGS: usize = MAX_TRACKED_REPLY_TAGS + MAX_TRACKED_REPLY_TAGS / 4;

/// What the server knows of one reply tag.
struct Tag {
    /// When a reply to it last went out (when it was first tried, for a
    /// tag none has reached yet).
    at: Instant,
    /// Attempts to send to it under way (between the count before
    /// msgsnd(2) and the record after).
    sending: u32,
    /// A purge or an eviction is removing its replies: no attempt starts.
    purging: bool,
}

/// Reply tags recently answered, with when; the candidates for a purge.
#[derive(Default)]
pub(crate) struct ReplyTags {
    sent: Mutex<HashMap<ReplyTo, Tag>>,
    /// Notified when a tag being purged has no attempt left under way, and
    /// when its purge is over.
    purge_progress: Condvar,
    /// Held while purging so that one thread purges and the others retry.
    purging: Mutex<()>,
    /// Held while evicting, so that one thread evicts at a time.
    evicting: Mutex<()>,
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
    // The table holds plain values, each update complete before the lock
    // is released, so a poisoned lock still holds a consistent table.
    fn lock(&self) -> MutexGuard<'_, HashMap<ReplyTo, Tag>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(
        &self,
        sent: MutexGuard<'a, HashMap<ReplyTo, Tag>>,
    ) -> MutexGuard<'a, HashMap<ReplyTo, Tag>> {
        self.purge_progress
            .wait(sent)
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an attempt to send to `to` as under way, right before its
    /// msgsnd(2). Waits while a purge is removing `to`'s replies.
    fn begin(&self, to: ReplyTo) {
        let mut sent = self.lock();
        loop {
            match sent.entry(to) {
                Entry::Occupied(mut tag) => {
                    let tag = tag.get_mut();
                    if !tag.purging {
                        tag.sending += 1;
                        return;
                    }
                }
                Entry::Vacant(tag) => {
                    tag.insert(Tag {
                        at: Instant::now(),
                        sending: 1,
                        purging: false,
                    });
                    return;
                }
            }
            sent = self.wait(sent);
        }
    }

    /// Ends the attempt [`ReplyTags::begin`] marked; `sent_at` is when
    /// its reply went out, if it did. Returns how many replies it purged to
    /// stay within [`Limits::TRACKED_REPLY_TAGS`](crate::server::Limits::TRACKED_REPLY_TAGS).
    fn end(&self, replier: &Replier, to: ReplyTo, sent_at: Option<Instant>) -> u64 {
        let tracked = {
            let mut sent = self.lock();
            match sent.entry(to) {
                Entry::Occupied(mut tag) => {
                    let tag = tag.get_mut();
                    tag.sending = tag.sending.saturating_sub(1);
                    if let Some(at) = sent_at {
                        tag.at = at;
                    }
                    if tag.purging && tag.sending == 0 {
                        self.purge_progress.notify_all();
                    }
                }
                // Not reached: nothing removes a tag with an attempt under
                // way. A reply that went out must be tracked all the same,
                // or it could never be purged.
                Entry::Vacant(tag) => {
                    if let Some(at) = sent_at {
                        tag.insert(Tag {
                            at,
                            sending: 0,
                            purging: false,
                        });
                    }
                }
            }
            sent.len()
        };
        if tracked <= MAX_TRACKED_REPLY_TAGS {
            return 0;
        }
        self.evict(replier)
    }

    /// Keeps the table within [`Limits::TRACKED_REPLY_TAGS`](crate::server::Limits::TRACKED_REPLY_TAGS): the quarter of
    /// tags answered longest ago is forgotten, and whatever replies of
    /// theirs are still unread are purged (they have waited while tens of
    /// thousands of other tags were answered). Only a tracked tag's
    /// replies can ever be purged, so a tag is never forgotten while
    /// replies of its may still be queued.
    fn evict(&self, replier: &Replier) -> u64 {
        let _evicting = match self.evicting.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            // Another thread is evicting; add to the table while it does,
            // up to its hard bound.
            Err(TryLockError::WouldBlock) => {
                if self.lock().len() <= HARD_TRACKED_REPLY_TAGS {
                    return 0;
                }
                self.evicting.lock().unwrap_or_else(PoisonError::into_inner)
            }
        };
        let oldest: Vec<(Instant, ReplyTo)> = {
            let sent = self.lock();
            if sent.len() <= MAX_TRACKED_REPLY_TAGS {
                return 0;
            }
            let quarter = sent.len() / 4;
            let mut by_age: Vec<(Instant, ReplyTo)> =
                sent.iter().map(|(to, tag)| (tag.at, *to)).collect();
            if quarter < by_age.len() {
                by_age.select_nth_unstable(quarter);
                by_age.truncate(quarter);
            }
            by_age
        };
        // (The buffer cannot fail: BODY_SIZE is far below MAX_BODY_BYTES.)
        let Ok(mut buf) = MessageBuf::with_body_capacity(BODY_SIZE) else {
            return 0;
        };
        // A tag answered again since it was picked is no longer among the
        // oldest: it stays.
        oldest
            .into_iter()
            .map(|(at, to)| self.take_if(replier, to, &mut buf, |tag| tag.at == at))
            .sum()
    }

    /// If `to` is tracked and, once the attempts to send to it under way
    /// have finished, `still` holds of it: removes its queued replies,
    /// forgets it, and returns how many replies it removed.
    ///
    /// The tag is marked first, so that no attempt starts until this is
    /// over: the re-check and the removal are one step for senders. Attempts
    /// are nonblocking sends, so the wait for those under way is short.
    fn take_if(
        &self,
        replier: &Replier,
        to: ReplyTo,
        buf: &mut MessageBuf,
        still: impl FnOnce(&Tag) -> bool,
    ) -> u64 {
        let mut sent = self.lock();
        match sent.get_mut(&to) {
            // Another purge or eviction has it.
            Some(tag) if !tag.purging => tag.purging = true,
            _ => return 0,
        }
        // A marked tag stays: only its marker removes it.
        while sent.get(&to).is_some_and(|tag| tag.sending > 0) {
            sent = self.wait(sent);
        }
        if !sent.get(&to).is_some_and(still) {
            if let Some(tag) = sent.get_mut(&to) {
                tag.purging = false;
            }
            drop(sent);
            self.purge_progress.notify_all();
            return 0;
        }
        drop(sent);
        let taken = take_all(replier, to, buf);
        self.lock().remove(&to);
        // Attempts waiting for this tag start again, on a fresh entry.
        self.purge_progress.notify_all();
        taken
    }

    /// Removes queued replies of clients that are dead or no longer read.
    /// Returns how many it removed; 0 if another thread is purging.
    fn purge(&self, replier: &Replier) -> u64 {
        let Ok(_purging) = self.purging.try_lock() else {
            return 0;
        };
        let now = Instant::now();
        let stale_after = replier.stale_after;
        // Copy the candidates out: the liveness checks below are syscalls.
        let tags: Vec<(ReplyTo, Instant)> =
            self.lock().iter().map(|(to, tag)| (*to, tag.at)).collect();
        let Ok(mut buf) = MessageBuf::with_body_capacity(BODY_SIZE) else {
            return 0;
        };
        let mut purged = 0;
        // One kill(2) per client process, not per tag: one process can
        // hold tens of thousands of tags, and a full queue purges often.
        let mut alive: HashMap<i64, bool> = HashMap::new();
        for (to, at) in tags {
            let stale = now.saturating_duration_since(at) >= stale_after;
            let pid = to.pid();
            let dead = !stale && !*alive.entry(pid).or_insert_with(|| sysv::process_alive(pid));
            if !stale && !dead {
                continue;
            }
            // A stale tag answered since the snapshot is fresh again, and
            // its client may be reading. A dead client reads nothing.
            purged += self.take_if(replier, to, &mut buf, |tag| dead || tag.at == at);
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
pub(crate) fn sweep_loop(replier: &Replier) {
    let request_bytes = BODY_SIZE as u64;
    let mut last_received = replier.counters.snapshot().received;
    loop {
        // Parked rather than waiting on the state's condition variable,
        // which every request in flight notifies: `finish` unparks it.
        thread::park_timeout(SWEEP_PERIOD);
        if replier.lifecycle.is_stopping() {
            return;
        }
        let received = replier.counters.snapshot().received;
        let idle = received == last_received;
        last_received = received;
        if !idle || replier.tags.waiting.load(Ordering::Relaxed) > 0 {
            continue;
        }
        match replier.queue.stat() {
            // Linux caps the message count at `msg_qbytes` too.
            Ok(stat)
                if stat.bytes + request_bytes > stat.max_bytes
                    || stat.messages + 1 > stat.max_bytes =>
            {
                replier.counters.purged(replier.tags.purge(replier));
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
fn take_all(replier: &Replier, to: ReplyTo, buf: &mut MessageBuf) -> u64 {
    let mut taken = 0;
    for _ in 0..MAX_PURGE_PER_TAG {
        match replier
            .queue
            .recv_flags(to.get(), buf, RecvFlags::NOWAIT | RecvFlags::NOERROR)
        {
            Ok(_) => taken += 1,
            Err(_) => break,
        }
    }
    taken
}

/// [`Replier::send`].
fn send_reply(replier: &Replier, to: ReplyTo, reply: &Reply) {
    let body = reply.encode();
    // Set at the first full-queue answer: the common reply, sent at the
    // first try, has no use for a deadline (its send time is still read,
    // for the stale-reply sweep).
    let mut deadline = None;
    // After a full queue with nothing to purge: the next attempt blocks in
    // msgsnd(2), which the kernel wakes when room is made, until this.
    let mut block_until = None;
    let mut waiting = None;
    loop {
        // Marked for each attempt alone, not for the whole wait: a client
        // that stopped reading while requests of its keep coming must stay
        // purgeable while its replies wait for room.
        replier.tags.begin(to);
        let attempt = match block_until.take() {
            None => replier.queue.send_flags(to.get(), &body, SendFlags::NOWAIT),
            Some(until) => replier
                .queue
                .send_until(to.get(), &body, until, Duration::ZERO),
        };
        let sent_at = attempt.is_ok().then(Instant::now);
        if sent_at.is_some() {
            replier.counters.replied(reply.status);
        }
        let purged = replier.tags.end(replier, to, sent_at);
        replier.counters.purged(purged);
        match attempt {
            Ok(()) => return,
            Err(SysvError::TimedOut { .. }) => {
                waiting.get_or_insert_with(|| Waiting::new(&replier.tags.waiting));
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + replier.reply_timeout);
                let purged = replier.tags.purge(replier);
                replier.counters.purged(purged);
                // Nothing to purge, and this reply's own client is dead:
                // nobody will read it, and waiting for room would hold this
                // thread (and a slot of max_in_flight) for nothing, while
                // the queue fills with requests nobody then receives.
                if purged == 0 && !sysv::process_alive(to.pid()) {
                    replier.counters.abandoned();
                    return;
                }
                let now = Instant::now();
                // A shutdown under way bounds the wait too.
                let deadline = replier
                    .lifecycle
                    .stop_deadline()
                    .map_or(deadline, |stop| stop.min(deadline));
                if now >= deadline {
                    replier.counters.abandoned();
                    return;
                }
                if purged == 0 {
                    block_until = Some(deadline.min(now + BLOCK_SLICE));
                }
            }
            Err(error @ SysvError::QueueRemoved { .. }) => {
                // Counted either way: a shutdown past its deadline removes
                // the queue under replies still waiting for room.
                replier.counters.abandoned();
                if !replier.lifecycle.is_stopping() {
                    replier.lifecycle.fail(ServerError::QueueRemoved(error));
                }
                return;
            }
            // msgsnd(2) has no other transient error here: the body is 40
            // bytes and the server created the queue. Count and go on.
            Err(_) => {
                replier.counters.abandoned();
                return;
            }
        }
    }
}
