//! A run's results: one [`Row`] per cell, ratios to the floor, and the
//! machine they were taken on; printed as a table or as JSON.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Histogram, JournalPlan, Measurement, Synced, Target, Workload, JOURNAL_SUFFIX};

/// One cell's figures.
///
/// Plain data, so a caller can post-process a [`Report`] without parsing
/// its table or JSON. Ratios are `None` rather than 0 or NaN when there is
/// nothing to compare with.
///
/// # Examples
///
/// ```
/// use guichet_bench::{run, Plan, Target, Workload};
///
/// let plan = Plan {
///     targets: vec![Target::Floor(1)],
///     workloads: vec![Workload::Query],
///     clients: vec![1],
///     warmup_ms: 0,
///     duration_ms: 10,
///     rounds: 1,
///     ..Plan::default()
/// };
/// let report = run(&plan, &mut |_| {})?;
/// let row = report.rows.first().ok_or("no row")?;
/// assert!(row.is_floor && !row.is_durable);
/// assert_eq!((row.target.as_str(), row.workload), ("floor", Workload::Query));
/// assert_eq!((row.clients, row.rounds), (1, 1));
/// assert!(row.ops_per_s_min <= row.ops_per_s && row.ops_per_s <= row.ops_per_s_max);
/// assert_eq!((row.fsyncs, row.ops_vs_plain), (None, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What was measured (`floor`, `pool:2`, `original-c`…).
    pub target: String,
    /// Whether it is a floor.
    pub is_floor: bool,
    /// Whether it journals its changes.
    pub is_durable: bool,
    /// The workload.
    pub workload: Workload,
    /// Client threads.
    pub clients: usize,
    /// Rounds measured.
    pub rounds: usize,
    /// Round trips answered OK in the measured time, all rounds.
    pub ops: u64,
    /// Calls that failed or were not answered OK.
    pub errors: u64,
    /// OK round trips per second: the median round's.
    pub ops_per_s: f64,
    /// The slowest round's ops/s.
    pub ops_per_s_min: f64,
    /// The fastest round's ops/s.
    pub ops_per_s_max: f64,
    /// Median latency, all rounds merged.
    pub p50_ns: u64,
    /// 99th percentile latency.
    pub p99_ns: u64,
    /// 99.9th percentile latency.
    pub p999_ns: u64,
    /// Slowest round trip.
    pub max_ns: u64,
    /// `ops_per_s` over the group floor's (`None` without a floor): the
    /// durable floor's for a durable row, the best echo floor's otherwise.
    pub ops_vs_floor: Option<f64>,
    /// `p99_ns` over the group floor's.
    pub p99_vs_floor: Option<f64>,
    /// Group-commit `fdatasync`s in the measured time, all rounds (`None`
    /// for a target without a journal).
    pub fsyncs: Option<u64>,
    /// Mean changes each of those `fdatasync`s covered (`None` without a
    /// journal or without any).
    pub changes_per_fsync: Option<f64>,
    /// Mean write + `fdatasync` of those group commits, ns: the disk as
    /// the cell found it (`None` without a journal or without any).
    pub sync_ns: Option<u64>,
    /// A durable row's `ops_per_s` over that of the same dispatch mode
    /// (or floor) without a journal in its group (`None` otherwise).
    pub ops_vs_plain: Option<f64>,
    /// A durable row's `ops_per_s` over its group's limit
    /// ([`Report::limits`]; `None` otherwise).
    pub ops_vs_limit: Option<f64>,
}

/// The most a durable target can do at `clients` clients: each client's
/// round trip costs at least the disk's floor (its change's
/// `write` + `fdatasync`) plus the plain server's median round trip, and
/// a perfect group commit syncs every waiting change at once.
#[derive(Clone, Debug, PartialEq)]
pub struct Limit {
    /// The workload.
    pub workload: Workload,
    /// Client threads.
    pub clients: usize,
    /// The plain server it is taken from: the fastest guichet dispatch
    /// mode without a journal in the group.
    pub plain: String,
    /// That server's p50, ns.
    pub plain_p50_ns: u64,
    /// The disk's floor, ns.
    pub floor_ns: u64,
    /// `clients / (floor + plain p50)`, per second.
    pub ops_per_s: f64,
}

impl Row {
    /// The row of `target` from its rounds' measurements.
    pub(crate) fn new(
        target: Target,
        workload: Workload,
        clients: usize,
        rounds: &[Measurement],
    ) -> Row {
        let mut latency = Histogram::new();
        let (mut ops, mut errors) = (0, 0);
        for m in rounds {
            latency.merge(&m.latency_ns);
            ops += m.ops;
            errors += m.errors;
        }
        let journal = rounds
            .iter()
            .filter_map(|m| m.journal)
            .reduce(|mut sum, m| {
                sum += m;
                sum
            });
        let mut rates: Vec<f64> = rounds.iter().map(Measurement::ops_per_s).collect();
        rates.sort_by(f64::total_cmp);
        Row {
            target: target.to_string(),
            is_floor: target.is_floor(),
            is_durable: target.is_durable(),
            workload,
            clients,
            rounds: rounds.len(),
            ops,
            errors,
            ops_per_s: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            ops_per_s_min: rates.first().copied().unwrap_or(0.0),
            ops_per_s_max: rates.last().copied().unwrap_or(0.0),
            p50_ns: latency.quantile(0.5),
            p99_ns: latency.quantile(0.99),
            p999_ns: latency.quantile(0.999),
            max_ns: latency.max(),
            ops_vs_floor: None,
            p99_vs_floor: None,
            fsyncs: journal.map(|j| j.fsyncs),
            changes_per_fsync: journal.as_ref().and_then(Synced::changes_per_fsync),
            sync_ns: journal.as_ref().and_then(Synced::mean_sync_ns),
            ops_vs_plain: None,
            ops_vs_limit: None,
        }
    }
}

/// Where the durable targets' journals were, on what, and how configured.
///
/// In the report because a durable figure means little without it: the
/// same run on tmpfs and on a disk differ by the cost of an `fdatasync`.
///
/// # Examples
///
/// ```
/// use guichet_bench::{JournalPlan, JournalSetup};
///
/// let setup = JournalSetup::probe(&JournalPlan::default());
/// assert_eq!(setup.dir, std::env::temp_dir().display().to_string());
/// println!("journals on {} ({})", setup.dir, setup.filesystem);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalSetup {
    /// The directory the temporary journal directories were made in.
    pub dir: String,
    /// Its file system type from `/proc/self/mounts` (`ext4`, `tmpfs`…;
    /// empty if unknown).
    pub filesystem: String,
    /// The group-commit delay.
    pub group_commit_delay_us: u32,
    /// The preallocation.
    pub preallocate_bytes: u64,
    /// The disk's floor in `dir` before the cells: the median
    /// `write` + `fdatasync` ([`disk_floor_ns`](super::disk_floor_ns)).
    pub disk_floor_ns: Option<u64>,
    /// The same, after the cells.
    pub disk_floor_after_ns: Option<u64>,
}

impl JournalSetup {
    /// Describes `plan`'s journals: the directory (the system's temporary
    /// one when the plan names none) and, from `/proc/self/mounts`, its file
    /// system. Never fails: what cannot be read is left empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::{JournalPlan, JournalSetup};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let plan = JournalPlan { dir: Some(dir.path().to_owned()), ..JournalPlan::default() };
    /// let setup = JournalSetup::probe(&plan);
    /// assert_eq!(setup.dir, dir.path().display().to_string());
    /// assert_eq!(setup.group_commit_delay_us, plan.group_commit_delay_us);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn probe(plan: &JournalPlan) -> JournalSetup {
        let dir = plan.dir.clone().unwrap_or_else(std::env::temp_dir);
        JournalSetup {
            filesystem: filesystem_of(&dir).unwrap_or_default(),
            dir: dir.display().to_string(),
            group_commit_delay_us: plan.group_commit_delay_us,
            preallocate_bytes: plan.preallocate_bytes,
            disk_floor_ns: None,
            disk_floor_after_ns: None,
        }
    }

    /// The floor the limits use: the lower of the two measurements (the
    /// disk at its least loaded), `None` before any.
    pub fn floor_ns(&self) -> Option<u64> {
        match (self.disk_floor_ns, self.disk_floor_after_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The type of the file system holding `dir`: that of the longest mount
/// point in `/proc/self/mounts` that contains it.
fn filesystem_of(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            // Spaces in mount points are written `\040`.
            let point = fields.next()?.replace("\\040", " ");
            let kind = fields.next()?;
            dir.starts_with(&point)
                .then(|| (point.len(), kind.to_owned()))
        })
        // The last of equally long ones: a later mount hides an earlier.
        .max_by_key(|(len, _)| *len)
        .map(|(_, kind)| kind)
}

/// Where and when a run was taken.
///
/// Figures from different machines, or from one machine under other load,
/// do not compare: every report carries this so a reader can tell.
///
/// # Examples
///
/// ```
/// use guichet_bench::Machine;
///
/// let machine = Machine::probe();
/// assert!(machine.cpus >= 1);
/// assert!(machine.load_after.is_empty()); // filled in when a run ends
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// `model name` of the first CPU in `/proc/cpuinfo`.
    pub cpu_model: String,
    /// `/proc/loadavg` when the run started.
    pub load_before: String,
    /// `/proc/loadavg` when it ended.
    pub load_after: String,
    /// When the run started, seconds since the epoch (UTC).
    pub started_unix_s: u64,
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

impl Machine {
    /// Reads the machine's description and current load from `/proc`.
    /// Never fails: what cannot be read is left empty (or 1 CPU).
    ///
    /// # Examples
    ///
    /// ```
    /// use guichet_bench::Machine;
    ///
    /// let m = Machine::probe();
    /// println!("{} CPU(s), {}, load {}", m.cpus, m.cpu_model, m.load_before);
    /// assert!(m.started_unix_s > 1_600_000_000);
    /// ```
    #[must_use]
    pub fn probe() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            load_before: loadavg(),
            load_after: String::new(),
            started_unix_s: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// A run's results.
///
/// Returned by [`run`](super::run); print it with [`Report::table`] or
/// [`Report::json`].
///
/// # Examples
///
/// ```
/// use guichet_bench::{run, Plan, Target, Workload};
///
/// let plan = Plan {
///     targets: vec![Target::Floor(1)],
///     workloads: vec![Workload::Reserve],
///     clients: vec![1],
///     warmup_ms: 0,
///     duration_ms: 10,
///     rounds: 1,
///     ..Plan::default()
/// };
/// let report = run(&plan, &mut |_| {})?;
/// assert_eq!(report.rows.len(), plan.cells());
/// assert!(report.skipped.is_empty());
/// assert!(report.json().contains("\"target\":\"floor\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The machine and its load.
    pub machine: Machine,
    /// One row per cell, in run order.
    pub rows: Vec<Row>,
    /// Targets left out, with why.
    pub skipped: Vec<String>,
    /// The durable targets' journals (`None` if the run measured none).
    pub journal: Option<JournalSetup>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn per_fsync(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"))
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON integer; `null` for a missing value.
fn json_u64(v: Option<u64>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// A JSON number; `null` for a missing or non-finite value.
fn json_f64(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.4}"),
        _ => "null".to_owned(),
    }
}

impl Report {
    pub(crate) fn new(machine: Machine) -> Report {
        Report {
            machine,
            ..Report::default()
        }
    }

    /// Fills each row's ratios from the best floor (most ops/s) of its
    /// (workload, clients) group: the durable floor for durable rows, the
    /// echo floors for the others.
    pub(crate) fn compare_with_floors(&mut self) {
        let floors: Vec<(Workload, usize, bool, f64, u64)> = self
            .rows
            .iter()
            .filter(|r| r.is_floor)
            .map(|r| (r.workload, r.clients, r.is_durable, r.ops_per_s, r.p99_ns))
            .collect();
        for row in &mut self.rows {
            let best = floors
                .iter()
                .filter(|f| f.0 == row.workload && f.1 == row.clients && f.2 == row.is_durable)
                .max_by(|a, b| a.3.total_cmp(&b.3));
            if let Some(&(_, _, _, ops, p99)) = best {
                row.ops_vs_floor = (ops > 0.0).then(|| row.ops_per_s / ops);
                row.p99_vs_floor = (p99 > 0).then(|| row.p99_ns as f64 / p99 as f64);
            }
        }
    }

    /// Fills each durable row's [`Row::ops_vs_plain`] from the row of the
    /// same dispatch mode (or floor) without a journal in its (workload,
    /// clients) group.
    pub(crate) fn compare_durable_with_plain(&mut self) {
        let plain: Vec<(String, Workload, usize, f64)> = self
            .rows
            .iter()
            .filter(|r| !r.is_durable)
            .map(|r| (r.target.clone(), r.workload, r.clients, r.ops_per_s))
            .collect();
        for row in self.rows.iter_mut().filter(|r| r.is_durable) {
            let Some(base) = row.target.strip_suffix(JOURNAL_SUFFIX) else {
                continue;
            };
            let same = plain
                .iter()
                .find(|p| p.0 == base && p.1 == row.workload && p.2 == row.clients);
            if let Some(&(_, _, _, ops)) = same {
                row.ops_vs_plain = (ops > 0.0).then(|| row.ops_per_s / ops);
            }
        }
    }

    /// The limit of each (workload, clients) group that has a durable row
    /// and a guichet dispatch mode without a journal, given the disk's
    /// floor: see [`Limit`].
    #[must_use]
    pub fn limits(&self) -> Vec<Limit> {
        let Some(floor_ns) = self.journal.as_ref().and_then(JournalSetup::floor_ns) else {
            return Vec::new();
        };
        let mut limits: Vec<Limit> = Vec::new();
        for durable in self.rows.iter().filter(|r| r.is_durable) {
            if limits
                .iter()
                .any(|l| l.workload == durable.workload && l.clients == durable.clients)
            {
                continue;
            }
            let plain = self
                .rows
                .iter()
                .filter(|r| {
                    !r.is_durable
                        && !r.is_floor
                        && r.target != Target::OriginalC.to_string()
                        && r.workload == durable.workload
                        && r.clients == durable.clients
                })
                .max_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
            let Some(plain) = plain else { continue };
            let round_trip_ns = floor_ns + plain.p50_ns;
            limits.push(Limit {
                workload: durable.workload,
                clients: durable.clients,
                plain: plain.target.clone(),
                plain_p50_ns: plain.p50_ns,
                floor_ns,
                ops_per_s: durable.clients as f64 * 1e9 / round_trip_ns as f64,
            });
        }
        limits
    }

    /// Fills each durable row's [`Row::ops_vs_limit`].
    pub(crate) fn compare_durable_with_limit(&mut self) {
        let limits = self.limits();
        for row in self.rows.iter_mut().filter(|r| r.is_durable) {
            let limit = limits
                .iter()
                .find(|l| l.workload == row.workload && l.clients == row.clients);
            row.ops_vs_limit = limit
                .filter(|l| l.ops_per_s > 0.0)
                .map(|l| row.ops_per_s / l.ops_per_s);
        }
    }

    /// The results as a fixed-width table, with a header naming the
    /// machine and its load, and a last line per skipped target.
    ///
    /// # Examples
    ///
    /// ```
    /// let table = guichet_bench::Report::default().table();
    /// assert!(table.contains("ops/s"));
    /// ```
    #[must_use]
    pub fn table(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# {} CPU(s), {}; load average before {} / after {}",
            m.cpus, m.cpu_model, m.load_before, m.load_after
        );
        if let Some(j) = &self.journal {
            let _ = writeln!(
                out,
                "# +journal: each cell's journal in a new directory in {} ({}), \
                 group-commit delay {} µs, preallocation {} bytes (floor+journal: none, 1 MiB)",
                j.dir,
                if j.filesystem.is_empty() {
                    "file system unknown"
                } else {
                    &j.filesystem
                },
                j.group_commit_delay_us,
                j.preallocate_bytes
            );
            let floor =
                |ns: Option<u64>| ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", us(ns)));
            let _ = writeln!(
                out,
                "# disk floor (median write+fdatasync of {} small writes in {}): {} µs before the cells, {} µs after",
                super::DISK_FLOOR_SAMPLES,
                j.dir,
                floor(j.disk_floor_ns),
                floor(j.disk_floor_after_ns)
            );
        }
        for l in self.limits() {
            let _ = writeln!(
                out,
                "# limit {} at {} clients: {} / (floor {:.1} µs + {} p50 {:.1} µs) = {:.0} ops/s",
                l.workload.name(),
                l.clients,
                l.clients,
                us(l.floor_ns),
                l.plain,
                us(l.plain_p50_ns),
                l.ops_per_s
            );
        }
        let _ = writeln!(
            out,
            "{:<12} {:>7}  {:<26} {:>9} {:>17} {:>9} {:>9} {:>9} {:>6} {:>9} {:>10} {:>9} {:>9} {:>8} {:>8}",
            "workload",
            "clients",
            "target",
            "ops/s",
            "(rounds min-max)",
            "p50 µs",
            "p99 µs",
            "p999 µs",
            "errors",
            "×floor/s",
            "×floor p99",
            "×plain/s",
            "chg/fsync",
            "fsync µs",
            "×limit"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<12} {:>7}  {:<26} {:>9.0} {:>17} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>9} {:>10} {:>9} {:>9} {:>8} {:>8}",
                r.workload.name(),
                r.clients,
                r.target,
                r.ops_per_s,
                format!("{:.0}-{:.0}", r.ops_per_s_min, r.ops_per_s_max),
                us(r.p50_ns),
                us(r.p99_ns),
                us(r.p999_ns),
                r.errors,
                ratio(r.ops_vs_floor),
                ratio(r.p99_vs_floor),
                ratio(r.ops_vs_plain),
                per_fsync(r.changes_per_fsync),
                r.sync_ns.map_or_else(|| "-".to_owned(), |ns| format!("{:.1}", us(ns))),
                ratio(r.ops_vs_limit)
            );
        }
        for s in &self.skipped {
            let _ = writeln!(out, "# skipped {s}");
        }
        out
    }

    /// The results as one JSON object: `machine`, `journal` (`null`
    /// without durable targets), `rows` (one object per cell, latencies in
    /// ns, missing ratios and journal figures `null`) and `skipped`.
    ///
    /// Strings are escaped and non-finite numbers become `null`, so the
    /// output is valid JSON whatever the figures.
    ///
    /// # Examples
    ///
    /// ```
    /// let json = guichet_bench::Report::default().json();
    /// assert!(json.starts_with("{\"machine\":"));
    /// ```
    #[must_use]
    pub fn json(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"machine\":{{\"cpus\":{},\"cpu_model\":{},\"load_before\":{},\"load_after\":{},\"started_unix_s\":{}}}",
            m.cpus,
            json_string(&m.cpu_model),
            json_string(&m.load_before),
            json_string(&m.load_after),
            m.started_unix_s
        );
        match &self.journal {
            Some(j) => {
                let _ = write!(
                    out,
                    ",\"journal\":{{\"dir\":{},\"filesystem\":{},\"group_commit_delay_us\":{},\"preallocate_bytes\":{},\"disk_floor_ns\":{},\"disk_floor_after_ns\":{}}}",
                    json_string(&j.dir),
                    json_string(&j.filesystem),
                    j.group_commit_delay_us,
                    j.preallocate_bytes,
                    json_u64(j.disk_floor_ns),
                    json_u64(j.disk_floor_after_ns)
                );
            }
            None => out.push_str(",\"journal\":null"),
        }
        out.push_str(",\"rows\":[");
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"target\":{},\"floor\":{},\"workload\":{},\"clients\":{},\"rounds\":{},\"ops\":{},\"errors\":{},\"ops_per_s\":{},\"ops_per_s_min\":{},\"ops_per_s_max\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"ops_vs_floor\":{},\"p99_vs_floor\":{},\"durable\":{},\"fsyncs\":{},\"changes_per_fsync\":{},\"sync_ns\":{},\"ops_vs_plain\":{},\"ops_vs_limit\":{}}}",
                json_string(&r.target),
                r.is_floor,
                json_string(r.workload.name()),
                r.clients,
                r.rounds,
                r.ops,
                r.errors,
                json_f64(Some(r.ops_per_s)),
                json_f64(Some(r.ops_per_s_min)),
                json_f64(Some(r.ops_per_s_max)),
                r.p50_ns,
                r.p99_ns,
                r.p999_ns,
                r.max_ns,
                json_f64(r.ops_vs_floor),
                json_f64(r.p99_vs_floor),
                r.is_durable,
                r.fsyncs.map_or_else(|| "null".to_owned(), |n| n.to_string()),
                json_f64(r.changes_per_fsync),
                json_u64(r.sync_ns),
                json_f64(r.ops_vs_plain),
                json_f64(r.ops_vs_limit)
            );
        }
        out.push_str("],\"skipped\":[");
        let skipped: Vec<String> = self.skipped.iter().map(|s| json_string(s)).collect();
        out.push_str(&skipped.join(","));
        out.push_str("]}\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, is_floor: bool, clients: usize, ops_per_s: f64, p99_ns: u64) -> Row {
        Row {
            target: target.into(),
            is_floor,
            is_durable: target.ends_with(JOURNAL_SUFFIX),
            workload: Workload::Query,
            clients,
            rounds: 1,
            ops: 1,
            errors: 0,
            ops_per_s,
            ops_per_s_min: ops_per_s,
            ops_per_s_max: ops_per_s,
            p50_ns: 1,
            p99_ns,
            p999_ns: 1,
            max_ns: 1,
            ops_vs_floor: None,
            p99_vs_floor: None,
            fsyncs: None,
            changes_per_fsync: None,
            sync_ns: None,
            ops_vs_plain: None,
            ops_vs_limit: None,
        }
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_f64(Some(f64::NAN)), "null");
        assert_eq!(json_f64(None), "null");
    }

    #[test]
    fn ratios_come_from_the_best_floor_of_the_group() {
        let mut report = Report {
            rows: vec![
                row("floor", true, 4, 100.0, 10),
                row("floor:2", true, 4, 200.0, 20),
                row("pool:2", false, 4, 150.0, 30),
                row("pool:2", false, 1, 150.0, 30),
            ],
            ..Report::default()
        };
        report.compare_with_floors();
        assert_eq!(report.rows[2].ops_vs_floor, Some(0.75));
        assert_eq!(report.rows[2].p99_vs_floor, Some(1.5));
        assert_eq!(report.rows[3].ops_vs_floor, None);
        assert!(report.json().contains("\"ops_vs_floor\":0.7500"));
    }

    /// Durable rows are compared with the durable floor, plain rows with
    /// the echo floors, and the durable floor's ×plain is against `floor`.
    #[test]
    fn durable_rows_take_the_durable_floor_and_plain_rows_the_echo_floor() {
        let mut report = Report {
            rows: vec![
                row("floor", true, 4, 400.0, 10),
                row("floor+journal", true, 4, 40.0, 100),
                row("pool:2", false, 4, 200.0, 20),
                row("pool:2+journal", false, 4, 30.0, 150),
                row("pool:2+journal", false, 16, 30.0, 150),
            ],
            ..Report::default()
        };
        report.compare_with_floors();
        report.compare_durable_with_plain();
        let floor: Vec<Option<f64>> = report.rows.iter().map(|r| r.ops_vs_floor).collect();
        assert_eq!(floor, [Some(1.0), Some(1.0), Some(0.5), Some(0.75), None]);
        assert_eq!(report.rows[3].p99_vs_floor, Some(1.5));
        let plain: Vec<Option<f64>> = report.rows.iter().map(|r| r.ops_vs_plain).collect();
        assert_eq!(plain, [None, Some(0.1), None, Some(0.15), None]);
        // Without a durable floor, durable rows have no floor to compare with.
        let mut without = Report {
            rows: vec![
                row("floor", true, 4, 400.0, 10),
                row("pool:2+journal", false, 4, 30.0, 150),
            ],
            ..Report::default()
        };
        without.compare_with_floors();
        assert_eq!(without.rows[1].ops_vs_floor, None);
    }

    #[test]
    fn durable_rows_compare_with_the_same_mode_in_their_group() {
        let mut report = Report {
            rows: vec![
                row("floor", true, 4, 400.0, 10),
                row("pool:2", false, 4, 200.0, 30),
                row("thread-per-request", false, 4, 100.0, 30),
                row("pool:2+journal", false, 4, 50.0, 30),
                row("thread-per-request+journal", false, 4, 50.0, 30),
                row("pool:2+journal", false, 16, 50.0, 30),
            ],
            ..Report::default()
        };
        report.rows[3].fsyncs = Some(10);
        report.rows[3].changes_per_fsync = Some(2.5);
        report.compare_durable_with_plain();
        let plain: Vec<Option<f64>> = report.rows.iter().map(|r| r.ops_vs_plain).collect();
        assert_eq!(plain, [None, None, None, Some(0.25), Some(0.5), None]);
        let table = report.table();
        assert!(table.contains("chg/fsync"), "{table}");
        let json = report.json();
        assert!(json.contains("\"journal\":null"), "{json}");
        assert!(
            json.contains("\"durable\":true,\"fsyncs\":10,\"changes_per_fsync\":2.5000,\"sync_ns\":null,\"ops_vs_plain\":0.2500"),
            "{json}"
        );
        assert!(json.contains("\"durable\":false,\"fsyncs\":null,\"changes_per_fsync\":null"));
    }

    #[test]
    fn durable_rows_compare_with_the_limit_of_their_group() {
        let mut report = Report {
            rows: vec![
                row("floor", true, 16, 400.0, 10),
                row("original-c", false, 16, 900.0, 10),
                row("thread-per-request", false, 16, 100.0, 30),
                row("pool:2", false, 16, 200.0, 30),
                row("pool:2+journal", false, 16, 50_000.0, 30),
                row("pool:2+journal", false, 4, 50.0, 30),
            ],
            journal: Some(JournalSetup {
                disk_floor_ns: Some(120_000),
                disk_floor_after_ns: Some(96_000),
                ..JournalSetup::default()
            }),
            ..Report::default()
        };
        report.rows[3].p50_ns = 64_000; // pool:2, the fastest plain guichet
        report.compare_durable_with_limit();
        let limits = report.limits();
        assert_eq!(limits.len(), 1, "no plain row at 4 clients: {limits:?}");
        let limit = &limits[0];
        assert_eq!((limit.plain.as_str(), limit.floor_ns), ("pool:2", 96_000));
        // 16 / (96 µs + 64 µs) = 100,000 ops/s.
        assert!((limit.ops_per_s - 100_000.0).abs() < 1e-6, "{limit:?}");
        let vs: Vec<Option<f64>> = report.rows.iter().map(|r| r.ops_vs_limit).collect();
        assert_eq!(vs, [None, None, None, None, Some(0.5), None]);
        let table = report.table();
        assert!(table.contains("= 100000 ops/s"), "{table}");
        assert!(table.contains("96.0 µs after"), "{table}");
        assert!(report.json().contains("\"ops_vs_limit\":0.5000"));
    }

    #[test]
    fn the_file_system_of_the_root_is_found() {
        // Every Linux system mounts something on `/`.
        assert!(filesystem_of(Path::new("/")).is_some_and(|fs| !fs.is_empty()));
    }
}
