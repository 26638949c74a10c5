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
//! Inside: `record` (the bytes of one record: `len`, `seq`, CRC32C,
//! payload), `storage` (the file operations it needs), `state` (what the
//! journal keeps in memory: sequencing, the open file), `open` (opening a
//! journal, creating or replaying it), `writer` (appends, and one write +
//! `fdatasync` for every pending change), `replay` (reading back, torn
//! tail versus corruption), `compact` (replacing a grown journal by a
//! snapshot, crash-safely), `sim` (the simulated disk).
//!
//! # How the server uses it
//!
//! Under the ledger lock, the server applies an operation and, if it
//! changed the ledger, [`append`](Journal::append)s the change (a memory
//! copy, no syscall), so the journal's order is the ledger's. It releases
//! the lock and hands the reply, with the change's number, to its group
//! commit (`server::durability`), which calls
//! [`wait_durable`](Journal::wait_durable) for everything appended so far —
//! one write and one `fdatasync` for the whole batch — and then sends every
//! reply whose change is durable, while the workers go on receiving. The
//! journal itself decides nothing about batching: `wait_durable` takes the
//! file (one writer at a time) and writes whatever is pending, so callers
//! that queue behind a write find their changes in it or share the next.
//!
//! Compaction never takes the caller's lock: under it, the caller hands
//! the ledger to [`snapshot_if_due`](Journal::snapshot_if_due) (a copy),
//! and after it, the [`Snapshot`] to
//! [`compact_in_background`](Journal::compact_in_background).
//!
//! Every reply waits, not only those that changed something: a QUERY, a
//! refusal or an idempotent retry waits for [`appended`](Journal::appended)
//! as it stood when the operation read the ledger. Otherwise a reply could
//! show a change that is not yet durable — a retried RESERVE could be
//! answered OK from a booking whose own OK is still waiting for its fsync —
//! and a crash would then take back something a client was told. When
//! nothing is waiting for the disk ([`durable`](Journal::durable) has
//! reached `appended`) the reply goes out at once.
//!
//! ```
//! use std::sync::Mutex;
//! use guichet::journal::{Journal, JournalConfig};
//! use guichet::{EventId, Operation};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("journal");
//! let config = JournalConfig {
//!     events: Some(vec![("Concert".into(), 10)]),
//!     ..JournalConfig::default()
//! };
//! let opened = Journal::open_path(&path, &config)?;
//! let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
//!
//! let event = EventId::new(1).unwrap();
//! let reserve = Operation::Reserve { event, quantity: 2.try_into()?, booking: None };
//! let lsn = {
//!     let mut ledger = ledger.lock().unwrap();
//!     let outcome = ledger.apply(&reserve);
//!     journal.append(&outcome.change().unwrap())?
//! };
//! journal.wait_durable(lsn)?; // now the booking survives a crash
//! journal.close()?;
//! drop(journal);
//!
//! let reopened = Journal::open_path(&path, &JournalConfig::default())?;
//! assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod compact;
mod error;
mod open;
mod record;
mod replay;
#[cfg(any(test, feature = "sim"))]
mod sim;
mod state;
mod storage;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

pub use compact::Snapshot;
pub use error::JournalError;
#[cfg(all(test, not(feature = "sim")))]
pub(crate) use sim::{CrashMode, SimDisk};
#[cfg(feature = "sim")]
pub use sim::{CrashMode, SimDisk, SyncGate, SECTOR_BYTES};
#[cfg(not(feature = "sim"))]
pub(crate) use storage::{Dir, FsDir, LockGuard};
#[cfg(feature = "sim")]
pub use storage::{Dir, FsDir, LockGuard, Storage};

use crate::ledger::Ledger;

use state::{FileState, State};

/// Journal size at which a compaction is first considered, by default.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 64 << 20;
/// Smallest `compact_min_bytes` accepted (tests use small ones).
pub const MIN_COMPACT_MIN_BYTES: u64 = 1 << 10;
/// Largest `compact_min_bytes` accepted.
pub const MAX_COMPACT_MIN_BYTES: u64 = 1 << 40;
/// A journal is compacted once it is this many times the size of its last
/// snapshot (and at least `compact_min_bytes`): its size stays within a
/// constant factor of the live state, and compaction work stays linear in
/// the changes written.
pub(crate) const COMPACT_GROWTH_FACTOR: u64 = 2;
/// `preallocate_bytes` when none is given.
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 1 << 20;
/// Largest `preallocate_bytes` accepted.
pub const MAX_PREALLOCATE_BYTES: u64 = 64 << 20;
/// `group_commit_delay_us` when none is given.
pub const DEFAULT_GROUP_COMMIT_DELAY_US: u32 = 0;
/// Largest `group_commit_delay_us` accepted.
pub const MAX_GROUP_COMMIT_DELAY_US: u32 = 10_000;
/// Most changes written and synced in one batch.
pub(crate) const MAX_BATCH_CHANGES: usize = 4096;
/// Most changes waiting for the disk at once. The server never comes near
/// it (each request appends at most one change, and at most
/// `MAX_DEFERRED_REPLIES` (8192) replies wait for the disk, plus those
/// being processed); past it, [`Journal::append`] fails.
pub(crate) const MAX_PENDING_CHANGES: usize = 1 << 16;

/// What a journal is opened with: the configuration of a new journal, and
/// what an existing one is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// The events. For a new journal, its events (`None`: none); for an
    /// existing one, `Some` must equal what it records (`None`: take them).
    pub events: Option<Vec<(String, u32)>>,
    /// Likewise for `max_bookings` (`None`: the journal's, or
    /// [`DEFAULT_MAX_BOOKINGS`](crate::ledger::DEFAULT_MAX_BOOKINGS) for a new one).
    pub max_bookings: Option<usize>,
    /// Journal size under which it is never compacted; clamped to
    /// [`MIN_COMPACT_MIN_BYTES`]..=[`MAX_COMPACT_MIN_BYTES`].
    pub compact_min_bytes: u64,
    /// Zeros written ahead of the journal's end, so that most fsyncs only
    /// overwrite data in place and need no metadata update (the file's size
    /// changes once per this many bytes); 0 writes none. Clamped to
    /// [`MAX_PREALLOCATE_BYTES`]. A journal ends at its first all-zero
    /// region.
    pub preallocate_bytes: u64,
    /// How long the server's group commit waits, when the last batch held
    /// more than one change, for the clients it just answered to send their
    /// next change, so that they join this batch instead of the next one
    /// (like PostgreSQL's `commit_delay`). 0 never waits; clamped to
    /// [`MAX_GROUP_COMMIT_DELAY_US`]. The journal's own
    /// [`wait_durable`](Journal::wait_durable) never waits.
    pub group_commit_delay_us: u32,
    /// Permission bits of the files [`Journal::open_path`] creates (the
    /// journal, its lock, its compaction's file), before the umask:
    /// owner-only (0600) by default, since a journal holds every booking.
    pub file_mode: u32,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            events: None,
            max_bookings: None,
            compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
            group_commit_delay_us: DEFAULT_GROUP_COMMIT_DELAY_US,
            file_mode: storage::DEFAULT_FILE_MODE,
        }
    }
}

/// A journal just opened, with the ledger it holds.
#[derive(Debug)]
pub struct Opened {
    /// The journal, ready to append to.
    pub journal: Journal,
    /// The ledger replayed from it (empty for a new journal).
    pub ledger: Ledger,
    /// What opening it found and did.
    pub recovery: Recovery,
}

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

/// A position in the sequence of changes appended since the journal was
/// opened: [`Journal::wait_durable`] waits until every change up to it is
/// on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

impl Lsn {
    /// Changes appended since opening, up to and including this one.
    pub const fn get(self) -> u64 {
        self.0
    }
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

#[derive(Default)]
struct Counters {
    /// Also the number of the last change appended: see `appended()`.
    changes_appended: AtomicU64,
    changes_synced: AtomicU64,
    fsyncs: AtomicU64,
    largest_batch: AtomicU64,
    bytes_written: AtomicU64,
    sync_ns: AtomicU64,
    file_bytes: AtomicU64,
    compactions: AtomicU64,
    compactions_failed: AtomicU64,
}

/// A journal open for appending. Share it between threads (`&Journal` or
/// `Arc<Journal>`); see the [module docs](self) for the protocol.
pub struct Journal {
    dir: Box<dyn Dir>,
    name: String,
    /// The directory its errors name files in (`open_path`'s), so that a
    /// message names a path the user gave, not a bare file name.
    shown_dir: Option<std::path::PathBuf>,
    /// Where a new journal or a compaction is written before it takes the name.
    aside_name: String,
    compact_min_bytes: u64,
    preallocate_bytes: u64,
    group_commit_delay: std::time::Duration,
    state: Mutex<State>,
    /// Signalled whenever a write ends or the journal fails.
    flushed: Condvar,
    /// Whoever writes holds it: a group commit, or a compaction's swap.
    /// Taken before `state` when both are.
    file: Mutex<FileState>,
    /// Set while `file` is held for a write: a lock-free hint.
    writing: AtomicBool,
    compaction_due: AtomicBool,
    compacting: AtomicBool,
    /// Mirrors `State::durable`, for readers that must not take the state
    /// lock (a reply deciding whether it needs to wait at all).
    durable_hint: AtomicU64,
    /// Mirrors `State::failed.is_some()`, likewise.
    failed_hint: AtomicBool,
    compactor: Mutex<Option<JoinHandle<()>>>,
    counters: Counters,
    recovery: Recovery,
    _lock: LockGuard,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir.describe())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// `error` as its user should read it: files named by their path.
    pub(crate) fn shown(&self, error: JournalError) -> JournalError {
        match &self.shown_dir {
            Some(dir) => error.in_dir(dir),
            None => error,
        }
    }

    /// Opens the journal at `path`, creating it if there is none; see
    /// [`Journal::open`].
    ///
    /// # Errors
    ///
    /// Those of [`Journal::open`]; [`JournalError::Io`] if `path` has no
    /// file name or one that is not UTF-8.
    pub fn open_path(path: &Path, config: &JournalConfig) -> Result<Opened, JournalError> {
        let refuse = |name: &Path, why: String| JournalError::Io {
            op: "open",
            name: name.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| refuse(path, "a journal path must end in a UTF-8 file name".into()))?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Said here, naming the directory: every later error would name
        // only the file it could not make.
        match std::fs::metadata(parent) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(refuse(parent, "not a directory".into())),
            Err(e) => {
                let why = format!("the journal's directory cannot be used: {e}");
                return Err(refuse(parent, why));
            }
        }
        let dir = FsDir::with_mode(parent, config.file_mode);
        let mut opened = Self::open(Box::new(dir), name, config).map_err(|e| e.in_dir(parent))?;
        opened.journal.shown_dir = Some(parent.to_path_buf());
        Ok(opened)
    }

    /// What opening the journal found and did.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The journal's file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How long the server's group commit waits for more changes when the
    /// last batch held more than one ([`JournalConfig::group_commit_delay_us`]).
    pub(crate) fn group_commit_delay(&self) -> std::time::Duration {
        self.group_commit_delay
    }

    /// Its counters so far.
    pub fn stats(&self) -> JournalStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        JournalStats {
            changes_appended: load(&c.changes_appended),
            changes_synced: load(&c.changes_synced),
            fsyncs: load(&c.fsyncs),
            largest_batch: load(&c.largest_batch),
            bytes_written: load(&c.bytes_written),
            sync_ns: load(&c.sync_ns),
            file_bytes: load(&c.file_bytes),
            compactions: load(&c.compactions),
            compactions_failed: load(&c.compactions_failed),
        }
    }

    // Both locks guard plain data and no code that can panic runs under
    // them, so a poisoned one still holds consistent values.
    fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_file(&self) -> MutexGuard<'_, FileState> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod holds_tests;
#[cfg(test)]
mod tests;
