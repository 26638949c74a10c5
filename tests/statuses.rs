//! Every status of PROTOCOL.md reached on purpose, one named test each,
//! through the ledger or the codec, with the reply fields checked in full.
//!
//! SHUTTING_DOWN is produced by the server (a later issue); here it is only
//! encoded and decoded.

use guichet_testkit::ids;

use guichet::ledger::{BookingState, Change};
use guichet::wire::{Answer, Field, Op};
use guichet::wire::{MAGIC, VERSION};
use guichet::{
    decode_reply, decode_request, BookingId, EventId, Ledger, Operation, Reply, ReplyTo, Request,
    RequestId, Status, Violation,
};

use ids::{client, event, qty, server};

const TAG: RequestId = RequestId(0xfeed);

/// A ledger with "A" of 5 seats and "B" of 2.
fn ledger() -> Ledger {
    Ledger::new([("A", 5), ("B", 2)], 100).expect("valid configuration")
}

fn reserve(event_id: u32, quantity: u32, booking: Option<u64>) -> Operation {
    Operation::Reserve {
        event: event(event_id),
        quantity: qty(quantity),
        booking: booking.map(client),
    }
}

fn cancel(booking: BookingId) -> Operation {
    Operation::Cancel { booking }
}

/// Applies `operation`, checks the invariants, returns the reply tagged [`TAG`].
fn apply(ledger: &mut Ledger, operation: &Operation) -> Reply {
    let reply = ledger.apply(operation).reply(TAG);
    ledger.check_invariants().expect("invariants hold");
    reply
}

/// A reply in full, for comparisons.
#[allow(clippy::too_many_arguments)]
fn reply(
    status: Status,
    booking: Option<BookingId>,
    event_id: u32,
    quantity: u32,
    remaining: u32,
    capacity: u32,
) -> Reply {
    Reply {
        status,
        request_id: TAG,
        booking,
        event: EventId::new(event_id),
        quantity,
        remaining,
        capacity,
    }
}

/// Every reply must survive the wire.
fn round_trip(reply: Reply) -> Reply {
    assert_eq!(decode_reply(&reply.encode()), Ok(reply));
    reply
}

#[test]
fn ok_query_reserve_cancel() {
    let mut l = ledger();
    let q = Operation::Query { event: event(1) };
    assert_eq!(
        round_trip(apply(&mut l, &q)),
        reply(Status::Ok, None, 1, 0, 5, 5)
    );
    assert_eq!(
        round_trip(apply(&mut l, &reserve(1, 3, None))),
        reply(Status::Ok, Some(server(1)), 1, 3, 2, 5)
    );
    assert_eq!(
        apply(&mut l, &reserve(1, 1, Some(7))),
        reply(Status::Ok, Some(client(7).booking_id()), 1, 1, 1, 5)
    );
    assert_eq!(
        apply(&mut l, &cancel(server(1))),
        reply(Status::Ok, Some(server(1)), 1, 3, 4, 5)
    );
    // A second server booking gets the next id.
    assert_eq!(
        apply(&mut l, &reserve(2, 2, None)),
        reply(Status::Ok, Some(server(2)), 2, 2, 0, 2)
    );
}

#[test]
fn ok_retry_of_a_client_reserve_changes_nothing() {
    let mut l = ledger();
    let op = reserve(1, 2, Some(42));
    let first = l.apply(&op);
    assert!(first.change().is_some());
    let before = l.clone();
    let second = l.apply(&op);
    assert_eq!(second.change(), None);
    assert_eq!(second.reply(TAG), first.reply(TAG));
    assert_eq!(
        second.reply(TAG),
        reply(Status::Ok, Some(client(42).booking_id()), 1, 2, 3, 5)
    );
    assert_eq!(l, before);
}

#[test]
fn ok_cancel_of_a_cancelled_booking_changes_nothing() {
    let mut l = ledger();
    apply(&mut l, &reserve(2, 2, Some(5)));
    let id = client(5).booking_id();
    let first = l.apply(&cancel(id));
    assert_eq!(first.change(), Some(Change::Cancelled { booking: id }));
    let before = l.clone();
    let second = l.apply(&cancel(id));
    assert_eq!(second.change(), None);
    assert_eq!(l, before);
    assert_eq!(
        second.reply(TAG),
        reply(Status::Ok, Some(id), 2, 2, 2, 2),
        "same quantity as the first time"
    );
    assert_eq!(
        l.booking(id).map(|b| b.state),
        Some(BookingState::Cancelled)
    );
}

#[test]
fn sold_out() {
    let mut l = ledger();
    apply(&mut l, &reserve(2, 1, None));
    let before = l.clone();
    assert_eq!(
        round_trip(apply(&mut l, &reserve(2, 2, None))),
        reply(Status::SoldOut, None, 2, 0, 1, 2)
    );
    assert_eq!(
        apply(&mut l, &reserve(2, 2, Some(9))),
        reply(Status::SoldOut, None, 2, 0, 1, 2)
    );
    assert_eq!(l, before);
    // An event of capacity 0 is always sold out.
    let mut empty = Ledger::new([("none", 0)], 10).expect("valid");
    assert_eq!(
        apply(&mut empty, &reserve(1, 1, None)),
        reply(Status::SoldOut, None, 1, 0, 0, 0)
    );
}

#[test]
fn unknown_event() {
    let mut l = ledger();
    for id in [3, u32::MAX] {
        assert_eq!(
            round_trip(apply(&mut l, &Operation::Query { event: event(id) })),
            reply(Status::UnknownEvent, None, id, 0, 0, 0)
        );
        assert_eq!(
            apply(&mut l, &reserve(id, 1, None)),
            reply(Status::UnknownEvent, None, id, 0, 0, 0)
        );
    }
    assert_eq!(l, ledger());
}

#[test]
fn unknown_booking() {
    let mut l = ledger();
    for id in [
        server(1),
        client(1).booking_id(),
        BookingId::new(u64::MAX).expect("non-zero"),
    ] {
        assert_eq!(
            round_trip(apply(&mut l, &cancel(id))),
            reply(Status::UnknownBooking, Some(id), 0, 0, 0, 0)
        );
    }
    assert_eq!(l, ledger());
}

#[test]
fn booking_conflict() {
    let mut l = ledger();
    apply(&mut l, &reserve(1, 2, Some(11)));
    let id = client(11).booking_id();
    let before = l.clone();
    // Another quantity, another event, and an unknown event: the reply names
    // the existing booking's event and its seats.
    for op in [
        reserve(1, 3, Some(11)),
        reserve(2, 2, Some(11)),
        reserve(9, 2, Some(11)),
    ] {
        assert_eq!(
            round_trip(apply(&mut l, &op)),
            reply(Status::BookingConflict, Some(id), 1, 0, 3, 5),
            "{op:?}"
        );
    }
    assert_eq!(l, before);
}

#[test]
fn booking_cancelled() {
    let mut l = ledger();
    apply(&mut l, &reserve(1, 2, Some(12)));
    let id = client(12).booking_id();
    apply(&mut l, &cancel(id));
    let before = l.clone();
    assert_eq!(
        round_trip(apply(&mut l, &reserve(1, 2, Some(12)))),
        reply(Status::BookingCancelled, Some(id), 1, 0, 5, 5)
    );
    assert_eq!(l, before);
}

#[test]
fn ledger_full() {
    let mut l = Ledger::new([("A", 10), ("B", 0)], 2).expect("valid");
    apply(&mut l, &reserve(1, 1, None));
    apply(&mut l, &reserve(1, 1, Some(3)));
    // Cancelled bookings still count.
    apply(&mut l, &cancel(server(1)));
    let before = l.clone();
    assert_eq!(
        round_trip(apply(&mut l, &reserve(1, 1, None))),
        reply(Status::LedgerFull, None, 1, 0, 9, 10)
    );
    assert_eq!(
        apply(&mut l, &reserve(1, 1, Some(4))),
        reply(Status::LedgerFull, None, 1, 0, 9, 10)
    );
    // SOLD_OUT and UNKNOWN_EVENT are decided first; a retry still answers.
    assert_eq!(
        apply(&mut l, &reserve(2, 1, None)),
        reply(Status::SoldOut, None, 2, 0, 0, 0)
    );
    assert_eq!(
        apply(&mut l, &reserve(3, 1, None)),
        reply(Status::UnknownEvent, None, 3, 0, 0, 0)
    );
    assert_eq!(
        apply(&mut l, &reserve(1, 1, Some(3))),
        reply(Status::Ok, Some(client(3).booking_id()), 1, 1, 9, 10)
    );
    assert_eq!(l, before);
}

#[test]
fn shutting_down_encodes_and_decodes() {
    let r = Reply::bare(Status::ShuttingDown, TAG);
    let body = r.encode();
    assert_eq!(u16::from_ne_bytes([body[6], body[7]]), 9);
    assert_eq!(decode_reply(&body), Ok(r));
    assert_eq!(Status::from_code(9), Some(Status::ShuttingDown));
    assert_eq!(Status::ShuttingDown.name(), "SHUTTING_DOWN");
}

#[test]
fn every_status_code_round_trips() {
    for (code, status) in Status::ALL.into_iter().enumerate() {
        assert_eq!(usize::from(status.code()), code);
        let r = Reply::bare(status, TAG);
        assert_eq!(decode_reply(&r.encode()), Ok(r));
    }
    let mut body = Reply::bare(Status::Ok, TAG).encode();
    body[6..8].copy_from_slice(&11u16.to_ne_bytes());
    assert_eq!(decode_reply(&body), Err(Violation::Status { found: 11 }));
}

#[test]
fn huge_capacity_and_quantity() {
    let mut l = Ledger::new([("big", u32::MAX), ("small", 1)], 10).expect("valid");
    assert_eq!(
        apply(&mut l, &reserve(1, u32::MAX, Some(1))),
        reply(
            Status::Ok,
            Some(client(1).booking_id()),
            1,
            u32::MAX,
            0,
            u32::MAX
        )
    );
    assert_eq!(
        apply(&mut l, &reserve(1, 1, None)),
        reply(Status::SoldOut, None, 1, 0, 0, u32::MAX)
    );
    assert_eq!(
        apply(&mut l, &reserve(2, u32::MAX, None)),
        reply(Status::SoldOut, None, 2, 0, 1, 1)
    );
    assert_eq!(
        apply(&mut l, &cancel(client(1).booking_id())),
        reply(
            Status::Ok,
            Some(client(1).booking_id()),
            1,
            u32::MAX,
            u32::MAX,
            u32::MAX
        )
    );
    assert_eq!(
        apply(&mut l, &reserve(1, u32::MAX - 1, None)),
        reply(Status::Ok, Some(server(1)), 1, u32::MAX - 1, 1, u32::MAX)
    );
    assert_eq!(
        apply(&mut l, &reserve(1, 1, None)),
        reply(Status::Ok, Some(server(2)), 1, 1, 0, u32::MAX)
    );
}

#[test]
fn event_ids_zero_and_max() {
    assert_eq!(EventId::new(0), None);
    let mut l = ledger();
    assert_eq!(
        apply(
            &mut l,
            &Operation::Query {
                event: event(u32::MAX)
            }
        )
        .status,
        Status::UnknownEvent
    );
    // On the wire, event_id 0 is INVALID_REQUEST for QUERY and RESERVE, and
    // u32::MAX is a well-formed request.
    let r = request(Operation::Query {
        event: event(u32::MAX),
    });
    assert_eq!(decode_request(&r.encode()), Ok(r));
    let mut body = r.encode();
    body[32..36].copy_from_slice(&0u32.to_ne_bytes());
    assert_invalid(
        &body,
        Violation::Missing {
            op: Op::Query,
            field: Field::EventId,
        },
    );
}

// ---------------------------------------------------------------------------
// INVALID_REQUEST and BAD_MESSAGE, through the codec.

const REPLY_TO: i64 = (4242 << 32) | 7;

fn request(operation: Operation) -> Request {
    Request {
        reply_to: ReplyTo::new(REPLY_TO).expect(">= 2"),
        request_id: TAG,
        operation,
    }
}

fn answer(status: Status) -> Option<Answer> {
    Some(Answer {
        reply_to: ReplyTo::new(REPLY_TO).expect(">= 2"),
        request_id: TAG,
        status,
    })
}

/// A body with these raw fields, magic and version right.
fn raw(op: u16, reply_to: i64, booking: u64, event_id: u32, quantity: u32) -> [u8; 40] {
    let mut body = [0u8; 40];
    body[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
    body[4..6].copy_from_slice(&VERSION.to_ne_bytes());
    body[6..8].copy_from_slice(&op.to_ne_bytes());
    body[8..16].copy_from_slice(&reply_to.to_ne_bytes());
    body[16..24].copy_from_slice(&TAG.0.to_ne_bytes());
    body[24..32].copy_from_slice(&booking.to_ne_bytes());
    body[32..36].copy_from_slice(&event_id.to_ne_bytes());
    body[36..40].copy_from_slice(&quantity.to_ne_bytes());
    body
}

fn assert_invalid(body: &[u8], violation: Violation) {
    let err = decode_request(body).expect_err("must not decode");
    assert_eq!(*err.violation(), violation);
    assert_eq!(err.violation().status(), Status::InvalidRequest);
    assert_eq!(err.answer(), answer(Status::InvalidRequest));
    let sent = err.answer().expect("answered").reply();
    assert_eq!(sent, Reply::bare(Status::InvalidRequest, TAG));
    assert_eq!(decode_reply(&sent.encode()), Ok(sent));
}

fn assert_bad(body: &[u8], violation: Violation, answered: bool) {
    let err = decode_request(body).expect_err("must not decode");
    assert_eq!(*err.violation(), violation);
    assert_eq!(err.violation().status(), Status::BadMessage);
    let expected = if answered {
        answer(Status::BadMessage)
    } else {
        None
    };
    assert_eq!(err.answer(), expected);
}

#[test]
fn raw_builder_matches_the_encoder() {
    let r = request(reserve(3, 4, Some(5)));
    assert_eq!(raw(2, REPLY_TO, 5, 3, 4), r.encode());
    assert_eq!(decode_request(&raw(2, REPLY_TO, 5, 3, 4)), Ok(r));
}

#[test]
fn invalid_request_event_id_zero() {
    let missing = |op| Violation::Missing {
        op,
        field: Field::EventId,
    };
    assert_invalid(&raw(1, REPLY_TO, 0, 0, 0), missing(Op::Query));
    assert_invalid(&raw(2, REPLY_TO, 0, 0, 1), missing(Op::Reserve));
    assert_invalid(&raw(2, REPLY_TO, 77, 0, 1), missing(Op::Reserve));
}

#[test]
fn invalid_request_quantity_zero() {
    assert_invalid(
        &raw(2, REPLY_TO, 0, 1, 0),
        Violation::Missing {
            op: Op::Reserve,
            field: Field::Quantity,
        },
    );
}

#[test]
fn invalid_request_booking_id_zero_for_cancel() {
    assert_invalid(
        &raw(3, REPLY_TO, 0, 0, 0),
        Violation::Missing {
            op: Op::Cancel,
            field: Field::BookingId,
        },
    );
}

#[test]
fn invalid_request_fields_that_must_be_zero() {
    let not_zero = |op, field, found| Violation::NotZero { op, field, found };
    assert_invalid(
        &raw(1, REPLY_TO, 5, 1, 0),
        not_zero(Op::Query, Field::BookingId, 5),
    );
    assert_invalid(
        &raw(1, REPLY_TO, 0, 1, u32::MAX),
        not_zero(Op::Query, Field::Quantity, u64::from(u32::MAX)),
    );
    assert_invalid(
        &raw(3, REPLY_TO, 5, 1, 0),
        not_zero(Op::Cancel, Field::EventId, 1),
    );
    assert_invalid(
        &raw(3, REPLY_TO, 5, 0, 2),
        not_zero(Op::Cancel, Field::Quantity, 2),
    );
}

#[test]
fn invalid_request_bit_63_on_a_client_id() {
    for id in [1 << 63, u64::MAX] {
        assert_invalid(
            &raw(2, REPLY_TO, id, 1, 1),
            Violation::ServerBookingBit { found: id },
        );
    }
    // CANCEL may name a server id: that is how server bookings are cancelled.
    let r = request(cancel(server(3)));
    assert_eq!(
        decode_request(&raw(3, REPLY_TO, (1 << 63) | 3, 0, 0)),
        Ok(r)
    );
}

#[test]
fn invalid_request_reply_to_below_two_is_dropped() {
    for reply_to in [1, 0, -1, i64::MIN] {
        let err = decode_request(&raw(1, reply_to, 0, 1, 0)).expect_err("must not decode");
        assert_eq!(*err.violation(), Violation::ReplyTo { found: reply_to });
        assert_eq!(err.violation().status(), Status::InvalidRequest);
        assert_eq!(err.answer(), None, "nowhere to send the reply");
    }
}

#[test]
fn bad_message_length() {
    let body = request(Operation::Query { event: event(1) }).encode();
    // Long enough to answer: from 24 bytes (through request_id) on.
    assert_bad(&body[..24], Violation::Length { len: 24 }, true);
    assert_bad(&body[..39], Violation::Length { len: 39 }, true);
    let mut long = body.to_vec();
    long.push(0);
    assert_bad(&long, Violation::Length { len: 41 }, true);
    long.resize(8192, 0xff);
    assert_bad(&long, Violation::Length { len: 8192 }, true);
    // Too short to say where to reply: dropped.
    assert_bad(&body[..23], Violation::Length { len: 23 }, false);
    assert_bad(&[], Violation::Length { len: 0 }, false);
    // Long enough, but reply_to below 2: dropped.
    let low = raw(1, 1, 0, 1, 0);
    assert_bad(&low[..30], Violation::Length { len: 30 }, false);
    // And a reply of the wrong length.
    assert_eq!(
        decode_reply(&body[..39]),
        Err(Violation::Length { len: 39 })
    );
}

#[test]
fn bad_message_version() {
    let mut body = raw(1, REPLY_TO, 0, 1, 0);
    body[4..6].copy_from_slice(&2u16.to_ne_bytes());
    assert_bad(&body, Violation::Version { found: 2 }, true);
    body[8..16].copy_from_slice(&1i64.to_ne_bytes());
    assert_bad(&body, Violation::Version { found: 2 }, false);
}

#[test]
fn bad_message_op() {
    for op in [0, 6, u16::MAX] {
        assert_bad(
            &raw(op, REPLY_TO, 0, 1, 0),
            Violation::Op { found: op },
            true,
        );
        assert_bad(&raw(op, 0, 0, 1, 0), Violation::Op { found: op }, false);
    }
}

#[test]
fn bad_message_wrong_magic_is_dropped() {
    let mut body = raw(1, REPLY_TO, 0, 1, 0);
    body[0..4].copy_from_slice(&0x5448_4347u32.to_ne_bytes());
    assert_bad(&body, Violation::Magic { found: 0x5448_4347 }, false);
    assert_bad(&body[..30], Violation::Length { len: 30 }, false);
    let mut reply = Reply::bare(Status::Ok, TAG).encode();
    reply[0] ^= 0xff;
    assert!(matches!(decode_reply(&reply), Err(Violation::Magic { .. })));
}
