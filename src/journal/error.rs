use std::io;
use std::sync::Arc;

use crate::ledger::{ConfigError, InvariantError, ReplayError};

/// Why a journal could not be opened, or why it stopped accepting changes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A file operation failed; `source` keeps the errno.
    #[error("journal {name}: {op} failed: {source}")]
    Io {
        /// What was being done (`"fdatasync"`, `"write"`, `"rename"`…).
        op: &'static str,
        /// The file or directory concerned.
        name: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file is damaged where no crash could have damaged it: a bad
    /// record followed by valid ones, a damaged header or snapshot, a record
    /// out of sequence. The journal refuses to start rather than drop data:
    /// what follows the offset may hold acknowledged changes.
    #[error(
        "journal {name} is corrupt at byte offset {offset}: {reason}. Nothing was changed. \
         The records before offset {offset} are sound; those from it on may hold bookings \
         that clients were told are confirmed, so the server will not guess. Keep a copy \
         of the file first. Restoring it from a backup keeps everything; truncating it at \
         byte {offset} (`truncate -s {offset} FILE`) keeps every change recorded before \
         the offset and loses only the records from it on"
    )]
    Corrupt {
        /// The journal file.
        name: String,
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// A change recorded in the journal does not apply to the state the
    /// records before it built.
    #[error("journal {name}: the record at byte offset {offset} does not replay: {source}")]
    Replay {
        /// The journal file.
        name: String,
        /// Byte offset of the record.
        offset: u64,
        /// Why the ledger refused it.
        #[source]
        source: ReplayError,
    },
    /// The replayed ledger breaks an invariant.
    #[error("journal {name}: the replayed ledger is inconsistent: {source}")]
    Invariant {
        /// The journal file.
        name: String,
        /// The broken invariant.
        #[source]
        source: InvariantError,
    },
    /// The configuration given for a new journal, or the one an existing
    /// journal's header holds, is one no ledger accepts.
    #[error("journal {name}: invalid ledger configuration: {source}")]
    Config {
        /// The journal file.
        name: String,
        /// Why the ledger refused it.
        #[source]
        source: ConfigError,
    },
    /// The configuration given disagrees with the one the journal records.
    #[error(
        "journal {name} was created with {recorded}, but {given} was given: the journal's \
         configuration is authoritative; drop the option or make it match"
    )]
    Mismatch {
        /// The journal file.
        name: String,
        /// The configuration in the journal.
        recorded: String,
        /// The configuration given.
        given: String,
    },
    /// Another process has the journal open.
    #[error("journal {name} is in use by another process (lock {lock} is held)")]
    Locked {
        /// The journal file.
        name: String,
        /// The lock file.
        lock: String,
    },
    /// The file exists but is not a journal (empty, or no valid header).
    #[error("{name} is not a guichet journal: {reason}. Refusing to touch it; pick another path")]
    NotAJournal {
        /// The file.
        name: String,
        /// What was found.
        reason: String,
    },
    /// More changes wait for the disk than the journal holds in memory:
    /// callers appended without waiting for durability.
    #[error("{pending} changes are waiting for the disk; at most {max} may")]
    Backlog {
        /// Changes waiting.
        pending: usize,
        /// The limit.
        max: usize,
    },
    /// A compaction was abandoned (the old journal stays in use) because
    /// more changes were synced while it wrote its snapshot than it keeps
    /// aside to append after it.
    #[error("compaction abandoned: over {max} changes were synced while it ran")]
    CompactionOutpaced {
        /// The most changes a compaction keeps aside.
        max: usize,
    },
    /// Closing the journal (at the server's shutdown) reached its deadline
    /// before the disk confirmed every change: an `fdatasync` (or a
    /// compaction) was still running. Those changes were never
    /// acknowledged; whether they reached the disk is unknown, and the next
    /// start replays whatever did.
    #[error(
        "journal {name}: {changes} changes were not confirmed durable by the deadline (the \
         disk was still syncing after {waited_ms} ms); none of them was acknowledged"
    )]
    Unconfirmed {
        /// The journal file.
        name: String,
        /// Changes appended and not known to be durable.
        changes: u64,
        /// How long close waited.
        waited_ms: u64,
    },
    /// A thread panicked while holding the ledger a compaction had to read.
    #[error("a thread panicked while holding the ledger; compaction cannot snapshot it")]
    LedgerPoisoned,
    /// The journal failed earlier and accepts nothing more; the cause is
    /// the first failure. After a failed write or fsync the journal never
    /// retries: what reached the disk is unknown (see "Can Applications
    /// Recover from fsync Failures?", USENIX ATC '20).
    #[error("the journal failed earlier and accepts no more changes: {0}")]
    Failed(#[source] Arc<JournalError>),
}

impl JournalError {
    /// The same error with every file it names given as a path in `dir`,
    /// so a message names what the user typed, not a bare file name.
    pub(crate) fn in_dir(mut self, dir: &std::path::Path) -> JournalError {
        let full = |name: &mut String| {
            if !name.contains('/') {
                *name = dir.join(&*name).display().to_string();
            }
        };
        match &mut self {
            JournalError::Io { name, .. }
            | JournalError::Corrupt { name, .. }
            | JournalError::Replay { name, .. }
            | JournalError::Invariant { name, .. }
            | JournalError::Config { name, .. }
            | JournalError::Mismatch { name, .. }
            | JournalError::NotAJournal { name, .. }
            | JournalError::Unconfirmed { name, .. } => full(name),
            JournalError::Locked { name, lock } => {
                full(name);
                full(lock);
            }
            _ => {}
        }
        self
    }

    pub(crate) fn io<'a>(
        op: &'static str,
        name: &'a str,
    ) -> impl FnOnce(io::Error) -> JournalError + 'a {
        move |source| JournalError::Io {
            op,
            name: name.to_owned(),
            source,
        }
    }
}
