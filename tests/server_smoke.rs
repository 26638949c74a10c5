//! First end-to-end checks of the server through real queues.

use guichet_testkit::fixture::deadline_in_ms;
use std::thread;

use guichet::server::{Dispatch, Server};
use guichet::sysv::{MessageBuf, Queue};
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};
use guichet::{decode_reply, ClientError, Status};

const MODES: [Dispatch; 3] = [
    Dispatch::ThreadPerRequest,
    Dispatch::Pool(4),
    Dispatch::Sequential,
];

#[test]
fn race_for_the_last_seats_sells_exactly_capacity_in_every_mode() {
    for mode in MODES {
        let server = Server::builder()
            .event("Tiny", 50)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let client = server.client();
        let sold: u32 = thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|_| {
                    s.spawn(move || {
                        let mut mine = 0;
                        loop {
                            match client.reserve(1, 1) {
                                Ok(_) => mine += 1,
                                Err(ClientError::SoldOut { remaining: 0, .. }) => return mine,
                                Err(e) => panic!("{mode}: {e}"),
                            }
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(sold, 50, "{mode}");
        assert_eq!(client.query(1).unwrap().remaining, 0);
        server
            .with_ledger(|l| l.check_invariants())
            .unwrap()
            .unwrap();
        let stats = server.shutdown().unwrap();
        assert_eq!(stats.replies(Status::Ok), 51, "{mode}: {stats:?}");
        assert_eq!(stats.replies(Status::SoldOut), 16, "{mode}: {stats:?}");
    }
}

#[test]
fn malformed_messages_are_answered_or_dropped_and_the_server_keeps_serving() {
    for mode in MODES {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let tag: i64 = (i64::from(std::process::id()) << 32) | 0xdead;
        let mut body = [0u8; 64];
        body[0..4].copy_from_slice(&guichet::wire::MAGIC.to_ne_bytes());
        body[4..6].copy_from_slice(&1u16.to_ne_bytes());
        body[6..8].copy_from_slice(&77u16.to_ne_bytes()); // bad op
        body[8..16].copy_from_slice(&tag.to_ne_bytes());
        body[16..24].copy_from_slice(&99u64.to_ne_bytes());
        for len in [0, 3, 24, 40, 41, 64] {
            queue.send(REQUEST_MTYPE, &body[..len], None).unwrap();
        }
        queue.send(REQUEST_MTYPE, &[0xff; 8192], None).unwrap();
        let mut buf = MessageBuf::with_body_capacity(BODY_SIZE).unwrap();
        for _ in 0..4 {
            queue
                .recv(tag, &mut buf, Some(deadline_in_ms(5_000)))
                .unwrap();
            let reply = decode_reply(buf.body()).unwrap();
            assert_eq!(reply.status, Status::BadMessage);
            assert_eq!(reply.request_id.0, 99);
        }
        assert_eq!(server.client().query(1).unwrap().remaining, 5);
        let stats = server.shutdown().unwrap();
        assert_eq!(stats.dropped, 3, "{mode}: {stats:?}");
        assert_eq!(stats.replies(Status::BadMessage), 4, "{mode}: {stats:?}");
    }
}

#[test]
fn queued_requests_are_answered_shutting_down() {
    let server = Server::builder()
        .event("E", 1_000_000)
        .dispatch(Dispatch::Sequential)
        .spawn()
        .unwrap();
    let queue = Queue::from_id(server.queue_id());
    let tag: i64 = (i64::from(std::process::id()) << 32) | 0xbeef;
    let n = 300;
    for i in 0..n {
        let request = guichet::Request {
            reply_to: guichet::ReplyTo::new(tag).unwrap(),
            request_id: guichet::RequestId(i),
            operation: guichet::Operation::Reserve {
                event: guichet::EventId::new(1).unwrap(),
                quantity: std::num::NonZeroU32::new(1).unwrap(),
                booking: None,
            },
        };
        queue.send(REQUEST_MTYPE, &request.encode(), None).unwrap();
    }
    // Drain our replies concurrently so the queue never fills.
    let reader = thread::spawn(move || {
        let mut buf = MessageBuf::with_body_capacity(BODY_SIZE).unwrap();
        let mut statuses = Vec::new();
        while queue
            .recv(tag, &mut buf, Some(deadline_in_ms(2_000)))
            .is_ok()
        {
            statuses.push(decode_reply(buf.body()).unwrap().status);
        }
        statuses
    });
    let stats = server.shutdown().unwrap();
    let statuses = reader.join().unwrap();
    assert_eq!(statuses.len() as u64, n, "{stats:?}");
    let ok = statuses.iter().filter(|s| **s == Status::Ok).count();
    let down = statuses
        .iter()
        .filter(|s| **s == Status::ShuttingDown)
        .count();
    assert_eq!(ok + down, n as usize);
    eprintln!("ok {ok}, shutting down {down}");
}

/// Receive loops that always block and loops that poll for the longest
/// allowed time serve the same race exactly and stop when asked.
#[test]
fn every_mode_serves_and_stops_whether_its_loops_poll_or_block() {
    use guichet::server::Limits;
    for receive_spin_us in [0, Limits::MAX_RECEIVE_SPIN_US] {
        for mode in MODES {
            let limits = Limits {
                receive_spin_us,
                ..Limits::default()
            };
            let server = Server::builder()
                .event("E", 20)
                .dispatch(mode)
                .limits(limits)
                .spawn()
                .unwrap();
            let client = server.client();
            let booked: u32 = thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(move || (0..5).filter(|_| client.reserve(1, 1).is_ok()).count())
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap() as u32).sum()
            });
            assert_eq!(booked, 20, "{mode}, {receive_spin_us} µs");
            let stats = server.shutdown().unwrap();
            assert_eq!(stats.replies(Status::Ok), 20, "{mode}: {stats:?}");
        }
    }
}

#[test]
fn a_receive_spin_out_of_range_is_refused_by_name() {
    use guichet::server::{Limits, ServerError};
    let limits = Limits {
        receive_spin_us: Limits::MAX_RECEIVE_SPIN_US + 1,
        ..Limits::default()
    };
    match Server::builder().event("E", 1).limits(limits).spawn() {
        Err(ServerError::Limit(e)) => assert_eq!(e.name, "receive_spin_us"),
        other => panic!("{:?}", other.map(|_| ())),
    }
}
