//! The client's timeouts and its handling of replies that arrive too late.
//!
//! A call's reply tag is `(pid << 32) | slot`, with slots reused from a
//! process-wide pool: a reply to a call that timed out stays on the tag
//! until a later call takes the same slot, which must recognise it by its
//! `request_id` and discard it. This file is its own test binary, and its
//! tests are `#[serial]`, so that no other call in the process takes the
//! slots these tests expect to be reused.

use guichet_testkit::fixture as server_support;
use guichet_testkit::fixture::deadline_in_ms;
use std::time::Instant;

use std::sync::Barrier;
use std::thread;

use guichet::server::{Dispatch, Server};
use guichet::sysv::{MessageBuf, Mode, OwnedQueue, Queue};
use guichet::wire::{BODY_SIZE, REQUEST_MTYPE};
use guichet::{decode_request, Reply, Request};
use guichet::{Client, ClientError, EventId, Status};
use serial_test::serial;

use server_support::{hold_ledger, stop, tag, wait_until, PATIENCE, PATIENCE_MS};

/// Runs `while_locked` while another thread holds the server's ledger, so
/// that every request the server takes waits.
fn with_server_paused<R>(server: &Server, while_locked: impl FnOnce() -> R) -> R {
    thread::scope(|s| {
        let hold = hold_ledger(s, server);
        let result = while_locked();
        hold.release();
        result
    })
}

#[test]
#[serial]
fn a_late_reply_is_discarded_by_the_next_call_on_its_tag() {
    for mode in [Dispatch::Sequential, Dispatch::ThreadPerRequest] {
        let server = Server::builder()
            .event("E", 10)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let impatient = server.client().with_timeout_ms(200);
        let result = with_server_paused(&server, || impatient.query(1));
        assert!(
            matches!(result, Err(ClientError::Timeout { timeout_ms: 200 })),
            "{mode}: {result:?}"
        );
        // The server answers the query after all; the reply waits on the tag.
        assert!(wait_until(PATIENCE, || server.stats().replies_sent() == 1));
        assert_eq!(queue.stat().unwrap().messages, 1, "{mode}");
        // The next call takes the same slot: it must skip the stale QUERY
        // reply (no booking in it) and return its own.
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let receipt = client.reserve(1, 2).unwrap();
        assert_eq!((receipt.quantity, receipt.remaining), (2, 8), "{mode}");
        assert!(receipt.booking.is_server_assigned());
        // ...and the stale one is gone, not left for someone else.
        assert_eq!(queue.stat().unwrap().messages, 0, "{mode}");
        stop(server);
    }
}

#[test]
#[serial]
fn late_replies_on_many_tags_never_answer_the_wrong_call() {
    let threads = 8;
    let server = Server::builder().event("E", 100).spawn().unwrap();
    let queue = Queue::from_id(server.queue_id());
    let impatient = server.client().with_timeout_ms(150);
    // Every thread's call times out while the server is paused.
    let timed_out = with_server_paused(&server, || {
        let start = Barrier::new(threads);
        thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        impatient.reserve(1, 1)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|r| matches!(r, Err(ClientError::Timeout { .. })))
                .count()
        })
    });
    assert_eq!(timed_out, threads);
    // Applied late: 8 seats gone, 8 replies nobody waits for.
    assert!(wait_until(PATIENCE, || server.stats().replies_sent() == threads as u64));
    assert_eq!(queue.stat().unwrap().messages, threads as u64);
    // New calls on the same slots, all in flight at once (the server is
    // paused again until every one is waiting), so between them they take
    // every slot a stale reply waits on: each must skip it for its own.
    let client = server.client().with_timeout_ms(PATIENCE_MS);
    thread::scope(|s| {
        let hold = hold_ledger(s, &server);
        let calls: Vec<_> = (0..threads as u64)
            .map(|t| {
                s.spawn(move || {
                    let receipt = client.reserve_with_id(1, 2, 1_000 + t).unwrap();
                    assert_eq!((receipt.booking.get(), receipt.quantity), (1_000 + t, 2));
                })
            })
            .collect();
        assert!(wait_until(PATIENCE, || server.stats().received == 2 * threads as u64));
        hold.release();
        for call in calls {
            call.join().unwrap();
        }
    });
    assert_eq!(queue.stat().unwrap().messages, 0);
    for t in 0..threads as u64 {
        assert_eq!(client.cancel(1_000 + t).unwrap().quantity, 2);
    }
    assert_eq!(client.query(1).unwrap().remaining, 100 - threads as u32);
    assert_eq!(queue.stat().unwrap().messages, 0);
    stop(server);
}

#[test]
#[serial]
fn a_full_queue_times_the_send_out() {
    let server = Server::builder().event("E", 10).spawn().unwrap();
    let queue = Queue::from_id(server.queue_id());
    // 40 bytes of room, taken by a message of ours the server never reads.
    let max_bytes = queue.stat().unwrap().max_bytes;
    queue.set_max_bytes(40).unwrap();
    let blocker = tag(1);
    queue
        .send(blocker, &[0u8; 40], Some(Instant::now()))
        .unwrap();
    let result = server.client().with_timeout_ms(100).query(1);
    assert!(
        matches!(result, Err(ClientError::Timeout { timeout_ms: 100 })),
        "{result:?}"
    );
    assert_eq!(server.stats().received, 0);
    assert!(server_support::take_message(queue, blocker));
    queue.set_max_bytes(max_bytes).unwrap();
    assert_eq!(server.client().query(1).unwrap().remaining, 10);
    stop(server);
}

/// Takes the next request off `queue` (waiting at most [`PATIENCE_MS`]).
fn take_request(queue: Queue) -> Request {
    let mut buf = MessageBuf::with_body_capacity(BODY_SIZE).unwrap();
    queue
        .recv(REQUEST_MTYPE, &mut buf, Some(deadline_in_ms(PATIENCE_MS)))
        .unwrap();
    decode_request(buf.body()).unwrap()
}

/// Answers `request` OK with `remaining` seats, as a server would.
fn answer(queue: Queue, request: &Request, remaining: u32) {
    let reply = Reply {
        status: Status::Ok,
        request_id: request.request_id,
        booking: None,
        event: EventId::new(1),
        quantity: 0,
        remaining,
        capacity: 10,
    };
    queue
        .send(
            request.reply_to.get(),
            &reply.encode(),
            Some(Instant::now()),
        )
        .unwrap();
}

#[test]
#[serial]
fn a_reply_that_comes_after_a_later_call_returned_is_drained_by_the_next_call() {
    // The server here is the test, so that the late reply can come after
    // the next call on its tag has returned: the one order in which that
    // call cannot take it. The call after does, and returns its own.
    let owned = OwnedQueue::create_private(Mode::DEFAULT).unwrap();
    let queue = owned.queue();
    let client = Client::from_queue(queue).with_timeout_ms(PATIENCE_MS);
    let impatient = client.with_timeout_ms(20);
    assert!(matches!(
        impatient.query(1),
        Err(ClientError::Timeout { timeout_ms: 20 })
    ));
    let late = take_request(queue);
    thread::scope(|s| {
        let (second_done, second_returned) = std::sync::mpsc::channel();
        let server = s.spawn(move || {
            let second = take_request(queue);
            answer(queue, &second, 2);
            second_returned.recv().unwrap();
            // After the second call returned: the first call's reply.
            answer(queue, &late, 1);
            let third = take_request(queue);
            answer(queue, &third, 3);
        });
        assert_eq!(client.query(1).unwrap().remaining, 2);
        second_done.send(()).unwrap();
        assert!(wait_until(PATIENCE, || queue.stat().unwrap().messages == 1));
        assert_eq!(
            client.query(1).unwrap().remaining,
            3,
            "not the third call's reply"
        );
        server.join().unwrap();
    });
    assert_eq!(queue.stat().unwrap().messages, 0, "the late reply was left");
    owned.remove().unwrap();
}
