//! `guichet serve`: run a server on a key until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use guichet::journal::{JournalStats, Recovery};
use guichet::server::Limits;
use guichet::server::{Builder, Dispatch, Server, Stats, StopHandle};
use guichet::sysv::Key;
use guichet::Ledger;
use guichet::Status;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{args, err, out, DEFAULT_KEY, EXIT_REFUSED, EXIT_WRONG};

/// Events served when no `--event` is given, so that `guichet serve` alone
/// gives something to book.
const DEFAULT_EVENTS: [(&str, u32); 3] = [("Concert", 100), ("Opera", 50), ("Theatre", 20)];

/// How long, after a shutdown, the start-up listing may still take to be
/// written before the process exits without it.
const PRINT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Queue key to create, hex (0x…) or decimal; the queue must not exist yet.
    #[arg(long, default_value = DEFAULT_KEY, value_parser = args::key)]
    key: Key,
    /// An event as NAME=CAPACITY (a name holds no `=`); repeat for more
    /// (numbered 1, 2, … in this order). Default: Concert=100, Opera=50,
    /// Theatre=20. With an existing journal the events are the journal's,
    /// and any given must match them.
    #[arg(long = "event", value_name = "NAME=CAPACITY", value_parser = args::event)]
    events: Vec<(String, u32)>,
    /// thread-per-request, pool, pool:N or sequential.
    #[arg(long, default_value = "thread-per-request")]
    dispatch: Dispatch,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = Limits::default().max_in_flight, value_parser = max_in_flight)]
    max_in_flight: usize,
    /// Microseconds a receive loop polls the queue for the next request
    /// before it blocks (0 to 10000; 0: always block). A client that calls
    /// again within it is served without waking a thread.
    #[arg(long, default_value_t = Limits::default().receive_spin_us, value_name = "US",
          value_parser = receive_spin_us)]
    receive_spin_us: u32,
    /// Most bookings the ledger holds, cancelled ones included. Default:
    /// the journal's, or 1048576.
    #[arg(long, value_parser = max_bookings)]
    max_bookings: Option<usize>,
    /// Journal file: every change is synced to it before it is answered OK,
    /// and the ledger is replayed from it at start. Created if missing,
    /// with the queue's permissions (owner-only by default).
    #[arg(long, value_name = "PATH")]
    journal: Option<PathBuf>,
    /// Journal size in bytes under which it is never compacted; past it, it
    /// is compacted whenever it reaches twice the size of its last snapshot.
    #[arg(long, default_value_t = Builder::DEFAULT_JOURNAL_COMPACT_MIN_BYTES, value_name = "BYTES")]
    journal_compact_bytes: u64,
    /// Microseconds a group commit waits for more changes when others are
    /// committing too (0 to 10000).
    #[arg(long, default_value_t = Builder::DEFAULT_JOURNAL_GROUP_COMMIT_DELAY_US, value_name = "US")]
    journal_group_commit_delay_us: u32,
    /// How long a HOLD keeps its seats unless confirmed or cancelled, in
    /// milliseconds (1 to 86400000, i.e. 24 h).
    #[arg(long, default_value_t = Ledger::DEFAULT_HOLD_MS, value_name = "MS",
          value_parser = hold_ms)]
    hold_ms: u64,
    /// Also serve the course's classic protocol on a second queue created
    /// under this key (the course's clients use 12345), over the same
    /// ledger. See docs/classic.md.
    #[arg(long, value_name = "KEY", value_parser = args::key)]
    classic_key: Option<Key>,
}

fn hold_ms(s: &str) -> Result<u64, String> {
    args::number_in(s, Ledger::MIN_HOLD_MS, Ledger::MAX_HOLD_MS, "--hold-ms")
}

fn receive_spin_us(s: &str) -> Result<u32, String> {
    let max = u64::from(Limits::MAX_RECEIVE_SPIN_US);
    let us = args::number_in(s, 0, max, "--receive-spin-us")?;
    u32::try_from(us).map_err(|e| e.to_string())
}

fn max_in_flight(s: &str) -> Result<usize, String> {
    args::count_in(s, Limits::MAX_IN_FLIGHT, "--max-in-flight")
}

fn max_bookings(s: &str) -> Result<usize, String> {
    args::count_in(s, Ledger::MAX_BOOKINGS_LIMIT, "--max-bookings")
}

/// Runs a server until SIGINT or SIGTERM. Exit status 2 when it cannot
/// start (the configuration, the key, the journal), 1 when it stops on an
/// error after starting.
pub fn serve(args: ServeArgs) -> ExitCode {
    // The handlers are installed before the queue exists, so that SIGINT
    // or SIGTERM at any moment after it is created goes through the
    // graceful shutdown that removes it (the default action would leave
    // it behind). signal-hook masks nothing: the kernel runs its handler,
    // which only writes to a pipe, on whichever thread it picks, server
    // threads included. A msgrcv(2) or msgsnd(2) it interrupts fails with
    // EINTR (never restarted, SA_RESTART or not) and the sysv layer
    // retries it; the listener thread below reads the pipe.
    let signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            err(format_args!("guichet: cannot install signal handlers: {e}"));
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let journal = args.journal.clone();
    let server = match builder(args).and_then(|b| b.spawn().map_err(|e| e.to_string())) {
        Ok(server) => server,
        Err(e) => {
            err(format_args!("guichet: {e}"));
            return ExitCode::from(EXIT_WRONG);
        }
    };
    let signals_handle = signals.handle();
    let listener = listen(signals, server.stop_handle());
    if let (Some(path), Some(recovery)) = (&journal, server.journal_recovery()) {
        report_recovery(path, &recovery);
    }
    let printed = print_banner(&server);
    let result = server.wait();
    signals_handle.close();
    let _ = listener.join();
    // The listing is short: let it finish, unless stdout stays blocked.
    if let Some(printed) = printed {
        let _ = printed.recv_timeout(PRINT_GRACE);
    }
    match result {
        Ok(stats) => {
            report(&stats);
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(format_args!("guichet: {e}"));
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// The server `args` describe, not yet started.
fn builder(args: ServeArgs) -> Result<Builder, String> {
    // The default events are for a new ledger: an existing journal brings
    // its own.
    let journal_exists = match &args.journal {
        Some(path) => path
            .try_exists()
            .map_err(|e| format!("journal {}: {e}", path.display()))?,
        None => false,
    };
    let events = if args.events.is_empty() && !journal_exists {
        DEFAULT_EVENTS
            .iter()
            .map(|(name, capacity)| ((*name).to_owned(), *capacity))
            .collect()
    } else {
        args.events
    };
    let limits = Limits {
        receive_spin_us: args.receive_spin_us,
        ..Limits::default()
    };
    let mut builder = Server::builder()
        .key(args.key)
        .dispatch(args.dispatch)
        .limits(limits)
        .max_in_flight(args.max_in_flight)
        .hold_ms(args.hold_ms);
    if let Some(max_bookings) = args.max_bookings {
        builder = builder.max_bookings(max_bookings);
    }
    if let Some(key) = args.classic_key {
        builder = builder.classic_key(key);
    }
    if let Some(path) = &args.journal {
        builder = builder
            .journal(path)
            .journal_compact_min_bytes(args.journal_compact_bytes)
            .journal_group_commit_delay_us(args.journal_group_commit_delay_us);
    }
    for (name, capacity) in events {
        builder = builder.event(name, capacity);
    }
    Ok(builder)
}

/// A thread that stops `stop`'s server at the first signal. It runs before
/// anything is printed: a write that blocks (stdout a pipe nobody reads)
/// must not keep a signal from stopping us.
fn listen(mut signals: Signals, stop: StopHandle) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            // Stop first: stderr may block too.
            stop.stop();
            err(format_args!("guichet: signal {signal}: shutting down"));
        }
    })
}

/// Prints the banner and the events from a thread of its own, so that a
/// blocked stdout cannot keep a shutdown from completing. At exit std
/// flushes stdout only if its lock is free, so a printer stuck in a write
/// does not hold up the exit. Returns what says the printing is done.
fn print_banner(server: &Server) -> Option<mpsc::Receiver<()>> {
    // Copied under the ledger lock and printed after it is released: every
    // request waits for that lock, and a write to stdout can block for ever.
    let events = server.with_ledger(|ledger| {
        ledger
            .events()
            .map(|e| (e.id.get(), e.name.to_owned(), e.seats))
            .collect::<Vec<_>>()
    });
    let mut banner = format!(
        "guichet: serving key {} (queue id {}), dispatch {}, pid {}",
        server.key(),
        server.queue_id(),
        server.dispatch(),
        std::process::id()
    );
    if let (Some(key), Some(id)) = (server.classic_key(), server.classic_queue_id()) {
        banner.push_str(&format!(
            "\nguichet: classic protocol on key {key} ({}, queue id {id})",
            key.raw()
        ));
    }
    let print = move || {
        out(format_args!("{banner}"));
        match events {
            Ok(events) => {
                for (id, name, seats) in events {
                    out(format_args!(
                        "  event {id}: {name}, {} seats, {} remaining",
                        seats.capacity, seats.remaining
                    ));
                }
            }
            Err(e) => err(format_args!("guichet: {e}")),
        }
        out(format_args!("guichet: stop with Ctrl-C or SIGTERM"));
    };
    let (printed_tx, printed) = mpsc::channel();
    let spawned = thread::Builder::new()
        .name("guichet-print".into())
        .spawn(move || {
            print();
            let _ = printed_tx.send(());
        });
    match spawned {
        Ok(_) => Some(printed),
        Err(e) => {
            err(format_args!("guichet: cannot start a thread to print: {e}"));
            None
        }
    }
}

fn report_recovery(path: &Path, recovery: &Recovery) {
    let path = path.display();
    if recovery.stale_compaction_removed {
        err(format_args!(
            "guichet: journal {path}: removed the file of a compaction a crash interrupted"
        ));
    }
    if let Some(torn) = recovery.torn_tail {
        err(format_args!(
            "guichet: journal {path}: truncated a torn tail of {} bytes at offset {} \
             (a write cut short by a crash, never acknowledged)",
            torn.bytes, torn.offset
        ));
    }
    if recovery.created {
        err(format_args!("guichet: journal {path}: created"));
    } else {
        err(format_args!(
            "guichet: journal {path}: replayed {} snapshot bookings and {} changes",
            recovery.snapshot_bookings, recovery.changes_replayed
        ));
    }
}

fn report_journal(journal: &JournalStats) {
    err(format_args!(
        "guichet: journal: {} changes in {} fsyncs ({:.2} per fsync, at most {}), {} compactions ({} abandoned), {} bytes",
        journal.changes_synced,
        journal.fsyncs,
        journal.changes_per_fsync(),
        journal.largest_batch,
        journal.compactions,
        journal.compactions_failed,
        journal.file_bytes
    ));
}

fn report(stats: &Stats) {
    let statuses: Vec<String> = Status::ALL
        .iter()
        .filter(|s| stats.replies(**s) > 0)
        .map(|s| format!("{s}={}", stats.replies(*s)))
        .collect();
    err(format_args!(
        "guichet: stopped; {} received, replies [{}], {} dropped, {} purged, {} abandoned, {} withheld, {} deferred, peak {} in flight",
        stats.received,
        statuses.join(" "),
        stats.dropped,
        stats.replies_purged,
        stats.replies_abandoned,
        stats.replies_withheld,
        stats.replies_deferred,
        stats.peak_in_flight
    ));
    if let Some(journal) = &stats.journal {
        report_journal(journal);
    }
    if let Some(classic) = &stats.classic {
        err(format_args!(
            "guichet: classic: {} received, {} listings and {} reservation replies sent, {} dropped, {} quits ignored, {} replies discarded, {} abandoned, {} withheld",
            classic.received,
            classic.listings_sent,
            classic.reservations_sent,
            classic.dropped,
            classic.quits_ignored,
            classic.replies_discarded,
            classic.replies_abandoned,
            classic.replies_withheld
        ));
    }
}
