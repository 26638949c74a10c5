//! quickcheck suite of the wire codec, independent of the proptest suites.
//!
//! Every decoded result is checked against a naive oracle written here from
//! PROTOCOL.md alone: it reads the raw bytes at the offsets the spec gives
//! and predicts, in the order `Violation` documents (length, magic, version,
//! op or status, `reply_to`, then the fields in wire order), which rule a
//! message breaks, and whether the server answers it: only when the body
//! holds the first 24 bytes, the magic is right and `reply_to >= 2`
//! (PROTOCOL.md, *Malformed messages*). Whatever the oracle accepts must
//! decode, and re-encode to exactly the same bytes.
//!
//! Test counts are raised from quickcheck's 100; `QUICKCHECK_TESTS`, when
//! set, replaces them all.

use guichet::wire::{Answer, Field, Op};
use guichet::wire::{MAGIC, VERSION};
use guichet::{
    decode_reply, decode_request, BookingId, ClientBookingId, DecodeError, EventId, Operation,
    Reply, ReplyTo, Request, RequestId, Status, Violation,
};
use quickcheck::{Arbitrary, Gen, QuickCheck};

type Outcome = Result<(), String>;

// ---------------------------------------------------------------------------
// The naive oracle: raw bytes in, expected verdict out.

fn u16_at(body: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([body[at], body[at + 1]])
}

fn u32_at(body: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&body[at..at + 4]);
    u32::from_ne_bytes(b)
}

fn u64_at(body: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[at..at + 8]);
    u64::from_ne_bytes(b)
}

fn i64_at(body: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&body[at..at + 8]);
    i64::from_ne_bytes(b)
}

/// What the oracle expects `decode_request` to say about a request body:
/// `None` if it is valid, else the violation and the answer.
fn request_oracle(body: &[u8]) -> Option<(Violation, Option<Answer>)> {
    // Body offsets (PROTOCOL.md's minus the 8 bytes of mtype).
    const MAGIC_AT: usize = 0;
    const VERSION_AT: usize = 4;
    const OP_AT: usize = 6;
    const REPLY_TO_AT: usize = 8;
    const REQUEST_ID_AT: usize = 16;
    const BOOKING_AT: usize = 24;
    const EVENT_AT: usize = 32;
    const QUANTITY_AT: usize = 36;

    let len = body.len();
    let answerable =
        len >= 24 && u32_at(body, MAGIC_AT) == 0x4743_4854 && i64_at(body, REPLY_TO_AT) >= 2;
    let verdict = |violation: Violation, status: Status| {
        let answer = answerable.then(|| Answer {
            reply_to: ReplyTo::new(i64_at(body, REPLY_TO_AT)).expect(">= 2"),
            request_id: RequestId(u64_at(body, REQUEST_ID_AT)),
            status,
        });
        Some((violation, answer))
    };
    let bad = |violation| verdict(violation, Status::BadMessage);
    let invalid = |violation| verdict(violation, Status::InvalidRequest);

    if len != 40 {
        return bad(Violation::Length { len });
    }
    let magic = u32_at(body, MAGIC_AT);
    if magic != 0x4743_4854 {
        return bad(Violation::Magic { found: magic });
    }
    let version = u16_at(body, VERSION_AT);
    if version != 1 {
        return bad(Violation::Version { found: version });
    }
    let op = match u16_at(body, OP_AT) {
        1 => Op::Query,
        2 => Op::Reserve,
        3 => Op::Cancel,
        4 => Op::Hold,
        5 => Op::Confirm,
        found => return bad(Violation::Op { found }),
    };
    let reply_to = i64_at(body, REPLY_TO_AT);
    if reply_to < 2 {
        return invalid(Violation::ReplyTo { found: reply_to });
    }
    let booking = u64_at(body, BOOKING_AT);
    let event = u32_at(body, EVENT_AT);
    let quantity = u32_at(body, QUANTITY_AT);
    let missing = |field| invalid(Violation::Missing { op, field });
    let not_zero = |field, found| invalid(Violation::NotZero { op, field, found });
    // The fields in wire order: booking_id, event_id, quantity.
    match op {
        Op::Query => {
            if booking != 0 {
                return not_zero(Field::BookingId, booking);
            }
            if event == 0 {
                return missing(Field::EventId);
            }
            if quantity != 0 {
                return not_zero(Field::Quantity, u64::from(quantity));
            }
        }
        Op::Reserve | Op::Hold => {
            if booking >> 63 == 1 {
                return invalid(Violation::ServerBookingBit { found: booking });
            }
            if event == 0 {
                return missing(Field::EventId);
            }
            if quantity == 0 {
                return missing(Field::Quantity);
            }
        }
        Op::Cancel | Op::Confirm => {
            if booking == 0 {
                return missing(Field::BookingId);
            }
            if event != 0 {
                return not_zero(Field::EventId, u64::from(event));
            }
            if quantity != 0 {
                return not_zero(Field::Quantity, u64::from(quantity));
            }
        }
    }
    None
}

/// What the oracle expects `decode_reply` to say about a reply body.
fn reply_oracle(body: &[u8]) -> Option<Violation> {
    if body.len() != 40 {
        return Some(Violation::Length { len: body.len() });
    }
    let magic = u32_at(body, 0);
    if magic != 0x4743_4854 {
        return Some(Violation::Magic { found: magic });
    }
    let version = u16_at(body, 4);
    if version != 1 {
        return Some(Violation::Version { found: version });
    }
    let status = u16_at(body, 6);
    if status > 10 {
        return Some(Violation::Status { found: status });
    }
    None
}

/// Checks `decode_request(body)` against the oracle, in full.
fn check_request(body: &[u8]) -> Outcome {
    let decoded = decode_request(body);
    match (request_oracle(body), decoded) {
        (None, Ok(request)) => {
            if request.encode()[..] != *body {
                return Err(format!(
                    "{body:02x?} decodes to {request:?}, which re-encodes to {:02x?}",
                    request.encode()
                ));
            }
            Ok(())
        }
        (Some((violation, answer)), Err(err)) => {
            let err: DecodeError = err;
            if *err.violation() != violation || err.answer() != answer {
                return Err(format!(
                    "{body:02x?}: decoder says {:?} / {:?}, oracle says {violation:?} / {answer:?}",
                    err.violation(),
                    err.answer()
                ));
            }
            // The violation's own status is the one the oracle would answer with.
            let expected_status = match violation {
                Violation::Length { .. }
                | Violation::Magic { .. }
                | Violation::Version { .. }
                | Violation::Op { .. } => Status::BadMessage,
                _ => Status::InvalidRequest,
            };
            if err.violation().status() != expected_status {
                return Err(format!(
                    "{violation:?} maps to {}",
                    err.violation().status()
                ));
            }
            if let Some(answer) = answer {
                let reply = err.answer().expect("compared equal").reply();
                if reply != Reply::bare(answer.status, answer.request_id) {
                    return Err(format!("answer reply {reply:?}"));
                }
            }
            Ok(())
        }
        (expected, decoded) => Err(format!(
            "{body:02x?}: decoder says {decoded:?}, oracle says {expected:?}"
        )),
    }
}

/// Checks `decode_reply(body)` against the oracle, in full.
fn check_reply(body: &[u8]) -> Outcome {
    match (reply_oracle(body), decode_reply(body)) {
        (None, Ok(reply)) if reply.encode()[..] == *body => Ok(()),
        (Some(expected), Err(found)) if expected == found => Ok(()),
        (expected, decoded) => Err(format!(
            "{body:02x?}: reply decoder says {decoded:?}, oracle says {expected:?}"
        )),
    }
}

// ---------------------------------------------------------------------------
// Generators (wrappers, because of the orphan rule).

fn below(g: &mut Gen, n: u64) -> u64 {
    u64::arbitrary(g) % n
}

fn nonzero_u32(g: &mut Gen) -> u32 {
    match below(g, 4) {
        0 => *g.choose(&[1, 2, u32::MAX]).expect("non-empty"),
        _ => u32::arbitrary(g).max(1),
    }
}

fn nonzero_u64(g: &mut Gen) -> u64 {
    match below(g, 4) {
        0 => *g
            .choose(&[1, (1 << 63) - 1, 1 << 63, (1 << 63) | 1, u64::MAX])
            .expect("non-empty"),
        _ => u64::arbitrary(g).max(1),
    }
}

fn reply_to(g: &mut Gen) -> ReplyTo {
    let raw = match below(g, 4) {
        0 => *g.choose(&[2, 3, i64::MAX, 1 << 32]).expect("non-empty"),
        1 => {
            let pid = i32::arbitrary(g).checked_abs().unwrap_or(1).max(1);
            ReplyTo::for_slot(pid, u32::arbitrary(g))
                .expect("pid > 0")
                .get()
        }
        _ => (u64::arbitrary(g) % (i64::MAX as u64 - 1)) as i64 + 2,
    };
    ReplyTo::new(raw).expect(">= 2")
}

/// Any valid request.
#[derive(Clone, Debug)]
struct AnyRequest(Request);

impl Arbitrary for AnyRequest {
    fn arbitrary(g: &mut Gen) -> Self {
        let event = EventId::new(nonzero_u32(g)).expect("non-zero");
        let operation = match below(g, 3) {
            0 => Operation::Query { event },
            1 => Operation::Reserve {
                event,
                quantity: std::num::NonZeroU32::new(nonzero_u32(g)).expect("non-zero"),
                booking: match bool::arbitrary(g) {
                    false => None,
                    true => ClientBookingId::new((nonzero_u64(g) & !(1 << 63)).max(1)),
                },
            },
            _ => Operation::Cancel {
                booking: BookingId::new(nonzero_u64(g)).expect("non-zero"),
            },
        };
        AnyRequest(Request {
            reply_to: reply_to(g),
            request_id: RequestId(u64::arbitrary(g)),
            operation,
        })
    }
}

/// Any reply.
#[derive(Clone, Debug)]
struct AnyReply(Reply);

impl Arbitrary for AnyReply {
    fn arbitrary(g: &mut Gen) -> Self {
        AnyReply(Reply {
            status: *g.choose(&Status::ALL).expect("non-empty"),
            request_id: RequestId(u64::arbitrary(g)),
            booking: bool::arbitrary(g)
                .then(|| nonzero_u64(g))
                .and_then(BookingId::new),
            event: bool::arbitrary(g)
                .then(|| nonzero_u32(g))
                .and_then(EventId::new),
            quantity: u32::arbitrary(g),
            remaining: u32::arbitrary(g),
            capacity: u32::arbitrary(g),
        })
    }
}

/// Any bytes, 0 to 8192 of them; short lengths and 40 more often.
#[derive(Clone, Debug)]
struct AnyBytes(Vec<u8>);

impl Arbitrary for AnyBytes {
    fn arbitrary(g: &mut Gen) -> Self {
        let len = match below(g, 10) {
            0..=3 => below(g, 65),
            4 => 40,
            _ => below(g, 8193),
        };
        AnyBytes((0..len).map(|_| u8::arbitrary(g)).collect())
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        Box::new(self.0.shrink().map(AnyBytes))
    }
}

/// A 40-byte body biased towards the right magic, version and op (or status)
/// and towards the boundary values of the other fields, so that the deep
/// paths of the decoders are reached.
#[derive(Clone, Debug)]
struct BiasedBody([u8; 40]);

impl BiasedBody {
    /// `valid_codes` are the op (or status) codes that decode; they are
    /// picked 4 times in 5.
    fn arbitrary_with(g: &mut Gen, valid_codes: &[u16]) -> Self {
        let mut body = [0u8; 40];
        for byte in &mut body {
            *byte = u8::arbitrary(g);
        }
        // Each field is set to a chosen value 7 times in 8, else left random.
        let often = |g: &mut Gen| below(g, 8) != 0;
        if often(g) {
            body[0..4].copy_from_slice(&MAGIC.to_ne_bytes());
        }
        if often(g) {
            body[4..6].copy_from_slice(&VERSION.to_ne_bytes());
        }
        if often(g) {
            let code = if below(g, 5) != 0 {
                *g.choose(valid_codes).expect("non-empty")
            } else {
                *g.choose(&[0, 4, 10, u16::MAX]).expect("non-empty")
            };
            body[6..8].copy_from_slice(&code.to_ne_bytes());
        }
        if often(g) {
            let reply_to: i64 = *g
                .choose(&[i64::MIN, -1, 0, 1, 2, 3, 2, 3, i64::MAX, 1 << 32])
                .expect("non-empty");
            body[8..16].copy_from_slice(&reply_to.to_ne_bytes());
        }
        if often(g) {
            let booking: u64 = *g
                .choose(&[0, 0, 0, 1, (1 << 63) - 1, 1 << 63, u64::MAX])
                .expect("non-empty");
            body[24..32].copy_from_slice(&booking.to_ne_bytes());
        }
        for at in [32, 36] {
            if often(g) {
                let value: u32 = *g.choose(&[0, 0, 0, 1, 2, u32::MAX]).expect("non-empty");
                body[at..at + 4].copy_from_slice(&value.to_ne_bytes());
            }
        }
        BiasedBody(body)
    }
}

impl Arbitrary for BiasedBody {
    fn arbitrary(g: &mut Gen) -> Self {
        Self::arbitrary_with(g, &[1, 2, 3, 4, 5])
    }
}

/// Like [`BiasedBody`], for replies: status codes 0 to 10 are the valid ones.
#[derive(Clone, Debug)]
struct BiasedReplyBody([u8; 40]);

impl Arbitrary for BiasedReplyBody {
    fn arbitrary(g: &mut Gen) -> Self {
        BiasedReplyBody(BiasedBody::arbitrary_with(g, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).0)
    }
}

fn quickcheck(default_tests: u64) -> QuickCheck {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_tests);
    QuickCheck::new().tests(tests).max_tests(tests)
}

// ---------------------------------------------------------------------------
// Round trips, and the layout checked byte by byte against the spec's offsets.

#[test]
fn request_round_trips() {
    fn prop(AnyRequest(request): AnyRequest) -> Outcome {
        let body = request.encode();
        let (booking, event, quantity) = match request.operation {
            Operation::Query { event } => (0, event.get(), 0),
            Operation::Reserve {
                event,
                quantity,
                booking,
            }
            | Operation::Hold {
                event,
                quantity,
                booking,
            } => (booking.map_or(0, |b| b.get()), event.get(), quantity.get()),
            Operation::Cancel { booking } | Operation::Confirm { booking } => (booking.get(), 0, 0),
        };
        let op = match request.operation {
            Operation::Query { .. } => 1,
            Operation::Reserve { .. } => 2,
            Operation::Cancel { .. } => 3,
            Operation::Hold { .. } => 4,
            Operation::Confirm { .. } => 5,
        };
        let layout = (
            u32_at(&body, 0),
            u16_at(&body, 4),
            u16_at(&body, 6),
            i64_at(&body, 8),
            u64_at(&body, 16),
            u64_at(&body, 24),
            u32_at(&body, 32),
            u32_at(&body, 36),
        );
        let expected = (
            0x4743_4854,
            1,
            op,
            request.reply_to.get(),
            request.request_id.0,
            booking,
            event,
            quantity,
        );
        if layout != expected {
            return Err(format!("{request:?} laid out as {layout:?}"));
        }
        if decode_request(&body) != Ok(request) {
            return Err(format!(
                "{request:?} decodes as {:?}",
                decode_request(&body)
            ));
        }
        check_request(&body)
    }
    quickcheck(50_000).quickcheck(prop as fn(AnyRequest) -> Outcome);
}

#[test]
fn reply_round_trips() {
    fn prop(AnyReply(reply): AnyReply) -> Outcome {
        let body = reply.encode();
        let layout = (
            u32_at(&body, 0),
            u16_at(&body, 4),
            u16_at(&body, 6),
            u64_at(&body, 8),
            u64_at(&body, 16),
            u32_at(&body, 24),
            u32_at(&body, 28),
            u32_at(&body, 32),
            u32_at(&body, 36),
        );
        let expected = (
            0x4743_4854,
            1,
            reply.status as u16,
            reply.request_id.0,
            reply.booking.map_or(0, BookingId::get),
            reply.event.map_or(0, EventId::get),
            reply.quantity,
            reply.remaining,
            reply.capacity,
        );
        if layout != expected {
            return Err(format!("{reply:?} laid out as {layout:?}"));
        }
        if decode_reply(&body) != Ok(reply) {
            return Err(format!("{reply:?} decodes as {:?}", decode_reply(&body)));
        }
        check_reply(&body)
    }
    quickcheck(50_000).quickcheck(prop as fn(AnyReply) -> Outcome);
}

// ---------------------------------------------------------------------------
// Arbitrary input: no panic, and the oracle's verdict.

#[test]
fn arbitrary_bytes_decode_as_the_oracle_says() {
    fn prop(AnyBytes(body): AnyBytes) -> Outcome {
        check_request(&body)?;
        check_reply(&body)
    }
    quickcheck(20_000).quickcheck(prop as fn(AnyBytes) -> Outcome);
}

#[test]
fn biased_request_bodies_decode_as_the_oracle_says() {
    fn prop(BiasedBody(body): BiasedBody) -> Outcome {
        check_request(&body)
    }
    quickcheck(100_000).quickcheck(prop as fn(BiasedBody) -> Outcome);
}

#[test]
fn biased_reply_bodies_decode_as_the_oracle_says() {
    fn prop(BiasedReplyBody(body): BiasedReplyBody) -> Outcome {
        check_reply(&body)
    }
    quickcheck(100_000).quickcheck(prop as fn(BiasedReplyBody) -> Outcome);
}

// ---------------------------------------------------------------------------
// Every single-byte mutation of a valid message: canonical or the oracle's error.

#[test]
fn every_byte_mutation_of_a_request_is_canonical_or_the_oracle_error() {
    fn prop(AnyRequest(request): AnyRequest) -> Outcome {
        let original = request.encode();
        for at in 0..original.len() {
            for value in 0..=u8::MAX {
                let mut body = original;
                body[at] = value;
                check_request(&body)
                    .map_err(|e| format!("byte {at} of {request:?} set to {value:#04x}: {e}"))?;
            }
        }
        Ok(())
    }
    quickcheck(1_000).quickcheck(prop as fn(AnyRequest) -> Outcome);
}

#[test]
fn every_byte_mutation_of_a_reply_is_canonical_or_the_oracle_error() {
    fn prop(AnyReply(reply): AnyReply) -> Outcome {
        let original = reply.encode();
        for at in 0..original.len() {
            for value in 0..=u8::MAX {
                let mut body = original;
                body[at] = value;
                check_reply(&body)
                    .map_err(|e| format!("byte {at} of {reply:?} set to {value:#04x}: {e}"))?;
            }
        }
        Ok(())
    }
    quickcheck(1_000).quickcheck(prop as fn(AnyReply) -> Outcome);
}

// ---------------------------------------------------------------------------
// Truncations and extensions.

#[test]
fn truncated_or_extended_requests_are_length_errors() {
    fn prop(AnyRequest(request): AnyRequest, AnyBytes(tail): AnyBytes) -> Outcome {
        let valid = request.encode();
        let mut extended = valid.to_vec();
        extended.extend((0..24).map(|i| tail.get(i).copied().unwrap_or(i as u8)));
        for len in (0..40).chain(41..=64) {
            let body = &extended[..len];
            let err = match decode_request(body) {
                Ok(r) => return Err(format!("{len} bytes decoded as {r:?}")),
                Err(err) => err,
            };
            if *err.violation() != (Violation::Length { len }) {
                return Err(format!("{len} bytes: {:?}", err.violation()));
            }
            // A valid request has the right magic and reply_to >= 2, so
            // only the length decides whether it is answered.
            let expected = (len >= 24).then_some(Answer {
                reply_to: request.reply_to,
                request_id: request.request_id,
                status: Status::BadMessage,
            });
            if err.answer() != expected {
                return Err(format!("{len} bytes: answer {:?}", err.answer()));
            }
            check_request(body)?;
            if decode_reply(body) != Err(Violation::Length { len }) {
                return Err(format!("{len} bytes as a reply: {:?}", decode_reply(body)));
            }
        }
        Ok(())
    }
    quickcheck(20_000).quickcheck(prop as fn(AnyRequest, AnyBytes) -> Outcome);
}

#[test]
fn every_length_of_a_biased_body_decodes_as_the_oracle_says() {
    fn prop(BiasedBody(body): BiasedBody, AnyBytes(tail): AnyBytes) -> Outcome {
        let mut extended = body.to_vec();
        extended.extend((0..24).map(|i| tail.get(i).copied().unwrap_or(0)));
        for len in 0..=64 {
            check_request(&extended[..len])?;
            check_reply(&extended[..len])?;
        }
        Ok(())
    }
    quickcheck(20_000).quickcheck(prop as fn(BiasedBody, AnyBytes) -> Outcome);
}

/// The oracle itself must tell the cases apart: a few fixed bodies it must
/// classify as the spec says (so an oracle bug that agrees with a decoder
/// bug does not go unnoticed).
#[test]
fn oracle_sanity() {
    let valid = Request {
        reply_to: ReplyTo::new(7).expect(">= 2"),
        request_id: RequestId(99),
        operation: Operation::Query {
            event: EventId::new(3).expect("non-zero"),
        },
    }
    .encode();
    assert_eq!(request_oracle(&valid), None);
    let answer = |status| {
        Some(Answer {
            reply_to: ReplyTo::new(7).expect(">= 2"),
            request_id: RequestId(99),
            status,
        })
    };
    assert_eq!(
        request_oracle(&valid[..24]),
        Some((Violation::Length { len: 24 }, answer(Status::BadMessage)))
    );
    assert_eq!(
        request_oracle(&valid[..23]),
        Some((Violation::Length { len: 23 }, None))
    );
    let mut body = valid;
    body[6] = 3; // CANCEL with booking_id 0 and event_id 3
    assert_eq!(
        request_oracle(&body),
        Some((
            Violation::Missing {
                op: Op::Cancel,
                field: Field::BookingId
            },
            answer(Status::InvalidRequest)
        ))
    );
    body[8..16].copy_from_slice(&1i64.to_ne_bytes());
    assert_eq!(
        request_oracle(&body),
        Some((Violation::ReplyTo { found: 1 }, None))
    );
    let mut body = valid;
    body[0] ^= 1;
    assert!(matches!(
        request_oracle(&body),
        Some((Violation::Magic { .. }, None))
    ));
    assert_eq!(
        reply_oracle(&[0u8; 40]),
        Some(Violation::Magic { found: 0 })
    );
}

/// The biased generators must reach the deep paths: with a fixed seed,
/// every verdict the oracle can give a 40-byte body (each violation kind,
/// answered or not where both are possible, and valid messages of each op)
/// must come up in at least 0.5% of the bodies.
#[test]
fn biased_generators_reach_every_verdict() {
    use std::collections::HashMap;

    const BODIES: usize = 20_000;
    let mut g = Gen::from_size_and_seed(100, 0x0067_7569_6368_6574);
    let mut requests: HashMap<String, usize> = HashMap::new();
    let mut replies: HashMap<String, usize> = HashMap::new();
    for _ in 0..BODIES {
        let BiasedBody(body) = BiasedBody::arbitrary(&mut g);
        let verdict = match request_oracle(&body) {
            None => format!("valid op {}", u16_at(&body, 6)),
            Some((violation, answer)) => {
                // The variant's name, and the operation and field if any.
                let name = format!("{violation:?}");
                let kind = match violation {
                    Violation::Missing { .. } | Violation::NotZero { .. } => {
                        name.split(", found").next().unwrap_or(&name).to_owned()
                    }
                    _ => name.split(' ').next().unwrap_or(&name).to_owned(),
                };
                format!("{kind} answered={}", answer.is_some())
            }
        };
        *requests.entry(verdict).or_default() += 1;
        let BiasedReplyBody(body) = BiasedReplyBody::arbitrary(&mut g);
        let verdict = match reply_oracle(&body) {
            None => "valid".to_owned(),
            Some(v) => format!("{v:?}").split(' ').next().unwrap_or("").to_owned(),
        };
        *replies.entry(verdict).or_default() += 1;
    }
    let expected_requests = [
        "valid op 1",
        "valid op 2",
        "valid op 3",
        "Magic answered=false",
        "Version answered=true",
        "Version answered=false",
        "Op answered=true",
        "Op answered=false",
        "ReplyTo answered=false",
        "ServerBookingBit answered=true",
        "Missing { op: Query, field: EventId } answered=true",
        "Missing { op: Reserve, field: EventId } answered=true",
        "Missing { op: Reserve, field: Quantity } answered=true",
        "Missing { op: Cancel, field: BookingId } answered=true",
        "NotZero { op: Query, field: BookingId answered=true",
        "NotZero { op: Query, field: Quantity answered=true",
        "NotZero { op: Cancel, field: EventId answered=true",
        "NotZero { op: Cancel, field: Quantity answered=true",
    ];
    for verdict in expected_requests {
        let seen = requests.get(verdict).copied().unwrap_or(0);
        assert!(
            seen * 200 >= BODIES,
            "request verdict {verdict:?}: {seen} of {BODIES}; all: {requests:#?}"
        );
    }
    for verdict in ["valid", "Magic", "Version", "Status"] {
        let seen = replies.get(verdict).copied().unwrap_or(0);
        assert!(
            seen * 200 >= BODIES,
            "reply verdict {verdict:?}: {seen} of {BODIES}; all: {replies:#?}"
        );
    }
}
