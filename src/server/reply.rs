//! Sending replies without ever blocking for good, and making room in a
//! queue that replies nobody reads have filled.
//!
//! A reply goes out with `IPC_NOWAIT`. When the queue is full, the sender
//! purges replies left for clients that are gone (their pid no longer
//! exists) or that stopped reading (nothing sent to their tag for
//! `stale_reply_ms`), then retries with a growing pause until
//! `reply_timeout_ms`, and finally abandons the reply and counts it. A dead
//! client can therefore hold at most a full queue's worth of replies, and
//! only until the next reply needs the room.

use std::collections::HashMap;
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
}

impl ReplyTags {
    fn record(&self, to: ReplyTo, now: Instant) {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        // At the limit, new tags go untracked: their replies can still be
        // purged once the tag's pid is found dead by a later record.
        if sent.len() < MAX_TRACKED_REPLY_TAGS || sent.contains_key(&to) {
            sent.insert(to, now);
        }
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
        for (to, at) in tags {
            let dead = !sysv::process_alive(to.pid());
            if !dead && now.saturating_duration_since(at) < stale_after {
                continue;
            }
            for _ in 0..MAX_PURGE_PER_TAG {
                match shared
                    .queue
                    .recv(to.get(), &mut buf, RecvFlags::NOWAIT | RecvFlags::NOERROR)
                {
                    Ok(_) => purged += 1,
                    Err(_) => break,
                }
            }
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

/// Sends `reply` to `to`, waiting at most `reply_timeout_ms` for room.
/// Counts the reply as sent or abandoned; a removed queue stops the server.
pub(crate) fn send_reply(shared: &Shared, to: ReplyTo, reply: &Reply) {
    let body = reply.encode();
    // Set at the first full-queue answer: the common reply, sent at the
    // first try, has no use for a deadline and skips the clock read.
    let mut deadline = None;
    let mut pause = FIRST_PAUSE;
    loop {
        match shared.queue.send(to.get(), &body, SendFlags::NOWAIT) {
            Ok(()) => {
                shared.counters.replied(reply.status);
                shared.tags.record(to, Instant::now());
                return;
            }
            Err(SysvError::WouldBlock { .. }) => {
                let deadline = *deadline.get_or_insert_with(|| {
                    Instant::now() + Duration::from_millis(shared.limits.reply_timeout_ms.into())
                });
                let purged = shared.tags.purge(shared);
                shared.counters.purged(purged);
                let now = Instant::now();
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
