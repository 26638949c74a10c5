//! What a journal keeps in memory: the sequencing of changes (under the
//! state lock) and the open file (under the file lock). Plain data, shared
//! by the writer and the compaction, which each own one step of it.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ledger::Change;

use super::error::JournalError;
use super::storage::Storage;
use super::COMPACT_GROWTH_FACTOR;

/// Most changes a compaction in progress keeps aside (those synced to the
/// old file after its snapshot, to be copied to the new one). Past it the
/// compaction is abandoned and retried later.
pub(crate) const MAX_RETAINED_CHANGES: usize = 1 << 20;

/// Sequencing, under the state lock. Every change numbered in
/// `(durable, appended]` is in `pending` or in the batch being written.
#[derive(Default)]
pub(crate) struct State {
    /// Last number given to a change.
    pub(crate) appended: u64,
    /// Every change up to this number is on disk.
    pub(crate) durable: u64,
    /// Changes not yet taken by a write, in order.
    pub(crate) pending: VecDeque<(u64, Change)>,
    /// The first failure; once set, nothing more is written or acknowledged.
    pub(crate) failed: Option<Arc<JournalError>>,
    /// Set while a compaction runs.
    pub(crate) retained: Option<Retained>,
}

/// Changes synced to the old file after a compaction's snapshot.
pub(crate) struct Retained {
    /// The snapshot holds every change up to this number.
    pub(crate) after: u64,
    pub(crate) changes: Vec<Change>,
    pub(crate) overflowed: bool,
}

impl Retained {
    pub(crate) fn new(after: u64) -> Self {
        Self {
            after,
            changes: Vec::new(),
            overflowed: false,
        }
    }

    /// Keeps the changes of a batch just synced that the snapshot lacks.
    pub(crate) fn keep(&mut self, batch: &[(u64, Change)]) {
        let after = self.after;
        self.changes
            .extend(batch.iter().filter(|(l, _)| *l > after).map(|(_, c)| *c));
        if self.changes.len() > MAX_RETAINED_CHANGES {
            self.overflowed = true;
            self.changes.clear();
        }
    }
}

/// The open file, under the file lock: whoever holds it writes (a group
/// commit, or a compaction's swap), and nobody else.
pub(crate) struct FileState {
    pub(crate) storage: Box<dyn Storage>,
    /// Where the next record goes.
    pub(crate) len_bytes: u64,
    /// The file's length: zeros from `len_bytes` to here.
    pub(crate) allocated_bytes: u64,
    /// Number of the next record.
    pub(crate) next_seq: u64,
    /// Reused encoding buffer: at most a batch of records.
    pub(crate) scratch: Vec<u8>,
    /// Compaction is due once the file reaches this size.
    pub(crate) compact_at_bytes: u64,
}

impl FileState {
    /// A file that ends at `len_bytes` with nothing after, whose next
    /// record is `next_seq` and whose last snapshot took `base_bytes`.
    pub(crate) fn new(
        storage: Box<dyn Storage>,
        len_bytes: u64,
        next_seq: u64,
        compact_min_bytes: u64,
    ) -> Self {
        Self {
            storage,
            len_bytes,
            allocated_bytes: len_bytes,
            next_seq,
            scratch: Vec::new(),
            compact_at_bytes: compact_at(compact_min_bytes, len_bytes),
        }
    }

    /// A replayed file kept as it is: its records end at `len_bytes`,
    /// preallocated zeros follow up to `physical_bytes`.
    pub(crate) fn reopened(
        storage: Box<dyn Storage>,
        (len_bytes, physical_bytes): (u64, u64),
        next_seq: u64,
        base_bytes: u64,
        compact_min_bytes: u64,
    ) -> Self {
        Self {
            allocated_bytes: physical_bytes,
            compact_at_bytes: compact_at(compact_min_bytes, base_bytes),
            ..Self::new(storage, len_bytes, next_seq, compact_min_bytes)
        }
    }
}

/// Size at which a journal whose last snapshot took `base_bytes` is compacted.
pub(crate) fn compact_at(compact_min_bytes: u64, base_bytes: u64) -> u64 {
    compact_min_bytes.max(base_bytes.saturating_mul(COMPACT_GROWTH_FACTOR))
}
