//! Where `guichet bench --compare-clients` runs the library's client.
//!
//! The C clients run in processes of their own. The library's client, run
//! on threads of the bench's process, beside the server's threads, was
//! measured slower for that alone: on a 2-vCPU VM (load about 10), pool:2,
//! 1 client, the same client code made 27–30k round trips a second with
//! the server in its process and 129–132k with the server in another, the
//! library's client and a C-like one alike (5 ms slices interleaved). So
//! the comparison runs it in a process of its own too, where it can:
//! `guichet drive-client`.

use std::path::PathBuf;
use std::process::Command;

use guichet::sysv::QueueId;

use super::c_clients::counted;
use super::{driver, BenchError, Load, Workload};

/// Where the library's client runs in a comparison.
///
/// # Examples
///
/// ```
/// use guichet_bench::{LibraryClient, Load, Workload};
///
/// let server = guichet::Server::builder().event("Concert", 1_000_000).spawn()?;
/// let load = Load { clients: 1, warmup_ms: 0, duration_ms: 20, timeout_ms: 1_000 };
/// let (ops, errors) = LibraryClient::InProcess.drive(server.queue_id(), Workload::Query, load)?;
/// assert!(ops > 0 && errors == 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LibraryClient {
    /// On threads of the calling process, which also runs the server:
    /// slower than in a process of its own (see the module's page), but
    /// needs no program.
    InProcess,
    /// In a process of its own: `program`, given `args` then `QUEUE_ID
    /// THREADS WARMUP_MS DURATION_MS WORKLOAD`, drives the server as
    /// [`LibraryClient::InProcess`] does and prints "OPS ERRORS", the
    /// measured calls answered OK and the others (`guichet drive-client`
    /// does).
    Process {
        /// The program.
        program: PathBuf,
        /// Its first arguments.
        args: Vec<String>,
    },
}

impl LibraryClient {
    /// Drives the server on `queue` with `load.clients` threads of the
    /// library's client; returns the calls that started in the measured
    /// time and were answered OK, and the others, counted as the C
    /// clients count them, with as little around each call as they have
    /// (no latency kept, one clock read).
    ///
    /// # Errors
    ///
    /// [`BenchError::Config`] for a load out of its limits;
    /// [`BenchError::Spawn`] if a client thread cannot start, in process;
    /// [`BenchError::Io`] if the process cannot start or says nothing
    /// readable.
    pub fn drive(
        &self,
        queue: QueueId,
        workload: Workload,
        load: Load,
    ) -> Result<(u64, u64), BenchError> {
        load.check()?;
        match self {
            LibraryClient::InProcess => driver::count_operations(queue, workload, load),
            LibraryClient::Process { program, args } => {
                let mut command = Command::new(program);
                command
                    .args(args)
                    .arg(queue.raw().to_string())
                    .arg(load.clients.to_string())
                    .arg(load.warmup_ms.to_string())
                    .arg(load.duration_ms.to_string())
                    .arg(workload.name());
                counted(&mut command, load, &program.display().to_string())
            }
        }
    }
}
