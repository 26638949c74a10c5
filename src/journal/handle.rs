//! The journal's handle: what opens it, appends to it and waits for the
//! disk. Public with feature `sim` (for crash tests of your own), crate-only
//! otherwise: a server user configures the journal through the server's
//! builder.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crate::ledger::Ledger;

use super::state::{FileState, State};
use super::storage::{self, Dir, FsDir, LockGuard};
use super::{JournalError, JournalStats, Recovery};

/// Journal size at which a compaction is first considered, by default.
pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 64 << 20;
/// Smallest `compact_min_bytes` accepted (tests use small ones).
pub const MIN_COMPACT_MIN_BYTES: u64 = 1 << 10;
/// Largest `compact_min_bytes` accepted.
pub const MAX_COMPACT_MIN_BYTES: u64 = 1 << 40;
/// `preallocate_bytes` when none is given.
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 1 << 20;
/// Largest `preallocate_bytes` accepted.
pub const MAX_PREALLOCATE_BYTES: u64 = 64 << 20;
/// `group_commit_delay_us` when none is given.
pub const DEFAULT_GROUP_COMMIT_DELAY_US: u32 = 0;
/// Largest `group_commit_delay_us` accepted.
pub const MAX_GROUP_COMMIT_DELAY_US: u32 = 10_000;

/// What a journal is opened with: the configuration of a new journal, and
/// what an existing one is checked against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// The events. For a new journal, its events (`None`: none); for an
    /// existing one, `Some` must equal what it records (`None`: take them).
    pub events: Option<Vec<(String, u32)>>,
    /// Likewise for `max_bookings` (`None`: the journal's, or
    /// [`Ledger::DEFAULT_MAX_BOOKINGS`](crate::ledger::Ledger::DEFAULT_MAX_BOOKINGS) for a new one).
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
    #[cfg_attr(not(feature = "sim"), allow(dead_code))]
    pub recovery: Recovery,
}

/// A position in the sequence of changes appended since the journal was
/// opened: [`Journal::wait_durable`] waits until every change up to it is
/// on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub(super) u64);

impl Lsn {
    /// Changes appended since opening, up to and including this one.
    pub const fn get(self) -> u64 {
        self.0
    }
}

#[derive(Default)]
pub(super) struct Counters {
    /// Also the number of the last change appended: see `appended()`.
    pub(super) changes_appended: AtomicU64,
    pub(super) changes_synced: AtomicU64,
    pub(super) fsyncs: AtomicU64,
    pub(super) largest_batch: AtomicU64,
    pub(super) bytes_written: AtomicU64,
    pub(super) sync_ns: AtomicU64,
    pub(super) file_bytes: AtomicU64,
    pub(super) compactions: AtomicU64,
    pub(super) compactions_failed: AtomicU64,
}

/// A journal open for appending. Share it between threads (`&Journal` or
/// `Arc<Journal>`).
///
/// # How the server uses it
///
/// Under the ledger lock, the server applies an operation and, if it
/// changed the ledger, [`append`](Journal::append)s the change (a memory
/// copy, no syscall), so the journal's order is the ledger's. It releases
/// the lock and hands the reply, with the change's number, to its group
/// commit (`server::durability`), which calls
/// [`wait_durable`](Journal::wait_durable) for everything appended so far —
/// one write and one `fdatasync` for the whole batch — and then sends every
/// reply whose change is durable, while the workers go on receiving. The
/// journal itself decides nothing about batching: `wait_durable` takes the
/// file (one writer at a time) and writes whatever is pending, so callers
/// that queue behind a write find their changes in it or share the next.
///
/// Compaction never takes the caller's lock: under it, the caller hands
/// the ledger to [`snapshot_if_due`](Journal::snapshot_if_due) (a copy),
/// and after it, the [`Snapshot`](super::Snapshot) to
/// [`compact_in_background`](Journal::compact_in_background).
///
/// Every reply waits, not only those that changed something: a QUERY, a
/// refusal or an idempotent retry waits for [`appended`](Journal::appended)
/// as it stood when the operation read the ledger. Otherwise a reply could
/// show a change that is not yet durable — a retried RESERVE could be
/// answered OK from a booking whose own OK is still waiting for its fsync —
/// and a crash would then take back something a client was told. When
/// nothing is waiting for the disk ([`durable`](Journal::durable) has
/// reached `appended`) the reply goes out at once.
///
/// ```
/// use std::sync::Mutex;
/// use guichet::journal::{Journal, JournalConfig};
/// use guichet::{EventId, Operation};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("journal");
/// let config = JournalConfig {
///     events: Some(vec![("Concert".into(), 10)]),
///     ..JournalConfig::default()
/// };
/// let opened = Journal::open_path(&path, &config)?;
/// let (journal, ledger) = (opened.journal, Mutex::new(opened.ledger));
///
/// let event = EventId::new(1).unwrap();
/// let reserve = Operation::Reserve { event, quantity: 2.try_into()?, booking: None };
/// let lsn = {
///     let mut ledger = ledger.lock().unwrap();
///     let outcome = ledger.apply(&reserve);
///     journal.append(&outcome.change().unwrap())?
/// };
/// journal.wait_durable(lsn)?; // now the booking survives a crash
/// journal.close()?;
/// drop(journal);
///
/// let reopened = Journal::open_path(&path, &JournalConfig::default())?;
/// assert_eq!(reopened.ledger, ledger.into_inner().unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Journal {
    pub(super) dir: Box<dyn Dir>,
    pub(super) name: String,
    /// The directory its errors name files in (`open_path`'s), so that a
    /// message names a path the user gave, not a bare file name.
    pub(super) shown_dir: Option<std::path::PathBuf>,
    /// Where a new journal or a compaction is written before it takes the name.
    pub(super) aside_name: String,
    pub(super) compact_min_bytes: u64,
    pub(super) preallocate_bytes: u64,
    pub(super) group_commit_delay: std::time::Duration,
    pub(super) state: Mutex<State>,
    /// Signalled whenever a write ends or the journal fails.
    pub(super) flushed: Condvar,
    /// Whoever writes holds it: a group commit, or a compaction's swap.
    /// Taken before `state` when both are.
    pub(super) file: Mutex<FileState>,
    /// Set while `file` is held for a write: a lock-free hint.
    pub(super) writing: AtomicBool,
    pub(super) compaction_due: AtomicBool,
    pub(super) compacting: AtomicBool,
    /// Mirrors `State::durable`, for readers that must not take the state
    /// lock (a reply deciding whether it needs to wait at all).
    pub(super) durable_hint: AtomicU64,
    /// Mirrors `State::failed.is_some()`, likewise.
    pub(super) failed_hint: AtomicBool,
    pub(super) compactor: Mutex<Option<JoinHandle<()>>>,
    pub(super) counters: Counters,
    pub(super) recovery: Recovery,
    pub(super) _lock: LockGuard,
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

    #[cfg(any(test, feature = "sim"))]
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
    pub(super) fn lock_state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn lock_file(&self) -> MutexGuard<'_, FileState> {
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
