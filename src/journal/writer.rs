//! Appending changes, and writing them: one write and one `fdatasync`
//! for every change appended so far, whoever asks.
//!
//! The journal decides nothing about *when* to write: it has no thread,
//! no delay, no leader election. Whoever needs a change durable calls
//! [`Journal::wait_durable`], which takes the file (its lock is the only
//! order between writers), and, unless a write that ended meanwhile made
//! the change durable already, writes and syncs everything pending. Callers
//! queued on the file lock while a write runs find their changes in it, or
//! write the next batch together. When a server writes is decided by its
//! group commit (`server::durability`), the one place that batches.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, PoisonError};

use crate::ledger::Change;

use super::error::JournalError;
use super::record;
use super::state::{FileState, State};
use super::storage::unwind_to_error;
use super::{Journal, Lsn, MAX_BATCH_CHANGES, MAX_PENDING_CHANGES};

/// How often [`Journal::close_by`] looks whether the compaction thread
/// has returned.
const CLOSE_POLL: std::time::Duration = std::time::Duration::from_millis(1);

/// Whether waiting for `lsn` is over, and how: the journal failed (now or
/// earlier), or every change up to `lsn` is durable. An `Lsn` from another
/// journal could name a change never appended here, so the wait is for
/// `lsn` or the last change appended, whichever is first: waiting for a
/// change that will never come would never end.
fn settled(st: &State, lsn: Lsn) -> Option<Result<(), JournalError>> {
    if let Some(cause) = &st.failed {
        return Some(Err(JournalError::Failed(Arc::clone(cause))));
    }
    (st.durable >= lsn.0.min(st.appended)).then_some(Ok(()))
}

impl Journal {
    /// Records a change the ledger just made; call it under the ledger's
    /// lock, right after the change, so the journal's order is the
    /// ledger's. A memory copy: no syscall, no wait. The change is durable
    /// once [`Journal::wait_durable`] for the returned number returns Ok.
    ///
    /// ```
    /// # use guichet::journal::{Journal, JournalConfig, SimDisk};
    /// # let config = JournalConfig { events: Some(vec![("E".into(), 5)]), ..Default::default() };
    /// # let opened = Journal::open(Box::new(SimDisk::new()), "j", &config)?;
    /// # let (journal, mut ledger) = (opened.journal, opened.ledger);
    /// let outcome = ledger.reserve(guichet::EventId::new(1).unwrap(), 2.try_into()?, None);
    /// let lsn = journal.append(&outcome.change().expect("a new booking"))?;
    /// assert_eq!(journal.appended(), lsn);
    /// journal.wait_durable(lsn)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] once the journal has failed;
    /// [`JournalError::Backlog`] (which fails the journal, since the ledger
    /// now holds a change the journal does not) past
    /// `MAX_PENDING_CHANGES` changes waiting.
    pub fn append(&self, change: &Change) -> Result<Lsn, JournalError> {
        let mut st = self.lock_state();
        if let Some(cause) = &st.failed {
            return Err(JournalError::Failed(Arc::clone(cause)));
        }
        let pending = st.pending.len();
        if pending >= MAX_PENDING_CHANGES {
            let cause = self.fail(
                &mut st,
                JournalError::Backlog {
                    pending,
                    max: MAX_PENDING_CHANGES,
                },
            );
            return Err(JournalError::Failed(cause));
        }
        st.appended += 1;
        let lsn = st.appended;
        st.pending.push_back((lsn, *change));
        // Under the state lock, so it moves in step with `st.appended`:
        // `appended()` reads it without the lock.
        self.counters.changes_appended.store(lsn, Ordering::Release);
        Ok(Lsn(lsn))
    }

    /// The number of the last change appended. A reply that read the
    /// ledger waits for it (taken under the ledger lock) so it never shows
    /// a change that is not durable yet. Lock-free: every read-only request
    /// asks, under the ledger lock.
    pub fn appended(&self) -> Lsn {
        Lsn(self.counters.changes_appended.load(Ordering::Acquire))
    }

    /// The number of the last change known to be on disk. Lock-free: a
    /// reply can ask whether it needs to wait at all without contending
    /// with appends.
    pub fn durable(&self) -> Lsn {
        Lsn(self.durable_hint.load(Ordering::Acquire))
    }

    /// Whether the journal has failed (see [`JournalError::Failed`]).
    /// Lock-free.
    pub fn is_failed(&self) -> bool {
        self.failed_hint.load(Ordering::Acquire)
    }

    /// [`JournalError::Failed`] with the first failure's cause, if the
    /// journal has failed. Lock-free when it has not.
    pub(crate) fn check_failed(&self) -> Result<(), JournalError> {
        if !self.is_failed() {
            return Ok(());
        }
        match &self.lock_state().failed {
            Some(cause) => Err(JournalError::Failed(Arc::clone(cause))),
            None => Ok(()),
        }
    }

    /// Whether a write (or a compaction's swap) holds the file now: a
    /// hint, lock-free, for a caller deciding whether to write itself.
    pub(crate) fn is_flushing(&self) -> bool {
        self.writing.load(Ordering::Acquire)
    }

    /// Advances the durable point (under the state lock).
    pub(crate) fn set_durable(&self, st: &mut State, lsn: u64) {
        st.durable = st.durable.max(lsn);
        self.durable_hint.store(st.durable, Ordering::Release);
    }

    /// Waits until every change up to `lsn` is on disk: takes the file
    /// (waiting for a write under way), and if `lsn` is still not durable,
    /// writes and syncs every change appended so far (up to
    /// `MAX_BATCH_CHANGES` at a time). Returns at once if `lsn` is durable.
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] if the journal has failed, now or earlier,
    /// even if `lsn` itself reached the disk: after a failure the server
    /// sends no reply that depends on the journal.
    pub fn wait_durable(&self, lsn: Lsn) -> Result<(), JournalError> {
        if let Some(settled) = settled(&self.lock_state(), lsn) {
            return settled;
        }
        loop {
            let file = self.lock_file();
            let st = self.lock_state();
            if let Some(settled) = settled(&st, lsn) {
                return settled;
            }
            self.write_pending(file, st);
        }
    }

    #[cfg(any(test, feature = "sim"))]
    /// Stops: waits for a running compaction, then writes and syncs every
    /// change appended. Without a deadline: a disk whose fdatasync hangs
    /// holds it for ever; [`Journal::close_by`] is bounded.
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] if the journal failed, now or earlier.
    pub fn close(&self) -> Result<(), JournalError> {
        let compactor = self.take_compactor();
        if let Some(handle) = compactor {
            // The compactor returns its errors through the journal's state;
            // a panic there is a bug, and leaves the old journal in use.
            let _ = handle.join();
        }
        self.wait_durable(self.appended())
    }

    /// Like [`Journal::close`], but returns by `deadline` whatever the
    /// disk does: the compaction thread is waited for until then (and left
    /// to finish on its own after), and the last changes are written and
    /// synced by a helper thread while this one waits until then at most.
    /// A syscall cannot be interrupted, so a hung `fdatasync` keeps its
    /// thread (and this journal, which that thread holds) alive after this
    /// returns; the process can still exit.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use std::time::{Duration, Instant};
    /// # use guichet::journal::{Journal, JournalConfig, JournalError, SimDisk};
    /// let disk = SimDisk::new();
    /// let config = JournalConfig { events: Some(vec![("E".into(), 5)]), ..Default::default() };
    /// let opened = Journal::open(Box::new(disk.clone()), "j", &config)?;
    /// let (journal, mut ledger) = (Arc::new(opened.journal), opened.ledger);
    /// let outcome = ledger.reserve(guichet::EventId::new(1).unwrap(), 2.try_into()?, None);
    /// journal.append(&outcome.change().expect("a new booking"))?;
    /// let stalled = disk.hold_syncs(); // the disk stops answering
    /// let closed = journal.close_by(Instant::now() + Duration::from_millis(50));
    /// assert!(matches!(closed, Err(JournalError::Unconfirmed { changes: 1, .. })));
    /// drop(stalled);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] if the journal failed, now or earlier;
    /// [`JournalError::Unconfirmed`] if the deadline passed first (the
    /// changes not confirmed were never acknowledged by the server, which
    /// answers a change only once it is durable).
    pub fn close_by(self: &Arc<Self>, deadline: std::time::Instant) -> Result<(), JournalError> {
        let started = std::time::Instant::now();
        let compactor = self.take_compactor();
        if let Some(handle) = compactor {
            // JoinHandle has no timed join: poll until it has returned.
            while !handle.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(CLOSE_POLL);
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
            // Else dropped: detached, it finishes on its own.
        }
        let target = self.appended();
        if self.durable() < target && !self.is_failed() {
            let journal = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("guichet-close".into())
                .spawn(move || {
                    // Its outcome is in the journal's state.
                    let _ = journal.wait_durable(target);
                });
            if spawned.is_err() {
                // No thread to spare: flush in this one, unbounded, rather
                // than leave the changes unwritten.
                return self.wait_durable(target);
            }
        }
        let mut st = self.lock_state();
        loop {
            if let Some(settled) = settled(&st, target) {
                return settled;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(self.shown(JournalError::Unconfirmed {
                    name: self.name.clone(),
                    changes: st.appended - st.durable,
                    waited_ms: u64::try_from(now.duration_since(started).as_millis())
                        .unwrap_or(u64::MAX),
                }));
            }
            st = self
                .flushed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The running (or finished, not yet joined) compaction's thread.
    fn take_compactor(&self) -> Option<std::thread::JoinHandle<()>> {
        self.compactor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Records the first failure and wakes every waiter; returns the cause.
    pub(crate) fn fail(&self, st: &mut State, error: JournalError) -> Arc<JournalError> {
        let cause = Arc::clone(st.failed.get_or_insert_with(|| Arc::new(self.shown(error))));
        self.failed_hint.store(true, Ordering::Release);
        self.flushed.notify_all();
        cause
    }

    /// Writes and syncs the pending changes (a batch of them), holding
    /// the file, then publishes the result. `st` is released during the
    /// write, so that appends go on.
    fn write_pending(&self, mut file: MutexGuard<'_, FileState>, mut st: MutexGuard<'_, State>) {
        if st.pending.is_empty() {
            // Unreachable by the invariant on `State` (the caller saw its
            // change neither durable nor failed); fail loudly rather than
            // spin or acknowledge.
            let error = JournalError::Io {
                op: "group commit",
                name: self.name.clone(),
                source: std::io::Error::other(
                    "internal error: changes neither pending nor durable",
                ),
            };
            self.fail(&mut st, error);
            return;
        }
        let n = st.pending.len().min(MAX_BATCH_CHANGES);
        let batch: Vec<(u64, Change)> = st.pending.drain(..n).collect();
        drop(st);
        self.writing.store(true, Ordering::Release);
        let started = std::time::Instant::now();
        // A `Storage` is the caller's code and may panic. Unwinding past
        // here would lose the batch silently; a panic fails the journal
        // like an I/O error instead (the batch's fate on disk is unknown,
        // so nothing more is acked).
        let result = unwind_to_error(
            "group commit",
            &self.name,
            |e| e,
            || self.write_batch(&mut file, &batch),
        );
        let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.counters.sync_ns.fetch_add(took, Ordering::Relaxed);
        self.writing.store(false, Ordering::Release);
        let mut st = self.lock_state();
        match result {
            Ok(()) => {
                if let Some(&(last, _)) = batch.last() {
                    self.set_durable(&mut st, last);
                }
                if let Some(retained) = &mut st.retained {
                    retained.keep(&batch);
                }
                self.flushed.notify_all();
            }
            Err(error) => {
                self.fail(&mut st, error);
            }
        }
    }

    fn write_batch(
        &self,
        file: &mut FileState,
        batch: &[(u64, Change)],
    ) -> Result<(), JournalError> {
        file.scratch.clear(); // One record for the whole batch: one checksum over everything this
                              // fdatasync covers, so a crash before it can only leave a damaged
                              // last record (see `record`), never a damaged one before sound ones.
        let changes: Vec<Change> = batch.iter().map(|(_, change)| *change).collect();
        if !changes.is_empty() {
            record::encode_batch(&mut file.scratch, file.next_seq, &changes);
        }
        let records_bytes = file.scratch.len() as u64;
        let end = file.len_bytes + records_bytes;
        let allocated = if end > file.allocated_bytes && self.preallocate_bytes > 0 {
            // Zeros ahead, in the same write: the size (metadata) changes
            // once per `preallocate_bytes`, and the fdatasyncs in between
            // only overwrite data in place.
            file.scratch
                .resize((records_bytes + self.preallocate_bytes) as usize, 0);
            end + self.preallocate_bytes
        } else {
            file.allocated_bytes.max(end)
        };
        file.storage
            .write_at(file.len_bytes, &file.scratch)
            .map_err(JournalError::io("write", &self.name))?;
        file.len_bytes = end;
        file.allocated_bytes = allocated;
        file.next_seq += u64::from(!changes.is_empty());
        file.storage
            .sync_data()
            .map_err(JournalError::io("fdatasync", &self.name))?;
        let c = &self.counters;
        c.fsyncs.fetch_add(1, Ordering::Relaxed);
        c.changes_synced
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        c.bytes_written.fetch_add(records_bytes, Ordering::Relaxed);
        c.largest_batch
            .fetch_max(batch.len() as u64, Ordering::Relaxed);
        c.file_bytes.store(file.len_bytes, Ordering::Relaxed);
        if file.len_bytes >= file.compact_at_bytes && !self.compacting.load(Ordering::Acquire) {
            self.compaction_due.store(true, Ordering::Release);
        }
        Ok(())
    }
}
