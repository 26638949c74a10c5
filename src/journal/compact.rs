//! Compaction: once the journal has grown past its limit, the ledger is
//! written as a snapshot to a new file, which replaces the journal.
//!
//! Crash-safe at every point, because the journal's name only ever moves
//! from one complete, synced file to another:
//!
//! 1. under the caller's ledger lock (the one its appends are made
//!    under), [`Journal::snapshot_if_due`] copies the ledger it is handed
//!    (a table copy: no sorting, hashing or encoding) and notes the number
//!    of the last change it holds: a [`Snapshot`]. The journal never takes
//!    the caller's lock itself;
//! 2. without any lock, in the compaction's thread, the copy is sorted and
//!    encoded (header + snapshot records), written to `NAME.compact` and
//!    synced, while the server goes on appending to the old journal;
//! 3. owning the file (no flush runs), the changes synced to the old file
//!    since the snapshot are appended to the new one, which is synced,
//!    renamed over `NAME`, and the directory synced;
//! 4. appends go to the new file from then on.
//!
//! A crash before the rename leaves the old journal whole (and a stale
//! `NAME.compact`, removed at the next start); after it, the new one.
//! Failures before the rename abandon the compaction and keep the old
//! journal; from the rename on, the state on disk is unknown and the
//! journal fails.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use crate::ledger::{BookingState, Ledger, Origin};

use super::error::JournalError;
use super::record::{self, Header, MAX_SNAPSHOT_BOOKINGS_PER_RECORD};
use super::state::{compact_at, FileState, Retained, MAX_RETAINED_CHANGES};
use super::storage::{unwind_to_error, Dir, Storage};
use super::Journal;

/// A copy of a ledger and the number of the last change it holds, taken
/// under the lock its changes are appended under: what a compaction
/// writes. Made by [`Journal::snapshot_if_due`], consumed by
/// [`Journal::compact_in_background`].
#[derive(Debug)]
#[must_use = "a snapshot holds the compaction it began: hand it to compact_in_background"]
pub struct Snapshot {
    ledger: Ledger,
    after: u64,
}

/// A journal file's content as a compaction (or a new journal) starts it.
pub(crate) struct Image {
    pub(crate) bytes: Vec<u8>,
    /// Records in it: the number of the next one.
    pub(crate) next_seq: u64,
}

/// Encodes `ledger` as a header and snapshot records. Cancelled and
/// expired bookings come first, so replaying each as "reserve (or hold),
/// then cancel (or expire)" always finds
/// its seats free; ids are sorted so the same ledger gives the same bytes.
pub(crate) fn encode_image(ledger: &Ledger) -> Image {
    // As stored, not as the clock sees them now: this may run on a copy
    // made a while ago, and changes appended since (a CONFIRM made in time)
    // must still replay onto it. A due hold written as held is expired at
    // replay.
    let mut bookings: Vec<_> = ledger.stored_bookings().collect();
    bookings.sort_unstable_by_key(|(id, b)| {
        let live = matches!(b.state, BookingState::Active | BookingState::Held { .. });
        // Holds together, so that RESERVEs fill the smaller kind-4 records.
        (live, b.origin == Origin::Hold, *id)
    });
    let chunks = bookings.chunks(MAX_SNAPSHOT_BOOKINGS_PER_RECORD);
    let header = Header {
        format_version: record::FORMAT_VERSION,
        max_bookings: ledger.max_bookings() as u64,
        snapshot_records: chunks.len() as u64,
        events: ledger
            .events()
            .map(|e| (e.name.to_owned(), e.seats.capacity))
            .collect(),
    };
    let mut bytes = Vec::new();
    record::encode_header(&mut bytes, &header);
    let mut next_seq = 1;
    for chunk in chunks {
        record::encode_snapshot(&mut bytes, next_seq, chunk);
        next_seq += 1;
    }
    Image { bytes, next_seq }
}

/// Writes `bytes` as the whole of file `aside` and syncs it.
pub(crate) fn write_aside(
    dir: &dyn Dir,
    aside: &str,
    bytes: &[u8],
) -> Result<Box<dyn Storage>, JournalError> {
    let mut file = dir
        .create(aside)
        .map_err(JournalError::io("create", aside))?;
    file.write_at(0, bytes)
        .map_err(JournalError::io("write", aside))?;
    file.sync_data()
        .map_err(JournalError::io("fdatasync", aside))?;
    Ok(file)
}

/// Renames `aside` over `name` and syncs the directory.
pub(crate) fn rename_into_place(
    dir: &dyn Dir,
    aside: &str,
    name: &str,
) -> Result<(), JournalError> {
    dir.rename(aside, name)
        .map_err(JournalError::io("rename", aside))?;
    dir.sync()
        .map_err(JournalError::io("fsync", &dir.describe()))
}

/// How a compaction ended badly.
enum Stop {
    /// Before the rename: the old journal is intact and stays in use.
    Abandoned(JournalError),
    /// From the rename on: the journal fails.
    Fatal(JournalError),
}

impl Journal {
    /// If the journal has outgrown its limit and no compaction runs: step
    /// 1, a [`Snapshot`] of `ledger`, to hand to
    /// [`Journal::compact_in_background`] once the lock is released.
    /// Call it holding the lock that every [`append`](Journal::append) to
    /// this journal is made under, with the ledger that lock guards: the
    /// copy and the number of its last change must agree. Cheap when no
    /// compaction is due: one atomic load.
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] if the journal has failed.
    pub fn snapshot_if_due(&self, ledger: &Ledger) -> Result<Option<Snapshot>, JournalError> {
        if !self.compaction_due.load(Ordering::Acquire)
            || self.compacting.swap(true, Ordering::AcqRel)
        {
            return Ok(None);
        }
        self.compaction_due.store(false, Ordering::Release);
        self.snapshot(ledger).map(Some)
    }

    /// Steps 2 to 4 of the compaction `snapshot` began, in a background
    /// thread; returns whether it started one. Its failures are not
    /// returned: before its rename it is abandoned (counted in
    /// [`JournalStats::compactions_failed`](super::JournalStats)); after,
    /// the journal fails.
    pub fn compact_in_background(self: &Arc<Self>, snapshot: Snapshot) -> bool {
        let mut slot = self
            .compactor
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(finished) = slot.take() {
            // `compacting` was clear when the snapshot was taken, so the
            // previous compaction has returned or is returning.
            let _ = finished.join();
        }
        let journal = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("guichet-compact".into())
            .spawn(move || {
                // Its outcome is in the journal's state and counters.
                let _ = journal.install(snapshot);
            });
        match spawned {
            Ok(handle) => {
                *slot = Some(handle);
                true
            }
            Err(source) => {
                drop(slot);
                let _ = self.finish(Err(Stop::Abandoned(JournalError::Io {
                    op: "spawn compaction thread",
                    name: self.name.clone(),
                    source,
                })));
                false
            }
        }
    }

    #[cfg(any(test, feature = "sim"))]
    /// [`Journal::snapshot_if_due`], then, if due,
    /// [`Journal::compact_in_background`]; returns whether it started
    /// one. Call it under the lock `ledger`'s appends are made under (the
    /// thread is spawned under it too: a program that minds should use the
    /// two steps).
    ///
    /// # Errors
    ///
    /// [`JournalError::Failed`] if the journal has failed.
    pub fn compact_if_due(self: &Arc<Self>, ledger: &Ledger) -> Result<bool, JournalError> {
        Ok(match self.snapshot_if_due(ledger)? {
            Some(snapshot) => self.compact_in_background(snapshot),
            None => false,
        })
    }

    #[cfg(any(test, feature = "sim"))]
    /// Compacts now, in this thread, whatever the journal's size: snapshots
    /// `ledger` (under the caller's lock, as for
    /// [`Journal::snapshot_if_due`]) and installs it. Returns `false` if
    /// another compaction was running.
    ///
    /// ```
    /// # use guichet::journal::{Journal, JournalConfig, SimDisk};
    /// let disk = SimDisk::new();
    /// let config = JournalConfig { events: Some(vec![("E".into(), 5)]), ..Default::default() };
    /// let opened = Journal::open(Box::new(disk.clone()), "j", &config)?;
    /// assert!(opened.journal.compact(&opened.ledger)?);
    /// assert_eq!(opened.journal.stats().compactions, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Why it was abandoned (the old journal stays in use), or
    /// [`JournalError::Failed`] if the journal failed.
    pub fn compact(&self, ledger: &Ledger) -> Result<bool, JournalError> {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return Ok(false);
        }
        let snapshot = self.snapshot(ledger)?;
        self.install(snapshot).map(|()| true)
    }

    /// Step 1, with `compacting` set: a copy of the ledger, and the last
    /// change it holds (clears `compacting` if the journal has failed).
    fn snapshot(&self, ledger: &Ledger) -> Result<Snapshot, JournalError> {
        let mut st = self.lock_state();
        if let Some(cause) = &st.failed {
            let error = JournalError::Failed(Arc::clone(cause));
            drop(st);
            self.compacting.store(false, Ordering::Release);
            return Err(error);
        }
        let after = st.appended;
        st.retained = Some(Retained::new(after));
        drop(st);
        Ok(Snapshot {
            ledger: ledger.clone(),
            after,
        })
    }

    /// Steps 2 to 4, then clears `compacting`.
    fn install(&self, snapshot: Snapshot) -> Result<(), JournalError> {
        let Snapshot { ledger, after } = snapshot;
        let image = encode_image(&ledger);
        // Not kept while the image is written: a ledger and its image at
        // once would double the compaction's memory for nothing.
        drop(ledger);
        // A panicking `Storage` before the swap (which catches its own)
        // leaves the old journal whole: abandon, and clear `compacting`
        // so that a later compaction can still bound the journal.
        let result = unwind_to_error("compaction", &self.aside_name, Stop::Abandoned, || {
            self.install_steps(image, after)
        });
        self.finish(result)
    }

    fn install_steps(&self, image: Image, after: u64) -> Result<(), Stop> {
        let aside =
            write_aside(&*self.dir, &self.aside_name, &image.bytes).map_err(Stop::Abandoned)?;
        // Own the file: wait for a write under way, then keep others out.
        let mut file = self.lock_file();
        let mut st = self.lock_state();
        if let Some(cause) = &st.failed {
            return Err(Stop::Abandoned(JournalError::Failed(Arc::clone(cause))));
        }
        let retained = match st.retained.take() {
            Some(r) if !r.overflowed => r,
            _ => {
                return Err(Stop::Abandoned(JournalError::CompactionOutpaced {
                    max: MAX_RETAINED_CHANGES,
                }))
            }
        };
        drop(st);
        self.writing.store(true, Ordering::Release);
        // As in a write: a panicking `Storage` must not unwind past here.
        // Where the swap stopped is unknown, so the journal fails.
        let swapped = unwind_to_error("compaction", &self.name, Stop::Fatal, || {
            self.swap(&mut file, aside, &image, &retained)
        });
        self.writing.store(false, Ordering::Release);
        let mut st = self.lock_state();
        if swapped.is_ok() {
            // Changes up to `after` not yet written are in the snapshot,
            // which is now the journal: durable, and not to be written again.
            while st.pending.front().is_some_and(|(lsn, _)| *lsn <= after) {
                st.pending.pop_front();
            }
            self.set_durable(&mut st, after);
        }
        self.flushed.notify_all();
        drop(st);
        drop(file);
        swapped
    }

    /// Step 3, owning the file.
    fn swap(
        &self,
        file: &mut FileState,
        mut aside: Box<dyn Storage>,
        image: &Image,
        retained: &Retained,
    ) -> Result<(), Stop> {
        let mut tail = Vec::new();
        let mut seq = image.next_seq;
        for batch in retained.changes.chunks(super::MAX_BATCH_CHANGES) {
            record::encode_batch(&mut tail, seq, batch);
            seq += 1;
        }
        let image_len = image.bytes.len() as u64;
        if !tail.is_empty() {
            aside
                .write_at(image_len, &tail)
                .map_err(JournalError::io("write", &self.aside_name))
                .map_err(Stop::Abandoned)?;
            aside
                .sync_data()
                .map_err(JournalError::io("fdatasync", &self.aside_name))
                .map_err(Stop::Abandoned)?;
        }
        rename_into_place(&*self.dir, &self.aside_name, &self.name).map_err(Stop::Fatal)?;
        file.storage = aside;
        file.len_bytes = image_len + tail.len() as u64;
        file.allocated_bytes = file.len_bytes;
        file.next_seq = seq;
        file.compact_at_bytes = compact_at(self.compact_min_bytes, file.len_bytes);
        self.counters
            .file_bytes
            .store(file.len_bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Publishes a compaction's end and clears `compacting`.
    fn finish(&self, result: Result<(), Stop>) -> Result<(), JournalError> {
        let outcome = match result {
            Ok(()) => {
                self.counters.compactions.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(Stop::Abandoned(error)) => {
                // Best effort: a leftover file is removed at the next start.
                let _ = self.dir.remove(&self.aside_name);
                self.lock_state().retained = None;
                self.counters
                    .compactions_failed
                    .fetch_add(1, Ordering::Relaxed);
                let mut file = self.lock_file();
                // Try again after as much growth again, not at every flush.
                file.compact_at_bytes = file.len_bytes.saturating_add(self.compact_min_bytes);
                Err(self.shown(error))
            }
            Err(Stop::Fatal(error)) => {
                let mut st = self.lock_state();
                let cause = self.fail(&mut st, error);
                Err(JournalError::Failed(cause))
            }
        };
        self.compacting.store(false, Ordering::Release);
        outcome
    }
}
