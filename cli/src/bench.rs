//! `guichet bench`: each dispatch mode against the echo floor, in one run.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use guichet::sysv::QueueId;
use guichet_bench::{
    compare_clients, compare_clients_with, run, JournalPlan, LibraryClient, Load, Plan, Progress,
    Target, Workload,
};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Targets, comma-separated: floor, floor:N, thread-per-request, pool,
    /// pool:N, sequential, original-c; a dispatch mode followed by +journal
    /// (pool:2+journal) is that server with its journal on, and
    /// floor+journal the echo floor with a group commit (the durable rows'
    /// floor). Default: floor, floor:2, thread-per-request, pool:2,
    /// sequential, original-c, floor+journal, thread-per-request+journal,
    /// pool:2+journal.
    #[arg(long, value_delimiter = ',', value_parser = parse_target)]
    targets: Vec<Target>,
    /// Workloads, comma-separated: reserve, query, hold-confirm.
    #[arg(long, value_delimiter = ',', default_value = "reserve,query", value_parser = parse_workload)]
    workloads: Vec<Workload>,
    /// Workloads the +journal targets are measured in (of --workloads). A
    /// QUERY waits for the disk only while changes are pending, and the
    /// query workload makes none.
    #[arg(long, value_delimiter = ',', default_value = "reserve", value_parser = parse_workload)]
    durable_workloads: Vec<Workload>,
    /// Where the +journal targets' temporary journal directories go
    /// (default: the system's temporary directory). Use the disk to
    /// measure: on tmpfs an fsync costs nothing.
    #[arg(long, value_name = "DIR")]
    journal_dir: Option<PathBuf>,
    /// The +journal targets' group-commit delay.
    #[arg(long, value_name = "US", default_value_t = JournalPlan::default().group_commit_delay_us)]
    journal_group_commit_delay_us: u32,
    /// Zeros the +journal targets keep ahead of their journals' ends.
    #[arg(long, value_name = "BYTES", default_value_t = JournalPlan::default().preallocate_bytes)]
    journal_preallocate_bytes: u64,
    /// Client thread counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Measured time of each cell.
    #[arg(long, default_value_t = Plan::default().duration_ms)]
    duration_ms: u32,
    /// Unmeasured warm-up before each cell.
    #[arg(long, default_value_t = Plan::default().warmup_ms)]
    warmup_ms: u32,
    /// Times each cell is measured, interleaved; rows show the median.
    #[arg(long, default_value_t = Plan::default().rounds)]
    rounds: u32,
    /// Instead of the targets: compare the library's client with a blocking
    /// and a spinning C client built from include/guichet.h (with $CC or
    /// cc), on the same server, for each dispatch mode among --targets
    /// (default thread-per-request, pool:2, sequential), in the first of
    /// --workloads (default reserve here). Prints a table (not JSON).
    #[arg(long)]
    compare_clients: bool,
    /// Print the results as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    json: bool,
    /// No progress on stderr.
    #[arg(long)]
    quiet: bool,
}

fn parse_target(s: &str) -> Result<Target, String> {
    s.parse()
        .map_err(|e: guichet_bench::BenchError| e.to_string())
}

fn parse_workload(s: &str) -> Result<Workload, String> {
    s.parse()
        .map_err(|e: guichet_bench::BenchError| e.to_string())
}

pub fn bench(args: BenchArgs) -> ExitCode {
    let defaults = Plan::default();
    let plan = Plan {
        targets: if args.targets.is_empty() {
            defaults.targets
        } else {
            args.targets
        },
        workloads: args.workloads,
        durable_workloads: args.durable_workloads,
        journal: JournalPlan {
            dir: args.journal_dir,
            group_commit_delay_us: args.journal_group_commit_delay_us,
            preallocate_bytes: args.journal_preallocate_bytes,
        },
        clients: args.clients,
        warmup_ms: args.warmup_ms,
        duration_ms: args.duration_ms,
        rounds: args.rounds,
        timeout_ms: defaults.timeout_ms,
    };
    if args.compare_clients {
        return compare(plan, args.quiet);
    }
    if !args.quiet {
        eprintln!(
            "guichet bench: {} measurements ({} cells × {} rounds) of {} ms (+{} ms warm-up) each",
            plan.measurements(),
            plan.cells(),
            plan.rounds,
            plan.duration_ms,
            plan.warmup_ms
        );
    }
    let quiet = args.quiet;
    let mut progress = |p: &Progress| {
        if !quiet {
            eprintln!("{p}");
        }
    };
    match run(&plan, &mut progress) {
        Ok(report) => {
            let out = if args.json {
                report.json()
            } else {
                report.table()
            };
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(out.as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guichet bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--compare-clients`: the library's client against the C clients.
fn compare(mut plan: Plan, quiet: bool) -> ExitCode {
    // RESERVE unless asked otherwise: the default workload list starts
    // with it.
    plan.targets.retain(|t| matches!(t, Target::Server(_)));
    let mut progress = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    // The library's client in a process of its own, as the C clients run:
    // beside the server's threads it is slower for that alone.
    let compared = match std::env::current_exe() {
        Ok(program) => {
            let library = LibraryClient::Process {
                program,
                args: vec!["drive-client".to_owned()],
            };
            compare_clients_with(&plan, &library, &mut progress)
        }
        Err(_) => compare_clients(&plan, &mut progress),
    };
    match compared {
        Ok(comparison) => {
            let mut stdout = std::io::stdout().lock();
            if stdout.write_all(comparison.table().as_bytes()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guichet bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `guichet drive-client`: what `bench --compare-clients` runs to measure
/// the library's client in a process of its own.
#[derive(Debug, clap::Args)]
pub struct DriveClientArgs {
    /// The server's queue id.
    queue_id: QueueId,
    /// Client threads.
    clients: usize,
    /// Unmeasured warm-up.
    warmup_ms: u32,
    /// Measured time.
    duration_ms: u32,
    /// reserve, query or hold-confirm.
    #[arg(value_parser = parse_workload)]
    workload: Workload,
}

/// Drives the server as `args` say; prints "OPS ERRORS" (the measured
/// calls answered OK, and the others), as `bench/c/client.c` does.
pub fn drive_client(args: &DriveClientArgs) -> ExitCode {
    let load = Load {
        clients: args.clients,
        warmup_ms: args.warmup_ms,
        duration_ms: args.duration_ms,
        timeout_ms: Plan::default().timeout_ms,
    };
    match LibraryClient::InProcess.drive(args.queue_id, args.workload, load) {
        Ok((ops, errors)) => {
            println!("{ops} {errors}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("guichet drive-client: {e}");
            ExitCode::FAILURE
        }
    }
}
