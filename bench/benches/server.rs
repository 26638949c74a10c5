//! `cargo bench --bench server`: the same run as `guichet bench` with its
//! defaults (every dispatch mode and the original C server against the echo
//! floor, 1/4/16 clients, RESERVE and QUERY; thread-per-request and pool:2
//! with their journals on, RESERVE only), through the library harness.
//!
//! Pass `-- --json` for JSON on stdout; progress goes to stderr. Set
//! `GUICHET_BENCH_DURATION_MS` to change the measured time of each cell.
//!
//! Not a criterion bench: a cell is a multi-threaded throughput and latency
//! measurement against a live server, which criterion's per-iteration model
//! does not fit.

use guichet_bench::{run, Plan};

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let mut plan = Plan::default();
    if let Some(ms) = std::env::var("GUICHET_BENCH_DURATION_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        plan.duration_ms = ms;
    }
    match run(&plan, &mut |p| eprintln!("{p}")) {
        Ok(report) if json => print!("{}", report.json()),
        Ok(report) => print!("{}", report.table()),
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}
