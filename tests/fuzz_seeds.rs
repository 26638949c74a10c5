//! The fuzz seeds (`fuzz/seeds/<target>/`) and dictionary (`fuzz/guichet.dict`)
//! are generated here from the codec and `guichet_testkit::fuzz::input`, so they
//! cannot drift from the wire format: this test fails if the committed files
//! differ from what the code generates now. To rewrite them:
//!
//! ```sh
//! GUICHET_REGENERATE_SEEDS=1 cargo test --test fuzz_seeds
//! ```
//!
//! Seeds are starting points, not a corpus: one valid message of each op
//! and of each status, one body breaking each rule of the decoder, and
//! short sessions that drive the server and the ledger through every status.
//! The test also checks that they do reach all of that.

use guichet_testkit::ids;

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::fs;
use std::path::{Path, PathBuf};

use guichet::__testkit::{handle_message, listing_text, ReserveText};
use guichet::classic::{decode_classic_reply, decode_classic_request, ClassicDrop, ClassicRequest};
use guichet::ledger::ManualClock;
use guichet::wire::Field;
use guichet::wire::{
    Op, RequestBody, ANSWERABLE_PREFIX, BODY_SIZE, MAGIC, MIN_REPLY_TO, SERVER_BOOKING_BIT, VERSION,
};
use guichet::{
    decode_request, BookingId, Operation, Reply, ReplyTo, Request, RequestId, Status, Violation,
};
use guichet_testkit::fuzz::input::{self, Setup};
use zerocopy::IntoBytes;

const OP_QUERY: u16 = Op::Query.code();
const OP_RESERVE: u16 = Op::Reserve.code();
const OP_CANCEL: u16 = Op::Cancel.code();
const OP_HOLD: u16 = Op::Hold.code();
const OP_CONFIRM: u16 = Op::Confirm.code();

const REGENERATE: &str = "GUICHET_REGENERATE_SEEDS";

use ids::{client, event, qty, server};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn query(e: u32) -> Operation {
    Operation::Query { event: event(e) }
}

fn reserve(e: u32, q: u32, booking: Option<u64>) -> Operation {
    Operation::Reserve {
        event: event(e),
        quantity: qty(q),
        booking: booking.map(client),
    }
}

fn hold(e: u32, q: u32, booking: Option<u64>) -> Operation {
    Operation::Hold {
        event: event(e),
        quantity: qty(q),
        booking: booking.map(client),
    }
}

fn cancel(booking: BookingId) -> Operation {
    Operation::Cancel { booking }
}

/// A request from the client with pid 4242, slot `tag`, tagged `tag`.
fn request(tag: u32, operation: Operation) -> Request {
    Request {
        reply_to: ReplyTo::for_slot(4242, tag).expect("positive pid"),
        request_id: RequestId(u64::from(tag)),
        operation,
    }
}

/// The valid requests, one per op (and both kinds of RESERVE and CANCEL).
fn valid_requests() -> Vec<(&'static str, Request)> {
    vec![
        ("query", request(1, query(1))),
        ("reserve-server-id", request(2, reserve(1, 2, None))),
        ("reserve-client-id", request(3, reserve(2, 1, Some(7)))),
        ("cancel-server-id", request(4, cancel(server(1)))),
        ("cancel-client-id", request(5, cancel(client(7).into()))),
        ("hold-server-id", request(6, hold(1, 2, None))),
        ("hold-client-id", request(7, hold(2, 1, Some(8)))),
        (
            "confirm-client-id",
            request(
                8,
                Operation::Confirm {
                    booking: client(8).into(),
                },
            ),
        ),
    ]
}

/// One reply per status, its fields as a server fills them for that status.
fn replies() -> Vec<Reply> {
    Status::ALL
        .iter()
        .map(|&status| {
            let mut reply = Reply::bare(status, RequestId(0x1234));
            let booking = Some(server(1));
            let event = Some(event(1));
            match status {
                Status::Ok => {
                    (reply.booking, reply.event, reply.quantity) = (booking, event, 2);
                    (reply.remaining, reply.capacity) = (3, 5);
                }
                Status::SoldOut
                | Status::LedgerFull
                | Status::BookingConflict
                | Status::BookingCancelled
                | Status::HoldExpired => {
                    reply.event = event;
                    (reply.remaining, reply.capacity) = (1, 5);
                    if matches!(
                        status,
                        Status::BookingConflict | Status::BookingCancelled | Status::HoldExpired
                    ) {
                        reply.booking = Some(client(7).into());
                    }
                }
                Status::UnknownEvent => reply.event = Some(guichet::EventId::new(9).expect("9")),
                Status::UnknownBooking => reply.booking = booking,
                Status::InvalidRequest | Status::BadMessage | Status::ShuttingDown => {}
            }
            reply
        })
        .collect()
}

/// A valid RESERVE's raw body, to break one rule at a time.
fn raw() -> RequestBody {
    request(9, reserve(1, 1, None)).to_wire()
}

/// Request bodies that each break one rule, named after it, with the
/// violation the decoder must report first.
fn bad_requests() -> Vec<(String, Vec<u8>, Violation)> {
    let good = raw().as_bytes().to_vec();
    let mut out: Vec<(String, Vec<u8>, Violation)> = Vec::new();
    for len in [
        0,
        3,
        ANSWERABLE_PREFIX - 1,
        ANSWERABLE_PREFIX,
        BODY_SIZE - 1,
    ] {
        out.push((
            format!("short-{len}"),
            good[..len].to_vec(),
            Violation::Length { len },
        ));
    }
    for len in [BODY_SIZE + 1, 64] {
        let mut body = good.clone();
        body.resize(len, 0xAA);
        out.push((format!("long-{len}"), body, Violation::Length { len }));
    }
    let mut framed = |name: &str, f: &dyn Fn(&mut RequestBody), violation: Violation| {
        let mut body = raw();
        f(&mut body);
        out.push((name.to_string(), body.as_bytes().to_vec(), violation));
    };
    framed(
        "magic",
        &|b| b.magic = MAGIC.swap_bytes(),
        Violation::Magic {
            found: MAGIC.swap_bytes(),
        },
    );
    framed(
        "version",
        &|b| b.version = VERSION + 1,
        Violation::Version { found: VERSION + 1 },
    );
    framed("op-0", &|b| b.op = 0, Violation::Op { found: 0 });
    framed(
        "op-6",
        &|b| b.op = OP_CONFIRM + 1,
        Violation::Op {
            found: OP_CONFIRM + 1,
        },
    );
    framed(
        "reply-to-1",
        &|b| b.reply_to = MIN_REPLY_TO - 1,
        Violation::ReplyTo { found: 1 },
    );
    framed(
        "reply-to-negative",
        &|b| b.reply_to = -5,
        Violation::ReplyTo { found: -5 },
    );
    use guichet::wire::Op;
    let query_raw = |b: &mut RequestBody| {
        b.op = OP_QUERY;
        b.quantity = 0;
    };
    framed(
        "query-booking-set",
        &|b| {
            query_raw(b);
            b.booking_id = 7;
        },
        Violation::NotZero {
            op: Op::Query,
            field: Field::BookingId,
            found: 7,
        },
    );
    framed(
        "query-event-0",
        &|b| {
            query_raw(b);
            b.event_id = 0;
        },
        Violation::Missing {
            op: Op::Query,
            field: Field::EventId,
        },
    );
    framed(
        "query-quantity-set",
        &|b| {
            query_raw(b);
            b.quantity = 3;
        },
        Violation::NotZero {
            op: Op::Query,
            field: Field::Quantity,
            found: 3,
        },
    );
    framed(
        "reserve-server-bit",
        &|b| b.booking_id = SERVER_BOOKING_BIT | 1,
        Violation::ServerBookingBit {
            found: SERVER_BOOKING_BIT | 1,
        },
    );
    framed(
        "reserve-event-0",
        &|b| b.event_id = 0,
        Violation::Missing {
            op: Op::Reserve,
            field: Field::EventId,
        },
    );
    framed(
        "reserve-quantity-0",
        &|b| b.quantity = 0,
        Violation::Missing {
            op: Op::Reserve,
            field: Field::Quantity,
        },
    );
    let cancel_raw = |b: &mut RequestBody| {
        b.op = OP_CANCEL;
        b.booking_id = 7;
        b.event_id = 0;
        b.quantity = 0;
    };
    framed(
        "cancel-booking-0",
        &|b| {
            cancel_raw(b);
            b.booking_id = 0;
        },
        Violation::Missing {
            op: Op::Cancel,
            field: Field::BookingId,
        },
    );
    framed(
        "cancel-event-set",
        &|b| {
            cancel_raw(b);
            b.event_id = 1;
        },
        Violation::NotZero {
            op: Op::Cancel,
            field: Field::EventId,
            found: 1,
        },
    );
    framed(
        "cancel-quantity-set",
        &|b| {
            cancel_raw(b);
            b.quantity = 2;
        },
        Violation::NotZero {
            op: Op::Cancel,
            field: Field::Quantity,
            found: 2,
        },
    );
    assert_eq!(raw().op, OP_RESERVE);
    out
}

/// A session of requests, one message each, tagged 1, 2, 3…
fn session(operations: &[Operation]) -> Vec<(Vec<u8>, bool)> {
    operations
        .iter()
        .zip(1..)
        .map(|(&op, tag)| (request(tag, op).encode().to_vec(), false))
        .collect()
}

/// The server's sessions (`handle`) and the ledger's sequences (`ledger`),
/// named, with their set-up: together they reach every ledger status.
fn scenarios() -> Vec<(&'static str, Setup, Vec<Operation>)> {
    let small = Setup {
        capacities: vec![5, 2],
        max_bookings: 16,
    };
    let one_booking = Setup {
        capacities: vec![3],
        max_bookings: 1,
    };
    let huge = Setup {
        capacities: vec![u32::MAX, u32::MAX - 1],
        max_bookings: guichet::Ledger::DEFAULT_MAX_BOOKINGS,
    };
    vec![
        (
            "session",
            small,
            vec![
                query(1),
                reserve(1, 2, None),
                reserve(1, 2, Some(7)),
                reserve(1, 2, Some(7)), // idempotent retry: OK, no change
                reserve(1, 3, Some(7)), // BOOKING_CONFLICT
                reserve(2, 3, None),    // SOLD_OUT
                query(8),               // UNKNOWN_EVENT
                reserve(8, 1, None),    // UNKNOWN_EVENT
                cancel(server(1)),
                cancel(server(1)), // already cancelled: OK, no change
                cancel(client(7).into()),
                reserve(1, 2, Some(7)),   // BOOKING_CANCELLED
                cancel(client(5).into()), // UNKNOWN_BOOKING
                cancel(server(2)),        // UNKNOWN_BOOKING: never issued
                query(1),
            ],
        ),
        (
            "ledger-full",
            one_booking,
            vec![
                reserve(1, 1, None),
                reserve(1, 1, Some(3)), // LEDGER_FULL
                cancel(server(1)),
                reserve(1, 1, None), // cancelled bookings still count: LEDGER_FULL
            ],
        ),
        (
            "huge",
            huge,
            vec![
                reserve(1, u32::MAX, None),
                reserve(1, 1, None), // SOLD_OUT at 0 remaining
                reserve(2, u32::MAX, Some(input::LARGEST_CLIENT_ID)), // SOLD_OUT by one
                reserve(2, u32::MAX - 1, Some(input::LARGEST_CLIENT_ID)),
                cancel(BookingId::new(u64::MAX).expect("non-zero")),
                cancel(server(1)),
                query(1),
                query(u32::MAX),
            ],
        ),
    ]
}

/// The holds scenario: each step says whether [`input::HOLD_MS`] pass
/// before it (only before ops whose record has room for a pause: QUERY,
/// CANCEL, CONFIRM). Reaches every HOLD and CONFIRM outcome.
fn hold_scenario() -> (&'static str, Setup, Vec<(bool, Operation)>) {
    let confirm = |booking: BookingId| Operation::Confirm { booking };
    let setup = Setup {
        capacities: vec![4, 1],
        max_bookings: 16,
    };
    let steps = vec![
        (false, hold(1, 2, Some(1))),
        (false, hold(1, 2, Some(1))),    // retry: OK, no change
        (false, reserve(1, 2, Some(1))), // made by HOLD: BOOKING_CONFLICT
        (false, hold(1, 2, None)),
        (false, hold(1, 1, None)), // SOLD_OUT while held
        (false, confirm(client(1).into())),
        (false, confirm(client(1).into())), // already confirmed: OK, no change
        (false, hold(2, 1, Some(2))),
        (false, cancel(client(2).into())),
        (false, confirm(client(2).into())), // BOOKING_CANCELLED
        (false, hold(2, 1, Some(3))),
        (true, query(1)),                   // server(1)'s hold expired: 2 seats back
        (false, confirm(server(1))),        // HOLD_EXPIRED
        (false, cancel(server(1))),         // HOLD_EXPIRED
        (false, hold(2, 1, Some(3))),       // HOLD_EXPIRED
        (false, confirm(client(5).into())), // UNKNOWN_BOOKING
        (false, query(2)),
    ];
    ("holds", setup, steps)
}

/// Every generated file, by path under `fuzz/`.
fn generate() -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |path: String, bytes: Vec<u8>| {
        assert!(
            files.insert(PathBuf::from(path), bytes).is_none(),
            "duplicate seed name"
        );
    };

    // decode: valid requests, replies of every status, and every broken rule.
    for (name, request) in valid_requests() {
        put(
            format!("seeds/decode/request-{name}"),
            request.encode().to_vec(),
        );
    }
    for reply in replies() {
        let name = reply.status.name().to_lowercase().replace('_', "-");
        put(
            format!("seeds/decode/reply-{name}"),
            reply.encode().to_vec(),
        );
    }
    let mut bad_status = replies()[0].to_wire();
    bad_status.status = Status::ALL.len() as u16;
    put(
        "seeds/decode/reply-bad-status".into(),
        bad_status.as_bytes().to_vec(),
    );
    for (name, body, _) in bad_requests() {
        put(format!("seeds/decode/bad-{name}"), body);
    }

    // roundtrip: `arbitrary` reads any bytes; a few unlike byte patterns.
    put("seeds/roundtrip/zeros".into(), vec![0; 128]);
    put("seeds/roundtrip/ones".into(), vec![0xFF; 128]);
    put("seeds/roundtrip/counting".into(), (0..=255).collect());

    // handle and ledger: the scenarios, and for handle the malformed bodies
    // and a request while shutting down.
    for (name, setup, operations) in scenarios() {
        let header = setup.header().expect("scenario set-ups fit the header");
        let mut handle = header.to_vec();
        for (body, shutting_down) in session(&operations) {
            handle.extend(input::message(&body, shutting_down).expect("40-byte body"));
        }
        put(format!("seeds/handle/{name}"), handle);
        let mut ledger = header.to_vec();
        for op in &operations {
            ledger.extend(input::record(op).expect("scenario values fit the records"));
        }
        put(format!("seeds/ledger/{name}"), ledger);
    }
    let (name, setup, steps) = hold_scenario();
    let header = setup.header().expect("fits");
    let (mut handle, mut ledger) = (header.to_vec(), header.to_vec());
    for ((pass, op), tag) in steps.iter().zip(1..) {
        let mut message = input::message(&request(tag, *op).encode(), false).expect("40 bytes");
        let mut record = input::record(op).expect("scenario values fit the records");
        if *pass {
            message[0] |= input::PASS_CTL;
            record[3] = u8::try_from(input::HOLD_MS).expect("small");
            assert_eq!(
                input::pause_ms(record),
                input::HOLD_MS,
                "{op:?} takes no pause"
            );
        }
        handle.extend(message);
        ledger.extend(record);
    }
    put(format!("seeds/handle/{name}"), handle);
    put(format!("seeds/ledger/{name}"), ledger);
    let header = scenarios()[0].1.header().expect("fits");
    let mut malformed = header.to_vec();
    for (_, body, _) in bad_requests() {
        if let Some(message) = input::message(&body, false) {
            malformed.extend(message);
        }
    }
    put("seeds/handle/malformed".into(), malformed);
    let mut stopping = header.to_vec();
    for (i, (body, _)) in session(&[reserve(1, 1, None), query(1)])
        .into_iter()
        .enumerate()
    {
        stopping.extend(input::message(&body, i == 0).expect("40-byte body"));
    }
    put("seeds/handle/shutting-down".into(), stopping);

    for (name, bytes) in classic_seeds() {
        put(format!("seeds/classic/{name}"), bytes);
    }

    put("guichet.dict".into(), dictionary().into_bytes());
    files
}

/// A classic fuzz input: the mtype's 8 native bytes, then the body.
fn classic_input(mtype: i64, body: &[u8]) -> Vec<u8> {
    let mut input = mtype.to_ne_bytes().to_vec();
    input.extend_from_slice(body);
    input
}

/// The classic target's seeds: each request, each malformed kind CLASSIC.md
/// names (wrong sizes, mtypes 3, 4, 6 to 9, an over-long body), and each
/// reply text in its 512-byte body.
fn classic_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    for (name, request) in [
        ("request-list", ClassicRequest::List),
        (
            "request-reserve",
            ClassicRequest::Reserve {
                id_spec: 0,
                nb_places: 2,
            },
        ),
        (
            "request-reserve-negative",
            ClassicRequest::Reserve {
                id_spec: -1,
                nb_places: -3,
            },
        ),
        ("request-quit", ClassicRequest::Quit),
    ] {
        let (mtype, body) = request.encode();
        seeds.push((name.to_owned(), classic_input(mtype, &body)));
    }
    let (_, list) = ClassicRequest::List.encode();
    for len in [0, 12, 15, 17, 24, 64] {
        let mut body = list.to_vec();
        body.resize(len, 0xA5);
        seeds.push((format!("bad-length-{len}"), classic_input(1, &body)));
    }
    for mtype in [3, 4, 6, 7, 8, 9, 0, -9] {
        seeds.push((format!("bad-mtype-{mtype}"), classic_input(mtype, &list)));
    }
    let long_name = "É".repeat(32);
    let texts = [
        (
            "listing",
            10,
            listing_text([("Concert", 100), ("Opéra", 0)]),
        ),
        (
            "listing-full",
            10,
            listing_text(std::iter::repeat_n((long_name.as_str(), u32::MAX), 20)),
        ),
        (
            "reserve-ok",
            11,
            ReserveText::Booked {
                seats: 2,
                name: "Concert",
            }
            .text(),
        ),
        (
            "reserve-sold-out",
            11,
            ReserveText::SoldOut { remaining: 1 }.text(),
        ),
        ("reserve-invalid-id", 11, ReserveText::InvalidId.text()),
        (
            "reserve-invalid-count",
            11,
            ReserveText::InvalidCount.text(),
        ),
        ("reserve-unavailable", 11, ReserveText::Unavailable.text()),
    ];
    for (name, mtype, text) in texts {
        seeds.push((
            format!("reply-{name}"),
            classic_input(mtype, &text.encode()),
        ));
    }
    seeds
}

/// The classic seeds reach every verdict of the request decoder and every
/// reply text.
#[test]
fn classic_seeds_reach_every_verdict() {
    let mut verdicts = BTreeSet::new();
    for (_, input) in classic_seeds() {
        let mtype = i64::from_ne_bytes(input[..8].try_into().expect("8 bytes"));
        let verdict = match decode_classic_request(mtype, &input[8..]) {
            Ok(ClassicRequest::List) => "list",
            Ok(ClassicRequest::Reserve { .. }) => "reserve",
            Ok(ClassicRequest::Quit) => "quit",
            Err(ClassicDrop::Length { .. }) => "length",
            Err(ClassicDrop::Mtype { .. }) => "mtype",
        };
        verdicts.insert(verdict);
        if let Ok(reply) = decode_classic_reply(mtype, &input[8..]) {
            verdicts.insert(if reply.text.as_str().starts_with("OK") {
                "ok-text"
            } else {
                "other-text"
            });
        }
    }
    assert_eq!(
        verdicts.into_iter().collect::<Vec<_>>(),
        [
            "length",
            "list",
            "mtype",
            "ok-text",
            "other-text",
            "quit",
            "reserve"
        ]
    );
}

/// libFuzzer's dictionary: the wire's magic, version, op and status codes,
/// framing headers and boundary values, as the native bytes they travel as.
fn dictionary() -> String {
    fn entry(out: &mut String, name: &str, bytes: &[u8]) {
        let escaped: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
        out.push_str(&format!("{name}=\"{escaped}\"\n"));
    }
    let mut out = String::from(
        "# libFuzzer dictionary for guichet wire v1 (native byte order).\n\
         # Generated by tests/fuzz_seeds.rs; do not edit: run\n\
         # GUICHET_REGENERATE_SEEDS=1 cargo test --test fuzz_seeds\n",
    );
    entry(&mut out, "magic", &MAGIC.to_ne_bytes());
    entry(&mut out, "version", &VERSION.to_ne_bytes());
    for (name, op) in [
        ("query", OP_QUERY),
        ("reserve", OP_RESERVE),
        ("cancel", OP_CANCEL),
        ("hold", OP_HOLD),
        ("confirm", OP_CONFIRM),
    ] {
        entry(&mut out, &format!("op_{name}"), &op.to_ne_bytes());
        let mut header = MAGIC.to_ne_bytes().to_vec();
        header.extend(VERSION.to_ne_bytes());
        header.extend(op.to_ne_bytes());
        entry(&mut out, &format!("header_{name}"), &header);
    }
    for status in Status::ALL {
        let name = status.name().to_lowercase();
        entry(
            &mut out,
            &format!("status_{name}"),
            &status.code().to_ne_bytes(),
        );
        let mut header = MAGIC.to_ne_bytes().to_vec();
        header.extend(VERSION.to_ne_bytes());
        header.extend(status.code().to_ne_bytes());
        entry(&mut out, &format!("reply_header_{name}"), &header);
    }
    entry(&mut out, "reply_to_min", &MIN_REPLY_TO.to_ne_bytes());
    entry(
        &mut out,
        "reply_to_below_min",
        &(MIN_REPLY_TO - 1).to_ne_bytes(),
    );
    entry(
        &mut out,
        "server_booking_bit",
        &SERVER_BOOKING_BIT.to_ne_bytes(),
    );
    entry(
        &mut out,
        "server_booking_1",
        &(SERVER_BOOKING_BIT | 1).to_ne_bytes(),
    );
    entry(&mut out, "u32_max", &u32::MAX.to_ne_bytes());
    entry(&mut out, "u64_max", &u64::MAX.to_ne_bytes());
    // The `handle` target's control bytes for a whole 40-byte body.
    let len = u8::try_from(BODY_SIZE).expect("40 fits a byte");
    entry(&mut out, "handle_message_40", &[len]);
    entry(
        &mut out,
        "handle_message_40_stopping",
        &[input::SHUTTING_DOWN_CTL | len],
    );
    entry(
        &mut out,
        "handle_message_40_after_a_hold",
        &[input::PASS_CTL | len],
    );
    out
}

/// Every file under `dir`, by path relative to `base`.
fn read_tree(base: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("readable directory").path();
        if path.is_dir() {
            read_tree(base, &path, into);
        } else {
            let bytes = fs::read(&path).expect("readable seed");
            let relative = path.strip_prefix(base).expect("under base").to_path_buf();
            into.insert(relative, bytes);
        }
    }
}

#[test]
fn committed_seeds_and_dictionary_are_up_to_date() {
    let fuzz = fuzz_dir();
    let expected = generate();
    if std::env::var_os(REGENERATE).is_some() {
        let seeds = fuzz.join("seeds");
        if seeds.exists() {
            fs::remove_dir_all(&seeds).expect("remove old seeds");
        }
        for (path, bytes) in &expected {
            let path = fuzz.join(path);
            fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            fs::write(&path, bytes).expect("write seed");
        }
        eprintln!("wrote {} files under {}", expected.len(), fuzz.display());
    }
    let mut found = BTreeMap::new();
    read_tree(&fuzz, &fuzz.join("seeds"), &mut found);
    if let Ok(dict) = fs::read(fuzz.join("guichet.dict")) {
        found.insert(PathBuf::from("guichet.dict"), dict);
    }
    let paths: BTreeSet<&PathBuf> = expected.keys().chain(found.keys()).collect();
    let stale: Vec<String> = paths
        .into_iter()
        .filter(|p| expected.get(*p) != found.get(*p))
        .map(|p| {
            let state = match (expected.contains_key(p), found.contains_key(p)) {
                (true, false) => "missing",
                (false, true) => "not generated any more",
                _ => "different",
            };
            format!("fuzz/{} ({state})", p.display())
        })
        .collect();
    assert!(
        stale.is_empty(),
        "the fuzz seeds are out of date with the codec:\n  {}\nregenerate them with \
         `{REGENERATE}=1 cargo test --test fuzz_seeds` and commit the result",
        stale.join("\n  ")
    );
}

#[test]
fn decode_seeds_cover_every_op_status_and_broken_rule() {
    for (name, request) in valid_requests() {
        assert_eq!(decode_request(&request.encode()), Ok(request), "{name}");
    }
    let ops: BTreeSet<u16> = valid_requests()
        .iter()
        .map(|(_, r)| r.operation.op().code())
        .collect();
    assert_eq!(
        ops,
        BTreeSet::from([OP_QUERY, OP_RESERVE, OP_CANCEL, OP_HOLD, OP_CONFIRM])
    );
    let statuses: Vec<Status> = replies().iter().map(|r| r.status).collect();
    assert_eq!(statuses, Status::ALL);
    for (name, body, violation) in bad_requests() {
        let error = decode_request(&body).expect_err(&name);
        assert_eq!(*error.violation(), violation, "{name}");
    }
}

/// Replays each `handle` seed through the server core and collects the
/// statuses answered: every status must be reached, SHUTTING_DOWN, the
/// decoder's and the ledger's, and some message must be dropped.
#[test]
fn handle_seeds_reach_every_status() {
    let mut statuses = BTreeSet::new();
    let mut dropped = 0;
    for (path, bytes) in generate() {
        if !path.starts_with("seeds/handle") {
            continue;
        }
        let (setup, rest) = Setup::read(&bytes);
        let clock = ManualClock::new(0);
        let mut ledger = setup.ledger_on(&clock).expect("valid set-up");
        for ((body, shutting_down), pause_ms) in input::timed_messages(rest) {
            clock.advance_ms(pause_ms);
            let handled = handle_message(body, shutting_down, |op| {
                Ok::<_, Infallible>(ledger.apply(op))
            })
            .expect("infallible");
            match handled.status() {
                Some(status) => {
                    statuses.insert(status);
                }
                None => dropped += 1,
            }
        }
    }
    assert_eq!(statuses, Status::ALL.into_iter().collect());
    assert!(dropped > 0, "no seed message is dropped");
}

/// The `ledger` seeds reach every status the ledger itself answers.
#[test]
fn ledger_seeds_reach_every_ledger_status() {
    let mut statuses = BTreeSet::new();
    for (path, bytes) in generate() {
        if !path.starts_with("seeds/ledger") {
            continue;
        }
        let (setup, body) = Setup::read(&bytes);
        let clock = ManualClock::new(0);
        let mut ledger = setup.ledger_on(&clock).expect("valid set-up");
        for (pause_ms, op) in input::steps(body) {
            clock.advance_ms(pause_ms);
            statuses.insert(ledger.apply(&op).status());
        }
    }
    let ledger_statuses: BTreeSet<Status> = Status::ALL
        .into_iter()
        .filter(|s| {
            !matches!(
                s,
                Status::InvalidRequest | Status::BadMessage | Status::ShuttingDown
            )
        })
        .collect();
    assert_eq!(statuses, ledger_statuses);
}

/// The set-ups and records the seeds use read back as written.
#[test]
fn input_encoders_invert_the_readers() {
    for (name, setup, operations) in scenarios() {
        let header = setup.header().expect("fits");
        assert_eq!(Setup::read(&header).0, setup, "{name}");
        for op in operations {
            let record = input::record(&op).expect("fits");
            assert_eq!(input::operation(record), op, "{name}");
        }
    }
    // And every record reads back to itself through the encoder, where the
    // encoder can express it (it picks one canonical byte per value).
    for kind in 0..3u8 {
        for a in 0..=255u8 {
            for b in [0, 1, 7, 0xF8, 0xFF] {
                for c in [0, 1, 8, 0xFF] {
                    let op = input::operation([kind, a, b, c]);
                    let record = input::record(&op).expect("pools are expressible");
                    assert_eq!(input::operation(record), op);
                }
            }
        }
    }
}
