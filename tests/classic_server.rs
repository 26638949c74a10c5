//! The classic protocol served beside wire v1 (`Builder::classic_key`), on
//! private queues: both protocols booking the same events at once, a
//! linearizable history across both, malformed messages, quits, a flood of
//! unread replies. Every wait has a generous deadline; nothing here depends
//! on timing.

mod support;

use guichet_testkit::fixture::deadline_in_ms;
use std::num::NonZeroU32;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use guichet::classic::{
    decode_classic_reply, ClassicRequest, MTYPE_LIST_REPLY, MTYPE_RESERVE_REPLY, REPLY_BODY_SIZE,
};
use guichet::server::{Dispatch, Server};
use guichet::sysv::{Key, MessageBuf, Queue};
use guichet::Ledger;
use guichet::{ClientError, EventId, Operation, RequestId};

use support::history::{
    ClassicCall, ClassicOp, ClassicSeen, Clock, History, Op, Return, ThreadLog,
};
use support::linearizability::Checker;

/// Every wait of a test: far beyond what any of them needs.
const DEADLINE_MS: u32 = 60_000;

fn classic_server(dispatch: Dispatch, events: &[(&str, u32)]) -> (Server, Queue) {
    let mut builder = Server::builder()
        .dispatch(dispatch)
        .classic_key(Key::PRIVATE);
    for &(name, capacity) in events {
        builder = builder.event(name, capacity);
    }
    let server = builder.spawn().expect("start the server");
    let queue = Queue::from_id(server.classic_queue_id().expect("classic is on"));
    (server, queue)
}

fn send(queue: Queue, request: ClassicRequest) {
    let (mtype, body) = request.encode();
    queue
        .send(mtype, &body, Some(deadline_in_ms(DEADLINE_MS)))
        .expect("send a classic request");
}

/// The next reply of `mtype`, checked as guichet promises (512 bytes,
/// NUL-terminated UTF-8, zero-filled).
fn receive(queue: Queue, mtype: i64) -> String {
    let mut buf = MessageBuf::with_body_capacity(REPLY_BODY_SIZE + 1).expect("buffer");
    queue
        .recv(mtype, &mut buf, Some(deadline_in_ms(DEADLINE_MS)))
        .expect("a classic reply");
    let reply = decode_classic_reply(mtype, buf.body()).expect("a well-formed classic reply");
    reply.text.as_str().to_owned()
}

fn ask(queue: Queue, request: ClassicRequest) -> String {
    send(queue, request);
    let mtype = match request {
        ClassicRequest::List => MTYPE_LIST_REPLY,
        _ => MTYPE_RESERVE_REPLY,
    };
    receive(queue, mtype)
}

/// A listing's remaining seats, event 1 first.
fn parse_listing(text: &str) -> Vec<u32> {
    let body = text
        .strip_prefix("\n--- SPECTACLES ---\n")
        .unwrap_or_else(|| panic!("not a listing: {text:?}"));
    body.lines()
        .enumerate()
        .map(|(i, line)| {
            let rest = line
                .strip_prefix(&format!("[{i}] "))
                .unwrap_or_else(|| panic!("line {i} of {text:?}"));
            let n = rest
                .rsplit_once(" : ")
                .and_then(|(_, n)| n.strip_suffix(" places"))
                .unwrap_or_else(|| panic!("line {i} of {text:?}"));
            n.parse().expect("a number of seats")
        })
        .collect()
}

/// A reservation's text, read back.
fn parse_reserve(text: &str) -> ClassicSeen {
    let number = |s: &str| s.parse::<u32>().unwrap_or_else(|_| panic!("{text:?}"));
    if let Some(rest) = text.strip_prefix("OK ! ") {
        let (n, _) = rest
            .split_once(" places réservées pour ")
            .expect("an OK text");
        return ClassicSeen::Booked { seats: number(n) };
    }
    if let Some(rest) = text.strip_prefix("ECHEC : Pas assez de places (Reste: ") {
        return ClassicSeen::SoldOut {
            remaining: number(rest.strip_suffix(").").expect("a sold-out text")),
        };
    }
    match text {
        "ECHEC : ID Invalide." => ClassicSeen::InvalidId,
        "ECHEC : Serveur indisponible." => ClassicSeen::Unavailable,
        _ => panic!("unexpected reservation text {text:?}"),
    }
}

// ---- both protocols on one ledger -------------------------------------------

fn both_protocols_book_one_event(dispatch: Dispatch) {
    const CAPACITY: u32 = 300;
    let (server, queue) = classic_server(dispatch, &[("Concert", CAPACITY), ("Opera", 50)]);
    let mut threads = Vec::new();
    // Three classic clients share mtype 11: a reply may reach another of
    // them (the protocol's limit), which the totals do not mind.
    for t in 0..3u32 {
        threads.push(thread::spawn(move || {
            let mut seats = 0u64;
            let mut oks = 0u64;
            for i in 0..40u32 {
                let nb_places = 1 + ((t + i) % 3) as i32;
                let text = ask(
                    queue,
                    ClassicRequest::Reserve {
                        id_spec: 0,
                        nb_places,
                    },
                );
                if let ClassicSeen::Booked { seats: n } = parse_reserve(&text) {
                    seats += u64::from(n);
                    oks += 1;
                }
            }
            (seats, oks)
        }));
    }
    for t in 0..3u32 {
        let client = server.client().with_timeout_ms(DEADLINE_MS);
        threads.push(thread::spawn(move || {
            let mut seats = 0u64;
            let mut oks = 0u64;
            for i in 0..40u32 {
                match client.reserve(1, 1 + (t + i) % 3) {
                    Ok(receipt) => {
                        seats += u64::from(receipt.quantity);
                        oks += 1;
                    }
                    Err(ClientError::SoldOut { .. }) => {}
                    Err(e) => panic!("wire v1 reserve: {e}"),
                }
            }
            (seats, oks)
        }));
    }
    // One classic lister, alone on mtype 10: with no cancel, what remains
    // never grows between its listings.
    let lister = thread::spawn(move || {
        let mut last = u32::MAX;
        for _ in 0..20 {
            let remaining = parse_listing(&ask(queue, ClassicRequest::List));
            assert_eq!(remaining.len(), 2);
            assert!(remaining[0] <= last, "{remaining:?} after {last}");
            assert_eq!(remaining[1], 50);
            last = remaining[0];
        }
    });
    let (mut seats, mut oks) = (0, 0);
    for t in threads {
        let (s, o) = t.join().expect("a client thread");
        seats += s;
        oks += o;
    }
    lister.join().expect("the lister");
    let remaining = server.client().query(1).expect("query").remaining;
    assert_eq!(
        seats,
        u64::from(CAPACITY - remaining),
        "OK seats of both protocols against what the ledger sold"
    );
    assert_eq!(remaining, 0, "demand (about 480 seats) exceeds 300");
    let (bookings, invariants) = server
        .with_ledger(|l| (l.booking_count() as u64, l.check_invariants()))
        .expect("ledger");
    invariants.expect("ledger invariants");
    assert_eq!(bookings, oks, "one booking per OK, whichever protocol");
    let stats = server.shutdown().expect("shutdown");
    let classic = stats.classic.expect("classic counters");
    assert_eq!(classic.received, 140);
    assert_eq!(
        (classic.reservations_sent, classic.listings_sent),
        (120, 20)
    );
}

#[test]
fn classic_and_wire_clients_share_one_ledger_thread_per_request() {
    both_protocols_book_one_event(Dispatch::ThreadPerRequest);
}

#[test]
fn classic_and_wire_clients_share_one_ledger_pool() {
    both_protocols_book_one_event(Dispatch::Pool(2));
}

// ---- linearizability across both protocols ----------------------------------

#[test]
fn a_history_of_both_protocols_is_linearizable() {
    // Room for about as many seats as are asked, so both protocols book
    // until late in the run and the last calls meet SOLD_OUT.
    let capacities = [60u32, 45];
    let (server, queue) = classic_server(Dispatch::Pool(2), &[("e1", 60), ("e2", 45)]);
    let clock = Clock::start();
    let mut wire = Vec::new();
    for t in 0..3usize {
        let client = server.client().with_timeout_ms(DEADLINE_MS);
        wire.push(thread::spawn(move || {
            let mut log = ThreadLog::new(clock, t);
            for i in 0..30u32 {
                let event = EventId::new(1 + (i + t as u32) % 2).expect("non-zero");
                let operation = match i % 3 {
                    0 => Operation::Query { event },
                    _ => Operation::Reserve {
                        event,
                        quantity: NonZeroU32::new(1 + i % 2).expect("non-zero"),
                        booking: None,
                    },
                };
                log.call(&client, operation).expect("a wire v1 call");
            }
            log
        }));
    }
    // One classic client per reply mtype, so each reply is its own.
    let reserver = thread::spawn(move || {
        let mut ops = Vec::new();
        for i in 0..30u32 {
            let id_spec = (i % 3) as i32; // 2: no such event
            let nb_places = 1 + (i % 2) as i32;
            let invoke_ns = clock.now_ns();
            let text = ask(queue, ClassicRequest::Reserve { id_spec, nb_places });
            let at = clock.now_ns();
            ops.push(ClassicOp {
                thread: 10,
                invoke_ns,
                call: ClassicCall::Reserve {
                    event: EventId::new(id_spec as u32 + 1).expect("non-zero"),
                    quantity: NonZeroU32::new(nb_places as u32).expect("positive"),
                },
                ret: Some((at, parse_reserve(&text))),
            });
        }
        ops
    });
    let lister = thread::spawn(move || {
        let mut ops = Vec::new();
        for _ in 0..20 {
            let invoke_ns = clock.now_ns();
            let text = ask(queue, ClassicRequest::List);
            let at = clock.now_ns();
            ops.push(ClassicOp {
                thread: 11,
                invoke_ns,
                call: ClassicCall::List,
                ret: Some((at, ClassicSeen::Listing(parse_listing(&text)))),
            });
        }
        ops
    });
    let mut history = History::merge(wire.into_iter().map(|t| t.join().expect("wire client")));
    history.classic = reserver.join().expect("reserver");
    history.classic.extend(lister.join().expect("lister"));
    // The state the server ended in, as calls that took no time.
    let (ledger, at_ns) = server
        .with_ledger(|l| (l.clone(), clock.now_ns()))
        .expect("ledger");
    for event in ledger.events() {
        history.ops.push(Op {
            thread: 12,
            invoke_ns: at_ns,
            operation: Operation::Query { event: event.id },
            ret: Return::Replied {
                at_ns,
                reply: ledger.query(event.id).reply(RequestId(0)),
            },
        });
    }
    let booked = |seats| {
        history
            .classic
            .iter()
            .filter(|c| {
                c.ret
                    .as_ref()
                    .is_some_and(|(_, s)| *s == ClassicSeen::Booked { seats })
            })
            .count()
    };
    assert!(
        booked(1) > 0 && booked(2) > 0,
        "the run booked too little through the classic queue to check it"
    );
    match Checker::new(&capacities, Ledger::DEFAULT_MAX_BOOKINGS).check(&history) {
        Ok(report) => eprintln!("{report}"),
        Err(failure) => panic!("not linearizable:\n{failure}"),
    }
    server.shutdown().expect("shutdown");
}

/// The server receives with `msgtyp = -9`, lowest mtype first: without
/// care, waiting listings (mtype 1) would all go before a reservation
/// (mtype 2) that arrived among them.
#[test]
fn a_stream_of_listings_does_not_hold_back_a_reservation() {
    let (server, queue) = classic_server(Dispatch::Sequential, &[("Concert", 10)]);
    let lists = 20;
    server
        .with_ledger(|_| {
            // The classic loop takes this listing, then waits for the
            // ledger lock held here while the rest queue up behind it.
            send(queue, ClassicRequest::List);
            let deadline = std::time::Instant::now() + Duration::from_millis(DEADLINE_MS.into());
            while server.stats().classic.expect("classic counters").received == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the listing was never taken"
                );
                thread::sleep(Duration::from_millis(1));
            }
            for _ in 1..lists {
                send(queue, ClassicRequest::List);
            }
            send(
                queue,
                ClassicRequest::Reserve {
                    id_spec: 0,
                    nb_places: 2,
                },
            );
        })
        .expect("ledger");
    assert_eq!(
        receive(queue, MTYPE_RESERVE_REPLY),
        "OK ! 2 places réservées pour Concert."
    );
    let remaining: Vec<u32> = (0..lists)
        .map(|_| parse_listing(&receive(queue, MTYPE_LIST_REPLY))[0])
        .collect();
    assert_eq!(remaining[0], 10, "the listing taken before the reservation");
    assert!(
        remaining[1..].iter().all(|&r| r == 8),
        "{remaining:?}: the reservation waited for the listings queued after it"
    );
    server.shutdown().expect("shutdown");
}

// ---- faults -----------------------------------------------------------------

#[test]
fn malformed_messages_and_quits_are_counted_never_answered() {
    let (server, queue) = classic_server(Dispatch::Sequential, &[("Concert", 10)]);
    let (_, valid) = ClassicRequest::List.encode();
    let mut dropped = 0;
    for len in [0usize, 1, 8, 12, 15, 17, 24, 100, 520, 8192] {
        for mtype in [1, 2] {
            let mut body = valid.to_vec();
            body.resize(len, 0x5A);
            queue
                .send(mtype, &body, Some(deadline_in_ms(DEADLINE_MS)))
                .expect("send a malformed body");
            dropped += 1;
        }
    }
    for mtype in [3, 4, 6, 7, 8, 9] {
        send_raw(queue, mtype, &valid);
        dropped += 1;
    }
    // Quits, with what clients leave in them: never obeyed.
    for _ in 0..3 {
        send_raw(queue, 5, &[0xA5; 16]);
    }
    // Answered in arrival order: when this listing comes, everything before
    // it has been handled, and nothing else may be waiting.
    let listing = ask(queue, ClassicRequest::List);
    assert_eq!(parse_listing(&listing), [10]);
    assert_eq!(
        queue.stat().expect("stat").messages,
        0,
        "something else was answered"
    );
    // The refusals guichet adds, and the server still serving both queues.
    let refused = |id_spec, nb_places| ask(queue, ClassicRequest::Reserve { id_spec, nb_places });
    assert_eq!(refused(0, 0), "ECHEC : Nombre de places invalide.");
    assert_eq!(refused(0, -4), "ECHEC : Nombre de places invalide.");
    assert_eq!(refused(-1, 1), "ECHEC : ID Invalide.");
    assert_eq!(refused(1, 1), "ECHEC : ID Invalide.");
    assert_eq!(refused(i32::MAX, 1), "ECHEC : ID Invalide.");
    assert_eq!(
        refused(0, i32::MAX),
        "ECHEC : Pas assez de places (Reste: 10)."
    );
    assert_eq!(refused(0, 10), "OK ! 10 places réservées pour Concert.");
    assert_eq!(server.client().query(1).expect("wire v1").remaining, 0);
    let stats = server.shutdown().expect("shutdown");
    let classic = stats.classic.expect("classic counters");
    assert_eq!((classic.dropped, classic.quits_ignored), (dropped, 3));
    assert_eq!((classic.listings_sent, classic.reservations_sent), (1, 7));
    assert_eq!(classic.replies_abandoned + classic.replies_discarded, 0);
}

fn send_raw(queue: Queue, mtype: i64, body: &[u8]) {
    queue
        .send(mtype, body, Some(deadline_in_ms(DEADLINE_MS)))
        .expect("send a raw message");
}

#[test]
fn a_flood_of_unread_replies_never_blocks_the_server() {
    let server = Server::builder()
        .event("Concert", 10)
        .classic_key(Key::PRIVATE)
        .reply_timeout_ms(100)
        .spawn()
        .expect("start");
    let queue = Queue::from_id(server.classic_queue_id().expect("classic is on"));
    let fits = queue.stat().expect("stat").max_bytes / REPLY_BODY_SIZE as u64;
    let flood = 3 * fits + 5;
    // A client killed before reading: its listings are never read.
    let (done_tx, done) = mpsc::channel();
    let flooder = thread::spawn(move || {
        let (mtype, body) = ClassicRequest::List.encode();
        for _ in 0..flood {
            queue
                .send(mtype, &body, Some(deadline_in_ms(DEADLINE_MS)))
                .expect("flood");
        }
        let _ = done_tx.send(());
    });
    done.recv_timeout(Duration::from_millis(DEADLINE_MS.into()))
        .expect("the flood's requests all got in: the server kept receiving");
    flooder.join().expect("flooder");
    // Wire v1 is served meanwhile, and a new classic client gets its own
    // reply although unread ones filled the queue.
    assert_eq!(server.client().query(1).expect("wire v1").remaining, 10);
    let text = ask(
        queue,
        ClassicRequest::Reserve {
            id_spec: 0,
            nb_places: 2,
        },
    );
    assert_eq!(text, "OK ! 2 places réservées pour Concert.");
    // Now the wedge: unread replies fill the queue to the last byte, so no
    // request gets in and nothing is sent; the server must make room.
    let mut topped_up = 0;
    while wedge_step(&server, queue) {
        topped_up += 1;
    }
    let text = ask(
        queue,
        ClassicRequest::Reserve {
            id_spec: 0,
            nb_places: 3,
        },
    );
    assert_eq!(text, "OK ! 3 places réservées pour Concert.");
    let stats = server
        .shutdown()
        .expect("a prompt shutdown, queue full or not");
    let classic = stats.classic.expect("classic counters");
    assert_eq!(classic.received, flood + topped_up + 2);
    assert_eq!(
        classic.listings_sent + classic.replies_abandoned,
        flood + topped_up
    );
    assert!(
        classic.replies_discarded >= flood - fits,
        "{} discarded of {flood} listings, {fits} fit",
        classic.replies_discarded
    );
    assert_eq!(classic.reservations_sent, 2);
}

/// If a request still fits in the queue, sends a listing request and waits
/// until its reply is sent (and left unread); returns whether it did.
fn wedge_step(server: &Server, queue: Queue) -> bool {
    let stat = queue.stat().expect("stat");
    if stat.bytes + 16 > stat.max_bytes {
        return false;
    }
    let answered = || {
        let c = server.stats().classic.expect("classic counters");
        c.listings_sent + c.replies_abandoned
    };
    let before = answered();
    send(queue, ClassicRequest::List);
    let deadline = std::time::Instant::now() + Duration::from_millis(DEADLINE_MS.into());
    while answered() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "the listing was never answered"
        );
        thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn a_classic_key_that_exists_refuses_the_start_and_leaves_nothing() {
    let file = tempfile::NamedTempFile::new().expect("key file");
    let key = guichet::sysv::ftok(file.path(), b'k').expect("ftok");
    let existing = guichet::sysv::OwnedQueue::create_exclusive(key, guichet::sysv::Mode::DEFAULT)
        .expect("a queue of our own under the key");
    let wire_key = guichet::sysv::ftok(file.path(), b'w').expect("ftok");
    let refused = Server::builder()
        .event("E", 1)
        .key(wire_key)
        .classic_key(key)
        .spawn();
    let error = refused.expect_err("the classic key is taken");
    assert!(matches!(
        error,
        guichet::server::ServerError::ClassicQueueExists { key: k } if k == key
    ));
    assert!(error
        .to_string()
        .contains("already exists for the classic key"));
    assert!(
        Queue::open(wire_key).is_err(),
        "the wire v1 queue was left behind"
    );
    assert_eq!(existing.stat().expect("untouched").messages, 0);
    existing.remove().expect("remove our queue");
}
