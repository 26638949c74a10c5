//! `query`, `reserve`, `cancel`, `hold`, `confirm`, `status`: one call each, one line out.
//! A refusal says what was asked and what is there; ids are printed in
//! decimal, the form every command reads back.

use std::process::ExitCode;

use guichet::client::{Availability, Receipt};
use guichet::sysv::{Key, Queue};
use guichet::{Client, ClientError};

use super::{err, out, Target, EXIT_REFUSED, EXIT_WRONG};

fn client(target: &Target) -> Result<Client, ExitCode> {
    Client::open(target.key)
        .map(|c| c.with_timeout_ms(target.timeout_ms))
        .map_err(|e| fail(target, "open the server's queue", &e))
}

/// Reports `error`, which answered the call that `asked` describes.
fn fail(target: &Target, asked: &str, error: &ClientError) -> ExitCode {
    let Some(status) = error.status() else {
        let hint = match error {
            ClientError::QueueGone(_) => format!(
                " (is a server running on key {}? start one with `guichet serve`)",
                target.key
            ),
            _ => String::new(),
        };
        err(format_args!("guichet: {asked}: {error}{hint}"));
        return ExitCode::from(EXIT_WRONG);
    };
    let there = match error {
        ClientError::SoldOut {
            remaining,
            capacity,
            ..
        } => format!("{remaining} of {capacity} seats remain"),
        ClientError::UnknownEvent { .. } => {
            "the server has no such event (`guichet status` lists them)".into()
        }
        ClientError::UnknownBooking { .. } => "the server has no booking with this id".into(),
        ClientError::BookingConflict { booking } => format!(
            "booking {} exists with another event or quantity, or was made by the other \
             of RESERVE and HOLD",
            booking.get()
        ),
        ClientError::BookingCancelled { booking } => {
            format!("booking {} was cancelled", booking.get())
        }
        ClientError::HoldExpired { booking } => {
            format!("hold {} expired before it was confirmed", booking.get())
        }
        other => other.to_string(),
    };
    err(format_args!("guichet: {status}: {asked}: {there}"));
    ExitCode::from(EXIT_REFUSED)
}

fn print_availability(a: &Availability) {
    out(format_args!(
        "event {}: {} of {} seats remaining",
        a.event.get(),
        a.remaining,
        a.capacity
    ));
}

fn print_receipt(verb: &str, r: &Receipt) {
    out(format_args!(
        "{verb} booking {}: {} seat(s) of event {}; {} of {} remaining",
        r.booking.get(),
        r.quantity,
        r.event.get(),
        r.remaining,
        r.capacity
    ));
}

/// Makes one call and prints what it got.
fn call<T>(
    target: &Target,
    asked: &str,
    make: impl FnOnce(&Client) -> Result<T, ClientError>,
    print: impl FnOnce(&T),
) -> ExitCode {
    let client = match client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match make(&client) {
        Ok(answer) => {
            print(&answer);
            ExitCode::SUCCESS
        }
        Err(e) => fail(target, asked, &e),
    }
}

pub fn query(target: &Target, event: u32) -> ExitCode {
    let asked = format!("query event {event}");
    call(target, &asked, |c| c.query(event), print_availability)
}

pub fn reserve(target: &Target, event: u32, seats: u32, booking_id: Option<u64>) -> ExitCode {
    let asked = match booking_id {
        Some(id) => format!("reserve {seats} seat(s) of event {event} as booking {id}"),
        None => format!("reserve {seats} seat(s) of event {event}"),
    };
    call(
        target,
        &asked,
        |c| match booking_id {
            Some(id) => c.reserve_with_id(event, seats, id),
            None => c.reserve(event, seats),
        },
        |r| print_receipt("reserved", r),
    )
}

pub fn cancel(target: &Target, booking: u64) -> ExitCode {
    let asked = format!("cancel booking {booking}");
    call(
        target,
        &asked,
        |c| c.cancel(booking),
        |r| print_receipt("cancelled", r),
    )
}

pub fn hold(target: &Target, event: u32, seats: u32, booking_id: Option<u64>) -> ExitCode {
    let asked = match booking_id {
        Some(id) => format!("hold {seats} seat(s) of event {event} as booking {id}"),
        None => format!("hold {seats} seat(s) of event {event}"),
    };
    // 0 asks the server for an id; `args::client_booking_id` never gives 0.
    call(
        target,
        &asked,
        |c| c.hold(event, seats, booking_id.unwrap_or(0)),
        |r| print_receipt("held", r),
    )
}

pub fn confirm(target: &Target, booking: u64) -> ExitCode {
    let asked = format!("confirm booking {booking}");
    call(
        target,
        &asked,
        |c| c.confirm(booking),
        |r| print_receipt("confirmed", r),
    )
}

/// Queries events 1, 2, … until the server answers UNKNOWN_EVENT: the
/// protocol has no "list events" operation.
pub fn status(target: &Target, classic_key: Option<Key>) -> ExitCode {
    let client = match client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for event in (1..).take(guichet::Ledger::MAX_EVENTS) {
        match client.query(event) {
            Ok(a) => print_availability(&a),
            Err(ClientError::UnknownEvent { .. }) if event > 1 => break,
            Err(e) => return fail(target, &format!("query event {event}"), &e),
        }
    }
    match classic_key.map(classic_status) {
        Some(Err(code)) => code,
        _ => ExitCode::SUCCESS,
    }
}

/// The classic queue's state, read with msgctl(2) `IPC_STAT`: never a
/// request, which would take a reply some classic client waits for.
fn classic_status(key: Key) -> Result<(), ExitCode> {
    let stat = Queue::open(key).and_then(|q| q.stat()).map_err(|e| {
        err(format_args!(
            "guichet: classic queue {key}: {e} (is a server running with --classic-key {key}?)"
        ));
        ExitCode::from(EXIT_WRONG)
    })?;
    let full = stat.bytes + guichet::classic::REQUEST_BODY_SIZE as u64 > stat.max_bytes;
    out(format_args!(
        "classic queue {key}: {} messages waiting ({} of {} bytes){}",
        stat.messages,
        stat.bytes,
        stat.max_bytes,
        if full {
            "; full: unread replies are discarded to make room"
        } else {
            ""
        }
    ));
    Ok(())
}
