//! The original C design, compiled and run for comparison:
//! `bench/c/original_server.c` (embedded here with `include/guichet.h`,
//! so the bench works from any directory) is built with `cc -O2 -pthread`
//! into a temporary directory and started on a private queue.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use guichet::sysv::{Mode, OwnedQueue, QueueId};

use super::BenchError;

const SOURCE: &str = include_str!("../c/original_server.c");

/// A compiled `original_server`, in a temporary directory removed on drop.
///
/// Compiled once per run and started once per cell, so compile time stays
/// out of the measurements.
///
/// # Examples
///
/// ```
/// use guichet_bench::{BenchError, OriginalBuild};
///
/// let build = match OriginalBuild::compile() {
///     Ok(build) => build,
///     Err(BenchError::NoCompiler { .. }) => return Ok(()), // nothing to compare with here
///     Err(other) => return Err(other.into()),
/// };
/// let first = build.start(10)?;
/// let second = build.start(10)?; // one binary, any number of servers
/// assert_ne!(first.queue_id(), second.queue_id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OriginalBuild {
    // Removed, with the binary, when dropped.
    _dir: tempfile::TempDir,
    binary: PathBuf,
}

impl OriginalBuild {
    /// Compiles the original server with `$CC` (default `cc`), `-O2
    /// -pthread`, from the source embedded in this crate: no checkout is
    /// needed, only a C compiler.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{BenchError, OriginalBuild};
    ///
    /// match OriginalBuild::compile() {
    ///     Ok(build) => drop(build), // removes the binary and its directory
    ///     Err(BenchError::NoCompiler { cc, .. }) => eprintln!("no {cc}: original-c skipped"),
    ///     Err(other) => return Err(other.into()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::NoCompiler`] if the compiler cannot be run;
    /// [`BenchError::Compile`] if it fails; [`BenchError::Io`] for the
    /// temporary directory.
    pub fn compile() -> Result<OriginalBuild, BenchError> {
        let (dir, binary) = super::cc::compile("original_server", SOURCE)?;
        Ok(OriginalBuild { _dir: dir, binary })
    }

    /// Starts the server on a new private queue with one event of
    /// `capacity` seats.
    ///
    /// Returns once the process is started, not once it receives: requests
    /// sent before then wait in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{BenchError, OriginalBuild};
    /// use guichet::Client;
    ///
    /// let build = match OriginalBuild::compile() {
    ///     Ok(build) => build,
    ///     Err(BenchError::NoCompiler { .. }) => return Ok(()),
    ///     Err(other) => return Err(other.into()),
    /// };
    /// let server = build.start(10)?;
    /// let client = Client::from_id(server.queue_id()).with_timeout_ms(2_000);
    /// assert_eq!(client.reserve(1, 3)?.remaining, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::Sysv`] for the queue, [`BenchError::Io`] if the
    /// program cannot start.
    pub fn start(&self, capacity: u32) -> Result<OriginalServer, BenchError> {
        let queue = OwnedQueue::create_private(Mode::DEFAULT).map_err(BenchError::Sysv)?;
        let child = start_child(&self.binary, queue.id(), capacity)?;
        Ok(OriginalServer {
            id: queue.id(),
            child,
            _queue: queue,
        })
    }
}

fn start_child(binary: &Path, id: QueueId, capacity: u32) -> Result<Child, BenchError> {
    Command::new(binary)
        .arg(id.raw().to_string())
        .arg(capacity.to_string())
        .stdin(Stdio::null())
        .spawn()
        .map_err(BenchError::Io)
}

/// A running original server; dropping it kills it and removes its queue.
///
/// Speaks wire v1 for what the bench sends (QUERY and RESERVE of event 1)
/// and answers anything else BAD_MESSAGE: a yardstick, not a server to use.
///
/// # Examples
///
/// ```
/// use guichet_bench::{BenchError, OriginalBuild};
/// use guichet::{Client, ClientError};
///
/// let build = match OriginalBuild::compile() {
///     Ok(build) => build,
///     Err(BenchError::NoCompiler { .. }) => return Ok(()),
///     Err(other) => return Err(other.into()),
/// };
/// let server = build.start(10)?;
/// let client = Client::from_id(server.queue_id()).with_timeout_ms(2_000);
/// assert_eq!(client.query(1)?.capacity, 10);
/// assert!(matches!(client.cancel(1u64), Err(ClientError::BadMessage)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OriginalServer {
    id: QueueId,
    child: Child,
    // Dropped after the child is killed (fields drop in order, after Drop).
    _queue: OwnedQueue,
}

impl OriginalServer {
    /// The queue clients send to.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{BenchError, OriginalBuild};
    ///
    /// let build = match OriginalBuild::compile() {
    ///     Ok(build) => build,
    ///     Err(BenchError::NoCompiler { .. }) => return Ok(()),
    ///     Err(other) => return Err(other.into()),
    /// };
    /// let server = build.start(1)?;
    /// println!("ipcs -q -i {}", server.queue_id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn queue_id(&self) -> QueueId {
        self.id
    }
}

impl Drop for OriginalServer {
    fn drop(&mut self) {
        // SIGKILL, then reap it so no zombie is left; the queue goes after.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
