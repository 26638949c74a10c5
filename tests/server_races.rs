//! Concurrency end to end: client threads and client processes racing for
//! the last seats in every dispatch mode, and floods that check every
//! request is answered and `max_in_flight` is never exceeded.

use guichet_testkit::fixture as server_support;

use std::collections::HashMap;
use std::thread;

use guichet::ledger::BookingState;
use guichet::server::{Dispatch, Server};
use guichet::sysv::Queue;
use guichet::{ClientError, Status};

use server_support::{
    assert_invariants, assert_queue_gone, recv_reply, scale, send_raw, stop, tag, RawRequest,
    MODES, PATIENCE_MS,
};

/// Seats of active bookings per event, straight from the ledger.
fn active_seats(server: &Server) -> HashMap<u32, u64> {
    server
        .with_ledger(|l| {
            let mut seats = HashMap::new();
            for (_, b) in l.bookings() {
                if b.state == BookingState::Active {
                    *seats.entry(b.event.get()).or_insert(0) += u64::from(b.quantity.get());
                }
            }
            seats
        })
        .unwrap()
}

#[test]
fn threads_race_for_the_last_seats_in_every_mode() {
    let capacity = 61;
    let threads = scale(24, 64);
    for mode in MODES {
        let server = Server::builder()
            .event("Tiny", capacity)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        // Quantities 1, 2 and 3: the threads asking for 1 take the last
        // seats, so exactly `capacity` seats are sold.
        let sold: Vec<(u32, u32)> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let quantity = u32::try_from(i % 3).unwrap() + 1;
                    s.spawn(move || {
                        let mut mine = 0;
                        loop {
                            match client.reserve(1, quantity) {
                                Ok(r) => {
                                    assert_eq!(r.quantity, quantity);
                                    mine += quantity;
                                }
                                Err(ClientError::SoldOut { remaining, .. })
                                    if remaining < quantity =>
                                {
                                    return (quantity, mine)
                                }
                                Err(e) => panic!("{mode}: {e}"),
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: u32 = sold.iter().map(|(_, n)| n).sum();
        assert_eq!(total, capacity, "{mode}: {sold:?}");
        let query = client.query(1).unwrap();
        assert_eq!((query.remaining, query.capacity), (0, capacity), "{mode}");
        assert_eq!(active_seats(&server)[&1], u64::from(capacity), "{mode}");
        assert_invariants(&server);
        let id = server.queue_id();
        let stats = stop(server);
        assert_eq!(stats.replies(Status::SoldOut), threads as u64, "{mode}");
        assert_eq!(stats.replies_abandoned, 0, "{mode}: {stats:?}");
        assert_queue_gone(id);
    }
}

#[test]
fn reservations_and_cancellations_racing_keep_the_books_balanced() {
    let capacity = 40;
    let threads = 12;
    let rounds = scale(150, 2_000) as u32;
    for mode in MODES {
        let server = Server::builder()
            .event("A", capacity)
            .event("B", 7)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        // Each thread reserves, sometimes cancels (sometimes twice), and
        // keeps what it did not cancel; it reports the seats it still holds.
        let held: Vec<u64> = thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t: u32| {
                    s.spawn(move || {
                        let mut holding = [0u64; 2];
                        for round in 0..rounds {
                            let event = 1 + (round + t) % 2;
                            let quantity = 1 + round % 3;
                            let id = (u64::from(t) << 32) | u64::from(round + 1);
                            match client.reserve_with_id(event, quantity, id) {
                                Ok(r) => {
                                    assert_eq!(r.booking.get(), id);
                                    if round % 4 == 0 {
                                        let c = client.cancel(id).unwrap();
                                        assert_eq!(c.quantity, quantity);
                                        let again = client.cancel(id).unwrap();
                                        assert_eq!(again.quantity, quantity);
                                    } else {
                                        holding[event as usize - 1] += u64::from(quantity);
                                    }
                                }
                                Err(ClientError::SoldOut { .. }) => {}
                                Err(e) => panic!("{mode}: {e}"),
                            }
                        }
                        holding
                    })
                })
                .collect();
            let mut held = vec![0u64; 2];
            for h in handles {
                let mine = h.join().unwrap();
                held[0] += mine[0];
                held[1] += mine[1];
            }
            held
        });
        let active = active_seats(&server);
        for (event, capacity) in [(1u32, capacity), (2, 7)] {
            let remaining = client.query(event).unwrap().remaining;
            let booked = active.get(&event).copied().unwrap_or(0);
            assert_eq!(booked, held[event as usize - 1], "{mode}: event {event}");
            assert_eq!(
                u64::from(remaining) + booked,
                u64::from(capacity),
                "{mode}: event {event}"
            );
        }
        assert_invariants(&server);
        stop(server);
    }
}

#[test]
fn a_flood_of_client_calls_is_answered_within_max_in_flight() {
    let max_in_flight = 8;
    let threads = 16;
    let per_thread = scale(1_250, 6_250);
    let server = Server::builder()
        .event("Big", 1_000_000)
        .event("Small", 5)
        .dispatch(Dispatch::ThreadPerRequest)
        .max_in_flight(max_in_flight)
        .spawn()
        .unwrap();
    let client = server.client().with_timeout_ms(PATIENCE_MS);
    let answered: usize = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut answered = 0;
                    for i in 0..per_thread {
                        let result = match (t + i) % 4 {
                            0 => client.query(1).map(|_| ()),
                            1 => client.reserve(2, 1).map(|_| ()),
                            2 => client.reserve(1, 1).map(|_| ()),
                            _ => client
                                .reserve(1, 1)
                                .and_then(|r| client.cancel(r.booking))
                                .map(|_| ()),
                        };
                        match result {
                            Ok(()) | Err(ClientError::SoldOut { .. }) => answered += 1,
                            Err(e) => panic!("call {i} of thread {t}: {e}"),
                        }
                    }
                    answered
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(answered, threads * per_thread);
    assert_invariants(&server);
    let stats = stop(server);
    // Every fourth call is two requests.
    let requests = (threads * per_thread + threads * per_thread / 4) as u64;
    assert_eq!(stats.received, requests, "{stats:?}");
    assert_eq!(stats.replies_sent(), requests, "{stats:?}");
    assert_eq!(stats.replies_abandoned, 0, "{stats:?}");
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert!(stats.peak_in_flight >= 1, "{stats:?}");
    assert!(
        stats.peak_in_flight <= max_in_flight as u64,
        "peak {} > max_in_flight {max_in_flight}",
        stats.peak_in_flight
    );
    eprintln!("flood: {stats:?}");
}

#[test]
fn pipelined_raw_requests_are_all_answered() {
    // Senders keep a window of requests outstanding on their own tag, as a
    // C client that does not wait between requests would.
    let senders = 6u32;
    let per_sender = scale(2_000, 20_000) as u64;
    let window = 16;
    for mode in MODES {
        let server = Server::builder()
            .event("Big", u32::MAX)
            .dispatch(mode)
            .max_in_flight(8)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        thread::scope(|s| {
            for n in 0..senders {
                s.spawn(move || {
                    let tag = tag(1_000 + n);
                    let mut seen = vec![false; per_sender as usize];
                    let mut sent = 0;
                    let mut received = 0;
                    while received < per_sender {
                        while sent < per_sender && sent - received < window {
                            let request = if sent % 2 == 0 {
                                RawRequest::query(tag, sent, 1)
                            } else {
                                RawRequest::reserve(tag, sent, 1, 1, 0)
                            };
                            send_raw(queue, &request.bytes());
                            sent += 1;
                        }
                        let reply = recv_reply(queue, tag, PATIENCE_MS);
                        assert_eq!(reply.status, Status::Ok, "{mode}: {reply:?}");
                        let slot = &mut seen[reply.request_id.0 as usize];
                        assert!(!*slot, "{mode}: two replies to {}", reply.request_id);
                        *slot = true;
                        received += 1;
                    }
                });
            }
        });
        let booked = u64::from(u32::MAX - server.client().query(1).unwrap().remaining);
        assert_eq!(booked, u64::from(senders) * per_sender / 2, "{mode}");
        assert_invariants(&server);
        let stats = stop(server);
        assert_eq!(stats.replies_abandoned, 0, "{mode}: {stats:?}");
        if mode == Dispatch::ThreadPerRequest {
            assert!(stats.peak_in_flight <= 8, "{stats:?}");
        }
    }
}
