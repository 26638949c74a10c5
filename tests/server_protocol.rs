//! PROTOCOL.md end to end through real queues: every status a client can
//! meet, with every reply field checked, in every dispatch mode.

use guichet_testkit::fixture as server_support;

use std::num::NonZeroU32;
use std::thread;

use guichet::client::{Availability, Receipt};
use guichet::server::{Dispatch, Server};
use guichet::sysv::Queue;
use guichet::{BookingId, ClientBookingId, ClientError, EventId, Operation, Reply, Status};

use server_support::{
    assert_invariants, assert_queue_gone, fresh_tag, recv_reply, send_raw, snapshot, stop,
    RawRequest, MODES, PATIENCE_MS,
};

fn event(n: u32) -> EventId {
    EventId::new(n).unwrap()
}

fn seats(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn booking(n: u64) -> BookingId {
    BookingId::new(n).unwrap()
}

/// Two events: 1 "Concert" with 10 seats, 2 "Opera" with 3.
fn server(mode: Dispatch) -> Server {
    Server::builder()
        .event("Concert", 10)
        .event("Opera", 3)
        .dispatch(mode)
        .spawn()
        .unwrap()
}

/// A reply with the given fields and the request id the client chose
/// (copied from `got`: the typed calls do not expose it).
fn expect(got: &Reply, status: Status) -> Reply {
    Reply {
        status,
        request_id: got.request_id,
        booking: None,
        event: None,
        quantity: 0,
        remaining: 0,
        capacity: 0,
    }
}

#[test]
fn ok_replies_carry_every_field() {
    for mode in MODES {
        let server = server(mode);
        let client = server.client().with_timeout_ms(PATIENCE_MS);

        assert_eq!(
            client.query(1).unwrap(),
            Availability {
                event: event(1),
                remaining: 10,
                capacity: 10
            },
            "{mode}"
        );
        assert_eq!(client.query(2).unwrap().capacity, 3, "{mode}");

        // Server-assigned id: bit 63 set.
        let receipt = client.reserve(1, 4).unwrap();
        assert!(receipt.booking.is_server_assigned(), "{mode}: {receipt:?}");
        assert_eq!(
            (
                receipt.event,
                receipt.quantity,
                receipt.remaining,
                receipt.capacity
            ),
            (event(1), 4, 6, 10),
            "{mode}"
        );

        // The raw reply of an OK RESERVE, field by field.
        let reply = client
            .send(Operation::Reserve {
                event: event(2),
                quantity: seats(2),
                booking: ClientBookingId::new(77),
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                booking: Some(booking(77)),
                event: Some(event(2)),
                quantity: 2,
                remaining: 1,
                capacity: 3,
                ..expect(&reply, Status::Ok)
            },
            "{mode}"
        );

        // QUERY names the event, no booking, quantity 0.
        let reply = client.send(Operation::Query { event: event(2) }).unwrap();
        assert_eq!(
            reply,
            Reply {
                event: Some(event(2)),
                remaining: 1,
                capacity: 3,
                ..expect(&reply, Status::Ok)
            },
            "{mode}"
        );

        // CANCEL answers the booking's event and seats, and the seats after.
        let cancelled = client.cancel(receipt.booking).unwrap();
        assert_eq!(
            cancelled,
            Receipt {
                booking: receipt.booking,
                event: event(1),
                quantity: 4,
                remaining: 10,
                capacity: 10
            },
            "{mode}"
        );
        assert_invariants(&server);
        let id = server.queue_id();
        let stats = stop(server);
        assert_eq!(stats.replies(Status::Ok), stats.replies_sent(), "{mode}");
        assert_queue_gone(id);
    }
}

#[test]
fn every_refusal_status_through_the_client() {
    for mode in MODES {
        let server = server(mode);
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        client.reserve(2, 2).unwrap();

        // SOLD_OUT: the event and its seats, no booking, quantity 0.
        match client.reserve(2, 2) {
            Err(ClientError::SoldOut {
                event: e,
                remaining: 1,
                capacity: 3,
            }) if e == event(2) => {}
            other => panic!("{mode}: {other:?}"),
        }
        let reply = client
            .send(Operation::Reserve {
                event: event(2),
                quantity: seats(2),
                booking: None,
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                event: Some(event(2)),
                remaining: 1,
                capacity: 3,
                ..expect(&reply, Status::SoldOut)
            },
            "{mode}"
        );

        // UNKNOWN_EVENT: the event named, no seats.
        assert!(
            matches!(client.query(3), Err(ClientError::UnknownEvent { event: 3 })),
            "{mode}"
        );
        assert!(
            matches!(
                client.reserve(99, 1),
                Err(ClientError::UnknownEvent { event: 99 })
            ),
            "{mode}"
        );
        let reply = client.send(Operation::Query { event: event(3) }).unwrap();
        assert_eq!(
            reply,
            Reply {
                event: Some(event(3)),
                ..expect(&reply, Status::UnknownEvent)
            },
            "{mode}"
        );

        // UNKNOWN_BOOKING: the booking echoed, nothing else; for client ids
        // and for server ids never issued.
        for id in [5u64, (1 << 63) | 12_345] {
            match client.cancel(id) {
                Err(ClientError::UnknownBooking { booking: b }) if b.get() == id => {}
                other => panic!("{mode}: cancel {id:#x}: {other:?}"),
            }
            let reply = client
                .send(Operation::Cancel {
                    booking: booking(id),
                })
                .unwrap();
            assert_eq!(
                reply,
                Reply {
                    booking: Some(booking(id)),
                    ..expect(&reply, Status::UnknownBooking)
                },
                "{mode}"
            );
        }

        // BOOKING_CONFLICT: same id, another quantity or another event;
        // the reply names the *existing* booking's event and its seats.
        client.reserve_with_id(1, 2, 7).unwrap();
        for (e, q) in [(1, 3), (2, 2), (2, 1)] {
            match client.reserve_with_id(e, q, 7) {
                Err(ClientError::BookingConflict { booking: b }) if b.get() == 7 => {}
                other => panic!("{mode}: ({e}, {q}): {other:?}"),
            }
        }
        let reply = client
            .send(Operation::Reserve {
                event: event(2),
                quantity: seats(1),
                booking: ClientBookingId::new(7),
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                booking: Some(booking(7)),
                event: Some(event(1)),
                remaining: 8,
                capacity: 10,
                ..expect(&reply, Status::BookingConflict)
            },
            "{mode}"
        );

        // BOOKING_CANCELLED: the id of a cancelled booking cannot be reused.
        client.cancel(7u64).unwrap();
        match client.reserve_with_id(1, 2, 7) {
            Err(ClientError::BookingCancelled { booking: b }) if b.get() == 7 => {}
            other => panic!("{mode}: {other:?}"),
        }
        let reply = client
            .send(Operation::Reserve {
                event: event(1),
                quantity: seats(2),
                booking: ClientBookingId::new(7),
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                booking: Some(booking(7)),
                event: Some(event(1)),
                remaining: 10,
                capacity: 10,
                ..expect(&reply, Status::BookingCancelled)
            },
            "{mode}"
        );

        assert_invariants(&server);
        let stats = stop(server);
        for status in [
            Status::SoldOut,
            Status::UnknownEvent,
            Status::UnknownBooking,
            Status::BookingConflict,
            Status::BookingCancelled,
        ] {
            assert!(stats.replies(status) > 0, "{mode}: {status}: {stats:?}");
        }
    }
}

#[test]
fn invalid_request_and_bad_message_are_answered_bare() {
    for mode in MODES {
        let server = server(mode);
        let queue = Queue::from_id(server.queue_id());
        let tag = fresh_tag();
        let before = snapshot(&server);
        // Field rules broken in well-framed messages: INVALID_REQUEST.
        let invalid = [
            RawRequest {
                quantity: 1,
                ..RawRequest::query(tag, 1, 1)
            },
            RawRequest {
                booking_id: 3,
                ..RawRequest::query(tag, 2, 1)
            },
            RawRequest::query(tag, 3, 0),
            RawRequest::reserve(tag, 4, 1, 0, 0),
            RawRequest::reserve(tag, 5, 0, 1, 0),
            RawRequest::reserve(tag, 6, 1, 1, 1 << 63),
            RawRequest::cancel(tag, 7, 0),
            RawRequest {
                event_id: 1,
                ..RawRequest::cancel(tag, 8, 9)
            },
            RawRequest {
                quantity: 1,
                ..RawRequest::cancel(tag, 9, 9)
            },
        ];
        // Framing broken: BAD_MESSAGE.
        let bad = [
            RawRequest {
                version: 2,
                ..RawRequest::query(tag, 10, 1)
            },
            RawRequest {
                version: 0,
                ..RawRequest::query(tag, 11, 1)
            },
            RawRequest::new(0, tag, 12),
            RawRequest::new(6, tag, 13),
            RawRequest::new(u16::MAX, tag, 14),
        ];
        for request in invalid.iter().chain(&bad) {
            send_raw(queue, &request.bytes());
        }
        // Thread-per-request answers in any order: match by request id.
        let mut replies: Vec<Reply> = (0..invalid.len() + bad.len())
            .map(|_| recv_reply(queue, tag, PATIENCE_MS))
            .collect();
        replies.sort_by_key(|r| r.request_id);
        for ((request, status), reply) in invalid
            .iter()
            .map(|r| (r, Status::InvalidRequest))
            .chain(bad.iter().map(|r| (r, Status::BadMessage)))
            .zip(&replies)
        {
            let want = Reply::bare(status, guichet::RequestId(request.request_id));
            assert_eq!(*reply, want, "{mode}: {request:?}");
        }
        assert_eq!(snapshot(&server), before, "{mode}: the ledger changed");
        let stats = stop(server);
        assert_eq!(stats.replies(Status::InvalidRequest), 9, "{mode}");
        assert_eq!(stats.replies(Status::BadMessage), 5, "{mode}");
        assert_eq!(stats.dropped, 0, "{mode}");
    }
}

#[test]
fn ledger_full_counts_cancelled_bookings_and_names_the_event() {
    for mode in MODES {
        let server = Server::builder()
            .event("Concert", 10)
            .max_bookings(3)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let first = client.reserve(1, 1).unwrap();
        client.reserve_with_id(1, 1, 11).unwrap();
        client.reserve(1, 2).unwrap();
        client.cancel(first.booking).unwrap();
        // Three bookings held, one cancelled: still full.
        assert!(
            matches!(client.reserve(1, 1), Err(ClientError::LedgerFull)),
            "{mode}"
        );
        let reply = client
            .send(Operation::Reserve {
                event: event(1),
                quantity: seats(1),
                booking: ClientBookingId::new(12),
            })
            .unwrap();
        assert_eq!(
            reply,
            Reply {
                event: Some(event(1)),
                remaining: 7,
                capacity: 10,
                ..expect(&reply, Status::LedgerFull)
            },
            "{mode}"
        );
        // A retry of a booking already held is still answered: it takes
        // no new room.
        assert_eq!(client.reserve_with_id(1, 1, 11).unwrap().remaining, 7);
        // Nothing changed: 10 - 1 - 2 = 7 seats.
        assert_eq!(client.query(1).unwrap().remaining, 7, "{mode}");
        assert_eq!(server.with_ledger(|l| l.booking_count()).unwrap(), 3);
        assert_invariants(&server);
        let stats = stop(server);
        assert_eq!(stats.replies(Status::LedgerFull), 2, "{mode}");
    }
}

#[test]
fn retries_with_a_client_id_book_once() {
    for mode in MODES {
        let server = server(mode);
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let first = client.reserve_with_id(1, 3, 42).unwrap();
        assert_eq!(first.booking.get(), 42);
        assert!(!first.booking.is_server_assigned());
        // Sequential retries: the same receipt, seats taken once.
        for _ in 0..3 {
            assert_eq!(client.reserve_with_id(1, 3, 42).unwrap(), first, "{mode}");
        }
        // Concurrent retries of a new id: one booking, every answer the same.
        let receipts: Vec<Receipt> = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| client.reserve_with_id(1, 2, 43).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let booked = receipts[0].booking;
        assert_eq!(booked.get(), 43);
        for r in &receipts {
            assert_eq!(
                (r.booking, r.event, r.quantity, r.capacity),
                (booked, event(1), 2, 10)
            );
            // Every answer is the state after the one real booking.
            assert_eq!(r.remaining, 5, "{mode}");
        }
        assert_eq!(client.query(1).unwrap().remaining, 5, "{mode}");
        assert_eq!(server.with_ledger(|l| l.booking_count()).unwrap(), 2);
        assert_invariants(&server);
        stop(server);
    }
}

#[test]
fn cancel_and_cancel_again() {
    for mode in MODES {
        let server = server(mode);
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let mine = client.reserve(1, 4).unwrap();
        let other = client.reserve(1, 1).unwrap();
        let once = client.cancel(mine.booking).unwrap();
        assert_eq!(
            (once.booking, once.event, once.quantity, once.remaining),
            (mine.booking, event(1), 4, 9),
            "{mode}"
        );
        // Again: OK, the same quantity, nothing returned twice.
        let again = client.cancel(mine.booking).unwrap();
        assert_eq!(again, once, "{mode}");
        assert_eq!(client.query(1).unwrap().remaining, 9, "{mode}");
        // The other booking is untouched and can still go.
        assert_eq!(client.cancel(other.booking).unwrap().remaining, 10);
        // Retrying the RESERVE of a cancelled client id is refused.
        client.reserve_with_id(1, 1, 9).unwrap();
        client.cancel(9u64).unwrap();
        assert!(matches!(
            client.reserve_with_id(1, 1, 9),
            Err(ClientError::BookingCancelled { .. })
        ));
        assert_eq!(client.query(1).unwrap().remaining, 10, "{mode}");
        assert_invariants(&server);
        stop(server);
    }
}

#[test]
fn the_client_refuses_what_the_protocol_cannot_carry_without_sending() {
    let server = server(Dispatch::Sequential);
    let client = server.client().with_timeout_ms(PATIENCE_MS);
    for result in [
        client.query(0).map(|_| ()),
        client.reserve(0, 1).map(|_| ()),
        client.reserve(1, 0).map(|_| ()),
        client.reserve_with_id(1, 1, 0).map(|_| ()),
        client.reserve_with_id(1, 1, 1 << 63).map(|_| ()),
        client.cancel(0u64).map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(ClientError::InvalidArgument(_))),
            "{result:?}"
        );
    }
    let stats = stop(server);
    assert_eq!(stats.received, 0, "{stats:?}");
}

#[test]
fn extreme_counts_and_ids_leave_the_ledger_unchanged() {
    for mode in MODES {
        let server = Server::builder()
            .event("Concert", 10)
            .event("Huge", u32::MAX)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        client.reserve_with_id(1, 2, 5).unwrap();
        let before = snapshot(&server);

        // quantity u32::MAX of a small event: SOLD_OUT with its seats.
        match client.reserve(1, u32::MAX) {
            Err(ClientError::SoldOut {
                remaining: 8,
                capacity: 10,
                ..
            }) => {}
            other => panic!("{mode}: {other:?}"),
        }
        // event u32::MAX: UNKNOWN_EVENT, for every operation that names one.
        assert!(matches!(
            client.query(u32::MAX),
            Err(ClientError::UnknownEvent { event: u32::MAX })
        ));
        assert!(matches!(
            client.reserve(u32::MAX, 1),
            Err(ClientError::UnknownEvent { event: u32::MAX })
        ));
        assert!(matches!(
            client.reserve(u32::MAX, u32::MAX),
            Err(ClientError::UnknownEvent { .. })
        ));
        // Unknown bookings, client and server ranges, both ends.
        for id in [1, 4, 6, (1 << 63) - 1, 1 << 63, (1 << 63) | 1, u64::MAX] {
            assert!(
                matches!(client.cancel(id), Err(ClientError::UnknownBooking { .. })),
                "{mode}: {id:#x}"
            );
        }
        // Quantity 0 and event 0 never leave the client; raw, they are
        // INVALID_REQUEST.
        let queue = Queue::from_id(server.queue_id());
        let tag = fresh_tag();
        for (i, raw) in [
            RawRequest::reserve(tag, 1, 1, 0, 0),
            RawRequest::reserve(tag, 2, 0, 1, 0),
            RawRequest::reserve(tag, 3, 0, 0, 0),
            RawRequest::query(tag, 4, 0),
            RawRequest::reserve(tag, 5, 1, 0, 5),
        ]
        .iter()
        .enumerate()
        {
            send_raw(queue, &raw.bytes());
            let reply = recv_reply(queue, tag, PATIENCE_MS);
            assert_eq!(reply.status, Status::InvalidRequest, "{mode}: #{i}");
        }
        assert_eq!(snapshot(&server), before, "{mode}: the ledger changed");

        // The whole of a u32::MAX event can be booked and given back.
        let all = client.reserve(2, u32::MAX).unwrap();
        assert_eq!((all.remaining, all.capacity), (0, u32::MAX));
        assert!(matches!(
            client.reserve(2, 1),
            Err(ClientError::SoldOut { remaining: 0, .. })
        ));
        assert_eq!(client.cancel(all.booking).unwrap().remaining, u32::MAX);
        assert_invariants(&server);
        stop(server);
    }
}
