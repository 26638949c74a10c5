//! Durability, the server's one group commit: replies that must wait for
//! an `fdatasync` are queued here, and one commit thread writes and syncs
//! every change appended so far, then sends every reply whose change (or
//! whose view of the ledger) is now durable. This is the only place that
//! decides when the journal writes: the journal itself only writes what
//! it is asked to, one caller at a time (`journal::writer`).
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

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::codec::Reply;
use crate::ids::ReplyTo;
use crate::journal::{Journal, JournalError, Lsn};

use super::error::ServerError;
use super::lifecycle::Lifecycle;
use super::pacing::{Gather, Pacing};
use super::reply::Replier;

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

/// The journal, and the replies waiting for it.
pub(crate) struct Durability {
    journal: Arc<Journal>,
    state: Mutex<State>,
    /// The commit thread waits on it for work.
    work: Condvar,
    /// Workers wait on it for room; shutdown for the thread to finish.
    room: Condvar,
    /// `state.queue.len()`, stored under the lock whenever a reply is
    /// queued or taken: what the commit thread polls while it gathers
    /// (see `gather`), without taking the lock the workers queue under.
    /// Not updated when a failure or a shutdown empties the queue: the
    /// gather it may then mislead lasts at most its window either way.
    queued: AtomicUsize,
    /// Changes the last group commit made durable: past one, the next
    /// waits `group_commit_delay_us` first (see `sync`).
    last_batch: AtomicU64,
    replier: Arc<Replier>,
    lifecycle: Arc<Lifecycle>,
}

impl Durability {
    pub(crate) fn new(
        journal: Arc<Journal>,
        replier: Arc<Replier>,
        lifecycle: Arc<Lifecycle>,
    ) -> Self {
        Self {
            journal,
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            room: Condvar::new(),
            queued: AtomicUsize::new(0),
            last_batch: AtomicU64::new(0),
            replier,
            lifecycle,
        }
    }

    pub(crate) fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// Starts the commit thread.
    pub(crate) fn spawn(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let durability = Arc::clone(self);
        std::thread::Builder::new()
            .name("guichet-commit".into())
            .spawn(move || durability.commit_loop())
    }

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
    pub(crate) fn stop_by(&self, deadline: Instant) -> bool {
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
                self.replier.counters.withheld(dropped);
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

    /// Waits, in this thread, until every change up to `lsn` is durable:
    /// for a caller that must block (the classic protocol's thread), through
    /// the same group commit as the replies queued here.
    ///
    /// # Errors
    ///
    /// The journal's failure, now or earlier.
    pub(crate) fn wait_durable(&self, lsn: Lsn) -> Result<(), JournalError> {
        if self.journal.durable() >= lsn {
            return self.journal.check_failed();
        }
        self.sync(lsn)
    }

    /// One group commit: waits `group_commit_delay_us` first if the last
    /// one made more than one change durable (others are committing: give
    /// those just answered a moment to append to this batch), then writes
    /// and syncs everything appended up to `lsn` and whatever else is
    /// pending.
    fn sync(&self, lsn: Lsn) -> Result<(), JournalError> {
        let delay = self.journal.group_commit_delay();
        if !delay.is_zero() && self.last_batch.load(Ordering::Relaxed) > 1 {
            std::thread::sleep(delay);
        }
        let before = self.journal.durable().get();
        self.journal.wait_durable(lsn)?;
        let made = self.journal.durable().get().saturating_sub(before);
        self.last_batch.store(made, Ordering::Relaxed);
        Ok(())
    }

    /// Sends `reply` once every change up to `lsn` is durable: at once if it
    /// already is; else, when the disk is idle (no fsync running, the
    /// commit thread waiting for work) and that keeps nobody waiting (see
    /// `nobody_else_waits`), by writing and syncing in this thread as the
    /// group-commit leader, which spares a lone client the hand-off to
    /// another thread; else through the commit thread. Waits for room when
    /// [`MAX_DEFERRED_REPLIES`] are queued.
    pub(crate) fn reply_when_durable(&self, to: ReplyTo, reply: &Reply, lsn: Lsn) {
        let journal = &self.journal;
        // After a failure nothing that depends on the journal is sent, even a
        // reply whose change did reach the disk: the server is stopping, and
        // its clients learn the outcome by retrying after the restart.
        if journal.is_failed() {
            return self.replier.counters.withheld(1);
        }
        if journal.durable() >= lsn {
            return self.replier.send(to, reply);
        }
        // A hint, lock-free (a write may start or end right after).
        if !journal.is_flushing() && self.may_lead() && self.nobody_else_waits() {
            // Nothing else waits for the disk: lead the group commit here. A
            // worker blocked in an fsync is what the commit thread exists to
            // avoid, but only while others have requests to serve; under load
            // the commit thread is busy and replies are queued instead.
            return match self.sync(lsn) {
                Ok(()) => self.replier.send(to, reply),
                Err(error) => {
                    self.replier.counters.withheld(1);
                    self.lifecycle.fail(ServerError::Journal(error));
                }
            };
        }
        let mut st = self.lock();
        loop {
            if st.closed || st.done {
                drop(st);
                return self.replier.counters.withheld(1);
            }
            if st.queue.len() < MAX_DEFERRED_REPLIES {
                break;
            }
            st.room_waiters += 1;
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.room_waiters -= 1;
        }
        st.queue.push(Deferred {
            lsn,
            to,
            reply: *reply,
        });
        self.queued.store(st.queue.len(), Ordering::Release);
        self.replier.counters.deferred();
        // A gathering commit thread polls `queued`: only an idle one sleeps.
        let wake = st.idle;
        st.idle = false;
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// Whether the commit thread is idle with nothing queued: a worker may
    /// then sync its own change rather than hand it over.
    fn may_lead(&self) -> bool {
        let st = self.lock();
        st.idle && st.queue.is_empty() && !st.closed
    }

    /// Whether a worker that syncs in its own thread keeps nobody waiting:
    /// another receive loop is waiting for requests (thread-per-request's
    /// receiver, a pool's other workers), or the server's queue is empty
    /// (msgctl(2) `IPC_STAT`). A server with one receive loop (`sequential`,
    /// `pool:1`) receives nothing while its worker syncs: with requests
    /// waiting, the worker hands its reply to the commit thread, whose sync
    /// their changes can join (16 clients: 1 change per fsync and 6.4k
    /// ops/s when it always led, 15 and 54k with this, `docs/durability.md`).
    /// An unread reply also counts as waiting: with one loop, a reply left
    /// by a dead client costs a lone client the hand-off until the reply is
    /// purged. An unreadable queue counts as busy: the commit thread syncs.
    fn nobody_else_waits(&self) -> bool {
        self.lifecycle.a_loop_is_receiving()
            || self
                .replier
                .queue
                .stat()
                .is_ok_and(|stat| stat.messages == 0)
    }

    /// The commit thread: until shutdown, syncs what was appended and sends
    /// the replies it made durable; between two syncs, waits for the
    /// clients just answered to come back (see `pacing`).
    fn commit_loop(&self) {
        let _guard = PanicGuard(self);
        let mut ready: Vec<Deferred> = Vec::new();
        let mut pacing = Pacing::default();
        let mut next: Option<Gather> = None;
        loop {
            if let Some(gather) = next.take() {
                self.gather(gather, &mut pacing);
            }
            if !self.wait_for_work() {
                return;
            }
            // Every queued reply waits for a change appended before it was
            // queued, so syncing everything appended now covers them all,
            // and whatever else was appended meanwhile rides along.
            let started = Instant::now();
            if let Err(error) = self.sync(self.journal.appended()) {
                let mut st = self.lock();
                let dropped = close(&mut st);
                self.replier.counters.withheld(dropped);
                self.lifecycle.fail(ServerError::Journal(error));
                return self.finish(st);
            }
            pacing.synced(started.elapsed());
            let (closed, pending) = self.take_ready(&mut ready);
            if closed {
                self.replier.counters.withheld(ready.len() as u64);
                ready.clear();
                continue;
            }
            next = pacing.plan(ready.len(), pending, Instant::now());
            // No lock held: each send is a syscall, and may wait for room in
            // a full queue (bounded by reply_timeout_ms and the shutdown
            // deadline).
            for deferred in ready.drain(..) {
                self.replier.send(deferred.to, &deferred.reply);
            }
        }
    }

    /// Waits until a reply is queued. Returns `false` once the thread is
    /// done: stopping with nothing left to send (or nothing allowed to
    /// be). An idle thread also looks for a journal failure no request
    /// reported, every [`FAILURE_POLL`].
    fn wait_for_work(&self) -> bool {
        let mut st = self.lock();
        while st.queue.is_empty() && !st.stopping {
            if let Err(error) = self.journal.check_failed() {
                st.closed = true;
                drop(st);
                self.lifecycle.fail(ServerError::Journal(error));
                st = self.lock();
                break;
            }
            st.idle = true;
            st = self
                .work
                .wait_timeout(st, FAILURE_POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.idle = false;
        if st.queue.is_empty() || st.closed {
            self.finish(st);
            return false;
        }
        true
    }

    /// Moves the replies now durable into `ready`; the rest stay queued.
    /// Returns whether nothing may be sent any more, and how many stay.
    fn take_ready(&self, ready: &mut Vec<Deferred>) -> (bool, usize) {
        let durable = self.journal.durable();
        let mut st = self.lock();
        // In place: `ready` takes the durable ones, the rest stay queued.
        let mut i = 0;
        while i < st.queue.len() {
            if st.queue[i].lsn <= durable {
                ready.push(st.queue.swap_remove(i));
            } else {
                i += 1;
            }
        }
        self.queued.store(st.queue.len(), Ordering::Release);
        let (closed, pending, room_waiters) = (st.closed, st.queue.len(), st.room_waiters);
        drop(st);
        if room_waiters > 0 {
            self.room.notify_all();
        }
        (closed, pending)
    }

    /// Waits until `gather.target` replies are queued (the clients just
    /// answered have come back) or its deadline passes, and learns from
    /// which came first.
    ///
    /// It polls [`Durability::queued`], yielding the CPU between looks,
    /// rather than sleeping on `work` until the last awaited worker wakes
    /// it: that wake-up (a futex wake, then the scheduler) took 9-22 µs per
    /// group commit as measured, on the critical path of every request in
    /// the batch, and each worker paid a `notify` syscall. The poll is
    /// bounded by the gather's window (at most one fsync and
    /// [`MAX_WAIT`](super::pacing::MAX_WAIT)), like the client's own
    /// bounded spin, and each look yields, so the workers and clients the
    /// wait is for still get the CPU. A shutdown is not looked for: it
    /// waits for the window at most. Measured side by side
    /// (`docs/durability.md`): `pool:2` with a journal faster at 4 clients
    /// in 23 of 30 pairs (median +6% to +10%), a wash at 16.
    fn gather(&self, gather: Gather, pacing: &mut Pacing) {
        let target = gather.target.min(MAX_DEFERRED_REPLIES);
        loop {
            if self.queued.load(Ordering::Acquire) >= target {
                pacing.came_back(gather.since.elapsed());
                break;
            }
            if Instant::now() >= gather.deadline {
                pacing.timed_out();
                self.replier.counters.commit_wait_timed_out();
                break;
            }
            std::thread::yield_now();
        }
        self.replier.counters.commit_waited(gather.since.elapsed());
    }

    /// Marks the commit thread as returned and wakes whoever waits for it.
    fn finish(&self, mut st: MutexGuard<'_, State>) {
        st.done = true;
        drop(st);
        self.room.notify_all();
    }
}

/// If the commit thread unwinds, nothing will send what it holds: withhold
/// the queued replies, let waiting workers and `stop_by` go, stop the
/// server.
struct PanicGuard<'a>(&'a Durability);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let durability = self.0;
        let mut st = durability.lock();
        let dropped = close(&mut st);
        durability.finish(st);
        durability.replier.counters.withheld(dropped);
        durability.lifecycle.fail(ServerError::CommitPanicked);
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

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;
    use crate::ids::RequestId;
    use crate::journal::{Journal, JournalConfig, SimDisk};
    use crate::sysv::{Mode, OwnedQueue};
    use crate::wire::{BODY_SIZE, REQUEST_MTYPE};
    use crate::Status;

    /// No message can make the commit thread panic, so its guard is tested
    /// alone: what it held is withheld and counted, waiting workers and
    /// shutdown are let go, and the server stops with the reason.
    #[test]
    fn a_commit_thread_that_panics_withholds_its_replies_and_stops_the_server(
    ) -> Result<(), Box<dyn Error>> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let lifecycle = Arc::new(Lifecycle::new(1, 1));
        let replier = Arc::new(Replier::new(
            queue.queue(),
            100,
            100,
            Arc::clone(&lifecycle),
        ));
        let config = JournalConfig {
            events: Some(vec![("E".into(), 1)]),
            ..JournalConfig::default()
        };
        let journal = Arc::new(Journal::open(Box::new(SimDisk::new()), "j", &config)?.journal);
        let lsn = journal.appended();
        let durability = Arc::new(Durability::new(
            journal,
            Arc::clone(&replier),
            Arc::clone(&lifecycle),
        ));
        let to = ReplyTo::new(i64::from(std::process::id())).ok_or("pid")?;
        let reply = Reply::bare(Status::Ok, RequestId(1));
        durability
            .lock()
            .queue
            .extend((0..3).map(|_| Deferred { lsn, to, reply }));
        let in_thread = Arc::clone(&durability);
        let died = std::thread::spawn(move || {
            let _guard = PanicGuard(&in_thread);
            crate::test_support::quiet_panics_on_this_thread();
            panic!("the commit thread panics on purpose");
        })
        .join();
        assert!(died.is_err());
        assert!(durability.is_done());
        assert!(durability.lock().queue.is_empty());
        assert_eq!(replier.counters.snapshot().replies_withheld, 3);
        assert!(lifecycle.is_stopping());
        assert!(matches!(
            lifecycle.take_failure(),
            Some(ServerError::CommitPanicked)
        ));
        assert_eq!(queue.stat()?.messages, 0, "nothing was sent");
        queue.remove()?;
        Ok(())
    }

    /// A durability on a simulated disk, with one change appended and not
    /// yet durable (so replies for it are deferred), and no thread started.
    fn durability_on(queue: &OwnedQueue) -> Result<(Arc<Durability>, Lsn), Box<dyn Error>> {
        let lifecycle = Arc::new(Lifecycle::new(1, 1));
        let replier = Arc::new(Replier::new(
            queue.queue(),
            100,
            100,
            Arc::clone(&lifecycle),
        ));
        let config = JournalConfig {
            events: Some(vec![("E".into(), 5)]),
            ..JournalConfig::default()
        };
        let opened = Journal::open(Box::new(SimDisk::new()), "j", &config)?;
        let mut ledger = opened.ledger;
        let event = crate::ids::EventId::new(1).ok_or("event 1")?;
        let change = ledger
            .reserve(event, 1.try_into()?, None)
            .change()
            .ok_or("a change")?;
        let lsn = opened.journal.append(&change)?;
        let durability = Durability::new(Arc::new(opened.journal), replier, lifecycle);
        Ok((Arc::new(durability), lsn))
    }

    /// A worker syncs its own change only when that keeps nobody waiting:
    /// with the server's queue empty it leads (synced, reply sent, nothing
    /// queued); with a request waiting and no other receive loop, it hands
    /// its reply to the commit thread (queued, nothing synced), whose sync
    /// that request's change can join; with another loop receiving, it
    /// leads again, since that loop serves the request meanwhile.
    #[test]
    fn a_worker_leads_the_sync_only_when_nobody_else_waits() -> Result<(), Box<dyn Error>> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let to = ReplyTo::new(i64::from(std::process::id())).ok_or("pid")?;
        let reply = Reply::bare(Status::Ok, RequestId(1));
        let idle = |durability: &Durability| durability.lock().idle = true;
        // Alone: leads.
        let (alone, lsn) = durability_on(&queue)?;
        idle(&alone);
        alone.reply_when_durable(to, &reply, lsn);
        assert!(alone.journal.durable() >= lsn, "synced in the worker");
        assert!(alone.lock().queue.is_empty());
        let mut buf = crate::sysv::MessageBuf::with_body_capacity(BODY_SIZE)?;
        queue.recv(to.get(), &mut buf, Some(Instant::now()))?;
        // A request waits, and no other loop would receive it: hands over.
        queue.send(REQUEST_MTYPE, &[0; BODY_SIZE], None)?;
        let (busy, lsn) = durability_on(&queue)?;
        idle(&busy);
        busy.reply_when_durable(to, &reply, lsn);
        assert!(busy.journal.durable() < lsn, "nothing synced");
        assert_eq!(busy.lock().queue.len(), 1, "queued for the commit thread");
        assert_eq!(queue.stat()?.messages, 1, "nothing sent");
        // The same with another loop receiving: leads.
        let (served, lsn) = durability_on(&queue)?;
        idle(&served);
        let _receiving = served.lifecycle.receiving();
        served.reply_when_durable(to, &reply, lsn);
        assert!(served.journal.durable() >= lsn, "synced in the worker");
        assert_eq!(queue.stat()?.messages, 2, "the reply went out");
        queue.remove()?;
        Ok(())
    }

    /// The commit thread waits for the clients it answered, and stops
    /// waiting as soon as the last of them has queued its reply: not at
    /// its deadline (30 s here), and without counting a timeout.
    #[test]
    fn a_gather_ends_when_the_awaited_replies_are_queued() -> Result<(), Box<dyn Error>> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let (durability, lsn) = durability_on(&queue)?;
        let since = Instant::now();
        let gather = Gather {
            target: 2,
            deadline: since + Duration::from_secs(30),
            since,
        };
        let in_thread = Arc::clone(&durability);
        let gathering = std::thread::spawn(move || {
            let mut pacing = Pacing::default();
            in_thread.gather(gather, &mut pacing);
        });
        // Whether the gather polls before, between or after these, it ends
        // once both are queued.
        let to = ReplyTo::new(i64::from(std::process::id())).ok_or("pid")?;
        for id in 1..=2 {
            durability.reply_when_durable(to, &Reply::bare(Status::Ok, RequestId(id)), lsn);
        }
        gathering.join().map_err(|_| "the gather panicked")?;
        assert!(Instant::now() < gather.deadline, "ended by its deadline");
        let counters = durability.replier.counters.snapshot();
        assert_eq!(
            (counters.commit_waits, counters.commit_wait_timeouts),
            (1, 0)
        );
        assert_eq!(
            durability.lock().queue.len(),
            2,
            "both replies wait for the sync"
        );
        queue.remove()?;
        Ok(())
    }

    /// Clients that do not come back cost at most the gather's window.
    #[test]
    fn a_gather_nobody_answers_ends_at_its_deadline() -> Result<(), Box<dyn Error>> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT)?;
        let (durability, _) = durability_on(&queue)?;
        let since = Instant::now();
        let gather = Gather {
            target: 3,
            deadline: since + Duration::from_millis(1),
            since,
        };
        durability.gather(gather, &mut Pacing::default());
        assert!(Instant::now() >= gather.deadline);
        let counters = durability.replier.counters.snapshot();
        assert_eq!(
            (counters.commit_waits, counters.commit_wait_timeouts),
            (1, 1)
        );
        queue.remove()?;
        Ok(())
    }
}
