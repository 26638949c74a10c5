//! Starting a server, step by step: the ledger (new, or replayed from its
//! journal), the queue, then the threads (the commit thread, the receive
//! loops, the sweeper). [`Builder::spawn`] puts the owners together
//! between the steps.

use std::sync::Arc;
use std::thread;

use crate::journal::{
    Journal, JournalConfig, DEFAULT_COMPACT_MIN_BYTES, DEFAULT_GROUP_COMMIT_DELAY_US,
    DEFAULT_PREALLOCATE_BYTES, MAX_COMPACT_MIN_BYTES, MAX_GROUP_COMMIT_DELAY_US,
    MAX_PREALLOCATE_BYTES, MIN_COMPACT_MIN_BYTES,
};
use crate::ledger::Ledger;
use crate::sysv::{Key, OwnedQueue, SysvError};

use super::classic::{self, ClassicServing};
use super::config::{Dispatch, LimitError};
use super::dispatch::{receive_loop, Handoff};
use super::error::ServerError;
use super::reply::sweep_loop;
use super::{Builder, JournalAt, Server};

impl Builder {
    /// The ledger to serve, and its journal if it has one: a new ledger
    /// from the builder's events, or the one the journal replays.
    pub(super) fn open_ledger(&mut self) -> Result<(Ledger, Option<Arc<Journal>>), ServerError> {
        let events = std::mem::take(&mut self.events);
        let Some(at) = &self.journal else {
            return Ok((Ledger::new(events, self.limits.max_bookings)?, None));
        };
        let config = JournalConfig {
            events: (!events.is_empty()).then_some(events),
            max_bookings: self.max_bookings_set.then_some(self.limits.max_bookings),
            // The queue's mode, less execute bits: the journal is no more
            // readable than the queue it serves.
            file_mode: self.mode.bits() & 0o666,
            ..self.journal_limits()?
        };
        let opened = match at {
            JournalAt::Path(path) => Journal::open_path(path, &config)?,
            JournalAt::Dir(dir, name) => Journal::open(Box::new(Arc::clone(dir)), name, &config)?,
        };
        Ok((opened.ledger, Some(Arc::new(opened.journal))))
    }

    /// The journal's limits, each checked against its range.
    fn journal_limits(&self) -> Result<JournalConfig, LimitError> {
        let compact_min_bytes = self
            .journal_compact_min_bytes
            .unwrap_or(DEFAULT_COMPACT_MIN_BYTES);
        LimitError::check(
            "journal_compact_min_bytes",
            compact_min_bytes,
            MIN_COMPACT_MIN_BYTES,
            MAX_COMPACT_MIN_BYTES,
        )?;
        let group_commit_delay_us = self
            .journal_group_commit_delay_us
            .unwrap_or(DEFAULT_GROUP_COMMIT_DELAY_US);
        LimitError::check(
            "journal_group_commit_delay_us",
            group_commit_delay_us.into(),
            0,
            MAX_GROUP_COMMIT_DELAY_US.into(),
        )?;
        let preallocate_bytes = self
            .journal_preallocate_bytes
            .unwrap_or(DEFAULT_PREALLOCATE_BYTES);
        LimitError::check(
            "journal_preallocate_bytes",
            preallocate_bytes,
            0,
            MAX_PREALLOCATE_BYTES,
        )?;
        Ok(JournalConfig {
            compact_min_bytes,
            group_commit_delay_us,
            preallocate_bytes,
            ..JournalConfig::default()
        })
    }

    /// The classic protocol's queue, if the builder asks for one.
    pub(super) fn create_classic_queue(&self) -> Result<Option<(OwnedQueue, Key)>, ServerError> {
        self.classic_key
            .map(|key| Ok((classic::create_queue(key, self.mode)?, key)))
            .transpose()
    }

    /// The queue to serve: private, or new under the builder's key.
    pub(super) fn create_queue(&self) -> Result<OwnedQueue, ServerError> {
        match self.key {
            None => OwnedQueue::create_private(self.mode),
            Some(key) => OwnedQueue::create_exclusive(key, self.mode),
        }
        .map_err(|error| match (error, self.key) {
            (SysvError::Exists { .. }, Some(key)) => ServerError::QueueExists { key },
            (error, _) => ServerError::CreateQueue(error),
        })
    }
}

impl Server {
    /// Starts the commit thread (with a journal), the receive loops, the
    /// sweeper and the classic protocol's threads (with `classic`). If one
    /// cannot start, what did is stopped and the queues removed.
    pub(super) fn start_threads(
        &mut self,
        classic: Option<(OwnedQueue, Key)>,
    ) -> Result<(), ServerError> {
        let receivers = self.dispatch.receivers();
        let life = Arc::clone(&self.core.lifecycle);
        if let Some(durability) = &self.core.durability {
            // Before the receive loops: a reply queued for the disk needs it.
            match durability.spawn() {
                Ok(handle) => self.committer = Some(handle),
                Err(error) => {
                    durability.never_started();
                    life.receivers_not_started(receivers);
                    return Err(self.abandon(error));
                }
            }
        }
        let handoff = match self.dispatch {
            Dispatch::ThreadPerRequest => Handoff::SpawnPerRequest,
            Dispatch::Pool(_) | Dispatch::Sequential => Handoff::Inline,
        };
        for index in 0..receivers {
            let core = Arc::clone(&self.core);
            let spawned = thread::Builder::new()
                .name(format!("guichet-recv-{index}"))
                .spawn(move || receive_loop(core, handoff));
            match spawned {
                Ok(handle) => self.receivers.push(handle),
                Err(error) => {
                    // Loops never started must not be waited for; the rest
                    // are stopped and the queue removed by `finish`.
                    life.receivers_not_started(receivers - index);
                    return Err(self.abandon(error));
                }
            }
        }
        let replier = Arc::clone(&self.core.replier);
        match thread::Builder::new()
            .name("guichet-sweep".into())
            .spawn(move || sweep_loop(&replier))
        {
            Ok(handle) => self.sweeper = Some(handle),
            Err(error) => return Err(self.abandon(error)),
        }
        if let Some((queue, key)) = classic {
            match ClassicServing::start(&self.core, queue, key) {
                Ok(classic) => self.classic = Some(classic),
                Err(error) => {
                    let _ = self.finish();
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Stops what started, removes the queue, and says why.
    fn abandon(&mut self, error: std::io::Error) -> ServerError {
        let _ = self.finish();
        ServerError::Spawn(error)
    }
}
