//! The C clients the library's client is compared with:
//! `benches/c/client.c` (embedded here with `include/guichet.h`), built
//! with `cc -O2 -pthread` into a temporary directory, one process per
//! measurement.

use std::fmt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guichet::sysv::QueueId;

use super::{BenchError, Load, Workload};

const SOURCE: &str = include_str!("../c/client.c");

/// How long a C client may outlive its run before it is killed (a blocked
/// one whose reply never comes would wait forever).
const GRACE: Duration = Duration::from_secs(10);

/// How a C client waits for its reply.
///
/// # Examples
///
/// ```
/// use guichet_bench::CWait;
///
/// assert_eq!(CWait::Blocking.to_string(), "C blocking");
/// assert_eq!(CWait::Spinning.to_string(), "C spinning");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CWait {
    /// A blocking msgrcv(2).
    Blocking,
    /// msgrcv(2) with `IPC_NOWAIT` and sched_yield(2) until it comes.
    Spinning,
}

impl fmt::Display for CWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CWait::Blocking => "C blocking",
            CWait::Spinning => "C spinning",
        })
    }
}

/// A compiled C client, in a temporary directory removed on drop.
///
/// # Examples
///
/// ```
/// use guichet_bench::{BenchError, CClientBuild, CWait, Load, Workload};
///
/// let build = match CClientBuild::compile() {
///     Ok(build) => build,
///     Err(BenchError::NoCompiler { .. }) => return Ok(()), // nothing to compare with here
///     Err(other) => return Err(other.into()),
/// };
/// let server = guichet::Server::builder().event("Concert", 1_000_000).spawn()?;
/// let load = Load { clients: 1, warmup_ms: 0, duration_ms: 20, timeout_ms: 1_000 };
/// let (ops, errors) = build.drive(server.queue_id(), CWait::Blocking, Workload::Query, load)?;
/// assert!(ops > 0 && errors == 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct CClientBuild {
    dir: tempfile::TempDir,
    binary: PathBuf,
}

impl CClientBuild {
    /// Compiles the C client with `$CC` (default `cc`), `-O2 -pthread`.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{BenchError, CClientBuild};
    ///
    /// match CClientBuild::compile() {
    ///     Ok(build) => drop(build), // removes the binary and its directory
    ///     Err(BenchError::NoCompiler { cc, .. }) => eprintln!("no {cc}: comparison skipped"),
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
    pub fn compile() -> Result<CClientBuild, BenchError> {
        let (dir, binary) = super::cc::compile("client", SOURCE)?;
        Ok(CClientBuild { dir, binary })
    }

    /// Drives the server on `queue` with `load.clients` threads of one C
    /// client process, waiting as `wait` says; returns the measured calls
    /// answered OK and the others. (`load.timeout_ms` does not apply: the
    /// C client has none; a process that outlives its run by 10 s is
    /// killed, and its calls count as nothing.)
    ///
    /// # Errors
    ///
    /// [`BenchError::Config`] for a load out of its limits, or a workload
    /// other than QUERY and RESERVE;
    /// [`BenchError::Io`] if the process cannot start or says nothing
    /// readable.
    pub fn drive(
        &self,
        queue: QueueId,
        wait: CWait,
        workload: Workload,
        load: Load,
    ) -> Result<(u64, u64), BenchError> {
        load.check()?;
        let op = match workload {
            Workload::Query => "query",
            Workload::Reserve => "reserve",
            Workload::HoldConfirm => {
                return Err(BenchError::Config(
                    "the C client makes QUERY and RESERVE calls only".into(),
                ))
            }
        };
        let mut command = Command::new(&self.binary);
        command
            .arg(queue.raw().to_string())
            .arg(match wait {
                CWait::Blocking => "block",
                CWait::Spinning => "spin",
            })
            .arg(load.clients.to_string())
            .arg(load.warmup_ms.to_string())
            .arg(load.duration_ms.to_string())
            .arg(op);
        counted(
            &mut command,
            load,
            &format!("the C client in {}", self.dir.path().display()),
        )
    }
}

/// Runs `command`, a client process that drives a server for `load`'s
/// warm-up and duration and prints "OPS ERRORS"; returns those two. A
/// process that outlives its run by [`GRACE`] is killed, and its calls
/// count as nothing. `who` names it in errors.
pub(crate) fn counted(
    command: &mut Command,
    load: Load,
    who: &str,
) -> Result<(u64, u64), BenchError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(BenchError::Io)?;
    let run = Duration::from_millis(u64::from(load.warmup_ms) + u64::from(load.duration_ms));
    let kill_at = Instant::now() + run + GRACE;
    loop {
        if child.try_wait().map_err(BenchError::Io)?.is_some() {
            break;
        }
        if Instant::now() >= kill_at {
            let _ = child.kill();
            let _ = child.wait();
            return Ok((0, 0));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().map_err(BenchError::Io)?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(ops)), Some(Ok(errors))) => Ok((ops, errors)),
        _ => Err(BenchError::Io(std::io::Error::other(format!(
            "{who} printed {text:?}"
        )))),
    }
}
