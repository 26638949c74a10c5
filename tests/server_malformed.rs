//! Malformed input through real queues (PROTOCOL.md, "Malformed
//! messages"): every message is answered BAD_MESSAGE or dropped exactly as
//! the spec says, nothing changes in the ledger, and the server keeps
//! answering live clients, in every dispatch mode.

use guichet_testkit::fixture as server_support;

use guichet_testkit::rng;

use std::collections::BTreeMap;
use std::thread;

use guichet::server::{Dispatch, Server};
use guichet::sysv::{Queue, MAX_BODY_BYTES};
use guichet::wire::{MAGIC, VERSION};
use guichet::Status;
use rng::Rng;

use server_support::{
    assert_invariants, fresh_tag, recv_reply, scale, send_raw, snapshot, stop, take_message,
    wait_until, RawRequest, MODES, PATIENCE, PATIENCE_MS,
};

/// What PROTOCOL.md says happens to a body whose framing may be wrong:
/// `Some((reply_to, request_id, status))` if it is answered, `None` if it
/// is dropped. Written from the spec alone; only for bodies that are not
/// well-formed requests (those go to the ledger).
fn spec_outcome(body: &[u8]) -> Option<(i64, u64, Status)> {
    let u32_at = |at: usize| u32::from_ne_bytes(body[at..at + 4].try_into().unwrap());
    let u16_at = |at: usize| u16::from_ne_bytes(body[at..at + 2].try_into().unwrap());
    let i64_at = |at: usize| i64::from_ne_bytes(body[at..at + 8].try_into().unwrap());
    if body.len() < 24 || u32_at(0) != MAGIC || i64_at(8) < 2 {
        return None;
    }
    let framing_ok = body.len() == 40 && u16_at(4) == VERSION && (1..=5).contains(&u16_at(6));
    assert!(!framing_ok, "spec_outcome is for malformed framing only");
    Some((
        i64_at(8),
        u64::from_ne_bytes(body[16..24].try_into().unwrap()),
        Status::BadMessage,
    ))
}

/// A body of `len` bytes: a QUERY of event 1 to `reply_to`, cut or padded
/// with `fill`.
fn framed(len: usize, reply_to: i64, request_id: u64, fill: u8) -> Vec<u8> {
    let mut body = vec![fill; len];
    let query = RawRequest::query(reply_to, request_id, 1).bytes();
    let n = len.min(query.len());
    body[..n].copy_from_slice(&query[..n]);
    body
}

/// Sends every body, then checks each answered one got exactly its reply
/// on `tag` and the others were dropped.
fn check_outcomes(server: &Server, tag: i64, bodies: &[Vec<u8>], mode: Dispatch) {
    let queue = Queue::from_id(server.queue_id());
    let before = server.stats();
    let mut answered: BTreeMap<u64, Status> = BTreeMap::new();
    let mut dropped = 0;
    for body in bodies {
        match spec_outcome(body) {
            Some((to, id, status)) => {
                assert_eq!(to, tag, "bodies answer only to the test's tag");
                assert!(answered.insert(id, status).is_none(), "ids are distinct");
            }
            None => dropped += 1,
        }
    }
    // Replies are read while the bodies go out: a client that stops
    // reading fills the shared queue and is purged as stale.
    let got = thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut got = BTreeMap::new();
            for _ in 0..answered.len() {
                let reply = server_support::try_recv_reply(queue, tag, PATIENCE_MS)
                    .unwrap_or_else(|e| panic!("{mode}: {e}: {:?}", server.stats()));
                // A bare reply: every field but the status and the tag is 0.
                assert_eq!(
                    reply,
                    guichet::Reply::bare(reply.status, reply.request_id),
                    "{mode}"
                );
                assert!(got.insert(reply.request_id.0, reply.status).is_none());
            }
            got
        });
        // Paced: at most ~4 KiB or 64 messages ahead of the server, so the
        // queue always has room for the replies. A sender that fills the
        // queue with requests can make a pool or sequential server give up
        // replies (every worker waits for room nobody frees); that is
        // tested, and counted, in server_resilience.rs, not here.
        let (mut ahead_bytes, mut ahead, mut sent) = (0, 0, 0u64);
        for body in bodies {
            if ahead > 0 && (ahead_bytes + body.len() > 4_096 || ahead == 64) {
                assert!(wait_until(PATIENCE, || {
                    server.stats().received == before.received + sent
                }));
                (ahead_bytes, ahead) = (0, 0);
            }
            send_raw(queue, body);
            (ahead_bytes, ahead, sent) = (ahead_bytes + body.len(), ahead + 1, sent + 1);
        }
        reader.join().unwrap()
    });
    assert_eq!(got, answered, "{mode}");
    // The live query sits behind every message sent above (the server
    // takes type-1 messages in order), so once it is answered all of them
    // were received.
    assert_eq!(
        server
            .client()
            .with_timeout_ms(PATIENCE_MS)
            .query(1)
            .unwrap()
            .remaining,
        5
    );
    assert!(
        wait_until(PATIENCE, || server.stats().dropped - before.dropped
            == dropped),
        "{mode}: dropped {} of {dropped}",
        server.stats().dropped - before.dropped
    );
    assert!(!take_message(queue, tag), "{mode}: an extra reply");
    assert_eq!(
        server.stats().replies_abandoned,
        before.replies_abandoned,
        "{mode}"
    );
}

#[test]
fn lengths_magic_version_and_op() {
    for mode in MODES {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let tag = fresh_tag();
        let before = snapshot(&server);
        let mut bodies = Vec::new();
        let mut id = 0u64;
        let mut next = || {
            id += 1;
            id
        };
        // Every length around the answerable prefix (24) and the body (40),
        // up to the largest message the kernel takes.
        for len in [
            0,
            1,
            3,
            8,
            16,
            23,
            24,
            25,
            39,
            41,
            47,
            48,
            63,
            64,
            65,
            100,
            4096,
            MAX_BODY_BYTES,
        ] {
            bodies.push(framed(len, tag, next(), 0));
            bodies.push(framed(len, tag, next(), 0xff));
        }
        // Wrong magic (dropped: the tag cannot be trusted), at 40 bytes and
        // longer.
        for magic in [0, MAGIC.swap_bytes(), MAGIC + 1, u32::MAX] {
            for len in [40, 64] {
                let mut body = framed(len, tag, next(), 0);
                body[0..4].copy_from_slice(&magic.to_ne_bytes());
                bodies.push(body);
            }
        }
        // Wrong version or op, 40 bytes, good tag: BAD_MESSAGE.
        for version in [0, 2, 0x100, u16::MAX] {
            let raw = RawRequest {
                version,
                ..RawRequest::query(tag, next(), 1)
            };
            bodies.push(raw.bytes().to_vec());
        }
        for op in [0, 6, 0x100, u16::MAX] {
            bodies.push(RawRequest::new(op, tag, next()).bytes().to_vec());
        }
        // The same with a reply_to below 2: dropped.
        for reply_to in [1, 0, -1, i64::MIN] {
            let raw = RawRequest {
                version: 9,
                ..RawRequest::query(reply_to, next(), 1)
            };
            bodies.push(raw.bytes().to_vec());
            bodies.push(framed(41, reply_to, next(), 0));
        }
        check_outcomes(&server, tag, &bodies, mode);
        assert_eq!(snapshot(&server), before, "{mode}: the ledger changed");
        assert_invariants(&server);
        stop(server);
    }
}

#[test]
fn well_framed_requests_with_a_bad_reply_to_are_dropped() {
    for mode in MODES {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let before = snapshot(&server);
        // Well-framed RESERVEs that would change the ledger if applied.
        for reply_to in [1, 0, -1, -2, i64::MIN] {
            send_raw(queue, &RawRequest::reserve(reply_to, 1, 1, 1, 0).bytes());
        }
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        assert_eq!(client.query(1).unwrap().remaining, 5, "{mode}");
        assert!(
            wait_until(PATIENCE, || server.stats().dropped == 5),
            "{mode}"
        );
        assert_eq!(snapshot(&server), before, "{mode}");
        let stats = stop(server);
        assert_eq!(stats.replies_sent(), 1, "{mode}: {stats:?}");
    }
}

#[test]
fn reply_to_the_servers_own_pid_is_answered_there() {
    // The server runs in this process, so its pid is ours: a reply to a
    // plain pid (below 2^32) goes to mtype = pid, and to a tag with slot 0
    // to pid << 32.
    let pid = i64::from(std::process::id());
    for mode in MODES {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        for (reply_to, request_id) in [(pid, 71), (pid << 32, 72)] {
            send_raw(queue, &RawRequest::query(reply_to, request_id, 1).bytes());
            let reply = recv_reply(queue, reply_to, PATIENCE_MS);
            assert_eq!(
                (reply.status, reply.request_id.0, reply.remaining),
                (Status::Ok, request_id, 5),
                "{mode}"
            );
        }
        assert_eq!(server.client().query(1).unwrap().remaining, 5);
        stop(server);
    }
}

#[test]
fn random_bytes_are_answered_or_dropped_as_the_spec_says() {
    let count = scale(1_500, 20_000);
    for (m, mode) in MODES.into_iter().enumerate() {
        let seed = 0x5eed_0000 + m as u64;
        let mut rng = Rng::new(seed);
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let tag = fresh_tag();
        let before = snapshot(&server);
        let mut bodies = Vec::with_capacity(count);
        for i in 0..count as u64 {
            let len = match rng.below(8) {
                0 => rng.below(MAX_BODY_BYTES as u64 + 1),
                1 => 40,
                _ => rng.below(80),
            } as usize;
            let mut body: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            // Half get the right magic, and then mostly our tag, so that
            // the answerable path is exercised too; the framing is then
            // broken on purpose (well-formed requests are tested elsewhere).
            if len >= 4 && rng.below(2) == 0 {
                body[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
                if len >= 24 && rng.below(4) != 0 {
                    body[8..16].copy_from_slice(&tag.to_ne_bytes());
                    body[16..24].copy_from_slice(&i.to_ne_bytes());
                }
                if len == 40 {
                    let version = u16::from_ne_bytes([body[4], body[5]]);
                    let op = u16::from_ne_bytes([body[6], body[7]]);
                    if version == VERSION && (1..=5).contains(&op) {
                        body[6..8].copy_from_slice(&0u16.to_ne_bytes());
                    }
                }
            }
            // A random reply_to that happens to be ours is not: keep every
            // answered body on our tag by construction.
            if let Some((to, _, _)) = spec_outcome(&body) {
                if to != tag {
                    body[8..16].copy_from_slice(&0i64.to_ne_bytes());
                }
            }
            bodies.push(body);
        }
        check_outcomes(&server, tag, &bodies, mode);
        assert_eq!(snapshot(&server), before, "{mode} seed {seed:#x}");
        stop(server);
    }
}

#[test]
fn a_flood_of_empty_messages_is_drained_and_live_clients_are_answered() {
    // Linux caps a queue's message count at msg_qbytes (16384 by default),
    // and empty messages take no bytes: a flood fills the queue by count.
    let flood = scale(20_000, 200_000);
    for mode in [Dispatch::ThreadPerRequest, Dispatch::Sequential] {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let client = server.client().with_timeout_ms(PATIENCE_MS);
        thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..flood {
                    send_raw(queue, &[]);
                }
            });
            // Live calls while the flood goes on; each waits its turn behind
            // the empty messages already queued.
            for _ in 0..5 {
                assert_eq!(client.query(1).unwrap().remaining, 5, "{mode}");
            }
        });
        assert_eq!(client.query(1).unwrap().remaining, 5, "{mode}");
        assert!(
            wait_until(PATIENCE, || server.stats().dropped == flood as u64),
            "{mode}: {:?}",
            server.stats()
        );
        let stats = stop(server);
        assert_eq!(stats.replies_sent(), 6, "{mode}: {stats:?}");
        eprintln!("{mode}: {stats:?}");
    }
}

#[test]
fn a_valid_query_after_each_kind_of_garbage_is_answered() {
    // Interleaved: garbage, a live request, garbage... no garbage message
    // may swallow the request that follows it.
    for mode in MODES {
        let server = Server::builder()
            .event("E", 5)
            .dispatch(mode)
            .spawn()
            .unwrap();
        let queue = Queue::from_id(server.queue_id());
        let tag = fresh_tag();
        let garbage: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff; 7],
            vec![0; 40],
            framed(41, tag, 1_000, 0),
            vec![0xab; MAX_BODY_BYTES],
        ];
        for (i, g) in garbage.iter().enumerate() {
            send_raw(queue, g);
            send_raw(queue, &RawRequest::query(tag, i as u64, 1).bytes());
        }
        let mut ids: Vec<u64> = (0..garbage.len() + 1)
            .map(|_| recv_reply(queue, tag, PATIENCE_MS))
            .map(|r| {
                let want = if r.request_id.0 == 1_000 {
                    Status::BadMessage
                } else {
                    Status::Ok
                };
                assert_eq!(r.status, want, "{mode}: {r:?}");
                r.request_id.0
            })
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, [0, 1, 2, 3, 4, 1_000], "{mode}");
        let stats = stop(server);
        assert_eq!(stats.dropped, 4, "{mode}: {stats:?}");
    }
}
