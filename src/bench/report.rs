//! A run's results: one [`Row`] per cell, ratios to the floor, and the
//! machine they were taken on; printed as a table or as JSON.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Histogram, Measurement, Target, Workload};

/// One cell's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// What was measured (`floor`, `pool:2`, `original-c`…).
    pub target: String,
    /// Whether it is a floor.
    pub is_floor: bool,
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
    /// `ops_per_s` over the group floor's (`None` without a floor).
    pub ops_vs_floor: Option<f64>,
    /// `p99_ns` over the group floor's.
    pub p99_vs_floor: Option<f64>,
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
        let mut rates: Vec<f64> = rounds.iter().map(Measurement::ops_per_s).collect();
        rates.sort_by(f64::total_cmp);
        Row {
            target: target.to_string(),
            is_floor: target.is_floor(),
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
        }
    }
}

/// Where and when a run was taken.
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
    /// Reads the machine's description and current load.
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The machine and its load.
    pub machine: Machine,
    /// One row per cell, in run order.
    pub rows: Vec<Row>,
    /// Targets left out, with why.
    pub skipped: Vec<String>,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1e3
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
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
    /// (workload, clients) group.
    pub(crate) fn compare_with_floors(&mut self) {
        let floors: Vec<(Workload, usize, f64, u64)> = self
            .rows
            .iter()
            .filter(|r| r.is_floor)
            .map(|r| (r.workload, r.clients, r.ops_per_s, r.p99_ns))
            .collect();
        for row in &mut self.rows {
            let best = floors
                .iter()
                .filter(|f| f.0 == row.workload && f.1 == row.clients)
                .max_by(|a, b| a.2.total_cmp(&b.2));
            if let Some(&(_, _, ops, p99)) = best {
                row.ops_vs_floor = (ops > 0.0).then(|| row.ops_per_s / ops);
                row.p99_vs_floor = (p99 > 0).then(|| row.p99_ns as f64 / p99 as f64);
            }
        }
    }

    /// The results as a fixed-width table, with a header naming the
    /// machine and its load.
    ///
    /// ```
    /// let table = guichet::bench::Report::default().table();
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
        let _ = writeln!(
            out,
            "{:<8} {:>7}  {:<20} {:>9} {:>17} {:>9} {:>9} {:>9} {:>6} {:>9} {:>9}",
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
            "×floor p99"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<8} {:>7}  {:<20} {:>9.0} {:>17} {:>9.1} {:>9.1} {:>9.1} {:>6} {:>9} {:>9}",
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
                ratio(r.p99_vs_floor)
            );
        }
        for s in &self.skipped {
            let _ = writeln!(out, "# skipped {s}");
        }
        out
    }

    /// The results as one JSON object: `machine`, `rows` (one object per
    /// cell, latencies in ns, missing ratios `null`) and `skipped`.
    ///
    /// ```
    /// let json = guichet::bench::Report::default().json();
    /// assert!(json.starts_with("{\"machine\":"));
    /// ```
    #[must_use]
    pub fn json(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = write!(
            out,
            "{{\"machine\":{{\"cpus\":{},\"cpu_model\":{},\"load_before\":{},\"load_after\":{},\"started_unix_s\":{}}},\"rows\":[",
            m.cpus,
            json_string(&m.cpu_model),
            json_string(&m.load_before),
            json_string(&m.load_after),
            m.started_unix_s
        );
        for (i, r) in self.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{{\"target\":{},\"floor\":{},\"workload\":{},\"clients\":{},\"rounds\":{},\"ops\":{},\"errors\":{},\"ops_per_s\":{},\"ops_per_s_min\":{},\"ops_per_s_max\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"ops_vs_floor\":{},\"p99_vs_floor\":{}}}",
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
                json_f64(r.p99_vs_floor)
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

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
        assert_eq!(json_f64(Some(f64::NAN)), "null");
        assert_eq!(json_f64(None), "null");
    }

    #[test]
    fn ratios_come_from_the_best_floor_of_the_group() {
        let row = |target: &str, is_floor, clients, ops_per_s, p99_ns| Row {
            target: target.into(),
            is_floor,
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
        };
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
}
