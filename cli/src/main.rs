//! The `guichet` command: run a server, or call one.
//!
//! Command-line parsing (clap) and the subcommands, each in its own module.
//!
//! One exit status rule for every subcommand: 0 done (the server answered
//! OK, or `serve` stopped cleanly); 1 refused by the server (SOLD_OUT…) or,
//! for `serve`, stopped by an error after it had started; 2 the command
//! line or the configuration is wrong, or the server cannot be reached
//! (clap's own errors exit 2 as well).

mod args;
mod bench;
mod calls;
mod reap;
mod serve;

use std::fmt;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};
use guichet::sysv::Key;

/// Exit status: the server refused, or `serve` failed while serving.
pub(crate) const EXIT_REFUSED: u8 = 1;
/// Exit status: the command line or configuration is wrong, or the server
/// cannot be reached.
pub(crate) const EXIT_WRONG: u8 = 2;

/// The key `guichet serve` and the calls use without `--key`: the protocol
/// magic, "GCHT".
pub const DEFAULT_KEY: &str = "0x47434854";

/// Book seats over a System V message queue.
#[derive(Debug, Parser)]
#[command(name = "guichet", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where to find the server, and how long to wait for it.
#[derive(Debug, clap::Args)]
struct Target {
    /// Queue key, hex (0x…) or decimal.
    #[arg(long, default_value = DEFAULT_KEY, value_parser = args::key)]
    key: Key,
    /// Give up on a reply after this many milliseconds.
    #[arg(long, default_value_t = guichet::Client::DEFAULT_TIMEOUT_MS, value_parser = args::millis)]
    timeout_ms: u32,
}

/// What `reserve` and `hold` book: the same request but for its op.
#[derive(Debug, clap::Args)]
struct Booking {
    /// Event id (1, 2, …).
    #[arg(value_parser = args::event_id)]
    event: u32,
    /// Seats to book.
    #[arg(value_parser = args::seats)]
    seats: u32,
    /// A booking id of your choosing (1 to 2^63 - 1), which makes the call
    /// safe to retry.
    #[arg(long, value_parser = args::client_booking_id)]
    booking_id: Option<u64>,
    #[command(flatten)]
    target: Target,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a new queue until SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Show an event's remaining seats.
    Query {
        /// Event id (1, 2, … in the order `guichet serve` listed them).
        #[arg(value_parser = args::event_id)]
        event: u32,
        #[command(flatten)]
        target: Target,
    },
    /// Book seats of an event.
    Reserve(Booking),
    /// Cancel a booking.
    Cancel {
        /// Booking id, as `reserve` printed it.
        #[arg(value_parser = args::booking_id)]
        booking: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Hold seats of an event until confirmed, cancelled, or the server's
    /// hold duration (`serve --hold-ms`) passes.
    Hold(Booking),
    /// Confirm a hold: its seats are booked for good.
    Confirm {
        /// Booking id, as `hold` printed it.
        #[arg(value_parser = args::booking_id)]
        booking: u64,
        #[command(flatten)]
        target: Target,
    },
    /// Show every event's remaining seats, by id.
    ///
    /// The protocol carries no event names: `guichet serve` prints them,
    /// with their ids, when it starts.
    Status {
        #[command(flatten)]
        target: Target,
        /// Also show the classic queue under this key: its messages
        /// waiting (unread replies, requests not yet taken). Its counters
        /// (dropped, quits ignored, replies discarded) are in `serve`'s
        /// report: the protocols carry no statistics.
        #[arg(long, value_name = "KEY", value_parser = args::key)]
        classic_key: Option<Key>,
    },
    /// Measure each dispatch mode against the echo floor on private queues.
    Bench(bench::BenchArgs),
    /// Remove the private queues of your servers whose process died.
    Reap(reap::ReapArgs),
    /// The library's client in a process of its own, for `bench
    /// --compare-clients` (not for people: hidden from the help).
    #[command(hide = true)]
    DriveClient(bench::DriveClientArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Query { event, target } => calls::query(&target, event),
        Command::Reserve(b) => calls::reserve(&b.target, b.event, b.seats, b.booking_id),
        Command::Cancel { booking, target } => calls::cancel(&target, booking),
        Command::Hold(b) => calls::hold(&b.target, b.event, b.seats, b.booking_id),
        Command::Confirm { booking, target } => calls::confirm(&target, booking),
        Command::Status {
            target,
            classic_key,
        } => calls::status(&target, classic_key),
        Command::Bench(args) => bench::bench(args),
        Command::DriveClient(args) => bench::drive_client(&args),
        Command::Reap(args) => reap::reap(&args),
    }
}

/// Writes one line to stdout. A closed or full stdout (`guichet … | head
/// -0`, a daemon's stdout gone) is no reason to panic, as `println!`
/// would, nor to change what the command does or its exit status: the
/// first failure is reported on stderr and the command goes on.
pub(crate) fn out(line: fmt::Arguments<'_>) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = writeln!(io::stdout().lock(), "{line}") {
        if !REPORTED.swap(true, Ordering::Relaxed) {
            err(format_args!("guichet: cannot write to stdout: {e}"));
        }
    }
}

/// Writes one line to stderr; if that fails there is nowhere left to say so.
pub(crate) fn err(line: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}
