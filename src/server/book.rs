//! The ledger and the order of its changes: each operation is applied
//! under the ledger lock, and a change is appended to the journal under the
//! same lock, so the journal's order is the ledger's. What a reply must
//! wait for leaves here as a log position; nothing here waits or sends.

use std::sync::{Arc, Mutex};

use crate::codec::Operation;
use crate::journal::Journal;
use crate::ledger::Ledger;

use super::error::ServerError;
use super::handler::Applied;

pub(crate) struct Book {
    ledger: Mutex<Ledger>,
    /// Where changes are made durable before they are answered, if anywhere.
    journal: Option<Arc<Journal>>,
}

impl Book {
    pub(crate) fn new(ledger: Ledger, journal: Option<Arc<Journal>>) -> Self {
        Self {
            ledger: Mutex::new(ledger),
            journal,
        }
    }

    /// Applies one operation under the ledger lock, and nothing else under
    /// it. With a journal, also returns the number of the change the reply
    /// must wait for, if any: its own change, or for a reply that changed
    /// nothing the last change appended when it read the ledger (see the
    /// `journal` module docs: no reply may show a change a crash could
    /// take back). `None` when nothing it could have seen is pending: the
    /// reply goes out at once. A journal failure is returned as an error:
    /// the caller fails the server and sends no reply, because the change
    /// may or may not reach the disk.
    ///
    /// When the journal is due for a compaction, the ledger is copied
    /// under the lock (a [`Snapshot`](crate::journal::Snapshot)) and
    /// handed to the journal's compaction thread once the lock is released.
    pub(crate) fn apply(&self, operation: &Operation) -> Result<Applied, ServerError> {
        let mut ledger = self
            .ledger
            .lock()
            .map_err(|_| ServerError::LedgerPoisoned)?;
        let outcome = ledger.apply(operation);
        let Some(journal) = &self.journal else {
            return Ok(Applied::from(outcome));
        };
        // Appended under the lock, so the journal's order is the ledger's.
        let wait_for = match outcome.change() {
            Some(change) => Some(journal.append(&change)),
            None => match journal.check_failed() {
                // A failed append changed the ledger and set the failure
                // before it released the lock, and a compaction may have
                // failed with nothing pending: either way this ledger may
                // show a change that is not (and never will be) on disk.
                Err(error) => Some(Err(error)),
                Ok(()) => {
                    let appended = journal.appended();
                    (journal.durable() < appended).then_some(Ok(appended))
                }
            },
        };
        // Cheap unless due: one atomic load. The copy is all a compaction
        // does under the lock.
        let snapshot = journal.snapshot_if_due(&ledger);
        drop(ledger);
        let wait_for = wait_for.transpose()?;
        // The rest of the compaction runs in its own thread. Its start can
        // fail only if the journal has failed: then this reply is not sent.
        if let Some(snapshot) = snapshot? {
            journal.compact_in_background(snapshot);
        }
        Ok(Applied { outcome, wait_for })
    }

    /// Runs `f` on the ledger under its lock.
    pub(crate) fn with_ledger<R>(&self, f: impl FnOnce(&Ledger) -> R) -> Result<R, ServerError> {
        let ledger = self
            .ledger
            .lock()
            .map_err(|_| ServerError::LedgerPoisoned)?;
        Ok(f(&ledger))
    }
}
