use crate::journal::JournalError;
use crate::ledger::ConfigError;
use crate::sysv::{Key, SysvError};

use super::config::LimitError;

/// Why a server could not start, or why it stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The event list or a ledger limit is invalid.
    #[error("invalid ledger configuration: {0}")]
    Ledger(#[from] ConfigError),
    /// A server limit is out of range.
    #[error("invalid server limit: {0}")]
    Limit(#[from] LimitError),
    /// A queue already exists under the key.
    #[error(
        "a message queue already exists for key {key}: another guichet server may be \
         serving it. Stop that server, or if none runs, remove the queue with \
         `ipcrm -Q {key}`, or pick another key with --key"
    )]
    QueueExists {
        /// The key asked for.
        key: Key,
    },
    /// A queue already exists under the classic protocol's key.
    #[error(
        "a message queue already exists for the classic key {key}: another server (guichet's \
         or the course's) may be serving it. Stop it, or if none runs, remove the queue with \
         `ipcrm -Q {key}`, or pick another key with --classic-key"
    )]
    ClassicQueueExists {
        /// The classic key asked for.
        key: Key,
    },
    /// Creating the queue failed.
    #[error("could not create the message queue: {0}")]
    CreateQueue(#[source] SysvError),
    /// A thread of the server could not be started.
    #[error("could not start a server thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// Someone else removed the queue while the server was serving it.
    #[error(
        "the message queue was removed while the server was running ({0}); the server stopped"
    )]
    QueueRemoved(#[source] SysvError),
    /// The queue kept failing in a way the server cannot serve through.
    #[error("receiving from the message queue keeps failing: {0}; the server stopped")]
    Receive(#[source] SysvError),
    /// A thread panicked while it held the ledger: the ledger may be
    /// inconsistent, so the server stopped rather than serve from it.
    #[error("a server thread panicked while holding the ledger; the server stopped")]
    LedgerPoisoned,
    /// A receive loop panicked (a bug: no message can make one): the server
    /// stopped rather than go on with fewer loops, or silently with none.
    #[error("a receive loop of the server panicked (thread {thread}); the server stopped")]
    ReceiverPanicked {
        /// The name of the loop's thread.
        thread: String,
    },
    /// The commit thread panicked (a bug: no message can make it): the
    /// replies it held were withheld, and the server stopped rather than
    /// leave changes unacknowledged for ever.
    #[error("the commit thread of the server panicked; the server stopped")]
    CommitPanicked,
    /// The journal could not be opened (damaged, locked, configuration
    /// disagreeing), or failed while serving: the server stopped, and sent
    /// no reply that depended on it.
    #[error("{0}")]
    Journal(#[from] JournalError),
    /// Removing the queue at shutdown failed.
    #[error("could not remove the message queue at shutdown: {0}")]
    RemoveQueue(#[source] SysvError),
}
