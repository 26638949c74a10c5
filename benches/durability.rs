//! Durable throughput: RESERVE ops/s at 1, 4 and 16 concurrent clients
//! against the same server with and without a journal, in one run, with the
//! ratio and the mean changes per fsync (group commit at work).
//!
//! ```sh
//! cargo bench --bench durability
//! ```
//!
//! - `GUICHET_BENCH_SECS`: measuring time per configuration (default 3);
//! - `GUICHET_BENCH_DIR`: where the journal goes (default the temp dir: it
//!   must be a real disk for the numbers to mean anything, not tmpfs);
//! - `GUICHET_BENCH_DISPATCH`: the server's dispatch mode (default
//!   thread-per-request);
//! - `GUICHET_BENCH_DELAY_US`: the journal's group-commit delay, and
//!   `GUICHET_BENCH_PREALLOCATE_BYTES` its preallocation (default the
//!   library's).
//!
//! Self-contained on purpose (plain `main`, no harness): `guichet bench`
//! is a separate tool.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use guichet::ledger::MAX_BOOKINGS_LIMIT;
use guichet::server::{Dispatch, Server};

const CLIENTS: [usize; 3] = [1, 4, 16];
const WARM_UP: Duration = Duration::from_millis(300);

struct Measured {
    ops_per_s: f64,
    changes_per_fsync: Option<f64>,
    fsyncs: u64,
}

fn measure(
    clients: usize,
    journal: Option<PathBuf>,
    dispatch: Dispatch,
    delay_us: u32,
    preallocate_bytes: u64,
    secs: f64,
) -> Measured {
    let mut builder = Server::builder()
        .event("Bench", u32::MAX)
        .max_bookings(MAX_BOOKINGS_LIMIT)
        .dispatch(dispatch);
    if let Some(path) = &journal {
        builder = builder
            .journal(path)
            .journal_group_commit_delay_us(delay_us)
            .journal_preallocate_bytes(preallocate_bytes);
    }
    let server = builder.spawn().expect("server");
    let client = server.client().with_timeout_ms(30_000);
    let measuring = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let (before, elapsed, after) = thread::scope(|s| {
        for _ in 0..clients {
            let (measuring, stop, done) = (&measuring, &stop, &done);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    client.reserve(1, 1).expect("reserve");
                    if measuring.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        thread::sleep(WARM_UP);
        let before = server.stats().journal;
        measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        thread::sleep(Duration::from_secs_f64(secs));
        measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let after = server.stats().journal;
        stop.store(true, Ordering::Relaxed);
        (before, elapsed, after)
    });
    let ops = done.load(Ordering::Relaxed);
    let (changes_per_fsync, fsyncs) = match (before, after) {
        (Some(b), Some(a)) => {
            let fsyncs = a.fsyncs - b.fsyncs;
            let changes = a.changes_synced - b.changes_synced;
            (Some(changes as f64 / fsyncs.max(1) as f64), fsyncs)
        }
        _ => (None, 0),
    };
    server
        .with_ledger(|l| l.check_invariants())
        .expect("ledger")
        .expect("invariants");
    server.shutdown().expect("shutdown");
    Measured {
        ops_per_s: ops as f64 / elapsed.as_secs_f64(),
        changes_per_fsync,
        fsyncs,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: this
    // benchmark only runs when asked for.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let secs: f64 = std::env::var("GUICHET_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let dispatch: Dispatch = std::env::var("GUICHET_BENCH_DISPATCH")
        .ok()
        .map(|v| v.parse().expect("dispatch mode"))
        .unwrap_or_default();
    let delay_us: u32 = std::env::var("GUICHET_BENCH_DELAY_US")
        .ok()
        .map(|v| v.parse().expect("a delay in microseconds"))
        .unwrap_or(guichet::journal::DEFAULT_GROUP_COMMIT_DELAY_US);
    let preallocate_bytes: u64 = std::env::var("GUICHET_BENCH_PREALLOCATE_BYTES")
        .ok()
        .map(|v| v.parse().expect("a size in bytes"))
        .unwrap_or(guichet::journal::DEFAULT_PREALLOCATE_BYTES);
    let base = std::env::var_os("GUICHET_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(&base).expect("bench dir");
    println!(
        "durability: RESERVE ops/s, {secs} s per configuration, dispatch {dispatch}, \
         group-commit delay {delay_us} us, preallocation {preallocate_bytes} bytes, journal in {}",
        base.display()
    );
    println!(
        "{:>7} | {:>14} | {:>14} | {:>6} | {:>14} | {:>7}",
        "clients", "no journal", "journal", "ratio", "changes/fsync", "fsyncs"
    );
    for clients in CLIENTS {
        let plain = measure(clients, None, dispatch, delay_us, preallocate_bytes, secs);
        let path = dir.path().join(format!("journal-{clients}"));
        let durable = measure(
            clients,
            Some(path),
            dispatch,
            delay_us,
            preallocate_bytes,
            secs,
        );
        println!(
            "{:>7} | {:>14.0} | {:>14.0} | {:>6.2} | {:>14.2} | {:>7}",
            clients,
            plain.ops_per_s,
            durable.ops_per_s,
            durable.ops_per_s / plain.ops_per_s,
            durable.changes_per_fsync.unwrap_or(0.0),
            durable.fsyncs
        );
    }
}
