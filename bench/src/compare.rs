//! The library's client against C clients built from `include/guichet.h`:
//! the same server driven in turn by each, in one run
//! (`guichet bench --compare-clients`).

use std::fmt::Write as _;

use guichet::server::{Dispatch, Server};

use super::c_clients::{CClientBuild, CWait};
use super::library_client::LibraryClient;
use super::report::{loadavg, Machine};
use super::{server_builder, BenchError, Load, Plan, Target, Workload};

/// The dispatch modes compared when a plan names none.
pub const COMPARED_MODES: [Dispatch; 3] = [
    Dispatch::ThreadPerRequest,
    Dispatch::Pool(2),
    Dispatch::Sequential,
];

/// One (mode, clients) cell: each client's median ops/s over the rounds,
/// and the library's ratio in each round.
///
/// # Examples
///
/// ```
/// use guichet_bench::ClientRow;
///
/// let row = ClientRow {
///     mode: "pool:2".into(),
///     clients: 1,
///     library: 45_000.0,
///     c_blocking: Some(35_000.0),
///     c_spinning: Some(50_000.0),
///     round_ratios: vec![0.95, 0.8, 0.9],
///     errors: 0,
/// };
/// assert_eq!(row.ratio(), Some(0.9));
/// assert_eq!(row.round_ratio_spread(), Some((0.8, 0.9, 0.95)));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRow {
    /// The server's dispatch mode.
    pub mode: String,
    /// Client threads.
    pub clients: usize,
    /// The library's [`Client`](guichet::Client), OK calls per second.
    pub library: f64,
    /// The blocking C client (`None` when not built).
    pub c_blocking: Option<f64>,
    /// The spinning C client (`None` when not built).
    pub c_spinning: Option<f64>,
    /// Each round's library ops/s over that round's figure of the better
    /// C client (the one with the higher median), in round order: runs
    /// side by side within a round, so the spread shows how far one
    /// round's ratio moves on this machine. Empty without C clients.
    pub round_ratios: Vec<f64>,
    /// Failed calls, all clients and rounds together.
    pub errors: u64,
}

impl ClientRow {
    /// The library's ops/s over the better C client's.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        let best = self
            .c_blocking
            .into_iter()
            .chain(self.c_spinning)
            .reduce(f64::max)?;
        (best > 0.0).then(|| self.library / best)
    }

    /// The lowest, median and highest of [`ClientRow::round_ratios`];
    /// `None` without any.
    #[must_use]
    pub fn round_ratio_spread(&self) -> Option<(f64, f64, f64)> {
        let mut ratios = self.round_ratios.clone();
        let middle = median(&mut ratios)?;
        Some((ratios[0], middle, ratios[ratios.len() - 1]))
    }
}

/// A comparison's rows, and what was skipped.
#[derive(Clone, Debug)]
pub struct ClientComparison {
    /// One per (mode, clients).
    pub rows: Vec<ClientRow>,
    /// The machine, its load before and after.
    pub machine: Machine,
    /// Why the C clients were not measured, if they were not.
    pub skipped: Option<String>,
    /// The workload.
    pub workload: Workload,
    /// Rounds per cell.
    pub rounds: u32,
    /// Where the library's client ran.
    pub library: LibraryClient,
}

/// Runs the comparison: for each dispatch mode among `plan.targets`
/// ([`COMPARED_MODES`] if none) and each client count, one server, driven
/// in turn by the library's client, the blocking C client and the spinning
/// one, `plan.rounds` times interleaved, in `plan.workloads`' first
/// workload. Without a C compiler only the library is measured, and
/// [`ClientComparison::skipped`] says why.
///
/// # Examples
///
/// ```
/// use guichet_bench::{compare_clients, Plan, Target, Workload};
/// use guichet::server::Dispatch;
///
/// let plan = Plan {
///     targets: vec![Target::Server(Dispatch::Pool(2))],
///     workloads: vec![Workload::Reserve],
///     clients: vec![1],
///     warmup_ms: 0,
///     duration_ms: 20,
///     rounds: 1,
///     ..Plan::default()
/// };
/// let comparison = compare_clients(&plan, &mut |line| eprintln!("{line}"))?;
/// assert_eq!(comparison.rows.len(), 1);
/// assert!(comparison.table().contains("pool:2"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`BenchError::Config`] for a plan out of its limits (see [`Plan`]);
/// [`BenchError::Server`] if a server cannot start or stop;
/// [`BenchError::Spawn`] or [`BenchError::Io`] if a client cannot run.
pub fn compare_clients(
    plan: &Plan,
    progress: &mut dyn FnMut(&str),
) -> Result<ClientComparison, BenchError> {
    compare_clients_with(plan, &LibraryClient::InProcess, progress)
}

/// [`compare_clients`], with the library's client run where `library`
/// says: [`LibraryClient::Process`] measures it as the C clients are, in a
/// process of its own (`guichet bench --compare-clients` does).
///
/// # Errors
///
/// Those of [`compare_clients`].
pub fn compare_clients_with(
    plan: &Plan,
    library: &LibraryClient,
    progress: &mut dyn FnMut(&str),
) -> Result<ClientComparison, BenchError> {
    let mut modes: Vec<Dispatch> = plan
        .targets
        .iter()
        .filter_map(|t| match t {
            Target::Server(d) => Some(*d),
            _ => None,
        })
        .collect();
    if modes.is_empty() {
        modes = COMPARED_MODES.to_vec();
    }
    let workload = *plan
        .workloads
        .first()
        .ok_or_else(|| BenchError::Config("a comparison needs a workload".into()))?;
    if !(1..=super::MAX_ROUNDS).contains(&plan.rounds) {
        return Err(BenchError::Config(format!(
            "rounds must be 1 to {}",
            super::MAX_ROUNDS
        )));
    }
    let (build, skipped) = match CClientBuild::compile() {
        Ok(_) if workload == Workload::HoldConfirm => {
            let reason = "the C client makes QUERY and RESERVE calls only".to_owned();
            progress(&format!("skipping the C clients: {reason}"));
            (None, Some(reason))
        }
        Ok(build) => (Some(build), None),
        Err(error) => {
            progress(&format!("skipping the C clients: {error}"));
            (None, Some(error.to_string()))
        }
    };
    let mut comparison = ClientComparison {
        rows: Vec::new(),
        machine: Machine::probe(),
        skipped,
        workload,
        rounds: plan.rounds,
        library: library.clone(),
    };
    for &mode in &modes {
        for &clients in &plan.clients {
            let load = plan.load(clients);
            load.check()?;
            let clients = Clients {
                library,
                c: build.as_ref(),
            };
            let row = compare_cell(mode, workload, load, plan.rounds, &clients, progress)?;
            comparison.rows.push(row);
        }
    }
    comparison.machine.load_after = loadavg();
    Ok(comparison)
}

/// The clients compared: the library's, and the C ones if they were built.
struct Clients<'a> {
    library: &'a LibraryClient,
    c: Option<&'a CClientBuild>,
}

/// The clients of a round: the library's (`None`), then the C ones.
const RUNNERS: [Option<CWait>; 3] = [None, Some(CWait::Blocking), Some(CWait::Spinning)];

/// One server, driven in turn by each client, `rounds` times (each round
/// starting with the next client: with a multiple of 3 rounds, each starts
/// as often); each
/// client's OK calls counted over the same measured time.
fn compare_cell(
    mode: Dispatch,
    workload: Workload,
    load: Load,
    rounds: u32,
    clients: &Clients<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<ClientRow, BenchError> {
    let server: Server = server_builder(mode).spawn().map_err(BenchError::Server)?;
    let queue = server.queue_id();
    let elapsed_s = f64::from(load.duration_ms) / 1e3;
    let (mut library, mut blocking, mut spinning) = (Vec::new(), Vec::new(), Vec::new());
    let mut errors = 0;
    for round in 1..=rounds {
        // Each round starts with the next client: whoever goes first after
        // another client's run finds the server in the state that run left.
        let mut ops_s: [Option<f64>; 3] = [None; 3];
        for turn in 0..RUNNERS.len() {
            let runner = (turn + round as usize - 1) % RUNNERS.len();
            let (ops, failed) = match (RUNNERS[runner], clients.c) {
                (None, _) => clients.library.drive(queue, workload, load)?,
                (Some(wait), Some(build)) => build.drive(queue, wait, workload, load)?,
                (Some(_), None) => continue,
            };
            errors += failed;
            ops_s[runner] = Some(ops as f64 / elapsed_s);
        }
        let mut line = format!("{mode}, {} client(s), round {round}:", load.clients);
        for ((runner, figure), figures) in
            RUNNERS
                .iter()
                .zip(ops_s)
                .zip([&mut library, &mut blocking, &mut spinning])
        {
            if let Some(figure) = figure {
                figures.push(figure);
                match runner {
                    None => {
                        let _ = write!(line, " library {figure:.0}");
                    }
                    Some(wait) => {
                        let _ = write!(line, ", {wait} {figure:.0}");
                    }
                }
            }
        }
        progress(&format!("{line} ops/s"));
    }
    server.shutdown().map_err(BenchError::Server)?;
    let round_ratios = round_ratios(&library, &blocking, &spinning);
    Ok(ClientRow {
        mode: mode.to_string(),
        clients: load.clients,
        library: median(&mut library).unwrap_or(0.0),
        c_blocking: median(&mut blocking),
        c_spinning: median(&mut spinning),
        round_ratios,
        errors,
    })
}

/// Each round's library figure over the same round's figure of the C
/// client with the higher median (rounds in order; every runner ran in
/// every round, or its list is empty).
fn round_ratios(library: &[f64], blocking: &[f64], spinning: &[f64]) -> Vec<f64> {
    let better = [blocking, spinning]
        .into_iter()
        .filter(|c| c.len() == library.len())
        .max_by(|a, b| {
            let (mut a, mut b) = (a.to_vec(), b.to_vec());
            let middle = |c: &mut [f64]| median(c).unwrap_or(0.0);
            middle(&mut a).total_cmp(&middle(&mut b))
        });
    let Some(better) = better else {
        return Vec::new();
    };
    library
        .iter()
        .zip(better)
        .filter(|(_, c)| **c > 0.0)
        .map(|(l, c)| l / c)
        .collect()
}

fn median(figures: &mut [f64]) -> Option<f64> {
    figures.sort_by(f64::total_cmp);
    figures.get(figures.len() / 2).copied()
}

impl ClientComparison {
    /// The comparison as a text table: ops/s of each client (medians of
    /// the rounds) and the library's ratio to the better C client.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "client comparison: {}, ops/s (median of {} round(s)); ratio = library / better C client",
            self.workload.name(),
            self.rounds
        );
        let _ = writeln!(
            out,
            "machine: {} CPU(s), load {} before, {} after",
            self.machine.cpus, self.machine.load_before, self.machine.load_after
        );
        if self.library == LibraryClient::InProcess {
            let _ = writeln!(
                out,
                "library client: in the server's process (slower there than in its own, as the C clients run)"
            );
        }
        if let Some(reason) = &self.skipped {
            let _ = writeln!(out, "C clients skipped: {reason}");
        }
        let _ = writeln!(
            out,
            "{:<20} {:>7} {:>10} {:>11} {:>11} {:>6} {:>22} {:>6}",
            "mode",
            "clients",
            "library",
            "C blocking",
            "C spinning",
            "ratio",
            "per round: med (range)",
            "errors"
        );
        let figure = |f: Option<f64>| f.map_or_else(|| "-".to_owned(), |f| format!("{f:.0}"));
        for row in &self.rows {
            let _ = writeln!(
                out,
                "{:<20} {:>7} {:>10.0} {:>11} {:>11} {:>6} {:>22} {:>6}",
                row.mode,
                row.clients,
                row.library,
                figure(row.c_blocking),
                figure(row.c_spinning),
                row.ratio()
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
                row.round_ratio_spread().map_or_else(
                    || "-".to_owned(),
                    |(low, middle, high)| format!("{middle:.2} ({low:.2}-{high:.2})")
                ),
                row.errors
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_round_is_divided_by_the_better_c_client_of_the_same_round() {
        let library = [90.0, 100.0, 120.0];
        let spinning = [100.0, 100.0, 100.0];
        // Blocking wins one round but has the lower median: not the one.
        let blocking = [50.0, 125.0, 60.0];
        assert_eq!(
            round_ratios(&library, &blocking, &spinning),
            [0.9, 1.0, 1.2]
        );
        // A client that did not run in every round is left out.
        assert_eq!(round_ratios(&library, &[], &spinning), [0.9, 1.0, 1.2]);
        assert!(round_ratios(&library, &[], &[]).is_empty());
    }
}
