//! `guichet serve`: run a server on a key until SIGINT or SIGTERM.

use std::process::ExitCode;
use std::thread;

use guichet::server::{Dispatch, Server, Stats, DEFAULT_MAX_IN_FLIGHT};
use guichet::sysv::Key;
use guichet::Status;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::{err, out, parse_key, DEFAULT_KEY};

/// Events served when no `--event` is given, so that `guichet serve` alone
/// gives something to book.
const DEFAULT_EVENTS: [(&str, u32); 3] = [("Concert", 100), ("Opera", 50), ("Theatre", 20)];

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Queue key to create, hex (0x…) or decimal; the queue must not exist yet.
    #[arg(long, default_value = DEFAULT_KEY, value_parser = parse_key)]
    key: Key,
    /// An event as NAME=CAPACITY; repeat for more (numbered 1, 2, … in this
    /// order). Default: Concert=100, Opera=50, Theatre=20.
    #[arg(long = "event", value_name = "NAME=CAPACITY", value_parser = parse_event)]
    events: Vec<(String, u32)>,
    /// thread-per-request, pool, pool:N or sequential.
    #[arg(long, default_value = "thread-per-request")]
    dispatch: Dispatch,
    /// Most requests in flight at once.
    #[arg(long, default_value_t = DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
    /// Most bookings the ledger holds, cancelled ones included.
    #[arg(long, default_value_t = guichet::ledger::DEFAULT_MAX_BOOKINGS)]
    max_bookings: usize,
}

fn parse_event(s: &str) -> Result<(String, u32), String> {
    let (name, capacity) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=CAPACITY"))?;
    let capacity = capacity
        .parse()
        .map_err(|e| format!("capacity {capacity:?} of {name:?}: {e}"))?;
    Ok((name.to_owned(), capacity))
}

pub fn serve(args: ServeArgs) -> ExitCode {
    // Signals are routed to a thread of their own *before* the server's
    // threads exist, so no server thread runs the handler mid-syscall for
    // long: msgrcv(2) interrupted by it returns EINTR and is retried.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(signals) => signals,
        Err(e) => {
            err(format_args!("guichet: cannot install signal handlers: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let events = if args.events.is_empty() {
        DEFAULT_EVENTS
            .iter()
            .map(|(name, capacity)| ((*name).to_owned(), *capacity))
            .collect()
    } else {
        args.events
    };
    let mut builder = Server::builder()
        .key(args.key)
        .dispatch(args.dispatch)
        .max_in_flight(args.max_in_flight)
        .max_bookings(args.max_bookings);
    for (name, capacity) in &events {
        builder = builder.event(name.clone(), *capacity);
    }
    let server = match builder.spawn() {
        Ok(server) => server,
        Err(e) => {
            err(format_args!("guichet: {e}"));
            return ExitCode::FAILURE;
        }
    };
    out(format_args!(
        "guichet: serving key {} (queue id {}), dispatch {}, pid {}",
        server.key(),
        server.queue_id(),
        server.dispatch(),
        std::process::id()
    ));
    for (id, (name, capacity)) in (1..).zip(&events) {
        out(format_args!("  event {id}: {name}, {capacity} seats"));
    }
    out(format_args!("guichet: stop with Ctrl-C or SIGTERM"));

    let stop = server.stop_handle();
    let signals_handle = signals.handle();
    let listener = thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            err(format_args!("guichet: signal {signal}: shutting down"));
            stop.stop();
        }
    });
    let result = server.wait();
    signals_handle.close();
    let _ = listener.join();
    match result {
        Ok(stats) => {
            report(&stats);
            ExitCode::SUCCESS
        }
        Err(e) => {
            err(format_args!("guichet: {e}"));
            ExitCode::FAILURE
        }
    }
}

fn report(stats: &Stats) {
    let statuses: Vec<String> = Status::ALL
        .iter()
        .filter(|s| stats.replies(**s) > 0)
        .map(|s| format!("{s}={}", stats.replies(*s)))
        .collect();
    err(format_args!(
        "guichet: stopped; {} received, replies [{}], {} dropped, {} purged, {} abandoned, peak {} in flight",
        stats.received,
        statuses.join(" "),
        stats.dropped,
        stats.replies_purged,
        stats.replies_abandoned,
        stats.peak_in_flight
    ));
}
