//! The server with real client and server processes of the `guichet`
//! command: client processes racing for the last seats, client processes
//! that die with replies unread, and a second server refused on a taken key.
//!
//! These live with the command because they run its binary.

mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use guichet::server::{Dispatch, Server, ServerError};
use guichet::sysv::{Queue, SysvError};
use guichet::{Client, Status};
use serial_test::serial;

use support::{
    assert_invariants, assert_queue_gone, dead_pid, guichet, hold_ledger, keyed_server, live_calls,
    scale, send_raw, stop, take_message, wait_until, RawRequest, ServeProcess, MODES, PATIENCE,
    PATIENCE_MS,
};

#[test]
#[serial]
fn replies_left_by_dead_clients_are_purged_and_live_clients_still_answered() {
    let flood = scale(3_000, 30_000) as u64;
    for mode in MODES {
        let (server, _key_file) =
            keyed_server(Server::builder().event("Big", 1_000_000).dispatch(mode));
        let queue = Queue::from_id(server.queue_id());
        let key = server.key().to_string();

        // Real client processes that give up after 1 ms and exit: the
        // server is held (ledger locked) until they are all gone, so each
        // leaves its reply behind, on tag (pid << 32) | 1 (a fresh
        // process's first slot).
        let cli_clients = 12;
        let dead_children: Vec<u32> = thread::scope(|s| {
            let hold = hold_ledger(s, &server);
            let children: Vec<_> = (0..cli_clients)
                .map(|_| {
                    guichet()
                        .args(["query", "1", "--timeout-ms", "1", "--key", &key])
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            let mut pids = Vec::new();
            for child in children {
                let pid = child.id();
                let out = child.wait_with_output().unwrap();
                assert_eq!(out.status.code(), Some(2), "{mode}: {out:?}");
                assert!(String::from_utf8_lossy(&out.stderr).contains("no reply within"));
                pids.push(pid);
            }
            // Pool and sequential modes hold some requests in the queue
            // rather than in flight: they are answered after the release.
            hold.release();
            pids
        });
        assert!(
            wait_until(PATIENCE, || server.stats().replies_sent() == cli_clients),
            "{mode}: {:?}",
            server.stats()
        );

        // Then thousands of requests whose replies go to a reaped child's
        // pid, while a live client keeps calling.
        let dead = dead_pid();
        let stop_early = AtomicBool::new(false);
        let (live, slowest) = thread::scope(|s| {
            let live = s.spawn(|| {
                live_calls(
                    server.client().with_timeout_ms(PATIENCE_MS),
                    200,
                    &stop_early,
                )
            });
            let base = server.stats().received;
            for i in 0..flood {
                // A pool or sequential server cannot place a live reply
                // while the queue is all requests and every worker waits
                // (the single-queue limit noted below): for them the flood
                // stays at most ~100 requests (plus the live ones) ahead,
                // so the rest of the queue fills with dead replies to purge.
                if mode != Dispatch::ThreadPerRequest {
                    while i >= server.stats().received - base + 100 {
                        thread::sleep(Duration::from_micros(50));
                    }
                }
                let reply_to = match i % 3 {
                    0 => dead,
                    n => (dead << 32) | n as i64,
                };
                send_raw(queue, &RawRequest::query(reply_to, i, 1).bytes());
            }
            stop_early.store(true, Ordering::Relaxed);
            live.join().unwrap()
        });
        // One more live call sits behind the whole flood.
        server
            .client()
            .with_timeout_ms(PATIENCE_MS)
            .query(1)
            .unwrap();
        // Requests still in flight (thread-per-request, pool) finish: a
        // pool worker may still hold a flood request it took before the
        // last live call, not even counted yet.
        let dead_replies = cli_clients + flood;
        let total = dead_replies + live + 1;
        assert!(
            wait_until(PATIENCE, || {
                let stats = server.stats();
                stats.received == total && stats.replies_sent() + stats.replies_abandoned == total
            }),
            "{mode}: {:?}",
            server.stats()
        );
        let stats = server.stats();
        let left = queue.stat().unwrap().messages;
        eprintln!("{mode}: slowest live call {slowest:?}, {left} left, {stats:?}");
        assert!(stats.replies_purged > 0, "{mode}: {stats:?}");
        // Every live call was answered (a failed one fails the test), so
        // whatever was abandoned was a dead client's: when a reply finds the
        // queue full and nothing to purge, a reply to a dead client is
        // given up at once (counted) rather than hold its worker. (Unpaced,
        // a pool or sequential server whose workers all hold live replies
        // in a queue the flood filled with requests can only give them up
        // after reply_timeout_ms: nobody receives to make room.)
        // Every reply to a dead client was sent and is either purged or
        // still queued, or was abandoned and counted.
        let dead_sent = stats.replies_sent() - live - 1;
        assert_eq!(dead_sent + stats.replies_abandoned, dead_replies, "{mode}");
        assert_eq!(stats.replies_purged + left, dead_sent, "{mode}: {stats:?}");
        // The replies of the CLI processes, the first left, went first.
        for pid in dead_children {
            assert!(
                !take_message(queue, (i64::from(pid) << 32) | 1),
                "{mode}: reply of dead process {pid} still queued"
            );
        }
        assert_invariants(&server);
        stop(server);
    }
}

#[test]
#[serial]
fn a_second_server_on_the_same_key_is_refused_and_the_first_keeps_serving() {
    let (first, _key_file) = keyed_server(Server::builder().event("E", 5));
    let key = first.key();
    let id = first.queue_id();
    let client = first.client().with_timeout_ms(PATIENCE_MS);
    client.reserve(1, 2).unwrap();

    // In the library: a typed error naming the key.
    for mode in MODES {
        match Server::builder()
            .event("E", 5)
            .key(key)
            .dispatch(mode)
            .spawn()
        {
            Err(ServerError::QueueExists { key: k }) => assert_eq!(k, key),
            Err(e) => panic!("{mode}: {e}"),
            Ok(second) => panic!("{mode}: a second server started: {second:?}"),
        }
    }
    // The command: non-zero exit, the message on stderr.
    let out = guichet()
        .args(["serve", "--key", &key.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stderr.contains("already exists") && stderr.contains(&key.to_string()),
        "{stderr}"
    );
    // The refusals did not touch the first server's queue.
    assert_eq!(first.queue_id(), id);
    assert_eq!(client.query(1).unwrap().remaining, 3);
    assert_eq!(Client::open(key).unwrap().query(1).unwrap().remaining, 3);
    stop(first);
    assert_queue_gone(id);
    // And the key is free again.
    assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
}

#[test]
#[serial]
fn a_second_guichet_serve_is_refused_and_the_first_keeps_serving() {
    let (serve, key_file) = ServeProcess::start_fresh(&["--event", "E=5"]);
    let key = key_file.key;
    match ServeProcess::start(key, &["--event", "E=5"]) {
        Ok(second) => panic!(
            "a second guichet serve started on {key}: {:?}",
            second.stdout_lines
        ),
        Err(failed) => {
            assert_eq!(failed.status.and_then(|s| s.code()), Some(2), "{failed:?}");
            assert!(failed.stderr.contains("already exists"), "{failed:?}");
        }
    }
    let client = Client::open(key).unwrap().with_timeout_ms(PATIENCE_MS);
    assert_eq!(client.reserve(1, 1).unwrap().remaining, 4);
    support::send_signal(serve.pid(), "TERM");
    let (status, _, stderr) = serve.wait(PATIENCE);
    assert!(status.success(), "{status}: {stderr}");
    assert!(matches!(Queue::open(key), Err(SysvError::NotFound { .. })));
}

#[test]
fn client_processes_race_for_the_last_seats() {
    let capacity = 9;
    let processes = scale(24, 96);
    for mode in MODES {
        let (server, _key_file) =
            keyed_server(Server::builder().event("Tiny", capacity).dispatch(mode));
        let key = server.key().to_string();
        // All the processes are started before any is waited for.
        let children: Vec<_> = (0..processes)
            .map(|_| {
                guichet()
                    .args(["reserve", "1", "1", "--key", &key, "--timeout-ms"])
                    .arg(PATIENCE_MS.to_string())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut by_code: HashMap<Option<i32>, usize> = HashMap::new();
        for child in children {
            let out = child.wait_with_output().unwrap();
            let code = out.status.code();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            match code {
                Some(0) => assert!(stdout.starts_with("reserved booking"), "{stdout}"),
                Some(1) => assert!(stderr.contains("SOLD_OUT"), "{stderr}"),
                _ => panic!("{mode}: exit {code:?}: {stdout} {stderr}"),
            }
            *by_code.entry(code).or_default() += 1;
        }
        assert_eq!(by_code.get(&Some(0)), Some(&(capacity as usize)), "{mode}");
        assert_eq!(
            by_code.get(&Some(1)),
            Some(&(processes - capacity as usize)),
            "{mode}"
        );
        assert_eq!(server.client().query(1).unwrap().remaining, 0);
        assert_invariants(&server);
        let stats = stop(server);
        assert_eq!(stats.replies(Status::Ok), u64::from(capacity) + 1, "{mode}");
    }
}
