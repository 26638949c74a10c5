#![deny(unsafe_code)]
//! The benchmark harness behind `guichet bench` and `benches/server.rs`:
//! each dispatch mode measured against the physical floor, in one run.
//!
//! A run is a [`Plan`]: targets × workloads × client counts. Every cell
//! starts a fresh target on a private queue (removed afterwards), drives it
//! with N client threads making synchronous round trips through the real
//! [`Client`](guichet::Client) for a fixed time, and records ops/s and a
//! latency histogram. Within each (workload, clients) group every target is
//! compared with the **floor**, an [`EchoFloor`] measured in the same run
//! with the same clients: its ratio says how close the server comes to
//! what the queue itself allows on this machine.
//!
//! Durable targets (`thread-per-request+journal`, `pool:2+journal`) are
//! servers with their journal on, each in a fresh temporary directory
//! removed afterwards. Their rows also say how many changes each
//! `fdatasync` covered in the measured time (group commit), and their
//! ops/s over the same dispatch mode's without a journal, in the same group.
//!
//! # Examples
//!
//! The full default run, as `guichet bench` makes it (about a minute, so
//! not run here; [`run`] has a quick one):
//!
//! ```no_run
//! use guichet_bench::{run, Plan};
//!
//! let report = run(&Plan::default(), &mut |progress| eprintln!("{progress}"))?;
//! print!("{}", report.table());
//! # Ok::<(), guichet_bench::BenchError>(())
//! ```
//!
//! Speed is measured here, never asserted: nothing in this module fails
//! because a figure is low.

mod c_clients;
mod cc;
mod compare;
mod disk;
mod driver;
mod durable_floor;
mod floor;
mod histogram;
mod library_client;
mod original_c;
mod report;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use c_clients::{CClientBuild, CWait};
pub use compare::{
    compare_clients, compare_clients_with, ClientComparison, ClientRow, COMPARED_MODES,
};
pub use disk::{disk_floor_ns, DISK_FLOOR_SAMPLES};
pub use driver::{drive, Load, Measurement, Synced, Workload, MAX_CLIENTS, MAX_PHASE_MS};
pub use floor::{EchoFloor, MAX_FLOOR_LOOPS};
pub use histogram::Histogram;
pub use library_client::LibraryClient;
pub use original_c::{OriginalBuild, OriginalServer};
pub use report::{JournalSetup, Limit, Machine, Report, Row};

use guichet::journal::JournalStats;
use guichet::server::{Builder, Dispatch, Server, ServerError};
use guichet::sysv::SysvError;

/// Why a run could not go on.
///
/// A slow or failing target is not one: its failed calls are counted in
/// its row ([`Row::errors`]). These are the failures that leave nothing to
/// measure.
///
/// # Examples
///
/// ```
/// use guichet_bench::{BenchError, Target};
///
/// let err = "floor:0".parse::<Target>().unwrap_err();
/// assert!(matches!(err, BenchError::Config(_)));
/// assert_eq!(err.to_string(), "\"floor:0\": floor:N takes 1 to 64 loops");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A plan or load out of its limits, or a name that does not parse.
    #[error("{0}")]
    Config(String),
    /// A queue could not be created.
    #[error("message queue: {0}")]
    Sysv(#[source] SysvError),
    /// A server could not start.
    #[error("server: {0}")]
    Server(#[source] ServerError),
    /// A thread could not start.
    #[error("could not start a thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// A file or process operation failed.
    #[error("{0}")]
    Io(#[source] std::io::Error),
    /// No C compiler to build the original server.
    #[error("cannot run the C compiler {cc:?} ({error}); set CC or install cc")]
    NoCompiler {
        /// The compiler tried.
        cc: String,
        /// Why it could not run.
        error: std::io::Error,
    },
    /// The C compiler failed on the original server.
    #[error("the original C server did not compile:\n{0}")]
    Compile(String),
}

/// One thing to measure.
///
/// Named on the command line and in reports as it displays: `floor`,
/// `floor:N`, `floor+journal`, a dispatch mode (`pool:2`…), the same with
/// `+journal`, or `original-c`.
///
/// # Examples
///
/// ```
/// use guichet_bench::Target;
/// use guichet::server::Dispatch;
///
/// let target: Target = "pool:2+journal".parse()?;
/// assert_eq!(target, Target::Durable(Dispatch::Pool(2)));
/// assert!(target.is_durable() && !target.is_floor());
/// assert_eq!(target.to_string(), "pool:2+journal");
/// assert_eq!(Target::Floor(1).to_string(), "floor");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Target {
    /// The [`EchoFloor`] with this many receive loops.
    Floor(usize),
    /// A guichet [`Server`] in this dispatch mode.
    Server(Dispatch),
    /// A guichet [`Server`] in this dispatch mode with its journal on
    /// (every change `fdatasync`ed before its OK), in a fresh temporary
    /// directory under [`JournalPlan::dir`], removed afterwards.
    Durable(Dispatch),
    /// The durable echo floor ([`EchoFloor::spawn_durable`]), its file in
    /// a fresh temporary directory as a durable server's journal: the
    /// floor of the durable targets, in RESERVE only. It has no
    /// group-commit delay and preallocates 1 MiB whatever the
    /// [`JournalPlan`] says.
    DurableFloor,
    /// `bench/c/original_server.c`: a detached pthread per request.
    OriginalC,
}

/// What a durable target's name adds to its dispatch mode's.
///
/// # Examples
///
/// ```
/// use guichet_bench::{Target, JOURNAL_SUFFIX};
/// use guichet::server::Dispatch;
///
/// let name = format!("sequential{JOURNAL_SUFFIX}");
/// assert_eq!(name.parse::<Target>()?, Target::Durable(Dispatch::Sequential));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const JOURNAL_SUFFIX: &str = "+journal";

impl Target {
    /// Whether this target is a floor, which the others are compared with.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Target;
    ///
    /// assert!(Target::Floor(2).is_floor());
    /// assert!(Target::DurableFloor.is_floor());
    /// assert!(!Target::OriginalC.is_floor());
    /// ```
    #[must_use]
    pub fn is_floor(self) -> bool {
        matches!(self, Target::Floor(_) | Target::DurableFloor)
    }

    /// Whether this target journals its changes.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Target;
    /// use guichet::server::Dispatch;
    ///
    /// assert!(Target::Durable(Dispatch::Sequential).is_durable());
    /// assert!(Target::DurableFloor.is_durable());
    /// assert!(!Target::Server(Dispatch::Sequential).is_durable());
    /// ```
    #[must_use]
    pub fn is_durable(self) -> bool {
        matches!(self, Target::Durable(_) | Target::DurableFloor)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Floor(1) => f.write_str("floor"),
            Target::Floor(n) => write!(f, "floor:{n}"),
            Target::Server(dispatch) => write!(f, "{dispatch}"),
            Target::Durable(dispatch) => write!(f, "{dispatch}{JOURNAL_SUFFIX}"),
            Target::DurableFloor => write!(f, "floor{JOURNAL_SUFFIX}"),
            Target::OriginalC => f.write_str("original-c"),
        }
    }
}

impl FromStr for Target {
    type Err = BenchError;

    /// `floor`, `floor:N`, `floor+journal`, `original-c`, or a dispatch
    /// mode (`thread-per-request`, `pool`, `pool:N`, `sequential`),
    /// optionally followed by `+journal` (the durable floor has one loop,
    /// and the C server no journal).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Target;
    ///
    /// assert_eq!("floor:2".parse::<Target>()?, Target::Floor(2));
    /// assert_eq!("original-c".parse::<Target>()?, Target::OriginalC);
    /// assert_eq!("floor+journal".parse::<Target>()?, Target::DurableFloor);
    /// assert!("floor:2+journal".parse::<Target>().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`BenchError::Config`] for anything else, `floor:N` outside 1 to
    /// [`MAX_FLOOR_LOOPS`] and a dispatch mode that does not parse
    /// included.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.strip_suffix(JOURNAL_SUFFIX) == Some("floor") {
            return Ok(Target::DurableFloor);
        }
        if let Some(dispatch) = s.strip_suffix(JOURNAL_SUFFIX) {
            return dispatch
                .parse::<Dispatch>()
                .map(Target::Durable)
                .map_err(|e| BenchError::Config(format!("{s:?}: {JOURNAL_SUFFIX} follows {e}")));
        }
        match s {
            "floor" => return Ok(Target::Floor(1)),
            "original-c" => return Ok(Target::OriginalC),
            _ => {}
        }
        if let Some(n) = s.strip_prefix("floor:") {
            return match n.parse() {
                Ok(n) if (1..=MAX_FLOOR_LOOPS).contains(&n) => Ok(Target::Floor(n)),
                _ => Err(BenchError::Config(format!(
                    "{s:?}: floor:N takes 1 to {MAX_FLOOR_LOOPS} loops"
                ))),
            };
        }
        s.parse::<Dispatch>().map(Target::Server).map_err(|e| {
            BenchError::Config(format!(
                "{e} (with or without {JOURNAL_SUFFIX}), floor, floor:N, floor{JOURNAL_SUFFIX} or original-c"
            ))
        })
    }
}

/// Most targets one plan measures.
pub const MAX_TARGETS: usize = 16;
/// Most rounds of each cell.
pub const MAX_ROUNDS: u32 = 20;

/// Where and how the durable targets keep their journals.
///
/// # Examples
///
/// ```
/// use guichet_bench::{JournalPlan, Plan};
///
/// let disk = tempfile::tempdir()?; // on the disk to measure, not tmpfs
/// let dir = Some(disk.path().to_owned());
/// let journal = JournalPlan { dir, ..JournalPlan::default() };
/// let plan = Plan { journal, ..Plan::default() };
/// assert_eq!(plan.journal.preallocate_bytes, JournalPlan::default().preallocate_bytes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalPlan {
    /// The directory each durable cell makes its temporary directory in
    /// (`None`: the system's, `$TMPDIR` or `/tmp`). It must be on the disk
    /// to measure: on tmpfs an `fdatasync` costs nothing.
    pub dir: Option<PathBuf>,
    /// The journals' group-commit delay
    /// ([`Builder::journal_group_commit_delay_us`](guichet::server::Builder::journal_group_commit_delay_us)).
    pub group_commit_delay_us: u32,
    /// Zeros kept ahead of each journal's end
    /// ([`Builder::journal_preallocate_bytes`](guichet::server::Builder::journal_preallocate_bytes)).
    pub preallocate_bytes: u64,
}

/// The library's defaults, in the system's temporary directory.
impl Default for JournalPlan {
    fn default() -> Self {
        JournalPlan {
            dir: None,
            group_commit_delay_us: Builder::DEFAULT_JOURNAL_GROUP_COMMIT_DELAY_US,
            preallocate_bytes: Builder::DEFAULT_JOURNAL_PREALLOCATE_BYTES,
        }
    }
}

/// What one run measures, and for how long.
///
/// Every field is bounded ([`MAX_TARGETS`], [`MAX_ROUNDS`],
/// [`MAX_CLIENTS`], [`MAX_PHASE_MS`]…); [`run`] checks them all before
/// measuring anything.
///
/// # Examples
///
/// ```
/// use guichet_bench::{Plan, Target, Workload};
/// use guichet::server::Dispatch;
///
/// let plan = Plan {
///     targets: vec![Target::Floor(1), Target::Server(Dispatch::Pool(2))],
///     workloads: vec![Workload::Reserve],
///     clients: vec![1, 8],
///     rounds: 5,
///     ..Plan::default()
/// };
/// assert_eq!((plan.cells(), plan.measurements()), (4, 20));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The targets, measured in this order within each group.
    pub targets: Vec<Target>,
    /// The workloads.
    pub workloads: Vec<Workload>,
    /// The workloads the durable targets are measured in (those also in
    /// `workloads`). By default RESERVE only: a QUERY through a journal
    /// waits for the disk only while changes are pending, and the QUERY
    /// workload makes none, so a durable QUERY cell would measure the
    /// same server as the non-durable one, plus two short critical
    /// sections on the journal's state lock.
    pub durable_workloads: Vec<Workload>,
    /// Where and how the durable targets keep their journals.
    pub journal: JournalPlan,
    /// The client counts.
    pub clients: Vec<usize>,
    /// Warm-up of each cell, not measured.
    pub warmup_ms: u32,
    /// Measured time of each cell.
    pub duration_ms: u32,
    /// Times each cell is measured, interleaved with the other targets of
    /// its group (1 to [`MAX_ROUNDS`]): a row reports the median round's
    /// ops/s and the latencies of all rounds merged, so a burst of load
    /// from elsewhere on the machine skews one round, not the comparison.
    pub rounds: u32,
    /// Each call's timeout.
    pub timeout_ms: u32,
}

/// Defaults: (6 targets × 2 workloads + 3 durable targets × RESERVE) ×
/// 3 client counts × 3 rounds × (0.1 + 0.3) s is about 54 s of driving,
/// plus starts and stops: under a minute.
impl Default for Plan {
    fn default() -> Self {
        Plan {
            targets: vec![
                Target::Floor(1),
                Target::Floor(2),
                Target::Server(Dispatch::ThreadPerRequest),
                Target::Server(Dispatch::Pool(2)),
                Target::Server(Dispatch::Sequential),
                Target::OriginalC,
                Target::DurableFloor,
                Target::Durable(Dispatch::ThreadPerRequest),
                Target::Durable(Dispatch::Pool(2)),
            ],
            // HOLD-CONFIRM on request (`--workloads`): the default run
            // stays within a minute.
            workloads: vec![Workload::Reserve, Workload::Query],
            durable_workloads: vec![Workload::Reserve],
            journal: JournalPlan::default(),
            clients: vec![1, 4, 16],
            warmup_ms: 100,
            duration_ms: 300,
            rounds: 3,
            timeout_ms: guichet::Client::DEFAULT_TIMEOUT_MS,
        }
    }
}

impl Plan {
    /// Whether `target` is measured in `workload`: every target is, except
    /// durable ones outside [`Plan::durable_workloads`], the floors and the
    /// original C server in HOLD-CONFIRM (they serve no holds), and the
    /// durable floor in QUERY (it would sync every query, where a server
    /// syncs none of a workload that changes nothing).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{Plan, Target, Workload};
    /// use guichet::server::Dispatch;
    ///
    /// let plan = Plan::default();
    /// let durable = Target::Durable(Dispatch::Sequential);
    /// assert!(plan.measures(durable, Workload::Reserve));
    /// assert!(!plan.measures(durable, Workload::Query));
    /// assert!(plan.measures(Target::Floor(1), Workload::Query));
    /// assert!(!plan.measures(Target::OriginalC, Workload::HoldConfirm));
    /// assert!(!plan.measures(durable, Workload::HoldConfirm)); // not by default
    /// let everywhere = Plan { durable_workloads: Workload::ALL.to_vec(), ..Plan::default() };
    /// assert!(everywhere.measures(Target::DurableFloor, Workload::Reserve));
    /// assert!(!everywhere.measures(Target::DurableFloor, Workload::Query));
    /// ```
    #[must_use]
    pub fn measures(&self, target: Target, workload: Workload) -> bool {
        // The floors and the original C server know no holds.
        let holds = matches!(target, Target::Server(_) | Target::Durable(_));
        (workload != Workload::HoldConfirm || holds)
            && (!target.is_durable() || self.durable_workloads.contains(&workload))
            && !(target == Target::DurableFloor && workload == Workload::Query)
    }

    /// Cells in the run: (target, workload, client count) triples measured,
    /// durable targets counted only in their workloads.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Plan;
    ///
    /// // 6 targets in 2 workloads and 3 durable ones in RESERVE, at 3 client counts.
    /// assert_eq!(Plan::default().cells(), (6 * 2 + 3) * 3);
    /// ```
    #[must_use]
    pub fn cells(&self) -> usize {
        let per_client_count: usize = self
            .workloads
            .iter()
            .map(|&w| {
                self.targets
                    .iter()
                    .filter(|&&t| self.measures(t, w))
                    .count()
            })
            .sum();
        per_client_count * self.clients.len()
    }

    /// Measurements in the run: cells × rounds. Each is a target started,
    /// driven for `warmup_ms + duration_ms` and stopped, so this times the
    /// run.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Plan;
    ///
    /// let plan = Plan::default();
    /// assert_eq!(plan.measurements(), plan.cells() * 3);
    /// let driving_ms = plan.measurements() as u32 * (plan.warmup_ms + plan.duration_ms);
    /// assert!(driving_ms < 60_000);
    /// ```
    #[must_use]
    pub fn measurements(&self) -> usize {
        self.cells() * self.rounds as usize
    }

    fn check(&self) -> Result<(), BenchError> {
        if self.targets.is_empty() || self.targets.len() > MAX_TARGETS {
            return Err(BenchError::Config(format!(
                "a plan needs 1 to {MAX_TARGETS} targets"
            )));
        }
        if self.workloads.is_empty() || self.clients.is_empty() || self.clients.len() > 16 {
            return Err(BenchError::Config(
                "a plan needs a workload and 1 to 16 client counts".into(),
            ));
        }
        if self.cells() == 0 {
            return Err(BenchError::Config(
                "the plan measures nothing: none of its targets runs in any of its \
                 workloads (durable targets run in durable workloads only, floors in \
                 none with holds, floor+journal in RESERVE only)"
                    .into(),
            ));
        }
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(BenchError::Config(format!(
                "rounds must be 1 to {MAX_ROUNDS}, not {}",
                self.rounds
            )));
        }
        for &clients in &self.clients {
            self.load(clients).check()?;
        }
        if let Some(dir) = &self.journal.dir {
            if self.targets.iter().any(|t| t.is_durable()) && !dir.is_dir() {
                return Err(BenchError::Config(format!(
                    "the journal directory {} is not a directory",
                    dir.display()
                )));
            }
        }
        Ok(())
    }

    fn load(&self, clients: usize) -> Load {
        Load {
            clients,
            warmup_ms: self.warmup_ms,
            duration_ms: self.duration_ms,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// What the run is doing, for a progress display.
///
/// Displayed as the lines `guichet bench` prints on stderr.
///
/// # Examples
///
/// ```
/// use guichet_bench::{Progress, Target};
///
/// let skipped = Progress::Skipped { target: Target::OriginalC, reason: "no cc".into() };
/// assert_eq!(skipped.to_string(), "skipping original-c: no cc");
/// let measured = Progress::Measured { ops_per_s: 1e5, p50_ns: 9_000, p99_ns: 20_000, errors: 0 };
/// assert_eq!(measured.to_string(), "    100000 ops/s, p50 9.0 µs, p99 20.0 µs, 0 error(s)");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Progress {
    /// A measurement starts.
    Cell {
        /// 1-based.
        index: usize,
        /// Measurements in the run.
        total: usize,
        /// 1-based round of this cell.
        round: u32,
        /// The target.
        target: Target,
        /// The workload.
        workload: Workload,
        /// Client threads.
        clients: usize,
    },
    /// A measurement is done: its ops/s, p50 and p99 (ns), errors.
    Measured {
        /// OK round trips per second.
        ops_per_s: f64,
        /// Median latency.
        p50_ns: u64,
        /// 99th percentile latency.
        p99_ns: u64,
        /// Failed calls.
        errors: u64,
    },
    /// A target is left out of the run.
    Skipped {
        /// The target.
        target: Target,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Cell {
                index,
                total,
                round,
                target,
                workload,
                clients,
            } => write!(
                f,
                "[{index}/{total}] {target}, {}, {clients} client(s), round {round}…",
                workload.name()
            ),
            Progress::Measured {
                ops_per_s,
                p50_ns,
                p99_ns,
                errors,
            } => write!(
                f,
                "    {ops_per_s:.0} ops/s, p50 {:.1} µs, p99 {:.1} µs, {errors} error(s)",
                *p50_ns as f64 / 1e3,
                *p99_ns as f64 / 1e3,
            ),
            Progress::Skipped { target, reason } => write!(f, "skipping {target}: {reason}"),
        }
    }
}

/// Capacity of the one event every bench server holds: RESERVE never runs
/// out within a bounded run.
const BENCH_CAPACITY: u32 = u32::MAX;

/// A target, running.
enum Running {
    Floor(EchoFloor),
    Server(Server),
    /// A server with its journal in `dir`, which outlives it.
    Durable {
        server: Server,
        dir: tempfile::TempDir,
    },
    /// The durable floor, with its file in `dir`, which outlives it.
    DurableFloor {
        floor: EchoFloor,
        dir: tempfile::TempDir,
    },
    Original(OriginalServer),
}

impl Running {
    fn queue_id(&self) -> guichet::sysv::QueueId {
        match self {
            Running::Floor(f) | Running::DurableFloor { floor: f, .. } => f.queue_id(),
            Running::Server(s) | Running::Durable { server: s, .. } => s.queue_id(),
            Running::Original(o) => o.queue_id(),
        }
    }

    fn journal_stats(&self) -> Option<JournalStats> {
        match self {
            Running::Durable { server, .. } => server.journal_stats(),
            Running::DurableFloor { floor, .. } => floor.journal_stats(),
            _ => None,
        }
    }

    /// Stops the target and removes what it left (queue, journal).
    fn stop(self) -> Result<(), BenchError> {
        match self {
            Running::Server(server) => server.shutdown().map(drop).map_err(BenchError::Server),
            Running::Durable { server, dir } => {
                // On an error `dir` is dropped, which removes it too.
                server.shutdown().map_err(BenchError::Server)?;
                dir.close().map_err(BenchError::Io)
            }
            Running::DurableFloor { floor, dir } => {
                // Its loop has removed its file once `stop` returns. A
                // failed write or fdatasync timed its clients out: the
                // run's figures would say nothing, so the run fails.
                if let Some(failure) = floor.stop() {
                    return Err(BenchError::Io(failure));
                }
                dir.close().map_err(BenchError::Io)
            }
            // Dropping them removes their queues.
            Running::Floor(_) | Running::Original(_) => Ok(()),
        }
    }
}

fn server_builder(dispatch: Dispatch) -> guichet::server::Builder {
    Server::builder()
        .event("bench", BENCH_CAPACITY)
        .dispatch(dispatch)
        .max_bookings(guichet::Ledger::MAX_BOOKINGS_LIMIT)
}

fn start(
    target: Target,
    original: Option<&OriginalBuild>,
    journal: &JournalPlan,
) -> Result<Running, BenchError> {
    match target {
        Target::Floor(loops) => EchoFloor::spawn(loops).map(Running::Floor),
        Target::Server(dispatch) => server_builder(dispatch)
            .spawn()
            .map(Running::Server)
            .map_err(BenchError::Server),
        Target::DurableFloor => {
            let dir = journal_dir(journal)?;
            let floor = EchoFloor::spawn_durable(dir.path())?;
            Ok(Running::DurableFloor { floor, dir })
        }
        Target::Durable(dispatch) => {
            let dir = journal_dir(journal)?;
            let server = server_builder(dispatch)
                .journal(dir.path().join("journal"))
                .journal_group_commit_delay_us(journal.group_commit_delay_us)
                .journal_preallocate_bytes(journal.preallocate_bytes)
                .spawn()
                .map_err(BenchError::Server)?;
            Ok(Running::Durable { server, dir })
        }
        Target::OriginalC => match original {
            Some(build) => build.start(BENCH_CAPACITY).map(Running::Original),
            None => Err(BenchError::Config(
                "the original server is not built".into(),
            )),
        },
    }
}

/// A new owner-only directory for one durable target's files, under
/// [`JournalPlan::dir`] (the system's temporary directory by default).
fn journal_dir(journal: &JournalPlan) -> Result<tempfile::TempDir, BenchError> {
    let mut dir = tempfile::Builder::new();
    dir.prefix("guichet-bench-journal-");
    match &journal.dir {
        Some(base) => dir.tempdir_in(base),
        None => dir.tempdir(),
    }
    .map_err(BenchError::Io)
}

/// Starts `target`, drives it, stops it.
fn measure(
    target: Target,
    original: Option<&OriginalBuild>,
    journal: &JournalPlan,
    workload: Workload,
    load: Load,
) -> Result<Measurement, BenchError> {
    let running = start(target, original, journal)?;
    let measured = driver::drive_sampled(running.queue_id(), workload, load, &|| {
        running.journal_stats()
    });
    running.stop()?;
    measured
}

/// Runs `plan`, telling `progress` about each cell.
///
/// Cells run one at a time, grouped by workload then client count; within
/// a group, each round measures every target back to back, so a group's
/// ratios compare figures taken moments apart. `original-c` is skipped (and said so through
/// `progress` and in the report) when it cannot be compiled.
///
/// # Examples
///
/// A run of a few tens of milliseconds: a floor and one server mode, one
/// client, one round. Speed is not asserted, only the report's shape:
///
/// ```
/// use guichet_bench::{run, Plan, Progress, Target, Workload};
/// use guichet::server::Dispatch;
///
/// let plan = Plan {
///     targets: vec![Target::Floor(1), Target::Server(Dispatch::Sequential)],
///     workloads: vec![Workload::Query],
///     clients: vec![1],
///     warmup_ms: 0,
///     duration_ms: 20,
///     rounds: 1,
///     ..Plan::default()
/// };
/// let mut measured = 0;
/// let report = run(&plan, &mut |progress| {
///     if let Progress::Measured { .. } = progress {
///         measured += 1;
///     }
/// })?;
/// assert_eq!(measured, plan.measurements());
/// let targets: Vec<&str> = report.rows.iter().map(|row| row.target.as_str()).collect();
/// assert_eq!(targets, ["floor", "sequential"]);
/// assert!(report.journal.is_none()); // no durable target
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// - [`BenchError::Config`] for a plan out of its limits, before anything
///   runs: 0 or over [`MAX_TARGETS`] targets, no workload, 0 or over 16
///   client counts, nothing to measure (only durable targets, none of their
///   workloads), `rounds` outside 1 to [`MAX_ROUNDS`], a load out of the
///   limits of [`drive`], or a [`JournalPlan::dir`] that is not a
///   directory while a durable target is planned;
/// - then whatever stops a target from starting, being driven or
///   stopping: [`BenchError::Sysv`] (a floor's or the C server's queue),
///   [`BenchError::Server`], [`BenchError::Spawn`], [`BenchError::Io`] (a
///   journal's temporary directory, the C server's process). The run ends
///   there; no partial report is returned.
pub fn run(plan: &Plan, progress: &mut dyn FnMut(&Progress)) -> Result<Report, BenchError> {
    plan.check()?;
    let mut report = Report::new(Machine::probe());
    if plan.workloads.iter().any(|&w| {
        plan.targets
            .iter()
            .any(|&t| t.is_durable() && plan.measures(t, w))
    }) {
        let mut setup = JournalSetup::probe(&plan.journal);
        // Before the cells, and again after them: the run's conditions.
        setup.disk_floor_ns = Some(disk_floor(&setup)?);
        report.journal = Some(setup);
    }
    let mut targets = plan.targets.clone();
    let original = if targets.contains(&Target::OriginalC) {
        match OriginalBuild::compile() {
            Ok(build) => Some(build),
            Err(error) => {
                let skipped = Progress::Skipped {
                    target: Target::OriginalC,
                    reason: error.to_string(),
                };
                progress(&skipped);
                report.skipped.push(format!("original-c: {error}"));
                targets.retain(|t| *t != Target::OriginalC);
                None
            }
        }
    } else {
        None
    };
    let measured = Plan {
        targets: targets.clone(),
        ..plan.clone()
    };
    let total = measured.measurements();
    let mut index = 0;
    for &workload in &plan.workloads {
        let targets: Vec<Target> = targets
            .iter()
            .copied()
            .filter(|&t| plan.measures(t, workload))
            .collect();
        for &clients in &plan.clients {
            // One list of measurements per target, filled round by round.
            let mut group: Vec<Vec<Measurement>> = vec![Vec::new(); targets.len()];
            for round in 1..=plan.rounds {
                for (&target, rounds) in targets.iter().zip(&mut group) {
                    index += 1;
                    progress(&Progress::Cell {
                        index,
                        total,
                        round,
                        target,
                        workload,
                        clients,
                    });
                    let m = measure(
                        target,
                        original.as_ref(),
                        &plan.journal,
                        workload,
                        plan.load(clients),
                    )?;
                    progress(&Progress::Measured {
                        ops_per_s: m.ops_per_s(),
                        p50_ns: m.latency_ns.quantile(0.5),
                        p99_ns: m.latency_ns.quantile(0.99),
                        errors: m.errors,
                    });
                    rounds.push(m);
                }
            }
            for (&target, rounds) in targets.iter().zip(&group) {
                report
                    .rows
                    .push(Row::new(target, workload, clients, rounds));
            }
        }
    }
    report.machine.load_after = report::loadavg();
    if let Some(setup) = &mut report.journal {
        setup.disk_floor_after_ns = Some(disk_floor(setup)?);
    }
    report.compare_with_floors();
    report.compare_durable_with_plain();
    report.compare_durable_with_limit();
    Ok(report)
}

/// [`disk_floor_ns`] in the journals' directory.
fn disk_floor(setup: &JournalSetup) -> Result<u64, BenchError> {
    disk_floor_ns(Path::new(&setup.dir)).map_err(BenchError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_round_trip() {
        for name in [
            "floor",
            "floor:2",
            "thread-per-request",
            "pool:2",
            "sequential",
            "original-c",
            "thread-per-request+journal",
            "pool:2+journal",
            "sequential+journal",
            "floor+journal",
        ] {
            let target: Target = name.parse().unwrap();
            assert_eq!(target.to_string(), name);
        }
        assert!(matches!(
            "pool+journal".parse::<Target>(),
            Ok(Target::Durable(Dispatch::Pool(_)))
        ));
        for bad in [
            "floor:2+journal",
            "original-c+journal",
            "+journal",
            "pool:0+journal",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
    }

    #[test]
    fn durable_targets_run_only_in_durable_workloads() {
        let plan = Plan::default();
        // 6 targets in both workloads, 3 durable ones in RESERVE alone.
        assert_eq!(plan.cells(), (6 * 2 + 3) * plan.clients.len());
        assert!(!plan.measures(Target::Floor(1), Workload::HoldConfirm));
        let holds = Plan {
            workloads: Workload::ALL.to_vec(),
            durable_workloads: vec![Workload::Reserve, Workload::HoldConfirm],
            ..Plan::default()
        };
        // And the 3 servers and 2 durable ones in HOLD-CONFIRM (not the
        // durable floor).
        assert_eq!(holds.cells(), (6 * 2 + 3 + 2 * 2 + 1) * plan.clients.len());
        assert!(!plan.measures(Target::DurableFloor, Workload::HoldConfirm));
        assert!(plan.measures(Target::Durable(Dispatch::Pool(2)), Workload::Reserve));
        assert!(!plan.measures(Target::Durable(Dispatch::Pool(2)), Workload::Query));
        assert!(plan.measures(Target::Server(Dispatch::Pool(2)), Workload::Query));
        let nothing = Plan {
            targets: vec![Target::Durable(Dispatch::Sequential)],
            workloads: vec![Workload::Query],
            ..Plan::default()
        };
        assert!(matches!(nothing.check(), Err(BenchError::Config(_))));
    }
}
