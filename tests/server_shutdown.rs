//! Graceful shutdown (issue 4): requests in flight finish and reply,
//! requests still queued are answered SHUTTING_DOWN, the queue is removed
//! afterwards, and all of it within `shutdown_timeout_ms`.

use guichet_testkit::fixture as server_support;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use guichet::server::{Dispatch, Limits, Server};
use guichet::sysv::{Queue, SysvError};
use guichet::wire::REQUEST_MTYPE;
use guichet::{ClientError, Status};

use server_support::{
    assert_accounted, assert_queue_gone, hold_ledger, recv_reply, send_raw, stop, tag,
    try_recv_reply, wait_until, RawRequest, MODES, PATIENCE, PATIENCE_MS,
};

/// Requests a mode holds in flight when the ledger is locked, with
/// `max_in_flight` 4: thread-per-request has 4 workers waiting for the
/// lock, a pool its workers, sequential its one loop.
fn in_flight_when_locked(mode: Dispatch) -> u64 {
    match mode {
        Dispatch::ThreadPerRequest => 4,
        Dispatch::Pool(n) => n as u64,
        Dispatch::Sequential => 1,
    }
}

#[test]
fn in_flight_requests_finish_and_queued_ones_get_shutting_down() {
    let calls = 12u64;
    for mode in [
        Dispatch::ThreadPerRequest,
        Dispatch::Pool(2),
        Dispatch::Sequential,
    ] {
        let server = Server::builder()
            .event("E", 100)
            .dispatch(mode)
            .max_in_flight(4)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        let queue = Queue::from_id(id);
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let stop = server.stop_handle();
        let in_flight = in_flight_when_locked(mode);
        let (results_tx, results_rx) = mpsc::channel();
        thread::scope(|s| {
            let hold = hold_ledger(s, &server);
            for _ in 0..calls {
                let results_tx = results_tx.clone();
                s.spawn(move || results_tx.send(client.reserve(1, 1)).unwrap());
            }
            // Steady state: `in_flight` requests taken and stuck on the
            // lock, the rest waiting in the queue.
            assert!(
                wait_until(PATIENCE, || {
                    server.stats().received == in_flight
                        && queue.stat().unwrap().messages == calls - in_flight
                }),
                "{mode}: {:?}",
                server.stats()
            );
            stop.stop();
            if mode == Dispatch::ThreadPerRequest {
                // Its receive loop is not stuck: it answers the queued
                // requests while the ones in flight still wait.
                for _ in 0..calls - in_flight {
                    let result = results_rx.recv_timeout(PATIENCE).unwrap();
                    assert!(
                        matches!(result, Err(ClientError::ShuttingDown)),
                        "{result:?}"
                    );
                }
            }
            hold.release();
        });
        let stats = server.wait().unwrap();
        let results: Vec<_> = results_rx.try_iter().collect();
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        let down = results
            .iter()
            .filter(|r| matches!(r, Err(ClientError::ShuttingDown)))
            .count() as u64;
        if mode == Dispatch::ThreadPerRequest {
            assert_eq!((ok, down), (in_flight, 0), "{mode}: {results:?}");
        } else {
            assert_eq!(
                (ok, down),
                (in_flight, calls - in_flight),
                "{mode}: {results:?}"
            );
        }
        assert_eq!(stats.replies(Status::Ok), in_flight, "{mode}: {stats:?}");
        assert_eq!(
            stats.replies(Status::ShuttingDown),
            calls - in_flight,
            "{mode}"
        );
        assert!(stats.peak_in_flight <= 4, "{mode}: {stats:?}");
        assert_accounted(&stats);
        assert_queue_gone(id);
    }
}

#[test]
fn shutdown_under_load_answers_every_call_or_reports_the_queue_gone() {
    for mode in MODES {
        let server = Server::builder()
            .event("E", 1_000_000)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let (first_tx, first_rx) = mpsc::channel();
        let outcomes = thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let first_tx = first_tx.clone();
                    s.spawn(move || {
                        let mut ok = 0u64;
                        loop {
                            match client.reserve(1, 1) {
                                Ok(_) => {
                                    ok += 1;
                                    let _ = first_tx.send(());
                                }
                                Err(e) => return (ok, e),
                            }
                        }
                    })
                })
                .collect();
            first_rx.recv_timeout(PATIENCE).unwrap();
            let start = Instant::now();
            let stats = server.shutdown().unwrap();
            let took = start.elapsed();
            let outcomes: Vec<(u64, ClientError)> =
                handles.into_iter().map(|h| h.join().unwrap()).collect();
            eprintln!("{mode}: shutdown took {took:?}; {stats:?}");
            (outcomes, stats)
        });
        let (outcomes, stats) = outcomes;
        let mut ok = 0;
        for (n, e) in &outcomes {
            ok += n;
            // Answered SHUTTING_DOWN, or the queue was gone by the next
            // call: never a timeout, never another error.
            assert!(
                matches!(e, ClientError::ShuttingDown | ClientError::QueueGone(_)),
                "{mode}: {e}"
            );
        }
        // Every OK the clients saw is one the server sent, and no reply
        // was abandoned.
        assert_eq!(stats.replies(Status::Ok), ok, "{mode}: {stats:?}");
        assert_eq!(stats.replies_abandoned, 0, "{mode}: {stats:?}");
        assert_accounted(&stats);
        assert_queue_gone(id);
    }
}

#[test]
fn every_way_of_stopping_removes_the_queue() {
    for mode in MODES {
        // shutdown()
        let server = Server::builder()
            .event("E", 1)
            .dispatch(mode)
            .spawn()
            .unwrap();
        server.client().query(1).unwrap();
        stop(server);
        // Drop
        let server = Server::builder()
            .event("E", 1)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        server.client().query(1).unwrap();
        drop(server);
        assert_queue_gone(id);
        // StopHandle from another thread, then wait()
        let server = Server::builder()
            .event("E", 1)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        let stop = server.stop_handle();
        thread::spawn(move || stop.stop());
        server.wait().unwrap();
        assert_queue_gone(id);
        // A stop before any request, and an idle server: no wake-up lost.
        let server = Server::builder()
            .event("E", 1)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        server.stop_handle().stop();
        assert!(matches!(
            server.client().with_timeout_ms(PATIENCE_MS).query(1),
            Err(ClientError::ShuttingDown)
        ));
        server.wait().unwrap();
        assert_queue_gone(id);
    }
}

#[test]
fn a_large_pool_stops_every_worker() {
    // A deadline far past the liveness bound below: at the deadline the
    // queue's removal would wake every worker anyway, so only an end well
    // before it shows that each worker was woken by the shutdown itself.
    let deadline_ms = 3 * PATIENCE_MS;
    let server = Server::builder()
        .event("E", 1)
        .dispatch(Dispatch::Pool(guichet::server::Limits::MAX_POOL_WORKERS))
        .limits(Limits {
            shutdown_timeout_ms: deadline_ms,
            ..Limits::default()
        })
        .spawn()
        .unwrap();
    let id = server.queue_id();
    server.client().query(1).unwrap();
    let start = Instant::now();
    stop(server);
    let took = start.elapsed();
    eprintln!(
        "pool of {}: shutdown took {took:?}",
        guichet::server::Limits::MAX_POOL_WORKERS
    );
    assert!(
        took < PATIENCE,
        "only the deadline ended the workers: {took:?}"
    );
    assert_queue_gone(id);
}

/// A server whose next reply cannot fit: the queue holds 64 bytes, a
/// 40-byte message of ours that the server never reads sits in it, and the
/// request is a 24-byte (answerable) one, so its 40-byte BAD_MESSAGE reply
/// finds 24 bytes free until ours is read. The request's worker stays in
/// flight, waiting for room, for as long as the test wants.
fn server_with_a_reply_stuck(limits: Limits) -> (Server, Queue, i64, i64) {
    let server = Server::builder()
        .event("E", 1)
        .limits(limits)
        .spawn()
        .unwrap();
    let queue = Queue::from_id(server.queue_id());
    queue.set_max_bytes(64).unwrap();
    let blocker = tag(901);
    let reply_tag = tag(902);
    queue
        .send(blocker, &[0u8; 40], Some(Instant::now()))
        .unwrap();
    let request = RawRequest::query(reply_tag, 5, 1).bytes();
    send_raw(queue, &request[..24]);
    assert!(wait_until(PATIENCE, || server.stats().received == 1));
    (server, queue, blocker, reply_tag)
}

#[test]
fn shutdown_waits_for_a_reply_in_flight() {
    // Deadlines no loaded machine reaches: the reader makes room 100 ms
    // into the shutdown, and the reply must be waiting for it.
    let (server, queue, blocker, reply_tag) = server_with_a_reply_stuck(Limits {
        reply_timeout_ms: 120_000,
        shutdown_timeout_ms: 120_000,
        ..Limits::default()
    });
    let id = server.queue_id();
    let (begun_tx, begun_rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        // Make room only once the shutdown has begun (told, not guessed by
        // a sleep), and a little later, so that it is waiting by then.
        begun_rx.recv().unwrap();
        thread::sleep(Duration::from_millis(100));
        assert!(server_support::take_message(queue, blocker));
        recv_reply(queue, reply_tag, PATIENCE_MS)
    });
    server.stop_handle().stop();
    begun_tx.send(()).unwrap();
    let stats = stop(server);
    let reply = reader.join().unwrap();
    assert_eq!((reply.status, reply.request_id.0), (Status::BadMessage, 5));
    assert_eq!(stats.replies(Status::BadMessage), 1, "{stats:?}");
    assert_eq!(stats.replies_abandoned, 0, "{stats:?}");
    assert_accounted(&stats);
    assert_queue_gone(id);
}

#[test]
fn shutdown_is_bounded_by_its_timeout_even_with_a_reply_stuck() {
    let (server, queue, _blocker, reply_tag) = server_with_a_reply_stuck(Limits {
        reply_timeout_ms: 120_000,
        shutdown_timeout_ms: 300,
        ..Limits::default()
    });
    let id = server.queue_id();
    let start = Instant::now();
    let result = server.shutdown();
    let took = start.elapsed();
    eprintln!("shutdown with a reply stuck took {took:?}: {result:?}");
    let stats = result.unwrap();
    // The reply that never found room was given up, and counted.
    assert_eq!(stats.replies_abandoned, 1, "{stats:?}");
    assert_accounted(&stats);
    // Liveness bound: far below the 120 s the stuck reply would wait.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_queue_gone(id);
    assert!(try_recv_reply(queue, reply_tag, 0).is_err());
}

#[test]
fn shutdown_is_bounded_while_a_client_keeps_flooding() {
    // Requests of 24 bytes (answerable: BAD_MESSAGE) whose 40-byte replies
    // never fit: the queue holds 64 bytes, 40 of them ours. Every reply,
    // SHUTTING_DOWN included, waits reply_timeout_ms for room that never
    // comes, and the client sends a new request whenever one is taken.
    let server = Server::builder()
        .event("E", 1)
        .limits(Limits {
            reply_timeout_ms: 1_000,
            shutdown_timeout_ms: 300,
            ..Limits::default()
        })
        .spawn()
        .unwrap();
    let id = server.queue_id();
    let queue = Queue::from_id(id);
    queue.set_max_bytes(64).unwrap();
    queue
        .send(tag(911), &[0u8; 40], Some(Instant::now()))
        .unwrap();
    // Ends as soon as the queue is gone; this long only if it never is.
    let flooding_for = Duration::from_secs(120);
    let flooder = thread::spawn(move || {
        let request = RawRequest::query(tag(912), 1, 1).bytes();
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < flooding_for {
            match queue.send(REQUEST_MTYPE, &request[..24], Some(Instant::now())) {
                Ok(()) => sent += 1,
                Err(SysvError::TimedOut { .. }) => thread::sleep(Duration::from_micros(50)),
                Err(_) => break, // the queue is gone
            }
        }
        sent
    });
    assert!(wait_until(PATIENCE, || server.stats().received >= 3));
    let start = Instant::now();
    let result = server.shutdown();
    let took = start.elapsed();
    let sent = flooder.join().unwrap();
    eprintln!("shutdown under a flood took {took:?} ({sent} requests sent): {result:?}");
    let stats = result.unwrap();
    // Liveness bound: the shutdown takes its 300 ms and some, not as long
    // as the client would flood (120 s).
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_accounted(&stats);
    assert_queue_gone(id);
}
