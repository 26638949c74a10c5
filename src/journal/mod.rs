//! The journal: an append-only file of checksummed records from which a
//! ledger is rebuilt after a crash, so that no booking answered OK is lost.
//!
//! A server keeps one when its builder is given a path
//! ([`Builder::journal`](crate::server::Builder::journal)); what a user
//! sees of it is what it recovered at start ([`Recovery`]), its counters
//! ([`JournalStats`]) and its errors ([`JournalError`]). With feature
//! `sim`, the journal's own API and `SimDisk`, an in-memory disk that
//! simulates power loss, are public too, for crash tests of your own.
//!
//! Inside: `handle` (the `Journal` itself), `record` (the bytes of one record: `len`, `seq`, CRC32C,
//! payload), `storage` (the file operations it needs), `state` (what the
//! journal keeps in memory: sequencing, the open file), `open` (opening a
//! journal, creating or replaying it), `writer` (appends, and one write +
//! `fdatasync` for every pending change), `replay` (reading back, torn
//! tail versus corruption), `compact` (replacing a grown journal by a
//! snapshot, crash-safely), `sim` (the simulated disk).
//!
//! How the server uses it, and the journal's own API, are documented on
//! `Journal` (feature `sim`) and in `docs/durability.md`.

mod compact;
mod error;
mod handle;
mod open;
mod record;
mod replay;
#[cfg(any(test, feature = "sim"))]
mod sim;
mod state;
mod storage;
mod writer;

pub use error::JournalError;

// The journal's own API is for crash tests (feature `sim`); a server user
// configures the journal through the builder and sees only what follows.
#[cfg(feature = "sim")]
pub use compact::Snapshot;
#[cfg(feature = "sim")]
pub use handle::{
    Journal, JournalConfig, Lsn, Opened, DEFAULT_COMPACT_MIN_BYTES, DEFAULT_GROUP_COMMIT_DELAY_US,
    DEFAULT_PREALLOCATE_BYTES, MAX_COMPACT_MIN_BYTES, MAX_GROUP_COMMIT_DELAY_US,
    MAX_PREALLOCATE_BYTES, MIN_COMPACT_MIN_BYTES,
};
#[cfg(not(feature = "sim"))]
pub(crate) use handle::{
    Journal, JournalConfig, Lsn, Opened, DEFAULT_COMPACT_MIN_BYTES, DEFAULT_GROUP_COMMIT_DELAY_US,
    DEFAULT_PREALLOCATE_BYTES, MAX_COMPACT_MIN_BYTES, MAX_GROUP_COMMIT_DELAY_US,
    MAX_PREALLOCATE_BYTES, MIN_COMPACT_MIN_BYTES,
};
#[cfg(all(test, not(feature = "sim")))]
pub(crate) use sim::{CrashMode, SimDisk};
#[cfg(feature = "sim")]
pub use sim::{CrashMode, SimDisk, SyncGate, SECTOR_BYTES};
#[cfg(not(feature = "sim"))]
pub(crate) use storage::Dir;
#[cfg(feature = "sim")]
pub use storage::{Dir, FsDir, LockGuard, Storage};

/// A journal is compacted once it is this many times the size of its last
/// snapshot (and at least `compact_min_bytes`): its size stays within a
/// constant factor of the live state, and compaction work stays linear in
/// the changes written.
pub(crate) const COMPACT_GROWTH_FACTOR: u64 = 2;
/// Most changes written and synced in one batch.
pub(crate) const MAX_BATCH_CHANGES: usize = 4096;
/// Most changes waiting for the disk at once. The server never comes near
/// it (each request appends at most one change, and at most
/// `MAX_DEFERRED_REPLIES` (8192) replies wait for the disk, plus those
/// being processed); past it, [`Journal::append`] fails.
pub(crate) const MAX_PENDING_CHANGES: usize = 1 << 16;

/// What opening a journal found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// No journal existed: a new one was created (and synced, name included).
    pub created: bool,
    /// Bookings restored from the snapshot of the last compaction.
    pub snapshot_bookings: u64,
    /// Changes replayed after the snapshot.
    pub changes_replayed: u64,
    /// A torn tail that was left out of the rewritten journal.
    pub torn_tail: Option<TornTail>,
    /// A compaction a crash interrupted left its file behind; it was removed.
    pub stale_compaction_removed: bool,
    /// The replayed ledger was written as a new journal (header and
    /// snapshot), synced and renamed into place before anything was
    /// served, because changes after the snapshot, a torn tail or an older
    /// format were found: whatever was replayed is now durable, even if it
    /// had only been read back from the page cache.
    pub rewritten: bool,
}

/// A partial or damaged last record, with nothing valid after it: what a
/// crash during a write leaves. It was never synced, so never acknowledged.
/// It is not kept: the journal is rewritten without it (see
/// [`Recovery::rewritten`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where it started: what came before it was replayed.
    pub offset: u64,
    /// Bytes from there to the file's end, preallocated zeros included.
    pub bytes: u64,
}

/// Counters of a journal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Changes appended since opening.
    pub changes_appended: u64,
    /// Changes written and synced by group commits.
    pub changes_synced: u64,
    /// `fdatasync`s of group commits (each covers one batch of changes).
    pub fsyncs: u64,
    /// Most changes one group commit covered.
    pub largest_batch: u64,
    /// Bytes written by group commits.
    pub bytes_written: u64,
    /// Time spent in their writes and `fdatasync`s, ns: over `fsyncs`,
    /// what one costs under the load it ran in.
    pub sync_ns: u64,
    /// The journal file's length now.
    pub file_bytes: u64,
    /// Compactions completed.
    pub compactions: u64,
    /// Compactions abandoned before they replaced the journal (the old
    /// journal stayed in use).
    pub compactions_failed: u64,
}

impl JournalStats {
    /// Mean changes per group-commit fsync; 0 before the first.
    pub fn changes_per_fsync(&self) -> f64 {
        if self.fsyncs == 0 {
            return 0.0;
        }
        self.changes_synced as f64 / self.fsyncs as f64
    }
}

#[cfg(test)]
mod holds_tests;
#[cfg(test)]
mod tests;
