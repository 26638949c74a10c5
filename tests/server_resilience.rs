//! The server against the failures issue 4 names: clients that die (or
//! stop reading) with replies unread, a second server on the same key, and
//! the queue removed under load by someone else.
//!
//! Every test here is `#[serial]`: some count this process's threads by
//! name or its panics, which other servers running alongside would skew.

use guichet_testkit::fixture as server_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Barrier};
use std::thread;
use std::time::Duration;

use guichet::server::{Dispatch, Limits, Server, ServerError};
use guichet::sysv::{Queue, SysvError};
use guichet::{Client, ClientError};
use serial_test::serial;

use server_support::{
    assert_queue_gone, count_panics, dead_pid, live_calls, panics, scale, send_raw, stop, tag,
    threads_named, wait_until, RawRequest, MODES, PATIENCE, PATIENCE_MS,
};

#[test]
#[serial]
fn replies_a_live_client_stopped_reading_are_purged_once_stale() {
    let server = Server::builder()
        .event("Big", 1_000_000)
        .limits(Limits {
            stale_reply_ms: 200,
            // A live call's reply waits for room until the silent tag has
            // gone stale and been purged; how long that takes on a busy
            // machine is the scheduler's to say (it took over the default
            // 1 s once, in a loaded run), so the test does not bound it.
            reply_timeout_ms: PATIENCE_MS,
            ..Limits::default()
        })
        .spawn()
        .unwrap();
    let queue = Queue::from_id(server.queue_id());
    // This process is alive, so its silent tag is only purged once it has
    // had nothing sent for stale_reply_ms.
    let silent = tag(77);
    let requests = 1_000u64;
    let stop_early = AtomicBool::new(false);
    let (live, slowest) = thread::scope(|s| {
        let live = s.spawn(|| {
            live_calls(
                server.client().with_timeout_ms(PATIENCE_MS),
                50,
                &stop_early,
            )
        });
        for i in 0..requests {
            send_raw(queue, &RawRequest::query(silent, i, 1).bytes());
        }
        stop_early.store(true, Ordering::Relaxed);
        live.join().unwrap()
    });
    server
        .client()
        .with_timeout_ms(PATIENCE_MS)
        .query(1)
        .unwrap();
    // Replies still in flight (waiting for room) finish first.
    let total = requests + live + 1;
    assert!(
        wait_until(PATIENCE, || {
            let stats = server.stats();
            stats.received == total && stats.replies_sent() + stats.replies_abandoned == total
        }),
        "{:?}",
        server.stats()
    );
    let stats = server.stats();
    let left = queue.stat().unwrap().messages;
    eprintln!("slowest live call {slowest:?}, {left} left, {stats:?}");
    assert!(stats.replies_purged > 0, "{stats:?}");
    // Nothing is lost silently: each reply to the silent tag was sent and
    // then purged or left queued, or abandoned (and counted).
    let silent_sent = requests - stats.replies_abandoned;
    assert_eq!(stats.replies_sent(), silent_sent + live + 1, "{stats:?}");
    assert_eq!(stats.replies_purged + left, silent_sent, "{stats:?}");
    stop(server);
}

/// Loads a server from `threads` client threads until each gets an error;
/// returns the errors.
fn load_until_error(client: Client, threads: usize, started: &Barrier) -> Vec<ClientError> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    started.wait();
                    let mut n = 0u64;
                    loop {
                        let result = match n % 3 {
                            0 => client.query(1).map(|_| ()),
                            1 => client.reserve(1, 1).map(|_| ()),
                            _ => client
                                .reserve_with_id(1, 1, (t as u64) << 32 | n)
                                .map(|_| ()),
                        };
                        match result {
                            Ok(()) | Err(ClientError::SoldOut { .. }) => n += 1,
                            Err(e) => return e,
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
#[serial]
fn the_queue_removed_under_load_stops_the_server_with_a_clear_error() {
    count_panics();
    let panics_before = panics();
    for (use_wait, mode) in [
        (true, MODES[0]),
        (true, MODES[1]),
        (true, MODES[2]),
        (false, MODES[0]),
    ] {
        let server = Server::builder()
            .event("Big", 1_000_000)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let id = server.queue_id();
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        let threads = 8;
        let started = Barrier::new(threads + 1);
        let answered = AtomicU64::new(0);
        let errors = thread::scope(|s| {
            let load = s.spawn(|| load_until_error(client, threads, &started));
            started.wait();
            // Some load first, then the queue goes, as with `ipcrm -q`.
            assert!(wait_until(PATIENCE, || server.stats().replies_sent() >= 500));
            answered.store(server.stats().replies_sent(), Ordering::Relaxed);
            Queue::from_id(id).remove().unwrap();
            load.join().unwrap()
        });
        // Every client thread saw the queue go, none waited out its timeout.
        assert_eq!(errors.len(), threads);
        for e in &errors {
            assert!(matches!(e, ClientError::QueueGone(_)), "{mode}: {e}");
        }
        assert!(matches!(client.query(1), Err(ClientError::QueueGone(_))));
        // The receive loops return by themselves (no spinning on a dead id).
        assert!(
            wait_until(PATIENCE, || threads_named("guichet-recv") == 0),
            "{mode}: receive loops still running"
        );
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let result = if use_wait {
                server.wait()
            } else {
                server.shutdown()
            };
            tx.send(result).unwrap();
        });
        match rx.recv_timeout(PATIENCE) {
            Ok(Err(ServerError::QueueRemoved(e))) => {
                assert!(matches!(e, SysvError::QueueRemoved { .. }), "{mode}: {e}");
                let message = ServerError::QueueRemoved(e).to_string();
                assert!(message.contains("removed"), "{message}");
            }
            Ok(other) => panic!("{mode}: {other:?}"),
            Err(_) => panic!("{mode}: wait/shutdown did not return"),
        }
        // Detached request threads and the sweeper end too.
        assert!(
            wait_until(PATIENCE, || threads_named("guichet-") == 0),
            "{mode}: server threads still running"
        );
        assert_queue_gone(id);
        eprintln!(
            "{mode}: removed after {} replies",
            answered.load(Ordering::Relaxed)
        );
    }
    assert_eq!(panics(), panics_before, "a thread panicked");
}

#[test]
#[serial]
fn the_queue_removed_while_idle_stops_the_server_too() {
    for mode in MODES {
        let server = Server::builder()
            .event("E", 1)
            .dispatch(mode)
            .spawn()
            .unwrap();
        server.client().query(1).unwrap();
        Queue::from_id(server.queue_id()).remove().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || tx.send(server.wait()).unwrap());
        match rx.recv_timeout(PATIENCE) {
            Ok(Err(ServerError::QueueRemoved(_))) => {}
            other => panic!("{mode}: {other:?}"),
        }
    }
}

#[test]
#[serial]
fn a_queue_left_exactly_full_of_dead_replies_does_not_wedge_the_server() {
    // Each request frees exactly the room its reply takes, so a queue can
    // end up full of replies to a dead client with no reply of the
    // server's waiting for room. Nothing the server sends then finds the
    // queue full, yet no client request can get in.
    for mode in MODES {
        let server = Server::builder()
            .event("Big", 1_000_000)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        queue.set_max_bytes(80).unwrap(); // two 40-byte messages
        let dead = dead_pid();
        for i in 0..2 {
            send_raw(queue, &RawRequest::query(dead, i, 1).bytes());
            assert!(wait_until(PATIENCE, || server.stats().replies_sent() == i + 1));
        }
        assert_eq!(queue.stat().unwrap().messages, 2, "{mode}");
        // The live call must get in and be answered.
        let result = server.client().with_timeout_ms(PATIENCE_MS).query(1);
        assert!(result.is_ok(), "{mode}: {result:?}: {:?}", server.stats());
        let stats = stop(server);
        assert!(stats.replies_purged >= 1, "{mode}: {stats:?}");
    }
}
/// Reply tags the server remembers for purging.
const TRACKED_TAGS: usize = guichet::server::Limits::TRACKED_REPLY_TAGS;

#[test]
#[serial]
fn a_dead_client_is_purged_after_the_server_has_answered_many_distinct_tags() {
    // A long-lived server answers many distinct tags (every `guichet`
    // command is a new pid, every thread of a client a new slot). After
    // that, a client that dies with replies unread must still be purged.
    // Its replies are never stale within the test (the server must find
    // the client dead, not idle).
    let server = Server::builder()
        .event("Big", 1_000_000)
        .limits(Limits {
            stale_reply_ms: guichet::server::Limits::MAX_TIMEOUT_MS,
            ..Limits::default()
        })
        .spawn()
        .unwrap();
    let queue = Queue::from_id(server.queue_id());
    let distinct = TRACKED_TAGS as u64 + 1_000;
    let read = AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..distinct {
                let reply = server_support::recv_reply(queue, tag(i as u32), PATIENCE_MS);
                assert_eq!(reply.request_id.0, i);
                read.store(i + 1, Ordering::Release);
            }
        });
        for i in 0..distinct {
            // At most 100 replies outstanding: the queue never fills here.
            while i >= read.load(Ordering::Acquire) + 100 {
                thread::yield_now();
            }
            send_raw(queue, &RawRequest::query(tag(i as u32), i, 1).bytes());
        }
    });
    // A reply is counted right after its msgsnd(2), which a reader blocked
    // in msgrcv(2) can beat: waited for.
    assert!(
        wait_until(PATIENCE, || server.stats().replies_sent() == distinct),
        "{:?}",
        server.stats()
    );
    assert_eq!(server.stats().replies_abandoned, 0, "{:?}", server.stats());

    // The dead client's requests go in one at a time, each only once the
    // server has answered the one before, so the queue holds nothing but
    // its replies (and one request at most). A flood sent all at once can
    // fill the queue with requests instead: then a reply to the dead
    // client finds it full with nothing of its own to purge and is
    // abandoned at once, by design (nobody reads it), and how many are
    // depends only on the scheduler. Paced, the outcome is exact: each
    // time the queue is full of the dead client's replies, the next
    // request cannot get in until the server purges them (the sweeper
    // sees the queue full and idle), which it can only because the dead
    // client's tag is still tracked after all those distinct tags.
    let queue_messages: u64 = 50;
    queue
        .set_max_bytes(queue_messages * RawRequest::query(0, 0, 1).bytes().len() as u64)
        .unwrap();
    let dead = dead_pid();
    let dead_requests = 3 * queue_messages + 7;
    for i in 0..dead_requests {
        send_raw(queue, &RawRequest::query(dead, i, 1).bytes());
        assert!(
            wait_until(PATIENCE, || server.stats().replies_sent()
                == distinct + i + 1),
            "dead request {i} not answered: {:?}",
            server.stats()
        );
    }

    // A live client is still answered, whatever the dead one left.
    let (live, slowest) = live_calls(
        server.client().with_timeout_ms(PATIENCE_MS),
        30,
        &AtomicBool::new(false),
    );
    eprintln!("slowest live call {slowest:?}");
    assert_eq!(live, 30);

    // What is left in the queue is the dead client's (the live one read
    // its replies); the counts are final once the server has stopped (a
    // purge counts its replies after it took them).
    let left = queue.stat().unwrap().messages;
    let stats = stop(server);
    eprintln!("{left} replies left; {stats:?}");
    assert_eq!(stats.replies_abandoned, 0, "{stats:?}");
    assert!(stats.replies_purged >= 3 * queue_messages, "{stats:?}");
    assert_eq!(stats.replies_purged + left, dead_requests, "{stats:?}");
}

/// Answers `count` distinct tags from `first` on, reading each reply at
/// once (at most 100 outstanding, so the queue never fills).
fn answer_distinct_tags(queue: Queue, first: u32, count: u32) {
    let read = AtomicU64::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..count {
                let reply = server_support::recv_reply(queue, tag(first + i), PATIENCE_MS);
                assert_eq!(reply.request_id.0, u64::from(i));
                read.store(u64::from(i) + 1, Ordering::Release);
            }
        });
        for i in 0..count {
            while u64::from(i) >= read.load(Ordering::Acquire) + 100 {
                thread::yield_now();
            }
            send_raw(
                queue,
                &RawRequest::query(tag(first + i), u64::from(i), 1).bytes(),
            );
        }
    });
}

#[test]
#[serial]
fn a_purge_under_way_never_takes_a_reply_sent_to_a_stale_tag_after_it_began() {
    // A client idle for stale_reply_ms that calls again on the same tag
    // (client slots are reused last-in first-out) has a stale tag. A purge
    // that found the tag stale must not take the reply the server sends
    // it meanwhile: the client is alive and waiting for it. (A RESERVE
    // whose reply is lost that way books seats under an id nobody knows.)
    //
    // The purge here is the sweeper's, over thousands of stale tags, so it
    // runs long enough for the waiting clients' requests to get in through
    // the room it makes and be answered while it still runs.
    // Long enough that no waiter, however descheduled, leaves its reply
    // unread that long.
    let stale_reply_ms = 300;
    let waiters = 32u32;
    let filler = 32u32; // unread replies that fill the queue
    let tags = scale(10_000, 30_000) as u32;
    for (round, mode) in MODES.into_iter().enumerate() {
        let server = Server::builder()
            .event("Big", 1_000_000)
            .dispatch(mode)
            .limits(Limits {
                stale_reply_ms,
                ..Limits::default()
            })
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let first = round as u32 * (tags + waiters + filler) + 1_000_000;
        // The waiters' tags among thousands of others, all answered, then
        // idle.
        answer_distinct_tags(queue, first, waiters + tags);
        // Replies nobody reads, for the purge to remove.
        let fill_first = first + waiters + tags;
        // Counted from what was asked, not read from the counters: a
        // snapshot may lag a reply its client already has (the count
        // follows the send), and then the sum below is never reached.
        let answered = u64::from(waiters + tags);
        for i in 0..filler {
            send_raw(
                queue,
                &RawRequest::query(tag(fill_first + i), u64::from(i), 1).bytes(),
            );
        }
        assert!(wait_until(PATIENCE, || server.stats().replies_sent()
            == answered + u64::from(filler)));
        // Every tag the server knows turns stale. The queue has room
        // meanwhile, so nothing purges them yet.
        thread::sleep(Duration::from_millis(u64::from(stale_reply_ms) * 3 / 2));
        // Now it is full (of the unread replies alone): the waiters' requests
        // block, the server goes idle, and the sweeper purges.
        let full = u64::from(filler) * 40;
        assert_eq!(queue.stat().unwrap().bytes, full, "{mode}");
        queue.set_max_bytes(full).unwrap();
        let before = server.stats();
        let lost: Vec<String> = thread::scope(|s| {
            let calls: Vec<_> = (0..waiters)
                .map(|w| {
                    s.spawn(move || {
                        let to = tag(first + w);
                        let request_id = 1_000 + u64::from(w);
                        // Blocks until the sweeper makes room.
                        send_raw(queue, &RawRequest::query(to, request_id, 1).bytes());
                        match server_support::try_recv_reply(queue, to, PATIENCE_MS) {
                            Ok(reply) => {
                                assert_eq!(reply.request_id.0, request_id);
                                None
                            }
                            Err(e) => Some(format!("waiter {w}: {e}")),
                        }
                    })
                })
                .collect();
            calls
                .into_iter()
                .filter_map(|c| c.join().unwrap())
                .collect()
        });
        let stats = server.stats();
        eprintln!("{mode}: before {before:?}\n after {stats:?}");
        assert!(lost.is_empty(), "{mode}: replies lost: {lost:?}; {stats:?}");
        // The sweep may still be running: it removes every unread reply.
        assert!(
            wait_until(PATIENCE, || server.stats().replies_purged
                == u64::from(filler)),
            "{mode}: {:?}",
            server.stats()
        );
        queue.set_max_bytes(16_384).unwrap();
        stop(server);
    }
}

#[test]
#[serial]
fn an_eviction_never_takes_a_reply_sent_after_it_picked_the_tag() {
    // Past Limits::TRACKED_REPLY_TAGS the server forgets the tags answered
    // longest ago and removes their unread replies. Clients whose tags are
    // among those, calling again just then, are alive and waiting: the
    // replies they get meanwhile must not be removed with the old ones.
    // Not sequential: its one thread both evicts and answers, so no reply
    // can be sent while it evicts.
    let waiters = 32u32;
    for (round, mode) in [
        Dispatch::ThreadPerRequest,
        Dispatch::Pool(4),
        Dispatch::Pool(2),
    ]
    .into_iter()
    .enumerate()
    {
        let server = Server::builder()
            .event("Big", 1_000_000)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let first = round as u32 * (TRACKED_TAGS as u32 + waiters + 1) + 2_000_000;
        // The waiters' tags are the oldest; the table is then exactly full.
        answer_distinct_tags(queue, first, waiters);
        answer_distinct_tags(queue, first + waiters, TRACKED_TAGS as u32 - waiters);
        let trigger = tag(first + TRACKED_TAGS as u32);
        let start = Barrier::new(waiters as usize + 1);
        let lost: Vec<String> = thread::scope(|s| {
            let calls: Vec<_> = (0..waiters)
                .map(|w| {
                    let start = &start;
                    s.spawn(move || {
                        let to = tag(first + w);
                        let request_id = 1_000 + u64::from(w);
                        start.wait();
                        send_raw(queue, &RawRequest::query(to, request_id, 1).bytes());
                        match server_support::try_recv_reply(queue, to, PATIENCE_MS) {
                            Ok(reply) => {
                                assert_eq!(reply.request_id.0, request_id);
                                None
                            }
                            Err(e) => Some(format!("waiter {w}: {e}")),
                        }
                    })
                })
                .collect();
            // One tag more than the table holds: right after its reply is
            // sent, the server picks the oldest quarter of the tags and
            // removes their replies, one tag after another, while the
            // waiters call.
            send_raw(queue, &RawRequest::query(trigger, 7, 1).bytes());
            server_support::recv_reply(queue, trigger, PATIENCE_MS);
            start.wait();
            calls
                .into_iter()
                .filter_map(|c| c.join().unwrap())
                .collect()
        });
        let stats = server.stats();
        eprintln!("{mode}: {stats:?}");
        assert!(lost.is_empty(), "{mode}: replies lost: {lost:?}; {stats:?}");
        stop(server);
    }
}
