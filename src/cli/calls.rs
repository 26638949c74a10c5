//! `query`, `reserve`, `cancel`, `hold`, `confirm`, `status`: one call each, one line out.
//! Exit status 0 only on OK; 1 when the server refused; 2 when it could not
//! be reached.

use std::process::ExitCode;

use guichet::client::{Availability, Receipt};
use guichet::{Client, ClientError};

use super::{err, out, Target};

const REFUSED: u8 = 1;
const UNREACHABLE: u8 = 2;

fn client(target: &Target) -> Result<Client, ExitCode> {
    Client::open(target.key)
        .map(|c| c.with_timeout_ms(target.timeout_ms))
        .map_err(|e| fail(target, &e))
}

fn fail(target: &Target, error: &ClientError) -> ExitCode {
    match error.status() {
        Some(status) => {
            err(format_args!("guichet: {status}: {error}"));
            ExitCode::from(REFUSED)
        }
        None => {
            let hint = match error {
                ClientError::QueueGone(_) => format!(
                    " (is a server running on key {}? start one with `guichet serve`)",
                    target.key
                ),
                _ => String::new(),
            };
            err(format_args!("guichet: {error}{hint}"));
            ExitCode::from(UNREACHABLE)
        }
    }
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
        "{verb} booking {} ({}): {} seat(s) of event {}; {} of {} remaining",
        r.booking.get(),
        r.booking,
        r.quantity,
        r.event.get(),
        r.remaining,
        r.capacity
    ));
}

pub fn query(target: &Target, event: u32) -> ExitCode {
    let result = client(target).and_then(|c| c.query(event).map_err(|e| fail(target, &e)));
    match result {
        Ok(a) => {
            print_availability(&a);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn reserve(target: &Target, event: u32, seats: u32, booking_id: Option<u64>) -> ExitCode {
    let result = client(target).and_then(|c| {
        match booking_id {
            Some(id) => c.reserve_with_id(event, seats, id),
            None => c.reserve(event, seats),
        }
        .map_err(|e| fail(target, &e))
    });
    match result {
        Ok(r) => {
            print_receipt("reserved", &r);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn cancel(target: &Target, booking: u64) -> ExitCode {
    let result = client(target).and_then(|c| c.cancel(booking).map_err(|e| fail(target, &e)));
    match result {
        Ok(r) => {
            print_receipt("cancelled", &r);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn hold(target: &Target, event: u32, seats: u32, booking_id: Option<u64>) -> ExitCode {
    // 0 asks the server for an id; an explicit 0 is refused by clap's range.
    let result = client(target)
        .and_then(|c| c.hold(event, seats, booking_id.unwrap_or(0)).map_err(|e| fail(target, &e)));
    match result {
        Ok(r) => {
            print_receipt("held", &r);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub fn confirm(target: &Target, booking: u64) -> ExitCode {
    let result = client(target).and_then(|c| c.confirm(booking).map_err(|e| fail(target, &e)));
    match result {
        Ok(r) => {
            print_receipt("confirmed", &r);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Queries events 1, 2, … until the server answers UNKNOWN_EVENT: the
/// protocol has no "list events" operation.
pub fn status(target: &Target) -> ExitCode {
    let client = match client(target) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for event in (1..).take(guichet::ledger::MAX_EVENTS) {
        match client.query(event) {
            Ok(a) => print_availability(&a),
            Err(ClientError::UnknownEvent { .. }) if event > 1 => return ExitCode::SUCCESS,
            Err(e) => return fail(target, &e),
        }
    }
    ExitCode::SUCCESS
}
