//! The durability pipeline of a server with a journal: replies that must
//! wait for an `fdatasync` are queued here, and one commit thread writes
//! and syncs every change appended so far, then sends every reply whose
//! change (or whose view of the ledger) is now durable.
//!
//! Why a thread, and not each request waiting for its own change: a
//! worker that waits for the disk cannot receive the next request, so a
//! pool of two workers could never put more than two changes in one
//! fdatasync, however many clients were waiting. Here a worker applies the
//! request, appends its change, queues its reply and goes back to
//! receiving at once; each fdatasync covers everything appended while the
//! previous one ran, so with N clients in flight a batch holds up to N
//! changes whatever the dispatch mode.
//!
//! What stays true:
//!
//! - no reply shows a change before it is durable: a reply is queued with
//!   the number of the last change appended when its request read the
//!   ledger, and sent only once the journal's durable point has reached it
//!   (a reply that saw nothing pending goes out directly);
//! - the ledger lock is never held here, and no lock is held across a
//!   syscall: replies are taken out of the queue, then sent;
//! - the queue is bounded ([`MAX_DEFERRED_REPLIES`]): a worker that finds
//!   it full waits for room, so back-pressure reaches the receive loops and
//!   then the clients;
//! - a failed fdatasync sends no further reply that depends on the journal:
//!   the queued ones are dropped and counted (`replies_withheld`), and the
//!   server stops; a failure no request runs into (a compaction's) is found
//!   by the idle commit thread within [`FAILURE_POLL`];
//! - if the commit thread panics, its guard withholds what it held and
//!   stops the server, so no worker waits for room for ever;
//! - shutdown is bounded: queued replies go out if their changes are synced
//!   by the deadline; after it they are dropped and counted.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::codec::Reply;
use crate::ids::ReplyTo;
use crate::journal::Lsn;

use super::error::ServerError;
use super::reply::send_reply;
use super::shared::Shared;

/// Most replies waiting for the disk at once. A worker (a thread-per-request
/// thread, or a pool worker) that queues its reply here frees its in-flight
/// slot and is done, so this, not `max_in_flight`, bounds the requests a
/// journaled server has taken and not yet answered (plus those being
/// processed). A worker that finds it full waits, which holds its slot:
/// back-pressure reaches the receive loops, then the queue.
pub const MAX_DEFERRED_REPLIES: usize = 8192;

/// How often an idle commit thread looks for a journal failure that no
/// request reported: a compaction fails in its own thread, and the server
/// must stop even if no request comes to find out.
const FAILURE_POLL: Duration = Duration::from_millis(100);

/// A reply waiting until the change numbered `lsn` is durable.
struct Deferred {
    lsn: Lsn,
    to: ReplyTo,
    reply: Reply,
}

#[derive(Default)]
struct State {
    queue: Vec<Deferred>,
    /// The commit thread waits for work: an enqueue must wake it.
    idle: bool,
    /// Workers waiting for room.
    room_waiters: usize,
    /// Shutdown: send what can be sent, then return.
    stopping: bool,
    /// Nothing more is sent: the journal failed, or the shutdown deadline
    /// passed. Replies queued or arriving are dropped and counted.
    closed: bool,
    /// The commit thread has returned (or never started).
    done: bool,
}

/// The queue between the workers and the commit thread.
#[derive(Default)]
pub(crate) struct CommitQueue {
    state: Mutex<State>,
    /// The commit thread waits on it for work.
    work: Condvar,
    /// Workers wait on it for room; shutdown for the thread to finish.
    room: Condvar,
}

impl CommitQueue {
    // Plain data, and no code that can panic runs under the lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks the commit thread as never started: nothing will be sent.
    pub(crate) fn never_started(&self) {
        let mut st = self.lock();
        st.done = true;
        st.closed = true;
        drop(st);
        self.room.notify_all();
    }

    /// Whether the commit thread has returned from its loop (it is then
    /// about to end: joining it does not wait for the disk).
    pub(crate) fn is_done(&self) -> bool {
        self.lock().done
    }

    /// Asks the commit thread to send what it can and return; waits until
    /// it has or `deadline` passes. Returns whether every queued reply went
    /// out. Past the deadline, what is still queued is dropped and counted.
    pub(crate) fn stop_by(&self, shared: &Shared, deadline: Instant) -> bool {
        let mut st = self.lock();
        st.stopping = true;
        self.work.notify_all();
        loop {
            if st.done {
                return st.queue.is_empty();
            }
            let now = Instant::now();
            if now >= deadline {
                let dropped = close(&mut st);
                drop(st);
                shared.counters.withheld(dropped);
                self.room.notify_all();
                return dropped == 0;
            }
            st = self
                .room
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Sends `reply` once every change up to `lsn` is durable: at once if it
/// already is (or `lsn` is `None`: nothing was pending when the request
/// read the ledger); else, when the disk is idle (no fsync running, the
/// commit thread waiting for work), by writing and syncing in this thread
/// as the group-commit leader, which spares a lone client the hand-off to
/// another thread; else through the commit thread. Waits for room when
/// [`MAX_DEFERRED_REPLIES`] are queued.
pub(crate) fn reply_when_durable(shared: &Shared, to: ReplyTo, reply: &Reply, lsn: Option<Lsn>) {
    let Some(lsn) = lsn else {
        return send_reply(shared, to, reply);
    };
    let Some(journal) = &shared.journal else {
        return send_reply(shared, to, reply);
    };
    // After a failure nothing that depends on the journal is sent, even a
    // reply whose change did reach the disk: the server is stopping, and
    // its clients learn the outcome by retrying after the restart.
    if journal.is_failed() {
        return shared.counters.withheld(1);
    }
    if journal.durable() >= lsn {
        return send_reply(shared, to, reply);
    }
    let commit = &shared.commit;
    // A hint (the flush may start or end right after), read before the
    // commit lock so that the journal's lock is never taken under it.
    let disk_idle = !journal.is_flushing();
    let mut st = commit.lock();
    if st.idle && st.queue.is_empty() && !st.closed && disk_idle {
        // Nothing else waits for the disk: lead the group commit here. A
        // worker blocked in an fsync is what the commit thread exists to
        // avoid, but only while others have requests to serve; under load
        // the commit thread is busy and replies are queued instead.
        drop(st);
        return match journal.wait_durable(lsn) {
            Ok(()) => send_reply(shared, to, reply),
            Err(error) => {
                shared.counters.withheld(1);
                shared.fail(ServerError::Journal(error));
            }
        };
    }
    loop {
        if st.closed || st.done {
            drop(st);
            return shared.counters.withheld(1);
        }
        if st.queue.len() < MAX_DEFERRED_REPLIES {
            break;
        }
        st.room_waiters += 1;
        st = commit.room.wait(st).unwrap_or_else(PoisonError::into_inner);
        st.room_waiters -= 1;
    }
    st.queue.push(Deferred {
        lsn,
        to,
        reply: *reply,
    });
    shared.counters.deferred();
    let wake = st.idle;
    st.idle = false;
    drop(st);
    if wake {
        commit.work.notify_one();
    }
}

/// The commit thread: until shutdown, syncs what was appended and sends
/// the replies it made durable.
pub(crate) fn commit_loop(shared: &Shared) {
    let Some(journal) = shared.journal.clone() else {
        return shared.commit.never_started();
    };
    let commit = &shared.commit;
    let _guard = PanicGuard(shared);
    let mut ready: Vec<Deferred> = Vec::new();
    loop {
        let mut st = commit.lock();
        while st.queue.is_empty() && !st.stopping {
            if let Err(error) = journal.check_failed() {
                st.closed = true;
                drop(st);
                shared.fail(ServerError::Journal(error));
                st = commit.lock();
                break;
            }
            st.idle = true;
            st = commit
                .work
                .wait_timeout(st, FAILURE_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.idle = false;
        if st.queue.is_empty() || st.closed {
            // Stopping with nothing left to send (or nothing allowed to be).
            return finish(shared, st);
        }
        drop(st);
        // Every queued reply waits for a change appended before it was
        // queued, so syncing everything appended now covers them all,
        // and whatever else was appended meanwhile rides along.
        if let Err(error) = journal.wait_durable(journal.appended()) {
            let mut st = commit.lock();
            let dropped = close(&mut st);
            shared.counters.withheld(dropped);
            shared.fail(ServerError::Journal(error));
            return finish(shared, st);
        }
        let durable = journal.durable();
        let mut st = commit.lock();
        // In place: `ready` takes the durable ones, the rest stay queued.
        let mut i = 0;
        while i < st.queue.len() {
            if st.queue[i].lsn <= durable {
                ready.push(st.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let closed = st.closed;
        let room_waiters = st.room_waiters;
        drop(st);
        if room_waiters > 0 {
            commit.room.notify_all();
        }
        if closed {
            shared.counters.withheld(ready.len() as u64);
            ready.clear();
            continue;
        }
        // No lock held: each send is a syscall, and may wait for room in a
        // full queue (bounded by reply_timeout_ms and the shutdown deadline).
        for deferred in ready.drain(..) {
            send_reply(shared, deferred.to, &deferred.reply);
        }
    }
}

/// If the commit thread unwinds, nothing will send what it holds: withhold
/// the queued replies, let waiting workers and `stop_by` go, stop the
/// server.
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let shared = self.0;
        let mut st = shared.commit.lock();
        let dropped = close(&mut st);
        finish(shared, st);
        shared.counters.withheld(dropped);
        shared.fail(ServerError::CommitPanicked);
    }
}

/// Sends nothing more: empties the queue and returns how many replies it
/// held, for the caller to count as withheld.
fn close(st: &mut State) -> u64 {
    let dropped = st.queue.len() as u64;
    st.queue.clear();
    st.closed = true;
    dropped
}

/// Marks the commit thread as returned and wakes whoever waits for it.
fn finish(shared: &Shared, mut st: MutexGuard<'_, State>) {
    st.done = true;
    drop(st);
    shared.commit.room.notify_all();
}

/// Keeps `Arc<Shared>` alive for the thread's closure.
pub(crate) fn spawn_commit_thread(
    shared: &Arc<Shared>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("guichet-commit".into())
        .spawn(move || commit_loop(&shared))
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::ids::RequestId;
    use crate::journal::{Journal, JournalConfig, SimDisk};
    use crate::ledger::Ledger;
    use crate::sysv::{Mode, OwnedQueue};
    use crate::Status;

    /// No message can make the commit thread panic, so its guard is tested
    /// alone: what it held is withheld and counted, waiting workers and
    /// shutdown are let go, and the server stops with the reason.
    #[test]
    fn a_commit_thread_that_panics_withholds_its_replies_and_stops_the_server(
    ) -> Result<(), Box<dyn Error>> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let ledger = Ledger::new([("E", 1)], 10)?;
        let shared = Arc::new(Shared::new(
            queue.queue(),
            ledger,
            super::super::config::Limits::default(),
            1,
        ));
        let config = JournalConfig {
            events: Some(vec![("E".into(), 1)]),
            ..JournalConfig::default()
        };
        let lsn = Journal::open(Box::new(SimDisk::new()), "j", &config)?
            .journal
            .appended();
        let to = ReplyTo::new(i64::from(std::process::id())).ok_or("pid")?;
        let reply = Reply::bare(Status::Ok, RequestId(1));
        shared
            .commit
            .lock()
            .queue
            .extend((0..3).map(|_| Deferred { lsn, to, reply }));
        let in_thread = Arc::clone(&shared);
        let died = std::thread::spawn(move || {
            let _guard = PanicGuard(&in_thread);
            panic!("the commit thread panics on purpose");
        })
        .join();
        assert!(died.is_err());
        assert!(shared.commit.is_done());
        assert!(shared.commit.lock().queue.is_empty());
        assert_eq!(shared.counters.snapshot().replies_withheld, 3);
        assert!(shared.is_stopping());
        assert!(matches!(
            shared.take_failure(),
            Some(ServerError::CommitPanicked)
        ));
        assert_eq!(queue.stat()?.messages, 0, "nothing was sent");
        queue.remove()?;
        Ok(())
    }
}
